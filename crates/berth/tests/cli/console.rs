//! The web console's security over real sockets: one-time login codes, the session cookie, the
//! `Host`, `Origin` and CSRF checks, revocation, the listener coming back on its port after a
//! restart, and no secret in a response or the daemon log. The pages themselves are driven in
//! Chromium by `crates/berth/tests/browser` (see `browser` below).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_testkit::{TestHome, repo};

use crate::{home, start};

/// One HTTP/1.1 exchange, written by hand so every header is exactly what the test says.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    fn code(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.body).unwrap()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        req += &format!("Host: {addr}\r\n");
    }
    for (n, v) in headers {
        req += &format!("{n}: {v}\r\n");
    }
    if !body.is_empty() {
        req += &format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
    }
    req += "\r\n";
    req += body;
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// `berth web`: the login link and the listener.
fn login_link(h: &TestHome) -> (String, SocketAddr) {
    let out = h.run(&["--json", "web"]);
    out.expect_code(0);
    let j = out.json();
    let url = j["url"].as_str().unwrap().to_string();
    (url, j["listener"].as_str().unwrap().parse().unwrap())
}

fn path_of(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    rest[rest.find('/').unwrap()..].to_string()
}

/// Logs in with `url`; the session cookie (`berth_session=…`).
fn log_in(addr: SocketAddr, url: &str) -> String {
    let a = exchange(addr, "GET", &path_of(url), &[], "");
    assert_eq!(a.status, 303, "{}", a.head);
    let cookie = a.header("set-cookie").unwrap();
    cookie.split(';').next().unwrap().to_string()
}

