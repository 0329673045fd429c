//! Bad input over the API: refused with a 400 and a code before anything is created, written or
//! run; and whatever a client sends to any route, the answer is never a 5xx, every error is the
//! JSON envelope, and the daemon stays up.

use std::path::Path;
use std::time::Duration;

use berth_client::{Client, ClientError, Response};
use berth_testkit::{git, repo};
use hyper::{Method, StatusCode};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

use crate::{home, rt, start};

/// The error envelope's code, asserting the answer is one.
fn envelope(resp: &Response) -> String {
    assert_eq!(
        resp.headers["content-type"], "application/json",
        "{:?}",
        resp.body
    );
    let body: Value = serde_json::from_slice(&resp.body).unwrap();
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"]["code"].as_str().unwrap().to_string()
}

#[test]
fn nul_bytes_and_bad_queries_are_refused_with_a_code_before_any_side_effect() {
    let h = home();
    start(&h);
    let p = repo(&[("README", "hi\n")]);
    std::fs::write(p.path().join("README"), "changed\n").unwrap();
    let repo = p.path().to_str().unwrap();
    let client = Client::unix(h.socket());
    let post = |path: &str, body: Value| {
        rt().block_on(client.request(Method::POST, path, Some(body.to_string().into_bytes())))
            .unwrap()
    };
    for body in [
        json!({"repo": repo, "name": "fixer", "command": "echo a\u{0}b"}),
        json!({"repo": repo, "name": "fixer", "command": "true", "env": {"A=B": "x"}}),
        json!({"repo": repo, "name": "fixer", "command": "true", "env": {"A": "\u{0}"}}),
        json!({"repo": repo, "name": "fixer", "command": "true", "ready": "exec:a\u{0}"}),
    ] {
        let resp = post("/v1/agents/new", body.clone());
        assert_eq!(resp.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(envelope(&resp), "invalid_agent", "{body}");
    }
    let agents = post("/v1/agents/list", json!({ "repo": repo }));
    assert_eq!(
        serde_json::from_slice::<Value>(&agents.body).unwrap()["agents"],
        json!([])
    );
    assert_eq!(git(p.path(), &["branch", "--list", "berth/*"]), "");
    assert!(!h.path().join("workspaces").exists() || dir_is_empty(&h.path().join("workspaces")));

    let resp = post(
        "/v1/stash/save",
        json!({"repo": repo, "message": "wip\u{0}"}),
    );
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
    assert_eq!(envelope(&resp), "bad_request");
    assert_eq!(git(p.path(), &["for-each-ref", "refs/berth/"]), "");
    assert_eq!(git(p.path(), &["status", "--porcelain"]), "M README");

    let resp = rt()
        .block_on(client.request(Method::GET, "/v1/events/log?since=abc", None))
        .unwrap();
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
    assert_eq!(envelope(&resp), "bad_request");
    h.run(&["daemon", "stop"]).expect_code(0);
}

fn dir_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

/// Every route: its method, path and the fields its body has.
const ROUTES: &[(&str, &str, &[&str])] = &[
    ("GET", "/handshake", &[]),
    ("GET", "/v1/status", &[]),
    ("POST", "/v1/daemon/shutdown", &["reason", "all"]),
    ("GET", "/v1/events", &[]),
    ("GET", "/v1/events/log", &[]),
    ("GET", "/v1/overview", &[]),
    ("GET", "/v1/agents/logs", &[]),
    ("POST", "/v1/console/open", &[]),
    ("POST", "/v1/console/logout-all", &[]),
    ("POST", "/v1/pair/conflict", &["repo", "refname"]),
    (
        "POST",
        "/v1/agents/new",
        &[
            "repo",
            "name",
            "command",
            "base",
            "restart",
            "env",
            "ready",
            "start",
            "tty",
            "turn",
            "turn_timeout_ms",
        ],
    ),
    ("POST", "/v1/agents/list", &["repo"]),
    ("POST", "/v1/agents/show", &["repo", "name"]),
    ("POST", "/v1/agents/start", &["repo", "name"]),
    ("POST", "/v1/agents/stop", &["repo", "name"]),
    (
        "POST",
        "/v1/agents/rm",
        &["repo", "name", "force", "delete_branch"],
    ),
    ("POST", "/v1/agents/screen", &["repo", "name", "scrollback"]),
    ("GET", "/v1/agents/attach", &[]),
    (
        "POST",
        "/v1/agents/input",
        &["repo", "name", "text", "enter"],
    ),
    (
        "POST",
        "/v1/inbox/send",
        &["repo", "name", "text", "key", "priority"],
    ),
    ("POST", "/v1/inbox/list", &["repo", "name"]),
    ("POST", "/v1/inbox/cancel", &["id"]),
    ("POST", "/v1/turns/list", &["repo", "name"]),
    ("POST", "/v1/turns/show", &["id"]),
    ("POST", "/v1/up", &["repo", "names", "timeout_ms"]),
    ("POST", "/v1/down", &["repo", "names", "timeout_ms"]),
    ("POST", "/v1/stash/save", &["repo", "message"]),
    ("POST", "/v1/stash/list", &["repo"]),
    ("POST", "/v1/stash/show", &["repo", "id"]),
    ("POST", "/v1/stash/restore", &["repo", "id"]),
    ("POST", "/v1/stash/drop", &["repo", "id"]),
    ("POST", "/v1/pair/start", &["repo", "agent", "no_stash"]),
    ("POST", "/v1/pair/status", &["repo"]),
    ("POST", "/v1/pair/flush", &["repo"]),
    ("POST", "/v1/pair/stop", &["repo"]),
    ("POST", "/v1/pair/leftovers", &["fix"]),
];

/// Text that is valid, nearly valid, or hostile: names, refs, paths, options, NULs, controls,
/// very long and non-ASCII strings.
fn text(repo: &str) -> BoxedStrategy<String> {
    prop_oneof![
        1 => Just(repo.to_string()),
        1 => Just(format!("{repo}/.git")),
        1 => Just(format!("{repo}/no/such/dir")),
        3 => "(a|b|fixer)",
        2 => "[a-z0-9][a-z0-9_-]{0,8}",
        2 => "[ -~]{0,24}",
        1 => "\\PC{0,16}",
        4 => ".{0,8}\u{0}.{0,8}",
        1 => "-{1,2}[a-z-]{1,12}",
        1 => "(HEAD|main|berth/[a-z]{1,4}|refs/[a-z/]{0,12}|[0-9a-f]{40})[~^:@{}.]{0,3}",
        1 => "(tcp|http|exec|log|notify|none):[ -~]{0,16}",
        1 => "(no|on-failure|always|sometimes)",
        1 => "/[a-z/]{0,16}",
        1 => Just("x".repeat(70_000)),
    ]
    .boxed()
}

/// Any JSON at all.
fn value(repo: &str) -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text(repo).prop_map(Value::String),
    ];
    let repo = repo.to_string();
    leaf.prop_recursive(2, 8, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(&repo), inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// A value that makes the field valid, or nearly always so.
fn valid(name: &str, repo: &str) -> BoxedStrategy<Value> {
    let one_of = |pattern: &'static str| pattern.prop_map(Value::String).boxed();
    match name {
        "all" | "start" | "tty" | "no_stash" | "force" | "delete_branch" | "enter" | "fix" => {
            any::<bool>().prop_map(Value::Bool).boxed()
        }
        "timeout_ms" | "scrollback" | "turn_timeout_ms" => {
            (0u64..100_000).prop_map(Value::from).boxed()
        }
        "id" => (0i64..100).prop_map(Value::from).boxed(),
        "env" => Just(json!({"A": "1"})).boxed(),
        "names" => Just(json!([])).boxed(),
        "repo" => Just(Value::String(repo.to_string())).boxed(),
        "name" | "agent" => one_of("(a|b|fixer)"),
        "command" => one_of("(true|sleep 30|echo hi)"),
        "turn" => one_of("(true|cat|exit 1)"),
        "text" => one_of("[a-z ]{1,12}"),
        "priority" => one_of("(now|normal)"),
        "base" => one_of("(HEAD|main)"),
        "restart" => one_of("(no|on-failure|always)"),
        "ready" => one_of("(none|notify|log:x|tcp:127.0.0.1:1)"),
        _ => one_of("[a-z0-9 -]{0,12}"),
    }
}

/// A hostile value for the field: hostile text where it takes text (also as the names and
/// values of `env` and the items of `names`), now and then any JSON at all.
fn hostile(name: &str, repo: &str) -> BoxedStrategy<Value> {
    let typed = match name {
        "env" => prop::collection::btree_map(text(repo), text(repo), 1..3)
            .prop_map(|m| json!(m))
            .boxed(),
        "names" => prop::collection::vec(text(repo), 1..3)
            .prop_map(|v| json!(v))
            .boxed(),
        "timeout_ms" | "scrollback" | "turn_timeout_ms" => {
            any::<u64>().prop_map(Value::from).boxed()
        }
        "id" => any::<i64>().prop_map(Value::from).boxed(),
        _ => text(repo).prop_map(Value::String).boxed(),
    };
    prop_oneof![4 => typed, 1 => value(repo)].boxed()
}

/// Every field of `fields` valid but the one at `bad`, which is hostile.
fn one_off(
    fields: &'static [&'static str],
    bad: usize,
    repo: &str,
) -> BoxedStrategy<Option<Vec<u8>>> {
    let values: Vec<_> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if i == bad {
                hostile(f, repo)
            } else {
                valid(f, repo)
            }
        })
        .collect();
    values
        .prop_map(move |values| {
            let object: serde_json::Map<String, Value> =
                fields.iter().map(|f| f.to_string()).zip(values).collect();
            Some(Value::Object(object).to_string().into_bytes())
        })
        .boxed()
}

