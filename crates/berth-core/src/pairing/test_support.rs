//! Fixtures the tests of several parts share: sample notices and failures, every rollback plan
//! written out by hand, every state and input, and the expected transitions built from them.

use std::collections::BTreeSet;

use super::*;
use Input as I;
use State as S;

pub(super) fn n_link() -> Notice {
    Notice::ConnectionLost {
        agent: "fixer".into(),
        on: "ssh://box/w".into(),
        detail: "ssh: broken pipe".into(),
    }
}

pub(super) fn n_user() -> Notice {
    Notice::UserSwitchedBranch {
        agent: "fixer".into(),
        actual: "main".into(),
    }
}
pub(super) fn n_user_detached() -> Notice {
    Notice::UserDetachedHead {
        agent: "fixer".into(),
    }
}
pub(super) fn n_disk() -> Notice {
    Notice::DiskFull {
        side: Side::Agent,
        path: "src/lib.rs".into(),
    }
}
/// The final sync of a stop got no answer in time.
pub(super) fn n_timed_out() -> Notice {
    Notice::FinalSyncTimedOut { waited_ms: 15_000 }
}
pub(super) fn fail() -> Failure {
    Failure::Notice { notice: n_disk() }
}
pub(super) fn blocked() -> Failure {
    Failure::Blocked {
        blockers: BTreeSet::from([Blocker::DirtyNoStash { changes: 3 }]),
    }
}
pub(super) fn cause() -> RollbackCause {
    RollbackCause::StopRequested
}

/// Every plan, written out by hand.
pub(super) fn plan(through: StartStep, carried: bool) -> Vec<Undo> {
    use StartStep as St;
    use Undo as U;
    match (through, carried) {
        (St::Validate, false) => vec![],
        (St::Snapshot, false) => vec![U::DropSnapshot],
        (St::MirrorBranch, false) => vec![U::RestoreMirror, U::DropSnapshot],
        (St::SwitchCheckout, false) => {
            vec![U::SwitchBack, U::RestoreMirror, U::RestoreSnapshot]
        }
        (St::CopyAgentFiles, false) => vec![
            U::CleanCheckout,
            U::SwitchBack,
            U::RestoreMirror,
            U::RestoreSnapshot,
        ],
        (St::BeginSync, false) => vec![
            U::StopSync,
            U::CleanCheckout,
            U::SwitchBack,
            U::RestoreMirror,
            U::RestoreSnapshot,
        ],
        (St::Validate | St::Snapshot, true) => vec![U::SwitchBack, U::RestoreSnapshot],
        (St::MirrorBranch, true) => {
            vec![U::RestoreMirror, U::SwitchBack, U::RestoreSnapshot]
        }
        (St::SwitchCheckout, true) => {
            vec![U::SwitchBack, U::RestoreMirror, U::RestoreSnapshot]
        }
        (St::CopyAgentFiles, true) => vec![
            U::CleanCheckout,
            U::SwitchBack,
            U::RestoreMirror,
            U::RestoreSnapshot,
        ],
        (St::BeginSync, true) => vec![
            U::StopSync,
            U::CleanCheckout,
            U::SwitchBack,
            U::RestoreMirror,
            U::RestoreSnapshot,
        ],
    }
}

pub(super) fn all_steps() -> Vec<Step> {
    StartStep::ALL
        .into_iter()
        .map(Step::Start)
        .chain(StopStep::ALL.into_iter().map(Step::Stop))
        .chain(Undo::ALL.into_iter().map(Step::Undo))
        .collect()
}

pub(super) fn states() -> Vec<State> {
    let mut v = vec![S::Off];
    for step in StartStep::ALL {
        for carried in [false, true] {
            for stop_requested in [false, true] {
                v.push(S::Starting {
                    step,
                    carried,
                    stop_requested,
                });
            }
        }
    }
    for through in StartStep::ALL {
        for carried in [false, true] {
            for undo in plan(through, carried) {
                v.push(S::RollingBack {
                    through,
                    carried,
                    undo,
                    cause: cause(),
                });
            }
        }
    }
    for activity in [Activity::Idle, Activity::Pending, Activity::Syncing] {
        v.push(S::Active { activity });
    }
    v.push(S::Paused {
        notices: BTreeSet::from([n_user()]),
    });
    v.push(S::Paused {
        notices: BTreeSet::from([n_user(), n_disk()]),
    });
    v.push(S::Paused {
        notices: BTreeSet::from([Notice::Revalidating]),
    });
    v.push(S::Paused {
        notices: BTreeSet::from([n_timed_out()]),
    });
    for step in StopStep::ALL {
        for from in [StopFrom::Active, StopFrom::Switch] {
            v.push(S::Stopping { step, from });
        }
    }
    v
}

pub(super) fn inputs() -> Vec<Input> {
    let mut v = vec![I::StartRequested, I::SwitchRequested, I::StopRequested];
    for step in all_steps() {
        v.push(I::StepDone(step));
        v.push(I::StepFailed(step, fail()));
    }
    v.push(I::StepFailed(Step::Start(StartStep::Validate), blocked()));
    v.push(I::StepFailed(Step::Stop(StopStep::FinalSync), blocked()));
    v.push(I::StepFailed(
        Step::Stop(StopStep::FinalSync),
        Failure::Notice {
            notice: n_timed_out(),
        },
    ));
    v.push(I::Raise(n_timed_out()));
    v.push(I::Clear(Cause::SyncUnanswered));
    v.push(I::Raise(n_user()));
    v.push(I::Raise(n_user_detached()));
    v.push(I::Raise(n_disk()));
    v.push(I::Clear(Cause::UserBranch));
    v.push(I::Clear(Cause::Write(Side::Agent)));
    v.push(I::Clear(Cause::Revalidating));
    v.push(I::Clear(Cause::Root(Side::User)));
    v.push(I::Raise(n_link()));
    v.push(I::Clear(Cause::Link));
    for a in [Activity::Idle, Activity::Pending, Activity::Syncing] {
        v.push(I::Activity(a));
    }
    v
}

pub(super) fn run(state: State) -> Transition {
    let step = state.step().expect("a state with a step");
    Transition {
        state,
        actions: vec![Action::Run { step }],
    }
}
pub(super) fn fin(outcome: Outcome) -> Transition {
    Transition {
        state: S::Off,
        actions: vec![Action::Finish { outcome }],
    }
}
pub(super) fn same(s: &State, actions: Vec<Action>) -> Transition {
    Transition {
        state: s.clone(),
        actions,
    }
}

/// Rolling back `through` from the start of its hand-written plan.
pub(super) fn rb(through: StartStep, carried: bool, cause: RollbackCause) -> Transition {
    match plan(through, carried).first() {
        Some(&undo) => run(S::RollingBack {
            through,
            carried,
            undo,
            cause,
        }),
        None => fin(Outcome::RolledBack { cause }),
    }
}
