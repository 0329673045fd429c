//! Capturing uncommitted work without touching the index or the working tree.

use std::path::{Path, PathBuf};

use super::{Snapshot, SnapshotError, meta, refname, validate_id};
use crate::git::{Access, Git, GitError};
use crate::head::{self, Head};
use crate::refs;
use crate::status::{self, Entry, Submodule};

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

/// A temporary index file in the git dir, removed when dropped.
struct TempIndex(PathBuf);

impl TempIndex {
    fn copy_of(git_dir: &Path, id: &str, suffix: &str) -> std::io::Result<TempIndex> {
        let path = git_dir.join(format!("berth-snapshot-{id}-{suffix}.index"));
        let real = git_dir.join("index");
        if real.exists() {
            std::fs::copy(&real, &path)?;
        } else {
            // Nothing staged yet (e.g. a repository without commits): start from no index.
            let _ = std::fs::remove_file(&path);
        }
        Ok(TempIndex(path))
    }
}

impl Drop for TempIndex {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
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
    validate_id(&opts.id)?;
    let head = head::head(git)?;
    let st = status::status(git, false)?;
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
    let index_copy =
        TempIndex::copy_of(&git_dir, &opts.id, "index").map_err(|e| io_err("copy index", e))?;
    let index_tree = at_top
        .with_env("GIT_INDEX_FILE", &index_copy.0)
        .run(Access::Write, &["write-tree"])?
        .text();
    // The working tree: everything git would consider (tracked, and untracked not ignored).
    let work =
        TempIndex::copy_of(&git_dir, &opts.id, "work").map_err(|e| io_err("copy index", e))?;
    let in_work = at_top.with_env("GIT_INDEX_FILE", &work.0);
    in_work.run(Access::Write, &["add", "--all"])?;
    let work_tree = in_work.run(Access::Write, &["write-tree"])?.text();

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
    let index_msg = format!("berth snapshot {} (index)\n", opts.id);
    let index_commit = commit_tree(&committer, &index_tree, &parents, &index_msg)?;
    parents.extend(["-p".to_string(), index_commit.clone()]);
    let commit = commit_tree(
        &committer,
        &work_tree,
        &parents,
        &meta::render(&meta, &warnings),
    )?;
    refs::compare_and_swap(git, &refname(&opts.id), None, &commit, "berth: snapshot")?;
    Ok(Snapshot {
        meta,
        commit,
        index_commit,
        warnings,
    })
}

fn commit_tree(
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
