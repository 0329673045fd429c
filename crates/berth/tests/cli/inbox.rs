//! Agents' inboxes through the real daemon and real processes: turns delivered in order (a
//! script that appends each message to a file and commits it), priority, idempotency keys,
//! cancel, a failing turn retried then failed, the turn timeout, a terminal agent typed into,
//! the refusals, the daemon SIGKILLed mid-turn, and a load test with a model check over the
//! turn records.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_proto::{InboxItem, InboxList, TurnInfo, TurnList};
use berth_testkit::{Outcome, TestHome, alive, git, wait_until};

use super::terminal::{project, shell, wait_for};
use crate::{home, start};

pub const WAIT: Duration = Duration::from_secs(120);

/// Appends the message (from stdin) and a newline to `received.txt` and commits it; says what
/// it was given.
pub const RECORD: &str = r#"{ cat; echo; } >> received.txt; echo "id=$BERTH_MESSAGE_ID attempt=$BERTH_ATTEMPT source=$BERTH_MESSAGE_SOURCE file=$(cat "$BERTH_MESSAGE_FILE")"; git add received.txt && git commit -qm "message $BERTH_MESSAGE_ID""#;

pub const GIT_ENV: [&str; 8] = [
    "--env",
    "GIT_AUTHOR_NAME=bot",
    "--env",
    "GIT_AUTHOR_EMAIL=bot@example.com",
    "--env",
    "GIT_COMMITTER_NAME=bot",
    "--env",
    "GIT_COMMITTER_EMAIL=bot@example.com",
];

pub fn berth(h: &TestHome, repo: &Path, args: &[&str]) -> Outcome {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    h.run_in(repo, &all)
}

/// A turn agent running `turn`, with extra `agent new` arguments.
pub fn turn_agent(h: &TestHome, repo: &Path, name: &str, turn: &str, extra: &[&str]) {
    let mut args = vec!["agent", "new", name, "--turn", turn];
    args.extend_from_slice(&GIT_ENV);
    args.extend_from_slice(extra);
    berth(h, repo, &args).expect_code(0);
}

/// Sends `text`; returns the item's id.
fn send(h: &TestHome, repo: &Path, name: &str, text: &str, extra: &[&str]) -> i64 {
    let mut args = vec!["send", name, text];
    args.extend_from_slice(extra);
    let out = berth(h, repo, &args);
    out.expect_code(0);
    out.json()["item"]["id"].as_i64().unwrap()
}

pub fn items(h: &TestHome, repo: &Path, name: &str) -> Vec<InboxItem> {
    let out = berth(h, repo, &["inbox", name]);
    out.expect_code(0);
    serde_json::from_value::<InboxList>(out.json())
        .unwrap()
        .items
}

pub fn turns(h: &TestHome, repo: &Path, name: &str) -> Vec<TurnInfo> {
    let out = berth(h, repo, &["turns", name]);
    out.expect_code(0);
    serde_json::from_value::<TurnList>(out.json())
        .unwrap()
        .turns
}

pub fn turn(h: &TestHome, repo: &Path, id: i64) -> TurnInfo {
    let out = berth(h, repo, &["turns", "show", &id.to_string()]);
    out.expect_code(0);
    serde_json::from_value(out.json()).unwrap()
}

pub fn finished(i: &InboxItem) -> bool {
    i.state
        .parse::<berth_core::inbox::ItemState>()
        .is_ok_and(|s| s.is_final())
}

/// Waits until the agent has `n` items and every one is finished; returns them.
#[track_caller]
pub fn settled(h: &TestHome, repo: &Path, name: &str, n: usize) -> Vec<InboxItem> {
    let mut last = Vec::new();
    wait_until(&format!("{n} items of {name} finished"), WAIT, || {
        last = items(h, repo, name);
        last.len() == n && last.iter().all(finished)
    });
    last
}

pub fn workspace(h: &TestHome, repo: &Path, name: &str) -> PathBuf {
    let out = berth(h, repo, &["agent", "show", name]);
    out.expect_code(0);
    PathBuf::from(out.json()["workspace"].as_str().unwrap())
}

pub fn received(h: &TestHome, repo: &Path, name: &str) -> String {
    std::fs::read_to_string(workspace(h, repo, name).join("received.txt")).unwrap_or_default()
}

/// A gate a turn waits at until the test opens it.
struct Gate(PathBuf);

