//! The intent journal's entry and crash recovery: what the daemon does on start for a pairing
//! whose last journal entry is unfinished.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::notice::Notice;
use super::state::{
    Action, RollbackCause, State, StopFrom, Transition, after_stop, after_undo, roll_back, stopping,
};
use super::steps::{StartStep, Step, StopStep};

/// What the daemon is about to act on: the state it enters (which names the step, if any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub state: State,
}

impl Intent {
    pub fn step(&self) -> Option<Step> {
        self.state.step()
    }
}

/// One entry of a pairing's intent journal, as stored (stable JSON). Written before acting,
/// marked `done` after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The pairing's id.
    pub pairing: String,
    /// Position in the journal (increasing, never reused).
    pub seq: u64,
    pub intent: Intent,
    /// Whether what the intent names was carried out completely.
    pub done: bool,
}

/// What the daemon does on start for a pairing whose last journal entry is `intent` (`done`:
/// whether it was marked done).
///
/// Per state and step:
///
/// - `off`: nothing; the pairing is over.
/// - `starting(validate | snapshot | mirror_branch | switch_checkout | copy_agent_files)`,
///   done or not: **roll back** through that step (the step may have done part of its work, so
///   it is undone too). No step up to `copy_agent_files` holds anything that is not somewhere
///   else as well: validation reads only; a snapshot only adds a ref while the checkout still
///   holds its content; the mirror is berth's own ref and goes back by compare-and-swap; the
///   switch is undone by restoring the snapshot; copied files came from the agent's workspace,
///   which keeps them. Rolling back returns the user to exactly before, and the user was never
///   told pairing had started.
/// - `starting(begin_sync)`, done or not: **finish** the start. The checkout already shows the
///   agent's branch and files, and two-way sync may already have carried edits both ways;
///   undoing would clean a checkout the user may be editing, while finishing is just the full
///   reconcile `begin_sync` is — which never loses an edit. Entered through `paused
///   {revalidating}` (as for `active`). If a stop had been asked during the start, the stop
///   sequence from active runs instead, which ends in the same exact return as a rollback.
/// - `rolling_back(undo)`: **continue** the rollback: redo `undo` unless it was done, then the
///   rest of the plan. Every undo is idempotent, and the decision to go back was already made.
/// - `stopping(step)` (from active or switch): **finish** the stop: redo `step` unless it was
///   done, then the rest. `final_sync` is one full reconcile (it checks the pausing causes
///   first and fails into `paused` if one is present); `clean_checkout` only runs after a
///   completed final sync, so the agent's workspace holds what it removes; `switch_back` and
///   `restore_snapshot` are idempotent (a restore whose snapshot is gone succeeded already).
///   Undoing a stop instead would need a sync that could carry a half-cleaned checkout's
///   deletions over to the agent.
/// - `active`: **re-validate, then a full reconcile**: the pairing comes back as `paused
///   {revalidating}` with [`Action::Revalidate`]; clearing the last notice resumes with
///   [`Action::FullReconcile`] like any other resume.
/// - `paused`: **stay paused** and re-check every notice: `revalidating` is added to the
///   notices it had, and [`Action::Revalidate`] clears whatever is gone.
pub fn recover(intent: &Intent, done: bool) -> Transition {
    let revalidate = |mut notices: BTreeSet<Notice>| {
        notices.insert(Notice::Revalidating);
        Transition::to(State::Paused { notices }, vec![Action::Revalidate])
    };
    match &intent.state {
        State::Off => Transition::to(State::Off, vec![]),
        State::Starting {
            step: StartStep::BeginSync,
            stop_requested: true,
            ..
        } => stopping(StopStep::FinalSync, StopFrom::Active),
        State::Starting {
            step: StartStep::BeginSync,
            ..
        } => revalidate(BTreeSet::new()),
        State::Starting { step, carried, .. } => {
            roll_back(*step, *carried, RollbackCause::Crashed { step: *step })
        }
        State::RollingBack {
            through,
            carried,
            undo,
            cause,
        } if done => after_undo(*through, *carried, *undo, cause),
        State::Stopping { step, from } if done => after_stop(*step, *from),
        // Not done: carry the same undo or stop step out again.
        State::RollingBack { .. } | State::Stopping { .. } => Transition::run(intent.state.clone()),
        State::Active { .. } => revalidate(BTreeSet::new()),
        State::Paused { notices } => revalidate(notices.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairing::test_support::*;
    use crate::pairing::{Activity, Cause, Input, Undo, next};
    use Input as I;
    use State as S;

    fn revalidating(mut notices: BTreeSet<Notice>) -> Transition {
        notices.insert(Notice::Revalidating);
        same(&S::Paused { notices }, vec![Action::Revalidate])
    }

    /// Every recovery case, written out independently of `recover`.
    fn expected_recovery(s: &State, done: bool) -> Transition {
        match s {
            S::Off => same(&S::Off, vec![]),
            S::Starting {
                step: StartStep::BeginSync,
                stop_requested: false,
                ..
            } => revalidating(BTreeSet::new()),
            S::Starting {
                step: StartStep::BeginSync,
                stop_requested: true,
                ..
            } => run(S::Stopping {
                step: StopStep::FinalSync,
                from: StopFrom::Active,
            }),
            S::Starting { step, carried, .. } => {
                rb(*step, *carried, RollbackCause::Crashed { step: *step })
            }
            S::RollingBack { .. } | S::Stopping { .. } if !done => run(s.clone()),
            S::RollingBack { undo, .. } => next(s, &I::StepDone(Step::Undo(*undo))).unwrap(),
            S::Stopping { step, .. } => next(s, &I::StepDone(Step::Stop(*step))).unwrap(),
            S::Active { .. } => revalidating(BTreeSet::new()),
            S::Paused { notices } => revalidating(notices.clone()),
        }
    }

    #[test]
    fn every_recovery_case() {
        for s in states() {
            for done in [false, true] {
                let intent = Intent { state: s.clone() };
                assert_eq!(
                    recover(&intent, done),
                    expected_recovery(&s, done),
                    "{s:?} done={done}"
                );
            }
        }
    }

    #[test]
    fn recovery_from_a_start_rolls_back_to_exactly_before_except_at_begin_sync() {
        for step in StartStep::ALL {
            for done in [false, true] {
                let t = recover(
                    &Intent {
                        state: State::Starting {
                            step,
                            carried: false,
                            stop_requested: false,
                        },
                    },
                    done,
                );
                if step == StartStep::BeginSync {
                    assert!(matches!(t.state, S::Paused { .. }));
                    continue;
                }
                // Drive the rollback to its end.
                let mut t = t;
                let mut undone = Vec::new();
                while let Some(Action::Run {
                    step: Step::Undo(u),
                }) = t.actions.last().cloned()
                {
                    undone.push(u);
                    t = next(&t.state, &I::StepDone(Step::Undo(u))).unwrap();
                }
                assert_eq!(undone, plan(step, false));
                assert_eq!(t.state, S::Off);
            }
        }
    }

    #[test]
    fn recovery_while_active_or_paused_revalidates_then_reconciles_on_the_resume() {
        let t = recover(
            &Intent {
                state: S::Active {
                    activity: Activity::Syncing,
                },
            },
            true,
        );
        assert_eq!(t.actions, [Action::Revalidate]);
        // Nothing found: clearing `revalidating` resumes with a full reconcile.
        let t = next(&t.state, &I::Clear(Cause::Revalidating)).unwrap();
        assert_eq!(t.actions, [Action::ResumeSync, Action::FullReconcile]);
        // A paused pairing stays paused until its own cause is gone too.
        let t = recover(
            &Intent {
                state: S::Paused {
                    notices: BTreeSet::from([n_user()]),
                },
            },
            false,
        );
        let t = next(&t.state, &I::Clear(Cause::Revalidating)).unwrap();
        assert_eq!(
            t.state,
            S::Paused {
                notices: BTreeSet::from([n_user()])
            }
        );
    }

    #[test]
    fn journal_entries_are_stable_json() {
        let e = JournalEntry {
            pairing: "p1".into(),
            seq: 7,
            intent: Intent {
                state: S::Starting {
                    step: StartStep::MirrorBranch,
                    carried: false,
                    stop_requested: false,
                },
            },
            done: false,
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"pairing":"p1","seq":7,"intent":{"state":{"state":"starting","step":"mirror_branch","carried":false,"stop_requested":false}},"done":false}"#
        );
        assert_eq!(serde_json::from_str::<JournalEntry>(&json).unwrap(), e);
        let paused = S::Paused {
            notices: BTreeSet::from([n_user()]),
        };
        assert_eq!(
            serde_json::to_value(&paused).unwrap(),
            serde_json::json!({"state": "paused", "notices": [
                {"code": "user_switched_branch", "agent": "fixer", "actual": "main"}
            ]})
        );
        let rolling = S::RollingBack {
            through: StartStep::SwitchCheckout,
            carried: true,
            undo: Undo::SwitchBack,
            cause: RollbackCause::Failed {
                step: StartStep::SwitchCheckout,
                failure: fail(),
            },
        };
        assert_eq!(
            serde_json::to_value(&rolling).unwrap(),
            serde_json::json!({"state": "rolling_back", "through": "switch_checkout",
                "carried": true, "undo": "switch_back", "cause": {"reason": "failed",
                "step": "switch_checkout", "failure": {"kind": "notice", "notice":
                {"code": "disk_full", "side": "agent", "path": "src/lib.rs"}}}})
        );
        for s in states() {
            let back: State = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
            assert_eq!(back, s);
            assert_eq!(serde_json::to_value(&s).unwrap()["state"], s.name());
        }
        for step in all_steps() {
            let back: Step = serde_json::from_value(serde_json::to_value(step).unwrap()).unwrap();
            assert_eq!(back, step);
        }
    }
}
