//! A checkout's complete state, to compare before and after (a snapshot round trip, a pairing
//! started and stopped, a crash recovered), and every kind of uncommitted change at once.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{git, git_bytes};

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

/// Every file under `root` except `.git`: bytes and permission bits (links: target, 0o120000).
pub fn files(root: &Path) -> BTreeMap<Vec<u8>, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(root.join(&rel)).expect("read a directory") {
            let entry = entry.expect("read a directory entry");
            let name = entry.file_name();
            if rel.as_os_str().is_empty() && name == ".git" {
                continue;
            }
            let rel = rel.join(&name);
            let meta = std::fs::symlink_metadata(root.join(&rel)).expect("lstat");
            let key = rel.as_os_str().as_bytes().to_vec();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(root.join(&rel)).expect("readlink");
                out.insert(key, (target.as_os_str().as_bytes().to_vec(), 0o120000));
            } else if meta.is_dir() {
                stack.push(rel);
            } else {
                let bytes = std::fs::read(root.join(&rel)).expect("read a file");
                out.insert(key, (bytes, meta.permissions().mode() & 0o777));
            }
        }
    }
    out
}

fn write(dir: &Path, rel: impl AsRef<OsStr>, bytes: &[u8]) {
    let p = dir.join(rel.as_ref());
    std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
    std::fs::write(p, bytes).expect("write");
}

fn chmod(dir: &Path, rel: &str, mode: u32) {
    std::fs::set_permissions(dir.join(rel), std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Commits the base [`dirty`] expects: `.gitignore` (`*.log`), `a.txt`, `b.txt`,
/// `dir/c.txt`, an executable `run.sh` and a link `link` → `a.txt`; then an ignored
/// `debug.log` that nothing may touch.
pub fn base(dir: &Path) {
    write(dir, ".gitignore", b"*.log\n");
    write(dir, "a.txt", b"alpha\n");
    write(dir, "b.txt", b"beta\n");
    write(dir, "dir/c.txt", b"gamma\n");
    write(dir, "run.sh", b"#!/bin/sh\n");
    chmod(dir, "run.sh", 0o755);
    symlink("a.txt", dir.join("link")).expect("symlink");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "base"]);
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
