//! The daemon lifecycle: single instance, signals, fingerprint, start failures, restart, logs.

use std::time::{Duration, Instant};

use berth_testkit::mode;

use crate::{home, start};

#[test]
fn a_second_serve_is_refused_at_once() {
    let h = home();
    let first = start(&h);
    let began = Instant::now();
    let second = h.run(&["serve"]);
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "refusal took {:?}",
        began.elapsed()
    );
    second.expect_code(1);
    let pid = first["pid"].as_u64().unwrap();
    assert!(
        second.stderr.contains(&format!(
            "another berth daemon (pid {pid}) is already serving"
        )),
        "{second}"
    );
    assert_eq!(h.state(), "running", "the first daemon is untouched");
    h.run(&["daemon", "stop"]).expect_code(0);
}

fn signal_leaves_no_runtime_files(sig: i32) {
    let h = home();
    start(&h);
    h.signal_daemon(sig);
    assert_eq!(
        h.run_files(),
        ["daemon.log"],
        "runtime files left after signal {sig}"
    );
    assert_eq!(h.state(), "stopped");
    let log = std::fs::read_to_string(h.run_dir().join("daemon.log")).unwrap();
    assert!(log.contains("shutting down gracefully"), "{log}");
}

#[test]
fn sigterm_is_a_graceful_shutdown_that_leaves_no_runtime_files() {
    signal_leaves_no_runtime_files(libc::SIGTERM);
}

#[test]
fn sigint_is_a_graceful_shutdown_that_leaves_no_runtime_files() {
    signal_leaves_no_runtime_files(libc::SIGINT);
}

