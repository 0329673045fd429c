//! An agent's inbox: the life of an item, how it is delivered, what follows a turn, and what a
//! daemon that starts again makes of an item it finds `delivering`.
//!
//! ```text
//!          deliver                 succeeded
//! queued ───────────▶ delivering ───────────▶ done
//!    │                  │   ▲ │ gave up
//!    │ cancel           │   │ └──────────────▶ failed
//!    ▼                  └───┘ another attempt (the item stays `delivering`: nothing behind it
//! cancelled                    goes first, so an agent's items are delivered in order)
//! ```
//!
//! Items are taken `now` before `normal`, then oldest first ([`order`]). One item of an agent is
//! delivered at a time; each attempt is a *turn*. The decisions are plain functions of plain
//! data: the daemon observes (a keeper's files, a screen) and carries out the answers.

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::InvalidTransition;

/// The largest message a turn agent is sent, in bytes (a terminal agent's limit is
/// [`crate::terminal::MAX_INPUT_BYTES`] less the Return that follows it).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// The longest idempotency key, in bytes.
pub const MAX_KEY_BYTES: usize = 200;
/// How long a turn may run before it is stopped, unless the agent says otherwise.
pub const DEFAULT_TURN_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long a terminal agent's screen must stay unchanged before a message is typed into it.
pub const SETTLE: Duration = Duration::from_secs(1);
/// How much of a turn's output its record keeps (the end of it), in bytes.
pub const OUTPUT_SLICE_BYTES: usize = 16 * 1024;

/// Where an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    Queued,
    Delivering,
    Done,
    Failed,
    Cancelled,
}

impl ItemState {
    pub const ALL: [ItemState; 5] = [
        ItemState::Queued,
        ItemState::Delivering,
        ItemState::Done,
        ItemState::Failed,
        ItemState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Queued => "queued",
            ItemState::Delivering => "delivering",
            ItemState::Done => "done",
            ItemState::Failed => "failed",
            ItemState::Cancelled => "cancelled",
        }
    }

    /// Nothing happens to an item in this state any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ItemState::Done | ItemState::Failed | ItemState::Cancelled
        )
    }
}

impl FromStr for ItemState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ItemState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown item state {s:?}"))
    }
}

/// What happens to an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemEvent {
    /// Its first turn starts.
    Deliver,
    /// A turn succeeded.
    Succeeded,
    /// The last attempt failed.
    GaveUp,
    /// Someone cancelled it.
    Cancel,
}

impl ItemEvent {
    pub const ALL: [ItemEvent; 4] = [
        ItemEvent::Deliver,
        ItemEvent::Succeeded,
        ItemEvent::GaveUp,
        ItemEvent::Cancel,
    ];
}

/// The transition function of an item.
pub fn next(state: ItemState, event: ItemEvent) -> Result<ItemState, InvalidTransition> {
    use ItemEvent as E;
    use ItemState as S;
    match (state, event) {
        (S::Queued, E::Deliver) => Ok(S::Delivering),
        (S::Queued, E::Cancel) => Ok(S::Cancelled),
        (S::Delivering, E::Succeeded) => Ok(S::Done),
        (S::Delivering, E::GaveUp) => Ok(S::Failed),
        _ => Err(InvalidTransition::new(state, event)),
    }
}

/// `now` goes before `normal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Now,
    #[default]
    Normal,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Now => "now",
            Priority::Normal => "normal",
        }
    }

    /// Higher goes first (the store orders by it, descending).
    pub fn rank(self) -> i64 {
        match self {
            Priority::Now => 1,
            Priority::Normal => 0,
        }
    }

    pub fn from_rank(rank: i64) -> Priority {
        if rank > 0 {
            Priority::Now
        } else {
            Priority::Normal
        }
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "now" => Ok(Priority::Now),
            "normal" => Ok(Priority::Normal),
            _ => Err(format!("priority {s:?} is neither `now` nor `normal`")),
        }
    }
}

/// The key an agent's queued items are taken in: `now` first, then by id (oldest first).
pub fn order(priority: Priority, id: i64) -> (i64, i64) {
    (-priority.rank(), id)
}

/// How an agent takes messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One run of its turn command per item.
    Turn,
    /// Typed into its terminal.
    Type,
}

/// Why an agent cannot be sent messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Undeliverable {
    #[error("agent {0} takes no messages: it has neither a turn command nor a terminal")]
    Neither(String),
    #[error("agent {0} has both a turn command and a terminal; a message would go to both")]
    Both(String),
}

