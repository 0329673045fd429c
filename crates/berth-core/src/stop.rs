//! The escalation `berth daemon stop` follows.
//!
//! ```text
//! Ask ──accepted──▶ AwaitGraceful ──timeout──▶ Terminate ──sent──▶ AwaitTerm ──timeout──▶ Kill
//!  │ refused/unreachable                 ▲                                                 │ sent
//!  └─────────────────────────────────────┘                                                 ▼
//!                        (any wait) ──exited──▶ Done(outcome)          AwaitKill ──timeout──▶ Unkillable
//! ```
//!
//! Every wait is bounded by the caller's timeouts; runtime files are removed only in `Done`.

use serde::{Deserialize, Serialize};

use crate::InvalidTransition;

/// Where the stop procedure is; each state names the next thing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopState {
    /// Ask the daemon to shut down over the API.
    Ask,
    /// Wait (bounded) for the process to exit after a successful ask.
    AwaitGraceful,
    /// Send SIGTERM.
    Terminate,
    /// Wait (bounded) after SIGTERM.
    AwaitTerm,
    /// Send SIGKILL.
    Kill,
    /// Wait (bounded) after SIGKILL.
    AwaitKill,
    /// The process is gone.
    Done(StopOutcome),
    /// Still alive after SIGKILL and its wait: leave everything in place and report.
    Unkillable,
}

/// How the daemon ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopOutcome {
    /// It shut down when asked.
    Graceful,
    /// It needed SIGTERM.
    Terminated,
    /// It needed SIGKILL (its runtime files are left for the caller to remove).
    Killed,
}

/// What the caller observed after carrying out the current state's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopInput {
    /// The API accepted the shutdown request.
    AskAccepted,
    /// The API could not be reached or refused.
    AskFailed,
    /// The signal was delivered.
    SignalSent,
    /// The process is gone (also when a signal found no process).
    Exited,
    /// The bounded wait ran out.
    TimedOut,
}

pub const INITIAL: StopState = StopState::Ask;

pub fn next(state: StopState, input: StopInput) -> Result<StopState, InvalidTransition> {
    use StopInput as I;
    use StopState as S;
    match (state, input) {
        (S::Ask, I::AskAccepted) => Ok(S::AwaitGraceful),
        (S::Ask, I::AskFailed) => Ok(S::Terminate),
        (S::Ask | S::AwaitGraceful, I::Exited) => Ok(S::Done(StopOutcome::Graceful)),
        (S::AwaitGraceful, I::TimedOut) => Ok(S::Terminate),
        (S::Terminate, I::SignalSent) => Ok(S::AwaitTerm),
        (S::Terminate | S::AwaitTerm | S::Kill, I::Exited) => Ok(S::Done(StopOutcome::Terminated)),
        (S::AwaitTerm, I::TimedOut) => Ok(S::Kill),
        (S::Kill, I::SignalSent) => Ok(S::AwaitKill),
        (S::AwaitKill, I::Exited) => Ok(S::Done(StopOutcome::Killed)),
        (S::AwaitKill, I::TimedOut) => Ok(S::Unkillable),
        (state, input) => Err(InvalidTransition::new(state, input)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StopInput as I;
    use StopState as S;

    const STATES: [StopState; 10] = [
        S::Ask,
        S::AwaitGraceful,
        S::Terminate,
        S::AwaitTerm,
        S::Kill,
        S::AwaitKill,
        S::Done(StopOutcome::Graceful),
        S::Done(StopOutcome::Terminated),
        S::Done(StopOutcome::Killed),
        S::Unkillable,
    ];
    const INPUTS: [StopInput; 5] = [
        I::AskAccepted,
        I::AskFailed,
        I::SignalSent,
        I::Exited,
        I::TimedOut,
    ];

    #[test]
    fn transition_table_is_exhaustive() {
        for s in STATES {
            for i in INPUTS {
                let expected = match (s, i) {
                    (S::Ask, I::AskAccepted) => Some(S::AwaitGraceful),
                    (S::Ask, I::AskFailed) => Some(S::Terminate),
                    (S::Ask, I::Exited) => Some(S::Done(StopOutcome::Graceful)),
                    (S::AwaitGraceful, I::Exited) => Some(S::Done(StopOutcome::Graceful)),
                    (S::AwaitGraceful, I::TimedOut) => Some(S::Terminate),
                    (S::Terminate, I::SignalSent) => Some(S::AwaitTerm),
                    (S::Terminate, I::Exited) => Some(S::Done(StopOutcome::Terminated)),
                    (S::AwaitTerm, I::Exited) => Some(S::Done(StopOutcome::Terminated)),
                    (S::AwaitTerm, I::TimedOut) => Some(S::Kill),
                    (S::Kill, I::SignalSent) => Some(S::AwaitKill),
                    (S::Kill, I::Exited) => Some(S::Done(StopOutcome::Terminated)),
                    (S::AwaitKill, I::Exited) => Some(S::Done(StopOutcome::Killed)),
                    (S::AwaitKill, I::TimedOut) => Some(S::Unkillable),
                    _ => None,
                };
                assert_eq!(next(s, i).ok(), expected, "{s:?} + {i:?}");
            }
        }
    }

    #[test]
    fn a_daemon_that_ignores_everything_ends_unkillable_after_three_bounded_waits() {
        let mut s = INITIAL;
        let mut waits = 0;
        for i in [
            I::AskAccepted,
            I::TimedOut,
            I::SignalSent,
            I::TimedOut,
            I::SignalSent,
        ] {
            s = next(s, i).unwrap();
            if matches!(s, S::AwaitGraceful | S::AwaitTerm | S::AwaitKill) {
                waits += 1;
            }
        }
        assert_eq!(next(s, I::TimedOut).unwrap(), S::Unkillable);
        assert_eq!(waits, 3);
    }

    #[test]
    fn an_unreachable_api_goes_straight_to_sigterm() {
        assert_eq!(next(S::Ask, I::AskFailed).unwrap(), S::Terminate);
    }
}
