//! The steps of a start and of a stop, what undoes each start step, and the rollback plan of a
//! start that has to be undone.

use serde::{Deserialize, Serialize};

/// The steps of a start, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartStep {
    /// Check every blocker (SPEC §6.3); reads only.
    Validate,
    /// Capture the user's uncommitted state as a snapshot, touching nothing. In a start that
    /// carries a snapshot over from the previous pairing (a switch), nothing is captured.
    Snapshot,
    /// Fast-forward (or create) `refs/heads/berth/<agent>` in the project to the agent's tip.
    MirrorBranch,
    /// Clear the checkout's uncommitted state (held by the snapshot) and check out
    /// `berth/<agent>`.
    SwitchCheckout,
    /// Copy the agent's working files over the checkout, one way.
    CopyAgentFiles,
    /// The first full two-way reconcile, then live sync.
    BeginSync,
}

impl StartStep {
    pub const ALL: [StartStep; 6] = [
        StartStep::Validate,
        StartStep::Snapshot,
        StartStep::MirrorBranch,
        StartStep::SwitchCheckout,
        StartStep::CopyAgentFiles,
        StartStep::BeginSync,
    ];

    /// The stable name (journal, `pair status`, failpoints).
    pub fn name(self) -> &'static str {
        match self {
            StartStep::Validate => "validate",
            StartStep::Snapshot => "snapshot",
            StartStep::MirrorBranch => "mirror_branch",
            StartStep::SwitchCheckout => "switch_checkout",
            StartStep::CopyAgentFiles => "copy_agent_files",
            StartStep::BeginSync => "begin_sync",
        }
    }

    pub fn from_name(name: &str) -> Option<StartStep> {
        StartStep::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The step after this one; `None` after the last.
    pub fn next(self) -> Option<StartStep> {
        let i = StartStep::ALL.iter().position(|s| *s == self)?;
        StartStep::ALL.get(i + 1).copied()
    }

    /// The failpoint reached just before the step acts: `pair.start.<name>`.
    pub fn failpoint(self) -> String {
        format!("pair.start.{}", self.name())
    }
}

/// The steps of a stop from `active` (and, minus the last two, of a switch), in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopStep {
    /// Sync everything both ways once more, then stop syncing.
    FinalSync,
    /// Reset the checkout to `berth/<agent>`'s tip: what was in it is now in the agent's
    /// workspace.
    CleanCheckout,
    /// Check out the original branch (or the original detached HEAD).
    SwitchBack,
    /// Restore the snapshot byte for byte (which deletes it only once it succeeded).
    RestoreSnapshot,
}

impl StopStep {
    pub const ALL: [StopStep; 4] = [
        StopStep::FinalSync,
        StopStep::CleanCheckout,
        StopStep::SwitchBack,
        StopStep::RestoreSnapshot,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StopStep::FinalSync => "final_sync",
            StopStep::CleanCheckout => "clean_checkout",
            StopStep::SwitchBack => "switch_back",
            StopStep::RestoreSnapshot => "restore_snapshot",
        }
    }

    pub fn from_name(name: &str) -> Option<StopStep> {
        StopStep::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn next(self) -> Option<StopStep> {
        let i = StopStep::ALL.iter().position(|s| *s == self)?;
        StopStep::ALL.get(i + 1).copied()
    }

    /// `pair.stop.<name>`.
    pub fn failpoint(self) -> String {
        format!("pair.stop.{}", self.name())
    }
}

/// What undoing one start step does. Each is idempotent and does nothing when its step had no
/// effect (the I/O layer checks before it acts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Undo {
    /// Undoes `begin_sync`: stop the watchers and the live loop (nothing on disk).
    StopSync,
    /// Undoes `copy_agent_files`: reset the checkout to `berth/<agent>`'s tip. The copied files
    /// came from the agent's workspace, which still holds them.
    CleanCheckout,
    /// Undoes `switch_checkout`: check out the original branch (or detached HEAD).
    SwitchBack,
    /// Undoes `mirror_branch`: put `refs/heads/berth/<agent>` back where it was (delete it if
    /// the step created it), compare-and-swap against the value the step set.
    RestoreMirror,
    /// Undoes `snapshot` once the checkout was switched away from the user's state: restore
    /// the snapshot (which deletes it only after it succeeded).
    RestoreSnapshot,
    /// Undoes `snapshot` when the checkout was never switched: the checkout still holds
    /// everything the snapshot does, so the snapshot berth just made is dropped
    /// (compare-and-swap on its ref; nothing if it was never made).
    DropSnapshot,
}

impl Undo {
    pub const ALL: [Undo; 6] = [
        Undo::StopSync,
        Undo::CleanCheckout,
        Undo::SwitchBack,
        Undo::RestoreMirror,
        Undo::RestoreSnapshot,
        Undo::DropSnapshot,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Undo::StopSync => "stop_sync",
            Undo::CleanCheckout => "clean_checkout",
            Undo::SwitchBack => "switch_back",
            Undo::RestoreMirror => "restore_mirror",
            Undo::RestoreSnapshot => "restore_snapshot",
            Undo::DropSnapshot => "drop_snapshot",
        }
    }

    pub fn from_name(name: &str) -> Option<Undo> {
        Undo::ALL.into_iter().find(|s| s.name() == name)
    }

    /// `pair.undo.<name>`.
    pub fn failpoint(self) -> String {
        format!("pair.undo.{}", self.name())
    }
}

/// Any step the daemon carries out for a pairing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "step")]
pub enum Step {
    Start(StartStep),
    Stop(StopStep),
    Undo(Undo),
}

