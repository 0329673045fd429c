//! What `berth up` makes of a process it started: whether it reached the condition its
//! dependents ask for ([`Condition`]), is still on its way, or can no longer get there — and
//! why, in words a person can act on ([`Shortfall`]).
//!
//! Which processes start at all, given how their dependencies turned out, is planned in
//! [`crate::deps`].

use std::fmt;
use std::time::Duration;

use crate::agent_state::AgentState;
use crate::duration;
use crate::probe::NotReady;
use crate::project::Condition;

/// Where a started process is, as far as `berth up` is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// On its way (starting, restarting after a crash, or being stopped by someone).
    Waiting,
    /// It reached what was wanted of it.
    Reached,
    /// It can no longer get there.
    Failed(Shortfall),
}

/// Why a process did not reach what was wanted of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shortfall {
    /// It could not be started at all.
    NotStarted { detail: String },
    /// It ended (`code`; `None`: by a signal) before it was `wanted`.
    Ended {
        code: Option<i32>,
        wanted: Condition,
    },
    /// Its readiness probe did not pass within the probe's own timeout: berth stopped it.
    ProbeTimedOut(NotReady),
    /// It kept crashing until its restart budget was spent.
    GaveUp { wanted: Condition },
    /// It vanished: its keeper is gone.
    Lost,
    /// Someone stopped it before it was `wanted`.
    Stopped { wanted: Condition },
    /// `berth up`'s overall timeout (`after`) passed while it was still on its way: berth
    /// stopped it.
    OutOfTime { wanted: Condition, after: Duration },
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shortfall::NotStarted { detail } => write!(f, "could not be started: {detail}"),
            Shortfall::Ended {
                code: Some(code),
                wanted,
            } => write!(
                f,
                "ended with exit code {code} before it was {}",
                wanted.as_str()
            ),
            Shortfall::Ended { code: None, wanted } => {
                write!(f, "was ended by a signal before it was {}", wanted.as_str())
            }
            Shortfall::ProbeTimedOut(not_ready) => write!(f, "{not_ready}; berth stopped it"),
            Shortfall::GaveUp { wanted } => write!(
                f,
                "kept failing before it was {}, until its restart budget was spent",
                wanted.as_str()
            ),
            Shortfall::Lost => f.write_str("vanished: its keeper is gone"),
            Shortfall::Stopped { wanted } => write!(
                f,
                "was stopped (not by berth up) before it was {}",
                wanted.as_str()
            ),
            Shortfall::OutOfTime { wanted, after } => write!(
                f,
                "was not {} within berth up's timeout of {}; berth stopped it",
                wanted.as_str(),
                duration::show(*after)
            ),
        }
    }
}

