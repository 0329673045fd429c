//! Terminal agents (`--tty`): real programs under real pseudo-terminals, driven through the
//! real daemon — typing, the screen, a daemon killed and started again, resize, stop, and the
//! requests that cannot be carried out.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use berth_proto::TerminalScreen;
use berth_supervisor::keeper::control::{self, Refusal, Request, TerminalAnswer};
use berth_testkit::{Outcome, TestHome, alive, repo, wait_until};

use crate::{home, rt, start};

const WAIT: Duration = Duration::from_secs(20);

pub fn project() -> tempfile::TempDir {
    repo(&[("README", "hi\n")])
}

pub fn agent(h: &TestHome, repo: &Path, args: &[&str]) -> Outcome {
    let mut all = vec!["--json", "agent"];
    all.extend_from_slice(args);
    h.run_in(repo, &all)
}

/// Starts a terminal agent `name` running `cmd`.
pub fn terminal_agent(h: &TestHome, repo: &Path, name: &str, cmd: &str) {
    agent(h, repo, &["new", name, "--tty", "--start", "--cmd", cmd]).expect_code(0);
}

pub fn screen(h: &TestHome, repo: &Path, name: &str) -> TerminalScreen {
    let out = agent(h, repo, &["screen", name]);
    out.expect_code(0);
    serde_json::from_value(out.json()).unwrap()
}

pub fn shows(s: &TerminalScreen, text: &str) -> bool {
    s.rows.iter().any(|r| r.contains(text))
}

/// Waits until the screen shows `text` on some row; returns that screen.
#[track_caller]
pub fn wait_for(h: &TestHome, repo: &Path, name: &str, text: &str) -> TerminalScreen {
    let mut last = None;
    wait_until(&format!("the screen shows {text:?}"), WAIT, || {
        let s = screen(h, repo, name);
        let found = shows(&s, text);
        last = Some(s);
        found
    });
    last.unwrap()
}

/// An interactive bash with a fixed prompt, started under a terminal; waits for its prompt.
pub fn shell(h: &TestHome, repo: &Path, name: &str) {
    agent(
        h,
        repo,
        &[
            "new",
            name,
            "--tty",
            "--start",
            "--env",
            "PS1=$ ",
            "--cmd",
            "exec bash --norc --noprofile -i",
        ],
    )
    .expect_code(0);
    wait_for(h, repo, name, "$");
}

pub fn typed(h: &TestHome, repo: &Path, name: &str, text: &str) {
    agent(h, repo, &["input", name, text, "--enter"]).expect_code(0);
}

