//! The operation in progress in a worktree: a merge, rebase, `git am`, cherry-pick, revert or
//! bisect that has stopped and waits for the user.
//!
//! git records these as marker files in the worktree's own git dir (`.git` for the main
//! worktree, `.git/worktrees/<name>` for a linked one). [`detect`] decides from which markers
//! exist, as a pure function; [`in_progress`] finds the git dir and checks them.
//!
//! Not detected: a multi-commit cherry-pick or revert whose conflict has been resolved and
//! committed but which has not been continued leaves only the `sequencer/` directory (no
//! `CHERRY_PICK_HEAD`/`REVERT_HEAD`); that state is reported as no operation.

use std::path::PathBuf;

use crate::git::{Access, Git, GitError, render_args};

/// An operation in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `git merge` stopped (`MERGE_HEAD`).
    Merge,
    /// `git rebase` stopped.
    Rebase {
        /// The merge backend's `rebase-merge/` directory is present: `git rebase -i`, and also a
        /// plain `git rebase`, which has used this backend by default since git 2.26. `false`
        /// for the apply backend (`rebase-apply/`, `git rebase --apply`).
        interactive: bool,
    },
    /// `git am` stopped (`rebase-apply/applying`).
    Am,
    /// `git cherry-pick` stopped (`CHERRY_PICK_HEAD`).
    CherryPick,
    /// `git revert` stopped (`REVERT_HEAD`).
    Revert,
    /// `git bisect` is under way (`BISECT_LOG`).
    Bisect,
}

impl Operation {
    /// A noun phrase for messages: "a merge", "a rebase", ….
    pub fn describe(&self) -> &'static str {
        match self {
            Operation::Merge => "a merge",
            Operation::Rebase { .. } => "a rebase",
            Operation::Am => "an am session",
            Operation::CherryPick => "a cherry-pick",
            Operation::Revert => "a revert",
            Operation::Bisect => "a bisect",
        }
    }

    /// The commands that finish or abandon the operation.
    pub fn abort_hint(&self) -> &'static str {
        match self {
            Operation::Merge => "git merge --abort",
            Operation::Rebase { .. } => "git rebase --continue or git rebase --abort",
            Operation::Am => "git am --abort",
            Operation::CherryPick => "git cherry-pick --abort",
            Operation::Revert => "git revert --abort",
            Operation::Bisect => "git bisect reset",
        }
    }
}

/// Decides which operation is in progress from which marker paths exist in the worktree's git
/// dir; `exists` gets names relative to it (`rebase-merge`, `rebase-apply`,
/// `rebase-apply/applying`, `MERGE_HEAD`, `CHERRY_PICK_HEAD`, `REVERT_HEAD`, `BISECT_LOG`).
///
/// A rebase wins over the other markers (a conflicted rebase step may leave them too), then
/// merge, cherry-pick, revert, and bisect last (it lasts across other operations).
pub fn detect(exists: impl Fn(&str) -> bool) -> Option<Operation> {
    if exists("rebase-merge") {
        Some(Operation::Rebase { interactive: true })
    } else if exists("rebase-apply") {
        if exists("rebase-apply/applying") {
            Some(Operation::Am)
        } else {
            Some(Operation::Rebase { interactive: false })
        }
    } else if exists("MERGE_HEAD") {
        Some(Operation::Merge)
    } else if exists("CHERRY_PICK_HEAD") {
        Some(Operation::CherryPick)
    } else if exists("REVERT_HEAD") {
        Some(Operation::Revert)
    } else if exists("BISECT_LOG") {
        Some(Operation::Bisect)
    } else {
        None
    }
}

/// The operation in progress in the worktree `git` runs in. Finds the worktree's own git dir
/// with `git rev-parse --absolute-git-dir` (so linked worktrees are handled) and checks the
/// markers there.
pub fn in_progress(git: &Git) -> Result<Option<Operation>, GitError> {
    let args = ["rev-parse", "--absolute-git-dir"];
    let out = git.run(Access::Read, &args)?;
    let mut raw = out.stdout;
    if raw.last() == Some(&b'\n') {
        raw.pop();
    }
    if raw.is_empty() {
        return Err(GitError::Parse {
            args: render_args(&args),
            detail: "no git dir".into(),
        });
    }
    let dir = path_from_bytes(raw);
    // A marker that cannot be inspected (e.g. permission denied) counts as absent.
    Ok(detect(|name| dir.join(name).symlink_metadata().is_ok()))
}

#[cfg(unix)]
fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

#[cfg(not(unix))]
fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints() {
        assert_eq!(Operation::Merge.describe(), "a merge");
        assert_eq!(Operation::Bisect.abort_hint(), "git bisect reset");
        assert!(
            Operation::Rebase { interactive: false }
                .abort_hint()
                .contains("--abort")
        );
    }
}
