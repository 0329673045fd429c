//! Capturing uncommitted work without touching the index or the working tree.

use std::path::{Path, PathBuf};

use super::{Snapshot, SnapshotError, meta, refname, validate_id};
use crate::failpoint::{
    self, SNAPSHOT_COMMIT, SNAPSHOT_INDEX_TREE, SNAPSHOT_REF, SNAPSHOT_WORK_TREE,
};
use crate::git::{Access, Git, GitError};
use crate::head::{self, Head};
use crate::refs;
use crate::status::{self, Entry, Submodule};
use crate::tempindex::TempIndex;

/// What to record about a snapshot being taken.
#[derive(Debug, Clone)]
pub struct CaptureOptions {
    pub id: String,
    pub time_ms: i64,
    pub reason: String,
    pub message: Option<String>,
    pub pairing: Option<String>,
}

/// Identity for snapshot commits, so capture works where no `user.name` is configured.
pub(crate) fn as_berth(git: &Git) -> Git {
    git.with_env("GIT_AUTHOR_NAME", "berth")
        .with_env("GIT_AUTHOR_EMAIL", "berth@localhost")
        .with_env("GIT_COMMITTER_NAME", "berth")
        .with_env("GIT_COMMITTER_EMAIL", "berth@localhost")
}

fn io_err(what: &str, e: std::io::Error) -> SnapshotError {
    SnapshotError::Git(GitError::Parse {
        args: what.to_string(),
        detail: e.to_string(),
    })
}

/// What cannot be captured exactly, one warning per path.
fn warnings(st: &status::Status) -> Vec<String> {
    let mut w = Vec::new();
    for e in &st.entries {
        let path = String::from_utf8_lossy(e.path()).into_owned();
        match e {
            Entry::Changed {
                submodule:
                    Submodule::Submodule {
                        tracked_changes,
                        untracked_changes,
                        ..
                    },
                ..
            } if *tracked_changes || *untracked_changes => {
                w.push(format!(
                    "submodule {path} has uncommitted changes of its own; only its checked-out commit is captured"
                ));
            }
            Entry::Untracked { path: p } if p.ends_with(b"/") => {
                w.push(format!(
                    "{path} is a git repository inside the working tree; only its commit is recorded, not its files"
                ));
            }
            _ => {}
        }
    }
    w
}

/// Captures the index and the working tree of the repository `git` runs in.
pub fn capture(git: &Git, opts: CaptureOptions) -> Result<Snapshot, SnapshotError> {
    capture_seen(git, opts, None)
}

/// [`capture`], with the repository's status (`status::status(git, false)`) as its caller
/// read it just before, so that it is not read again (the working tree itself is read by the
/// capture in any case: the status only names unmerged paths and what the snapshot warns of).
pub fn capture_seen(
    git: &Git,
    opts: CaptureOptions,
    seen: Option<status::Status>,
) -> Result<Snapshot, SnapshotError> {
    validate_id(&opts.id)?;
    if opts.message.as_deref().is_some_and(|m| m.contains('\0')) {
        return Err(SnapshotError::NulInMessage);
    }
    let head = head::head(git)?;
    let st = match seen {
        Some(st) => st,
        None => status::status(git, false)?,
    };
    let unmerged: Vec<String> = st
        .entries
        .iter()
        .filter(|e| matches!(e, Entry::Unmerged { .. }))
        .map(|e| String::from_utf8_lossy(e.path()).into_owned())
        .collect();
    if !unmerged.is_empty() {
        return Err(SnapshotError::Unmerged(unmerged));
    }
    let warnings = warnings(&st);
    let git_dir = PathBuf::from(git.query(&["rev-parse", "--absolute-git-dir"])?);
    let top = PathBuf::from(git.query(&["rev-parse", "--show-toplevel"])?);
    let at_top = Git::new(&top);

    // The index, through a copy: `write-tree` may rewrite the cache-tree of the file it uses.
    failpoint::check(SNAPSHOT_INDEX_TREE)?;
    let trees = Trees::new(&at_top, &git_dir, &format!("snapshot-{}-work", opts.id))?;
    let index_tree = trees.index()?;
    // The working tree: everything git would consider (tracked, and untracked not ignored) —
    // the index with what the status names as changed or untracked taken in.
    failpoint::check(SNAPSHOT_WORK_TREE)?;
    let work_tree = trees.work(Some(&changed_paths(&st)))?;
    drop(trees);

    let (branch, head_oid) = match &head {
        Head::Branch { name, oid } => (Some(name.clone()), Some(oid.clone())),
        Head::Detached { oid } => (None, Some(oid.clone())),
        Head::Unborn { name } => (Some(name.clone()), None),
    };
    let meta = meta::SnapshotMeta {
        id: opts.id.clone(),
        branch,
        head: head_oid.clone(),
        time_ms: opts.time_ms,
        reason: opts.reason,
        message: opts.message,
        pairing: opts.pairing,
    };
    let committer = as_berth(&at_top);
    let mut parents: Vec<String> = Vec::new();
    if let Some(h) = &head_oid {
        parents.extend(["-p".to_string(), h.clone()]);
    }
    failpoint::check(SNAPSHOT_COMMIT)?;
    let index_msg = format!("berth snapshot {} (index)\n", opts.id);
    let index_commit = commit_tree(&committer, &index_tree, &parents, &index_msg)?;
    parents.extend(["-p".to_string(), index_commit.clone()]);
    let commit = commit_tree(
        &committer,
        &work_tree,
        &parents,
        &meta::render(&meta, &warnings),
    )?;
    failpoint::check(SNAPSHOT_REF)?;
    refs::compare_and_swap(git, &refname(&opts.id), None, &commit, "berth: snapshot")?;
    Ok(Snapshot {
        meta,
        commit,
        index_commit,
        warnings,
    })
}