/// The directory of the only project's agent `name` under this home.
fn keeper_dir(h: &TestHome, name: &str) -> PathBuf {
    let project = std::fs::read_dir(h.path().join("agents"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    project.join(name)
}

/// The pid of agent `name`'s keeper.
pub fn keeper_pid(h: &TestHome, name: &str) -> i32 {
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(keeper_dir(h, name).join("state.json")).unwrap())
            .unwrap();
    state["keeper"]["pid"].as_i64().unwrap() as i32
}

fn ask_keeper(h: &TestHome, name: &str, req: &Request) -> TerminalAnswer {
    let socket = keeper_dir(h, name).join("keeper.sock");
    control::ask(&socket, req, Duration::from_secs(10)).unwrap()
}

pub fn pid_of(h: &TestHome, repo: &Path, name: &str) -> i32 {
    agent(h, repo, &["show", name]).json()["pid"]
        .as_i64()
        .expect("a running agent has a pid") as i32
}

#[test]
fn a_shell_agent_is_typed_into_and_keeps_its_screen_and_state_across_a_killed_daemon() {
    let h = home();
    start(&h);
    let p = project();
    shell(&h, p.path(), "sh");
    let info = agent(&h, p.path(), &["show", "sh"]).json();
    assert_eq!(info["tty"], true, "{info}");
    let pid = pid_of(&h, p.path(), "sh");

    typed(&h, p.path(), "sh", "X=berth42; echo \"v=$X\"");
    let before = wait_for(&h, p.path(), "sh", "v=berth42");
    assert!(
        before.rows.iter().any(|r| r == "v=berth42"),
        "the output has a row of its own: {before:?}"
    );
    assert!(
        before.rows.iter().any(|r| r.starts_with("$ X=berth42")),
        "the echo of what was typed: {before:?}"
    );

    h.signal_daemon(libc::SIGKILL);
    assert!(alive(pid), "the shell survived the daemon");
    start(&h);
    let after = screen(&h, p.path(), "sh");
    assert_eq!(after.rows, before.rows, "the keeper kept the screen");
    assert_eq!(after.cursor, before.cursor);
    assert_eq!(
        pid_of(&h, p.path(), "sh"),
        pid,
        "the same shell, re-adopted"
    );

    typed(&h, p.path(), "sh", "echo \"again=$X\"");
    wait_for(&h, p.path(), "sh", "again=berth42");
    // The human form: the rows as text.
    let text = h.run_in(p.path(), &["agent", "screen", "sh"]);
    text.expect_code(0);
    assert!(text.stdout.contains("\nagain=berth42\n"), "{text}");

    agent(&h, p.path(), &["stop", "sh"]).expect_code(0);
    assert!(!alive(pid));
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_full_screen_redraw_is_on_the_screen_at_its_row_and_column() {
    let h = home();
    start(&h);
    let p = project();
    let cmd = r#"printf '\033[2J\033[5;10Hhello\033[7;1H%s %s\033[3;4H' "$TERM" "$(stty size)"; exec sleep 300"#;
    terminal_agent(&h, p.path(), "tui", cmd);
    let s = wait_for(&h, p.path(), "tui", "hello");
    assert_eq!(s.rows[4], format!("{}hello", " ".repeat(9)), "{s:?}");
    assert_eq!(s.rows[6], "xterm-256color 24 80", "{s:?}");
    assert_eq!((s.cursor.row, s.cursor.col), (2, 3), "{s:?}");
    assert_eq!((s.size.rows, s.size.cols), (24, 80));
    assert_eq!(s.rows.len(), 24);
    agent(&h, p.path(), &["stop", "tui"]).expect_code(0);
    h.run(&["daemon", "stop"]).expect_code(0);
}

/// A program that asks the terminal where its cursor is (as crossterm-based agents do at
/// start) gets the answer from the keeper, attached or not.
#[test]
fn a_program_asking_where_its_cursor_is_gets_an_answer() {
    let h = home();
    start(&h);
    let p = project();
    let cmd = r#"stty raw -echo; printf '\033[5;9H\033[6n'; r=$(dd bs=1 count=6 2>/dev/null | od -An -c | tr -d ' \\'); printf '\033[1;1Hanswer:%s.' "$r"; exec sleep 300"#;
    terminal_agent(&h, p.path(), "asks", cmd);
    let s = wait_for(&h, p.path(), "asks", "answer:");
    assert_eq!(s.rows[0], "answer:033[5;9R.", "{s:?}");
    agent(&h, p.path(), &["stop", "asks"]).expect_code(0);
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_resize_through_the_keeper_reaches_the_program() {
    let h = home();
    start(&h);
    let p = project();
    shell(&h, p.path(), "sh");
    typed(
        &h,
        p.path(),
        "sh",
        "trap 'echo got-winch' WINCH; echo trap-set",
    );
    wait_for(&h, p.path(), "sh", "trap-set");

    let bad = ask_keeper(&h, "sh", &Request::Resize { rows: 0, cols: 100 });
    assert!(
        matches!(
            bad,
            TerminalAnswer::Refused {
                reason: Refusal::Invalid,
                ..
            }
        ),
        "{bad:?}"
    );
    assert_eq!(
        ask_keeper(
            &h,
            "sh",
            &Request::Resize {
                rows: 40,
                cols: 100
            }
        ),
        TerminalAnswer::Resized {
            rows: 40,
            cols: 100
        }
    );
    wait_for(&h, p.path(), "sh", "got-winch");
    typed(&h, p.path(), "sh", "stty size");
    let s = wait_for(&h, p.path(), "sh", "40 100");
    assert_eq!((s.size.rows, s.size.cols), (40, 100));
    assert_eq!(s.rows.len(), 40);
    agent(&h, p.path(), &["stop", "sh"]).expect_code(0);
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn stopping_a_terminal_agent_hangs_up_its_shell_and_leaves_no_process() {
    let h = home();
    start(&h);
    let p = project();
    shell(&h, p.path(), "sh");
    let pid = pid_of(&h, p.path(), "sh");
    // A job of the interactive shell, in a process group of its own; the marker makes its
    // command line unique to this run.
    let marker = format!("307.{}", std::process::id());
    typed(
        &h,
        p.path(),
        "sh",
        &format!("sleep {marker} & echo \"job=$!\""),
    );
    let s = wait_for(&h, p.path(), "sh", "job=");
    let job: i32 = s
        .rows
        .iter()
        .find_map(|r| r.strip_prefix("job="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{s:?}"));
    assert!(alive(job));
    let keeper: serde_json::Value =
        serde_json::from_slice(&std::fs::read(keeper_dir(&h, "sh").join("state.json")).unwrap())
            .unwrap();
    let keeper_pid = keeper["keeper"]["pid"].as_i64().unwrap() as i32;

    agent(&h, p.path(), &["stop", "sh"]).expect_code(0);
    assert!(!alive(pid), "the shell");
    assert!(!alive(job), "the shell's job");
    wait_until("the keeper ends", WAIT, || !alive(keeper_pid));
    // An interactive shell ignores SIGTERM; the hangup ended it, without SIGKILL.
    let log = std::fs::read_to_string(keeper_dir(&h, "sh").join("output.log")).unwrap();
    assert!(!log.contains("sending SIGKILL"), "{log}");
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn terminal_requests_that_cannot_be_carried_out_say_why_and_what_to_do() {
    let h = home();
    start(&h);
    let p = project();
    let refused = |args: &[&str], exit: i32, code: &str, hint: &str| {
        let out = agent(&h, p.path(), args);
        out.expect_code(exit);
        let e = &out.json()["error"];
        assert_eq!(e["code"], code, "{out}");
        assert!(
            e["hint"].as_str().unwrap_or_default().contains(hint),
            "{out}"
        );
    };

    refused(
        &["screen", "ghost"],
        1,
        "agent_not_found",
        "berth agent list",
    );
    refused(
        &["input", "ghost", "x"],
        1,
        "agent_not_found",
        "berth agent list",
    );

    agent(
        &h,
        p.path(),
        &["new", "plain", "--start", "--cmd", "exec sleep 300"],
    )
    .expect_code(0);
    refused(&["screen", "plain"], 1, "not_a_terminal", "--tty");
    refused(&["input", "plain", "x"], 1, "not_a_terminal", "--tty");

    agent(
        &h,
        p.path(),
        &["new", "idle", "--tty", "--cmd", "exec bash -i"],
    )
    .expect_code(0);
    refused(
        &["screen", "idle"],
        1,
        "agent_not_running",
        "berth agent start idle",
    );
    refused(
        &["input", "idle", "x"],
        1,
        "agent_not_running",
        "berth agent start idle",
    );

    // Input that cannot be typed is refused before anything is sent: nothing, too much (as an
    // argument or on stdin), or not text.
    shell(&h, p.path(), "sh");
    let before = screen(&h, p.path(), "sh");
    refused(&["input", "sh"], 2, "invalid_input", "--enter");
    let big = "x".repeat(berth_core::terminal::MAX_INPUT_BYTES + 1);
    refused(&["input", "sh", &big], 2, "invalid_input", "split");
    let stdin_of = |bytes: &[u8]| {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), bytes).unwrap();
        let mut cmd = h.command(&["--json", "agent", "input", "sh", "-"]);
        cmd.current_dir(p.path())
            .stdin(Stdio::from(std::fs::File::open(file.path()).unwrap()));
        let o = cmd.output().unwrap();
        Outcome {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    };
    let out = stdin_of(big.as_bytes());
    out.expect_code(2);
    assert_eq!(out.json()["error"]["code"], "invalid_input");
    let out = stdin_of(b"\xff\xfe");
    out.expect_code(2);
    assert_eq!(out.json()["error"]["code"], "invalid_input");
    // The daemon refuses too much input the same way, for clients other than this CLI.
    let client = berth_client::Client::unix(h.socket());
    let req = berth_proto::AgentInput {
        repo: p.path().display().to_string(),
        name: "sh".into(),
        text: big,
        enter: false,
    };
    let e = rt()
        .block_on(client.post_json::<_, berth_proto::AgentTyped>("/v1/agents/input", &req))
        .unwrap_err();
    match e {
        berth_client::ClientError::Api { error, .. } => {
            assert_eq!(
                error.code,
                berth_proto::ErrorCode::InvalidInput,
                "{error:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        screen(&h, p.path(), "sh").rows,
        before.rows,
        "nothing was typed"
    );

    h.run(&["daemon", "stop", "--all"]).expect_code(0);
}

#[test]
fn a_log_probe_reads_a_terminal_agents_output_and_a_restart_runs_it_under_a_terminal_again() {
    let h = home();
    start(&h);
    let p = project();
    // Coloured, as such programs print it: the probe matches what the screen shows.
    let cmd = "printf 'warming up\\r\\n'; sleep 0.2; printf '\\033[1;32mready\\033[0m to serve\\r\\n'; exec sleep 300";
    agent(
        &h,
        p.path(),
        &[
            "new",
            "srv",
            "--tty",
            "--ready",
            "log:^ready to serve$",
            "--cmd",
            cmd,
        ],
    )
    .expect_code(0);
    agent(&h, p.path(), &["start", "srv"]).expect_code(0);
    wait_until("the log probe passed", WAIT, || {
        agent(&h, p.path(), &["show", "srv"]).json()["state"] == "running"
    });
    let first = pid_of(&h, p.path(), "srv");
    agent(&h, p.path(), &["restart", "srv"]).expect_code(0);
    let second = pid_of(&h, p.path(), "srv");
    assert_ne!(first, second);
    assert!(!alive(first));
    wait_for(&h, p.path(), "srv", "ready to serve");
    agent(&h, p.path(), &["stop", "srv"]).expect_code(0);
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn tty_in_berth_toml_runs_a_service_under_a_terminal() {
    let h = home();
    start(&h);
    let p = project();
    std::fs::write(
        p.path().join("berth.toml"),
        "[service.screen]\ncommand = \"printf 'term=%s' \\\"$TERM\\\"; exec sleep 300\"\ntty = true\nscrollback = 7\n",
    )
    .unwrap();
    h.run_in(p.path(), &["up"]).expect_code(0);
    let s = wait_for(&h, p.path(), "screen", "term=xterm-256color");
    assert_eq!(s.cursor.row, 0);
    let shown = agent(&h, p.path(), &["show", "screen"]).json();
    assert_eq!(shown["scrollback"], 7, "{shown}");
    h.run_in(p.path(), &["down"]).expect_code(0);
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn agent_logs_show_a_terminal_agents_lines_as_seen_and_raw_as_written() {
    let h = home();
    start(&h);
    let p = project();
    let cmd = r#"printf '\033[31mred\033[0m and \033[1mbold\033[m\n50%%\r100%%\n'; exec sleep 300"#;
    terminal_agent(&h, p.path(), "colours", cmd);
    wait_for(&h, p.path(), "colours", "100%");
    let lines = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["logs", "colours"];
        args.extend_from_slice(extra);
        let mut lines = Vec::new();
        wait_until("the log holds both lines", WAIT, || {
            let out = agent(&h, p.path(), &args);
            out.expect_code(0);
            lines = out.json()["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap().to_string())
                .collect();
            lines.iter().any(|l| l.contains("100%"))
        });
        lines
    };
    let shown = lines(&[]);
    assert!(
        shown.iter().any(|l| l.ends_with("red and bold")),
        "{shown:?}"
    );
    assert!(
        shown
            .iter()
            .any(|l| l.ends_with("100%") && !l.contains("50%")),
        "{shown:?}"
    );
    assert!(!shown.iter().any(|l| l.contains('\u{1b}')), "{shown:?}");
    let raw = lines(&["--raw"]);
    assert!(
        raw.iter().any(|l| l.contains("\u{1b}[31mred\u{1b}[0m")),
        "{raw:?}"
    );
    agent(&h, p.path(), &["stop", "colours"]).expect_code(0);
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn scrollback_is_configurable_per_agent_and_bounded() {
    let h = home();
    start(&h);
    let p = project();
    agent(
        &h,
        p.path(),
        &[
            "new",
            "short",
            "--tty",
            "--scrollback",
            "5",
            "--start",
            "--cmd",
            "for i in $(seq 1 40); do echo line-$i; done; exec sleep 600",
        ],
    )
    .expect_code(0);
    let s = wait_for(&h, p.path(), "short", "line-40");
    let out = agent(&h, p.path(), &["screen", "short", "--scrollback", "100"]);
    let all: TerminalScreen = serde_json::from_value(out.json()).unwrap();
    assert_eq!(all.scrollback_lines, 5, "{all:?}");
    // 40 lines and the empty one the cursor is on, on 24 rows: lines 1..=17 scrolled off, and
    // only the newest 5 of those are kept.
    assert_eq!(
        all.scrollback,
        ["line-13", "line-14", "line-15", "line-16", "line-17"]
    );
    assert_eq!(s.rows[0], "line-18");
    let shown = agent(&h, p.path(), &["show", "short"]).json();
    assert_eq!(shown["scrollback"], 5, "{shown}");

    // Scrollback is for terminal agents, and bounded.
    let out = agent(
        &h,
        p.path(),
        &["new", "plain", "--scrollback", "5", "--cmd", "x"],
    );
    out.expect_code(2);
    let out = agent(
        &h,
        p.path(),
        &[
            "new",
            "huge",
            "--tty",
            "--scrollback",
            "100001",
            "--cmd",
            "x",
        ],
    );
    assert_eq!(out.json()["error"]["code"], "invalid_agent", "{out}");
    assert!(out.stdout.contains("at most 100000"), "{out}");
    h.run(&["daemon", "stop", "--all"]).expect_code(0);
}
