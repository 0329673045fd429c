//! The states of a supervised process (agent or service) and its transitions.
//!
//! ```text
//!            start            ready                    stop
//! stopped ─────────▶ starting ──────▶ running ──────────────▶ stopping ──gone──▶ stopped
//! exited ─┘  ▲          │ exit           │ exit                  ▲
//! failed ─┘  │          ▼                ▼                       │
//! lost ───┘  │     (decision) ──stay──▶ exited                   │
//!            │          │ restart                                │
//!            └─elapsed─ backoff ──────────────stop──────▶ stopped
//!                       │ give up
//!                       ▼
//!                     failed          (any live state) ──vanished──▶ lost
//! ```
//!
//! The restart decision itself comes from `crate::restart`; this machine only records it.

use serde::{Deserialize, Serialize};

use crate::InvalidTransition;
use crate::restart::Decision;

/// Where a supervised process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum AgentState {
    /// Not running, nothing scheduled.
    Stopped,
    /// Running; readiness not yet passed.
    Starting,
    /// Running and ready.
    Running,
    /// A stop is in progress (signal sent, waiting for every descendant to go).
    Stopping,
    /// Ended by itself; no restart is due.
    Exited { code: Option<i32> },
    /// Crashed; restart `attempt` is scheduled at `at_ms`.
    Backoff { attempt: u32, at_ms: u64 },
    /// The restart budget is spent.
    Failed,
    /// Vanished while nobody was watching (its keeper is gone).
    Lost,
}

impl AgentState {
    pub fn name(self) -> &'static str {
        match self {
            AgentState::Stopped => "stopped",
            AgentState::Starting => "starting",
            AgentState::Running => "running",
            AgentState::Stopping => "stopping",
            AgentState::Exited { .. } => "exited",
            AgentState::Backoff { .. } => "backoff",
            AgentState::Failed => "failed",
            AgentState::Lost => "lost",
        }
    }

    /// Whether a process (and its keeper) should exist in this state.
    pub fn has_process(self) -> bool {
        matches!(
            self,
            AgentState::Starting | AgentState::Running | AgentState::Stopping
        )
    }
}

/// What can happen to a supervised process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A start was asked for (by a user, `berth up`, or a restart coming due).
    Start,
    /// The readiness probe passed (or there is none).
    Ready,
    /// The process ended by itself; the restart policy decided what next.
    Exited {
        code: Option<i32>,
        decision: Decision,
    },
    /// A stop was asked for.
    Stop,
    /// The stop finished: no descendant remains.
    Gone,
    /// A scheduled restart came due.
    BackoffElapsed,
    /// On daemon start, the keeper was not found (or not the same process).
    Vanished,
}

/// The transition function.
pub fn next(state: AgentState, event: Event) -> Result<AgentState, InvalidTransition> {
    use AgentState as S;
    use Event as E;
    let to_after_exit = |code, decision| match decision {
        Decision::Stay => S::Exited { code },
        Decision::Restart { attempt, at_ms } => S::Backoff { attempt, at_ms },
        Decision::GiveUp => S::Failed,
    };
    match (state, event) {
        (S::Stopped | S::Exited { .. } | S::Failed | S::Lost, E::Start) => Ok(S::Starting),
        (S::Backoff { .. }, E::BackoffElapsed | E::Start) => Ok(S::Starting),
        (S::Starting, E::Ready) => Ok(S::Running),
        (S::Starting | S::Running, E::Exited { code, decision }) => {
            Ok(to_after_exit(code, decision))
        }
        (S::Starting | S::Running, E::Stop) => Ok(S::Stopping),
        // Nothing runs in backoff: cancelling the restart is the whole stop.
        (S::Backoff { .. }, E::Stop) => Ok(S::Stopped),
        (S::Stopping, E::Stop) => Ok(S::Stopping),
        // The exit a stop causes is not a crash: no restart decision applies.
        (S::Stopping, E::Exited { .. } | E::Gone) => Ok(S::Stopped),
        (S::Starting | S::Running | S::Stopping, E::Vanished) => Ok(S::Lost),
        // Stopping something already at rest is a no-op.
        (S::Stopped | S::Exited { .. } | S::Failed | S::Lost, E::Stop) => Ok(state),
        (state, event) => Err(InvalidTransition::new(state, event)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AgentState as S;
    use Event as E;

    const RESTART: Decision = Decision::Restart {
        attempt: 2,
        at_ms: 5,
    };

    fn states() -> Vec<AgentState> {
        vec![
            S::Stopped,
            S::Starting,
            S::Running,
            S::Stopping,
            S::Exited { code: Some(1) },
            S::Backoff {
                attempt: 1,
                at_ms: 9,
            },
            S::Failed,
            S::Lost,
        ]
    }

    fn events() -> Vec<Event> {
        vec![
            E::Start,
            E::Ready,
            E::Exited {
                code: Some(3),
                decision: Decision::Stay,
            },
            E::Exited {
                code: None,
                decision: RESTART,
            },
            E::Exited {
                code: Some(1),
                decision: Decision::GiveUp,
            },
            E::Stop,
            E::Gone,
            E::BackoffElapsed,
            E::Vanished,
        ]
    }

    /// The whole table, written out independently of `next`.
    fn expected(s: AgentState, e: Event) -> Option<AgentState> {
        let at_rest = matches!(s, S::Stopped | S::Exited { .. } | S::Failed | S::Lost);
        let live = matches!(s, S::Starting | S::Running);
        let backoff = matches!(s, S::Backoff { .. });
        match e {
            E::Start if at_rest || backoff => Some(S::Starting),
            E::Ready if s == S::Starting => Some(S::Running),
            E::Exited { code, decision } if live => Some(match decision {
                Decision::Stay => S::Exited { code },
                Decision::Restart { attempt, at_ms } => S::Backoff { attempt, at_ms },
                Decision::GiveUp => S::Failed,
            }),
            E::Exited { .. } | E::Gone if s == S::Stopping => Some(S::Stopped),
            E::Stop if live || s == S::Stopping => Some(S::Stopping),
            E::Stop if backoff => Some(S::Stopped),
            E::Stop if at_rest => Some(s),
            E::BackoffElapsed if backoff => Some(S::Starting),
            E::Vanished if live || s == S::Stopping => Some(S::Lost),
            _ => None,
        }
    }

    #[test]
    fn transition_table_is_exhaustive() {
        for s in states() {
            for e in events() {
                assert_eq!(next(s, e).ok(), expected(s, e), "{s:?} + {e:?}");
            }
        }
    }

    #[test]
    fn a_crash_loop_walks_backoff_into_failed() {
        let mut s = next(S::Stopped, E::Start).unwrap();
        s = next(
            s,
            E::Exited {
                code: Some(1),
                decision: RESTART,
            },
        )
        .unwrap();
        assert_eq!(
            s,
            S::Backoff {
                attempt: 2,
                at_ms: 5
            }
        );
        s = next(s, E::BackoffElapsed).unwrap();
        s = next(
            s,
            E::Exited {
                code: Some(1),
                decision: Decision::GiveUp,
            },
        )
        .unwrap();
        assert_eq!(s, S::Failed);
        assert_eq!(s.name(), "failed");
        assert!(!s.has_process());
    }

    #[test]
    fn only_live_states_have_a_process() {
        let with: Vec<&str> = states()
            .into_iter()
            .filter(|s| s.has_process())
            .map(|s| s.name())
            .collect();
        assert_eq!(with, ["starting", "running", "stopping"]);
    }
}
