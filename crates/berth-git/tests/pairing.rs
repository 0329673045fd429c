//! Pairing helpers against real repositories: git dirs, ahead/behind, the index following a
//! branch moved by someone else, kept conflict versions, fast-forward moves.

// An integration test: its helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use berth_git::Git;
use berth_git::pairing::{self, KeptKind};
use berth_git::refs::RefError;
use berth_testkit::{git, git_bytes, write};

fn repo() -> tempfile::TempDir {
    berth_testkit::repo(&[("a.txt", "a1\n"), ("b.txt", "b1\n"), ("s.txt", "s1\n")])
}

/// A commit on top of `parent` changing `rel` to `content`, made without touching the checkout
/// (as an agent's commit arriving from elsewhere would be).
fn commit_elsewhere(dir: &Path, parent: &str, rel: &str, content: &[u8]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    let run = |args: &[&str], input: Option<&[u8]>| -> String {
        use std::io::Write;
        let mut child = Command::new("git")
            .current_dir(dir)
            .env("GIT_INDEX_FILE", &index)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.unwrap_or(b"")).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    run(&["read-tree", parent], None);
    let blob = run(&["hash-object", "-w", "--stdin"], Some(content));
    run(
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("100644,{blob},{rel}"),
        ],
        None,
    );
    let tree = run(&["write-tree"], None);
    run(
        &["commit-tree", &tree, "-p", parent, "-m", "elsewhere"],
        None,
    )
}

/// Untrimmed at the start: a line's status letters begin with a space.
fn status(dir: &Path) -> String {
    let out = git_bytes(dir, &["status", "--porcelain", "--untracked-files=all"]);
    String::from_utf8_lossy(&out)
        .trim_end_matches('\n')
        .to_string()
}

#[test]
fn git_dir_is_absolute_per_worktree() {
    let r = repo();
    let gd = pairing::git_dir(&Git::new(r.path().join("."))).unwrap();
    assert!(gd.is_absolute());
    assert_eq!(
        gd.canonicalize().unwrap(),
        r.path().join(".git").canonicalize().unwrap()
    );
    let wt = r.path().join("linked");
    git(
        r.path(),
        &["worktree", "add", "-q", "-b", "side", wt.to_str().unwrap()],
    );
    std::fs::create_dir(wt.join("sub")).unwrap();
    let linked = pairing::git_dir(&Git::new(wt.join("sub"))).unwrap();
    assert_eq!(
        linked.canonicalize().unwrap(),
        r.path()
            .join(".git/worktrees/linked")
            .canonicalize()
            .unwrap()
    );
    let outside = tempfile::tempdir().unwrap();
    assert!(pairing::git_dir(&Git::new(outside.path())).is_err());
}

#[test]
fn ahead_behind_counts_both_sides() {
    let r = repo();
    let d = r.path();
    let g = Git::new(d);
    git(d, &["branch", "other"]);
    assert_eq!(pairing::ahead_behind(&g, "main", "other").unwrap(), (0, 0));
    git(d, &["commit", "-q", "--allow-empty", "-m", "m1"]);
    git(d, &["commit", "-q", "--allow-empty", "-m", "m2"]);
    assert_eq!(pairing::ahead_behind(&g, "main", "other").unwrap(), (2, 0));
    assert_eq!(pairing::ahead_behind(&g, "other", "main").unwrap(), (0, 2));
    git(d, &["checkout", "-q", "other"]);
    git(d, &["commit", "-q", "--allow-empty", "-m", "o1"]);
    assert_eq!(pairing::ahead_behind(&g, "main", "other").unwrap(), (2, 1));
    assert!(pairing::ahead_behind(&g, "main", "no-such-branch").is_err());
}

#[test]
fn the_index_follows_a_moved_branch_and_keeps_unrelated_staged_changes() {
    let r = repo();
    let d = r.path();
    let g = Git::new(d);
    let old = git(d, &["rev-parse", "HEAD"]);
    // Staged before the move, on a path the move does not touch; also an unstaged edit.
    write(d, "s.txt", b"s staged\n");
    git(d, &["add", "s.txt"]);
    write(d, "b.txt", b"b unstaged\n");
    let new = commit_elsewhere(d, &old, "a.txt", b"a2\n");
    git(d, &["update-ref", "refs/heads/main", &new, &old]);
    pairing::index_follow(&g, &old, &new).unwrap();
    // The working tree was not touched: a.txt still has the old content, which now shows as
    // an unstaged difference against the new tip; s.txt stays staged; b.txt stays unstaged.
    assert_eq!(std::fs::read(d.join("a.txt")).unwrap(), b"a1\n");
    assert_eq!(status(d), " M a.txt\n M b.txt\nM  s.txt");
    // Once file sync brings a.txt over, only the user's own changes remain.
    write(d, "a.txt", b"a2\n");
    assert_eq!(status(d), " M b.txt\nM  s.txt");
    assert_eq!(git(d, &["diff", "--cached", "--name-only"]), "s.txt");
}

