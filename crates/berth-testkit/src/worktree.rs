//! A checkout's complete state, to compare before and after (a snapshot round trip, a pairing
//! started and stopped, a crash recovered), and every kind of uncommitted change at once.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{git, git_bytes, git_with_env};

/// Everything that must be identical after a round trip: `git status` (with ignored files),
/// the staged diff, what HEAD is, and every file's bytes and mode (links: their target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreeState {
    pub status: String,
    pub staged_diff: Vec<u8>,
    pub head: String,
    pub files: BTreeMap<Vec<u8>, (Vec<u8>, u32)>,
}

/// The state of the checkout at `dir`.
pub fn worktree_state(dir: &Path) -> WorktreeState {
    let status = git_bytes(
        dir,
        &[
            "status",
            "--porcelain=v2",
            "-z",
            "--branch",
            "--untracked-files=all",
            "--ignored=matching",
        ],
    );
    let head = match Command::new("git")
        .current_dir(dir)
        .args(["symbolic-ref", "-q", "HEAD"])
        .output()
    {
        Ok(o) if o.status.success() => {
            format!("ref: {}", String::from_utf8_lossy(&o.stdout).trim())
        }
        _ => git(dir, &["rev-parse", "HEAD"]),
    };
    WorktreeState {
        status: String::from_utf8_lossy(&status).into_owned(),
        staged_diff: git_bytes(dir, &["diff", "--cached", "--binary"]),
        head,
        files: files(dir),
    }
}

/// Back to a clean tree the way a user would get there: the index and tracked files as HEAD
/// has them (an empty index where HEAD is not born yet), untracked files removed, ignored
/// files left.
pub fn reset_clean(dir: &Path) {
    let born = Command::new("git")
        .current_dir(dir)
        .args(["rev-parse", "-q", "--verify", "HEAD"])
        .output()
        .expect("run git")
        .status
        .success();
    if born {
        git(dir, &["reset", "-q", "--hard"]);
    } else {
        git(dir, &["read-tree", "--empty"]);
    }
    git(dir, &["clean", "-fdq"]);
}

/// Every file under `root` except `.git`: bytes and permission bits (links: target, 0o120000).
pub fn files(root: &Path) -> BTreeMap<Vec<u8>, (Vec<u8>, u32)> {
    // A tree still being synced changes under the walk: whatever vanished between listing and
    // reading is simply not there.
    fn gone<T>(r: std::io::Result<T>, what: &str) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("{what}: {e}"),
        }
    }
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Some(entries) = gone(std::fs::read_dir(root.join(&rel)), "read a directory") else {
            continue;
        };
        for entry in entries {
            let Some(entry) = gone(entry, "read a directory entry") else {
                continue;
            };
            let name = entry.file_name();
            if rel.as_os_str().is_empty() && name == ".git" {
                continue;
            }
            let rel = rel.join(&name);
            let path = root.join(&rel);
            let Some(meta) = gone(std::fs::symlink_metadata(&path), "lstat") else {
                continue;
            };
            let key = rel.as_os_str().as_bytes().to_vec();
            if meta.file_type().is_symlink() {
                if let Some(target) = gone(std::fs::read_link(&path), "readlink") {
                    out.insert(key, (target.as_os_str().as_bytes().to_vec(), 0o120000));
                }
            } else if meta.is_dir() {
                stack.push(rel);
            } else if let Some(bytes) = gone(std::fs::read(&path), "read a file") {
                out.insert(key, (bytes, meta.permissions().mode() & 0o777));
            }
        }
    }
    out
}

/// Writes `bytes` to `rel` under `dir`, creating the directories it needs.
pub fn write(dir: &Path, rel: impl AsRef<OsStr>, bytes: &[u8]) {
    let p = dir.join(rel.as_ref());
    std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
    std::fs::write(p, bytes).expect("write");
}

/// Sets the permission bits of `rel` under `dir`.
pub fn chmod(dir: &Path, rel: &str, mode: u32) {
    std::fs::set_permissions(dir.join(rel), std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Commits the base [`dirty`] expects: `.gitignore` (`*.log`), `a.txt`, `b.txt`,
/// `dir/c.txt`, an executable `run.sh` and a link `link` → `a.txt`; then an ignored
/// `debug.log` that nothing may touch.
pub fn base(dir: &Path) {
    base_with_env(dir, &[]);
}

/// [`base`], committed with `env` added to git's environment (e.g. [`crate::FIXED_DATES`], so
/// that twin repositories get the identical commit).
pub fn base_with_env(dir: &Path, env: &[(&str, &str)]) {
    write(dir, ".gitignore", b"*.log\n");
    write(dir, "a.txt", b"alpha\n");
    write(dir, "b.txt", b"beta\n");
    write(dir, "dir/c.txt", b"gamma\n");
    write(dir, "run.sh", b"#!/bin/sh\n");
    chmod(dir, "run.sh", 0o755);
    symlink("a.txt", dir.join("link")).expect("symlink");
    git(dir, &["add", "-A"]);
    git_with_env(dir, env, &["commit", "-q", "-m", "base"]);
    write(dir, "debug.log", b"ignored, never touched\n");
}

/// Every kind of uncommitted state at once, on top of [`base`]: staged, staged then edited
/// again, unstaged, removed from the index only, deleted, untracked in a new nested directory
/// (non-ASCII name), a non-UTF-8 name, a mode change, a link retargeted, a new staged file,
/// and another ignored file.
pub fn dirty(dir: &Path) {
    write(dir, "a.txt", b"staged\n");
    git(dir, &["add", "a.txt"]);
    write(dir, "a.txt", b"staged then edited\n");
    write(dir, "b.txt", b"unstaged\n");
    git(dir, &["rm", "-q", "--cached", "dir/c.txt"]);
    std::fs::remove_file(dir.join("run.sh")).expect("rm");
    write(dir, "new dir/deep/ünïcode.txt", b"untracked\n");
    write(dir, OsStr::from_bytes(b"raw-\xff"), b"bytes\n");
    chmod(dir, "b.txt", 0o755);
    std::fs::remove_file(dir.join("link")).expect("rm");
    symlink("new dir", dir.join("link")).expect("symlink");
    write(dir, "staged-new.txt", b"added\n");
    git(dir, &["add", "staged-new.txt"]);
    write(dir, "more.log", b"ignored\n");
}
