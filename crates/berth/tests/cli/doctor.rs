//! `berth doctor`: stale files, foreign sockets, unreadable and newer-schema databases.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;

use berth_testkit::mode;

use crate::{home, start};

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

#[test]
fn a_healthy_home_is_ok() {
    let h = home();
    start(&h);
    let out = h.run(&["--json", "doctor"]);
    out.expect_code(0);
    let report = out.json();
    assert_eq!(report["ok"], true, "{report}");
    assert!(
        check(&report, "database")["message"]
            .as_str()
            .unwrap()
            .contains("schema")
    );
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn stale_files_are_reported_then_fixed() {
    let h = home();
    start(&h);
    h.signal_daemon(libc::SIGKILL);
    let out = h.run(&["--json", "doctor"]);
    out.expect_code(1);
    assert_eq!(check(&out.json(), "daemon")["status"], "problem");
    let fixed = h.run(&["--json", "doctor", "--fix"]);
    fixed.expect_code(0);
    assert_eq!(check(&fixed.json(), "daemon")["status"], "fixed");
    assert_eq!(h.state(), "stopped");
    assert_eq!(h.run_files(), ["daemon.log"]);
}

#[test]
fn a_foreign_socket_is_explained_and_never_deleted() {
    let h = home();
    std::fs::create_dir_all(h.run_dir()).unwrap();
    let _listener = UnixListener::bind(h.socket()).unwrap();
    let out = h.run(&["doctor", "--fix"]);
    out.expect_code(1);
    assert!(
        out.stdout.contains("not berth") && out.stdout.contains("never removes"),
        "{out}"
    );
    assert!(h.socket().exists());
}

#[test]
fn an_open_run_dir_is_tightened_by_fix() {
    let h = home();
    std::fs::create_dir_all(h.run_dir()).unwrap();
    std::fs::set_permissions(h.run_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    h.run(&["doctor"]).expect_code(1);
    h.run(&["doctor", "--fix"]).expect_code(0);
    assert_eq!(mode(&h.run_dir()), 0o700);
}

#[test]
fn an_open_home_is_made_private_at_start_and_by_doctor_fix() {
    let h = home();
    start(&h);
    h.run(&["daemon", "stop"]).expect_code(0);
    let db = h.path().join("state/berth.db");
    let open = |p: &std::path::Path, m| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    let open_all = || {
        open(h.path(), 0o755);
        open(&h.path().join("agents"), 0o755);
        open(&h.path().join("state"), 0o750);
        open(&db, 0o644);
    };
    let private = || {
        assert_eq!(mode(h.path()), 0o700);
        assert_eq!(mode(&h.path().join("agents")), 0o700);
        assert_eq!(mode(&h.path().join("state")), 0o700);
        assert_eq!(mode(&db), 0o600);
    };
    private();

    open_all();
    let out = h.run(&["--json", "doctor"]);
    out.expect_code(1);
    let c = check(&out.json(), "home").clone();
    assert_eq!(c["status"], "problem", "{c}");
    assert_eq!(c["details"].as_array().unwrap().len(), 4, "{c}");
    let out = h.run(&["--json", "doctor", "--fix"]);
    out.expect_code(0);
    assert_eq!(check(&out.json(), "home")["status"], "fixed");
    private();
    h.run(&["doctor"]).expect_code(0);

    open_all();
    start(&h);
    private();
    let log = std::fs::read_to_string(h.run_dir().join("daemon.log")).unwrap();
    assert!(log.contains("made it private"), "{log}");
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn an_unreadable_database_is_reported_and_left_alone() {
    let h = home();
    let db = h.path().join("state/berth.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    std::fs::write(&db, b"this is not a database, it is a grocery list").unwrap();
    let out = h.run(&["--json", "doctor", "--fix"]);
    out.expect_code(1);
    let c = check(&out.json(), "database").clone();
    assert_eq!(c["status"], "problem", "{c}");
    assert!(c["hint"].as_str().unwrap().contains("never deletes"));
    assert_eq!(
        std::fs::read(&db).unwrap(),
        b"this is not a database, it is a grocery list"
    );
}

#[test]
fn a_newer_schema_is_reported_and_refused_by_the_daemon() {
    let h = home();
    start(&h);
    h.run(&["daemon", "stop"]).expect_code(0);
    let db = h.path().join("state/berth.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    let out = h.run(&["--json", "doctor"]);
    out.expect_code(1);
    let c = check(&out.json(), "database").clone();
    assert!(c["message"].as_str().unwrap().contains("newer"), "{c}");
    let start = h.run(&["daemon", "start"]);
    start.expect_code(1);
    assert!(start.stderr.contains("newer"), "{start}");
}
