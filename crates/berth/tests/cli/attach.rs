//! `berth attach`, driven as a person would: tmux runs it in a window of its own, `send-keys`
//! types, `capture-pane` reads what is drawn. Real shells and vim under the keeper's terminal,
//! the real daemon in between; and the WebSocket itself, sent what a client may not send.

use std::path::Path;
use std::time::Duration;

use berth_client::Client;
use berth_proto::{AttachEvent, AttachQuery, Frame};
use berth_testkit::{TestHome, Tmux, alive};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::terminal::{
    agent, keeper_pid, pid_of, project, screen, shell, shows, terminal_agent, typed, wait_for,
};
use crate::{home, rt, start};

/// `berth attach ARGS` in window `win`; afterwards the window waits for Return, then prints
/// the terminal's modes that raw mode changes, so a test can see they were put back.
pub fn attach(t: &Tmux, h: &TestHome, repo: &Path, win: &str, args: &[&str]) {
    let mut all = vec!["attach"];
    all.extend_from_slice(args);
    let script = format!(
        "{}; echo EXIT=$?; read -r _; stty -a | tr ' ;' '\\n\\n' | grep -x -e -*icanon -e -*echo; echo MODES-END",
        Tmux::berth(h, repo, &all)
    );
    t.open(win, 100, 30, &script);
}

/// After `berth attach` ended in `win`: Return (which reaches `read` only if the terminal is
/// back in its usual mode), then the modes are the usual ones.
#[track_caller]
pub fn terminal_put_back(t: &Tmux, win: &str) {
    t.keys(win, &["Enter"]);
    let shown = t.wait_for(win, "MODES-END");
    assert!(
        shown.contains("\nicanon\n") && shown.contains("\necho\n"),
        "canonical mode and echo are back: {shown}"
    );
}

