//! Snapshots against real repositories: every kind of uncommitted state survives
//! capture → reset to clean → restore exactly, and every refusal changes nothing.

// An integration test: its helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use berth_git::Git;
use berth_git::snapshot::{self, CaptureOptions, SnapshotError};
use berth_testkit::{
    WorktreeState, chmod, empty_repo, git_bytes, reset_clean, worktree_state, write,
};

struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    /// Not the kit's [`berth_testkit::base`]: another ignored directory, and `run.sh` is not
    /// executable.
    fn new() -> Repo {
        let r = Repo { dir: empty_repo() };
        r.write(".gitignore", b"*.log\nbuild/\n");
        r.write("a.txt", b"alpha\n");
        r.write("b.txt", b"beta\n");
        r.write("dir/c.txt", b"gamma\n");
        r.write("run.sh", b"#!/bin/sh\necho hi\n");
        symlink("a.txt", r.path().join("link")).unwrap();
        r.git(&["add", "-A"]);
        r.git(&["commit", "-q", "-m", "base"]);
        r.write("debug.log", b"ignored, never captured, never touched\n");
        r.write("build/out.bin", b"\x00\x01ignored build output");
        r
    }

    /// No commit and, unlike [`Repo::new`], no user identity configured.
    fn empty() -> Repo {
        let r = Repo {
            dir: tempfile::tempdir().unwrap(),
        };
        r.git(&["init", "-q", "-b", "main"]);
        r
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn api(&self) -> Git {
        Git::new(self.path())
    }

    fn git(&self, args: &[&str]) -> Vec<u8> {
        git_bytes(self.path(), args)
    }

    fn write(&self, rel: impl AsRef<OsStr>, bytes: &[u8]) {
        write(self.path(), rel, bytes);
    }

    fn chmod(&self, rel: &str, mode: u32) {
        chmod(self.path(), rel, mode);
    }

    fn state(&self) -> WorktreeState {
        worktree_state(self.path())
    }

    fn capture(&self, id: &str) -> snapshot::Snapshot {
        let opts = CaptureOptions {
            id: id.into(),
            time_ms: 1_795_397_382_762,
            reason: "test".into(),
            message: Some("round trip".into()),
            pairing: None,
        };
        snapshot::capture(&self.api(), opts).unwrap()
    }

    /// Back to a clean tree the way a user would: ignored files stay.
    fn reset_clean(&self) {
        reset_clean(self.path());
        assert!(
            self.git(&["status", "--porcelain", "--untracked-files=all"])
                .is_empty()
        );
    }

    /// Capture, reset, restore; asserts the state is exactly what it was.
    fn round_trip(&self) {
        let before = self.state();
        let snap = self.capture("rt");
        assert_eq!(
            self.state(),
            before,
            "capture touched the index or the working tree"
        );
        self.reset_clean();
        let report = snapshot::restore(&self.api(), "rt").unwrap();
        assert_eq!(report.snapshot.commit, snap.commit);
        let after = self.state();
        assert_eq!(after.status, before.status);
        assert_eq!(after, before);
        assert!(
            snapshot::list(&self.api()).unwrap().is_empty(),
            "removed after success"
        );
    }
}

#[test]
fn staged_content() {
    let r = Repo::new();
    r.write("a.txt", b"alpha staged\n");
    r.git(&["add", "a.txt"]);
    r.round_trip();
}

#[test]
fn unstaged_content() {
    let r = Repo::new();
    r.write("b.txt", b"beta edited\n");
    r.round_trip();
}

#[test]
fn staged_in_one_version_and_edited_again() {
    let r = Repo::new();
    r.write("a.txt", b"version one\n");
    r.git(&["add", "a.txt"]);
    r.write("a.txt", b"version two\n");
    r.round_trip();
}

#[test]
fn untracked_files_in_new_directories() {
    let r = Repo::new();
    r.write("new/deep/er/file.txt", b"untracked\n");
    r.write("top.txt", b"untracked too\n");
    r.round_trip();
}

#[test]
fn executable_bits() {
    let r = Repo::new();
    r.chmod("a.txt", 0o755);
    r.write("tool.sh", b"#!/bin/sh\n");
    r.chmod("tool.sh", 0o755);
    r.chmod("run.sh", 0o644);
    r.git(&["add", "run.sh"]);
    r.round_trip();
}

#[test]
fn symlinks() {
    let r = Repo::new();
    std::fs::remove_file(r.path().join("link")).unwrap();
    symlink("b.txt", r.path().join("link")).unwrap();
    symlink("dir", r.path().join("dirlink")).unwrap();
    symlink("/nonexistent/target", r.path().join("dangling")).unwrap();
    r.round_trip();
}

