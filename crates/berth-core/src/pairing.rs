//! Pairing as plain data: its states, the steps of starting and stopping, the blockers that
//! refuse a start, the notices that pause a pairing, and the pure transition and crash-recovery
//! functions. The daemon gathers observations, feeds them in as [`Input`]s, writes each new
//! [`Intent`] to the store *before* carrying out the [`Action`]s it is given, and marks it done
//! after (SPEC §6.2: the intent journal).
//!
//! ```text
//!                    start                      begin_sync done
//! off ──────────▶ starting(step) ─────────────────────────▶ active{idle|pending|syncing}
//!  ▲                  │ failure, blocker, stop                  │ notice   ▲ last notice cleared
//!  │                  ▼                                         ▼          │ (full reconcile)
//!  ├──────────── rolling_back(undo)                          paused{notices}
//!  │                                                            │ stop: nothing changes,
//!  ├────────────────────────────────────────────────────────────┘ the snapshot is kept
//!  │                        stop (from active)
//!  └──────────── stopping(step) ◀── active
//!                     │ switch: final_sync, clean_checkout, then starting(validate) for the
//!                     └─────────  other agent, carrying the snapshot over
//! ```
//!
//! # Steps and their undo
//!
//! The steps of a start run in order ([`StartStep`]); a failure at step *k*, or a stop asked
//! while *k* ran, undoes steps `validate..=k` in reverse ([`rollback_plan`]): the step that
//! failed is undone too, because it may have done part of its work. Every [`Undo`] is
//! idempotent and a no-op when its step had no effect, so undoing a step that never really
//! happened is harmless.
//!
//! # Pausing
//!
//! Pausing is never manual: `active` becomes `paused` when a [`Notice`] is raised, and `paused`
//! becomes `active` only when the last notice is cleared — always followed by
//! [`Action::FullReconcile`]. At most one notice per [`Cause`] is held; raising a notice
//! replaces the one of the same cause (the user moved from `main` on to `dev`).
//!
//! # Crash recovery
//!
//! [`recover`] decides from the last journal entry what the daemon does on its next start; the
//! reasoning for every step is on that function.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::InvalidTransition;

// ---------------------------------------------------------------------------------------------
// Steps
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Blockers
// ---------------------------------------------------------------------------------------------

/// A git operation that can be in progress in a checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Merge,
    Rebase,
    CherryPick,
    Revert,
    Bisect,
}

impl Operation {
    pub const ALL: [Operation; 5] = [
        Operation::Merge,
        Operation::Rebase,
        Operation::CherryPick,
        Operation::Revert,
        Operation::Bisect,
    ];

    /// As git calls it.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Merge => "merge",
            Operation::Rebase => "rebase",
            Operation::CherryPick => "cherry-pick",
            Operation::Revert => "revert",
            Operation::Bisect => "bisect",
        }
    }

    /// How to finish or abandon it.
    pub fn fix(self) -> &'static str {
        match self {
            Operation::Merge => "commit the merge or run `git merge --abort`",
            Operation::Rebase => "run `git rebase --continue` or `git rebase --abort`",
            Operation::CherryPick => {
                "run `git cherry-pick --continue` or `git cherry-pick --abort`"
            }
            Operation::Revert => "run `git revert --continue` or `git revert --abort`",
            Operation::Bisect => "run `git bisect reset`",
        }
    }
}

/// A reason a start is refused before anything changes (SPEC §6.3). All are reported together.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum Blocker {
    /// No such agent, or its workspace is gone.
    AgentMissing { agent: String },
    /// The agent's branch does not exist in its workspace.
    AgentBranchMissing { agent: String },
    /// The agent's workspace is on another branch (`None`: a detached HEAD).
    AgentWrongBranch {
        agent: String,
        actual: Option<String>,
    },
    /// The user's copy of the branch has `commits` the agent lacks.
    UserAhead { agent: String, commits: u64 },
    /// Neither side is an ancestor of the other.
    Diverged {
        agent: String,
        user_only: u64,
        agent_only: u64,
    },
    /// An operation is in progress in the checkout.
    OperationInProgress { operation: Operation },
    /// The checkout has `changes` changed paths and `--no-stash` was given.
    DirtyNoStash { changes: u64 },
    /// Another pairing transition is in progress for this project (`transition`: what it is,
    /// e.g. `starting (snapshot) with fixer`).
    PairingBusy { transition: String },
}

