//! Snapshots of uncommitted work: the index, the working tree and untracked (not ignored) files
//! captured as git objects under `refs/berth/stash/<id>`, without touching either.
//!
//! # Shape
//!
//! ```text
//!   W  refs/berth/stash/<id>   tree: the working tree (tracked + untracked, not ignored)
//!   |\                        message: self-describing metadata (see [`meta`])
//!   | I                       tree: the index
//!   |/
//!   H                         HEAD at capture (absent on an unborn branch)
//! ```
//!
//! Capture ([`capture`]) builds both trees through temporary index files, so the user's index
//! file is never rewritten. Restore ([`restore`]) refuses — changing nothing — while an
//! operation is in progress, when the tree is dirty, or when the original branch moved in a way
//! that conflicts with the snapshot; otherwise it moves the working tree to `W` in one
//! `read-tree -m -u` step (which itself refuses to overwrite untracked files), points HEAD back
//! at the original branch, sets the index to `I`, and only then deletes the ref.
//!
//! Restore is resumable: a process that dies between its steps leaves the working tree equal to
//! `W`, the index equal to `W` or `I`, and the ref in place; running [`restore`] again recognises
//! exactly that state (comparing trees built through temporary index files) and finishes the
//! remaining steps. Each step has a failpoint ([`crate::failpoint`]).

mod capture;
pub mod meta;
mod restore;

use berth_proto::SnapshotInfo;

use crate::git::{Access, Git, GitError};
use crate::refs::{self, RefError};

pub use capture::{CaptureOptions, capture, capture_seen};
pub(crate) use capture::{as_berth, commit_tree};
pub use meta::SnapshotMeta;
pub use restore::{RestoreReport, restore};

/// Where snapshots live.
pub const REF_PREFIX: &str = "refs/berth/stash/";

/// A snapshot as found in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    /// `W`: the working-tree commit the ref points at.
    pub commit: String,
    /// `I`: the index commit (the last parent of `W`).
    pub index_commit: String,
    /// What could not be captured exactly (a submodule's own changes, an embedded repository).
    pub warnings: Vec<String>,
}

impl Snapshot {
    pub fn refname(&self) -> String {
        refname(&self.meta.id)
    }

    /// The snapshot as the API shows it and the store records it.
    pub fn info(&self, repo: &str, recorded: bool) -> SnapshotInfo {
        SnapshotInfo {
            meta: self.meta.clone(),
            repo: repo.to_string(),
            commit: self.commit.clone(),
            warnings: self.warnings.clone(),
            recorded,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("invalid snapshot id {0:?}: use lowercase letters, digits and '-'")]
    BadId(String),
    #[error(
        "the snapshot message contains a NUL byte, which a git commit message cannot hold; \
         write it without one"
    )]
    NulInMessage,
    #[error("no snapshot {0} in this repository; `berth stash list` shows them")]
    NotFound(String),
    #[error("{0} is not a berth snapshot (its commit message has no berth metadata)")]
    NotASnapshot(String),
    #[error(
        "the index has unresolved conflicts ({}); resolve them (or abort the operation) first",
        .0.join(", ")
    )]
    Unmerged(Vec<String>),
    #[error("{} is in progress; finish it or abort it ({}) before restoring", .what, .hint)]
    OperationInProgress {
        what: &'static str,
        hint: &'static str,
    },
    #[error(
        "the working tree has changes ({}); restoring would overwrite them. Commit them, or save \
         them with `berth stash save`, then restore",
        .0.join(", ")
    )]
    Dirty(Vec<String>),
    #[error(
        "{branch} no longer exists; recreate it where the snapshot was taken \
         (`git branch {short} {head}`), then restore"
    )]
    BranchMissing {
        branch: String,
        short: String,
        head: String,
    },
    #[error(
        "{branch} has moved since the snapshot and its changes conflict with it ({}); \
         check out a commit without those changes or restore the files by hand from {commit}",
        .conflicts.join(", ")
    )]
    BranchMovedConflict {
        branch: String,
        conflicts: Vec<String>,
        commit: String,
    },
    #[error(
        "{branch} was created since the snapshot was taken on it while it had no commits; \
         restore on another branch by hand from {commit}"
    )]
    UnbornBranchNowExists { branch: String, commit: String },
    #[error(
        "restoring would overwrite files git ignores or does not track ({}); move them away \
         first",
        .0.join(", ")
    )]
    WouldOverwrite(Vec<String>),
    #[error(transparent)]
    Ref(#[from] RefError),
    #[error(transparent)]
    Git(#[from] GitError),
}

/// Ids are safe as one ref name component.
pub fn validate_id(id: &str) -> Result<(), SnapshotError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(SnapshotError::BadId(id.to_string()))
    }
}

pub fn refname(id: &str) -> String {
    format!("{REF_PREFIX}{id}")
}

/// Reads one snapshot from its ref.
pub fn read(git: &Git, id: &str) -> Result<Snapshot, SnapshotError> {
    validate_id(id)?;
    let commit =
        refs::resolve(git, &refname(id))?.ok_or_else(|| SnapshotError::NotFound(id.into()))?;
    from_commit(git, &commit)
}

