//! Where a pairing is ([`State`]), what can happen to it ([`Input`]), what the daemon must do
//! ([`Action`]) and the pure transition function [`next`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::blocker::Blocker;
use super::notice::{Cause, Notice};
use super::steps::{StartStep, Step, StopStep, Undo, rollback_plan};
use super::text::plural;
use crate::InvalidTransition;

/// What an active pairing's sync is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    /// Both sides agree.
    Idle,
    /// Changes are waiting (debounce, or a full reconcile is due).
    Pending,
    /// A round is running.
    Syncing,
}

impl Activity {
    pub fn name(self) -> &'static str {
        match self {
            Activity::Idle => "idle",
            Activity::Pending => "pending",
            Activity::Syncing => "syncing",
        }
    }
}

/// Why a stop sequence runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopFrom {
    /// `berth pair stop` while active: all four steps, ending with the snapshot restored.
    Active,
    /// `berth pair OTHER` while active: `final_sync` and `clean_checkout`, then a start with the
    /// other agent that carries the snapshot (and the original branch) over.
    Switch,
}

/// Why a start is being rolled back.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum RollbackCause {
    /// `berth pair stop` while starting.
    StopRequested,
    /// A step failed.
    Failed { step: StartStep, failure: Failure },
    /// The daemon died during the start.
    Crashed { step: StartStep },
}

/// Why a step failed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Failure {
    /// Validation found blockers (only `validate` reports these).
    Blocked { blockers: BTreeSet<Blocker> },
    /// A pausing cause was found (the user switched branch during the final sync, a write
    /// failed with ENOSPC, an unexpected error …).
    Notice { notice: Notice },
}

impl Failure {
    pub fn message(&self) -> String {
        match self {
            Failure::Blocked { blockers } => Blocker::report(blockers),
            Failure::Notice { notice } => notice.message(),
        }
    }
}

/// Where a pairing is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum State {
    /// Not paired.
    Off,
    /// Step `step` of a start runs (or is next). `carried`: a switch carried the snapshot over.
    /// `stop_requested`: a stop came while the step ran; it is honoured when the step reports.
    Starting {
        step: StartStep,
        carried: bool,
        stop_requested: bool,
    },
    /// A start is being undone; `undo` runs (or is next) from `rollback_plan(through, carried)`.
    RollingBack {
        through: StartStep,
        carried: bool,
        undo: Undo,
        cause: RollbackCause,
    },
    /// Syncing both ways.
    Active { activity: Activity },
    /// Not syncing until every notice is cleared.
    Paused { notices: BTreeSet<Notice> },
    /// Step `step` of a stop runs (or is next).
    Stopping { step: StopStep, from: StopFrom },
}

impl State {
    /// The first state of a start.
    pub fn starting(carried: bool) -> State {
        State::Starting {
            step: StartStep::Validate,
            carried,
            stop_requested: false,
        }
    }

    /// The stable name of the state.
    pub fn name(&self) -> &'static str {
        match self {
            State::Off => "off",
            State::Starting { .. } => "starting",
            State::RollingBack { .. } => "rolling_back",
            State::Active { .. } => "active",
            State::Paused { .. } => "paused",
            State::Stopping { .. } => "stopping",
        }
    }

    /// The step this state carries out, if any.
    pub fn step(&self) -> Option<Step> {
        match self {
            State::Starting { step, .. } => Some(Step::Start(*step)),
            State::RollingBack { undo, .. } => Some(Step::Undo(*undo)),
            State::Stopping { step, .. } => Some(Step::Stop(*step)),
            State::Off | State::Active { .. } | State::Paused { .. } => None,
        }
    }

    /// Whether a transition (start, rollback, stop) is under way: another start is
    /// `pairing_busy`.
    pub fn in_transition(&self) -> bool {
        self.step().is_some()
    }

    /// One line for `pair status`: `starting (mirror_branch)`, `active (idle)`, `paused (2
    /// notices)`.
    pub fn describe(&self) -> String {
        match self {
            State::Off => "off".to_string(),
            State::Starting { step, .. } => format!("starting ({})", step.name()),
            State::RollingBack { undo, .. } => format!("rolling back ({})", undo.name()),
            State::Active { activity } => format!("active ({})", activity.name()),
            State::Paused { notices } => format!(
                "paused ({})",
                plural(notices.len() as u64, "notice", "notices")
            ),
            State::Stopping { step, .. } => format!("stopping ({})", step.name()),
        }
    }
}

/// What can happen to a pairing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// `berth pair NAME` while not paired.
    StartRequested,
    /// `berth pair OTHER` while paired with another agent. The daemon checks OTHER's blockers
    /// (read-only) before feeding this.
    SwitchRequested,
    /// `berth pair stop`.
    StopRequested,
    /// The step finished.
    StepDone(Step),
    /// The step failed.
    StepFailed(Step, Failure),
    /// A pausing cause was found (replaces a notice of the same cause).
    Raise(Notice),
    /// A cause is gone.
    Clear(Cause),
    /// The sync loop's activity changed.
    Activity(Activity),
}