fn csrf(addr: SocketAddr, cookie: &str) -> String {
    let a = exchange(
        addr,
        "GET",
        "/v1/console/session",
        &[("Cookie", cookie)],
        "",
    );
    assert_eq!(a.status, 200, "{}", a.body);
    serde_json::from_str::<serde_json::Value>(&a.body).unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_login_code_opens_one_session_once_and_every_request_is_checked() {
    let h = home();
    start(&h);
    let project = repo(&[("a.txt", "a\n")]);
    let (url, addr) = login_link(&h);
    assert!(addr.ip().is_loopback(), "{addr}");

    // Nothing without a session: not the API, not even with a made-up cookie.
    let none = exchange(addr, "GET", "/v1/status", &[], "");
    assert_eq!((none.status, none.code().as_str()), (401, "unauthorized"));
    let forged = format!("berth_session={}", "ab".repeat(32));
    let a = exchange(addr, "GET", "/v1/status", &[("Cookie", &forged)], "");
    assert_eq!(a.status, 401, "a forged cookie: {}", a.body);
    // The page itself is public (it holds no data), the API behind it is not.
    assert_eq!(exchange(addr, "GET", "/", &[], "").status, 200);
    assert_eq!(exchange(addr, "GET", "/assets/app.js", &[], "").status, 200);

    // The code: a cookie that is HttpOnly and SameSite=Strict, and a redirect without the code.
    let a = exchange(addr, "GET", &path_of(&url), &[], "");
    assert_eq!(a.status, 303);
    assert_eq!(a.header("location").as_deref(), Some("/"));
    let set = a.header("set-cookie").unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(part), "{set}");
    }
    let cookie = set.split(';').next().unwrap().to_string();
    // A second use of the same link fails.
    let again = exchange(addr, "GET", &path_of(&url), &[], "");
    assert_eq!(again.status, 401);
    assert!(again.body.contains("already used"), "{}", again.body);
    let made_up = exchange(addr, "GET", "/login?code=0123", &[], "");
    assert_eq!(made_up.status, 401);

    assert_eq!(
        exchange(addr, "GET", "/v1/status", &[("Cookie", &cookie)], "").status,
        200
    );
    let token = csrf(addr, &cookie);
    let origin = format!("http://{addr}");
    let body = serde_json::json!({ "repo": project.path() }).to_string();
    let list = |headers: &[(&str, &str)]| exchange(addr, "POST", "/v1/agents/list", headers, &body);
    // A state-changing request needs the console's own origin and the session's CSRF token.
    let a = list(&[("Cookie", &cookie), ("X-Berth-CSRF", &token)]);
    assert_eq!(
        (a.status, a.code().as_str()),
        (403, "forbidden"),
        "no Origin"
    );
    let a = list(&[
        ("Cookie", &cookie),
        ("Origin", "http://evil.example"),
        ("X-Berth-CSRF", &token),
    ]);
    assert_eq!(a.status, 403, "another origin");
    let a = list(&[
        ("Cookie", &cookie),
        ("Origin", &origin),
        ("Sec-Fetch-Site", "cross-site"),
        ("X-Berth-CSRF", &token),
    ]);
    assert_eq!(a.status, 403, "a cross-site fetch");
    let a = list(&[("Cookie", &cookie), ("Origin", &origin)]);
    assert_eq!(a.status, 403, "no CSRF token");
    let a = list(&[
        ("Cookie", &cookie),
        ("Origin", &origin),
        ("X-Berth-CSRF", "x"),
    ]);
    assert_eq!(a.status, 403, "a wrong CSRF token");
    let a = list(&[
        ("Cookie", &cookie),
        ("Origin", &origin),
        ("X-Berth-CSRF", &token),
    ]);
    assert_eq!(a.status, 200, "{}", a.body);

    // A Host that does not name this listener (DNS rebinding) is refused, session or not.
    let evil = format!("evil.example:{}", addr.port());
    let a = exchange(
        addr,
        "GET",
        "/v1/status",
        &[("Host", &evil), ("Cookie", &cookie)],
        "",
    );
    assert_eq!((a.status, a.code().as_str()), (403, "forbidden"));
    assert_eq!(
        exchange(addr, "GET", "/", &[("Host", &evil)], "").status,
        403
    );
    let localhost = format!("localhost:{}", addr.port());
    let a = exchange(
        addr,
        "GET",
        "/v1/status",
        &[("Host", &localhost), ("Cookie", &cookie)],
        "",
    );
    assert_eq!(a.status, 200);

    // A session that expired is refused (its end moved into the past in the store).
    let second = log_in(addr, &login_link(&h).0);
    let db = rusqlite::Connection::open(h.path().join("state/berth.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let digest = blake3::hash(second.trim_start_matches("berth_session=").as_bytes())
        .to_hex()
        .to_string();
    let changed = db
        .execute(
            "UPDATE console_sessions SET expires_ms = 1 WHERE digest = ?1",
            [&digest],
        )
        .unwrap();
    assert_eq!(
        changed, 1,
        "the store keeps the secret's digest, not the secret"
    );
    let a = exchange(addr, "GET", "/v1/status", &[("Cookie", &second)], "");
    assert_eq!(a.status, 401, "an expired session");
    assert!(a.body.contains("expired"), "{}", a.body);

    // `berth web --logout-all` ends every session.
    let out = h.run(&["--json", "web", "--logout-all"]);
    out.expect_code(0);
    assert_eq!(out.json()["revoked"], 1);
    assert_eq!(
        exchange(addr, "GET", "/v1/status", &[("Cookie", &cookie)], "").status,
        401
    );
    // No secret is ever written where it could be read back.
    h.run(&["daemon", "stop"]).expect_code(0);
    let log = std::fs::read_to_string(h.run_dir().join("daemon.log")).unwrap();
    let code = url.split("code=").nth(1).unwrap();
    for secret in [
        code,
        cookie.trim_start_matches("berth_session="),
        token.as_str(),
    ] {
        assert!(!log.contains(secret), "a secret reached the daemon log");
    }
}

#[test]
fn a_login_link_is_refused_after_its_minute() {
    let h = home();
    start(&h);
    let (url, addr) = login_link(&h);
    let issued = Instant::now();
    // The rule itself is tested with a clock in berth-core; this is the daemon keeping it.
    std::thread::sleep(Duration::from_secs(61).saturating_sub(issued.elapsed()));
    let a = exchange(addr, "GET", &path_of(&url), &[], "");
    assert_eq!(a.status, 401);
    assert!(a.body.contains("expired"), "{}", a.body);
    assert!(a.header("set-cookie").is_none());
}

#[test]
fn the_console_comes_back_on_its_port_after_a_restart_and_its_sessions_still_work() {
    let h = home();
    start(&h);
    let (url, addr) = login_link(&h);
    let cookie = log_in(addr, &url);
    let meta = std::fs::read_to_string(h.run_dir().join("daemon.json")).unwrap();
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["console"], addr.to_string());

    h.run(&["daemon", "stop"]).expect_code(0);
    assert!(
        TcpStream::connect(addr).is_err(),
        "the listener stops with the daemon"
    );
    start(&h);
    let a = exchange(addr, "GET", "/v1/status", &[("Cookie", &cookie)], "");
    assert_eq!(a.status, 200, "{}", a.body);
    // And `berth web` answers the same listener.
    assert_eq!(login_link(&h).1, addr);
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn with_a_configured_listener_the_console_shares_it_and_the_token_never_shows() {
    let h = home();
    let token = "console-test-token-do-not-leak";
    let token_file = h.path().join("token");
    std::fs::write(&token_file, token).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let addr: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    h.run(&[
        "daemon",
        "start",
        "--listen",
        &addr.to_string(),
        "--token-file",
        token_file.to_str().unwrap(),
    ])
    .expect_code(0);
    let (url, listener) = login_link(&h);
    assert_eq!(listener, addr);
    let cookie = log_in(addr, &url);
    let bearer = format!("Bearer {token}");
    // Programs keep using the token; browsers their session.
    assert_eq!(
        exchange(addr, "GET", "/v1/status", &[("Authorization", &bearer)], "").status,
        200
    );
    let mut seen = String::new();
    for path in [
        "/",
        "/assets/app.js",
        "/assets/app.css",
        "/v1/status",
        "/v1/overview",
        "/v1/console/session",
        "/handshake",
    ] {
        let a = exchange(addr, "GET", path, &[("Cookie", &cookie)], "");
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        seen += &a.head;
        seen += &a.body;
    }
    assert!(!seen.contains(token), "the token reached a response");
    assert!(!url.contains(token));
    h.run(&["daemon", "stop"]).expect_code(0);
    let log = std::fs::read_to_string(h.run_dir().join("daemon.log")).unwrap();
    assert!(!log.contains(token), "the token reached the daemon log");
}

/// What an SSE stream over the Unix socket sends within `wait`, or until `done` says enough.
fn read_stream(h: &TestHome, request: &str, wait: Duration, done: impl Fn(&str) -> bool) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(h.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let deadline = Instant::now() + wait;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline && !done(&String::from_utf8_lossy(&seen)) {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn an_agents_log_streams_live_and_a_reconnect_resumes_where_it_stopped() {
    let h = home();
    start(&h);
    let project = repo(&[("a.txt", "a\n")]);
    let feed = project.path().join("feed.txt");
    std::fs::write(&feed, "").unwrap();
    let cmd = format!("tail -n0 -F {}", feed.display());
    h.run_in(
        project.path(),
        &["agent", "new", "talker", "--cmd", &cmd, "--start"],
    )
    .expect_code(0);
    let log = std::path::PathBuf::from(
        h.run_in(project.path(), &["--json", "agent", "show", "talker"])
            .json()["log"]
            .as_str()
            .unwrap(),
    );
    let append = |text: &str| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&feed)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    append("one\ntwo\n");
    berth_testkit::wait_until("the agent wrote", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("two"))
    });
    let query = format!(
        "/v1/agents/logs?repo={}&name=talker",
        project.path().display()
    );
    let get = |extra: &str| {
        format!("GET {query} HTTP/1.1\r\nHost: berth\r\n{extra}Connection: close\r\n\r\n")
    };

    // A fresh stream: a reset, then the lines, the last of the batch carrying where it ends.
    let first = read_stream(&h, &get(""), Duration::from_secs(5), |t| {
        t.contains("| two")
    });
    assert!(first.contains("event: reset"), "{first}");
    assert!(
        first.contains("| one") && first.contains("| two"),
        "{first}"
    );
    let id = first
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap_or_else(|| panic!("no id in {first}"))
        .trim()
        .to_string();

    // Written while no one followed; a reconnect with the last id gets exactly that.
    append("three\n");
    berth_testkit::wait_until("the agent wrote again", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("three"))
    });
    let again = read_stream(
        &h,
        &get(&format!("Last-Event-ID: {id}\r\n")),
        Duration::from_secs(5),
        |t| t.contains("| three"),
    );
    assert!(again.contains("| three"), "{again}");
    assert!(
        !again.contains("event: reset"),
        "a resume starts no new stream: {again}"
    );
    assert!(
        !again.contains("| one") && !again.contains("| two"),
        "{again}"
    );

    // A place the log no longer has: a fresh start.
    let gone = read_stream(
        &h,
        &get("Last-Event-ID: 1:0\r\n"),
        Duration::from_secs(5),
        |t| t.contains("| three"),
    );
    assert!(
        gone.contains("event: reset") && gone.contains("| one"),
        "{gone}"
    );
    h.run(&["daemon", "stop", "--all"]).expect_code(0);
}

/// The console in a real browser: Debian's Chromium driven by Playwright (`playwright-core`
/// from npm, installed by `scripts/test-deps`). The scenario is in `tests/browser`.
#[test]
fn the_console_works_in_a_real_browser() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed in {}; run scripts/test-deps (it runs `npm ci` there)",
        dir.display()
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is missing; run scripts/test-deps (apt-get install chromium)"
    );
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let out = Command::new("node")
        .args(["--test", "--test-reporter=spec", "console.test.mjs"])
        .current_dir(&dir)
        .env("BERTH_BIN", env!("CARGO_BIN_EXE_berth"))
        .env("BERTH_SCREENSHOTS", &shots)
        .output()
        .expect("node runs (scripts/test-deps installs nodejs)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the browser tests failed:\n{report}");
    println!("{report}\nscreenshots: {}", shots.display());
}