/// How the agent `name` takes messages, from its definition.
pub fn mode(name: &str, turn: bool, tty: bool) -> Result<Mode, Undeliverable> {
    match (turn, tty) {
        (true, false) => Ok(Mode::Turn),
        (false, true) => Ok(Mode::Type),
        (false, false) => Err(Undeliverable::Neither(name.to_string())),
        (true, true) => Err(Undeliverable::Both(name.to_string())),
    }
}

/// What a message may be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("the message is empty")]
    Empty,
    #[error("the message is {bytes} bytes; at most {max} can be sent to this agent")]
    TooLarge { bytes: usize, max: usize },
    #[error("the message contains a NUL byte")]
    Nul,
    #[error("the idempotency key is empty")]
    EmptyKey,
    #[error("the idempotency key is {0} bytes; at most 200")]
    LongKey(usize),
}

/// Checks a message (and its key) for an agent that takes messages by `mode`.
pub fn check_message(text: &str, key: Option<&str>, mode: Mode) -> Result<(), MessageError> {
    let max = match mode {
        Mode::Turn => MAX_MESSAGE_BYTES,
        Mode::Type => crate::terminal::MAX_INPUT_BYTES - 1,
    };
    if text.is_empty() {
        return Err(MessageError::Empty);
    }
    if text.len() > max {
        return Err(MessageError::TooLarge {
            bytes: text.len(),
            max,
        });
    }
    if text.contains('\0') {
        return Err(MessageError::Nul);
    }
    match key {
        Some("") => Err(MessageError::EmptyKey),
        Some(k) if k.len() > MAX_KEY_BYTES => Err(MessageError::LongKey(k.len())),
        _ => Ok(()),
    }
}

/// How a turn ended (or is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnStatus {
    Running,
    /// Exit 0, or the text was typed.
    Done,
    /// A non-zero exit or a signal, or the text could not be typed.
    Failed,
    /// Stopped after the turn timeout.
    TimedOut,
    /// Its keeper vanished (the daemon found it so when it started again).
    Interrupted,
}

impl TurnStatus {
    pub const ALL: [TurnStatus; 5] = [
        TurnStatus::Running,
        TurnStatus::Done,
        TurnStatus::Failed,
        TurnStatus::TimedOut,
        TurnStatus::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TurnStatus::Running => "running",
            TurnStatus::Done => "done",
            TurnStatus::Failed => "failed",
            TurnStatus::TimedOut => "timed_out",
            TurnStatus::Interrupted => "interrupted",
        }
    }
}

impl FromStr for TurnStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        TurnStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown turn status {s:?}"))
    }
}

/// A turn's process as the daemon sees its keeper's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The keeper runs (pid and start time match).
    Alive,
    /// The keeper finished: the process ended like this.
    Exited { code: Option<i32> },
    /// The keeper is gone without finishing, or never started.
    Gone,
}

/// How a finished turn ended, from what was seen and whether the timeout stopped it.
pub fn status_of(seen: Seen, timed_out: bool) -> TurnStatus {
    match (seen, timed_out) {
        (Seen::Alive, _) => TurnStatus::Running,
        (_, true) => TurnStatus::TimedOut,
        (Seen::Exited { code: Some(0) }, false) => TurnStatus::Done,
        (Seen::Exited { .. }, false) => TurnStatus::Failed,
        (Seen::Gone, false) => TurnStatus::Interrupted,
    }
}

/// How many attempts an item gets, and how long to wait between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    /// The wait after the first failed attempt; it doubles after each further one.
    pub first_wait: Duration,
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts; 1 s, then 2 s between them.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            first_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(60),
        }
    }
}

/// What follows a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterTurn {
    /// The item is done.
    Done,
    /// Another attempt after this wait.
    Retry(Duration),
    /// The item failed.
    Failed,
    /// The turn is still running: wait for it.
    Wait,
}

/// What follows attempt `attempt` (1-based) of an item, which ended with `status`.
pub fn after_turn(status: TurnStatus, attempt: u32, policy: &RetryPolicy) -> AfterTurn {
    match status {
        TurnStatus::Running => AfterTurn::Wait,
        TurnStatus::Done => AfterTurn::Done,
        TurnStatus::Failed | TurnStatus::TimedOut | TurnStatus::Interrupted => {
            if attempt >= policy.max_attempts {
                AfterTurn::Failed
            } else {
                let doublings = attempt.saturating_sub(1).min(16);
                let wait = policy.first_wait.saturating_mul(1 << doublings);
                AfterTurn::Retry(wait.min(policy.max_wait))
            }
        }
    }
}