/// The trees of a repository's index and of its working tree, built through one temporary
/// copy of the index file, so the user's index file is never rewritten: first the index's
/// ([`Trees::index`], which leaves the copy knowing every directory's tree), then the working
/// tree's ([`Trees::work`], which then writes only the trees of directories that differ).
pub(crate) struct Trees {
    /// Removed when the trees are built (dropped).
    _copy: TempIndex,
    git: Git,
}

impl Trees {
    /// `name`: the temporary file's name.
    pub(crate) fn new(top: &Git, git_dir: &Path, name: &str) -> Result<Trees, SnapshotError> {
        let copy = TempIndex::copy_of(git_dir, name).map_err(|e| io_err("copy index", e))?;
        let git = top.with_env("GIT_INDEX_FILE", copy.path());
        Ok(Trees { _copy: copy, git })
    }

    /// Runs git on the copy. The copy is written without the checksum git otherwise computes
    /// over the whole file (`index.skipHash`): a large index's SHA-1 is most of the cost of
    /// writing it, and only the git commands here ever read the copy.
    fn run(&self, args: &[&str], input: Option<&[u8]>) -> Result<String, SnapshotError> {
        let args = [&["-c", "index.skipHash=true"], args].concat();
        let out = match input {
            Some(bytes) => self.git.run_with_input(Access::Write, &args, bytes)?,
            None => self.git.run(Access::Write, &args)?,
        };
        Ok(out.text())
    }

    /// The index's tree.
    pub(crate) fn index(&self) -> Result<String, SnapshotError> {
        self.run(&["write-tree"], None)
    }

    /// The working tree's: everything git would consider (tracked, and untracked that is not
    /// ignored). `changed`: the paths a status named (see [`changed_paths`]) — only those are
    /// looked at (`update-index --add --remove`: each as it is now on disk, out of the index
    /// if it is gone), so the cost is what changed rather than every file of the tree; what
    /// changes after that status is not in it, and whoever replaces the working tree compares
    /// first ([`super::matches_worktree`]). `None`: every file is looked at (`add --all`).
    pub(crate) fn work(&self, changed: Option<&[u8]>) -> Result<String, SnapshotError> {
        match changed {
            Some([]) => {}
            Some(paths) => {
                self.run(
                    &["update-index", "--add", "--remove", "-z", "--stdin"],
                    Some(paths),
                )?;
            }
            None => {
                self.run(&["add", "--all"], None)?;
            }
        }
        self.run(&["write-tree"], None)
    }
}

/// The paths a status names as different from the index in the working tree or untracked
/// (an embedded repository's without its trailing `/`), NUL-terminated.
fn changed_paths(st: &status::Status) -> Vec<u8> {
    let mut out = Vec::new();
    for e in &st.entries {
        if matches!(e, Entry::Ignored { .. }) {
            continue;
        }
        let path = e.path();
        out.extend_from_slice(path.strip_suffix(b"/").unwrap_or(path));
        out.push(0);
    }
    out
}

pub(crate) fn commit_tree(
    git: &Git,
    tree: &str,
    parents: &[String],
    message: &str,
) -> Result<String, GitError> {
    let mut args = vec!["commit-tree".to_string(), tree.to_string()];
    args.extend(parents.iter().cloned());
    args.extend(["-F".to_string(), "-".to_string()]);
    Ok(git
        .run_with_input(Access::Write, &args, message.as_bytes())?
        .text())
}