fn from_commit(git: &Git, commit: &str) -> Result<Snapshot, SnapshotError> {
    let message = git.run(Access::Read, &["cat-file", "commit", commit])?;
    let text = String::from_utf8_lossy(&message.stdout);
    let body = text.split_once("\n\n").map_or("", |(_, b)| b);
    let (meta, warnings) =
        meta::parse(body).ok_or_else(|| SnapshotError::NotASnapshot(commit.to_string()))?;
    // `I` is always the last parent: `W`'s parents are HEAD and `I`, or just `I` when HEAD was
    // unborn.
    let parents = git.query(&["rev-list", "--parents", "-n", "1", commit])?;
    let index_commit = match parents.split_whitespace().collect::<Vec<_>>().as_slice() {
        [_, .., last] => last.to_string(),
        _ => return Err(SnapshotError::NotASnapshot(commit.to_string())),
    };
    Ok(Snapshot {
        meta,
        commit: commit.to_string(),
        index_commit,
        warnings,
    })
}

/// Every snapshot in the repository, oldest first, found from the refs alone.
pub fn list(git: &Git) -> Result<Vec<Snapshot>, SnapshotError> {
    let out = git.query(&["for-each-ref", "--format=%(objectname)", REF_PREFIX])?;
    let mut all = Vec::new();
    for commit in out.lines().filter(|l| !l.is_empty()) {
        match from_commit(git, commit) {
            Ok(s) => all.push(s),
            Err(SnapshotError::NotASnapshot(_)) => {
                tracing::warn!("{commit} under {REF_PREFIX} is not a berth snapshot; skipped");
            }
            Err(e) => return Err(e),
        }
    }
    all.sort_by(|a, b| {
        a.meta
            .time_ms
            .cmp(&b.meta.time_ms)
            .then(a.meta.id.cmp(&b.meta.id))
    });
    Ok(all)
}

/// Whether the repository's index and working tree hold exactly what snapshot `id` captured
/// (the index `I`'s tree, the working tree `W`'s), so replacing them loses nothing the snapshot
/// does not keep. Both trees are built through a temporary copy of the index file.
pub fn matches_worktree(git: &Git, id: &str) -> Result<bool, SnapshotError> {
    let snap = read(git, id)?;
    let top = Git::new(git.query(&["rev-parse", "--show-toplevel"])?);
    let git_dir = std::path::PathBuf::from(top.query(&["rev-parse", "--absolute-git-dir"])?);
    let tree = |c: &str| top.query(&["rev-parse", "--verify", &format!("{c}^{{tree}}")]);
    let trees = capture::Trees::new(&top, &git_dir, &format!("match-{id}"))?;
    if trees.index()? != tree(&snap.index_commit)? {
        return Ok(false);
    }
    Ok(trees.work(None)? == tree(&snap.commit)?)
}

/// Deletes a snapshot (only if its ref still points where it did when read).
pub fn drop_snapshot(git: &Git, id: &str) -> Result<Snapshot, SnapshotError> {
    let snap = read(git, id)?;
    refs::delete(git, &snap.refname(), &snap.commit)?;
    Ok(snap)
}

/// `(status letter, path)` pairs; see [`changes`].
pub type PathChanges = Vec<(char, Vec<u8>)>;

/// What a snapshot changes: staged, then not staged.
pub type Changes = (PathChanges, PathChanges);

/// Paths a snapshot changes relative to its HEAD: `(status letter, path)` for the index (`I`
/// against `H`) and for the working tree (`W` against `I`).
pub fn changes(git: &Git, snap: &Snapshot) -> Result<Changes, SnapshotError> {
    let base = match &snap.meta.head {
        Some(h) => h.clone(),
        None => empty_tree(git)?,
    };
    let staged = diff_names(git, &base, &snap.index_commit)?;
    let unstaged = diff_names(git, &snap.index_commit, &snap.commit)?;
    Ok((staged, unstaged))
}

fn diff_names(git: &Git, from: &str, to: &str) -> Result<PathChanges, SnapshotError> {
    let out = git.run(
        Access::Read,
        &[
            "diff-tree",
            "-r",
            "-z",
            "--no-renames",
            "--name-status",
            from,
            to,
        ],
    )?;
    let mut fields = out.stdout.split(|b| *b == 0).filter(|f| !f.is_empty());
    let mut changes = Vec::new();
    while let (Some(status), Some(path)) = (fields.next(), fields.next()) {
        changes.push((status.first().map_or('?', |b| *b as char), path.to_vec()));
    }
    Ok(changes)
}

/// The empty tree's id in this repository's hash format.
pub(crate) fn empty_tree(git: &Git) -> Result<String, GitError> {
    Ok(git
        .run_with_input(Access::Write, &["mktree", "-z"], b"")?
        .text())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_single_safe_ref_components() {
        for ok in ["20261123-013612-ab12", "a", "x-1"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "A", "a/b", "..", "a b", "a.lock", &"x".repeat(65)] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }
}
