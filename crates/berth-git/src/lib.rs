//! The git command line, wrapped for berth.
//!
//! berth shells out to `git` for every git operation (never a reimplementation), with a fixed
//! environment ([`git`]) and machine-readable output (`-z`, porcelain v2). Parsing is separated
//! from running: each parser is a pure function over bytes, tested on recorded real output and
//! with property tests that no input makes it panic.
//!
//! - [`status`]: `git status --porcelain=v2 -z --branch --untracked-files=all`.
//! - [`operation`]: the operation in progress in a worktree (merge, rebase, cherry-pick, revert,
//!   bisect, am).
//! - [`head`]: what HEAD is (a branch, detached, unborn).
//! - [`relation`]: how two commits relate (equal, ahead, behind, diverged, unrelated).
//! - [`refs`]: fast-forward-only ref moves with compare-and-swap.
//! - [`snapshot`]: exact capture and restore of uncommitted work.
//! - [`workspace`]: agent workspaces (shared clones), keep-alive refs, the fast-forward mirror.
//! - [`pairing`]: what the daemon needs for pairing: git dirs, ahead/behind counts, moving a
//!   branch with the index following, keeping an agent's losing version of a conflict.
//! - [`exclude`]: a block of lines berth adds to `info/exclude` and takes out again exactly.
//! - [`failpoint`]: failpoints at every step of snapshot capture and restore.

pub mod bundle;
pub mod exclude;
pub mod failpoint;
pub mod git;
pub mod head;
pub mod operation;
pub mod pairing;
pub mod refs;
pub mod relation;
pub mod snapshot;
pub mod status;
mod tempindex;
pub mod workspace;

pub use git::{Access, Git, GitError, Output};
