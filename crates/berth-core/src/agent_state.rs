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
//!
//!   starting/running/stopping ──link lost──▶ unreachable ──reconnected──▶ running
//!                                               │                (starting while its
//!                                               │                 readiness probe is pending)
//!                                               │ exit / vanished / stop: as from running
//! ```
//!
//! `unreachable` is an agent on another machine or in a container (SPEC §10.4) whose keeper
//! berth cannot reach right now: the agent may well run on (its keeper is over there, not
//! here), so it still counts as having a process. It carries why ([`Unreachability`]); the
//! daemon tries again by itself, and the first look that gets through says what became of the
//! agent meanwhile (still running, exited, or vanished).
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
    /// Its keeper is elsewhere and cannot be reached now, for `cause`.
    Unreachable { cause: Unreachability },
}

/// Why an agent elsewhere cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unreachability {
    /// The connection broke (the ssh or docker client ended, the stream closed).
    ConnectionLost,
    /// Nothing came from the far side for too long (a frozen host, a paused container).
    NotAnswering,
    /// A new connection could not be made (the host is down, the container stopped or paused).
    CannotConnect,
}

impl Unreachability {
    pub fn name(self) -> &'static str {
        match self {
            Unreachability::ConnectionLost => "connection_lost",
            Unreachability::NotAnswering => "not_answering",
            Unreachability::CannotConnect => "cannot_connect",
        }
    }
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
            AgentState::Unreachable { .. } => "unreachable",
        }
    }

    /// Whether a process (and its keeper) should exist in this state (an unreachable one's
    /// keeper is elsewhere and presumably runs on).
    pub fn has_process(self) -> bool {
        matches!(
            self,
            AgentState::Starting
                | AgentState::Running
                | AgentState::Stopping
                | AgentState::Unreachable { .. }
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
    /// The keeper of an agent elsewhere could not be reached, for this cause.
    LinkLost(Unreachability),
    /// The keeper of an unreachable agent was reached again, and it runs; `ready`: its
    /// readiness probe (if any) had passed, else it is still `starting`.
    Reconnected { ready: bool },
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
        (S::Starting | S::Running | S::Stopping | S::Unreachable { .. }, E::Vanished) => {
            Ok(S::Lost)
        }
        // What became of the agent while it could not be reached: as if it had been running.
        (S::Unreachable { .. }, E::Exited { code, decision }) => Ok(to_after_exit(code, decision)),
        // A stop asked while unreachable is tried (and fails back here if it cannot reach it).
        (S::Unreachable { .. }, E::Stop) => Ok(S::Stopping),
        (S::Starting | S::Running | S::Stopping | S::Unreachable { .. }, E::LinkLost(cause)) => {
            Ok(S::Unreachable { cause })
        }
        (S::Unreachable { .. }, E::Reconnected { ready: true }) => Ok(S::Running),
        (S::Unreachable { .. }, E::Reconnected { ready: false }) => Ok(S::Starting),
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
            S::Unreachable {
                cause: Unreachability::ConnectionLost,
            },
            S::Unreachable {
                cause: Unreachability::NotAnswering,
            },
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
            E::LinkLost(Unreachability::ConnectionLost),
            E::LinkLost(Unreachability::NotAnswering),
            E::LinkLost(Unreachability::CannotConnect),
            E::Reconnected { ready: true },
            E::Reconnected { ready: false },
        ]
    }

    /// The whole table, written out independently of `next`.
    fn expected(s: AgentState, e: Event) -> Option<AgentState> {
        let at_rest = matches!(s, S::Stopped | S::Exited { .. } | S::Failed | S::Lost);
        let live = matches!(s, S::Starting | S::Running);
        let backoff = matches!(s, S::Backoff { .. });
        let unreachable = matches!(s, S::Unreachable { .. });
        match e {
            E::Start if at_rest || backoff => Some(S::Starting),
            E::Ready if s == S::Starting => Some(S::Running),
            E::Exited { code, decision } if live || unreachable => Some(match decision {
                Decision::Stay => S::Exited { code },
                Decision::Restart { attempt, at_ms } => S::Backoff { attempt, at_ms },
                Decision::GiveUp => S::Failed,
            }),
            E::Exited { .. } | E::Gone if s == S::Stopping => Some(S::Stopped),
            E::Stop if live || unreachable || s == S::Stopping => Some(S::Stopping),
            E::Stop if backoff => Some(S::Stopped),
            E::Stop if at_rest => Some(s),
            E::BackoffElapsed if backoff => Some(S::Starting),
            E::Vanished if live || unreachable || s == S::Stopping => Some(S::Lost),
            E::LinkLost(cause) if live || unreachable || s == S::Stopping => {
                Some(S::Unreachable { cause })
            }
            E::Reconnected { ready: true } if unreachable => Some(S::Running),
            E::Reconnected { ready: false } if unreachable => Some(S::Starting),
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
        assert_eq!(
            with,
            [
                "starting",
                "running",
                "stopping",
                "unreachable",
                "unreachable"
            ]
        );
    }

    #[test]
    fn a_cut_link_makes_a_running_agent_unreachable_with_its_cause_until_it_is_back() {
        let mut s = next(S::Running, E::LinkLost(Unreachability::NotAnswering)).unwrap();
        assert_eq!(
            s,
            S::Unreachable {
                cause: Unreachability::NotAnswering
            }
        );
        assert_eq!(s.name(), "unreachable");
        // Trying again fails differently: the cause follows.
        s = next(s, E::LinkLost(Unreachability::CannotConnect)).unwrap();
        assert_eq!(
            s,
            S::Unreachable {
                cause: Unreachability::CannotConnect
            }
        );
        assert_eq!(next(s, E::Reconnected { ready: true }).unwrap(), S::Running);
        // One whose readiness probe had not passed yet is starting again, not running.
        assert_eq!(
            next(s, E::Reconnected { ready: false }).unwrap(),
            S::Starting
        );
        // An agent at rest is never unreachable: nothing of it runs to be reached.
        assert!(next(S::Stopped, E::LinkLost(Unreachability::ConnectionLost)).is_err());
        assert!(next(S::Running, E::Reconnected { ready: true }).is_err());
    }
}
