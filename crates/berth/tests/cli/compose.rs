//! `berth up` / `berth down` with a real berth.toml: order, conditions, errors, timeouts.

use std::path::Path;
use std::time::Duration;

use berth_testkit::TestHome;

use crate::{home, start};

fn project(toml: &str) -> tempfile::TempDir {
    berth_testkit::repo(&[("berth.toml", toml)])
}

fn berth(h: &TestHome, repo: &Path, args: &[&str]) -> berth_testkit::Outcome {
    h.run_in(repo, args)
}

/// A service that logs its start and stop to order.log and stays up until SIGTERM.
fn service(name: &str, extra: &str) -> String {
    format!(
        "[service.{name}]\ncommand = \"echo start {name} >> order.log; trap 'echo stop {name} >> order.log; exit 0' TERM; echo {name} up; while true; do sleep 0.05; done\"\nready = {{ log = \"{name} up\" }}\n{extra}\n"
    )
}

fn order(repo: &Path) -> Vec<String> {
    std::fs::read_to_string(repo.join("order.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn up_starts_in_dependency_order_and_down_stops_in_reverse() {
    let h = home();
    start(&h);
    let toml = format!(
        "{}{}{}[service.migrate]\ncommand = \"echo migrated >> order.log\"\ndepends_on = [\"db\"]\n",
        service("db", ""),
        service(
            "web",
            "depends_on = { db = \"ready\", migrate = \"completed\" }"
        ),
        service("cache", ""),
    );
    let p = project(&toml);
    let up = berth(&h, p.path(), &["--json", "up"]);
    up.expect_code(0);
    let levels = up.json()["levels"].clone();
    assert_eq!(
        levels,
        serde_json::json!([["cache", "db"], ["migrate"], ["web"]]),
        "{up}"
    );
    let o = order(p.path());
    let pos = |s: &str| {
        o.iter()
            .position(|l| l == s)
            .unwrap_or_else(|| panic!("{s} missing in {o:?}"))
    };
    assert!(
        pos("start db") < pos("migrated") && pos("migrated") < pos("start web"),
        "{o:?}"
    );
    let list = berth(&h, p.path(), &["--json", "agent", "list"]).json();
    let states: Vec<(String, String)> = list["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().into(),
                a["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        states.contains(&("web".into(), "running".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&("migrate".into(), "exited".into())),
        "{states:?}"
    );

    let down = berth(&h, p.path(), &["--json", "down"]);
    down.expect_code(0);
    let o = order(p.path());
    let pos = |s: &str| {
        o.iter()
            .position(|l| l == s)
            .unwrap_or_else(|| panic!("{s} missing in {o:?}"))
    };
    assert!(
        pos("stop web") < pos("stop db"),
        "dependents stop first: {o:?}"
    );
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_missing_or_unreadable_berth_toml_points_to_its_format() {
    let h = home();
    start(&h);
    let p = berth_testkit::repo(&[("README", "hi\n")]);
    let out = berth(&h, p.path(), &["--json", "up"]);
    out.expect_code(2);
    let err = out.json()["error"].clone();
    assert_eq!(err["code"], "invalid_config");
    assert!(
        err["message"].as_str().unwrap().contains("no berth.toml"),
        "{err}"
    );
    let hint = err["hint"].as_str().unwrap_or_default();
    assert!(
        hint.contains("[service.web]") && hint.contains("docs/cli.md"),
        "{err}"
    );

    std::fs::create_dir(p.path().join("berth.toml")).unwrap();
    let out = berth(&h, p.path(), &["--json", "up"]);
    out.expect_code(2);
    let message = out.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("cannot read") && !message.contains("no berth.toml"),
        "{message}"
    );
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_cycle_is_an_error_that_shows_it() {
    let h = home();
    start(&h);
    let p = project(
        "[service.a]\ncommand = \"true\"\ndepends_on = [\"b\"]\n[service.b]\ncommand = \"true\"\ndepends_on = [\"a\"]\n",
    );
    let out = berth(&h, p.path(), &["up"]);
    out.expect_code(2);
    assert!(out.stderr.contains("a -> b -> a"), "{out}");
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    let h = home();
    start(&h);
    let p = project("[service.web]\ncommand = \"true\"\n\ncomand = \"typo\"\n");
    let out = berth(&h, p.path(), &["--json", "up"]);
    out.expect_code(2);
    let err = out.json()["error"].clone();
    assert_eq!(err["code"], "invalid_config");
    let msg = err["message"].as_str().unwrap();
    assert!(msg.contains("line 4") && msg.contains("comand"), "{msg}");
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn up_names_and_stops_what_is_not_ready_in_time() {
    let h = home();
    start(&h);
    let p = project(
        "[service.slow]\ncommand = \"exec sleep 300\"\nready = { exec = \"false\", interval = \"100ms\" }\n",
    );
    let began = std::time::Instant::now();
    let out = berth(&h, p.path(), &["up", "--timeout", "1s"]);
    out.expect_code(1);
    assert!(began.elapsed() < Duration::from_secs(10));
    assert!(out.stderr.contains("slow"), "{out}");
    let info = berth(&h, p.path(), &["--json", "agent", "show", "slow"]).json();
    assert_eq!(info["state"], "stopped", "{info}");
    h.run(&["daemon", "stop"]).expect_code(0);
}

fn names(list: &serde_json::Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn up_goes_on_past_a_failure_and_reports_every_failure_and_what_is_left_running() {
    let h = home();
    start(&h);
    // bad fails at level 1; front needs it, deep needs front; fine and after are independent.
    let toml = format!(
        "[service.bad]\ncommand = \"echo bad booting; echo no disk left >&2; exit 3\"\nready = {{ log = \"never printed\" }}\n\n\
         [service.slow]\ncommand = \"echo slow waiting; exec sleep 300\"\nready = {{ exec = \"false\", interval = \"100ms\", timeout = \"1s\" }}\n\n{}{}{}{}",
        service("fine", ""),
        service("after", "depends_on = [\"fine\"]"),
        service("front", "depends_on = [\"bad\"]"),
        service("deep", "depends_on = [\"front\", \"fine\"]"),
    );
    let p = project(&toml);
    let out = berth(&h, p.path(), &["--json", "up", "--timeout", "60s"]);
    out.expect_code(1);
    let r = out.json();
    let failed = r["failed"].as_array().unwrap();
    let by_name = |n: &str| {
        failed
            .iter()
            .find(|f| f["name"] == n)
            .unwrap_or_else(|| panic!("{n} not among the failures: {r}"))
    };
    assert_eq!(failed.len(), 2, "{r}");
    let bad = by_name("bad");
    assert_eq!(
        bad["reason"], "ended with exit code 3 before it was ready",
        "{r}"
    );
    assert_eq!(bad["exit_code"], 3);
    assert_eq!(bad["probe"], "log:never printed");
    let output = names(&bad["output"]).join("\n");
    assert!(
        output.contains("bad booting") && output.contains("no disk left"),
        "{output}"
    );
    let slow = by_name("slow");
    assert_eq!(
        slow["reason"],
        "its readiness probe exec:false timed out: it did not pass within 1s; berth stopped it",
        "{r}"
    );
    assert!(
        names(&slow["output"]).join("\n").contains("slow waiting"),
        "{r}"
    );
    let skipped: Vec<(String, Vec<String>)> = r["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["name"].as_str().unwrap().into(), names(&k["because"])))
        .collect();
    assert_eq!(
        skipped,
        [
            ("front".to_string(), vec!["bad".to_string()]),
            ("deep".to_string(), vec!["bad".to_string()])
        ]
    );
    assert_eq!(names(&r["running"]), ["fine", "after"], "{r}");
    assert!(!order(p.path()).contains(&"start front".to_string()));
    let state =
        |n: &str| berth(&h, p.path(), &["--json", "agent", "show", n]).json()["state"].clone();
    assert_eq!(state("after"), "running");
    assert_eq!(state("slow"), "failed");

    // The same for a person: what started on standard output, every failure on standard error.
    berth(&h, p.path(), &["down"]).expect_code(0);
    let out = berth(&h, p.path(), &["up", "--timeout", "60s"]);
    out.expect_code(1);
    assert!(out.stdout.contains("started (level 1): fine"), "{out}");
    assert!(out.stdout.contains("started (level 2): after"), "{out}");
    for wanted in [
        "error: 4 of 6 did not come up",
        "bad (service): ended with exit code 3 before it was ready",
        "no disk left",
        "slow (service): its readiness probe exec:false timed out",
        "front: not started: it needs bad, which did not come up",
        "deep: not started: it needs bad, which did not come up",
        "left running: fine, after",
    ] {
        assert!(out.stderr.contains(wanted), "{wanted:?} missing: {out}");
    }
    berth(&h, p.path(), &["down"]).expect_code(0);
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_readiness_timeout_names_the_probe_how_long_it_waited_and_that_berth_stopped_it() {
    let h = home();
    start(&h);
    let p = project(
        "[service.web]\ncommand = \"exec sleep 300\"\nready = { http = \"http://127.0.0.1:9/health\", interval = \"100ms\", timeout = \"2s\" }\n",
    );
    let out = berth(&h, p.path(), &["up", "--timeout", "60s"]);
    out.expect_code(1);
    assert!(
        out.stderr.contains(
            "web (service): its readiness probe http:http://127.0.0.1:9/health timed out: it did \
             not pass within 2s; berth stopped it"
        ),
        "{out}"
    );
    assert!(
        !out.stderr.contains("before it was ready"),
        "not taken for an exit: {out}"
    );
    assert!(out.stderr.contains("nothing is left running"), "{out}");
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn down_sends_every_process_its_stop_signal_first_and_names_what_it_had_to_kill() {
    let h = home();
    start(&h);
    // web ignores SIGTERM; db stops on it. The timeout is far shorter than web's grace.
    let toml = format!(
        "{}[service.web]\ncommand = \"trap 'echo term web >> order.log' TERM; echo web up; while true; do sleep 0.05; done\"\nready = {{ log = \"web up\" }}\ndepends_on = [\"db\"]\n",
        service("db", ""),
    );
    let p = project(&toml);
    berth(&h, p.path(), &["up"]).expect_code(0);
    let out = berth(&h, p.path(), &["down", "--timeout", "1s"]);
    out.expect_code(0);
    let o = order(p.path());
    assert!(
        o.contains(&"term web".to_string()),
        "web got SIGTERM: {o:?}"
    );
    assert!(
        o.contains(&"stop db".to_string()),
        "db got SIGTERM and stopped: {o:?}"
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("killed (level 1): web (still running")),
        "{out}"
    );
    assert!(out.stdout.contains("stopped (level 2): db"), "{out}");
    assert!(
        !out.stdout.contains("stopped (level 1)"),
        "web was not stopped: {out}"
    );
    for n in ["web", "db"] {
        let info = berth(&h, p.path(), &["--json", "agent", "show", n]).json();
        assert_eq!(info["state"], "stopped", "{info}");
    }

    // The same as JSON: only web was killed, after at most half of the second.
    berth(&h, p.path(), &["up"]).expect_code(0);
    let down = berth(&h, p.path(), &["--json", "down", "--timeout", "1s"]).json();
    let killed = down["killed"].as_array().unwrap();
    assert_eq!(killed.len(), 1, "{down}");
    assert_eq!(killed[0]["name"], "web");
    assert!(killed[0]["grace_ms"].as_u64().unwrap() <= 500, "{down}");
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_missing_working_directory_is_refused_before_anything_starts() {
    let h = home();
    start(&h);
    let p = project(&format!(
        "{}[service.lost]\ncommand = \"true\"\ncwd = \"no/such/dir\"\n",
        service("fine", "")
    ));
    let out = berth(&h, p.path(), &["up"]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("no/such/dir") && out.stderr.contains("does not exist"),
        "{out}"
    );
    assert!(order(p.path()).is_empty(), "nothing started");
    let list = berth(&h, p.path(), &["--json", "agent", "list"]).json();
    assert!(
        list["agents"].as_array().unwrap().is_empty(),
        "nothing defined: {list}"
    );
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn status_shows_the_daemon_and_every_process_in_one_screen() {
    let h = home();
    let p = project(&service("db", ""));
    let stopped = berth(&h, p.path(), &["status"]);
    stopped.expect_code(3);
    assert!(stopped.stdout.contains("daemon    stopped"), "{stopped}");
    start(&h);
    berth(&h, p.path(), &["up"]).expect_code(0);
    let out = berth(&h, p.path(), &["status"]);
    out.expect_code(0);
    assert!(out.stdout.contains("daemon    running"), "{out}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("service") && l.contains("db") && l.contains("running")),
        "{out}"
    );
    berth(&h, p.path(), &["down"]).expect_code(0);
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_failing_liveness_probe_restarts_the_process() {
    let h = home();
    start(&h);
    let p = project(
        "[service.pulse]\ncommand = \"exec sleep 300\"\nrestart = \"on-failure\"\nliveness = { exec = \"test -f alive.flag\", interval = \"1s\", threshold = 1 }\n",
    );
    std::fs::write(p.path().join("alive.flag"), "").unwrap();
    berth(&h, p.path(), &["up"]).expect_code(0);
    let pid = || berth(&h, p.path(), &["--json", "agent", "show", "pulse"]).json()["pid"].as_i64();
    let first = pid().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(pid(), Some(first), "healthy: left alone");
    std::fs::remove_file(p.path().join("alive.flag")).unwrap();
    berth_testkit::wait_until(
        "it is killed and restarted",
        Duration::from_secs(15),
        || pid().is_some_and(|p| p != first),
    );
    let events = h.run(&["--json", "events"]).stdout;
    assert!(events.contains("agent.unhealthy"), "{events}");
    berth(&h, p.path(), &["down"]).expect_code(0);
    h.run(&["daemon", "stop"]).expect_code(0);
}
