//! Restoring a snapshot exactly, or refusing without changing anything.

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::{Snapshot, SnapshotError, capture::as_berth, empty_tree, read};
use crate::git::{Access, Git, GitError};
use crate::head::{self, Head};
use crate::operation;
use crate::refs;
use crate::status;

/// How a restore went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    pub snapshot: Snapshot,
    /// The branch checked out again (`None`: HEAD detached at the snapshot's commit).
    pub branch: Option<String>,
    /// The branch had moved since the snapshot; its changes were applied on top of the new tip.
    pub onto_moved_branch: Option<String>,
}

/// Shows at most a few paths in an error.
fn sample(paths: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = paths.into_iter().take(11).collect();
    if v.len() > 10 {
        v.truncate(10);
        v.push("…".into());
    }
    v
}

/// Result of a three-way merge of trees: the tree, or the conflicting paths.
fn merge(
    git: &Git,
    base: &str,
    ours: &str,
    theirs: &str,
) -> Result<Result<String, Vec<String>>, GitError> {
    let base = format!("--merge-base={base}");
    let args = [
        "merge-tree",
        "--write-tree",
        "-z",
        "--name-only",
        "--no-messages",
        &base,
        ours,
        theirs,
    ];
    let out = as_berth(git).output(Access::Write, &args)?;
    let mut fields = out.stdout.split(|b| *b == 0);
    let tree = fields
        .next()
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .unwrap_or_default();
    match out.code {
        0 => Ok(Ok(tree)),
        1 => Ok(Err(fields
            .take_while(|f| !f.is_empty())
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect())),
        code => Err(GitError::Failed {
            args: crate::git::render_args(&args),
            code,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }),
    }
}

