//! Webhooks through the real daemon's TCP listener: a delivery signed with the hook's secret is
//! queued and delivered as a turn (without the bearer token); an unsigned, badly signed or
//! oversized one is refused and nothing is queued; a delivery id seen before queues nothing; a
//! template makes the message from JSON fields; `hook add` says how to get a listener when the
//! daemon has none.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;

use berth_testkit::{TestHome, wait_until};

use super::api::{free_port, private_token};
use super::inbox::{RECORD, WAIT, berth, finished, items, received, turn_agent, turns};
use super::terminal::project;
use crate::{home, start};

/// Posts `body` with `headers`; returns the status and the body of the answer.
fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    // The daemon may answer (and close) before it read an oversized body.
    let _ = stream.write_all(body);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).to_string();
    let code = answer.split(' ').nth(1).unwrap().parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

fn listening(h: &TestHome) -> SocketAddr {
    let token = private_token(h, "a-long-random-token-nobody-sends\n");
    let addr = format!("127.0.0.1:{}", free_port());
    h.run(&[
        "daemon",
        "start",
        "--listen",
        &addr,
        "--token-file",
        token.to_str().unwrap(),
    ])
    .expect_code(0);
    addr.parse().unwrap()
}

fn add(h: &TestHome, repo: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["hook", "add"];
    all.extend_from_slice(args);
    let out = berth(h, repo, &all);
    out.expect_code(0);
    out.json()
}

#[test]
fn a_signed_delivery_is_queued_once_and_anything_else_is_refused() {
    let h = home();
    let addr = listening(&h);
    let p = project();
    turn_agent(&h, p.path(), "bot", RECORD, &[]);
    let hook = add(&h, p.path(), &["bot", "--name", "ci"]);
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 64);
    assert_eq!(hook["url"], format!("http://{addr}/hooks/bot/ci"));
    let path = "/hooks/bot/ci";
    let body = br#"{"action":"completed"}"#;
    let good = berth_core::hook::sign(&secret, body);

    // Refused, nothing queued: no signature, a wrong one, another body's, another secret's,
    // an oversized body, a hook that does not exist.
    let wrong_secret = berth_core::hook::sign("not-the-secret", body);
    let other_body = berth_core::hook::sign(&secret, b"{}");
    for headers in [
        vec![],
        vec![("X-Hub-Signature-256", "sha256=00")],
        vec![("X-Hub-Signature-256", wrong_secret.as_str())],
        vec![("X-Hub-Signature-256", other_body.as_str())],
    ] {
        let (code, answer) = post(addr, path, &headers, body);
        assert_eq!(code, 401, "{headers:?}: {answer}");
        assert!(answer.contains("unauthorized"), "{answer}");
    }
    let big = vec![b'x'; berth_core::hook::MAX_BODY_BYTES + 1];
    let big_signature = berth_core::hook::sign(&secret, &big);
    let (code, answer) = post(addr, path, &[("X-Hub-Signature-256", &big_signature)], &big);
    assert_eq!(code, 401, "{answer}");
    let (code, _) = post(
        addr,
        "/hooks/bot/nope",
        &[("X-Hub-Signature-256", &good)],
        body,
    );
    assert_eq!(code, 401);
    assert!(items(&h, p.path(), "bot").is_empty(), "nothing queued");

    // Signed: queued (no bearer token needed), and a replay of its delivery id queues nothing.
    let delivery = [
        ("X-Hub-Signature-256", good.as_str()),
        ("X-GitHub-Delivery", "d-1"),
    ];
    let (code, answer) = post(addr, path, &delivery, body);
    assert_eq!(code, 202, "{answer}");
    let (code, answer) = post(addr, path, &delivery, body);
    assert_eq!(code, 409, "{answer}");
    assert!(answer.contains("duplicate_delivery"), "{answer}");
    let other = [
        ("X-Hub-Signature-256", good.as_str()),
        ("X-Berth-Delivery", "d-2"),
    ];
    assert_eq!(post(addr, path, &other, body).0, 202);
    wait_until("both deliveries done", WAIT, || {
        let all = items(&h, p.path(), "bot");
        all.len() == 2 && all.iter().all(finished)
    });
    for i in items(&h, p.path(), "bot") {
        assert_eq!((i.source.as_str(), i.state.as_str()), ("webhook", "done"));
    }
    assert_eq!(turns(&h, p.path(), "bot")[0].trigger, "webhook");
    let payload = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(
        received(&h, p.path(), "bot"),
        format!("{payload}\n{payload}\n")
    );

    // Removed: its URL refuses.
    berth(&h, p.path(), &["hook", "rm", "bot", "--name", "ci"]).expect_code(0);
    let third = [
        ("X-Hub-Signature-256", good.as_str()),
        ("X-Berth-Delivery", "d-3"),
    ];
    assert_eq!(post(addr, path, &third, body).0, 401);
    assert_eq!(items(&h, p.path(), "bot").len(), 2);
    let log = std::fs::read_to_string(h.run_dir().join("daemon.log")).unwrap();
    assert!(!log.contains(&secret), "the secret reached the log");
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_template_makes_the_message_from_json_fields() {
    let h = home();
    let addr = listening(&h);
    let p = project();
    turn_agent(&h, p.path(), "bot", RECORD, &[]);
    let hook = add(
        &h,
        p.path(),
        &[
            "bot",
            "--template",
            "PR #{{.number}}: {{.pull_request.title}}",
        ],
    );
    let secret = hook["secret"].as_str().unwrap();
    let body = br#"{"number":7,"pull_request":{"title":"Fix the parser"}}"#;
    let signature = berth_core::hook::sign(secret, body);
    let (code, answer) = post(
        addr,
        "/hooks/bot/default",
        &[("X-Hub-Signature-256", &signature)],
        body,
    );
    assert_eq!(code, 202, "{answer}");
    let (code, _) = post(
        addr,
        "/hooks/bot/default",
        &[(
            "X-Hub-Signature-256",
            &berth_core::hook::sign(secret, b"not json"),
        )],
        b"not json",
    );
    assert_eq!(code, 400);
    wait_until("the delivery done", WAIT, || {
        items(&h, p.path(), "bot").iter().all(finished)
    });
    assert_eq!(received(&h, p.path(), "bot"), "PR #7: Fix the parser\n");
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn hook_add_says_how_to_get_a_listener_when_there_is_none() {
    let h = home();
    start(&h);
    let p = project();
    turn_agent(&h, p.path(), "bot", "true", &[]);
    let out = h.run_in(p.path(), &["hook", "add", "bot"]);
    out.expect_code(0);
    assert!(
        out.stdout.contains("/hooks/bot/default") && out.stdout.contains("--listen 127.0.0.1:"),
        "{out}"
    );
    let listed = berth(&h, p.path(), &["hook", "list"]);
    listed.expect_code(0);
    let listed = listed.json();
    assert_eq!(listed[0]["hook"], "default");
    assert!(
        listed[0].get("secret").is_none(),
        "the secret is shown only once"
    );
    let again = berth(&h, p.path(), &["hook", "add", "bot"]);
    assert_eq!(again.json()["error"]["code"], "hook_exists", "{again}");
    let bad = berth(
        &h,
        p.path(),
        &["hook", "add", "bot", "--name", "x", "--template", "{{.a"],
    );
    bad.expect_code(2);
    h.run(&["daemon", "stop"]).expect_code(0);
}
