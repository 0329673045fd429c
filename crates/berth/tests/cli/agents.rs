//! Agents end to end: workspaces, keepers, stop, and re-adoption across daemon restarts.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_testkit::{TestHome, alive, git, repo, wait_until};

use crate::{home, start};

fn project() -> tempfile::TempDir {
    repo(&[("README", "hi\n")])
}

fn agent(h: &TestHome, repo: &Path, args: &[&str]) -> berth_testkit::Outcome {
    let mut all = vec!["--json", "agent"];
    all.extend_from_slice(args);
    h.run_in(repo, &all)
}

fn pid_of(h: &TestHome, repo: &Path, name: &str) -> Option<i32> {
    agent(h, repo, &["show", name]).json()["pid"]
        .as_i64()
        .map(|p| p as i32)
}

#[test]
fn new_start_stop_an_agent_in_its_own_workspace() {
    let h = home();
    start(&h);
    let p = project();
    let created = agent(
        &h,
        p.path(),
        &["new", "fixer", "--cmd", "pwd > where.txt; exec sleep 300"],
    );
    created.expect_code(0);
    let info = created.json();
    assert_eq!(info["state"], "stopped");
    assert_eq!(info["branch"], "berth/fixer");
    let ws = info["workspace"].as_str().unwrap().to_string();
    assert_eq!(
        git(Path::new(&ws), &["symbolic-ref", "--short", "HEAD"]),
        "berth/fixer"
    );
    assert_eq!(
        git(p.path(), &["rev-parse", "berth/fixer"]),
        git(p.path(), &["rev-parse", "HEAD"])
    );

    agent(&h, p.path(), &["start", "fixer"]).expect_code(0);
    let pid = pid_of(&h, p.path(), "fixer").expect("running agents have a pid");
    assert!(alive(pid));
    wait_until("it wrote where it runs", Duration::from_secs(10), || {
        Path::new(&ws).join("where.txt").exists()
    });
    assert_eq!(
        std::fs::read_to_string(Path::new(&ws).join("where.txt"))
            .unwrap()
            .trim(),
        ws
    );

    let stopped = agent(&h, p.path(), &["stop", "fixer"]);
    stopped.expect_code(0);
    assert_eq!(stopped.json()["state"], "stopped");
    assert!(!alive(pid));
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn an_agent_outlives_a_killed_daemon_and_is_readopted() {
    let h = home();
    start(&h);
    let p = project();
    agent(
        &h,
        p.path(),
        &["new", "durable", "--cmd", "exec sleep 300", "--start"],
    )
    .expect_code(0);
    let pid = pid_of(&h, p.path(), "durable").unwrap();
    h.signal_daemon(libc::SIGKILL);
    assert!(alive(pid), "the agent survived the daemon");
    start(&h);
    let info = agent(&h, p.path(), &["show", "durable"]).json();
    assert_eq!(info["state"], "running", "{info}");
    assert_eq!(info["pid"], pid, "the same process, re-adopted");
    let events = h.run(&["--json", "events"]).stdout;
    assert!(events.contains("agent.adopted"), "{events}");
    agent(&h, p.path(), &["stop", "durable"]).expect_code(0);
    assert!(!alive(pid));
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn an_agent_killed_while_the_daemon_is_down_is_lost() {
    let h = home();
    start(&h);
    let p = project();
    agent(
        &h,
        p.path(),
        &["new", "fragile", "--cmd", "exec sleep 300", "--start"],
    )
    .expect_code(0);
    let pid = pid_of(&h, p.path(), "fragile").unwrap();
    let keeper: serde_json::Value = {
        let dir = std::fs::read_dir(h.path().join("agents"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        serde_json::from_slice(&std::fs::read(dir.join("fragile/state.json")).unwrap()).unwrap()
    };
    let keeper_pid = keeper["keeper"]["pid"].as_i64().unwrap() as i32;
    h.run(&["daemon", "stop"]).expect_code(0);
    // SAFETY: kill(2) on processes this test started.
    unsafe {
        libc::kill(keeper_pid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
    wait_until("both are gone", Duration::from_secs(10), || {
        !alive(pid) && !alive(keeper_pid)
    });
    start(&h);
    assert_eq!(
        agent(&h, p.path(), &["show", "fragile"]).json()["state"],
        "lost"
    );
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_crashing_agent_with_on_failure_goes_to_backoff() {
    let h = home();
    start(&h);
    let p = project();
    agent(
        &h,
        p.path(),
        &[
            "new",
            "crashy",
            "--cmd",
            "exit 3",
            "--restart",
            "on-failure",
            "--start",
        ],
    )
    .expect_code(0);
    wait_until("the crash is noticed", Duration::from_secs(10), || {
        let info = agent(&h, p.path(), &["show", "crashy"]).json();
        info["exit_code"] == 3 && (info["state"] == "backoff" || info["state"] == "running")
    });
    agent(&h, p.path(), &["stop", "crashy"]).expect_code(0);
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn bad_input_is_refused_before_any_side_effect() {
    let h = home();
    start(&h);
    let p = project();
    for (args, code) in [
        (vec!["new", "Bad/Name", "--cmd", "true"], "invalid_agent"),
        (vec!["new", "ok", "--restart", "sometimes"], "invalid_agent"),
        (vec!["new", "ok", "--base", "no-such-ref"], "invalid_agent"),
        (vec!["new", "ok", "--start"], "invalid_agent"),
        (vec!["start", "ghost"], "agent_not_found"),
    ] {
        let out = agent(&h, p.path(), &args);
        assert_eq!(out.json()["error"]["code"], code, "{args:?}: {out}");
    }
    assert!(
        !h.path().join("workspaces").exists()
            || std::fs::read_dir(h.path().join("workspaces"))
                .unwrap()
                .flatten()
                .all(|d| std::fs::read_dir(d.path()).unwrap().next().is_none())
    );
    assert_eq!(
        git(
            p.path(),
            &["for-each-ref", "refs/berth/", "refs/heads/berth/"]
        ),
        ""
    );
    agent(&h, p.path(), &["new", "twice"]).expect_code(0);
    assert_eq!(
        agent(&h, p.path(), &["new", "twice"]).json()["error"]["code"],
        "agent_exists"
    );
    let started = agent(&h, p.path(), &["start", "twice"]);
    assert_eq!(
        started.json()["error"]["code"],
        "invalid_agent",
        "no command: {started}"
    );
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn logs_exec_and_restart() {
    let h = home();
    start(&h);
    let p = project();
    agent(
        &h,
        p.path(),
        &[
            "new",
            "talker",
            "--cmd",
            "echo hello from $BERTH_AGENT; exec sleep 300",
            "--start",
        ],
    )
    .expect_code(0);
    wait_until("the output is logged", Duration::from_secs(10), || {
        agent(&h, p.path(), &["logs", "talker"])
            .stdout
            .contains("out| hello from talker")
    });
    let mut exec = h.command(&["agent", "exec", "talker", "--", "sh", "-c", "pwd; exit 5"]);
    exec.current_dir(p.path());
    let out = h.run_cmd(exec);
    out.expect_code(5);
    let ws = agent(&h, p.path(), &["show", "talker"]).json()["workspace"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(out.stdout.trim(), ws);
    let before = pid_of(&h, p.path(), "talker").unwrap();
    agent(&h, p.path(), &["restart", "talker"]).expect_code(0);
    let after = pid_of(&h, p.path(), "talker").unwrap();
    assert_ne!(before, after);
    assert!(!alive(before) && alive(after));
    agent(&h, p.path(), &["stop", "talker"]).expect_code(0);
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn rm_refuses_to_lose_work_and_force_keeps_a_snapshot() {
    let h = home();
    start(&h);
    let p = project();
    let ws = agent(&h, p.path(), &["new", "worker"]).json()["workspace"]
        .as_str()
        .unwrap()
        .to_string();
    let ws = Path::new(&ws);
    std::fs::write(ws.join("README"), "changed by the agent\n").unwrap();
    std::fs::write(ws.join("new.txt"), "untracked work\n").unwrap();
    let refused = agent(&h, p.path(), &["rm", "worker"]);
    refused.expect_code(4);
    assert_eq!(refused.json()["error"]["code"], "unsaved_work");
    assert!(ws.join("new.txt").exists(), "nothing was removed");

    let removed = agent(&h, p.path(), &["rm", "worker", "--force"]);
    removed.expect_code(0);
    let id = removed.json()["snapshot"].as_str().unwrap().to_string();
    assert!(!ws.exists());
    let keep_alive = Command::new("git")
        .current_dir(p.path())
        .args(["rev-parse", "--verify", "-q", "refs/berth/agents/worker"])
        .output()
        .unwrap();
    assert!(
        !keep_alive.status.success(),
        "the keep-alive ref is gone with the agent"
    );
    // The work is in the project as a snapshot, and the branch stays.
    let mut show = h.command(&["stash", "show", &id]);
    show.current_dir(p.path());
    let shown = h.run_cmd(show);
    assert!(
        shown.stdout.contains("M README") && shown.stdout.contains("A new.txt"),
        "{shown}"
    );
    git(p.path(), &["rev-parse", "berth/worker"]);
    assert_eq!(
        agent(&h, p.path(), &["list"]).json()["agents"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // A clean agent whose commits are on its mirrored branch goes without --force.
    let ws2 = agent(&h, p.path(), &["new", "tidy"]).json()["workspace"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(Path::new(&ws2).join("done.txt"), "x\n").unwrap();
    git(Path::new(&ws2), &["add", "."]);
    git(
        Path::new(&ws2),
        &[
            "-c",
            "user.name=A",
            "-c",
            "user.email=a@e",
            "commit",
            "-q",
            "-m",
            "agent commit",
        ],
    );
    agent(&h, p.path(), &["rm", "tidy"]).expect_code(0);
    assert_eq!(
        git(p.path(), &["log", "-1", "--format=%s", "berth/tidy"]),
        "agent commit"
    );
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn commits_are_mirrored_when_the_agent_stops_and_a_moved_branch_is_left_alone() {
    let h = home();
    start(&h);
    let p = project();
    let cmd = "echo work > work.txt && git add work.txt && git -c user.name=A -c user.email=a@e commit -q -m 'agent work' && exec sleep 300";
    agent(&h, p.path(), &["new", "committer", "--cmd", cmd, "--start"]).expect_code(0);
    let ws = agent(&h, p.path(), &["show", "committer"]).json()["workspace"]
        .as_str()
        .unwrap()
        .to_string();
    wait_until("the agent committed", Duration::from_secs(10), || {
        git(Path::new(&ws), &["log", "-1", "--format=%s"]) == "agent work"
    });
    agent(&h, p.path(), &["stop", "committer"]).expect_code(0);
    wait_until("the commit is mirrored", Duration::from_secs(10), || {
        git(p.path(), &["log", "-1", "--format=%s", "berth/committer"]) == "agent work"
    });

    // The user moves the branch; the agent commits again; berth leaves the user's branch alone.
    git(p.path(), &["branch", "-f", "berth/committer", "main"]);
    std::fs::write(Path::new(&ws).join("more.txt"), "more\n").unwrap();
    git(Path::new(&ws), &["add", "."]);
    git(
        Path::new(&ws),
        &[
            "-c",
            "user.name=A",
            "-c",
            "user.email=a@e",
            "commit",
            "-q",
            "-m",
            "more work",
        ],
    );
    agent(&h, p.path(), &["start", "committer"]).expect_code(0);
    agent(&h, p.path(), &["stop", "committer"]).expect_code(0);
    wait_until(
        "the mirror notices the move",
        Duration::from_secs(10),
        || {
            h.run(&["--json", "events"])
                .stdout
                .contains("you moved berth/committer")
        },
    );
    assert_eq!(
        git(p.path(), &["rev-parse", "berth/committer"]),
        git(p.path(), &["rev-parse", "main"])
    );
    let events = h.run(&["--json", "events"]).stdout;
    assert!(
        events.contains("agent.mirror_stopped") && events.contains("you moved berth/committer"),
        "{events}"
    );
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_keeper_that_cannot_start_its_child_is_reported_at_once() {
    let h = home();
    start(&h);
    let p = project();
    let ws = agent(&h, p.path(), &["new", "homeless", "--cmd", "true"]).json()["workspace"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_dir_all(&ws).unwrap();
    let began = std::time::Instant::now();
    let out = agent(&h, p.path(), &["start", "homeless"]);
    out.expect_code(1);
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "took {:?}",
        began.elapsed()
    );
    assert!(out.stdout.contains("cannot start"), "{out}");
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn daemon_stop_all_stops_the_agents_too() {
    let h = home();
    start(&h);
    let p = project();
    agent(
        &h,
        p.path(),
        &["new", "one", "--cmd", "exec sleep 300", "--start"],
    )
    .expect_code(0);
    agent(
        &h,
        p.path(),
        &["new", "two", "--cmd", "exec sleep 300", "--start"],
    )
    .expect_code(0);
    let pids: Vec<i32> = ["one", "two"]
        .iter()
        .map(|n| pid_of(&h, p.path(), n).unwrap())
        .collect();
    h.run(&["daemon", "stop", "--all"]).expect_code(0);
    for pid in pids {
        assert!(!alive(pid), "agent {pid} outlived `daemon stop --all`");
    }
    // Not re-adopted as running when the daemon comes back: they were stopped on purpose.
    start(&h);
    assert_eq!(
        agent(&h, p.path(), &["show", "one"]).json()["state"],
        "stopped"
    );
    h.run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_daemon_whose_binary_was_replaced_on_disk_still_starts_agents() {
    // An upgrade in place: the file the daemon was started from is replaced while it runs.
    let bins = tempfile::tempdir().unwrap();
    let bin = bins.path().join("berth");
    std::fs::copy(env!("CARGO_BIN_EXE_berth"), &bin).unwrap();
    let h = home();
    // The daemon from the copy; every other command from the binary under test. A test
    // thread that forks while the copy is still open for writing holds it open a moment
    // longer in its child: running it then fails with "text file busy" until that child
    // execs.
    let started = (0..100)
        .find_map(|_| {
            match Command::new(&bin)
                .env("BERTH_HOME", h.path())
                .args(["daemon", "start"])
                .output()
            {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    None
                }
                other => Some(other.unwrap()),
            }
        })
        .expect("the copy stayed busy for 2 s");
    assert!(started.status.success(), "{started:?}");
    let p = project();
    std::fs::remove_file(&bin).unwrap();
    std::fs::write(&bin, "#!/bin/sh\nexit 97\n").unwrap();
    agent(
        &h,
        p.path(),
        &["new", "a", "--cmd", "exec sleep 600", "--start"],
    )
    .expect_code(0);
    let pid = pid_of(&h, p.path(), "a").expect("it runs");
    assert!(alive(pid));
    agent(&h, p.path(), &["stop", "a"]).expect_code(0);
    assert!(!alive(pid));
    h.signal_daemon(libc::SIGTERM);
}

#[test]
fn a_hundred_agents_some_with_setsid_descendants_are_all_readopted_after_a_daemon_sigkill() {
    const AGENTS: usize = 100;
    let h = home();
    start(&h);
    let p = project();
    // Each agent notes every start of its command; every fourth also leaves a descendant in a
    // session of its own (outside the agent's process group), noting its pid.
    let names: Vec<String> = (0..AGENTS).map(|i| format!("a{i:03}")).collect();
    let mut workspaces = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let escape = if i % 4 == 0 {
            "setsid sh -c 'echo $$ > escaped.pid; exec sleep 300' & "
        } else {
            ""
        };
        let cmd = format!("echo $$ >> runs; {escape}exec sleep 300");
        let created = agent(&h, p.path(), &["new", name, "--cmd", &cmd, "--start"]);
        created.expect_code(0);
        workspaces.push(std::path::PathBuf::from(
            created.json()["workspace"].as_str().unwrap(),
        ));
    }
    let running = |h: &TestHome| -> Vec<(String, String, Option<i64>)> {
        let list = agent(h, p.path(), &["list"]);
        list.expect_code(0);
        list.json()["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["name"].as_str().unwrap_or_default().to_string(),
                    a["state"].as_str().unwrap_or_default().to_string(),
                    a["pid"].as_i64(),
                )
            })
            .collect()
    };
    let before = running(&h);
    assert_eq!(before.len(), AGENTS);
    assert!(
        before
            .iter()
            .all(|(_, s, pid)| s == "running" && pid.is_some()),
        "{before:?}"
    );
    let escaped: Vec<i32> = workspaces
        .iter()
        .step_by(4)
        .map(|ws| {
            let file = ws.join("escaped.pid");
            wait_until(
                "the descendant noted its pid",
                Duration::from_secs(20),
                || std::fs::read_to_string(&file).is_ok_and(|t| t.trim().parse::<i32>().is_ok()),
            );
            std::fs::read_to_string(&file)
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(escaped.len(), AGENTS / 4);

    h.signal_daemon(libc::SIGKILL);
    for (name, _, pid) in &before {
        assert!(alive(pid.unwrap() as i32), "{name} survived the daemon");
    }
    wait_until(
        "the killed daemon's socket is closed",
        Duration::from_secs(20),
        || matches!(h.state().as_str(), "stale" | "stopped"),
    );
    start(&h);
    let after = running(&h);
    assert_eq!(after, before, "every agent re-adopted, with its pid");
    let events = h.run(&["--json", "events"]);
    let adopted = events
        .stdout
        .lines()
        .filter(|l| l.contains("\"agent.adopted\""))
        .count();
    assert_eq!(adopted, AGENTS, "one agent.adopted each");
    for (ws, name) in workspaces.iter().zip(&names) {
        let runs = std::fs::read_to_string(ws.join("runs")).unwrap();
        assert_eq!(runs.lines().count(), 1, "{name} was started once: {runs:?}");
    }
    for pid in &escaped {
        assert!(alive(*pid), "the descendant {pid} outlived the daemon");
    }

    // The re-adopted keepers still know their descendants: stopping leaves none behind.
    for name in &names {
        agent(&h, p.path(), &["stop", name]).expect_code(0);
    }
    for (name, _, pid) in &before {
        assert!(!alive(pid.unwrap() as i32), "{name} stopped");
    }
    wait_until("no descendant is left", Duration::from_secs(20), || {
        escaped.iter().all(|pid| !alive(*pid))
    });
    h.run(&["daemon", "stop"]).expect_code(0);
}