/// A request refused in the current state; nothing changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// A start, stop or rollback is under way (the `pairing_busy` blocker).
    Busy,
    /// A start while already paired with this agent.
    AlreadyPaired,
    /// A stop while not paired.
    NotPaired,
    /// A switch while paused: nothing can be synced, so the checkout cannot be cleaned safely.
    PausedCannotSwitch,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Busy => "pairing_busy",
            Refusal::AlreadyPaired => "already_paired",
            Refusal::NotPaired => "not_paired",
            Refusal::PausedCannotSwitch => "paused_cannot_switch",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refusal::Busy => {
                "another pairing transition is in progress for this project — wait for it to \
                 finish (`berth pair status`) and try again"
            }
            Refusal::AlreadyPaired => "already paired with this agent — see `berth pair status`",
            Refusal::NotPaired => "not paired — nothing to stop",
            Refusal::PausedCannotSwitch => {
                "pairing is paused, so your checkout cannot be synced and cleaned before \
                 switching — resolve the notices in `berth pair status`, or run `berth pair \
                 stop` first"
            }
        }
    }
}

/// How a pairing ended (it is `off` now).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// Stopped from active: the checkout is on the original branch with the snapshot restored.
    Stopped,
    /// Stopped from paused: the checkout and the snapshot were left exactly as they are.
    LeftAsIs,
    /// A start was undone completely: nothing changed.
    RolledBack { cause: RollbackCause },
    /// A stop step failed: the rest was not attempted, the snapshot is kept.
    StopIncomplete { step: StopStep, failure: Failure },
    /// An undo step failed: the rest was not attempted, the snapshot is kept.
    RollbackIncomplete { undo: Undo, failure: Failure },
}

impl Outcome {
    /// Whether the user's pre-pairing state is back in the checkout (otherwise it is in the
    /// snapshot, if there was one).
    pub fn restored(&self) -> bool {
        matches!(self, Outcome::Stopped | Outcome::RolledBack { .. })
    }
}

/// What the daemon must do after a transition, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// Carry out this step (the intent is journaled first), then feed `StepDone`/`StepFailed`.
    Run { step: Step },
    /// Stop applying changes (keep watching, so causes can be seen to clear).
    PauseSync,
    /// Apply changes again.
    ResumeSync,
    /// Reconcile both sides completely (after a pause, or after a restart).
    FullReconcile,
    /// Check every pausing cause on both sides now; raise what is found, then clear
    /// [`Cause::Revalidating`] and every cause found gone.
    Revalidate,
    /// Stop watching both sides (a paused pairing that ends).
    StopWatching,
    /// The old pairing ends here; a new pairing (new id) with the other agent takes over its
    /// snapshot and original branch.
    Handover,
    /// Tell the requester why nothing happened.
    Refuse { refusal: Refusal },
    /// The pairing is over: record the outcome and report it.
    Finish { outcome: Outcome },
}

/// A new state and what to do to get there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub state: State,
    pub actions: Vec<Action>,
}

impl Transition {
    pub(super) fn to(state: State, actions: Vec<Action>) -> Transition {
        Transition { state, actions }
    }

    fn stay(state: &State) -> Transition {
        Transition::to(state.clone(), vec![])
    }

    fn refuse(state: &State, refusal: Refusal) -> Transition {
        Transition::to(state.clone(), vec![Action::Refuse { refusal }])
    }

    /// Enter `state`; if it carries a step, run it.
    pub(super) fn run(state: State) -> Transition {
        let actions = state
            .step()
            .map(|step| vec![Action::Run { step }])
            .unwrap_or_default();
        Transition::to(state, actions)
    }
}

/// Starts undoing `validate..=through`; straight to `off` when there is nothing to undo.
pub(super) fn roll_back(through: StartStep, carried: bool, cause: RollbackCause) -> Transition {
    match rollback_plan(through, carried).first() {
        Some(&undo) => Transition::run(State::RollingBack {
            through,
            carried,
            undo,
            cause,
        }),
        None => finish(Outcome::RolledBack { cause }),
    }
}

pub(super) fn finish(outcome: Outcome) -> Transition {
    Transition::to(State::Off, vec![Action::Finish { outcome }])
}

pub(super) fn stopping(step: StopStep, from: StopFrom) -> Transition {
    Transition::run(State::Stopping { step, from })
}