/// Paths that exist in `to` but not in `from` (identical subtrees are skipped by hash, so this
/// costs what differs, not the size of the tree).
fn added_paths(git: &Git, from: &str, to: &str) -> Result<Vec<Vec<u8>>, GitError> {
    let args = [
        "diff-tree",
        "-r",
        "-z",
        "--no-renames",
        "--name-only",
        "--diff-filter=A",
        from,
        to,
    ];
    let out = git.run(Access::Read, &args)?;
    Ok(out
        .stdout
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

/// Where the restore goes, decided before anything changes.
struct Plan {
    index_tree: String,
    work_tree: String,
    head: Target,
    onto_moved_branch: Option<String>,
}

enum Target {
    Branch(String),
    Detached(String),
    Unborn(String),
}

fn plan(git: &Git, snap: &Snapshot) -> Result<Plan, SnapshotError> {
    let index_tree = format!("{}^{{tree}}", snap.index_commit);
    let work_tree = format!("{}^{{tree}}", snap.commit);
    let m = &snap.meta;
    match (&m.branch, &m.head) {
        (None, Some(oid)) => Ok(Plan {
            index_tree,
            work_tree,
            head: Target::Detached(oid.clone()),
            onto_moved_branch: None,
        }),
        (Some(branch), None) => match refs::resolve(git, branch)? {
            None => Ok(Plan {
                index_tree,
                work_tree,
                head: Target::Unborn(branch.clone()),
                onto_moved_branch: None,
            }),
            Some(_) => Err(SnapshotError::UnbornBranchNowExists {
                branch: branch.clone(),
                commit: snap.commit.clone(),
            }),
        },
        (Some(branch), Some(head)) => {
            let short = branch
                .strip_prefix("refs/heads/")
                .unwrap_or(branch)
                .to_string();
            let Some(tip) = refs::resolve(git, branch)? else {
                return Err(SnapshotError::BranchMissing {
                    branch: short.clone(),
                    short,
                    head: head.clone(),
                });
            };
            if &tip == head {
                return Ok(Plan {
                    index_tree,
                    work_tree,
                    head: Target::Branch(branch.clone()),
                    onto_moved_branch: None,
                });
            }
            // The branch moved: apply the snapshot's changes on top of the new tip, if clean.
            let index = merge(git, head, &tip, &snap.index_commit)?;
            let work = merge(git, head, &tip, &snap.commit)?;
            match (index, work) {
                (Ok(index_tree), Ok(work_tree)) => Ok(Plan {
                    index_tree,
                    work_tree,
                    head: Target::Branch(branch.clone()),
                    onto_moved_branch: Some(short),
                }),
                (i, w) => {
                    let mut conflicts: BTreeSet<String> = BTreeSet::new();
                    conflicts.extend(i.err().unwrap_or_default());
                    conflicts.extend(w.err().unwrap_or_default());
                    Err(SnapshotError::BranchMovedConflict {
                        branch: short,
                        conflicts: sample(conflicts),
                        commit: snap.commit.clone(),
                    })
                }
            }
        }
        (None, None) => Err(SnapshotError::NotASnapshot(snap.commit.clone())),
    }
}

/// Restores snapshot `id` in the repository `git` runs in, then deletes it.
pub fn restore(git: &Git, id: &str) -> Result<RestoreReport, SnapshotError> {
    let snap = read(git, id)?;
    let top = PathBuf::from(git.query(&["rev-parse", "--show-toplevel"])?);
    let git = Git::new(&top);
    if let Some(op) = operation::in_progress(&git)? {
        return Err(SnapshotError::OperationInProgress {
            what: op.describe(),
            hint: op.abort_hint(),
        });
    }
    let st = status::status(&git, false)?;
    if !st.is_clean() {
        let dirty = st
            .entries
            .iter()
            .map(|e| String::from_utf8_lossy(e.path()).into_owned());
        return Err(SnapshotError::Dirty(sample(dirty)));
    }
    let plan = plan(&git, &snap)?;

    // Files on disk that the move would create but git does not track now (so: ignored files)
    // would be overwritten; refuse before anything changes.
    let current = match head::head(&git)? {
        Head::Branch { oid, .. } | Head::Detached { oid } => oid,
        Head::Unborn { .. } => empty_tree(&git)?,
    };
    let added = added_paths(&git, &current, &plan.work_tree)?;
    let collisions: Vec<String> = added
        .iter()
        .filter(|p| std::fs::symlink_metadata(top.join(std::ffi::OsStr::from_bytes(p))).is_ok())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    if !collisions.is_empty() {
        return Err(SnapshotError::WouldOverwrite(sample(collisions)));
    }

    // 1. The working tree (and, for now, the index) to W in one step; read-tree refuses to
    //    overwrite anything untracked, so a surprise here still leaves the tree as it was.
    git.run(
        Access::Write,
        &["read-tree", "-m", "-u", &current, &plan.work_tree],
    )?;
    // 2. HEAD back where the snapshot was taken.
    match &plan.head {
        Target::Branch(b) | Target::Unborn(b) => {
            git.run(
                Access::Write,
                &["symbolic-ref", "-m", "berth: restore snapshot", "HEAD", b],
            )?;
        }
        Target::Detached(oid) => {
            git.run(
                Access::Write,
                &[
                    "update-ref",
                    "--no-deref",
                    "-m",
                    "berth: restore snapshot",
                    "HEAD",
                    oid,
                ],
            )?;
        }
    }
    // 3. The index to I. `-m` keeps the stat data of entries that equal W's (so the refresh
    //    below rehashes only what differs), then fresh stat data for the rest.
    git.run(Access::Write, &["read-tree", "-m", &plan.index_tree])?;
    git.output(Access::Write, &["update-index", "-q", "--refresh"])?;
    // 4. Only now is the snapshot no longer needed.
    refs::delete(&git, &snap.refname(), &snap.commit)?;
    let branch = match plan.head {
        Target::Branch(b) | Target::Unborn(b) => Some(b),
        Target::Detached(_) => None,
    };
    Ok(RestoreReport {
        snapshot: snap,
        branch,
        onto_moved_branch: plan.onto_moved_branch,
    })
}
