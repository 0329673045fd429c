//! Snapshot capture and restore killed at every failpoint (`BERTH_FAILPOINTS=<name>=exit(3)`,
//! in a child process: this test binary run again with an environment switch), then run again
//! in-process: nothing of the user's is lost, a capture can be taken again, and a restore
//! finishes exactly as an uninterrupted one does.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_git::Git;
use berth_git::failpoint::FAILPOINTS;
use berth_git::snapshot::{self, CaptureOptions, SnapshotError};

/// Set in the child: which operation to run (`capture` or `restore`).
const CHILD_OP: &str = "BERTH_GIT_TEST_CHILD_OP";
const CHILD_REPO: &str = "BERTH_GIT_TEST_CHILD_REPO";
const CHILD_ID: &str = "BERTH_GIT_TEST_CHILD_ID";
/// What a child exits with when the operation returned an error (after printing it).
const CHILD_FAILED: i32 = 10;

/// The child's side: does nothing in a normal test run.
#[test]
fn child() {
    let Ok(op) = std::env::var(CHILD_OP) else {
        return;
    };
    let repo = Git::new(std::env::var(CHILD_REPO).unwrap());
    let id = std::env::var(CHILD_ID).unwrap();
    let result = match op.as_str() {
        "capture" => snapshot::capture(&repo, options(&id)).map(drop),
        "restore" => snapshot::restore(&repo, &id).map(drop),
        other => panic!("unknown child operation {other}"),
    };
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            println!("ERR: {e}");
            std::process::exit(CHILD_FAILED);
        }
    }
}