impl Step {
    /// `start.<name>`, `stop.<name>` or `undo.<name>`.
    pub fn qualified_name(self) -> String {
        match self {
            Step::Start(s) => format!("start.{}", s.name()),
            Step::Stop(s) => format!("stop.{}", s.name()),
            Step::Undo(u) => format!("undo.{}", u.name()),
        }
    }

    /// The failpoint reached just before the step acts.
    pub fn failpoint(self) -> String {
        format!("pair.{}", self.qualified_name())
    }
}

/// The undo actions for a start whose steps `validate..=through` may have had effects, in the
/// order to carry them out (reverse step order). `carried`: the snapshot was carried over from
/// a previous pairing (a switch), so the checkout was already away from the user's own state
/// before this start began, and undoing must bring the user back to it.
pub fn rollback_plan(through: StartStep, carried: bool) -> Vec<Undo> {
    let mut plan = Vec::new();
    let switched = through >= StartStep::SwitchCheckout;
    for step in StartStep::ALL.into_iter().rev().filter(|s| *s <= through) {
        let undos: &[Undo] = match step {
            StartStep::BeginSync => &[Undo::StopSync],
            StartStep::CopyAgentFiles => &[Undo::CleanCheckout],
            StartStep::SwitchCheckout => &[Undo::SwitchBack],
            StartStep::MirrorBranch => &[Undo::RestoreMirror],
            StartStep::Snapshot if carried || switched => {
                &[Undo::SwitchBack, Undo::RestoreSnapshot]
            }
            StartStep::Snapshot => &[Undo::DropSnapshot],
            // A carried start begins on the previous agent's branch; validation changes
            // nothing, but the way back is still owed (covered by the snapshot's undo; a
            // failure at `validate` itself lands here with nothing after it).
            StartStep::Validate if carried => &[Undo::SwitchBack, Undo::RestoreSnapshot],
            StartStep::Validate => &[],
        };
        for u in undos {
            if !plan.contains(u) {
                plan.push(*u);
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::pairing::test_support::*;

    #[test]
    fn every_rollback_plan() {
        for through in StartStep::ALL {
            for carried in [false, true] {
                assert_eq!(
                    rollback_plan(through, carried),
                    plan(through, carried),
                    "{through:?} carried={carried}"
                );
            }
        }
    }

    #[test]
    fn rollback_plans_restore_the_user_state_whenever_the_checkout_was_left() {
        for through in StartStep::ALL {
            for carried in [false, true] {
                let p = rollback_plan(through, carried);
                let left = carried || through >= StartStep::SwitchCheckout;
                // Back to the original branch, then the snapshot, always last.
                assert_eq!(
                    p.ends_with(&[Undo::RestoreSnapshot]),
                    left,
                    "{through:?} {carried}"
                );
                assert_eq!(p.contains(&Undo::SwitchBack), left);
                if left {
                    let back = p.iter().position(|u| *u == Undo::SwitchBack);
                    let clean = p.iter().position(|u| *u == Undo::CleanCheckout);
                    assert!(clean < back, "clean before switching back: {p:?}");
                }
                // A snapshot is only ever dropped while the checkout still holds it.
                assert_eq!(
                    p.contains(&Undo::DropSnapshot),
                    !left && through >= StartStep::Snapshot
                );
                let unique: BTreeSet<_> = p.iter().collect();
                assert_eq!(unique.len(), p.len(), "no undo twice: {p:?}");
            }
        }
    }

    #[test]
    fn step_names_order_and_failpoints() {
        let names: Vec<_> = StartStep::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "validate",
                "snapshot",
                "mirror_branch",
                "switch_checkout",
                "copy_agent_files",
                "begin_sync"
            ]
        );
        let names: Vec<_> = StopStep::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "final_sync",
                "clean_checkout",
                "switch_back",
                "restore_snapshot"
            ]
        );
        for w in StartStep::ALL.windows(2) {
            assert_eq!(w[0].next(), Some(w[1]));
            assert!(w[0] < w[1]);
        }
        assert_eq!(StartStep::BeginSync.next(), None);
        for w in StopStep::ALL.windows(2) {
            assert_eq!(w[0].next(), Some(w[1]));
        }
        assert_eq!(StopStep::RestoreSnapshot.next(), None);
        for s in StartStep::ALL {
            assert_eq!(StartStep::from_name(s.name()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.name())
            );
        }
        for s in StopStep::ALL {
            assert_eq!(StopStep::from_name(s.name()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.name())
            );
        }
        for u in Undo::ALL {
            assert_eq!(Undo::from_name(u.name()), Some(u));
            assert_eq!(
                serde_json::to_value(u).unwrap(),
                serde_json::json!(u.name())
            );
        }
        assert_eq!(StartStep::from_name("nope"), None);
        assert_eq!(
            StartStep::MirrorBranch.failpoint(),
            "pair.start.mirror_branch"
        );
        assert_eq!(StopStep::SwitchBack.failpoint(), "pair.stop.switch_back");
        assert_eq!(Undo::DropSnapshot.failpoint(), "pair.undo.drop_snapshot");
        assert_eq!(
            Step::Start(StartStep::Snapshot).failpoint(),
            "pair.start.snapshot"
        );
        assert_eq!(
            Step::Stop(StopStep::FinalSync).failpoint(),
            StopStep::FinalSync.failpoint()
        );
        // Every failpoint is distinct.
        let all: BTreeSet<String> = all_steps().iter().map(|s| s.failpoint()).collect();
        assert_eq!(all.len(), 16);
    }
}
