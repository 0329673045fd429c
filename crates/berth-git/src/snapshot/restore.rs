//! Restoring a snapshot exactly, or refusing without changing anything.

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::capture::{Trees, as_berth};
use super::{Snapshot, SnapshotError, empty_tree, read};
use crate::failpoint::{
    self, RESTORE_DELETE_REF, RESTORE_HEAD, RESTORE_INDEX, RESTORE_PLAN, RESTORE_READ_TREE,
};
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

/// The paths where tree-ish `to` differs from `from` (only the kinds of change `filter` names,
/// as `--diff-filter` takes them, if given), NUL-terminated. Identical subtrees are skipped by
/// hash, so this costs what differs, not the size of the tree.
fn diff_paths(git: &Git, from: &str, to: &str, filter: Option<&str>) -> Result<Vec<u8>, GitError> {
    let filter = filter.map(|f| format!("--diff-filter={f}"));
    let mut args = vec!["diff-tree", "-r", "-z", "--no-renames", "--name-only"];
    args.extend(filter.as_deref());
    args.extend([from, to]);
    Ok(git.run(Access::Read, &args)?.stdout)
}

/// Paths that exist in `to` but not in `from`.
fn added_paths(git: &Git, from: &str, to: &str) -> Result<Vec<Vec<u8>>, GitError> {
    Ok(diff_paths(git, from, to, Some("A"))?
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
///
/// Resumable: if an earlier restore of this snapshot stopped after moving the working tree (the
/// process died), the working tree is already exactly `W` and the index is `W` (or already `I`);
/// that state is recognised and the remaining steps are finished. Any other change in the tree
/// is refused as [`SnapshotError::Dirty`], changing nothing.
pub fn restore(git: &Git, id: &str) -> Result<RestoreReport, SnapshotError> {
    let snap = read(git, id)?;
    let top = PathBuf::from(git.query(&["rev-parse", "--show-toplevel"])?);
    let git = Git::new(&top);
    failpoint::check(RESTORE_PLAN)?;
    if let Some(op) = operation::in_progress(&git)? {
        return Err(SnapshotError::OperationInProgress {
            what: op.describe(),
            hint: op.abort_hint(),
        });
    }
    let st = status::status(&git, false)?;
    if !st.is_clean() {
        let dirty = || {
            let paths = st
                .entries
                .iter()
                .map(|e| String::from_utf8_lossy(e.path()).into_owned());
            SnapshotError::Dirty(sample(paths))
        };
        // Perhaps this is a restore of this very snapshot that was interrupted after it moved
        // the working tree: then the tree is "dirty" with exactly the snapshot's content.
        // Only a restore that began (its marker is there) can have been interrupted: a tree
        // that merely holds the snapshot's content is refused like any dirty tree.
        if !marker(&git)?.is_some_and(|m| began(&m, &snap)) {
            return Err(dirty());
        }
        let Ok(plan) = plan(&git, &snap) else {
            return Err(dirty());
        };
        let Some(index_done) = interrupted(&git, &snap, &plan)? else {
            return Err(dirty());
        };
        tracing::info!(
            snapshot = snap.meta.id,
            "finishing an interrupted restore: the working tree is already the snapshot's"
        );
        return finish(&git, snap, plan, index_done);
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

    // Whether the index holds I already (nothing was staged, or what is staged now is what
    // was then): then only the files that differ from it are written.
    let git_dir = PathBuf::from(git.query(&["rev-parse", "--absolute-git-dir"])?);
    let index_now = Trees::new(&git, &git_dir, &format!("restore-{}", snap.meta.id))?.index()?;
    let index_done = index_now == tree_of(&git, &plan.index_tree)?;

    // 1. The working tree to W; the marker says a restore of this snapshot began, until it
    //    has finished.
    failpoint::check(RESTORE_READ_TREE)?;
    if let Some(m) = marker(&git)? {
        std::fs::write(&m, &snap.commit).map_err(|e| marker_error(&m, e))?;
    }
    if index_done {
        write_differences(&git, &plan.index_tree, &plan.work_tree)?;
    } else {
        // The working tree and, for now, the index, in one step; read-tree refuses to
        // overwrite anything untracked, so a surprise here still leaves the tree as it was.
        git.run(
            Access::Write,
            &["read-tree", "-m", "-u", &current, &plan.work_tree],
        )?;
    }
    finish(&git, snap, plan, index_done)
}

/// Writes into a clean working tree whose index holds `index` the paths where `work` differs
/// from it, leaving the index alone: the restore of a snapshot whose index is already there
/// costs what it changes, not a pass over every entry of a large index and its files. Paths
/// that `work` does not have are removed; untracked files it adds cannot be in the way (the
/// caller refused those before). Paths are taken literally, whatever characters they hold.
fn write_differences(git: &Git, index: &str, work: &str) -> Result<(), GitError> {
    let changed = diff_paths(git, index, work, None)?;
    if changed.iter().all(|b| *b == 0) {
        return Ok(());
    }
    git.run_with_input(
        Access::Write,
        &[
            "--literal-pathspecs",
            "restore",
            "--source",
            work,
            "--worktree",
            "--no-overlay",
            "--pathspec-from-file=-",
            "--pathspec-file-nul",
        ],
        &changed,
    )?;
    Ok(())
}

/// Where a restore in progress is marked: `BERTH_RESTORING` in the worktree's git dir, holding
/// the snapshot commit being restored. `None` when the git dir cannot be found.
fn marker(git: &Git) -> Result<Option<PathBuf>, GitError> {
    let dir = git.query(&["rev-parse", "--absolute-git-dir"])?;
    Ok((!dir.is_empty()).then(|| PathBuf::from(dir).join("BERTH_RESTORING")))
}

/// Whether the marker at `path` says a restore of `snap` began.
fn began(path: &std::path::Path, snap: &Snapshot) -> bool {
    std::fs::read_to_string(path).is_ok_and(|c| c.trim() == snap.commit)
}

fn marker_error(path: &std::path::Path, e: std::io::Error) -> SnapshotError {
    SnapshotError::Git(GitError::Parse {
        args: format!("restore marker {}", path.display()),
        detail: e.to_string(),
    })
}

/// The tree a tree-ish names.
fn tree_of(git: &Git, treeish: &str) -> Result<String, GitError> {
    git.query(&["rev-parse", "--verify", &format!("{treeish}^{{tree}}")])
}

/// Whether the repository is exactly where an interrupted restore of `snap` (planned as `plan`)
/// left it: the working tree equals `W`'s tree (step 1 done) and the index equals `W`'s tree
/// (step 1 sets it) or `I`'s (step 3 done, or it held `I` all along): `Some(true)` when the
/// index is `I`. HEAD is not compared: it only decides which branch
/// is checked out, and nothing on any branch is changed by moving it.
///
/// Both trees are built through temporary copies of the index file, as capture does, so the
/// user's index file is never written here.
fn interrupted(git: &Git, snap: &Snapshot, plan: &Plan) -> Result<Option<bool>, SnapshotError> {
    let git_dir = PathBuf::from(git.query(&["rev-parse", "--absolute-git-dir"])?);
    let id = &snap.meta.id;
    let want_work = tree_of(git, &plan.work_tree)?;
    let want_index = tree_of(git, &plan.index_tree)?;
    // An index that cannot be written as a tree (unmerged entries) is not ours.
    let trees = Trees::new(git, &git_dir, &format!("restore-{id}"))?;
    let index_now = match trees.index() {
        Ok(t) => t,
        Err(SnapshotError::Git(GitError::Failed { .. })) => return Ok(None),
        Err(e) => return Err(e),
    };
    if index_now != want_work && index_now != want_index {
        return Ok(None);
    }
    let work_now = trees.work(None)?;
    Ok((work_now == want_work).then_some(index_now == want_index))
}

/// Steps 2–4, once the working tree is `W`: HEAD, the index (unless it holds `I` already:
/// `index_done`), the ref. Each is idempotent, so running them again after an interruption
/// is exact.
fn finish(
    git: &Git,
    snap: Snapshot,
    plan: Plan,
    index_done: bool,
) -> Result<RestoreReport, SnapshotError> {
    // 2. HEAD back where the snapshot was taken (unless it is there already).
    failpoint::check(RESTORE_HEAD)?;
    let now = head::head(git)?;
    match &plan.head {
        Target::Branch(b) | Target::Unborn(b) => {
            if now.branch() != Some(b.as_str()) {
                git.run(
                    Access::Write,
                    &["symbolic-ref", "-m", "berth: restore snapshot", "HEAD", b],
                )?;
            }
        }
        Target::Detached(oid) => {
            if !matches!(&now, Head::Detached { oid: at } if at == oid) {
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
    }
    // 3. The index to I. `-m` keeps the stat data of entries that equal W's (so the refresh
    //    below rehashes only what differs), then fresh stat data for the rest. Reading I again
    //    when the index is already I changes nothing.
    failpoint::check(RESTORE_INDEX)?;
    if !index_done {
        git.run(Access::Write, &["read-tree", "-m", &plan.index_tree])?;
        git.output(Access::Write, &["update-index", "-q", "--refresh"])?;
    }
    // 4. Only now is the snapshot no longer needed.
    failpoint::check(RESTORE_DELETE_REF)?;
    refs::delete(git, &snap.refname(), &snap.commit)?;
    if let Some(m) = marker(git)? {
        match std::fs::remove_file(&m) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(marker_error(&m, e)),
        }
    }
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
