//! Readiness probes, each against a real target: an agent stays `starting` until its probe
//! passes, then is `running`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use berth_testkit::{TestHome, wait_until};

use crate::{home, start};

fn project() -> tempfile::TempDir {
    berth_testkit::repo(&[])
}

fn agent(h: &TestHome, repo: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json", "agent"];
    all.extend_from_slice(args);
    let out = h.run_in(repo, &all);
    out.expect_code(0);
    out.json()
}

fn state(h: &TestHome, repo: &Path, name: &str) -> String {
    agent(h, repo, &["show", name])["state"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Starts an agent with `probe`, checks it is held in `starting`, runs `make_ready`, and waits
/// for `running`.
fn held_until_ready(name: &str, command: &str, probe: &str, make_ready: impl FnOnce(&Path)) {
    let h = home();
    start(&h);
    let p = project();
    let created = agent(
        &h,
        p.path(),
        &["new", name, "--cmd", command, "--ready", probe, "--start"],
    );
    assert_eq!(created["state"], "starting", "{created}");
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        state(&h, p.path(), name),
        "starting",
        "not ready before its probe passes"
    );
    let ws = created["workspace"].as_str().unwrap().to_string();
    make_ready(Path::new(&ws));
    wait_until("the probe passes", Duration::from_secs(15), || {
        state(&h, p.path(), name) == "running"
    });
    let events = h.run(&["--json", "events"]).stdout;
    assert!(events.contains("agent.ready"), "{events}");
    agent(&h, p.path(), &["stop", name]);
    h.run(&["daemon", "stop"]).expect_code(0);
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn tcp_probe_waits_for_a_listener() {
    let port = free_port();
    let mut listener = None;
    held_until_ready(
        "tcpwait",
        "exec sleep 300",
        &format!("tcp:127.0.0.1:{port}"),
        |_| {
            listener = Some(TcpListener::bind(("127.0.0.1", port)).unwrap());
        },
    );
}

#[test]
fn http_probe_waits_for_a_2xx() {
    let port = free_port();
    let server = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = healthy.clone();
    std::thread::spawn(move || {
        for conn in server.incoming().flatten() {
            let mut conn = conn;
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let status = if flag.load(std::sync::atomic::Ordering::SeqCst) {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            let _ = conn
                .write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes());
        }
    });
    held_until_ready(
        "httpwait",
        "exec sleep 300",
        &format!("http:http://127.0.0.1:{port}/health"),
        |_| {
            healthy.store(true, std::sync::atomic::Ordering::SeqCst);
        },
    );
}

#[test]
fn exec_probe_waits_for_success() {
    held_until_ready(
        "execwait",
        "exec sleep 300",
        "exec:test -f ready.flag",
        |ws| {
            std::fs::write(ws.join("ready.flag"), "").unwrap();
        },
    );
}

#[test]
fn log_probe_waits_for_a_matching_line() {
    held_until_ready(
        "logwait",
        "while [ ! -f go.flag ]; do sleep 0.05; done; echo 'listening on port 8080'; exec sleep 300",
        r"log:listening on port \d+",
        |ws| std::fs::write(ws.join("go.flag"), "").unwrap(),
    );
}

#[test]
fn notify_probe_waits_for_ready_on_the_socket() {
    let bin = env!("CARGO_BIN_EXE_berth");
    held_until_ready(
        "notifier",
        &format!("while [ ! -f go.flag ]; do sleep 0.05; done; {bin} notify; exec sleep 300"),
        "notify",
        |ws| std::fs::write(ws.join("go.flag"), "").unwrap(),
    );
}

#[test]
fn invalid_probes_are_refused_before_anything_is_created() {
    let h = home();
    start(&h);
    let p = project();
    let port = free_port();
    let mut c = h.command(&[
        "--json",
        "agent",
        "new",
        "bad",
        "--cmd",
        "true",
        "--ready",
        "http:https://x/",
    ]);
    c.current_dir(p.path());
    let out = h.run_cmd(c);
    assert_eq!(out.json()["error"]["code"], "invalid_agent", "{out}");
    let mut c = h.command(&[
        "--json",
        "agent",
        "new",
        "bad2",
        "--cmd",
        "true",
        "--ready",
        &format!("tcp:127.0.0.1:{port}:9"),
    ]);
    c.current_dir(p.path());
    assert_eq!(h.run_cmd(c).json()["error"]["code"], "invalid_agent");
    h.run(&["daemon", "stop"]).expect_code(0);
}