#[test]
fn the_index_follows_even_when_the_working_tree_already_has_the_new_content() {
    let r = repo();
    let d = r.path();
    let g = Git::new(d);
    let old = git(d, &["rev-parse", "HEAD"]);
    write(d, "s.txt", b"s staged\n");
    git(d, &["add", "s.txt"]);
    // File sync was faster than the ref: the working tree is already at the new content.
    write(d, "a.txt", b"a2\n");
    let new = commit_elsewhere(d, &old, "a.txt", b"a2\n");
    git(d, &["update-ref", "refs/heads/main", &new, &old]);
    pairing::index_follow(&g, &old, &new).unwrap();
    assert_eq!(status(d), "M  s.txt");
}

#[test]
fn a_staged_change_the_move_conflicts_with_falls_back_to_the_new_tip() {
    let r = repo();
    let d = r.path();
    let g = Git::new(d);
    let old = git(d, &["rev-parse", "HEAD"]);
    write(d, "a.txt", b"a staged by the user\n");
    git(d, &["add", "a.txt"]);
    let new = commit_elsewhere(d, &old, "a.txt", b"a2\n");
    git(d, &["update-ref", "refs/heads/main", &new, &old]);
    pairing::index_follow(&g, &old, &new).unwrap();
    // The index is the new tip; the user's content is still in the working tree.
    assert_eq!(status(d), " M a.txt");
    assert_eq!(
        std::fs::read(d.join("a.txt")).unwrap(),
        b"a staged by the user\n"
    );
}

#[test]
fn move_branch_and_index_fast_forwards_and_the_index_follows_only_for_head() {
    let r = repo();
    let d = r.path();
    let g = Git::new(d);
    let old = git(d, &["rev-parse", "HEAD"]);
    write(d, "s.txt", b"s staged\n");
    git(d, &["add", "s.txt"]);
    let new = commit_elsewhere(d, &old, "a.txt", b"a2\n");
    pairing::move_branch_and_index(&g, "refs/heads/main", &old, &new).unwrap();
    assert_eq!(git(d, &["rev-parse", "main"]), new);
    assert_eq!(status(d), " M a.txt\nM  s.txt");

    // Another branch: moved, the index untouched.
    git(d, &["branch", "other", &old]);
    let index_before = std::fs::read(d.join(".git/index")).unwrap();
    pairing::move_branch_and_index(&g, "refs/heads/other", &old, &new).unwrap();
    assert_eq!(git(d, &["rev-parse", "other"]), new);
    assert_eq!(std::fs::read(d.join(".git/index")).unwrap(), index_before);

    // Not a fast-forward, or moved meanwhile: refused, nothing changes.
    let side = commit_elsewhere(d, &old, "b.txt", b"b2\n");
    let err = pairing::move_branch_and_index(&g, "refs/heads/main", &new, &side).unwrap_err();
    assert!(matches!(err, RefError::NotFastForward { .. }), "{err}");
    let newer = commit_elsewhere(d, &new, "b.txt", b"b3\n");
    let err = pairing::move_branch_and_index(&g, "refs/heads/main", &old, &newer).unwrap_err();
    assert!(matches!(err, RefError::Changed { .. }), "{err}");
    assert_eq!(git(d, &["rev-parse", "main"]), new);
    assert_eq!(status(d), " M a.txt\nM  s.txt");
}