/// Any body at all for a route with these fields: a mix of valid, hostile and missing fields
/// (sometimes with one stray field), any JSON, random bytes or none.
fn any_body(fields: &'static [&'static str], repo: &str) -> BoxedStrategy<Option<Vec<u8>>> {
    let members: Vec<_> = fields
        .iter()
        .map(|f| {
            let either = prop_oneof![3 => valid(f, repo), 1 => hostile(f, repo)];
            prop::option::weighted(0.8, either).prop_map(move |v| (*f, v))
        })
        .collect();
    let mixed = (members, prop::option::weighted(0.1, text(repo))).prop_map(|(m, stray)| {
        let mut object: serde_json::Map<String, Value> = m
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_string(), v?)))
            .collect();
        if let Some(stray) = stray {
            object.insert(stray, Value::Bool(true));
        }
        Some(Value::Object(object).to_string().into_bytes())
    });
    prop_oneof![
        1 => Just(None),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Some),
        1 => value(repo).prop_map(|v| Some(v.to_string().into_bytes())),
        4 => mixed,
    ]
    .boxed()
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "\\?[a-zA-Z0-9=&%+._~-]{0,24}",
        "\\?(since|limit|x)=(-?[0-9]{1,22}|[a-z%]{0,6})(&(since|limit)=[0-9a-z-]{0,6})?",
    ]
}