/// `berth/<agent>`.
pub fn agent_branch(agent: &str) -> String {
    format!("berth/{agent}")
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

impl Blocker {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Blocker::AgentMissing { .. } => "agent_missing",
            Blocker::AgentBranchMissing { .. } => "agent_branch_missing",
            Blocker::AgentWrongBranch { .. } => "agent_wrong_branch",
            Blocker::UserAhead { .. } => "user_ahead",
            Blocker::Diverged { .. } => "diverged",
            Blocker::OperationInProgress { .. } => "operation_in_progress",
            Blocker::DirtyNoStash { .. } => "dirty_no_stash",
            Blocker::PairingBusy { .. } => "pairing_busy",
        }
    }

    /// One line: what is wrong, then (after ` — `) how to fix it.
    pub fn message(&self) -> String {
        match self {
            Blocker::AgentMissing { agent } => format!(
                "there is no agent `{agent}` in this project, or its workspace is gone — \
                 create it with `berth agent new {agent}` (see `berth agent list`)"
            ),
            Blocker::AgentBranchMissing { agent } => format!(
                "agent `{agent}`'s workspace has no branch `{b}` — create it there with \
                 `git switch -c {b}`, or recreate the agent",
                b = agent_branch(agent)
            ),
            Blocker::AgentWrongBranch { agent, actual } => {
                let on = match actual {
                    Some(branch) => format!("on `{branch}`"),
                    None => "on a detached HEAD".to_string(),
                };
                format!(
                    "agent `{agent}`'s workspace is {on}, not `{b}` — run `git switch {b}` in \
                     its workspace",
                    b = agent_branch(agent)
                )
            }
            Blocker::UserAhead { agent, commits } => format!(
                "your `{b}` has {c} that agent `{agent}` lacks — push to the agent first \
                 (fast-forward the agent's `{b}` to yours in its workspace), or reset your \
                 `{b}` to the agent's",
                b = agent_branch(agent),
                c = plural(*commits, "commit", "commits")
            ),
            Blocker::Diverged {
                agent,
                user_only,
                agent_only,
            } => format!(
                "your `{b}` and agent `{agent}`'s have diverged ({u} only yours, {a} only the \
                 agent's) — merge one into the other first",
                b = agent_branch(agent),
                u = plural(*user_only, "commit", "commits"),
                a = plural(*agent_only, "commit", "commits")
            ),
            Blocker::OperationInProgress { operation } => format!(
                "a {op} is in progress in your checkout — {fix}",
                op = operation.name(),
                fix = operation.fix()
            ),
            Blocker::DirtyNoStash { changes } => format!(
                "your checkout has {c} and --no-stash was given — commit them, or pair without \
                 --no-stash so berth keeps them in a snapshot",
                c = plural(*changes, "uncommitted change", "uncommitted changes")
            ),
            Blocker::PairingBusy { transition } => format!(
                "another pairing transition is in progress for this project ({transition}) — \
                 wait for it to finish (`berth pair status`) and try again"
            ),
        }
    }

    /// Every blocker, one line each with its code: what `berth pair` prints.
    pub fn report<'a>(blockers: impl IntoIterator<Item = &'a Blocker>) -> String {
        blockers
            .into_iter()
            .map(|b| format!("{}: {}", b.code(), b.message()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

// ---------------------------------------------------------------------------------------------
// Notices
// ---------------------------------------------------------------------------------------------

/// Which side of a pairing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The user's checkout.
    User,
    /// The agent's workspace.
    Agent,
}

impl Side {
    fn tree(self) -> &'static str {
        match self {
            Side::User => "your checkout",
            Side::Agent => "the agent's workspace",
        }
    }
}

/// A pausing cause (SPEC §6.4). Each names what happened and how pairing resumes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum Notice {
    /// The user's checkout is on `actual`, not `berth/<agent>`.
    UserSwitchedBranch { agent: String, actual: String },
    /// The user's checkout has a detached HEAD.
    UserDetachedHead { agent: String },
    /// The agent's workspace is on another branch (`None`: a detached HEAD).
    AgentSwitchedBranch {
        agent: String,
        actual: Option<String>,
    },
    /// An operation is in progress on one side.
    OperationInProgress { side: Side, operation: Operation },
    /// Neither branch is an ancestor of the other any more.
    Diverged { agent: String },
    /// The agent's workspace is gone.
    AgentWorkspaceMissing { agent: String, path: String },
    /// `berth/<agent>` was deleted in the agent's workspace.
    AgentBranchDeleted { agent: String },
    /// A root holds nothing any more (safety halt: an emptied root is not a mass deletion).
    RootEmptied { side: Side, path: String },
    /// A root does not exist any more.
    RootDeleted { side: Side, path: String },
    /// The end-to-end heartbeat on one side did not come back: file watching stalled.
    WatchStalled { side: Side },
    /// A write failed because the disk is full.
    DiskFull { side: Side, path: String },
    /// A write was refused.
    PermissionDenied { side: Side, path: String },
    /// Anything else; `message` says what.
    UnexpectedError { message: String },
    /// The daemon restarted while paired: both sides are checked again before syncing.
    Revalidating,
}