#[test]
fn run_dir_is_private_and_the_socket_is_0600() {
    let h = home();
    start(&h);
    assert_eq!(mode(&h.run_dir()), 0o700);
    assert_eq!(mode(&h.socket()), 0o600);
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn start_against_a_different_configuration_names_each_differing_field() {
    let h = home();
    start(&h);
    let again = h.run(&["daemon", "start"]);
    again.expect_code(0);
    assert!(again.stdout.contains("already running"), "{again}");

    let out = h.run(&[
        "daemon",
        "start",
        "--log-keep",
        "7",
        "--event-retention",
        "50",
    ]);
    out.expect_code(1);
    assert!(out.stderr.contains("different configuration"), "{out}");
    assert!(
        out.stderr.contains("log_keep: running 3, asked for 7"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("event_retention: running 100000, asked for 50"),
        "{out}"
    );
    let json = h.run(&["--json", "daemon", "start", "--log-keep", "7"]);
    json.expect_code(1);
    let err = json.json();
    assert_eq!(err["error"]["code"], "config_mismatch");
    assert_eq!(err["error"]["details"].as_array().unwrap().len(), 1);
    // status with the same options shows the difference too.
    let status = h
        .run(&["--json", "daemon", "status", "--log-keep", "7"])
        .json();
    assert_eq!(status["config_matches"], false);
    assert_eq!(status["config_diff"][0]["field"], "log_keep");
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_crash_during_start_is_reported_with_the_log_tail() {
    let h = home();
    let mut cmd = h.command(&["daemon", "start"]);
    cmd.env("BERTH_FAILPOINTS", "daemon.prepare=exit(7)");
    let began = Instant::now();
    let out = h.run_cmd(cmd);
    out.expect_code(1);
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "fails fast, took {:?}",
        began.elapsed()
    );
    assert!(
        out.stderr
            .contains("exited with status 7 before it was ready"),
        "{out}"
    );
    assert!(
        out.stderr.contains("failpoint reached"),
        "the log tail is shown:\n{out}"
    );
    assert!(out.stderr.contains("berth daemon starting"), "{out}");
    // Nothing half-started is left behind; the next start works.
    assert_eq!(h.state(), "stale");
    start(&h);
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_failed_preparation_writes_a_failure_record_of_that_run() {
    let h = home();
    // A directory where the database file should be makes the store fail to open.
    std::fs::create_dir_all(h.path().join("state/berth.db")).unwrap();
    let out = h.run(&["daemon", "start"]);
    out.expect_code(1);
    assert!(out.stderr.contains("could not start"), "{out}");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.run_dir().join("last_failure.json")).unwrap())
            .unwrap();
    assert_eq!(record["phase"], "prepare");
    assert!(h.run_dir().join("failure-prepare.json").exists());
    // Once fixed, status tells the old failure apart from the current run.
    std::fs::remove_dir(h.path().join("state/berth.db")).unwrap();
    start(&h);
    let status = h.status();
    assert_eq!(status["last_failure"]["phase"], "prepare");
    assert_eq!(status["last_failure"]["current_run"], false);
    assert_ne!(status["last_failure"]["generation"], status["generation"]);
    let logs = h.run(&["daemon", "logs", "--tail", "5"]);
    logs.expect_code(0);
    assert!(
        logs.stdout.contains("failure record:") && logs.stdout.contains("prepare"),
        "{logs}"
    );
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn restart_reuses_the_recorded_options() {
    let h = home();
    h.run(&["daemon", "start", "--log-keep", "5"])
        .expect_code(0);
    let before = h.status();
    let out = h.run(&["--json", "daemon", "restart"]);
    out.expect_code(0);
    let after = h.status();
    assert_eq!(after["state"], "running");
    assert_ne!(after["pid"], before["pid"]);
    assert_eq!(after["fingerprint"], before["fingerprint"]);
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn stop_escalates_to_sigkill_when_the_daemon_ignores_shutdown() {
    let h = home();
    // The daemon hangs in shutdown for a minute; stop must not wait that long.
    let mut cmd = h.command(&["daemon", "start"]);
    cmd.env("BERTH_FAILPOINTS", "daemon.shutdown=sleep(60000)");
    h.run_cmd(cmd).expect_code(0);
    let began = Instant::now();
    let out = h.run(&[
        "--json",
        "daemon",
        "stop",
        "--graceful-timeout",
        "200ms",
        "--term-timeout",
        "200ms",
    ]);
    out.expect_code(0);
    assert!(began.elapsed() < Duration::from_secs(5));
    let report = out.json();
    // SIGTERM only re-requests the shutdown that is already hanging, so SIGKILL ends it.
    assert_eq!(report["outcome"], "killed", "{report}");
    assert_eq!(
        h.run_files(),
        ["daemon.log"],
        "the CLI removed what the killed daemon left"
    );
}

#[test]
fn stop_when_nothing_runs_is_not_an_error() {
    let h = home();
    let out = h.run(&["daemon", "stop"]);
    out.expect_code(0);
    assert!(out.stdout.contains("not running"), "{out}");
}

#[test]
fn logs_show_the_tail() {
    let h = home();
    start(&h);
    h.run(&["daemon", "stop"]).expect_code(0);
    let out = h.run(&["--json", "daemon", "logs", "--tail", "3"]);
    out.expect_code(0);
    let lines = out.json()["lines"].as_array().unwrap().clone();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[2].as_str().unwrap().contains("berth daemon stopped"),
        "{lines:?}"
    );
}

#[test]
fn bad_flags_are_usage_errors() {
    let h = home();
    h.run(&["daemon", "start", "--start-timeout", "soon"])
        .expect_code(2);
    h.run(&["daemon", "frobnicate"]).expect_code(2);
    let out = h.run(&["daemon", "start", "--listen", "127.0.0.1:0"]);
    out.expect_code(2);
    assert!(out.stderr.contains("requires a bearer token"), "{out}");
    assert_eq!(h.state(), "stopped", "nothing was started");
}

/// A start that finds the lock held by something that does not answer yet (a daemon between
/// its lock and its socket, or one killed a moment ago that the kernel is still tearing down)
/// waits for it to settle instead of failing.
#[test]
fn a_start_waits_for_a_lock_holder_that_does_not_answer_yet() {
    use std::os::fd::AsRawFd;
    let h = home();
    let run = h.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(run.join("daemon.lock"))
        .unwrap();
    // SAFETY: an all-zero `flock` is valid; F_SETLK with it on an open descriptor.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: as above.
    assert_eq!(
        unsafe { libc::fcntl(lock.as_raw_fd(), libc::F_SETLK, &fl) },
        0
    );
    let released = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(lock);
    });
    let out = h.run(&["--json", "daemon", "start"]);
    released.join().unwrap();
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.json()["state"], "running", "{out}");
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_daemon_killed_a_moment_ago_is_started_again_at_once() {
    // The kernel tears a killed daemon down one descriptor at a time; a start in that moment
    // once took its socket for a foreign program's (exit 4). Several rounds, to meet the moment.
    let h = home();
    for round in 0..10 {
        start(&h);
        let pid = h.recorded_pid().unwrap();
        // SAFETY: kill(2) on the daemon this test started; not waited for, on purpose.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        let out = h.run(&["--json", "daemon", "start"]);
        assert_eq!(out.code, 0, "round {round}: {out}");
        assert_eq!(out.json()["state"], "running", "round {round}: {out}");
    }
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_start_that_times_out_stops_the_daemon_it_spawned_and_records_why() {
    let h = home();
    let mut cmd = h.command(&["--json", "daemon", "start", "--start-timeout", "1s"]);
    cmd.env("BERTH_FAILPOINTS", "daemon.prepare=sleep(4000)");
    let out = h.run_cmd(cmd);
    out.expect_code(1);
    let err = out.json()["error"].clone();
    assert_eq!(err["code"], "start_timeout", "{out}");
    let message = err["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("berth stopped it") || message.contains("berth killed it"),
        "says what became of it: {out}"
    );
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.run_dir().join("last_failure.json")).unwrap())
            .unwrap();
    assert_eq!(record["phase"], "start", "{record}");
    let pid = record["pid"].as_i64().unwrap() as i32;
    assert!(
        !berth_testkit::alive(pid),
        "the spawned daemon {pid} is gone"
    );
    // Had it been left running, it would be ready by now.
    std::thread::sleep(Duration::from_secs(4));
    assert_ne!(h.state(), "running");
    let status = h.status();
    assert_eq!(status["last_failure"]["phase"], "start", "{status}");
    start(&h);
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn an_early_death_is_recorded_and_its_log_excerpt_is_of_that_run_only() {
    let h = home();
    std::fs::create_dir_all(h.run_dir()).unwrap();
    std::fs::write(
        h.run_dir().join("daemon.log"),
        "an earlier run's line that must not be shown\n",
    )
    .unwrap();
    let mut cmd = h.command(&["--json", "daemon", "start"]);
    // Dies before the store opens, without a word of its own.
    cmd.env("BERTH_FAILPOINTS", "daemon.prepare=exit(7)");
    let out = h.run_cmd(cmd);
    out.expect_code(1);
    assert!(!out.stdout.contains("earlier run"), "{out}");
    assert!(out.stdout.contains("failpoint reached"), "{out}");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.run_dir().join("last_failure.json")).unwrap())
            .unwrap();
    assert_eq!(record["phase"], "start", "{record}");
    assert!(
        record["message"]
            .as_str()
            .unwrap_or_default()
            .contains("exited with status 7"),
        "{record}"
    );
    let logs = h.run(&["daemon", "logs"]);
    assert!(logs.stdout.contains("failure record:"), "{logs}");
    let status = h.run(&["--json", "daemon", "status"]).json();
    assert_eq!(status["last_failure"]["phase"], "start", "{status}");
}

#[test]
fn a_shutdown_that_hangs_ends_by_itself_and_records_the_step() {
    let h = home();
    let mut cmd = h.command(&["daemon", "start"]);
    cmd.env("BERTH_FAILPOINTS", "daemon.shutdown=sleep(60000)")
        .env("BERTH_SHUTDOWN_LIMIT_MS", "1000");
    h.run_cmd(cmd).expect_code(0);
    let began = Instant::now();
    // Waits (bounded) until the daemon is gone: no SIGKILL from outside is needed.
    h.signal_daemon(libc::SIGTERM);
    assert!(
        began.elapsed() < Duration::from_secs(8),
        "took {:?}",
        began.elapsed()
    );
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.run_dir().join("last_failure.json")).unwrap())
            .unwrap();
    assert_eq!(record["phase"], "shutdown", "{record}");
    let message = record["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("announcing the stop"),
        "names the step: {record}"
    );
    // What it left is cleaned by the next start.
    assert_eq!(h.state(), "stale");
    start(&h);
    h.run(&["daemon", "stop"]).expect_code(0);
}