/// After undo `undo` of `rollback_plan(through, carried)` is done: the next one, or `off`.
pub(super) fn after_undo(
    through: StartStep,
    carried: bool,
    undo: Undo,
    cause: &RollbackCause,
) -> Transition {
    let plan = rollback_plan(through, carried);
    let after = plan
        .iter()
        .position(|u| *u == undo)
        .and_then(|i| plan.get(i + 1));
    match after {
        Some(&next) => Transition::run(State::RollingBack {
            through,
            carried,
            undo: next,
            cause: cause.clone(),
        }),
        None => finish(Outcome::RolledBack {
            cause: cause.clone(),
        }),
    }
}

/// After stop step `step` is done: the next one, the handover of a switch, or `off`.
pub(super) fn after_stop(step: StopStep, from: StopFrom) -> Transition {
    match (step, from) {
        (StopStep::CleanCheckout, StopFrom::Switch) => Transition::to(
            State::starting(true),
            vec![
                Action::Handover,
                Action::Run {
                    step: Step::Start(StartStep::Validate),
                },
            ],
        ),
        _ => match step.next() {
            Some(next) => stopping(next, from),
            None => finish(Outcome::Stopped),
        },
    }
}

fn resumed() -> Transition {
    Transition::to(
        State::Active {
            activity: Activity::Pending,
        },
        vec![Action::ResumeSync, Action::FullReconcile],
    )
}