/// What a notice is about: at most one notice per cause is held, and a detector clears a cause
/// once it is gone ("the user is back on the branch" clears [`Cause::UserBranch`], whichever
/// branch they had been on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "cause", content = "side")]
pub enum Cause {
    UserBranch,
    AgentBranch,
    Operation(Side),
    Diverged,
    AgentWorkspace,
    AgentBranchGone,
    Root(Side),
    Watch(Side),
    /// Disk full or permission denied while applying on this side.
    Write(Side),
    Unexpected,
    Revalidating,
}

impl Notice {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Notice::UserSwitchedBranch { .. } => "user_switched_branch",
            Notice::UserDetachedHead { .. } => "user_detached_head",
            Notice::AgentSwitchedBranch { .. } => "agent_switched_branch",
            Notice::OperationInProgress { .. } => "operation_in_progress",
            Notice::Diverged { .. } => "diverged",
            Notice::AgentWorkspaceMissing { .. } => "agent_workspace_missing",
            Notice::AgentBranchDeleted { .. } => "agent_branch_deleted",
            Notice::RootEmptied { .. } => "root_emptied",
            Notice::RootDeleted { .. } => "root_deleted",
            Notice::WatchStalled { .. } => "watch_stalled",
            Notice::DiskFull { .. } => "disk_full",
            Notice::PermissionDenied { .. } => "permission_denied",
            Notice::UnexpectedError { .. } => "unexpected_error",
            Notice::Revalidating => "revalidating",
        }
    }

    /// The cause it stands for (its slot in the notice set).
    pub fn cause(&self) -> Cause {
        match self {
            Notice::UserSwitchedBranch { .. } | Notice::UserDetachedHead { .. } => {
                Cause::UserBranch
            }
            Notice::AgentSwitchedBranch { .. } => Cause::AgentBranch,
            Notice::OperationInProgress { side, .. } => Cause::Operation(*side),
            Notice::Diverged { .. } => Cause::Diverged,
            Notice::AgentWorkspaceMissing { .. } => Cause::AgentWorkspace,
            Notice::AgentBranchDeleted { .. } => Cause::AgentBranchGone,
            Notice::RootEmptied { side, .. } | Notice::RootDeleted { side, .. } => {
                Cause::Root(*side)
            }
            Notice::WatchStalled { side } => Cause::Watch(*side),
            Notice::DiskFull { side, .. } | Notice::PermissionDenied { side, .. } => {
                Cause::Write(*side)
            }
            Notice::UnexpectedError { .. } => Cause::Unexpected,
            Notice::Revalidating => Cause::Revalidating,
        }
    }

    /// One line: `paused: <what happened> — <how pairing resumes>`.
    pub fn message(&self) -> String {
        let what_and_how = match self {
            Notice::UserSwitchedBranch { agent, actual } => format!(
                "you switched to `{actual}` in your checkout — switch back to `{b}` to resume",
                b = agent_branch(agent)
            ),
            Notice::UserDetachedHead { agent } => format!(
                "your checkout is on a detached HEAD — switch back to `{b}` to resume",
                b = agent_branch(agent)
            ),
            Notice::AgentSwitchedBranch { agent, actual } => {
                let on = match actual {
                    Some(branch) => format!("switched its workspace to `{branch}`"),
                    None => "detached HEAD in its workspace".to_string(),
                };
                format!(
                    "agent `{agent}` {on} — pairing resumes when it is back on `{b}`",
                    b = agent_branch(agent)
                )
            }
            Notice::OperationInProgress { side, operation } => format!(
                "a {op} is in progress in {tree} — pairing resumes when it is finished or \
                 aborted ({fix})",
                op = operation.name(),
                tree = side.tree(),
                fix = operation.fix()
            ),
            Notice::Diverged { agent } => format!(
                "your `{b}` and agent `{agent}`'s have diverged (a commit was amended or \
                 rebased on one side) — pairing resumes when one is again an ancestor of the \
                 other: merge one into the other, or reset one side to the other",
                b = agent_branch(agent)
            ),
            Notice::AgentWorkspaceMissing { agent, path } => format!(
                "agent `{agent}`'s workspace `{path}` is missing — pairing resumes when it is \
                 back (or run `berth pair stop`)"
            ),
            Notice::AgentBranchDeleted { agent } => format!(
                "agent `{agent}` deleted its branch `{b}` — pairing resumes when the branch is \
                 back in its workspace",
                b = agent_branch(agent)
            ),
            Notice::RootEmptied { side, path } => format!(
                "{tree} `{path}` is suddenly empty; berth halted rather than delete everything \
                 on the other side — pairing resumes when its files are back",
                tree = side.tree()
            ),
            Notice::RootDeleted { side, path } => format!(
                "{tree} `{path}` was deleted — pairing resumes when it is back",
                tree = side.tree()
            ),
            Notice::WatchStalled { side } => format!(
                "file watching in {tree} stopped delivering events (the heartbeat did not come \
                 back) — pairing resumes when heartbeats arrive again",
                tree = side.tree()
            ),
            Notice::DiskFull { side, path } => format!(
                "the disk is full: writing `{path}` in {tree} failed — free some space; \
                 pairing resumes when the write succeeds on retry",
                tree = side.tree()
            ),
            Notice::PermissionDenied { side, path } => format!(
                "permission denied writing `{path}` in {tree} — fix its permissions; pairing \
                 resumes when the write succeeds on retry",
                tree = side.tree()
            ),
            Notice::UnexpectedError { message } => format!(
                "unexpected error: {message} — pairing resumes when a retry succeeds \
                 (details in `berth daemon logs`)"
            ),
            Notice::Revalidating => "berth restarted — checking both sides again before \
                                     syncing; pairing resumes by itself when they check out"
                .to_string(),
        };
        format!("paused: {what_and_how}")
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

// ---------------------------------------------------------------------------------------------
// States
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Inputs, actions, transitions
// ---------------------------------------------------------------------------------------------

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
    fn to(state: State, actions: Vec<Action>) -> Transition {
        Transition { state, actions }
    }

    fn stay(state: &State) -> Transition {
        Transition::to(state.clone(), vec![])
    }

    fn refuse(state: &State, refusal: Refusal) -> Transition {
        Transition::to(state.clone(), vec![Action::Refuse { refusal }])
    }

    /// Enter `state`; if it carries a step, run it.
    fn run(state: State) -> Transition {
        let actions = state
            .step()
            .map(|step| vec![Action::Run { step }])
            .unwrap_or_default();
        Transition::to(state, actions)
    }
}