/// What a daemon does with an item it finds `delivering` (it was delivering when the last run
/// ended), from the item's last turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// No turn was recorded: start the first.
    Start,
    /// The turn's process still runs: watch it to its end and record that.
    Adopt,
    /// The turn ended while nobody watched: record how.
    Collect,
    /// The turn's keeper vanished: the turn is `interrupted`, and another attempt follows (as
    /// [`after_turn`] says).
    Interrupt,
    /// The last turn was recorded as ended and the item waits for its next attempt: start it.
    NextAttempt,
    /// A terminal agent's turn was typing: whether the text went in is unknown; it is
    /// `interrupted` and typed again (at least once, rather than perhaps never).
    Retype,
}

/// The recovery of an item whose last turn is `last` (its status, and for a running turn of a
/// turn agent what its keeper's files show).
pub fn recover(mode: Mode, last: Option<(TurnStatus, Seen)>) -> Recovery {
    match (mode, last) {
        (_, None) => Recovery::Start,
        (Mode::Type, Some((TurnStatus::Running, _))) => Recovery::Retype,
        (Mode::Turn, Some((TurnStatus::Running, Seen::Alive))) => Recovery::Adopt,
        (Mode::Turn, Some((TurnStatus::Running, Seen::Exited { .. }))) => Recovery::Collect,
        (Mode::Turn, Some((TurnStatus::Running, Seen::Gone))) => Recovery::Interrupt,
        (_, Some(_)) => Recovery::NextAttempt,
    }
}