fn state(h: &TestHome, repo: &Path, name: &str) -> String {
    agent(h, repo, &["show", name]).json()["state"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn attach_types_into_a_shell_draws_what_it_prints_and_detaches_leaving_it_running() {
    let h = home();
    start(&h);
    let p = project();
    shell(&h, p.path(), "sh");
    typed(&h, p.path(), "sh", "echo before-attach");
    wait_for(&h, p.path(), "sh", "before-attach");

    let t = Tmux::start();
    attach(&t, &h, p.path(), "a", &["sh"]);
    // The screen as it was, drawn at once: not a replay of the log.
    t.wait_for("a", "before-attach");
    t.type_text("a", "echo v=$((6*7))");
    t.keys("a", &["Enter"]);
    t.wait_for("a", "v=42");
    // Typed from elsewhere: drawn live.
    typed(&h, p.path(), "sh", "echo from-outside");
    t.wait_for("a", "\nfrom-outside\n");
    // berth lent the keeper its terminal: the keeper has the window's terminal open.
    let pane = t.run(&["display-message", "-p", "-t", "a", "#{pane_tty}"]);
    let keeper = keeper_pid(&h, "sh");
    let holds = || {
        std::fs::read_dir(format!("/proc/{keeper}/fd"))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
            .any(|target| target == Path::new(pane.trim()))
    };
    assert!(holds(), "the keeper does not hold {pane}");

    t.keys("a", &["C-\\"]);
    let shown = t.wait_for("a", "EXIT=0");
    // Let go of at the detach key.
    assert!(!holds(), "the keeper still holds {pane}");
    assert!(
        shown.contains("detached from sh (ctrl-\\); it keeps running"),
        "{shown}"
    );
    // The screen berth drew on is gone: what was there before came back.
    assert!(!shown.contains("v=42"), "{shown}");
    terminal_put_back(&t, "a");
    assert_eq!(state(&h, p.path(), "sh"), "running");
    h.run(&["daemon", "stop", "--all"]).expect_code(0);
}

#[test]
fn vim_is_redrawn_on_attach_follows_the_window_and_its_exit_ends_the_attach() {
    let h = home();
    start(&h);
    let p = project();
    let file = p.path().join("notes.txt");
    std::fs::write(&file, "alpha\nbeta\ngamma\n").unwrap();
    let cmd = format!("exec vim -u NONE -N -n {}", file.display());
    terminal_agent(&h, p.path(), "vim", &cmd);
    wait_for(&h, p.path(), "vim", "gamma");

    let t = Tmux::start();
    attach(&t, &h, p.path(), "v", &["vim"]);
    // (Waited for whole: the screen is drawn as vim redraws it for the window's size, and a
    // capture may come between two drawings.)
    let shown = t.wait_until("v", "vim drawn at the window's size", |s| {
        s.contains("alpha\nbeta\ngamma\n~")
            && s.lines().count() >= 28
            && s.lines().filter(|l| *l == "~").count() >= 20
    });
    assert!(shown.lines().filter(|l| *l == "~").count() >= 20, "{shown}");
    // The terminal took the window's size.
    let s = screen(&h, p.path(), "vim");
    assert_eq!((s.size.rows, s.size.cols), (30, 100), "{s:?}");

    // The window shrinks: the program gets SIGWINCH and redraws for the new size.
    t.resize("v", 60, 12);
    berth_testkit::wait_until(
        "the terminal follows the window",
        Duration::from_secs(20),
        || {
            let s = screen(&h, p.path(), "vim");
            (s.size.rows, s.size.cols) == (12, 60)
        },
    );
    t.wait_until("v", "vim redrawn in 12 rows", |s| {
        s.starts_with("alpha\nbeta\ngamma\n~") && s.lines().filter(|l| *l == "~").count() <= 9
    });

    t.type_text("v", ":q!");
    t.keys("v", &["Enter"]);
    let shown = t.wait_for("v", "EXIT=0");
    assert!(shown.contains("vim exited with exit code 0"), "{shown}");
    terminal_put_back(&t, "v");
    berth_testkit::wait_until("the agent has exited", Duration::from_secs(20), || {
        state(&h, p.path(), "vim") == "exited"
    });
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_detach_key_of_ones_own_and_keys_that_are_not_it() {
    let h = home();
    start(&h);
    let p = project();
    shell(&h, p.path(), "sh");
    let t = Tmux::start();
    attach(&t, &h, p.path(), "a", &["sh", "--detach-key", "ctrl-]"]);
    t.wait_for("a", "$");
    // The default key is an ordinary key now: it reaches the shell (which ignores SIGQUIT).
    t.keys("a", &["C-\\"]);
    t.type_text("a", "echo still-here");
    t.keys("a", &["Enter"]);
    t.wait_for("a", "\nstill-here\n");
    t.keys("a", &["C-]"]);
    let shown = t.wait_for("a", "EXIT=0");
    assert!(shown.contains("detached from sh (ctrl-])"), "{shown}");
    terminal_put_back(&t, "a");
    assert_eq!(state(&h, p.path(), "sh"), "running");
    h.run(&["daemon", "stop", "--all"]).expect_code(0);
}

#[test]
fn two_clients_at_once_and_one_that_only_watches() {
    let h = home();
    start(&h);
    let p = project();
    shell(&h, p.path(), "sh");
    let t = Tmux::start();
    attach(&t, &h, p.path(), "typing", &["sh"]);
    attach(&t, &h, p.path(), "watching", &["sh", "--read-only"]);
    t.wait_for("typing", "$");
    t.wait_for("watching", "$");

    t.type_text("watching", "echo nope");
    t.keys("watching", &["Enter"]);
    t.type_text("typing", "echo both-see");
    t.keys("typing", &["Enter"]);
    t.wait_for("typing", "\nboth-see\n");
    let watched = t.wait_for("watching", "\nboth-see\n");
    assert!(!watched.contains("nope"), "{watched}");
    assert!(
        !shows(&screen(&h, p.path(), "sh"), "nope"),
        "a read-only client's keys went nowhere"
    );

    t.keys("watching", &["C-\\"]);
    t.wait_for("watching", "EXIT=0");
    // The other client is still attached.
    t.type_text("typing", "echo after-one-left");
    t.keys("typing", &["Enter"]);
    t.wait_for("typing", "\nafter-one-left\n");
    h.run(&["daemon", "stop", "--all"]).expect_code(0);
}

#[test]
fn the_daemon_killed_while_attached_then_attach_again_finds_the_same_shell() {
    let h = home();
    start(&h);
    let p = project();
    shell(&h, p.path(), "sh");
    let pid = pid_of(&h, p.path(), "sh");
    let t = Tmux::start();
    attach(&t, &h, p.path(), "a", &["sh"]);
    t.wait_for("a", "$");
    t.type_text("a", "X=kept; echo set-$X");
    t.keys("a", &["Enter"]);
    t.wait_for("a", "\nset-kept\n");

    h.signal_daemon(libc::SIGKILL);
    let shown = t.wait_for("a", "EXIT=3");
    assert!(
        shown.contains("the daemon went away; sh keeps running"),
        "{shown}"
    );
    assert!(shown.contains("berth daemon start"), "{shown}");
    terminal_put_back(&t, "a");
    assert!(alive(pid), "the shell outlived the daemon");

    start(&h);
    attach(&t, &h, p.path(), "b", &["sh"]);
    // The screen is as it was, and so is the shell's state.
    t.wait_for("b", "\nset-kept\n");
    t.type_text("b", "echo again-$X");
    t.keys("b", &["Enter"]);
    t.wait_for("b", "\nagain-kept\n");
    assert_eq!(pid_of(&h, p.path(), "sh"), pid);
    h.run(&["daemon", "stop", "--all"]).expect_code(0);
}

#[test]
fn a_daemon_that_stops_says_so_to_attached_clients_and_leaves_the_program_running() {
    let h = home();
    start(&h);
    let p = project();
    shell(&h, p.path(), "sh");
    let pid = pid_of(&h, p.path(), "sh");
    let t = Tmux::start();
    attach(&t, &h, p.path(), "a", &["sh"]);
    t.wait_for("a", "$");
    h.run(&["daemon", "stop"]).expect_code(0);
    let shown = t.wait_for("a", "EXIT=3");
    assert!(
        shown.contains("the daemon is stopping; sh keeps running"),
        "{shown}"
    );
    terminal_put_back(&t, "a");
    assert!(alive(pid));
    start(&h);
    h.run(&["daemon", "stop", "--all"]).expect_code(0);
}

/// The pid of the process that window `win`'s shell runs (its only child).
fn child_of_window(t: &Tmux, win: &str) -> i32 {
    let shell: i32 = t
        .run(&["list-panes", "-t", win, "-F", "#{pane_pid}"])
        .trim()
        .parse()
        .unwrap();
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
    children.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn berth_killed_while_attached_still_puts_the_terminal_back() {
    let h = home();
    start(&h);
    let p = project();
    shell(&h, p.path(), "sh");
    let t = Tmux::start();
    attach(&t, &h, p.path(), "a", &["sh"]);
    t.wait_for("a", "$");
    let berth = child_of_window(&t, "a");
    // SAFETY: kill(2) with a pid read from /proc.
    assert_eq!(unsafe { libc::kill(berth, libc::SIGKILL) }, 0);
    // (What the window's shell printed meanwhile went to the alternate screen the guard then
    // left, so only the guard's word is certain to be seen.)
    t.wait_for("a", "it is restored now");
    terminal_put_back(&t, "a");
    assert_eq!(state(&h, p.path(), "sh"), "running");
    h.run(&["daemon", "stop", "--all"]).expect_code(0);
}

#[test]
fn closing_the_terminal_detaches_and_the_program_keeps_running() {
    let h = home();
    start(&h);
    let p = project();
    shell(&h, p.path(), "sh");
    let t = Tmux::start();
    attach(&t, &h, p.path(), "a", &["sh"]);
    t.wait_for("a", "$");
    let berth = child_of_window(&t, "a");
    // The window goes away: its terminal hangs up.
    t.run(&["kill-window", "-t", "a"]);
    berth_testkit::wait_until("berth attach has ended", Duration::from_secs(20), || {
        !alive(berth)
    });
    assert_eq!(state(&h, p.path(), "sh"), "running");
    typed(&h, p.path(), "sh", "echo still-there");
    wait_for(&h, p.path(), "sh", "still-there");
    h.run(&["daemon", "stop", "--all"]).expect_code(0);
}

#[test]
fn attaching_to_what_cannot_be_attached_to_says_why_and_what_to_do() {
    let h = home();
    start(&h);
    let p = project();
    agent(
        &h,
        p.path(),
        &["new", "plain", "--cmd", "sleep 600", "--start"],
    )
    .expect_code(0);
    agent(&h, p.path(), &["new", "stopped", "--tty", "--cmd", "sh"]).expect_code(0);
    let t = Tmux::start();
    let cases = [
        (
            "nobody",
            "no agent nobody in this project",
            "berth agent list",
        ),
        (
            "plain",
            "agent plain does not run under a terminal",
            "--tty",
        ),
        (
            "stopped",
            "agent stopped is not running",
            "berth agent start stopped",
        ),
    ];
    for (name, says, hint) in cases {
        attach(&t, &h, p.path(), name, &[name]);
        let shown = t.wait_for(name, "EXIT=");
        assert!(shown.contains(says) && shown.contains(hint), "{shown}");
        assert!(shown.contains("EXIT=1"), "{shown}");
        terminal_put_back(&t, name);
    }

    // Before anything else: a detach key that cannot be, and no terminal at all.
    let out = h.run_in(p.path(), &["attach", "plain", "--detach-key", "ctrl-["]);
    out.expect_code(2);
    assert!(out.stderr.contains("Escape"), "{out}");
    let out = h.run_in(p.path(), &["--json", "attach", "plain"]);
    out.expect_code(2);
    assert_eq!(out.json()["error"]["code"], "not_a_terminal", "{out}");
    assert!(out.stdout.contains("berth agent screen plain"), "{out}");
    h.run(&["daemon", "stop", "--all"]).expect_code(0);
}

/// A daemon started by an older berth, without the handover route: every request is answered
/// as an unknown endpoint.
fn outdated_daemon(socket: &Path) -> std::thread::JoinHandle<()> {
    use std::io::{Read, Write};
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let body = r#"{"error":{"code":"not_found","message":"no such endpoint"}}"#;
        let answer = format!(
            "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = conn.write_all(answer.as_bytes());
    })
}

#[test]
fn a_daemon_from_an_older_berth_is_named_as_such_with_what_to_do() {
    let h = home();
    let p = project();
    let server = outdated_daemon(&h.path().join("run/berth.sock"));
    let t = Tmux::start();
    attach(&t, &h, p.path(), "old", &["shell"]);
    let shown = t.wait_for("old", "EXIT=");
    assert!(shown.contains("older berth"), "{shown}");
    assert!(shown.contains("berth daemon restart"), "{shown}");
    assert!(shown.contains("EXIT=1"), "{shown}");
    terminal_put_back(&t, "old");
    server.join().unwrap();
}

/// Reads messages until the daemon closes the connection; its close code and reason.
async fn closed_with(ws: &mut berth_client::AttachStream) -> (u16, String) {
    while let Some(msg) = ws.next().await {
        if let Message::Close(Some(frame)) = msg.unwrap() {
            return (frame.code.into(), frame.reason.to_string());
        }
    }
    panic!("the connection ended without a close frame");
}

#[test]
fn what_a_client_may_not_send_closes_its_connection_and_leaves_the_agent_alone() {
    let h = home();
    start(&h);
    let p = project();
    shell(&h, p.path(), "sh");
    let pid = pid_of(&h, p.path(), "sh");
    let client = Client::unix(h.socket());
    let query = AttachQuery {
        repo: p.path().display().to_string(),
        name: "sh".into(),
        read_only: false,
        rows: None,
        cols: None,
    };
    let rt = rt();
    rt.block_on(async {
        // The first message says what the client attached to.
        let mut ws = client.attach(&query).await.unwrap();
        let Some(Ok(Message::Text(first))) = ws.next().await else {
            panic!("no attached event first");
        };
        let first: AttachEvent = serde_json::from_str(first.as_str()).unwrap();
        assert_eq!(
            first,
            AttachEvent::Attached {
                rows: 24,
                cols: 80,
                read_only: false,
                takes_terminal: true
            }
        );
        ws.send(Message::Text("garbage".into())).await.unwrap();
        let (code, reason) = closed_with(&mut ws).await;
        assert_eq!(code, 1008);
        assert!(reason.contains("not an attach message"), "{reason}");

        let mut ws = client.attach(&query).await.unwrap();
        ws.send(Message::Binary(vec![b'x'; 70_000].into()))
            .await
            .unwrap();
        let (code, reason) = closed_with(&mut ws).await;
        assert_eq!(code, 1009);
        assert!(reason.contains("more than one input may type"), "{reason}");

        let mut ws = client.attach(&query).await.unwrap();
        let resize = r#"{"resize":{"rows":0,"cols":80}}"#;
        ws.send(Message::Text(resize.into())).await.unwrap();
        let (code, reason) = closed_with(&mut ws).await;
        assert_eq!(code, 1008);
        assert!(reason.contains("not possible"), "{reason}");

        // Refused before the upgrade, with the error envelope: a size with one side only, and
        // a request that is not a WebSocket.
        let half = AttachQuery {
            rows: Some(30),
            ..query.clone()
        };
        let e = client.attach(&half).await.unwrap_err().to_string();
        assert!(e.contains("rows and cols together"), "{e}");
        let path = format!("/v1/agents/attach?repo={}&name=sh", p.path().display());
        let plain = client
            .request(hyper::Method::GET, &path, None)
            .await
            .unwrap();
        assert_eq!(plain.status.as_u16(), 426);
        let body: serde_json::Value = serde_json::from_slice(&plain.body).unwrap();
        assert_eq!(body["error"]["code"], "bad_request", "{body}");
    });

    // The shell is the same and still takes input.
    assert_eq!(pid_of(&h, p.path(), "sh"), pid);
    typed(&h, p.path(), "sh", "echo unharmed");
    wait_for(&h, p.path(), "sh", "unharmed");
    h.run(&["daemon", "stop", "--all"]).expect_code(0);
}

/// Frames from a handed-over keeper stream until it ends (or 10 s pass): the frames, and
/// whether it ended.
fn frames_until_end(
    conn: &mut std::os::unix::net::UnixStream,
    mut buf: Vec<u8>,
) -> (Vec<Frame>, bool) {
    use std::io::Read;
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut frames = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        while let Ok(Some((frame, used))) = Frame::decode(&buf) {
            buf.drain(..used);
            frames.push(frame);
        }
        match conn.read(&mut chunk) {
            Ok(0) => return (frames, true),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return (frames, false),
        }
    }
}

fn send_frame(conn: &mut std::os::unix::net::UnixStream, frame: &Frame) {
    use std::io::Write;
    let mut wire = Vec::new();
    frame.encode(&mut wire);
    conn.write_all(&wire).unwrap();
}

#[test]
fn a_handed_over_stream_is_checked_by_the_keeper_itself_and_refusals_come_first() {
    use std::io::Write;
    let h = home();
    start(&h);
    let p = project();
    shell(&h, p.path(), "sh");
    let pid = pid_of(&h, p.path(), "sh");
    let client = Client::unix(h.socket());
    let query = AttachQuery {
        repo: p.path().display().to_string(),
        name: "sh".into(),
        read_only: true,
        rows: Some(30),
        cols: Some(100),
    };
    let rt = rt();

    // Refused before the upgrade, as JSON errors, like the WebSocket.
    let nobody = AttachQuery {
        name: "nobody".into(),
        ..query.clone()
    };
    let e = rt.block_on(client.handover(&nobody)).unwrap_err();
    assert!(
        matches!(&e, berth_client::ClientError::Api { error, .. } if error.code == berth_proto::ErrorCode::AgentNotFound),
        "{e}"
    );
    let half = AttachQuery {
        cols: None,
        ..query.clone()
    };
    let e = rt.block_on(client.handover(&half)).unwrap_err().to_string();
    assert!(e.contains("rows and cols together"), "{e}");
    let path = format!(
        "{}?repo={}&name=sh",
        berth_proto::HANDOVER_PATH,
        p.path().display()
    );
    let plain = rt
        .block_on(client.request(hyper::Method::GET, &path, None))
        .unwrap();
    assert_eq!(plain.status.as_u16(), 426);

    // A read-only stream: the keeper takes neither its keys nor its size, whoever holds it.
    let mut watcher = rt.block_on(client.handover(&query)).unwrap();
    let mut first = watcher.unread.clone();
    while Frame::decode(&first).unwrap().is_none() {
        use std::io::Read;
        let mut chunk = [0u8; 4096];
        let n = watcher.keeper.read(&mut chunk).unwrap();
        first.extend_from_slice(&chunk[..n]);
    }
    let (frame, _) = Frame::decode(&first).unwrap().unwrap();
    assert_eq!(
        frame,
        Frame::Event(AttachEvent::Attached {
            rows: 24,
            cols: 80,
            read_only: true,
            takes_terminal: true
        })
    );
    send_frame(
        &mut watcher.keeper,
        &Frame::Input(b"echo sneaked-$((6*7))\r".to_vec()),
    );
    send_frame(
        &mut watcher.keeper,
        &Frame::Control(berth_proto::AttachControl::Resize {
            rows: 30,
            cols: 100,
        }),
    );
    std::thread::sleep(Duration::from_millis(300));
    typed(&h, p.path(), "sh", "echo after-$((6*7))");
    let shown = wait_for(&h, p.path(), "sh", "after-42");
    assert!(!shows(&shown, "sneaked-42"), "{:?}", shown.rows);
    assert_eq!((shown.size.rows, shown.size.cols), (24, 80));

    // A writable stream sent what a client may not send: the keeper ends that connection.
    let writable = AttachQuery {
        read_only: false,
        rows: None,
        cols: None,
        ..query.clone()
    };
    let not_frames: [&[u8]; 3] = [
        b"garbage",
        // An input frame longer than any may be.
        &[3, 0xff, 0xff, 0xff, 0xff],
        // Output, which only the keeper sends.
        &[1, 0, 0, 0, 1, b'x'],
    ];
    for bad in not_frames {
        let mut handed = rt.block_on(client.handover(&writable)).unwrap();
        handed.keeper.write_all(bad).unwrap();
        let unread = std::mem::take(&mut handed.unread);
        let (_, ended) = frames_until_end(&mut handed.keeper, unread);
        assert!(ended, "the keeper ended the connection after {bad:?}");
    }
    // Keys over the limit are not typed; the connection goes on.
    let mut handed = rt.block_on(client.handover(&writable)).unwrap();
    send_frame(&mut handed.keeper, &Frame::Input(vec![b'x'; 70_000]));
    send_frame(
        &mut handed.keeper,
        &Frame::Input(b"echo typed-$((6*7))\r".to_vec()),
    );
    wait_for(&h, p.path(), "sh", "typed-42");
    assert!(!shows(&screen(&h, p.path(), "sh"), "xxxxxxxx"));

    // The program is the same, and still takes input.
    assert_eq!(pid_of(&h, p.path(), "sh"), pid);
    typed(&h, p.path(), "sh", "echo unharmed");
    wait_for(&h, p.path(), "sh", "unharmed");
    drop((watcher, handed));
    h.run(&["daemon", "stop", "--all"]).expect_code(0);
}