#[derive(Clone)]
struct Request {
    method: &'static str,
    path: String,
    body: Option<Vec<u8>>,
}

/// The body as text, so a failing case reads as what was sent.
impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = self.body.as_deref().map(String::from_utf8_lossy);
        write!(f, "{} {} {body:?}", self.method, self.path)
    }
}

/// Mostly one hostile field in an otherwise valid body, every (route, field) pair as likely as
/// any other; otherwise any body for any route, or a path that is no route.
fn request(repo: String) -> impl Strategy<Value = Request> {
    let pairs: Vec<(&'static str, &'static str, &'static [&'static str], usize)> = ROUTES
        .iter()
        .flat_map(|&(m, p, f)| (0..f.len()).map(move |i| (m, p, f, i)))
        .collect();
    let repo_off = repo.clone();
    let off = prop::sample::select(pairs).prop_flat_map(move |(m, p, f, i)| {
        (Just(m), Just(p.to_string()), one_off(f, i, &repo_off))
    });
    let anything = prop::sample::select(ROUTES)
        .prop_flat_map(move |(m, p, f)| (Just(m), Just(p.to_string()), any_body(f, &repo)));
    let nowhere = (
        prop::sample::select(&["GET", "POST", "PUT", "DELETE"][..]),
        "/(v1/)?[a-z/_.%-]{0,16}",
        Just(None),
    );
    (prop_oneof![6 => off, 3 => anything, 1 => nowhere], query()).prop_map(
        |((method, path, body), query)| Request {
            method,
            path: format!("{path}{query}"),
            body,
        },
    )
}

/// Whether this request would legitimately shut the daemon down.
fn is_a_real_shutdown(r: &Request) -> bool {
    r.path.starts_with("/v1/daemon/shutdown")
        && r.body
            .as_deref()
            .is_some_and(|b| serde_json::from_slice::<berth_proto::ShutdownRequest>(b).is_ok())
}

#[test]
fn random_requests_to_every_route_never_get_a_5xx_and_always_the_envelope() {
    let h = home();
    start(&h);
    let p = repo(&[("README", "hi\n")]);
    let repo = p.path().to_str().unwrap().to_string();
    let client = Client::unix(h.socket()).with_timeout(Duration::from_secs(20));
    let stream = Client::unix(h.socket()).with_timeout(Duration::from_millis(500));
    let rt = rt();
    let mut runner = TestRunner::new(Config {
        cases: 2000,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&request(repo), |r| {
        if is_a_real_shutdown(&r) {
            return Ok(());
        }
        let method = Method::from_bytes(r.method.as_bytes()).unwrap();
        let streaming = r.path.starts_with("/v1/events?")
            || r.path == "/v1/events"
            || r.path.starts_with("/v1/agents/logs?");
        let c = if streaming { &stream } else { &client };
        let resp = match rt.block_on(c.request(method, &r.path, r.body.clone())) {
            Ok(resp) => resp,
            // An event stream that opened stays open.
            Err(ClientError::Timeout { .. }) if streaming => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(format!("no answer: {e}"))),
        };
        prop_assert!(
            !resp.status.is_server_error(),
            "{} {}: {} {}",
            r.method,
            r.path,
            resp.status,
            String::from_utf8_lossy(&resp.body)
        );
        if !resp.status.is_success() {
            prop_assert_eq!(
                resp.headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok()),
                Some("application/json"),
                "{} {}: {}",
                r.method,
                r.path,
                resp.status
            );
            let body: Value = serde_json::from_slice(&resp.body)
                .map_err(|e| TestCaseError::fail(format!("{}: not JSON: {e}", r.path)))?;
            prop_assert!(body["error"]["code"].is_string(), "{body}");
            prop_assert!(body["error"]["message"].is_string(), "{body}");
        }
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
    assert_eq!(h.state(), "running", "the daemon is alive");
    h.run(&["daemon", "stop"]).expect_code(0);
}
