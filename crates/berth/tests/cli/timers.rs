//! Timers through the real daemon: a real short timer (`every`, `at`) delivered as turns, a fire
//! missed while the daemon was down delivered once, `timer list` in local time with its zone,
//! `timer rm`, and the refusals. When a timer fires across daylight-saving changes, missed
//! periods and cron expressions is tested with a clock of the tests' choosing in
//! `berth_core::timer`.

use std::path::Path;
use std::time::Duration;

use berth_proto::{InboxItem, TimerInfo, TimerList};
use berth_testkit::{TestHome, wait_until};

use super::inbox::{RECORD, WAIT, berth, finished, items, received, turn_agent, turns};
use super::terminal::project;
use crate::{home, start};

fn timers(h: &TestHome, repo: &Path) -> Vec<TimerInfo> {
    let out = berth(h, repo, &["timer", "list"]);
    out.expect_code(0);
    serde_json::from_value::<TimerList>(out.json())
        .unwrap()
        .timers
}

/// The time a timer item was due, from its idempotency key (`timer:<id>:<ms>`).
fn scheduled(i: &InboxItem) -> i64 {
    i.key
        .as_deref()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

#[test]
fn a_short_timer_fires_through_the_daemon_until_it_is_removed() {
    let h = home();
    start(&h);
    let p = project();
    turn_agent(&h, p.path(), "bot", RECORD, &[]);
    let out = berth(
        &h,
        p.path(),
        &["timer", "add", "bot", "--every", "1s", "--message", "tick"],
    );
    out.expect_code(0);
    let t: TimerInfo = serde_json::from_value(out.json()).unwrap();
    assert_eq!((t.kind.as_str(), t.spec.as_str()), ("every", "1s"));
    wait_until("two ticks delivered", WAIT, || {
        items(&h, p.path(), "bot")
            .iter()
            .filter(|i| i.state == "done")
            .count()
            >= 2
    });
    let listed = timers(&h, p.path());
    assert_eq!(listed.len(), 1);
    assert!(listed[0].fired >= 2, "{listed:?}");
    let text = h.run_in(p.path(), &["timer", "list"]);
    text.expect_code(0);
    assert!(
        text.stdout.contains(&format!("({})", t.zone)) && text.stdout.contains("every 1s"),
        "the next fire in local time, its zone named: {text}"
    );
    berth(&h, p.path(), &["timer", "rm", &t.id.to_string()]).expect_code(0);
    let after_rm = items(&h, p.path(), "bot").len();
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(
        items(&h, p.path(), "bot").len(),
        after_rm,
        "no fire after rm"
    );
    assert!(timers(&h, p.path()).is_empty());
    for i in items(&h, p.path(), "bot") {
        assert_eq!((i.source.as_str(), i.text.as_str()), ("timer", "tick"));
    }
    for t in turns(&h, p.path(), "bot") {
        assert_eq!(t.trigger, "timer");
    }
    assert!(received(&h, p.path(), "bot").starts_with("tick\ntick\n"));
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn an_at_timer_fires_once_at_its_local_time() {
    let h = home();
    start(&h);
    let p = project();
    turn_agent(&h, p.path(), "bot", RECORD, &[]);
    let when = jiff::Timestamp::now() + Duration::from_secs(2);
    let at = when.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let out = berth(
        &h,
        p.path(),
        &[
            "timer",
            "add",
            "bot",
            "--at",
            &at,
            "--tz",
            "UTC",
            "--message",
            "once",
        ],
    );
    out.expect_code(0);
    let t: TimerInfo = serde_json::from_value(out.json()).unwrap();
    assert_eq!(t.next_ms, Some(when.as_millisecond() / 1000 * 1000));
    wait_until("the fire delivered", WAIT, || {
        items(&h, p.path(), "bot").iter().any(|i| i.state == "done")
    });
    let fired = items(&h, p.path(), "bot");
    assert_eq!(fired.len(), 1);
    assert!(
        fired[0].created_ms >= t.next_ms.unwrap(),
        "not before its time"
    );
    let listed = timers(&h, p.path());
    assert_eq!((listed[0].fired, listed[0].next_ms), (1, None));
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(items(&h, p.path(), "bot").len(), 1, "once");
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_fire_missed_while_the_daemon_was_down_is_delivered_once_on_start() {
    let h = home();
    start(&h);
    let p = project();
    turn_agent(&h, p.path(), "bot", RECORD, &[]);
    let out = berth(
        &h,
        p.path(),
        &["timer", "add", "bot", "--every", "1s", "--message", "tick"],
    );
    out.expect_code(0);
    let id = out.json()["id"].as_i64().unwrap();
    wait_until("a first tick", WAIT, || {
        !items(&h, p.path(), "bot").is_empty()
    });
    h.run(&["daemon", "stop"]).expect_code(0);
    let stopped = now_ms();
    // Four periods go by with no daemon.
    std::thread::sleep(Duration::from_millis(4_200));
    let started = now_ms();
    start(&h);
    wait_until("a tick after the restart", WAIT, || {
        items(&h, p.path(), "bot")
            .iter()
            .any(|i| i.created_ms >= started)
    });
    berth(&h, p.path(), &["timer", "rm", &id.to_string()]).expect_code(0);
    let all = items(&h, p.path(), "bot");
    let missed: Vec<i64> = all
        .iter()
        .map(scheduled)
        .filter(|s| *s > stopped && *s < started)
        .collect();
    assert_eq!(missed.len(), 1, "one fire for four missed periods: {all:?}");
    wait_until("every tick delivered", WAIT, || {
        items(&h, p.path(), "bot").iter().all(finished)
    });
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn bad_timers_are_refused_and_nothing_is_added() {
    let h = home();
    start(&h);
    let p = project();
    turn_agent(&h, p.path(), "bot", "true", &[]);
    berth(
        &h,
        p.path(),
        &["agent", "new", "plain", "--cmd", "sleep 100"],
    )
    .expect_code(0);
    for (args, code, error) in [
        (vec!["--every", "0s"], 2, "invalid_timer"),
        (vec!["--cron", "0 9 * *"], 2, "invalid_timer"),
        (vec!["--at", "2001-01-01T09:00"], 2, "invalid_timer"),
        (vec!["--at", "tomorrow"], 2, "invalid_timer"),
        (
            vec!["--cron", "0 9 * * *", "--tz", "Mars/Olympus"],
            2,
            "invalid_timer",
        ),
    ] {
        let mut all = vec!["timer", "add", "bot", "--message", "m"];
        all.extend_from_slice(&args);
        let out = berth(&h, p.path(), &all);
        out.expect_code(code);
        assert_eq!(out.json()["error"]["code"], error, "{args:?}: {out}");
    }
    let out = berth(
        &h,
        p.path(),
        &["timer", "add", "plain", "--every", "1m", "--message", "m"],
    );
    assert_eq!(out.json()["error"]["code"], "not_deliverable", "{out}");
    let out = berth(&h, p.path(), &["timer", "add", "bot", "--message", "m"]);
    out.expect_code(2);
    let out = berth(&h, p.path(), &["timer", "rm", "99"]);
    assert_eq!(out.json()["error"]["code"], "timer_not_found", "{out}");
    assert!(timers(&h, p.path()).is_empty());
    h.run(&["daemon", "stop"]).expect_code(0);
}
