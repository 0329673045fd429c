//! Each of the seven daemon states, reached for real.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::time::Duration;

use berth_testkit::wait_until;

use crate::{home, start};

#[test]
fn stopped_when_nothing_ever_ran() {
    let h = home();
    let out = h.run(&["--json", "daemon", "status"]);
    out.expect_code(3);
    assert_eq!(out.json()["state"], "stopped");
    let human = h.run(&["daemon", "status"]);
    assert!(human.stdout.contains("berth daemon: stopped"), "{human}");
}

#[test]
fn running_after_start_and_stopped_after_stop() {
    let h = home();
    let started = start(&h);
    assert_eq!(started["state"], "running");
    assert_eq!(started["already_running"], false);
    // `start` returned only once ready: the very next status says running and healthy.
    let status = h.status();
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(status["healthy"], true);
    assert_eq!(status["pid"], started["pid"]);
    assert_eq!(status["config_matches"], true);
    let stop = h.run(&["--json", "daemon", "stop"]);
    stop.expect_code(0);
    assert_eq!(stop.json()["outcome"], "graceful");
    assert_eq!(h.state(), "stopped");
    assert_eq!(h.run_files(), ["daemon.log"], "only the log remains");
}

/// `berth serve` in the foreground with one failpoint active.
fn serve_with(h: &berth_testkit::TestHome, failpoint: &str) -> std::process::Child {
    h.spawn(&["serve"], &[("BERTH_FAILPOINTS", failpoint)])
}

fn wait_for_state(h: &berth_testkit::TestHome, state: &str) {
    wait_until(
        &format!("status answers {state}"),
        Duration::from_secs(10),
        || h.state() == state,
    );
}

#[test]
fn starting_while_storage_is_prepared() {
    let h = home();
    let mut serve = serve_with(&h, "daemon.prepare=sleep(1500)");
    wait_for_state(&h, "starting");
    let status = h.status();
    assert_eq!(status["healthy"], false);
    // The early socket answers the handshake while preparation runs.
    assert_eq!(status["pid"], serve.id());
    // What needs the store answers 503 `starting` until it is ready.
    let events = h.run(&["--json", "events"]);
    events.expect_code(1);
    assert_eq!(events.json()["error"]["code"], "starting", "{events}");
    wait_for_state(&h, "running");
    h.run(&["daemon", "stop"]).expect_code(0);
    assert!(serve.wait().unwrap().success());
}

#[test]
fn stopping_while_shutdown_is_in_progress() {
    let h = home();
    let mut serve = serve_with(&h, "daemon.shutdown=sleep(1500)");
    wait_for_state(&h, "running");
    let pid = serve.id() as i32;
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    wait_for_state(&h, "stopping");
    assert!(
        serve.wait().unwrap().success(),
        "SIGTERM is a graceful shutdown"
    );
    assert_eq!(h.state(), "stopped");
}

#[test]
fn stale_after_sigkill_and_start_cleans_it() {
    let h = home();
    start(&h);
    h.signal_daemon(libc::SIGKILL);
    let out = h.run(&["--json", "daemon", "status"]);
    out.expect_code(3);
    let status = out.json();
    assert_eq!(status["state"], "stale", "{status}");
    let files = status["files"].to_string();
    assert!(
        files.contains("berth.sock") && files.contains("daemon.pid"),
        "{files}"
    );
    let human = h.run(&["daemon", "status"]);
    assert!(human.stdout.contains("berth doctor --fix"), "{human}");

    let restarted = start(&h);
    let cleaned = restarted["cleaned_stale_files"].to_string();
    assert!(cleaned.contains("daemon.pid"), "{restarted}");
    assert_eq!(h.state(), "running");
    h.run(&["daemon", "stop"]).expect_code(0);
}

/// A program that is not berth listening on the socket path: it answers like an SSH server.
fn foreign_listener(path: &std::path::Path) -> UnixListener {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let listener = UnixListener::bind(path).unwrap();
    let l = listener.try_clone().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let mut conn = conn;
            let _ = conn.write_all(b"SSH-2.0-OpenSSH_9.2\r\n");
        }
    });
    listener
}

#[test]
fn foreign_when_another_program_holds_the_socket() {
    let h = home();
    let _listener = foreign_listener(&h.socket());
    let out = h.run(&["--json", "daemon", "status"]);
    assert_eq!(out.json()["state"], "foreign", "{out}");
    out.expect_code(1);

    let start = h.run(&["daemon", "start"]);
    start.expect_code(4);
    assert!(start.stderr.contains("not berth"), "{start}");
    let stop = h.run(&["daemon", "stop"]);
    stop.expect_code(4);
    // A second daemon run directly refuses too, and nobody removed the socket.
    let serve = h.run(&["serve"]);
    serve.expect_code(4);
    assert!(h.socket().exists());
    assert_eq!(h.state(), "foreign");
}

/// A stand-in berth of another protocol version.
fn other_protocol_listener(path: &std::path::Path) -> UnixListener {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let listener = UnixListener::bind(path).unwrap();
    let l = listener.try_clone().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let mut conn = conn;
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let body = r#"{"product":"berth","protocol":999,"version":"9.0.0","capabilities":[],"phase":"running","healthy":true,"pid":4242,"generation":"future"}"#;
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes());
        }
    });
    listener
}

#[test]
fn incompatible_when_a_berth_of_another_protocol_answers() {
    let h = home();
    let _listener = other_protocol_listener(&h.socket());
    let status = h.status();
    assert_eq!(status["state"], "incompatible", "{status}");
    assert_eq!(status["protocol"], 999);
    let start = h.run(&["daemon", "start"]);
    start.expect_code(4);
    assert!(
        start.stderr.contains("protocol 999") && start.stderr.contains("kill 4242"),
        "{start}"
    );
    assert!(h.socket().exists());
}