impl Gate {
    fn new(dir: &Path) -> Gate {
        Gate(dir.join("gate"))
    }
    /// Shell that waits until the gate is open, then runs `then`.
    fn script(&self, then: &str) -> String {
        format!(
            "echo started >> {started}; while [ ! -e {gate} ]; do sleep 0.02; done; {then}",
            started = self.started().display(),
            gate = self.0.display()
        )
    }
    fn started(&self) -> PathBuf {
        self.0.with_extension("started")
    }
    fn starts(&self) -> usize {
        std::fs::read_to_string(self.started())
            .unwrap_or_default()
            .lines()
            .count()
    }
    #[track_caller]
    fn wait_started(&self, n: usize) {
        wait_until(&format!("{n} turns at the gate"), WAIT, || {
            self.starts() >= n
        });
    }
    fn open(&self) {
        std::fs::write(&self.0, "").unwrap();
    }
}

#[test]
fn messages_are_delivered_in_order_each_a_turn_that_commits() {
    let h = home();
    start(&h);
    let p = project();
    turn_agent(&h, p.path(), "bot", RECORD, &[]);
    let base = git(p.path(), &["rev-parse", "HEAD"]);
    let texts = ["first", "second line\nof two", "third", "fourth", "fifth"];
    let ids: Vec<i64> = texts
        .iter()
        .map(|t| send(&h, p.path(), "bot", t, &[]))
        .collect();
    let done = settled(&h, p.path(), "bot", texts.len());
    assert!(
        done.iter().all(|i| i.state == "done" && i.attempts == 1),
        "{done:?}"
    );
    let expected: String = texts.iter().map(|t| format!("{t}\n")).collect();
    assert_eq!(
        received(&h, p.path(), "bot"),
        expected,
        "in order, each once"
    );

    let turns = turns(&h, p.path(), "bot");
    assert_eq!(turns.iter().map(|t| t.item).collect::<Vec<_>>(), ids);
    // Each turn moved the branch by exactly its own commit, one after the other.
    let mut tip = base.trim().to_string();
    for t in &turns {
        assert_eq!(t.status, "done");
        assert_eq!(t.exit_code, Some(0));
        assert_eq!(t.trigger, "message");
        assert_eq!(t.mode, "turn");
        assert_eq!(t.commit_before.as_deref(), Some(tip.as_str()), "{t:?}");
        let after = t.commit_after.clone().unwrap();
        assert_ne!(after, tip);
        let ws = workspace(&h, p.path(), "bot");
        let subject = git(&ws, &["log", "-1", "--format=%s", &after]);
        assert_eq!(subject.trim(), format!("message {}", t.item));
        tip = after;
        assert!(t.ended_ms.unwrap() >= t.started_ms);
        assert_eq!(t.duration_ms, Some(t.ended_ms.unwrap() - t.started_ms));
    }
    // The message is on stdin and in the file, with its id, source and attempt.
    let second = turn(&h, p.path(), turns[1].id);
    assert!(
        second.output.contains(&format!(
            "id={} attempt=1 source=message file=second line",
            ids[1]
        )),
        "{second:?}"
    );
    // The branch is mirrored into the project after the turns, through the agent's ref.
    let text = h.run_in(p.path(), &["turns", "bot"]);
    text.expect_code(0);
    assert!(text.stdout.contains("done"), "{text}");
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn now_goes_before_normal_and_a_key_makes_a_repeat_a_no_op() {
    let h = home();
    start(&h);
    let p = project();
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::new(dir.path());
    turn_agent(&h, p.path(), "bot", &gate.script(RECORD), &[]);
    send(&h, p.path(), "bot", "a", &[]);
    gate.wait_started(1);
    // While `a` is delivered: two normal items, then one that is urgent.
    send(&h, p.path(), "bot", "b", &["--key", "b-1"]);
    send(&h, p.path(), "bot", "c", &[]);
    let urgent = send(&h, p.path(), "bot", "d", &["--priority", "now"]);
    // The same key again: nothing new, the first item answered.
    let again = berth(&h, p.path(), &["send", "bot", "b again", "--key", "b-1"]);
    again.expect_code(0);
    assert_eq!(again.json()["duplicate"], true);
    assert_eq!(again.json()["item"]["text"], "b");
    let listed = items(&h, p.path(), "bot");
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert_eq!(
        listed.iter().find(|i| i.id == urgent).unwrap().priority,
        "now"
    );
    // Each item was told of once, with its priority; the repeat told nothing.
    let events = h.run(&["--json", "events"]);
    events.expect_code(0);
    let told: Vec<(i64, String)> = events
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == "inbox.queued")
        .map(|e| {
            let item = e["data"]["item"].as_i64().unwrap();
            (item, e["data"]["priority"].as_str().unwrap().to_string())
        })
        .collect();
    let expected: Vec<(i64, String)> = listed.iter().map(|i| (i.id, i.priority.clone())).collect();
    assert_eq!(told, expected);
    gate.open();
    settled(&h, p.path(), "bot", 4);
    assert_eq!(received(&h, p.path(), "bot"), "a\nd\nb\nc\n");
    assert_eq!(gate.starts(), 4, "one turn per item, the repeat none");
    // A key is per agent, and a repeat after delivery is still a no-op.
    let late = berth(&h, p.path(), &["send", "bot", "b", "--key", "b-1"]);
    assert_eq!(late.json()["duplicate"], true);
    assert_eq!(late.json()["item"]["state"], "done");
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_queued_item_can_be_cancelled_and_is_never_delivered() {
    let h = home();
    start(&h);
    let p = project();
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::new(dir.path());
    turn_agent(&h, p.path(), "bot", &gate.script(RECORD), &[]);
    let a = send(&h, p.path(), "bot", "a", &[]);
    gate.wait_started(1);
    let b = send(&h, p.path(), "bot", "b", &[]);
    send(&h, p.path(), "bot", "c", &[]);
    let cancelled = berth(&h, p.path(), &["inbox", "cancel", &b.to_string()]);
    cancelled.expect_code(0);
    assert_eq!(cancelled.json()["state"], "cancelled");
    // The one being delivered cannot be.
    let busy = berth(&h, p.path(), &["inbox", "cancel", &a.to_string()]);
    busy.expect_code(1);
    assert_eq!(busy.json()["error"]["code"], "not_cancellable");
    let missing = berth(&h, p.path(), &["inbox", "cancel", "999999"]);
    missing.expect_code(1);
    assert_eq!(missing.json()["error"]["code"], "item_not_found");
    gate.open();
    let all = settled(&h, p.path(), "bot", 3);
    let states: Vec<&str> = all.iter().map(|i| i.state.as_str()).collect();
    assert_eq!(states, ["done", "cancelled", "done"]);
    assert_eq!(received(&h, p.path(), "bot"), "a\nc\n");
    assert_eq!(gate.starts(), 2);
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_failing_turn_is_retried_then_the_item_fails_and_the_next_goes_on() {
    let h = home();
    start(&h);
    let p = project();
    turn_agent(
        &h,
        p.path(),
        "bot",
        r#"echo "try $BERTH_ATTEMPT of $(cat)"; [ "$(cat "$BERTH_MESSAGE_FILE")" = ok ] || exit 3"#,
        &[],
    );
    let began = Instant::now();
    let bad = send(&h, p.path(), "bot", "bad", &[]);
    let ok = send(&h, p.path(), "bot", "ok", &[]);
    let all = settled(&h, p.path(), "bot", 2);
    assert_eq!(all[0].state, "failed");
    assert_eq!(all[0].attempts, 3);
    assert_eq!(all[1].state, "done");
    // Waits of 1 s and 2 s between the three attempts.
    assert!(
        began.elapsed() >= Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    let turns = turns(&h, p.path(), "bot");
    let of_bad: Vec<&TurnInfo> = turns.iter().filter(|t| t.item == bad).collect();
    assert_eq!(
        of_bad.iter().map(|t| t.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    for (t, n) in of_bad.iter().zip(1..) {
        assert_eq!(t.status, "failed");
        assert_eq!(t.exit_code, Some(3));
        assert!(
            turn(&h, p.path(), t.id)
                .output
                .contains(&format!("try {n} of bad"))
        );
    }
    assert!(turns.iter().any(|t| t.item == ok && t.status == "done"));
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_turn_that_runs_too_long_is_stopped_and_tried_again() {
    let h = home();
    start(&h);
    let p = project();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let script = format!(
        r#"if [ "$BERTH_ATTEMPT" = 1 ]; then echo $$ > {pid}; exec sleep 60; fi; echo quick"#,
        pid = pid_file.display()
    );
    turn_agent(&h, p.path(), "bot", &script, &["--turn-timeout", "500ms"]);
    send(&h, p.path(), "bot", "x", &[]);
    let all = settled(&h, p.path(), "bot", 1);
    assert_eq!(all[0].state, "done");
    let turns = turns(&h, p.path(), "bot");
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[0].status, "timed_out");
    assert!(turns[0].duration_ms.unwrap() >= 500, "{:?}", turns[0]);
    assert!(turns[0].duration_ms.unwrap() < 10_000, "{:?}", turns[0]);
    assert!(
        turn(&h, p.path(), turns[0].id)
            .error
            .unwrap()
            .contains("turn timeout")
    );
    assert_eq!(turns[1].status, "done");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!alive(pid), "the timed-out turn's process was stopped");
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_terminal_agent_gets_the_message_typed_once_its_screen_is_quiet() {
    let h = home();
    start(&h);
    let p = project();
    shell(&h, p.path(), "sh");
    let began = Instant::now();
    send(&h, p.path(), "sh", "echo \"from-the-$((6*7))-inbox\"", &[]);
    let screen = wait_for(&h, p.path(), "sh", "from-the-42-inbox");
    assert!(
        screen.rows.iter().any(|r| r == "from-the-42-inbox"),
        "the shell ran it: {screen:?}"
    );
    // Typed only after a quiet second.
    assert!(began.elapsed() >= Duration::from_secs(1));
    let all = settled(&h, p.path(), "sh", 1);
    assert_eq!(all[0].state, "done");
    let turns = turns(&h, p.path(), "sh");
    assert_eq!(turns.len(), 1);
    assert_eq!(turns[0].mode, "type");
    assert_eq!(turns[0].status, "done");
    // The message is too long for a terminal: refused before anything is queued.
    let long = "x".repeat(70_000);
    let out = berth(&h, p.path(), &["send", "sh", &long]);
    out.expect_code(2);
    assert_eq!(out.json()["error"]["code"], "invalid_message");
    berth(&h, p.path(), &["agent", "stop", "sh"]).expect_code(0);
    h.run(&["daemon", "stop"]).expect_code(0);
}

/// A daemon SIGKILLed (`abort`) at each step of typing into a terminal agent: the item is
/// never lost; the turn is `interrupted` and the text typed again — once in all when the crash
/// came before the typing, twice when it came after (at least once, never maybe not at all).
#[test]
fn a_daemon_killed_while_typing_into_a_terminal_loses_nothing() {
    for (failpoint, typed) in [
        ("inbox.turn.recorded", 1),
        ("inbox.type.settled", 1),
        ("inbox.type.typed", 2),
        ("inbox.turn.ended", 2),
    ] {
        let h = home();
        let mut cmd = h.command(&["daemon", "start"]);
        cmd.env("BERTH_FAILPOINTS", format!("{failpoint}=abort"));
        h.run_cmd(cmd).expect_code(0);
        let p = project();
        shell(&h, p.path(), "sh");
        let pid = h.recorded_pid().unwrap();
        send(&h, p.path(), "sh", "echo \"typed-$((6*7))\"", &[]);
        wait_until("the daemon died at the failpoint", WAIT, || !alive(pid));
        start(&h);
        let all = settled(&h, p.path(), "sh", 1);
        assert_eq!(all[0].state, "done", "{failpoint}");
        let shown: Vec<(String, u32)> = turns(&h, p.path(), "sh")
            .iter()
            .map(|t| (t.status.clone(), t.attempt))
            .collect();
        assert_eq!(
            shown,
            [("interrupted".to_string(), 1), ("done".to_string(), 2)],
            "{failpoint}"
        );
        let screen = wait_for(&h, p.path(), "sh", "typed-42");
        let runs = screen.rows.iter().filter(|r| *r == "typed-42").count();
        assert_eq!(runs, typed, "{failpoint}: {screen:?}");
        berth(&h, p.path(), &["agent", "stop", "sh"]).expect_code(0);
        h.run(&["daemon", "stop"]).expect_code(0);
    }
}

#[test]
fn status_counts_each_agents_open_items() {
    let h = home();
    start(&h);
    let p = project();
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::new(dir.path());
    turn_agent(&h, p.path(), "bot", &gate.script("cat > /dev/null"), &[]);
    for text in ["one", "two", "three"] {
        send(&h, p.path(), "bot", text, &[]);
    }
    gate.wait_started(1);
    let status = berth(&h, p.path(), &["status"]);
    let counts = &status.json()["inbox"]["agents"][0];
    assert_eq!(
        (&counts["agent"], &counts["queued"], &counts["delivering"]),
        (&"bot".into(), &2.into(), &1.into()),
        "{status}"
    );
    let text = h.run_in(p.path(), &["status"]);
    assert!(
        text.stdout.contains("inbox 2 queued, 1 delivering"),
        "{text}"
    );
    gate.open();
    settled(&h, p.path(), "bot", 3);
    let text = h.run_in(p.path(), &["status"]);
    assert!(!text.stdout.contains("inbox"), "nothing open: {text}");
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn what_cannot_be_sent_is_refused_before_anything_is_queued() {
    let h = home();
    start(&h);
    let p = project();
    berth(&h, p.path(), &["agent", "new", "plain"]).expect_code(0);
    turn_agent(&h, p.path(), "bot", "cat", &[]);
    let refused = berth(&h, p.path(), &["send", "plain", "hi"]);
    refused.expect_code(1);
    assert_eq!(refused.json()["error"]["code"], "not_deliverable");
    assert!(
        refused.json()["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("--turn"),
        "{refused}"
    );
    for (args, code) in [
        (vec!["send", "bot", ""], "invalid_message"),
        (vec!["send", "bot", "x", "--key", ""], "invalid_message"),
        (
            vec!["send", "bot", "x", "--priority", "urgent"],
            "invalid_message",
        ),
    ] {
        let out = berth(&h, p.path(), &args);
        out.expect_code(2);
        assert_eq!(out.json()["error"]["code"], code, "{args:?}: {out}");
    }
    let nobody = berth(&h, p.path(), &["send", "nobody", "x"]);
    nobody.expect_code(1);
    assert_eq!(nobody.json()["error"]["code"], "agent_not_found");
    // --turn and --tty do not go together; a timeout needs a turn.
    h.run_in(
        p.path(),
        &["agent", "new", "both", "--turn", "cat", "--tty"],
    )
    .expect_code(2);
    h.run_in(p.path(), &["agent", "new", "t", "--turn-timeout", "1s"])
        .expect_code(2);
    // From a file and from stdin.
    let file = p.path().join("msg.txt");
    std::fs::write(&file, "from a file").unwrap();
    let out = berth(
        &h,
        p.path(),
        &["send", "bot", "--file", file.to_str().unwrap()],
    );
    out.expect_code(0);
    assert_eq!(out.json()["item"]["text"], "from a file");
    assert!(items(&h, p.path(), "plain").is_empty());
    let missing = berth(&h, p.path(), &["turns", "show", "424242"]);
    missing.expect_code(1);
    assert_eq!(missing.json()["error"]["code"], "turn_not_found");
    h.run(&["daemon", "stop"]).expect_code(0);
}

/// The state file of a turn's keeper: `(keeper pid, child pid)`.
fn turn_keeper(h: &TestHome, name: &str, turn: i64) -> (i32, i32) {
    let project = std::fs::read_dir(h.path().join("agents"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let state = project
        .join(name)
        .join("turns")
        .join(turn.to_string())
        .join("state.json");
    // The child may say it started before its keeper wrote its state.
    let mut st = serde_json::Value::Null;
    wait_until("the turn's keeper wrote its state", WAIT, || {
        st = std::fs::read(&state)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        st["child"]["pid"].is_i64()
    });
    (
        st["keeper"]["pid"].as_i64().unwrap() as i32,
        st["child"]["pid"].as_i64().unwrap() as i32,
    )
}

#[test]
fn a_daemon_killed_mid_turn_re_adopts_it_and_runs_nothing_twice() {
    let h = home();
    start(&h);
    let p = project();
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::new(dir.path());
    turn_agent(&h, p.path(), "bot", &gate.script(RECORD), &[]);
    send(&h, p.path(), "bot", "one", &[]);
    send(&h, p.path(), "bot", "two", &[]);
    gate.wait_started(1);
    let first = turns(&h, p.path(), "bot")[0].clone();
    assert_eq!(first.status, "running");
    let (keeper, _) = turn_keeper(&h, "bot", first.id);
    h.signal_daemon(libc::SIGKILL);
    assert!(alive(keeper), "the turn lives on without the daemon");
    // The turn finishes while no daemon watches.
    gate.open();
    wait_until("the turn's keeper is done", WAIT, || !alive(keeper));
    start(&h);
    let all = settled(&h, p.path(), "bot", 2);
    assert!(
        all.iter().all(|i| i.state == "done" && i.attempts == 1),
        "{all:?}"
    );
    assert_eq!(received(&h, p.path(), "bot"), "one\ntwo\n");
    assert_eq!(gate.starts(), 2, "nothing ran twice");
    let turns = turns(&h, p.path(), "bot");
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[0].id, first.id);
    assert_eq!(turns[0].status, "done");
    assert_eq!(turns[0].exit_code, Some(0));
    assert!(turns[0].commit_after != turns[0].commit_before);
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_daemon_killed_mid_turn_watches_a_turn_still_running_to_its_end() {
    let h = home();
    start(&h);
    let p = project();
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::new(dir.path());
    turn_agent(&h, p.path(), "bot", &gate.script(RECORD), &[]);
    send(&h, p.path(), "bot", "one", &[]);
    gate.wait_started(1);
    let first = turns(&h, p.path(), "bot")[0].clone();
    let (keeper, _) = turn_keeper(&h, "bot", first.id);
    h.signal_daemon(libc::SIGKILL);
    start(&h);
    // Re-adopted while it still runs: still `running`, and no second turn started.
    std::thread::sleep(Duration::from_millis(300));
    let during = turns(&h, p.path(), "bot");
    assert_eq!(during.len(), 1, "{during:?}");
    assert_eq!(during[0].status, "running");
    assert!(alive(keeper));
    gate.open();
    let all = settled(&h, p.path(), "bot", 1);
    assert_eq!(all[0].state, "done");
    let after = turns(&h, p.path(), "bot");
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].status, "done");
    assert_eq!(gate.starts(), 1);
    let events = h.run(&["--json", "events"]);
    assert!(events.stdout.contains("turn.adopted"), "{events}");
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_turn_whose_keeper_vanished_with_the_daemon_is_interrupted_and_tried_again() {
    let h = home();
    start(&h);
    let p = project();
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::new(dir.path());
    turn_agent(&h, p.path(), "bot", &gate.script(RECORD), &[]);
    send(&h, p.path(), "bot", "one", &[]);
    gate.wait_started(1);
    let first = turns(&h, p.path(), "bot")[0].clone();
    let (keeper, child) = turn_keeper(&h, "bot", first.id);
    h.signal_daemon(libc::SIGKILL);
    // The whole turn goes too (a reboot, an OOM kill).
    for pid in [keeper, child] {
        // SAFETY: kill(2) on processes this test's daemon started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    wait_until("the turn is gone", WAIT, || !alive(keeper) && !alive(child));
    gate.open();
    start(&h);
    let all = settled(&h, p.path(), "bot", 1);
    assert_eq!(all[0].state, "done");
    assert_eq!(all[0].attempts, 2);
    let turns = turns(&h, p.path(), "bot");
    let shown: Vec<(&str, u32)> = turns
        .iter()
        .map(|t| (t.status.as_str(), t.attempt))
        .collect();
    assert_eq!(shown, [("interrupted", 1), ("done", 2)]);
    assert_eq!(received(&h, p.path(), "bot"), "one\n");
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn under_load_every_message_is_delivered_exactly_once_in_order() {
    // 200 turns per agent (all that `turns NAME` lists); the full 10,000 messages from 20
    // clients to 10 agents are the inbox benchmark's load check (`bench/results/inbox.md`).
    const AGENTS: usize = 10;
    const CLIENTS: usize = 20;
    const MESSAGES: usize = 2000;
    let h = home();
    start(&h);
    let p = project();
    let names: Vec<String> = (0..AGENTS).map(|i| format!("bot{i}")).collect();
    for name in &names {
        turn_agent(
            &h,
            p.path(),
            name,
            "cat >> received.txt; echo >> received.txt",
            &[],
        );
    }
    let repo = p.path().to_str().unwrap().to_string();
    let socket = h.socket();
    let began = Instant::now();
    // Each client sends its share, in order, each message to the next agent.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sent: Vec<Vec<(String, String, i64)>> = rt.block_on(async {
        let tasks = (0..CLIENTS).map(|c| {
            let client = berth_client::Client::unix(socket.clone());
            let names = names.clone();
            let repo = repo.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for n in 0..MESSAGES / CLIENTS {
                    let name = names[(c + n) % AGENTS].clone();
                    let text = format!("c{c}-m{n}");
                    let req = berth_proto::InboxSend {
                        repo: repo.clone(),
                        name: name.clone(),
                        text: text.clone(),
                        key: Some(text.clone()),
                        priority: None,
                    };
                    let s: berth_proto::InboxSent =
                        client.post_json("/v1/inbox/send", &req).await.unwrap();
                    mine.push((name, text, s.item.id));
                }
                mine
            })
        });
        let mut all = Vec::new();
        for t in tasks.collect::<Vec<_>>() {
            all.push(t.await.unwrap());
        }
        all
    });
    let sent_in = began.elapsed();
    // `inbox` lists the open items and the newest finished ones: done when none is open and
    // every item had its turn.
    for name in &names {
        wait_until(&format!("every item of {name} delivered"), WAIT, || {
            items(&h, p.path(), name).iter().all(finished)
                && turns(&h, p.path(), name).len() == MESSAGES / AGENTS
        });
    }
    let delivered_in = began.elapsed();
    // The model: per agent, the items in the order their ids were given (the order they were
    // queued); each client's messages to an agent keep their order there.
    let mut expected: BTreeMap<&str, Vec<(i64, &str)>> = BTreeMap::new();
    for client in &sent {
        for (name, text, id) in client {
            expected.entry(name).or_default().push((*id, text));
        }
    }
    for (name, want) in &mut expected {
        want.sort();
        let turns = turns(&h, p.path(), name);
        // Exactly one turn per item, done, in id order; never two at once.
        let items: Vec<i64> = turns.iter().map(|t| t.item).collect();
        assert_eq!(
            items,
            want.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            "{name}"
        );
        assert!(turns.iter().all(|t| t.status == "done" && t.attempt == 1));
        for pair in turns.windows(2) {
            assert!(
                pair[0].ended_ms.unwrap() <= pair[1].started_ms,
                "{name}: turns overlap: {pair:?}"
            );
        }
        let lines: Vec<String> = received(&h, p.path(), name)
            .lines()
            .map(str::to_string)
            .collect();
        let want_lines: Vec<String> = want.iter().map(|(_, t)| t.to_string()).collect();
        assert_eq!(lines, want_lines, "{name}: each exactly once, in order");
        let per_client: BTreeSet<&str> = want
            .iter()
            .map(|(_, t)| &t[..t.find('-').unwrap()])
            .collect();
        assert!(per_client.len() > 1);
    }
    eprintln!(
        "load: {MESSAGES} messages from {CLIENTS} clients to {AGENTS} agents: sent in {sent_in:?}, all delivered in {delivered_in:?}"
    );
    h.run(&["daemon", "stop"]).expect_code(0);
}

/// A daemon that dies at each failpoint of a delivery: after the turn is recorded (nothing
/// started: the turn is `interrupted` and run again), after its keeper started, after it ended
/// but before that is recorded (re-adopted or collected: run once).
#[test]
fn a_daemon_that_dies_at_any_step_of_a_delivery_loses_nothing_and_runs_nothing_twice() {
    for (failpoint, expected) in [
        (
            "inbox.turn.recorded",
            &[("interrupted", 1), ("done", 2)][..],
        ),
        ("inbox.turn.started", &[("done", 1)][..]),
        ("inbox.turn.ended", &[("done", 1)][..]),
    ] {
        let h = home();
        let mut cmd = h.command(&["daemon", "start"]);
        cmd.env("BERTH_FAILPOINTS", format!("{failpoint}=exit(9)"));
        h.run_cmd(cmd).expect_code(0);
        let p = project();
        let dir = tempfile::tempdir().unwrap();
        let gate = Gate::new(dir.path());
        gate.open();
        turn_agent(&h, p.path(), "bot", &gate.script(RECORD), &[]);
        let pid = h.recorded_pid().unwrap();
        send(&h, p.path(), "bot", "one", &[]);
        wait_until("the daemon died at the failpoint", WAIT, || !alive(pid));
        start(&h);
        let all = settled(&h, p.path(), "bot", 1);
        assert_eq!(all[0].state, "done", "{failpoint}");
        assert_eq!(received(&h, p.path(), "bot"), "one\n", "{failpoint}: once");
        assert_eq!(gate.starts(), 1, "{failpoint}: the turn ran once");
        let turns = turns(&h, p.path(), "bot");
        let shown: Vec<(&str, u32)> = turns
            .iter()
            .map(|t| (t.status.as_str(), t.attempt))
            .collect();
        assert_eq!(shown, expected, "{failpoint}");
        h.run(&["daemon", "stop"]).expect_code(0);
    }
}
