//! git operations the daemon needs while pairing a checkout with an agent's workspace.
//!
//! - [`git_dir`]: where a worktree's git files are (absolute).
//! - [`ahead_behind`]: how many commits each side has that the other lacks.
//! - [`index_follow`] and [`move_branch_and_index`]: when the branch HEAD is on moves (commits
//!   flow by fast-forward only), the index follows it; the working tree is left to file sync.
//! - [`index_tree`]: what the index holds, read without locking it.
//! - [`keep_conflict`]: the agent's losing version of a conflicting path, committed under a ref
//!   of its own so no edit is ever lost; [`conflict_diff`]: how it differs from the file now.
//!
//! Nothing here writes a repository's own index file except [`index_follow`], whose whole job is
//! to update it; trees are built through temporary index files.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::git::{Access, Git, GitError, render_args};
use crate::refs::{self, RefError};
use crate::snapshot::{as_berth, commit_tree};
use crate::tempindex::TempIndex;

/// The absolute git dir of the worktree `git` runs in (`rev-parse --absolute-git-dir`): for a
/// linked worktree, its own directory under the common git dir.
pub fn git_dir(git: &Git) -> Result<PathBuf, GitError> {
    let out = git.run(Access::Read, &["rev-parse", "--absolute-git-dir"])?;
    let bytes = out.stdout.strip_suffix(b"\n").unwrap_or(&out.stdout);
    if bytes.is_empty() {
        return Err(GitError::Parse {
            args: "rev-parse --absolute-git-dir".into(),
            detail: "empty output".into(),
        });
    }
    Ok(PathBuf::from(OsStr::from_bytes(bytes)))
}

/// The tree the index of the worktree `git` runs in holds, built from a copy of the index file:
/// the index itself is neither written nor locked, so a `git commit` run meanwhile (by an agent,
/// by the user) is never refused for a lock berth holds.
pub fn index_tree(git: &Git) -> Result<String, GitError> {
    let copy =
        TempIndex::copy_of(&git_dir(git)?, "pairing-index").map_err(|e| GitError::Parse {
            args: "copy the index".into(),
            detail: e.to_string(),
        })?;
    Ok(git
        .with_env("GIT_INDEX_FILE", copy.path())
        .run(Access::Write, &["write-tree"])?
        .text())
}

/// Commits only in `a` and commits only in `b`, in that order
/// (`rev-list --left-right --count a...b`).
pub fn ahead_behind(git: &Git, a: &str, b: &str) -> Result<(u64, u64), GitError> {
    let range = format!("{a}...{b}");
    let args = ["rev-list", "--left-right", "--count", range.as_str(), "--"];
    let text = git.query(&args)?;
    let bad = || GitError::Parse {
        args: render_args(&args),
        detail: format!("expected two counts, got {text:?}"),
    };
    let mut counts = text.split_whitespace().map(str::parse::<u64>);
    match (counts.next(), counts.next(), counts.next()) {
        (Some(Ok(ahead)), Some(Ok(behind)), None) => Ok((ahead, behind)),
        _ => Err(bad()),
    }
}

/// Makes the index follow the branch HEAD is on after someone else moved it from `old` to `new`,
/// without touching the working tree.
///
/// A two-way merge (`read-tree -m -i old new`) moves every entry the user has not staged to
/// `new` and keeps staged changes that do not conflict with the move; `-i` ignores the working
/// tree, which file sync updates on its own schedule. If that merge refuses (a staged change on
/// a path the move changed too), the index is read from `new` as a whole (the staged content is
/// still in the working tree). Finally the stat data is refreshed (`update-index -q --refresh`,
/// whose exit status only says that some files differ from the index).
pub fn index_follow(git: &Git, old: &str, new: &str) -> Result<(), GitError> {
    let merged = git.output(Access::Write, &["read-tree", "-m", "-i", old, new])?;
    if !merged.success() {
        tracing::info!(
            old,
            new,
            stderr = %String::from_utf8_lossy(&merged.stderr).trim(),
            "staged changes conflict with the branch move; the index is reset to the new tip"
        );
        git.run(Access::Write, &["read-tree", new])?;
    }
    git.output(Access::Write, &["update-index", "-q", "--refresh"])?;
    Ok(())
}

/// What a kept conflict version is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptKind {
    /// A regular file; `content` is its bytes.
    File {
        /// Whether it has the executable bit (mode 100755 instead of 100644).
        executable: bool,
    },
    /// A symbolic link; `content` is its target.
    Symlink,
}