/// Starts undoing `validate..=through`; straight to `off` when there is nothing to undo.
fn roll_back(through: StartStep, carried: bool, cause: RollbackCause) -> Transition {
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

fn finish(outcome: Outcome) -> Transition {
    Transition::to(State::Off, vec![Action::Finish { outcome }])
}

fn stopping(step: StopStep, from: StopFrom) -> Transition {
    Transition::run(State::Stopping { step, from })
}

/// After undo `undo` of `rollback_plan(through, carried)` is done: the next one, or `off`.
fn after_undo(through: StartStep, carried: bool, undo: Undo, cause: &RollbackCause) -> Transition {
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
fn after_stop(step: StopStep, from: StopFrom) -> Transition {
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

// ---------------------------------------------------------------------------------------------
// The intent journal and crash recovery
// ---------------------------------------------------------------------------------------------

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
    use Input as I;
    use State as S;

    fn n_user() -> Notice {
        Notice::UserSwitchedBranch {
            agent: "fixer".into(),
            actual: "main".into(),
        }
    }
    fn n_user_detached() -> Notice {
        Notice::UserDetachedHead {
            agent: "fixer".into(),
        }
    }
    fn n_disk() -> Notice {
        Notice::DiskFull {
            side: Side::Agent,
            path: "src/lib.rs".into(),
        }
    }
    fn fail() -> Failure {
        Failure::Notice { notice: n_disk() }
    }
    fn blocked() -> Failure {
        Failure::Blocked {
            blockers: BTreeSet::from([Blocker::DirtyNoStash { changes: 3 }]),
        }
    }
    fn cause() -> RollbackCause {
        RollbackCause::StopRequested
    }

    /// Every plan, written out by hand.
    fn plan(through: StartStep, carried: bool) -> Vec<Undo> {
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

    fn all_steps() -> Vec<Step> {
        StartStep::ALL
            .into_iter()
            .map(Step::Start)
            .chain(StopStep::ALL.into_iter().map(Step::Stop))
            .chain(Undo::ALL.into_iter().map(Step::Undo))
            .collect()
    }

    fn states() -> Vec<State> {
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
        for step in StopStep::ALL {
            for from in [StopFrom::Active, StopFrom::Switch] {
                v.push(S::Stopping { step, from });
            }
        }
        v
    }

    fn inputs() -> Vec<Input> {
        let mut v = vec![I::StartRequested, I::SwitchRequested, I::StopRequested];
        for step in all_steps() {
            v.push(I::StepDone(step));
            v.push(I::StepFailed(step, fail()));
        }
        v.push(I::StepFailed(Step::Start(StartStep::Validate), blocked()));
        v.push(I::StepFailed(Step::Stop(StopStep::FinalSync), blocked()));
        v.push(I::Raise(n_user()));
        v.push(I::Raise(n_user_detached()));
        v.push(I::Raise(n_disk()));
        v.push(I::Clear(Cause::UserBranch));
        v.push(I::Clear(Cause::Write(Side::Agent)));
        v.push(I::Clear(Cause::Revalidating));
        v.push(I::Clear(Cause::Root(Side::User)));
        for a in [Activity::Idle, Activity::Pending, Activity::Syncing] {
            v.push(I::Activity(a));
        }
        v
    }

    fn run(state: State) -> Transition {
        let step = state.step().expect("a state with a step");
        Transition {
            state,
            actions: vec![Action::Run { step }],
        }
    }
    fn fin(outcome: Outcome) -> Transition {
        Transition {
            state: S::Off,
            actions: vec![Action::Finish { outcome }],
        }
    }
    fn same(s: &State, actions: Vec<Action>) -> Transition {
        Transition {
            state: s.clone(),
            actions,
        }
    }

    /// Rolling back `through` from the start of its hand-written plan.
    fn rb(through: StartStep, carried: bool, cause: RollbackCause) -> Transition {
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

    // -- recovery ---------------------------------------------------------------------------

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

    // -- messages ---------------------------------------------------------------------------

    fn all_blockers() -> Vec<Blocker> {
        vec![
            Blocker::AgentMissing {
                agent: "fixer".into(),
            },
            Blocker::AgentBranchMissing {
                agent: "fixer".into(),
            },
            Blocker::AgentWrongBranch {
                agent: "fixer".into(),
                actual: Some("main".into()),
            },
            Blocker::UserAhead {
                agent: "fixer".into(),
                commits: 2,
            },
            Blocker::Diverged {
                agent: "fixer".into(),
                user_only: 1,
                agent_only: 3,
            },
            Blocker::OperationInProgress {
                operation: Operation::CherryPick,
            },
            Blocker::DirtyNoStash { changes: 4 },
            Blocker::PairingBusy {
                transition: "stopping (final_sync) with fixer".into(),
            },
        ]
    }

    #[test]
    fn blockers_have_the_spec_codes_and_specific_one_line_messages_with_a_fix() {
        let codes: Vec<&str> = all_blockers().iter().map(|b| b.code()).collect();
        assert_eq!(
            codes,
            [
                "agent_missing",
                "agent_branch_missing",
                "agent_wrong_branch",
                "user_ahead",
                "diverged",
                "operation_in_progress",
                "dirty_no_stash",
                "pairing_busy"
            ]
        );
        let mut seen = BTreeSet::new();
        for b in all_blockers() {
            let m = b.message();
            assert!(seen.insert(m.clone()), "duplicate message {m}");
            assert!(!m.contains('\n'), "{m}");
            assert!(m.contains(" — "), "what, then the fix: {m}");
            // The JSON form carries the code too.
            assert_eq!(serde_json::to_value(&b).unwrap()["code"], b.code());
            assert_eq!(b.to_string(), m);
        }
        let msg = |i: usize| all_blockers()[i].message();
        assert!(msg(0).contains("berth agent new fixer"));
        assert!(msg(1).contains("`berth/fixer`"));
        assert!(msg(2).contains("on `main`") && msg(2).contains("git switch berth/fixer"));
        assert!(msg(3).contains("2 commits") && msg(3).contains("push to the agent first"));
        assert!(msg(4).contains("1 commit only yours") && msg(4).contains("3 commits only"));
        assert!(msg(4).contains("merge one into the other first"));
        assert!(msg(5).contains("cherry-pick") && msg(5).contains("--abort"));
        assert!(msg(6).contains("4 uncommitted changes") && msg(6).contains("--no-stash"));
        assert!(msg(7).contains("stopping (final_sync) with fixer"));
        let detached = Blocker::AgentWrongBranch {
            agent: "a".into(),
            actual: None,
        };
        assert!(detached.message().contains("detached HEAD"));
        let report = Blocker::report(&all_blockers());
        assert_eq!(report.lines().count(), 8);
        assert!(
            report
                .lines()
                .next()
                .unwrap()
                .starts_with("agent_missing: ")
        );
    }

    fn all_notices() -> Vec<Notice> {
        let mut v = vec![
            n_user(),
            n_user_detached(),
            Notice::AgentSwitchedBranch {
                agent: "fixer".into(),
                actual: Some("wip".into()),
            },
            Notice::Diverged {
                agent: "fixer".into(),
            },
            Notice::AgentWorkspaceMissing {
                agent: "fixer".into(),
                path: "/ws/fixer".into(),
            },
            Notice::AgentBranchDeleted {
                agent: "fixer".into(),
            },
            Notice::UnexpectedError {
                message: "index.lock exists".into(),
            },
            Notice::Revalidating,
        ];
        for side in [Side::User, Side::Agent] {
            v.push(Notice::OperationInProgress {
                side,
                operation: Operation::Rebase,
            });
            v.push(Notice::RootEmptied {
                side,
                path: "/r".into(),
            });
            v.push(Notice::RootDeleted {
                side,
                path: "/r".into(),
            });
            v.push(Notice::WatchStalled { side });
            v.push(Notice::DiskFull {
                side,
                path: "a.txt".into(),
            });
            v.push(Notice::PermissionDenied {
                side,
                path: "a.txt".into(),
            });
        }
        v
    }

    #[test]
    fn notices_say_what_happened_and_how_pairing_resumes() {
        assert_eq!(
            n_user().message(),
            "paused: you switched to `main` in your checkout — switch back to `berth/fixer` to resume"
        );
        let mut messages = BTreeSet::new();
        let mut codes = BTreeSet::new();
        for n in all_notices() {
            let m = n.message();
            assert!(messages.insert(m.clone()), "duplicate message {m}");
            codes.insert(n.code());
            assert!(m.starts_with("paused: "), "{m}");
            assert!(!m.contains('\n'), "{m}");
            assert!(m.contains(" — ") && m.contains("resume"), "{m}");
            assert_eq!(serde_json::to_value(&n).unwrap()["code"], n.code());
            assert_eq!(n.to_string(), m);
        }
        assert_eq!(codes.len(), 14, "one code per kind of notice");
        let by_code = |code: &str, side: Option<Side>| {
            all_notices()
                .into_iter()
                .find(|n| {
                    n.code() == code
                        && side.is_none_or(|s| {
                            matches!(n.cause(), Cause::Operation(x) | Cause::Root(x) | Cause::Watch(x) | Cause::Write(x) if x == s)
                        })
                })
                .unwrap()
                .message()
        };
        assert!(by_code("agent_switched_branch", None).contains("`wip`"));
        assert!(by_code("agent_workspace_missing", None).contains("/ws/fixer"));
        assert!(by_code("unexpected_error", None).contains("index.lock exists"));
        let op = by_code("operation_in_progress", Some(Side::Agent));
        assert!(
            op.contains("rebase") && op.contains("the agent's workspace"),
            "{op}"
        );
        let disk = by_code("disk_full", Some(Side::User));
        assert!(
            disk.contains("`a.txt`") && disk.contains("your checkout"),
            "{disk}"
        );
        assert!(by_code("root_emptied", None).contains("halted"));
    }

    #[test]
    fn causes_group_exactly_the_notices_one_resolution_clears() {
        let mut by_cause: std::collections::BTreeMap<Cause, Vec<&str>> = Default::default();
        for n in all_notices() {
            by_cause.entry(n.cause()).or_default().push(n.code());
        }
        for (cause, codes) in &by_cause {
            let expected: &[&str] = match cause {
                Cause::UserBranch => &["user_switched_branch", "user_detached_head"],
                Cause::Root(_) => &["root_emptied", "root_deleted"],
                Cause::Write(_) => &["disk_full", "permission_denied"],
                _ => &codes[..1],
            };
            assert_eq!(codes, expected, "{cause:?}");
        }
        assert_eq!(by_cause.len(), 15, "every cause, the sided ones per side");
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
