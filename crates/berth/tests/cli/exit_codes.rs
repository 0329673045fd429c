//! One test per documented exit code (docs/cli.md): what each means, from the CLI's own checks
//! and from the daemon's answers alike.

use berth_testkit::repo;

use crate::{home, start};

#[test]
fn exit_0_success() {
    let h = home();
    start(&h);
    h.run(&["daemon", "status"]).expect_code(0);
    let p = repo(&[("README", "hi\n")]);
    h.run_in(p.path(), &["agent", "new", "fixer", "--cmd", "true"])
        .expect_code(0);
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn exit_1_the_operation_failed() {
    let h = home();
    start(&h);
    let p = repo(&[("README", "hi\n")]);
    let out = h.run_in(p.path(), &["--json", "agent", "start", "nobody"]);
    out.expect_code(1);
    assert_eq!(out.json()["error"]["code"], "agent_not_found");
    h.run_in(p.path(), &["agent", "new", "plain"])
        .expect_code(0);
    let out = h.run_in(p.path(), &["--json", "send", "plain", "hi"]);
    out.expect_code(1);
    assert_eq!(out.json()["error"]["code"], "not_deliverable");
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn exit_2_bad_arguments_or_configuration() {
    let h = home();
    h.run(&["daemon", "start", "--no-such-flag"]).expect_code(2);
    start(&h);
    let p = repo(&[("README", "hi\n")]);
    h.run_in(p.path(), &["agent", "new", "bot", "--turn", "cat"])
        .expect_code(0);
    for (args, code) in [
        (
            &["--json", "agent", "new", "BadName", "--cmd", "true"][..],
            "invalid_agent",
        ),
        (
            &["--json", "agent", "new", "ok", "--restart", "sometimes"],
            "invalid_agent",
        ),
        (&["--json", "up"], "invalid_config"),
        (&["--json", "stash", "restore", "../x"], "bad_id"),
        (&["--json", "send", "bot", ""], "invalid_message"),
    ] {
        let out = h.run_in(p.path(), args);
        out.expect_code(2);
        assert_eq!(out.json()["error"]["code"], code, "{args:?}: {out}");
    }
    let outside = tempfile::tempdir().unwrap();
    let out = h.run_in(outside.path(), &["--json", "agent", "list"]);
    out.expect_code(2);
    assert_eq!(out.json()["error"]["code"], "not_a_repository");
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn exit_3_the_daemon_is_not_running() {
    let h = home();
    let p = repo(&[("README", "hi\n")]);
    h.run_in(p.path(), &["agent", "list"]).expect_code(3);
    h.run(&["daemon", "status"]).expect_code(3);
}

#[test]
fn exit_4_refused_for_safety() {
    let h = home();
    start(&h);
    let p = repo(&[("README", "hi\n")]);
    std::fs::write(p.path().join("README"), "saved\n").unwrap();
    let saved = h.run_in(p.path(), &["--json", "stash", "save"]);
    saved.expect_code(0);
    let id = saved.json()["id"].as_str().unwrap().to_string();
    std::fs::write(p.path().join("README"), "unsaved work\n").unwrap();
    let out = h.run_in(p.path(), &["--json", "stash", "restore", &id]);
    out.expect_code(4);
    assert_eq!(out.json()["error"]["code"], "dirty_tree");
    h.run(&["daemon", "stop"]).expect_code(0);
}