impl KeptKind {
    fn mode(self) -> &'static str {
        match self {
            KeptKind::File { executable: false } => "100644",
            KeptKind::File { executable: true } => "100755",
            KeptKind::Symlink => "120000",
        }
    }
}

/// Checks that `rel` is a plain relative path git can record: not empty, no NUL, no leading or
/// trailing `/`, no empty, `.`, `..` or `.git` (any case) component. (`update-index
/// --index-info` would accept a `.git` component.)
fn check_rel(rel: &[u8]) -> Result<(), GitError> {
    let ok = !rel.is_empty()
        && !rel.contains(&0)
        && rel
            .split(|b| *b == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b".." && !c.eq_ignore_ascii_case(b".git"));
    if ok {
        Ok(())
    } else {
        Err(GitError::Parse {
            args: "keep conflict".into(),
            detail: format!(
                "{:?} is not a relative path inside the tree",
                String::from_utf8_lossy(rel)
            ),
        })
    }
}

/// Commits the agent's losing version of the conflicting path `rel` in the workspace `ws` — a
/// tree holding just that path, as a file (`content` = its bytes) or a symlink (`content` = its
/// target) — with the workspace's HEAD commit as parent (none when HEAD is unborn), and creates
/// `refname` pointing at it (create-only: fails if `refname` exists). Returns the commit id.
///
/// The tree is built in a temporary index file; the workspace's own index and working tree are
/// never touched. `rel` may be nested (`a/b/c.txt`) and need not be UTF-8.
pub fn keep_conflict(
    ws: &Git,
    refname: &str,
    rel: &[u8],
    kind: KeptKind,
    content: &[u8],
) -> Result<String, GitError> {
    check_rel(rel)?;
    let blob = ws
        .run_with_input(
            Access::Write,
            &["hash-object", "-w", "--no-filters", "--stdin"],
            content,
        )?
        .text();
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "keep-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let index = TempIndex::empty(&git_dir(ws)?, &name).map_err(|e| GitError::Parse {
        args: "temporary index".into(),
        detail: e.to_string(),
    })?;
    let in_temp = ws.with_env("GIT_INDEX_FILE", index.path());
    let mut entry = format!("{} {blob}\t", kind.mode()).into_bytes();
    entry.extend_from_slice(rel);
    entry.push(0);
    in_temp.run_with_input(
        Access::Write,
        &["update-index", "-z", "--index-info"],
        &entry,
    )?;
    let tree = in_temp.run(Access::Write, &["write-tree"])?.text();
    drop(index);

    let mut parents = Vec::new();
    if let Some(head) = refs::resolve(ws, "HEAD")? {
        parents.extend(["-p".to_string(), head]);
    }
    let message = format!(
        "berth: kept the agent's version of {} (conflict)\n",
        String::from_utf8_lossy(rel)
    );
    let commit = commit_tree(&as_berth(ws), &tree, &parents, &message)?;
    // Create-only: an empty old value means the ref must not exist yet.
    ws.run(
        Access::Write,
        &[
            "update-ref",
            "-m",
            "berth: keep conflict",
            refname,
            &commit,
            "",
        ],
    )?;
    Ok(commit)
}

/// How the agent's version kept under `refname` (by [`keep_conflict`]) differs from the file at
/// `rel` in the workspace `ws` now: a unified diff, `-` lines the kept version, `+` lines the
/// file now (empty when they are equal). Reads only.
pub fn conflict_diff(ws: &Git, refname: &str, rel: &str) -> Result<String, GitError> {
    check_rel(rel.as_bytes())?;
    let out = ws.run(
        Access::Read,
        &[
            "diff",
            "--no-color",
            "--no-ext-diff",
            "--no-renames",
            refname,
            "--",
            &format!(":(literal){rel}"),
        ],
    )?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Moves `refname` from `old` to `new` by fast-forward only, with compare-and-swap
/// ([`refs::fast_forward`]); then, if HEAD is the symbolic ref `refname`, makes the index follow
/// ([`index_follow`]). The working tree is not touched.
pub fn move_branch_and_index(
    git: &Git,
    refname: &str,
    old: &str,
    new: &str,
) -> Result<(), RefError> {
    refs::fast_forward(git, refname, Some(old), new)?;
    if old == new {
        return Ok(());
    }
    let head = git.output(Access::Read, &["symbolic-ref", "-q", "HEAD"])?;
    if head.success() && head.text() == refname {
        index_follow(git, old, new)?;
    }
    Ok(())
}