/// The transition function. Requests (start, switch, stop) are answered in every state (a
/// refusal keeps the state); step reports must name the step the state carries out; notices
/// and activity reports outside `active`/`paused` are stale and ignored (the steps check their
/// own preconditions, and entering `active` re-checks everything).
pub fn next(state: &State, input: &Input) -> Result<Transition, InvalidTransition> {
    use Input as I;
    use State as S;
    let invalid = || InvalidTransition::new(state, input);
    Ok(match (state, input) {
        // -- requests ----------------------------------------------------------------------
        (S::Off, I::StartRequested) => Transition::run(State::starting(false)),
        (S::Off, I::StopRequested) => Transition::refuse(state, Refusal::NotPaired),
        (S::Off, I::SwitchRequested) => return Err(invalid()),
        (S::Starting { .. } | S::RollingBack { .. } | S::Stopping { .. }, I::StartRequested) => {
            Transition::refuse(state, Refusal::Busy)
        }
        (S::Starting { .. } | S::RollingBack { .. } | S::Stopping { .. }, I::SwitchRequested) => {
            Transition::refuse(state, Refusal::Busy)
        }
        (S::Active { .. } | S::Paused { .. }, I::StartRequested) => {
            Transition::refuse(state, Refusal::AlreadyPaired)
        }
        (
            S::Starting {
                step,
                carried,
                stop_requested: _,
            },
            I::StopRequested,
        ) => Transition::to(
            S::Starting {
                step: *step,
                carried: *carried,
                stop_requested: true,
            },
            vec![],
        ),
        // Already on the way to `off`.
        (S::RollingBack { .. } | S::Stopping { .. }, I::StopRequested) => Transition::stay(state),
        (S::Active { .. }, I::StopRequested) => stopping(StopStep::FinalSync, StopFrom::Active),
        (S::Active { .. }, I::SwitchRequested) => stopping(StopStep::FinalSync, StopFrom::Switch),
        (S::Paused { .. }, I::StopRequested) => Transition::to(
            S::Off,
            vec![
                Action::StopWatching,
                Action::Finish {
                    outcome: Outcome::LeftAsIs,
                },
            ],
        ),
        (S::Paused { .. }, I::SwitchRequested) => {
            Transition::refuse(state, Refusal::PausedCannotSwitch)
        }

        // -- step reports ------------------------------------------------------------------
        (
            S::Starting {
                step,
                carried,
                stop_requested,
            },
            I::StepDone(Step::Start(done)),
        ) if done == step => {
            if *stop_requested {
                roll_back(*step, *carried, RollbackCause::StopRequested)
            } else {
                match step.next() {
                    Some(next) => Transition::run(S::Starting {
                        step: next,
                        carried: *carried,
                        stop_requested: false,
                    }),
                    None => Transition::to(
                        S::Active {
                            activity: Activity::Idle,
                        },
                        vec![],
                    ),
                }
            }
        }
        (S::Starting { step, carried, .. }, I::StepFailed(Step::Start(failed), failure))
            if failed == step =>
        {
            roll_back(
                *step,
                *carried,
                RollbackCause::Failed {
                    step: *step,
                    failure: failure.clone(),
                },
            )
        }
        (
            S::RollingBack {
                through,
                carried,
                undo,
                cause,
            },
            I::StepDone(Step::Undo(done)),
        ) if done == undo => after_undo(*through, *carried, *undo, cause),
        (S::RollingBack { undo, .. }, I::StepFailed(Step::Undo(failed), failure))
            if failed == undo =>
        {
            finish(Outcome::RollbackIncomplete {
                undo: *undo,
                failure: failure.clone(),
            })
        }
        (S::Stopping { step, from }, I::StepDone(Step::Stop(done))) if done == step => {
            after_stop(*step, *from)
        }
        // The final sync could not finish: nothing has changed yet, so the pairing stays, paused
        // by what stopped it; a later stop from paused changes nothing.
        (
            S::Stopping {
                step: StopStep::FinalSync,
                ..
            },
            I::StepFailed(Step::Stop(StopStep::FinalSync), failure),
        ) => {
            let notice = match failure {
                Failure::Notice { notice } => notice.clone(),
                Failure::Blocked { blockers } => Notice::UnexpectedError {
                    message: Blocker::report(blockers),
                },
            };
            Transition::to(
                S::Paused {
                    notices: BTreeSet::from([notice]),
                },
                vec![Action::PauseSync],
            )
        }
        (S::Stopping { step, .. }, I::StepFailed(Step::Stop(failed), failure))
            if failed == step =>
        {
            finish(Outcome::StopIncomplete {
                step: *step,
                failure: failure.clone(),
            })
        }
        (_, I::StepDone(_) | I::StepFailed(..)) => return Err(invalid()),

        // -- notices -----------------------------------------------------------------------
        (S::Active { .. }, I::Raise(notice)) => Transition::to(
            S::Paused {
                notices: BTreeSet::from([notice.clone()]),
            },
            vec![Action::PauseSync],
        ),
        (S::Paused { notices }, I::Raise(notice)) => {
            let mut notices = notices.clone();
            notices.retain(|n| n.cause() != notice.cause());
            notices.insert(notice.clone());
            Transition::to(S::Paused { notices }, vec![])
        }
        (S::Paused { notices }, I::Clear(cause)) => {
            let mut notices = notices.clone();
            notices.retain(|n| n.cause() != *cause);
            if notices.is_empty() {
                resumed()
            } else {
                Transition::to(S::Paused { notices }, vec![])
            }
        }
        (_, I::Raise(_) | I::Clear(_)) => Transition::stay(state),

        // -- activity ----------------------------------------------------------------------
        (S::Active { .. }, I::Activity(activity)) => Transition::to(
            S::Active {
                activity: *activity,
            },
            vec![],
        ),
        (_, I::Activity(_)) => Transition::stay(state),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairing::test_support::*;
    use crate::pairing::{Operation, Side};
    use Input as I;
    use State as S;

    /// The whole table, written out independently of `next`.
    fn expected(s: &State, i: &Input) -> Option<Transition> {
        let refuse = |r| Some(same(s, vec![Action::Refuse { refusal: r }]));
        match (s, i) {
            (S::Off, I::StartRequested) => Some(run(S::Starting {
                step: StartStep::Validate,
                carried: false,
                stop_requested: false,
            })),
            (S::Off, I::StopRequested) => refuse(Refusal::NotPaired),
            (S::Off, I::SwitchRequested) => None,
            (
                S::Starting { .. } | S::RollingBack { .. } | S::Stopping { .. },
                I::StartRequested | I::SwitchRequested,
            ) => refuse(Refusal::Busy),
            (S::Active { .. } | S::Paused { .. }, I::StartRequested) => {
                refuse(Refusal::AlreadyPaired)
            }
            (S::Paused { .. }, I::SwitchRequested) => refuse(Refusal::PausedCannotSwitch),
            (S::Active { .. }, I::SwitchRequested) => Some(run(S::Stopping {
                step: StopStep::FinalSync,
                from: StopFrom::Switch,
            })),
            (S::Active { .. }, I::StopRequested) => Some(run(S::Stopping {
                step: StopStep::FinalSync,
                from: StopFrom::Active,
            })),
            (S::Paused { .. }, I::StopRequested) => Some(Transition {
                state: S::Off,
                actions: vec![
                    Action::StopWatching,
                    Action::Finish {
                        outcome: Outcome::LeftAsIs,
                    },
                ],
            }),
            (S::Starting { step, carried, .. }, I::StopRequested) => Some(same(
                &S::Starting {
                    step: *step,
                    carried: *carried,
                    stop_requested: true,
                },
                vec![],
            )),
            (S::RollingBack { .. } | S::Stopping { .. }, I::StopRequested) => Some(same(s, vec![])),

            (
                S::Starting {
                    step,
                    carried,
                    stop_requested,
                },
                I::StepDone(Step::Start(d)),
            ) if d == step => Some(match (stop_requested, step) {
                (true, _) => rb(*step, *carried, RollbackCause::StopRequested),
                (false, StartStep::BeginSync) => same(
                    &S::Active {
                        activity: Activity::Idle,
                    },
                    vec![],
                ),
                (false, _) => run(S::Starting {
                    step: StartStep::ALL[StartStep::ALL.iter().position(|x| x == step)? + 1],
                    carried: *carried,
                    stop_requested: false,
                }),
            }),
            (S::Starting { step, carried, .. }, I::StepFailed(Step::Start(f), failure))
                if f == step =>
            {
                Some(rb(
                    *step,
                    *carried,
                    RollbackCause::Failed {
                        step: *step,
                        failure: failure.clone(),
                    },
                ))
            }
            (
                S::RollingBack {
                    through,
                    carried,
                    undo,
                    cause,
                },
                I::StepDone(Step::Undo(d)),
            ) if d == undo => {
                let p = plan(*through, *carried);
                let at = p.iter().position(|u| u == undo)?;
                Some(match p.get(at + 1) {
                    Some(&u) => run(S::RollingBack {
                        through: *through,
                        carried: *carried,
                        undo: u,
                        cause: cause.clone(),
                    }),
                    None => fin(Outcome::RolledBack {
                        cause: cause.clone(),
                    }),
                })
            }
            (S::RollingBack { undo, .. }, I::StepFailed(Step::Undo(f), failure)) if f == undo => {
                Some(fin(Outcome::RollbackIncomplete {
                    undo: *undo,
                    failure: failure.clone(),
                }))
            }
            (S::Stopping { step, from }, I::StepDone(Step::Stop(d))) if d == step => {
                Some(match (step, from) {
                    (StopStep::FinalSync, _) => run(S::Stopping {
                        step: StopStep::CleanCheckout,
                        from: *from,
                    }),
                    (StopStep::CleanCheckout, StopFrom::Active) => run(S::Stopping {
                        step: StopStep::SwitchBack,
                        from: *from,
                    }),
                    (StopStep::CleanCheckout, StopFrom::Switch) => same(
                        &S::Starting {
                            step: StartStep::Validate,
                            carried: true,
                            stop_requested: false,
                        },
                        vec![
                            Action::Handover,
                            Action::Run {
                                step: Step::Start(StartStep::Validate),
                            },
                        ],
                    ),
                    (StopStep::SwitchBack, _) => run(S::Stopping {
                        step: StopStep::RestoreSnapshot,
                        from: *from,
                    }),
                    (StopStep::RestoreSnapshot, _) => fin(Outcome::Stopped),
                })
            }
            (
                S::Stopping {
                    step: StopStep::FinalSync,
                    ..
                },
                I::StepFailed(Step::Stop(StopStep::FinalSync), failure),
            ) => {
                let notice = match failure {
                    Failure::Notice { notice } => notice.clone(),
                    Failure::Blocked { .. } => Notice::UnexpectedError {
                        message: failure.message(),
                    },
                };
                Some(same(
                    &S::Paused {
                        notices: BTreeSet::from([notice]),
                    },
                    vec![Action::PauseSync],
                ))
            }
            (S::Stopping { step, .. }, I::StepFailed(Step::Stop(f), failure)) if f == step => {
                Some(fin(Outcome::StopIncomplete {
                    step: *step,
                    failure: failure.clone(),
                }))
            }
            (_, I::StepDone(_) | I::StepFailed(..)) => None,

            (S::Active { .. }, I::Raise(n)) => Some(same(
                &S::Paused {
                    notices: BTreeSet::from([n.clone()]),
                },
                vec![Action::PauseSync],
            )),
            (S::Paused { notices }, I::Raise(n)) => {
                let mut want: BTreeSet<Notice> = notices
                    .iter()
                    .filter(|x| x.cause() != n.cause())
                    .cloned()
                    .collect();
                want.insert(n.clone());
                Some(same(&S::Paused { notices: want }, vec![]))
            }
            (S::Paused { notices }, I::Clear(c)) => {
                let left: BTreeSet<Notice> = notices
                    .iter()
                    .filter(|x| x.cause() != *c)
                    .cloned()
                    .collect();
                Some(if left.is_empty() {
                    same(
                        &S::Active {
                            activity: Activity::Pending,
                        },
                        vec![Action::ResumeSync, Action::FullReconcile],
                    )
                } else {
                    same(&S::Paused { notices: left }, vec![])
                })
            }
            (S::Active { .. }, I::Activity(a)) => Some(same(&S::Active { activity: *a }, vec![])),
            (_, I::Raise(_) | I::Clear(_) | I::Activity(_)) => Some(same(s, vec![])),
        }
    }

    #[test]
    fn transition_table_is_exhaustive() {
        let (states, inputs) = (states(), inputs());
        assert!(states.len() > 60 && inputs.len() > 40);
        for s in &states {
            for i in &inputs {
                assert_eq!(next(s, i).ok(), expected(s, i), "{s:?} + {i:?}");
            }
        }
    }

    #[test]
    fn entering_a_state_with_a_step_always_runs_that_step() {
        for s in states() {
            for i in inputs() {
                let Ok(t) = next(&s, &i) else { continue };
                if t.state == s || matches!(s, S::Starting { .. }) && i == I::StopRequested {
                    continue;
                }
                if let Some(step) = t.state.step() {
                    assert_eq!(
                        t.actions.last(),
                        Some(&Action::Run { step }),
                        "{s:?} + {i:?}"
                    );
                }
                let finished = t.actions.iter().any(|a| matches!(a, Action::Finish { .. }));
                assert_eq!(finished, t.state == S::Off, "{s:?} + {i:?}");
            }
        }
    }

    /// Drives a whole start where step `failing` fails; returns the undo steps run.
    fn start_failing_at(failing: StartStep) -> (Vec<Undo>, Outcome) {
        let mut t = next(&S::Off, &I::StartRequested).unwrap();
        let mut undone = Vec::new();
        loop {
            let Some(Action::Run { step }) = t.actions.last().cloned() else {
                match t.actions.last() {
                    Some(Action::Finish { outcome }) => return (undone, outcome.clone()),
                    other => panic!("{other:?}"),
                }
            };
            let input = match step {
                Step::Start(s) if s == failing => I::StepFailed(step, fail()),
                Step::Undo(u) => {
                    undone.push(u);
                    I::StepDone(step)
                }
                _ => I::StepDone(step),
            };
            t = next(&t.state, &input).unwrap();
        }
    }

    #[test]
    fn a_failure_at_any_start_step_undoes_every_step_up_to_it_in_reverse() {
        for failing in StartStep::ALL {
            let (undone, outcome) = start_failing_at(failing);
            assert_eq!(undone, plan(failing, false), "{failing:?}");
            assert_eq!(
                outcome,
                Outcome::RolledBack {
                    cause: RollbackCause::Failed {
                        step: failing,
                        failure: fail()
                    }
                }
            );
            assert!(outcome.restored());
        }
    }

    #[test]
    fn blockers_end_the_start_at_once_with_every_blocker() {
        let blockers = BTreeSet::from([
            Blocker::OperationInProgress {
                operation: Operation::Rebase,
            },
            Blocker::UserAhead {
                agent: "fixer".into(),
                commits: 2,
            },
        ]);
        let failure = Failure::Blocked { blockers };
        let t = next(
            &State::starting(false),
            &I::StepFailed(Step::Start(StartStep::Validate), failure.clone()),
        )
        .unwrap();
        assert_eq!(t.state, S::Off);
        let [Action::Finish { outcome }] = t.actions.as_slice() else {
            panic!("{t:?}")
        };
        assert_eq!(
            outcome,
            &Outcome::RolledBack {
                cause: RollbackCause::Failed {
                    step: StartStep::Validate,
                    failure: failure.clone()
                }
            }
        );
        let msg = failure.message();
        assert_eq!(msg.lines().count(), 2);
        assert!(msg.lines().all(|l| l.contains(" — ")), "{msg}");
    }

    #[test]
    fn a_stop_during_a_start_waits_for_the_step_then_rolls_back() {
        let s = S::Starting {
            step: StartStep::CopyAgentFiles,
            carried: false,
            stop_requested: false,
        };
        let t = next(&s, &I::StopRequested).unwrap();
        assert!(t.actions.is_empty(), "the running step is not interrupted");
        let t = next(
            &t.state,
            &I::StepDone(Step::Start(StartStep::CopyAgentFiles)),
        )
        .unwrap();
        assert_eq!(
            t.state,
            S::RollingBack {
                through: StartStep::CopyAgentFiles,
                carried: false,
                undo: Undo::CleanCheckout,
                cause: RollbackCause::StopRequested
            }
        );
    }

    #[test]
    fn a_happy_start_pause_resume_and_stop() {
        let mut s = S::Off;
        let mut t = next(&s, &I::StartRequested).unwrap();
        let mut ran = Vec::new();
        while let Some(Action::Run { step }) = t.actions.last().cloned() {
            ran.push(step);
            s = t.state;
            t = next(&s, &I::StepDone(step)).unwrap();
        }
        assert_eq!(
            ran,
            StartStep::ALL.map(Step::Start).to_vec(),
            "every start step, in order"
        );
        assert_eq!(
            t.state,
            S::Active {
                activity: Activity::Idle
            }
        );
        s = next(&t.state, &I::Activity(Activity::Syncing))
            .unwrap()
            .state;
        let t = next(&s, &I::Raise(n_user())).unwrap();
        assert_eq!(t.actions, [Action::PauseSync]);
        // The user moves on to another branch, then detaches: one notice for their branch.
        let t = next(&t.state, &I::Raise(n_user_detached())).unwrap();
        let t = next(&t.state, &I::Raise(n_disk())).unwrap();
        assert_eq!(
            t.state,
            S::Paused {
                notices: BTreeSet::from([n_user_detached(), n_disk()])
            }
        );
        let t = next(&t.state, &I::Clear(Cause::UserBranch)).unwrap();
        assert!(matches!(t.state, S::Paused { .. }) && t.actions.is_empty());
        let t = next(&t.state, &I::Clear(Cause::Write(Side::Agent))).unwrap();
        assert_eq!(
            t.state,
            S::Active {
                activity: Activity::Pending
            }
        );
        assert_eq!(t.actions, [Action::ResumeSync, Action::FullReconcile]);
        let mut t = next(&t.state, &I::StopRequested).unwrap();
        let mut ran = Vec::new();
        while let Some(Action::Run { step }) = t.actions.last().cloned() {
            ran.push(step);
            t = next(&t.state, &I::StepDone(step)).unwrap();
        }
        assert_eq!(ran, StopStep::ALL.map(Step::Stop).to_vec());
        assert_eq!(
            t.actions,
            [Action::Finish {
                outcome: Outcome::Stopped
            }]
        );
    }

    #[test]
    fn a_switch_syncs_and_cleans_then_starts_the_other_agent_carrying_the_snapshot() {
        let mut t = next(
            &S::Active {
                activity: Activity::Idle,
            },
            &I::SwitchRequested,
        )
        .unwrap();
        let mut ran = Vec::new();
        let mut handed_over = false;
        while let Some(Action::Run { step }) = t.actions.last().cloned() {
            handed_over |= t.actions.contains(&Action::Handover);
            ran.push(step.qualified_name());
            t = next(&t.state, &I::StepDone(step)).unwrap();
        }
        assert!(handed_over);
        assert_eq!(
            ran,
            [
                "stop.final_sync",
                "stop.clean_checkout",
                "start.validate",
                "start.snapshot",
                "start.mirror_branch",
                "start.switch_checkout",
                "start.copy_agent_files",
                "start.begin_sync"
            ]
        );
        assert!(matches!(t.state, S::Active { .. }));
        // A carried start that fails goes all the way back to the user's own state.
        let s = S::Starting {
            step: StartStep::MirrorBranch,
            carried: true,
            stop_requested: false,
        };
        let t = next(
            &s,
            &I::StepFailed(Step::Start(StartStep::MirrorBranch), fail()),
        )
        .unwrap();
        assert_eq!(t.state.step(), Some(Step::Undo(Undo::RestoreMirror)));
    }

    #[test]
    fn stop_failures_keep_the_snapshot_and_a_final_sync_failure_pauses() {
        let s = S::Stopping {
            step: StopStep::FinalSync,
            from: StopFrom::Active,
        };
        let t = next(&s, &I::StepFailed(Step::Stop(StopStep::FinalSync), fail())).unwrap();
        assert_eq!(
            t.state,
            S::Paused {
                notices: BTreeSet::from([n_disk()])
            }
        );
        // … and stopping from there leaves everything as it is.
        let t = next(&t.state, &I::StopRequested).unwrap();
        assert_eq!(
            t.actions.last(),
            Some(&Action::Finish {
                outcome: Outcome::LeftAsIs
            })
        );
        let s = S::Stopping {
            step: StopStep::RestoreSnapshot,
            from: StopFrom::Active,
        };
        let t = next(
            &s,
            &I::StepFailed(Step::Stop(StopStep::RestoreSnapshot), fail()),
        )
        .unwrap();
        let [Action::Finish { outcome }] = t.actions.as_slice() else {
            panic!()
        };
        assert!(!outcome.restored());
        assert!(!Outcome::LeftAsIs.restored());
    }

    #[test]
    fn a_final_sync_that_timed_out_pauses_until_syncing_answers_and_a_second_stop_changes_nothing()
    {
        let s = S::Stopping {
            step: StopStep::FinalSync,
            from: StopFrom::Active,
        };
        let timed_out = Failure::Notice {
            notice: n_timed_out(),
        };
        let t = next(
            &s,
            &I::StepFailed(Step::Stop(StopStep::FinalSync), timed_out),
        )
        .unwrap();
        assert_eq!(
            t.state,
            S::Paused {
                notices: BTreeSet::from([n_timed_out()])
            }
        );
        assert_eq!(
            t.actions,
            [Action::PauseSync],
            "no step runs: nothing changes"
        );
        // Stopping again before syncing answers: both trees and the snapshot stay as they are.
        let again = next(&t.state, &I::StopRequested).unwrap();
        assert_eq!(
            again.actions,
            [
                Action::StopWatching,
                Action::Finish {
                    outcome: Outcome::LeftAsIs
                }
            ]
        );
        assert!(!Outcome::LeftAsIs.restored());
        // Syncing answered again: active after a full reconcile, so a stop runs every step.
        let back = next(&t.state, &I::Clear(Cause::SyncUnanswered)).unwrap();
        assert_eq!(back.actions, [Action::ResumeSync, Action::FullReconcile]);
        let stop = next(&back.state, &I::StopRequested).unwrap();
        assert_eq!(stop.state.step(), Some(Step::Stop(StopStep::FinalSync)));
    }

    #[test]
    fn a_lost_connection_pauses_until_it_is_back_then_a_full_reconcile_carries_both_sides() {
        let active = S::Active {
            activity: Activity::Syncing,
        };
        let lost = next(&active, &I::Raise(n_link())).unwrap();
        assert_eq!(
            lost.state,
            S::Paused {
                notices: BTreeSet::from([n_link()])
            }
        );
        assert_eq!(lost.actions, [Action::PauseSync]);
        // Lost again (another try failed): still paused, nothing more to do.
        let again = next(&lost.state, &I::Raise(n_link())).unwrap();
        assert_eq!((&again.state, again.actions.len()), (&lost.state, 0));
        // Another cause meanwhile: the link back does not resume while it is held.
        let both = next(&lost.state, &I::Raise(n_user())).unwrap();
        let back = next(&both.state, &I::Clear(Cause::Link)).unwrap();
        assert_eq!(
            back.state,
            S::Paused {
                notices: BTreeSet::from([n_user()])
            }
        );
        assert!(!back.actions.contains(&Action::FullReconcile));
        // Back, alone: active, with a full reconcile that carries what both sides changed.
        let back = next(&lost.state, &I::Clear(Cause::Link)).unwrap();
        assert!(matches!(back.state, S::Active { .. }), "{:?}", back.state);
        assert_eq!(back.actions, [Action::ResumeSync, Action::FullReconcile]);
        // A stop while it is lost changes nothing in either tree and keeps the snapshot.
        let stop = next(&lost.state, &I::StopRequested).unwrap();
        assert!(stop.actions.contains(&Action::Finish {
            outcome: Outcome::LeftAsIs
        }));
    }

    #[test]
    fn a_report_for_another_step_is_invalid() {
        let s = S::Starting {
            step: StartStep::Snapshot,
            carried: false,
            stop_requested: false,
        };
        let err = next(&s, &I::StepDone(Step::Start(StartStep::Validate))).unwrap_err();
        assert!(err.to_string().contains("Validate"), "{err}");
        assert!(next(&S::Off, &I::SwitchRequested).is_err());
    }

    #[test]
    fn refusals_and_states_describe_themselves() {
        let codes: BTreeSet<_> = [
            Refusal::Busy,
            Refusal::AlreadyPaired,
            Refusal::NotPaired,
            Refusal::PausedCannotSwitch,
        ]
        .iter()
        .map(|r| (r.code(), r.message()))
        .collect();
        assert_eq!(codes.len(), 4);
        assert_eq!(Refusal::Busy.code(), "pairing_busy");
        assert_eq!(State::starting(false).describe(), "starting (validate)");
        assert_eq!(
            S::Paused {
                notices: BTreeSet::from([n_user(), n_disk()])
            }
            .describe(),
            "paused (2 notices)"
        );
        for s in states() {
            assert_eq!(s.in_transition(), s.step().is_some());
            assert!(s.describe().starts_with(&s.name().replace('_', " ")));
        }
    }

    mod model {
        use super::*;
        use proptest::prelude::*;

        fn input() -> impl Strategy<Value = Input> {
            let all = inputs();
            (0..all.len()).prop_map(move |i| all[i].clone())
        }

        proptest! {
            /// Whatever happens, in any order: a paused pairing always says why, holds one notice
            /// per cause, and never resumes without a full reconcile; a start that ends in `off`
            /// ran exactly its rollback plan.
            #[test]
            fn invariants_hold_over_random_runs(seq in proptest::collection::vec(input(), 1..80)) {
                let mut s = S::Off;
                for i in &seq {
                    let i = match (&s, i) {
                        // Report the step actually running, as the daemon would.
                        (_, I::StepDone(_)) => match s.step() { Some(st) => I::StepDone(st), None => i.clone() },
                        (_, I::StepFailed(_, f)) => match s.step() { Some(st) => I::StepFailed(st, f.clone()), None => i.clone() },
                        _ => i.clone(),
                    };
                    let Ok(t) = next(&s, &i) else { continue };
                    if let S::Paused { notices } = &t.state {
                        prop_assert!(!notices.is_empty());
                        let causes: BTreeSet<_> = notices.iter().map(Notice::cause).collect();
                        prop_assert_eq!(causes.len(), notices.len());
                    }
                    if matches!(s, S::Paused { .. }) && matches!(t.state, S::Active { .. }) {
                        prop_assert!(t.actions.contains(&Action::FullReconcile));
                    }
                    if matches!(t.state, S::Active { .. }) && !matches!(s, S::Active { .. }) {
                        let from_resume_or_start = matches!(
                            s,
                            S::Paused { .. } | S::Starting { step: StartStep::BeginSync, .. }
                        );
                        prop_assert!(from_resume_or_start);
                    }
                    s = t.state;
                }
            }
        }
    }
}
