//! `berth stash` end to end: the CLI, the daemon, git and the database.

use berth_testkit::{git, repo as new_repo};

use crate::{home, start};

fn repo() -> tempfile::TempDir {
    new_repo(&[("a.txt", "a\n")])
}

#[test]
fn save_list_show_restore_round_trip() {
    let h = home();
    start(&h);
    let r = repo();
    std::fs::create_dir(r.path().join("sub")).unwrap();
    std::fs::write(r.path().join("a.txt"), "edited\n").unwrap();
    std::fs::write(r.path().join("sub/new.txt"), "untracked\n").unwrap();
    let before = git(
        r.path(),
        &["status", "--porcelain=v2", "--untracked-files=all"],
    );

    // From a subdirectory: the repository is found from where the user stands.
    let mut save = h.command(&["--json", "stash", "save", "-m", "before lunch"]);
    save.current_dir(r.path().join("sub"));
    let saved = h.run_cmd(save);
    saved.expect_code(0);
    let id = saved.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        git(
            r.path(),
            &["status", "--porcelain=v2", "--untracked-files=all"]
        ),
        before,
        "save touches nothing"
    );

    let run = |args: &[&str]| h.run_in(r.path(), args);
    let list = run(&["--json", "stash", "list"]);
    list.expect_code(0);
    assert_eq!(list.json()["snapshots"][0]["id"], id.as_str());
    assert_eq!(list.json()["snapshots"][0]["message"], "before lunch");
    let show = run(&["stash", "show", &id]);
    show.expect_code(0);
    assert!(
        show.stdout.contains("M a.txt") && show.stdout.contains("A sub/new.txt"),
        "{show}"
    );

    // Refused while dirty: exit 4, nothing changed.
    let refused = run(&["stash", "restore", &id]);
    refused.expect_code(4);
    assert!(
        refused.stderr.contains("working tree has changes"),
        "{refused}"
    );

    git(r.path(), &["reset", "-q", "--hard"]);
    git(r.path(), &["clean", "-fdq"]);
    let restored = run(&["stash", "restore", &id]);
    restored.expect_code(0);
    assert_eq!(
        git(
            r.path(),
            &["status", "--porcelain=v2", "--untracked-files=all"]
        ),
        before
    );
    assert!(
        run(&["--json", "stash", "list"]).json()["snapshots"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let events = h.run(&["--json", "events"]).stdout;
    assert!(
        events.contains("stash.saved") && events.contains("stash.restored"),
        "{events}"
    );
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn list_finds_snapshots_the_database_lost() {
    let h = home();
    start(&h);
    let r = repo();
    std::fs::write(r.path().join("a.txt"), "edited\n").unwrap();
    let run = |args: &[&str]| h.run_in(r.path(), args);
    let id = run(&["--json", "stash", "save"]).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    h.run(&["daemon", "stop"]).expect_code(0);
    std::fs::remove_file(h.path().join("state/berth.db")).unwrap();
    start(&h);
    let list = run(&["--json", "stash", "list"]).json();
    assert_eq!(list["snapshots"][0]["id"], id.as_str());
    assert_eq!(list["snapshots"][0]["recorded"], false);
    assert_eq!(
        run(&["--json", "stash", "list"]).json()["snapshots"][0]["recorded"],
        true
    );
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn drop_asks_unless_told_and_bad_input_is_refused_cleanly() {
    let h = home();
    start(&h);
    let r = repo();
    std::fs::write(r.path().join("a.txt"), "edited\n").unwrap();
    let run = |args: &[&str]| h.run_in(r.path(), args);
    let id = run(&["--json", "stash", "save"]).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    run(&["stash", "drop", &id]).expect_code(2);
    assert_eq!(
        run(&["--json", "stash", "list"]).json()["snapshots"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    run(&["stash", "drop", &id, "--yes"]).expect_code(0);
    let missing = run(&["--json", "stash", "restore", &id]);
    missing.expect_code(1);
    assert_eq!(missing.json()["error"]["code"], "snapshot_not_found");
    let bad = run(&["--json", "stash", "show", "../../etc"]);
    bad.expect_code(2);
    assert_eq!(bad.json()["error"]["code"], "bad_id");
    let outside = tempfile::tempdir().unwrap();
    let mut c = h.command(&["--json", "stash", "save"]);
    c.current_dir(outside.path());
    let not_repo = h.run_cmd(c);
    not_repo.expect_code(2);
    assert_eq!(not_repo.json()["error"]["code"], "not_a_repository");
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn errors_say_what_happened_and_what_to_do() {
    use std::os::unix::ffi::OsStrExt;
    let h = home();
    start(&h);
    let r = repo();
    let bad_id = h.run_in(r.path(), &["stash", "restore", "../x"]);
    bad_id.expect_code(2);
    assert!(bad_id.stderr.contains("berth stash list"), "{bad_id}");

    // A repository whose path is not UTF-8: not blamed on a missing git.
    let parent = tempfile::tempdir().unwrap();
    let odd = parent.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    std::fs::create_dir(&odd).unwrap();
    berth_testkit::init_repo(&odd);
    let out = h.run_in(&odd, &["--json", "stash", "list"]);
    out.expect_code(1);
    let err = out.json()["error"].clone();
    assert_eq!(err["code"], "path_not_utf8", "{out}");
    assert!(err["message"].as_str().unwrap().contains("UTF-8"), "{err}");
    assert!(!out.stdout.contains("installed"), "{out}");
    h.run(&["daemon", "stop"]).expect_code(0);
}