/// Runs `op` on snapshot `id` in a child with `failpoints`; its exit code and standard output.
fn run_child(op: &str, repo: &Path, id: &str, failpoints: &str) -> (i32, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1", "-q"])
        .env(CHILD_OP, op)
        .env(CHILD_REPO, repo)
        .env(CHILD_ID, id)
        .env("BERTH_FAILPOINTS", failpoints)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Runs `op` in a child that must die at failpoint `name`.
fn crash_at(op: &str, repo: &Path, id: &str, name: &str) {
    let (code, stdout) = run_child(op, repo, id, &format!("{name}=exit(3)"));
    assert_eq!(code, 3, "{op} did not stop at {name}: {stdout}");
}

fn options(id: &str) -> CaptureOptions {
    CaptureOptions {
        id: id.into(),
        time_ms: 1_795_397_382_762,
        reason: "test".into(),
        message: Some("crash".into()),
        pairing: None,
    }
}

struct Repo {
    dir: tempfile::TempDir,
}

/// Everything that must be identical after a round trip.
#[derive(Debug, PartialEq, Eq)]
struct State {
    status: String,
    staged_diff: Vec<u8>,
    head: String,
    files: BTreeMap<Vec<u8>, (Vec<u8>, u32)>,
}

impl Repo {
    fn empty() -> Repo {
        let r = Repo {
            dir: tempfile::tempdir().unwrap(),
        };
        r.git(&["init", "-q", "-b", "main"]);
        r.git(&["config", "user.name", "Test"]);
        r.git(&["config", "user.email", "test@example.com"]);
        r
    }

    fn new() -> Repo {
        let r = Repo::empty();
        r.write(".gitignore", b"*.log\n");
        r.write("a.txt", b"alpha\n");
        r.write("b.txt", b"beta\n");
        r.write("dir/c.txt", b"gamma\n");
        r.write("run.sh", b"#!/bin/sh\n");
        r.chmod("run.sh", 0o755);
        symlink("a.txt", r.path().join("link")).unwrap();
        r.git(&["add", "-A"]);
        r.git(&["commit", "-q", "-m", "base"]);
        r.write("debug.log", b"ignored, never touched\n");
        r
    }

    /// Every kind of uncommitted state at once.
    fn dirty(&self) {
        self.write("a.txt", b"staged\n");
        self.git(&["add", "a.txt"]);
        self.write("a.txt", b"staged then edited\n");
        self.write("b.txt", b"unstaged\n");
        self.git(&["rm", "-q", "--cached", "dir/c.txt"]);
        std::fs::remove_file(self.path().join("run.sh")).unwrap();
        self.write("new dir/deep/ünïcode.txt", b"untracked\n");
        self.write(OsStr::from_bytes(b"raw-\xff"), b"bytes\n");
        self.chmod("b.txt", 0o755);
        std::fs::remove_file(self.path().join("link")).unwrap();
        symlink("new dir", self.path().join("link")).unwrap();
        self.write("staged-new.txt", b"added\n");
        self.git(&["add", "staged-new.txt"]);
        self.write("more.log", b"ignored\n");
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn api(&self) -> Git {
        Git::new(self.path())
    }

    /// Runs git with fixed dates, so twin repositories have identical commits.
    fn git(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("git")
            .current_dir(self.path())
            .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn write(&self, rel: impl AsRef<OsStr>, bytes: &[u8]) {
        let p = self.path().join(rel.as_ref());
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    fn chmod(&self, rel: &str, mode: u32) {
        std::fs::set_permissions(self.path().join(rel), std::fs::Permissions::from_mode(mode))
            .unwrap();
    }

    fn state(&self) -> State {
        let status = self.git(&[
            "status",
            "--porcelain=v2",
            "-z",
            "--branch",
            "--untracked-files=all",
            "--ignored=matching",
        ]);
        State {
            status: String::from_utf8_lossy(&status).into_owned(),
            staged_diff: self.git(&["diff", "--cached", "--binary"]),
            head: match self.api().query(&["symbolic-ref", "-q", "HEAD"]) {
                Ok(branch) => format!("ref: {branch}"),
                Err(_) => self.api().query(&["rev-parse", "HEAD"]).unwrap(),
            },
            files: files(self.path()),
        }
    }

    fn reset_clean(&self) {
        if self
            .api()
            .query(&["rev-parse", "-q", "--verify", "HEAD"])
            .is_ok()
        {
            self.git(&["reset", "-q", "--hard"]);
        } else {
            self.git(&["read-tree", "--empty"]);
        }
        self.git(&["clean", "-fdq"]);
    }

    /// berth's temporary files left in the git dir.
    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.path().join(".git"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("berth-"))
            .collect()
    }

    fn has_ref(&self, id: &str) -> bool {
        self.api()
            .query(&["rev-parse", "-q", "--verify", &snapshot::refname(id)])
            .is_ok()
    }
}

fn files(root: &Path) -> BTreeMap<Vec<u8>, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(root.join(&rel)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name();
            if rel.as_os_str().is_empty() && name == ".git" {
                continue;
            }
            let rel = rel.join(&name);
            let meta = std::fs::symlink_metadata(root.join(&rel)).unwrap();
            let key = rel.as_os_str().as_bytes().to_vec();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(root.join(&rel)).unwrap();
                out.insert(key, (target.as_os_str().as_bytes().to_vec(), 0o120000));
            } else if meta.is_dir() {
                stack.push(rel);
            } else {
                let bytes = std::fs::read(root.join(&rel)).unwrap();
                out.insert(key, (bytes, meta.permissions().mode() & 0o777));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Restore

/// A situation to restore in. `setup` makes the repository, takes snapshot `s` and leaves the
/// repository as the user would have it when restoring; it returns the state at capture.
struct Scenario {
    name: &'static str,
    setup: fn(&Repo) -> State,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "everything at once, restored from another branch",
        setup: |r| {
            r.dirty();
            let before = r.state();
            snapshot::capture(&r.api(), options("s")).unwrap();
            r.reset_clean();
            r.git(&["checkout", "-q", "-b", "elsewhere"]);
            r.write("only-elsewhere.txt", b"x\n");
            r.git(&["add", "."]);
            r.git(&["commit", "-q", "-m", "elsewhere"]);
            before
        },
    },
    Scenario {
        name: "the branch moved meanwhile (applied onto the new tip)",
        setup: |r| {
            r.write("a.txt", b"snapshot edit\n");
            r.git(&["add", "a.txt"]);
            r.write("untracked.txt", b"u\n");
            r.write("dir/c.txt", b"unstaged edit\n");
            let before = r.state();
            snapshot::capture(&r.api(), options("s")).unwrap();
            r.reset_clean();
            r.write("b.txt", b"committed meanwhile\n");
            r.git(&["commit", "-q", "-am", "moved"]);
            before
        },
    },
    Scenario {
        name: "a detached HEAD",
        setup: |r| {
            r.git(&["checkout", "-q", "--detach"]);
            r.write("a.txt", b"detached work\n");
            r.git(&["add", "a.txt"]);
            r.write("new.txt", b"new\n");
            let before = r.state();
            snapshot::capture(&r.api(), options("s")).unwrap();
            r.reset_clean();
            r.git(&["checkout", "-q", "main"]);
            before
        },
    },
    Scenario {
        name: "a repository without commits",
        setup: |r| {
            for p in [
                ".gitignore",
                "a.txt",
                "b.txt",
                "dir/c.txt",
                "run.sh",
                "link",
            ] {
                std::fs::remove_file(r.path().join(p)).unwrap();
            }
            r.git(&["checkout", "-q", "--orphan", "fresh"]);
            r.git(&["rm", "-rq", "--cached", "."]);
            r.write("first.txt", b"staged\n");
            r.git(&["add", "first.txt"]);
            r.write("second.txt", b"untracked\n");
            let before = r.state();
            snapshot::capture(&r.api(), options("s")).unwrap();
            r.reset_clean();
            r.git(&["checkout", "-q", "main"]);
            before
        },
    },
];

/// For every scenario: a twin restored without interruption is the reference; the other is
/// killed at `point` (and at each of `then`, during the next attempts), then restored
/// in-process. Both must end identical, the ref gone, no temporary file left.
fn restore_crash(points: &[&str]) {
    for sc in SCENARIOS {
        let (twin, crashed) = (Repo::new(), Repo::new());
        let before = (sc.setup)(&twin);
        assert_eq!((sc.setup)(&crashed), before, "{}: twins differ", sc.name);
        let pre_restore = crashed.state();

        snapshot::restore(&twin.api(), "s").unwrap();
        let expected = twin.state();

        for point in points {
            crash_at("restore", crashed.path(), "s", point);
            assert!(
                crashed.has_ref("s"),
                "{}: ref deleted before the end",
                sc.name
            );
        }
        if matches!(points, [p] if *p == "restore.plan" || *p == "restore.read_tree") {
            assert_eq!(
                crashed.state(),
                pre_restore,
                "{}: nothing changes before {points:?}",
                sc.name
            );
        }
        let report = snapshot::restore(&crashed.api(), "s")
            .unwrap_or_else(|e| panic!("{}: after a crash at {points:?}: {e}", sc.name));
        assert_eq!(report.snapshot.meta.id, "s");
        let after = crashed.state();
        assert_eq!(after.status, expected.status, "{} at {points:?}", sc.name);
        assert_eq!(after, expected, "{} at {points:?}", sc.name);
        if sc.name != "the branch moved meanwhile (applied onto the new tip)" {
            assert_eq!(after, before, "{}: exact round trip", sc.name);
        }
        assert!(!crashed.has_ref("s"), "{}: ref left", sc.name);
        assert!(crashed.leftovers().is_empty(), "{:?}", crashed.leftovers());
    }
}

#[test]
fn restore_killed_at_plan() {
    restore_crash(&["restore.plan"]);
}

#[test]
fn restore_killed_at_read_tree() {
    restore_crash(&["restore.read_tree"]);
}

#[test]
fn restore_killed_at_head() {
    restore_crash(&["restore.head"]);
}

#[test]
fn restore_killed_at_index() {
    restore_crash(&["restore.index"]);
}

#[test]
fn restore_killed_at_delete_ref() {
    restore_crash(&["restore.delete_ref"]);
}

#[test]
fn restore_killed_again_while_finishing() {
    restore_crash(&[
        "restore.head",
        "restore.head",
        "restore.index",
        "restore.delete_ref",
    ]);
}

#[test]
fn every_failpoint_has_a_crash_test() {
    let tested = [
        "restore.plan",
        "restore.read_tree",
        "restore.head",
        "restore.index",
        "restore.delete_ref",
        "snapshot.index_tree",
        "snapshot.work_tree",
        "snapshot.commit",
        "snapshot.ref",
    ];
    for name in FAILPOINTS {
        assert!(tested.contains(name), "{name} has no crash test");
    }
    assert_eq!(FAILPOINTS.len(), tested.len());
}

#[test]
fn restore_failing_with_an_error_is_finished_later() {
    let r = Repo::new();
    r.dirty();
    let before = r.state();
    snapshot::capture(&r.api(), options("s")).unwrap();
    r.reset_clean();
    let (code, out) = run_child("restore", r.path(), "s", "restore.index=error(28)");
    assert_eq!(code, CHILD_FAILED, "{out}");
    assert!(
        out.contains("restore.index") && out.contains("No space left on device"),
        "{out}"
    );
    snapshot::restore(&r.api(), "s").unwrap();
    assert_eq!(r.state(), before);
}

/// An interrupted restore whose tree the user then changed is refused, changing nothing.
#[test]
fn an_interrupted_restore_is_not_finished_over_new_work() {
    for point in ["restore.head", "restore.index", "restore.delete_ref"] {
        let r = Repo::new();
        r.dirty();
        snapshot::capture(&r.api(), options("s")).unwrap();
        r.reset_clean();
        crash_at("restore", r.path(), "s", point);

        // New work in the working tree.
        r.write("b.txt", b"written after the crash\n");
        let mid = r.state();
        let err = snapshot::restore(&r.api(), "s").unwrap_err();
        assert!(matches!(err, SnapshotError::Dirty(_)), "{point}: {err}");
        assert_eq!(
            r.state(),
            mid,
            "{point}: a refused restore changed something"
        );
        assert!(r.has_ref("s"));
        assert!(r.leftovers().is_empty(), "{:?}", r.leftovers());

        // An untracked file appeared.
        r.write("b.txt", b"unstaged\n");
        r.write("fresh.txt", b"new\n");
        let mid = r.state();
        let err = snapshot::restore(&r.api(), "s").unwrap_err();
        assert!(matches!(err, SnapshotError::Dirty(_)), "{point}: {err}");
        assert_eq!(r.state(), mid);
        std::fs::remove_file(r.path().join("fresh.txt")).unwrap();

        // The index changed (something staged that is neither W's nor I's).
        r.write("extra.txt", b"staged after\n");
        r.git(&["add", "extra.txt"]);
        std::fs::remove_file(r.path().join("extra.txt")).unwrap();
        let mid = r.state();
        let err = snapshot::restore(&r.api(), "s").unwrap_err();
        assert!(matches!(err, SnapshotError::Dirty(_)), "{point}: {err}");
        assert_eq!(r.state(), mid);
        assert!(r.has_ref("s"));
    }
}

// ---------------------------------------------------------------------------------------------
// Capture

#[test]
fn capture_killed_at_each_step_touches_nothing_and_can_be_taken_again() {
    for point in FAILPOINTS.iter().filter(|p| p.starts_with("snapshot.")) {
        let r = Repo::new();
        r.dirty();
        let before = r.state();
        let index_file = std::fs::read(r.path().join(".git/index")).unwrap();
        crash_at("capture", r.path(), "c", point);
        assert_eq!(
            r.state(),
            before,
            "{point}: capture changed the user's state"
        );
        assert_eq!(
            std::fs::read(r.path().join(".git/index")).unwrap(),
            index_file,
            "{point}: the index file was written"
        );
        // No ref (every failpoint is before the ref is created), so no half snapshot is listed.
        assert!(!r.has_ref("c"), "{point}");
        assert!(snapshot::list(&r.api()).unwrap().is_empty());
        let left = r.leftovers();

        // Another snapshot works beside the leftovers, and so does the same id again.
        snapshot::capture(&r.api(), options("other")).unwrap();
        let snap = snapshot::capture(&r.api(), options("c")).unwrap();
        assert_eq!(r.state(), before, "{point}");
        assert_eq!(snapshot::read(&r.api(), "c").unwrap(), snap);
        assert!(
            r.leftovers().is_empty(),
            "{point}: the same id cleans its leftovers {left:?}, found {:?}",
            r.leftovers()
        );
        r.reset_clean();
        snapshot::restore(&r.api(), "c").unwrap();
        assert_eq!(r.state(), before, "{point}: round trip after the crash");
    }
}

#[test]
fn capture_failing_with_an_error_reports_it_and_touches_nothing() {
    let r = Repo::new();
    r.dirty();
    let before = r.state();
    let (code, out) = run_child("capture", r.path(), "e", "snapshot.commit=error(28)");
    assert_eq!(code, CHILD_FAILED, "{out}");
    assert!(
        out.contains("snapshot.commit") && out.contains("No space left on device"),
        "{out}"
    );
    assert_eq!(r.state(), before);
    assert!(!r.has_ref("e"));
    assert!(
        r.leftovers().is_empty(),
        "an error return cleans up: {:?}",
        r.leftovers()
    );
}

/// A process killed in the middle of a git command (SIGKILL during `git add`) leaves a
/// temporary index and its lock behind: the same id starts over, and old leftovers of other ids
/// are swept.
#[test]
fn leftovers_of_killed_processes_do_not_break_anything() {
    let r = Repo::new();
    r.dirty();
    let before = r.state();
    let git_dir = r.path().join(".git");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
    let leave = |name: &str, age: Option<std::time::SystemTime>| {
        std::fs::write(git_dir.join(name), b"garbage, not an index").unwrap();
        if let Some(t) = age {
            std::fs::File::options()
                .write(true)
                .open(git_dir.join(name))
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
    };
    // Same id as the next capture, fresh: replaced.
    leave("berth-snapshot-c-work.index", None);
    leave("berth-snapshot-c-work.index.lock", None);
    leave("berth-snapshot-c-index.index.lock", None);
    // Other ids, long dead: swept.
    leave("berth-snapshot-gone-index.index", Some(old));
    leave("berth-snapshot-gone-work.index.lock", Some(old));
    // Another id, recent (could be someone's running capture): left alone.
    leave("berth-snapshot-recent-work.index", None);
    let snap = snapshot::capture(&r.api(), options("c")).unwrap();
    assert_eq!(r.state(), before);
    assert_eq!(r.leftovers(), ["berth-snapshot-recent-work.index"]);
    r.reset_clean();
    snapshot::restore(&r.api(), &snap.meta.id).unwrap();
    assert_eq!(r.state(), before);
}
