//! Snapshot capture and restore killed at every failpoint (`BERTH_FAILPOINTS=<name>=exit(3)`,
//! in a child process: this test binary run again with an environment switch), then run again
//! in-process: nothing of the user's is lost, a capture can be taken again, and a restore
//! finishes exactly as an uninterrupted one does.

// An integration test: its helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use berth_git::Git;
use berth_git::failpoint::FAILPOINTS;
use berth_git::snapshot::{self, CaptureOptions, SnapshotError};
use berth_testkit::{
    FIXED_DATES, WorktreeState, base_with_env, dirty, empty_repo, git_with_env, reset_clean,
    worktree_state, write,
};

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

impl Repo {
    /// The kit's base, committed with fixed dates so twin repositories are identical.
    fn new() -> Repo {
        let r = Repo { dir: empty_repo() };
        base_with_env(r.path(), FIXED_DATES);
        r
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn api(&self) -> Git {
        Git::new(self.path())
    }

    /// Runs git with fixed dates, so twin repositories have identical commits.
    fn git(&self, args: &[&str]) -> Vec<u8> {
        git_with_env(self.path(), FIXED_DATES, args)
    }

    fn write(&self, rel: &str, bytes: &[u8]) {
        write(self.path(), rel, bytes);
    }

    fn state(&self) -> WorktreeState {
        worktree_state(self.path())
    }

    fn reset_clean(&self) {
        reset_clean(self.path());
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

// ---------------------------------------------------------------------------------------------
// Restore

/// A situation to restore in. `setup` makes the repository, takes snapshot `s` and leaves the
/// repository as the user would have it when restoring; it returns the state at capture.
struct Scenario {
    name: &'static str,
    setup: fn(&Repo) -> WorktreeState,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "everything at once, restored from another branch",
        setup: |r| {
            dirty(r.path());
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
    dirty(r.path());
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
        dirty(r.path());
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
        dirty(r.path());
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
    dirty(r.path());
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
    dirty(r.path());
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