/// Whether a terminal's screen has been quiet long enough: `changed_ms` is when it last
/// changed (or was first seen), `now_ms` is now.
pub fn settled(changed_ms: i64, now_ms: i64, settle: Duration) -> bool {
    let quiet = u128::try_from(now_ms.saturating_sub(changed_ms)).unwrap_or(0);
    quiet >= settle.as_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_transition() {
        use ItemEvent as E;
        use ItemState as S;
        for state in S::ALL {
            for event in E::ALL {
                let expected = match (state, event) {
                    (S::Queued, E::Deliver) => Some(S::Delivering),
                    (S::Queued, E::Cancel) => Some(S::Cancelled),
                    (S::Delivering, E::Succeeded) => Some(S::Done),
                    (S::Delivering, E::GaveUp) => Some(S::Failed),
                    _ => None,
                };
                assert_eq!(next(state, event).ok(), expected, "{state:?} + {event:?}");
            }
        }
    }

    #[test]
    fn final_states_take_nothing() {
        for state in ItemState::ALL.into_iter().filter(|s| s.is_final()) {
            for event in ItemEvent::ALL {
                assert!(next(state, event).is_err(), "{state:?} + {event:?}");
            }
        }
        assert_eq!(
            ItemState::ALL.iter().filter(|s| s.is_final()).count(),
            3,
            "done, failed and cancelled"
        );
    }

    #[test]
    fn names_round_trip() {
        for s in ItemState::ALL {
            assert_eq!(s.as_str().parse::<ItemState>(), Ok(s));
        }
        for s in TurnStatus::ALL {
            assert_eq!(s.as_str().parse::<TurnStatus>(), Ok(s));
        }
        for p in [Priority::Now, Priority::Normal] {
            assert_eq!(p.as_str().parse::<Priority>(), Ok(p));
            assert_eq!(Priority::from_rank(p.rank()), p);
        }
        assert!("urgent".parse::<Priority>().is_err());
        assert!("".parse::<ItemState>().is_err());
    }

    #[test]
    fn now_goes_first_then_oldest() {
        let mut items = vec![
            (Priority::Normal, 1),
            (Priority::Now, 4),
            (Priority::Normal, 2),
            (Priority::Now, 3),
        ];
        items.sort_by_key(|(p, id)| order(*p, *id));
        assert_eq!(
            items,
            vec![
                (Priority::Now, 3),
                (Priority::Now, 4),
                (Priority::Normal, 1),
                (Priority::Normal, 2)
            ]
        );
    }

    #[test]
    fn every_mode() {
        assert_eq!(mode("a", true, false), Ok(Mode::Turn));
        assert_eq!(mode("a", false, true), Ok(Mode::Type));
        assert_eq!(
            mode("a", false, false),
            Err(Undeliverable::Neither("a".into()))
        );
        assert_eq!(mode("a", true, true), Err(Undeliverable::Both("a".into())));
    }

    #[test]
    fn messages_checked() {
        let typed_max = crate::terminal::MAX_INPUT_BYTES - 1;
        let long_key = "k".repeat(201);
        type Case<'a> = (String, Option<&'a str>, Mode, Result<(), MessageError>);
        let cases: Vec<Case> = vec![
            ("hi".into(), None, Mode::Turn, Ok(())),
            ("hi".into(), Some("k-1"), Mode::Type, Ok(())),
            ("".into(), None, Mode::Turn, Err(MessageError::Empty)),
            ("a\0b".into(), None, Mode::Turn, Err(MessageError::Nul)),
            (
                "a".into(),
                Some(""),
                Mode::Turn,
                Err(MessageError::EmptyKey),
            ),
            (
                "a".into(),
                Some(long_key.as_str()),
                Mode::Turn,
                Err(MessageError::LongKey(201)),
            ),
            ("x".repeat(typed_max), None, Mode::Type, Ok(())),
            (
                "x".repeat(typed_max + 1),
                None,
                Mode::Type,
                Err(MessageError::TooLarge {
                    bytes: typed_max + 1,
                    max: typed_max,
                }),
            ),
            ("x".repeat(typed_max + 1), None, Mode::Turn, Ok(())),
            (
                "x".repeat(MAX_MESSAGE_BYTES + 1),
                None,
                Mode::Turn,
                Err(MessageError::TooLarge {
                    bytes: MAX_MESSAGE_BYTES + 1,
                    max: MAX_MESSAGE_BYTES,
                }),
            ),
        ];
        for (text, key, mode, expected) in cases {
            assert_eq!(
                check_message(&text, key, mode),
                expected,
                "{key:?} {mode:?}"
            );
        }
    }

    #[test]
    fn every_status() {
        let seen = [
            Seen::Alive,
            Seen::Exited { code: Some(0) },
            Seen::Exited { code: Some(1) },
            Seen::Exited { code: None },
            Seen::Gone,
        ];
        for s in seen {
            for timed_out in [false, true] {
                let expected = match (s, timed_out) {
                    (Seen::Alive, _) => TurnStatus::Running,
                    (_, true) => TurnStatus::TimedOut,
                    (Seen::Exited { code: Some(0) }, _) => TurnStatus::Done,
                    (Seen::Exited { .. }, _) => TurnStatus::Failed,
                    (Seen::Gone, _) => TurnStatus::Interrupted,
                };
                assert_eq!(status_of(s, timed_out), expected, "{s:?} {timed_out}");
            }
        }
    }

    #[test]
    fn every_outcome_of_a_turn() {
        let p = RetryPolicy::default();
        let s = Duration::from_secs;
        for status in TurnStatus::ALL {
            for attempt in 1..=4 {
                let expected = match (status, attempt) {
                    (TurnStatus::Running, _) => AfterTurn::Wait,
                    (TurnStatus::Done, _) => AfterTurn::Done,
                    (_, 1) => AfterTurn::Retry(s(1)),
                    (_, 2) => AfterTurn::Retry(s(2)),
                    _ => AfterTurn::Failed,
                };
                assert_eq!(
                    after_turn(status, attempt, &p),
                    expected,
                    "{status:?} attempt {attempt}"
                );
            }
        }
    }

    #[test]
    fn waits_double_up_to_the_cap() {
        let p = RetryPolicy {
            max_attempts: u32::MAX,
            first_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(60),
        };
        let waits: Vec<_> = (1..=8)
            .map(|a| match after_turn(TurnStatus::Failed, a, &p) {
                AfterTurn::Retry(w) => w.as_secs(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(
            after_turn(TurnStatus::Failed, u32::MAX - 1, &p),
            AfterTurn::Retry(Duration::from_secs(60))
        );
    }

    #[test]
    fn every_recovery() {
        let seen = [Seen::Alive, Seen::Exited { code: Some(3) }, Seen::Gone];
        for mode in [Mode::Turn, Mode::Type] {
            assert_eq!(recover(mode, None), Recovery::Start);
            for status in TurnStatus::ALL {
                for s in seen {
                    let expected = match (mode, status, s) {
                        (Mode::Type, TurnStatus::Running, _) => Recovery::Retype,
                        (Mode::Turn, TurnStatus::Running, Seen::Alive) => Recovery::Adopt,
                        (Mode::Turn, TurnStatus::Running, Seen::Exited { .. }) => Recovery::Collect,
                        (Mode::Turn, TurnStatus::Running, Seen::Gone) => Recovery::Interrupt,
                        _ => Recovery::NextAttempt,
                    };
                    assert_eq!(
                        recover(mode, Some((status, s))),
                        expected,
                        "{mode:?} {status:?} {s:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn settling() {
        let second = Duration::from_secs(1);
        assert!(!settled(1_000, 1_999, second));
        assert!(settled(1_000, 2_000, second));
        assert!(settled(1_000, 9_000, second));
        // A clock that went back is not quiet.
        assert!(!settled(5_000, 1_000, second));
    }
}