#[test]
fn kept_conflicts_are_committed_without_touching_the_workspace() {
    let r = repo();
    let d = r.path();
    let g = Git::new(d);
    write(d, "s.txt", b"s staged\n");
    git(d, &["add", "s.txt"]);
    write(d, "b.txt", b"b unstaged\n");
    let index_before = std::fs::read(d.join(".git/index")).unwrap();
    let status_before = status(d);
    let head = git(d, &["rev-parse", "HEAD"]);

    let refname = "refs/berth/conflicts/p1/1";
    let commit = pairing::keep_conflict(
        &g,
        refname,
        b"a/b/c.txt",
        KeptKind::File { executable: false },
        b"agent's version\n",
    )
    .unwrap();
    assert_eq!(git(d, &["rev-parse", refname]), commit);
    assert_eq!(git(d, &["rev-parse", &format!("{commit}^")]), head);
    assert_eq!(
        git(d, &["log", "-1", "--format=%s", &commit]),
        "berth: kept the agent's version of a/b/c.txt (conflict)"
    );
    assert_eq!(
        git(
            d,
            &["ls-tree", "-r", "--format=%(objectmode) %(path)", &commit]
        ),
        "100644 a/b/c.txt"
    );
    assert_eq!(
        git(d, &["cat-file", "blob", &format!("{commit}:a/b/c.txt")]),
        "agent's version"
    );
    assert_eq!(std::fs::read(d.join(".git/index")).unwrap(), index_before);
    assert_eq!(status(d), status_before);
    assert!(!d.join("a").exists());
    let leftovers: Vec<_> = std::fs::read_dir(d.join(".git"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with("berth-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Create-only: the same ref again is refused and keeps its value.
    let err = pairing::keep_conflict(&g, refname, b"x", KeptKind::Symlink, b"t").unwrap_err();
    assert!(err.to_string().contains("update-ref"), "{err}");
    assert_eq!(git(d, &["rev-parse", refname]), commit);

    // Executable files, symlinks, non-UTF-8 names.
    let exe = pairing::keep_conflict(
        &g,
        "refs/berth/conflicts/p1/2",
        b"bin/run.sh",
        KeptKind::File { executable: true },
        b"#!/bin/sh\n",
    )
    .unwrap();
    assert_eq!(
        git(
            d,
            &["ls-tree", "-r", "--format=%(objectmode) %(path)", &exe]
        ),
        "100755 bin/run.sh"
    );
    let link = pairing::keep_conflict(
        &g,
        "refs/berth/conflicts/p1/3",
        b"dir/link",
        KeptKind::Symlink,
        b"../target",
    )
    .unwrap();
    assert_eq!(
        git(
            d,
            &["ls-tree", "-r", "--format=%(objectmode) %(path)", &link]
        ),
        "120000 dir/link"
    );
    assert_eq!(
        git(d, &["cat-file", "blob", &format!("{link}:dir/link")]),
        "../target"
    );
    let raw = b"caf\xe9/\xff name.txt";
    let latin = pairing::keep_conflict(
        &g,
        "refs/berth/conflicts/p1/4",
        raw,
        KeptKind::File { executable: false },
        b"bytes\0with nul\n",
    )
    .unwrap();
    let out = Command::new("git")
        .current_dir(d)
        .args(["ls-tree", "-r", "-z", "--name-only", &latin])
        .output()
        .unwrap();
    assert_eq!(out.stdout, [raw.as_slice(), b"\0"].concat());
    let blob = Command::new("git")
        .current_dir(d)
        .arg("cat-file")
        .arg("blob")
        .arg(OsStr::from_bytes(&[latin.as_bytes(), b":", raw].concat()))
        .output()
        .unwrap();
    assert_eq!(blob.stdout, b"bytes\0with nul\n");
    assert_eq!(std::fs::read(d.join(".git/index")).unwrap(), index_before);
}

#[test]
fn kept_conflicts_work_on_an_unborn_branch_and_reject_bad_paths() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    let g = Git::new(d);
    let c = pairing::keep_conflict(
        &g,
        "refs/berth/conflicts/p/1",
        b"f",
        KeptKind::File { executable: false },
        b"x",
    )
    .unwrap();
    assert_eq!(git(d, &["rev-list", "--count", &c]), "1", "no parent");
    for bad in [
        b"".as_slice(),
        b"/abs",
        b"a/../b",
        b"./a",
        b"a//b",
        b"a/",
        b"nul\0byte",
        b".git/config",
        b"a/.GIT/hooks",
    ] {
        let r = pairing::keep_conflict(
            &g,
            "refs/berth/conflicts/p/bad",
            bad,
            KeptKind::File { executable: false },
            b"x",
        );
        assert!(r.is_err(), "{:?} accepted", String::from_utf8_lossy(bad));
    }
    assert!(git(d, &["for-each-ref", "refs/berth/conflicts/p/bad"]).is_empty());
}