/// Whether a process in `state` reached `wanted`. `not_ready` is set when its readiness probe
/// gave up during this run: berth is stopping the process, and once nothing of it runs, that is
/// the failure, whatever state the stop left behind.
pub fn progress(wanted: Condition, state: AgentState, not_ready: Option<&NotReady>) -> Progress {
    use AgentState as S;
    use Condition as C;
    if let Some(not_ready) = not_ready {
        if state.has_process() {
            return Progress::Waiting;
        }
        return Progress::Failed(Shortfall::ProbeTimedOut(not_ready.clone()));
    }
    match (wanted, state) {
        (C::Started, S::Starting | S::Running | S::Exited { .. })
        | (C::Ready, S::Running)
        | (C::Completed, S::Exited { code: Some(0) }) => Progress::Reached,
        (C::Ready | C::Completed, S::Exited { code }) => {
            Progress::Failed(Shortfall::Ended { code, wanted })
        }
        (_, S::Failed) => Progress::Failed(Shortfall::GaveUp { wanted }),
        (_, S::Lost) => Progress::Failed(Shortfall::Lost),
        (_, S::Stopped) => Progress::Failed(Shortfall::Stopped { wanted }),
        (C::Ready | C::Completed, S::Starting)
        | (C::Completed, S::Running)
        | (_, S::Stopping | S::Backoff { .. } | S::Unreachable { .. }) => Progress::Waiting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::ProbeCheck;
    use AgentState as S;
    use Condition as C;

    const CONDITIONS: [Condition; 3] = [C::Started, C::Ready, C::Completed];

    fn states() -> Vec<AgentState> {
        vec![
            S::Stopped,
            S::Starting,
            S::Running,
            S::Stopping,
            S::Exited { code: Some(0) },
            S::Exited { code: Some(3) },
            S::Exited { code: None },
            S::Backoff {
                attempt: 1,
                at_ms: 5,
            },
            S::Failed,
            S::Lost,
            S::Unreachable {
                cause: crate::agent_state::Unreachability::NotAnswering,
            },
        ]
    }

    fn not_ready() -> NotReady {
        NotReady {
            check: ProbeCheck::Exec {
                command: "false".into(),
            },
            after: Duration::from_secs(2),
        }
    }

    /// The whole table, as `condition state -> outcome` lines.
    #[test]
    fn every_condition_in_every_state() {
        let mut table = String::new();
        for wanted in CONDITIONS {
            for state in states() {
                let p = match progress(wanted, state, None) {
                    Progress::Waiting => "waiting".to_string(),
                    Progress::Reached => "reached".to_string(),
                    Progress::Failed(why) => format!("failed: {why}"),
                };
                table += &format!("{} {state:?} -> {p}\n", wanted.as_str());
            }
        }
        let expected = "\
started Stopped -> failed: was stopped (not by berth up) before it was started
started Starting -> reached
started Running -> reached
started Stopping -> waiting
started Exited { code: Some(0) } -> reached
started Exited { code: Some(3) } -> reached
started Exited { code: None } -> reached
started Backoff { attempt: 1, at_ms: 5 } -> waiting
started Failed -> failed: kept failing before it was started, until its restart budget was spent
started Lost -> failed: vanished: its keeper is gone
started Unreachable { cause: NotAnswering } -> waiting
ready Stopped -> failed: was stopped (not by berth up) before it was ready
ready Starting -> waiting
ready Running -> reached
ready Stopping -> waiting
ready Exited { code: Some(0) } -> failed: ended with exit code 0 before it was ready
ready Exited { code: Some(3) } -> failed: ended with exit code 3 before it was ready
ready Exited { code: None } -> failed: was ended by a signal before it was ready
ready Backoff { attempt: 1, at_ms: 5 } -> waiting
ready Failed -> failed: kept failing before it was ready, until its restart budget was spent
ready Lost -> failed: vanished: its keeper is gone
ready Unreachable { cause: NotAnswering } -> waiting
completed Stopped -> failed: was stopped (not by berth up) before it was completed
completed Starting -> waiting
completed Running -> waiting
completed Stopping -> waiting
completed Exited { code: Some(0) } -> reached
completed Exited { code: Some(3) } -> failed: ended with exit code 3 before it was completed
completed Exited { code: None } -> failed: was ended by a signal before it was completed
completed Backoff { attempt: 1, at_ms: 5 } -> waiting
completed Failed -> failed: kept failing before it was completed, until its restart budget was spent
completed Lost -> failed: vanished: its keeper is gone
completed Unreachable { cause: NotAnswering } -> waiting
";
        assert_eq!(table, expected);
    }

    #[test]
    fn a_probe_that_gave_up_is_the_failure_once_the_stop_it_caused_is_over() {
        let wanted = "its readiness probe exec:false timed out: it did not pass within 2s; \
                      berth stopped it";
        for condition in CONDITIONS {
            for state in states() {
                let expected = if state.has_process() {
                    Progress::Waiting
                } else {
                    Progress::Failed(Shortfall::ProbeTimedOut(not_ready()))
                };
                assert_eq!(
                    progress(condition, state, Some(&not_ready())),
                    expected,
                    "{condition:?} {state:?}"
                );
            }
        }
        assert_eq!(Shortfall::ProbeTimedOut(not_ready()).to_string(), wanted);
    }

    #[test]
    fn failures_found_outside_the_state_say_what_happened() {
        assert_eq!(
            Shortfall::OutOfTime {
                wanted: C::Ready,
                after: Duration::from_millis(1500)
            }
            .to_string(),
            "was not ready within berth up's timeout of 1.5s; berth stopped it"
        );
        assert_eq!(
            Shortfall::NotStarted {
                detail: "no such file".into()
            }
            .to_string(),
            "could not be started: no such file"
        );
    }
}