#[test]
fn staged_and_unstaged_deletions() {
    let r = Repo::new();
    r.git(&["rm", "-q", "a.txt"]);
    std::fs::remove_file(r.path().join("dir/c.txt")).unwrap();
    r.round_trip();
}

#[test]
fn awkward_names() {
    let r = Repo::new();
    r.write("name with spaces.txt", b"spaces\n");
    r.write("café/日本語.txt", b"non-ascii\n");
    r.write(OsStr::from_bytes(b"latin1-\xe9\xff.txt"), b"not utf-8\n");
    r.write("tab\there", b"tab\n");
    r.git(&["add", "name with spaces.txt"]);
    r.round_trip();
}

#[test]
fn a_large_file() {
    let r = Repo::new();
    let big: Vec<u8> = (0..24 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    r.write("big.bin", &big);
    r.round_trip();
}

#[test]
fn everything_at_once() {
    let r = Repo::new();
    r.write("a.txt", b"staged\n");
    r.git(&["add", "a.txt"]);
    r.write("a.txt", b"staged then edited\n");
    r.write("b.txt", b"unstaged\n");
    r.git(&["rm", "-q", "--cached", "dir/c.txt"]);
    std::fs::remove_file(r.path().join("run.sh")).unwrap();
    r.write("new dir/ünïcode\u{301}.txt", b"untracked\n");
    r.write(OsStr::from_bytes(b"raw-\xff"), b"bytes\n");
    r.chmod("b.txt", 0o755);
    std::fs::remove_file(r.path().join("link")).unwrap();
    symlink("new dir", r.path().join("link")).unwrap();
    r.write("staged-new.txt", b"added\n");
    r.git(&["add", "staged-new.txt"]);
    r.write("more.log", b"ignored\n");
    r.round_trip();
}

/// Nothing staged: the index already holds what the snapshot's index held, so the restore
/// writes only the files that differ (by path, so names that look like patterns must be
/// taken as they are).
#[test]
fn nothing_staged_every_kind_of_change() {
    let r = Repo::new();
    r.write("b.txt", b"unstaged\n");
    r.chmod("run.sh", 0o755);
    std::fs::remove_file(r.path().join("a.txt")).unwrap();
    // A link that became a directory.
    std::fs::remove_file(r.path().join("link")).unwrap();
    r.write("link/inside.txt", b"was a link\n");
    std::fs::remove_file(r.path().join("dir/c.txt")).unwrap();
    // Names a pathspec would read as patterns or magic.
    r.write("*.txt", b"star\n");
    r.write(":(top)x", b"magic\n");
    r.write("-dash", b"dash\n");
    r.write("new/[ab].txt", b"brackets\n");
    let before = r.state();
    r.capture("ns");
    r.reset_clean();
    snapshot::restore(&r.api(), "ns").unwrap();
    assert_eq!(r.state(), before);
}

/// A capture takes in only the paths the status names; what it keeps must be exactly what
/// adding everything would have kept.
#[test]
fn a_capture_keeps_what_adding_everything_would() {
    let r = Repo::new();
    r.write("a.txt", b"staged\n");
    r.git(&["add", "a.txt"]);
    r.write("a.txt", b"staged then edited\n");
    r.git(&["mv", "b.txt", "moved.txt"]);
    r.write("moved.txt", b"moved and edited\n");
    std::fs::remove_file(r.path().join("dir/c.txt")).unwrap();
    r.chmod("run.sh", 0o755);
    std::fs::remove_file(r.path().join("link")).unwrap();
    r.write("link/inside.txt", b"a directory now\n");
    r.write("deep/er/new.txt", b"untracked\n");
    r.write("*.txt", b"a name like a pattern\n");
    // An embedded repository (not a submodule): taken in as a link to its commit.
    let nested = r.path().join("nested");
    std::fs::create_dir(&nested).unwrap();
    for args in [
        &["init", "-q", "-b", "main"][..],
        &[
            "-c",
            "user.name=n",
            "-c",
            "user.email=n@n.invalid",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "n",
        ],
    ] {
        let out = Command::new("git")
            .args(args)
            .current_dir(&nested)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    r.capture("all");
    assert!(snapshot::matches_worktree(&r.api(), "all").unwrap());
}

#[test]
fn ignored_files_are_never_captured() {
    let r = Repo::new();
    r.write("a.txt", b"dirty\n");
    let snap = r.capture("ig");
    let tree = r.git(&["ls-tree", "-r", "--name-only", &snap.commit]);
    let tree = String::from_utf8_lossy(&tree);
    assert!(
        !tree.contains("debug.log") && !tree.contains("build/"),
        "{tree}"
    );
    assert!(tree.contains("a.txt"));
}

#[test]
fn a_repository_without_commits() {
    let r = Repo::empty();
    r.write("first.txt", b"staged\n");
    r.git(&["add", "first.txt"]);
    r.write("second.txt", b"untracked\n");
    r.round_trip();
    assert_eq!(r.git(&["symbolic-ref", "HEAD"]), b"refs/heads/main\n");
}

#[test]
fn a_detached_head() {
    let r = Repo::new();
    r.git(&["checkout", "-q", "--detach"]);
    r.write("a.txt", b"detached work\n");
    let before = r.state();
    r.capture("det");
    r.reset_clean();
    r.git(&["checkout", "-q", "main"]);
    snapshot::restore(&r.api(), "det").unwrap();
    assert_eq!(
        r.state(),
        before,
        "detached at the same commit, same files and index"
    );
}

#[test]
fn restore_returns_to_the_original_branch() {
    let r = Repo::new();
    r.write("a.txt", b"on main\n");
    r.git(&["add", "a.txt"]);
    let before = r.state();
    r.capture("br");
    r.reset_clean();
    r.git(&["checkout", "-q", "-b", "elsewhere"]);
    r.write("only-elsewhere.txt", b"x\n");
    r.git(&["add", "."]);
    r.git(&["commit", "-q", "-m", "elsewhere"]);
    snapshot::restore(&r.api(), "br").unwrap();
    assert_eq!(r.state(), before);
}

/// Asserts a refused restore changed nothing and kept the snapshot.
fn assert_refused_unchanged(r: &Repo, id: &str, check: impl Fn(&SnapshotError) -> bool) {
    let before = r.state();
    let err = snapshot::restore(&r.api(), id).unwrap_err();
    assert!(check(&err), "unexpected error: {err}");
    assert_eq!(r.state(), before, "a refused restore changed something");
    assert!(
        snapshot::read(&r.api(), id).is_ok(),
        "the snapshot must stay"
    );
}

#[test]
fn refuses_on_a_dirty_tree() {
    let r = Repo::new();
    r.write("a.txt", b"saved\n");
    r.capture("d");
    r.reset_clean();
    r.write("b.txt", b"new unsaved work\n");
    assert_refused_unchanged(
        &r,
        "d",
        |e| matches!(e, SnapshotError::Dirty(p) if p == &["b.txt".to_string()]),
    );
    r.write("untracked.txt", b"also work\n");
    assert_refused_unchanged(&r, "d", |e| matches!(e, SnapshotError::Dirty(_)));
}

#[test]
fn refuses_while_an_operation_is_in_progress() {
    let r = Repo::new();
    r.write("a.txt", b"saved\n");
    r.capture("op");
    r.reset_clean();
    r.git(&["checkout", "-q", "-b", "other"]);
    r.write("b.txt", b"other side\n");
    r.git(&["commit", "-q", "-am", "other"]);
    r.git(&["checkout", "-q", "main"]);
    r.write("b.txt", b"main side\n");
    r.git(&["commit", "-q", "-am", "main"]);
    let merge = Command::new("git")
        .current_dir(r.path())
        .args(["merge", "-q", "other"])
        .output()
        .unwrap();
    assert!(!merge.status.success(), "the merge conflicts");
    // The conflicted file makes the tree dirty too; the operation is reported first.
    assert_refused_unchanged(
        &r,
        "op",
        |e| matches!(e, SnapshotError::OperationInProgress { what, .. } if what.contains("merge")),
    );
}

#[test]
fn refuses_a_conflicting_branch_move() {
    let r = Repo::new();
    r.write("a.txt", b"snapshot version\n");
    let snap = r.capture("mv");
    r.reset_clean();
    r.write("a.txt", b"committed meanwhile\n");
    r.git(&["commit", "-q", "-am", "moved"]);
    assert_refused_unchanged(
        &r,
        "mv",
        |e| matches!(e, SnapshotError::BranchMovedConflict { conflicts, commit, .. } if conflicts == &["a.txt".to_string()] && commit == &snap.commit),
    );
}

#[test]
fn restores_onto_a_branch_that_moved_without_conflict() {
    let r = Repo::new();
    r.write("a.txt", b"snapshot edit\n");
    r.git(&["add", "a.txt"]);
    r.write("untracked.txt", b"u\n");
    r.capture("ff");
    r.reset_clean();
    r.write("b.txt", b"committed meanwhile\n");
    r.git(&["commit", "-q", "-am", "moved"]);
    let tip = r.api().query(&["rev-parse", "HEAD"]).unwrap();
    let report = snapshot::restore(&r.api(), "ff").unwrap();
    assert_eq!(report.onto_moved_branch.as_deref(), Some("main"));
    assert_eq!(
        r.api().query(&["rev-parse", "HEAD"]).unwrap(),
        tip,
        "HEAD stays at the new tip"
    );
    assert_eq!(
        std::fs::read(r.path().join("a.txt")).unwrap(),
        b"snapshot edit\n"
    );
    assert_eq!(
        std::fs::read(r.path().join("b.txt")).unwrap(),
        b"committed meanwhile\n"
    );
    assert_eq!(
        std::fs::read(r.path().join("untracked.txt")).unwrap(),
        b"u\n"
    );
    let status = String::from_utf8(r.git(&["status", "--porcelain"])).unwrap();
    assert_eq!(status, "M  a.txt\n?? untracked.txt\n");
}

#[test]
fn refuses_when_the_branch_is_gone() {
    let r = Repo::new();
    r.git(&["checkout", "-q", "-b", "topic"]);
    r.write("a.txt", b"topic work\n");
    r.capture("gone");
    r.reset_clean();
    r.git(&["checkout", "-q", "main"]);
    r.git(&["branch", "-q", "-D", "topic"]);
    assert_refused_unchanged(
        &r,
        "gone",
        |e| matches!(e, SnapshotError::BranchMissing { short, .. } if short == "topic"),
    );
}

#[test]
fn refuses_to_overwrite_an_ignored_file() {
    let r = Repo::new();
    r.write("notes.txt", b"untracked, captured\n");
    r.capture("ow");
    r.reset_clean();
    // Later the user ignores such files and has an ignored one at the same path.
    r.write(".git/info/exclude", b"notes.txt\n");
    r.write("notes.txt", b"ignored now, precious\n");
    assert_refused_unchanged(
        &r,
        "ow",
        |e| matches!(e, SnapshotError::WouldOverwrite(p) if p == &["notes.txt".to_string()]),
    );
}

#[test]
fn snapshots_are_hidden_from_git_stash_and_describe_themselves() {
    let r = Repo::new();
    r.write("a.txt", b"x\n");
    let snap = r.capture("hid");
    assert!(r.git(&["stash", "list"]).is_empty());
    assert!(!String::from_utf8_lossy(&r.git(&["branch", "-a"])).contains("berth"));
    let listed = snapshot::list(&r.api()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0], snap);
    assert_eq!(listed[0].meta.branch.as_deref(), Some("refs/heads/main"));
    assert_eq!(listed[0].meta.message.as_deref(), Some("round trip"));
    let dropped = snapshot::drop_snapshot(&r.api(), "hid").unwrap();
    assert_eq!(dropped.commit, snap.commit);
    assert!(snapshot::list(&r.api()).unwrap().is_empty());
    assert!(matches!(
        snapshot::read(&r.api(), "hid"),
        Err(SnapshotError::NotFound(_))
    ));
}

#[test]
fn a_conflicted_index_cannot_be_captured() {
    let r = Repo::new();
    r.git(&["checkout", "-q", "-b", "other"]);
    r.write("b.txt", b"other\n");
    r.git(&["commit", "-q", "-am", "other"]);
    r.git(&["checkout", "-q", "main"]);
    r.write("b.txt", b"main\n");
    r.git(&["commit", "-q", "-am", "main"]);
    let _ = Command::new("git")
        .current_dir(r.path())
        .args(["merge", "-q", "other"])
        .output()
        .unwrap();
    let opts = CaptureOptions {
        id: "c".into(),
        time_ms: 0,
        reason: "t".into(),
        message: None,
        pairing: None,
    };
    assert!(
        matches!(snapshot::capture(&r.api(), opts), Err(SnapshotError::Unmerged(p)) if p == ["b.txt".to_string()])
    );
}

#[test]
fn a_message_with_a_nul_byte_is_refused_before_git_runs() {
    let r = Repo::new();
    r.write("a.txt", b"work\n");
    let objects = || r.git(&["count-objects", "-v"]);
    let before = (r.state(), objects());
    let opts = CaptureOptions {
        id: "n".into(),
        time_ms: 0,
        reason: "t".into(),
        message: Some("a\0b".into()),
        pairing: None,
    };
    let err = snapshot::capture(&r.api(), opts).unwrap_err();
    assert!(matches!(err, SnapshotError::NulInMessage), "{err}");
    assert_eq!((r.state(), objects()), before, "nothing was written");
    assert!(snapshot::list(&r.api()).unwrap().is_empty());
}

#[test]
fn a_submodule_with_changes_of_its_own_is_named_in_a_warning() {
    let sub = Repo::new();
    let r = Repo::new();
    r.git(&[
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        sub.path().to_str().unwrap(),
        "sub",
    ]);
    r.git(&["commit", "-q", "-m", "add sub"]);
    r.write("sub/a.txt", b"changed inside the submodule\n");
    let snap = r.capture("sm");
    assert_eq!(snap.warnings.len(), 1, "{:?}", snap.warnings);
    assert!(snap.warnings[0].contains("submodule sub"));
    // And the warning is part of the snapshot itself.
    assert_eq!(
        snapshot::read(&r.api(), "sm").unwrap().warnings,
        snap.warnings
    );
}
