//! Agents elsewhere (`berth agent new --on URL`) over real transports: an `sshd` of the test's
//! own on 127.0.0.1 (`super::ssh::Sshd`), the far side running the binary under test. The
//! agent's workspace is made there from a bundle of its branch, it runs there under a keeper of
//! its own, survives a cut connection (unreachable with the cause, then running again by
//! itself) and a daemon killed with SIGKILL (re-attached), and its commits reach the project.

use std::path::Path;
use std::time::Duration;

use berth_testkit::{TestHome, alive, git, repo, wait_until};

use super::remote::kill_where;
use super::ssh::Sshd;
use crate::home;

/// `berth --json ARGS` in `dir` with `env`.
fn run_with(
    h: &TestHome,
    dir: &Path,
    env: &[(String, String)],
    args: &[&str],
) -> berth_testkit::Outcome {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let mut cmd = h.command(&all);
    cmd.current_dir(dir).envs(env.iter().map(|(k, v)| (k, v)));
    h.run_cmd(cmd)
}

fn show(h: &TestHome, dir: &Path, name: &str) -> serde_json::Value {
    let out = run_with(h, dir, &[], &["agent", "show", name]);
    out.expect_code(0);
    out.json()
}

/// The kinds of the events recorded about `name`, in order.
fn events_about(h: &TestHome, name: &str) -> Vec<serde_json::Value> {
    h.run(&["--json", "events"])
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["subject"] == name)
        .collect()
}

fn kinds(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn an_agent_over_ssh_runs_there_survives_a_cut_and_the_daemon_and_its_commits_come_back() {
    let sshd = Sshd::start();
    let h = home();
    // The daemon is the one that connects: it gets the ssh command and the binary to run there,
    // and hears nothing from the far side for 3 s as "not answering".
    let mut env = sshd.env("config").to_vec();
    env.push(("BERTH_REMOTE_SILENCE_MS".into(), "3000".into()));
    let p = repo(&[("README", "hi\n")]);
    run_with(&h, p.path(), &env, &["daemon", "start"]).expect_code(0);
    let far = tempfile::tempdir().unwrap();
    let dir = far.path().join("agents/worker");
    let url = sshd.url(&dir);
    let created = run_with(
        &h,
        p.path(),
        &env,
        &[
            "agent",
            "new",
            "worker",
            "--on",
            &url,
            "--cmd",
            "echo started in $(pwd) on $(git rev-parse --abbrev-ref HEAD); \
             echo made there > there.txt && git add there.txt && \
             git -c user.name=far -c user.email=far@example.com commit -qm 'made there'; \
             exec sleep 300",
        ],
    );
    created.expect_code(0);
    let info = created.json();
    assert_eq!(info["on"], url.as_str(), "{info}");
    assert_eq!(info["state"], "stopped", "{info}");
    // The workspace is a clone of the project's branch, over there.
    let ws = dir.join("workspace");
    assert_eq!(
        git(&ws, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "berth/worker"
    );
    assert_eq!(std::fs::read_to_string(ws.join("README")).unwrap(), "hi\n");
    assert_eq!(
        git(p.path(), &["rev-parse", "berth/worker"]),
        git(&ws, &["rev-parse", "HEAD"])
    );

    // What works only on a local workspace says so, and changes nothing.
    let exec = run_with(
        &h,
        p.path(),
        &env,
        &["agent", "exec", "worker", "--", "true"],
    );
    assert_eq!(exec.code, 2, "{exec}");
    assert!(exec.stdout.contains(&format!("runs on {url}")), "{exec}");

    // Started: it runs there (this machine, so its pid can be looked at), its output comes here.
    run_with(&h, p.path(), &env, &["agent", "start", "worker"]).expect_code(0);
    let pid = {
        let mut pid = None;
        wait_until("the agent runs there", Duration::from_secs(20), || {
            let a = show(&h, p.path(), "worker");
            pid = a["pid"].as_i64().filter(|_| a["state"] == "running");
            pid.is_some()
        });
        pid.unwrap() as i32
    };
    assert!(alive(pid));
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    assert_eq!(cwd, ws.canonicalize().unwrap());
    wait_until("its output arrived here", Duration::from_secs(20), || {
        h.run_in(p.path(), &["agent", "logs", "worker"])
            .stdout
            .contains("on berth/worker")
    });

    // The connection cut (the ssh client killed): unreachable with the cause, then running
    // again by itself; the agent never noticed.
    let config = sshd.file("config");
    assert!(kill_where(&["-F", config.to_str().unwrap(), "__endpoint"]) >= 1);
    wait_until(
        "the cut was noticed and got over",
        Duration::from_secs(30),
        || {
            let k = kinds(&events_about(&h, "worker"));
            k.iter().any(|k| k == "agent.unreachable") && k.iter().any(|k| k == "agent.reachable")
        },
    );
    let events = events_about(&h, "worker");
    let unreachable = events
        .iter()
        .find(|e| e["kind"] == "agent.unreachable")
        .unwrap();
    assert_eq!(
        unreachable["data"]["cause"], "connection_lost",
        "{unreachable}"
    );
    assert!(
        unreachable["data"]["error"]
            .as_str()
            .unwrap()
            .contains("was lost"),
        "{unreachable}"
    );
    assert_eq!(show(&h, p.path(), "worker")["state"], "running");
    assert!(alive(pid), "the agent ran on through the cut");

    // The daemon killed: the agent runs on there; a new daemon re-attaches to it.
    h.signal_daemon(libc::SIGKILL);
    wait_until("the daemon is gone", Duration::from_secs(10), || {
        h.state() != "running"
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(pid), "the far agent survived the daemon");
    run_with(&h, p.path(), &env, &["daemon", "start"]).expect_code(0);
    wait_until("re-attached", Duration::from_secs(30), || {
        let a = show(&h, p.path(), "worker");
        a["state"] == "running" && a["pid"].as_i64() == Some(i64::from(pid))
    });
    let adopted = events_about(&h, "worker");
    let adopted = adopted
        .iter()
        .rfind(|e| e["kind"] == "agent.adopted")
        .unwrap();
    assert_eq!(adopted["data"]["pid"], pid, "{adopted}");

    // Stopped: nothing of it runs there any more, and its commit is mirrored into the project.
    let stopped = run_with(&h, p.path(), &env, &["agent", "stop", "worker"]);
    stopped.expect_code(0);
    assert_eq!(stopped.json()["state"], "stopped");
    assert!(!alive(pid));
    wait_until(
        "the agent's commit reached the project",
        Duration::from_secs(20),
        || git(p.path(), &["log", "--format=%s", "-1", "berth/worker"]).trim() == "made there",
    );

    // Removed: its workspace there goes; its branch here stays.
    let removed = run_with(&h, p.path(), &env, &["agent", "rm", "worker"]);
    removed.expect_code(0);
    assert!(!ws.exists());
    assert_eq!(
        git(p.path(), &["log", "--format=%s", "-1", "berth/worker"]).trim(),
        "made there"
    );
    run_with(&h, p.path(), &env, &["daemon", "stop"]).expect_code(0);
}

/// `berth --json pair status` in `dir`.
fn pair_status(h: &TestHome, dir: &Path) -> serde_json::Value {
    let out = run_with(h, dir, &[], &["pair", "status"]);
    out.expect_code(0);
    out.json()
}

fn notice_codes(s: &serde_json::Value) -> Vec<String> {
    s["notices"]
        .as_array()
        .map(|n| {
            n.iter()
                .map(|n| n["code"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

#[test]
fn pairing_with_an_agent_over_ssh_carries_edits_and_commits_both_ways_through_a_cut() {
    let sshd = Sshd::start();
    let h = home();
    let mut env = sshd.env("config").to_vec();
    env.push(("BERTH_REMOTE_SILENCE_MS".into(), "3000".into()));
    let p = repo(&[("README", "hi\n")]);
    let user = p.path();
    // Uncommitted work of the user's: kept in a snapshot, given back exactly at the stop.
    std::fs::write(user.join("draft.txt"), "mine, not committed\n").unwrap();
    std::fs::write(user.join("README"), "hi, edited\n").unwrap();
    let status_before = git(user, &["status", "--porcelain"]);
    run_with(&h, user, &env, &["daemon", "start"]).expect_code(0);
    let far = tempfile::tempdir().unwrap();
    let dir = far.path().join("agents/pal");
    let url = sshd.url(&dir);
    run_with(
        &h,
        user,
        &env,
        &["agent", "new", "pal", "--on", &url, "--cmd", "true"],
    )
    .expect_code(0);
    let ws = dir.join("workspace");
    std::fs::write(ws.join("agent-draft.txt"), "the agent's work\n").unwrap();
    let keys = sshd.file("authorized_keys");
    let off = sshd.file("authorized_keys.off");
    let config = sshd.file("config");

    // The far side cannot be reached: refused with what to do, nothing changed.
    std::fs::rename(&keys, &off).unwrap();
    let refused = run_with(&h, user, &env, &["pair", "pal"]);
    assert_ne!(refused.code, 0, "{refused}");
    assert!(
        refused.stdout.contains("agent_elsewhere") && refused.stdout.contains("cannot be reached"),
        "{refused}"
    );
    assert!(!refused.stdout.contains("agent_missing"), "{refused}");
    assert_eq!(git(user, &["status", "--porcelain"]), status_before);
    assert_eq!(
        git(user, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "main"
    );
    std::fs::rename(&off, &keys).unwrap();

    // Paired: the checkout is on the agent's branch with the agent's files.
    let paired = run_with(&h, user, &env, &["pair", "pal"]);
    paired.expect_code(0);
    assert_eq!(paired.json()["state"], "active", "{paired}");
    assert_eq!(
        paired.json()["agent_workspace"],
        format!("{} on {url}", ws.display()),
        "{paired}"
    );
    assert_eq!(
        git(user, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "berth/pal"
    );
    assert_eq!(
        read(&user.join("agent-draft.txt")).as_deref(),
        Some("the agent's work\n")
    );
    assert_eq!(read(&user.join("README")).as_deref(), Some("hi\n"));

    // Edits both ways.
    std::fs::write(user.join("from-user.txt"), "typed here\n").unwrap();
    std::fs::write(ws.join("from-agent.txt"), "typed there\n").unwrap();
    wait_until("edits crossed both ways", Duration::from_secs(20), || {
        read(&ws.join("from-user.txt")).as_deref() == Some("typed here\n")
            && read(&user.join("from-agent.txt")).as_deref() == Some("typed there\n")
    });

    // `pair status` reports the link: its round trip, and the bandwidth a large file showed.
    let big: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    std::fs::write(user.join("big.bin"), &big).unwrap();
    wait_until("the large file crossed", Duration::from_secs(20), || {
        std::fs::read(ws.join("big.bin")).is_ok_and(|b| b == big)
    });
    wait_until("the link's figures", Duration::from_secs(20), || {
        let link = &pair_status(&h, user)["link"];
        link["on"] == url.as_str()
            && link["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0)
            && link["bandwidth_bps"].as_u64().is_some_and(|b| b > 0)
            && link["bytes_to_agent"]
                .as_u64()
                .is_some_and(|b| b >= 1 << 20)
    });
    let human = h.run_in(user, &["pair", "status"]);
    assert!(human.stdout.contains("round trip"), "{human}");

    // Commits both ways: the agent's reach the user's branch, the user's the agent's.
    let far_git = |args: &[&str]| {
        let mut all = vec!["-c", "user.name=far", "-c", "user.email=far@example.com"];
        all.extend_from_slice(args);
        git(&ws, &all)
    };
    far_git(&["add", "from-agent.txt"]);
    far_git(&["commit", "-qm", "made there"]);
    wait_until(
        "the agent's commit reached the checkout",
        Duration::from_secs(20),
        || git(user, &["log", "-1", "--format=%s", "berth/pal"]).trim() == "made there",
    );
    // berth moved the checkout's index along with the branch; then the user commits.
    wait_until(
        "the checkout's index followed",
        Duration::from_secs(20),
        || {
            git(user, &["status", "--porcelain", "--", "from-agent.txt"]).is_empty()
                && !user.join(".git/index.lock").exists()
        },
    );
    git(user, &["add", "from-user.txt"]);
    git(user, &["commit", "-qm", "made here"]);
    wait_until(
        "the user's commit reached the agent",
        Duration::from_secs(20),
        || git(&ws, &["log", "-1", "--format=%s", "berth/pal"]).trim() == "made here",
    );
    // Each side's index follows its branch: nothing shows as changed on either side.
    wait_until("both sides are clean", Duration::from_secs(20), || {
        git(
            &ws,
            &[
                "status",
                "--porcelain",
                "--",
                "from-user.txt",
                "from-agent.txt",
            ],
        )
        .is_empty()
            && git(
                user,
                &[
                    "status",
                    "--porcelain",
                    "--",
                    "from-user.txt",
                    "from-agent.txt",
                ],
            )
            .is_empty()
    });

    // The connection cut and kept down (the far side refuses logins): paused with the cause,
    // while both sides go on editing.
    std::fs::rename(&keys, &off).unwrap();
    assert!(kill_where(&["-F", config.to_str().unwrap(), "__endpoint"]) >= 1);
    wait_until(
        "paused with connection_lost",
        Duration::from_secs(30),
        || {
            let s = pair_status(&h, user);
            s["state"] == "paused" && notice_codes(&s).iter().any(|c| c == "connection_lost")
        },
    );
    std::fs::write(user.join("while-cut-here.txt"), "here meanwhile\n").unwrap();
    std::fs::write(ws.join("while-cut-there.txt"), "there meanwhile\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(!ws.join("while-cut-here.txt").exists());

    // Back: it resumes by itself, carrying what changed on both sides meanwhile.
    std::fs::rename(&off, &keys).unwrap();
    wait_until(
        "resumed with both sides' edits",
        Duration::from_secs(40),
        || {
            read(&ws.join("while-cut-here.txt")).as_deref() == Some("here meanwhile\n")
                && read(&user.join("while-cut-there.txt")).as_deref() == Some("there meanwhile\n")
        },
    );
    wait_until("active again", Duration::from_secs(20), || {
        pair_status(&h, user)["state"] == "active"
    });

    // The daemon killed while paired: the next one re-opens the pairing over a new link.
    h.signal_daemon(libc::SIGKILL);
    wait_until("the daemon is gone", Duration::from_secs(10), || {
        h.state() != "running"
    });
    run_with(&h, user, &env, &["daemon", "start"]).expect_code(0);
    wait_until("active after the restart", Duration::from_secs(30), || {
        pair_status(&h, user)["state"] == "active"
    });
    std::fs::write(ws.join("after-restart.txt"), "still paired\n").unwrap();
    wait_until("syncing after the restart", Duration::from_secs(20), || {
        read(&user.join("after-restart.txt")).as_deref() == Some("still paired\n")
    });

    // Stopped: the checkout is back on its branch with exactly the user's uncommitted work;
    // everything of the pairing's is on the agent's side and on `berth/pal` here.
    let stopped = run_with(&h, user, &env, &["pair", "stop"]);
    stopped.expect_code(0);
    assert_eq!(
        git(user, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "main"
    );
    assert_eq!(git(user, &["status", "--porcelain"]), status_before);
    assert_eq!(
        read(&user.join("draft.txt")).as_deref(),
        Some("mine, not committed\n")
    );
    assert_eq!(read(&user.join("README")).as_deref(), Some("hi, edited\n"));
    assert!(!user.join("from-agent.txt").exists());
    assert_eq!(
        read(&ws.join("while-cut-here.txt")).as_deref(),
        Some("here meanwhile\n")
    );
    assert_eq!(
        git(user, &["log", "-1", "--format=%s", "berth/pal"]).trim(),
        "made here"
    );
    run_with(&h, user, &env, &["daemon", "stop"]).expect_code(0);
}

#[test]
fn an_agent_with_unsaved_work_there_is_kept_unless_forced_and_then_snapshotted_here() {
    let sshd = Sshd::start();
    let h = home();
    let env = sshd.env("config").to_vec();
    let p = repo(&[("README", "hi\n")]);
    run_with(&h, p.path(), &env, &["daemon", "start"]).expect_code(0);
    let far = tempfile::tempdir().unwrap();
    let dir = far.path().join("a");
    let url = sshd.url(&dir);
    run_with(
        &h,
        p.path(),
        &env,
        &["agent", "new", "scribble", "--on", &url, "--cmd", "true"],
    )
    .expect_code(0);
    let ws = dir.join("workspace");
    std::fs::write(ws.join("draft.txt"), "not committed").unwrap();
    let refused = run_with(&h, p.path(), &env, &["agent", "rm", "scribble"]);
    assert_ne!(refused.code, 0, "{refused}");
    assert!(refused.stdout.contains("unsaved_work"), "{refused}");
    assert!(ws.join("draft.txt").exists(), "nothing was removed");
    let forced = run_with(&h, p.path(), &env, &["agent", "rm", "scribble", "--force"]);
    forced.expect_code(0);
    let snapshot = forced.json()["snapshot"].as_str().unwrap().to_string();
    assert!(!ws.exists());
    // The snapshot is in the project, holding the draft.
    let r = format!("refs/berth/stash/{snapshot}");
    assert_eq!(
        git(p.path(), &["show", &format!("{r}:draft.txt")]),
        "not committed"
    );
    run_with(&h, p.path(), &env, &["daemon", "stop"]).expect_code(0);
}

#[test]
fn an_agent_on_a_host_whose_key_is_unknown_is_refused_with_what_to_do_and_nothing_is_left() {
    let sshd = Sshd::start();
    let h = home();
    let env = sshd.env("config-unknown").to_vec();
    let p = repo(&[("README", "hi\n")]);
    run_with(&h, p.path(), &env, &["daemon", "start"]).expect_code(0);
    let far = tempfile::tempdir().unwrap();
    let dir = far.path().join("a");
    let out = run_with(
        &h,
        p.path(),
        &env,
        &[
            "agent",
            "new",
            "stranger",
            "--on",
            &sshd.url(&dir),
            "--cmd",
            "true",
        ],
    );
    assert_eq!(out.code, 1, "{out}");
    assert_eq!(out.json()["error"]["code"], "agent_unreachable", "{out}");
    assert!(out.stdout.contains("Host key verification failed"), "{out}");
    assert!(
        out.stdout.contains("never accepts a host key by itself"),
        "{out}"
    );
    assert!(!dir.exists(), "nothing was made there");
    assert_eq!(
        std::fs::read_to_string(sshd.file("unknown_hosts")).unwrap(),
        "",
        "the key was not added"
    );
    // Nothing is left here either: no branch, no agent.
    assert_eq!(git(p.path(), &["branch", "--list", "berth/stranger"]), "");
    assert_eq!(git(p.path(), &["for-each-ref", "refs/berth/agents/"]), "");
    let listed = run_with(&h, p.path(), &env, &["agent", "list"]);
    assert_eq!(listed.json()["agents"], serde_json::json!([]), "{listed}");
    run_with(&h, p.path(), &env, &["daemon", "stop"]).expect_code(0);
}

#[test]
fn an_agent_that_ended_while_it_could_not_be_reached_is_exited_once_it_can() {
    let sshd = Sshd::start();
    let h = home();
    let (blocked, env) = blockable_ssh(&sshd);
    let p = repo(&[("README", "hi\n")]);
    run_with(&h, p.path(), &env, &["daemon", "start"]).expect_code(0);
    let far = tempfile::tempdir().unwrap();
    let dir = far.path().join("a");
    let ended = dir.join("ended");
    run_with(
        &h,
        p.path(),
        &env,
        &[
            "agent",
            "new",
            "brief",
            "--on",
            &sshd.url(&dir),
            "--cmd",
            // It ends (code 3) once told to, by a file appearing next to its workspace.
            "while [ ! -e ../ended ]; do sleep 0.1; done; exit 3",
            "--start",
        ],
    )
    .expect_code(0);
    assert_eq!(show(&h, p.path(), "brief")["state"], "running");
    // The host goes away: the connection cut, and no new one can be made.
    std::fs::write(&blocked, "").unwrap();
    let config = sshd.file("config");
    assert!(kill_where(&["-F", config.to_str().unwrap(), "__endpoint"]) >= 1);
    wait_until("cannot connect", Duration::from_secs(30), || {
        let a = show(&h, p.path(), "brief");
        a["state"] == "unreachable"
            && a["unreachable"].as_str().is_some_and(|u| {
                u.starts_with("cannot_connect: ") && u.contains("Connection refused")
            })
    });
    // A stop cannot reach it: said, and it stays as it was.
    let stop = run_with(&h, p.path(), &env, &["agent", "stop", "brief"]);
    assert_eq!(stop.code, 1, "{stop}");
    assert_eq!(stop.json()["error"]["code"], "agent_unreachable", "{stop}");
    assert!(stop.stdout.contains("Connection refused"), "{stop}");
    assert_eq!(show(&h, p.path(), "brief")["state"], "unreachable");
    // Meanwhile it ends there; berth cannot know yet.
    std::fs::write(&ended, "").unwrap();
    wait_until("it ended there", Duration::from_secs(20), || {
        std::fs::read_to_string(dir.join("keeper/state.json"))
            .is_ok_and(|s| s.contains("\"done\": true"))
    });
    assert_eq!(show(&h, p.path(), "brief")["state"], "unreachable");
    // The host is back: berth finds out what became of it.
    std::fs::remove_file(&blocked).unwrap();
    wait_until("exited, with its code", Duration::from_secs(30), || {
        let a = show(&h, p.path(), "brief");
        a["state"] == "exited" && a["exit_code"] == 3
    });
    run_with(&h, p.path(), &env, &["daemon", "stop"]).expect_code(0);
}

/// An ssh command (and the environment naming it) that cannot connect while the file it
/// returns exists, as with a host that is down.
fn blockable_ssh(sshd: &Sshd) -> (std::path::PathBuf, Vec<(String, String)>) {
    let blocked = sshd.file("blocked");
    let fake = sshd.file("fake-ssh");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nif [ -e '{blocked}' ]; then\n  echo 'ssh: connect to host 127.0.0.1: Connection refused' >&2\n  exit 255\nfi\nexec ssh -F '{config}' \"$@\"\n",
            blocked = blocked.display(),
            config = sshd.file("config").display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut env = sshd.env("config").to_vec();
    env[0].1 = fake.display().to_string();
    (blocked, env)
}

#[test]
fn an_agent_whose_host_is_gone_for_good_is_forgotten_with_nothing_there_touched() {
    let h = home();
    let sshd = Sshd::start();
    let (blocked, env) = blockable_ssh(&sshd);
    let p = repo(&[("README", "hi\n")]);
    let run = |args: &[&str]| run_with(&h, p.path(), &env, args);
    run(&["daemon", "start"]).expect_code(0);
    let far = tempfile::tempdir().unwrap();
    let dir = far.path().join("a");
    run(&[
        "agent",
        "new",
        "gone",
        "--on",
        &sshd.url(&dir),
        "--cmd",
        "while [ ! -e ../ended ]; do sleep 0.1; done",
        "--start",
    ])
    .expect_code(0);
    // A local agent has nothing elsewhere to forget: refused, and it stays.
    run(&["agent", "new", "here", "--cmd", "sleep 300"]).expect_code(0);
    let local = run(&["agent", "rm", "here", "--forget"]);
    assert_eq!(local.code, 2, "{local}");
    assert_eq!(local.json()["error"]["code"], "invalid_agent", "{local}");
    assert!(local.stdout.contains("berth agent rm here"), "{local}");
    assert_eq!(show(&h, p.path(), "here")["name"], "here");
    // --forget does not go with what needs the far side or deletes the branch.
    let both = h.run_in(
        p.path(),
        &["agent", "rm", "gone", "--forget", "--delete-branch"],
    );
    assert_eq!(both.code, 2, "{both}");
    // The host goes away for good: a plain rm cannot reach it and removes nothing.
    std::fs::write(&blocked, "").unwrap();
    let config = sshd.file("config");
    assert!(kill_where(&["-F", config.to_str().unwrap(), "__endpoint"]) >= 1);
    wait_until("unreachable", Duration::from_secs(30), || {
        show(&h, p.path(), "gone")["state"] == "unreachable"
    });
    let rm = run(&["agent", "rm", "gone"]);
    assert_eq!(rm.code, 1, "{rm}");
    assert_eq!(rm.json()["error"]["code"], "agent_unreachable", "{rm}");
    assert_eq!(show(&h, p.path(), "gone")["state"], "unreachable");
    // Forgotten here without reaching it: it says what is left there.
    let forgot = run(&["agent", "rm", "gone", "--forget"]);
    forgot.expect_code(0);
    let answer = forgot.json();
    assert_eq!(answer["branch_kept"], true, "{forgot}");
    let left = answer["left_there"].as_str().unwrap_or_default();
    assert!(
        left.contains(&format!("{}/workspace", dir.display())),
        "{forgot}"
    );
    let listed = run(&["agent", "list"]);
    let names: Vec<_> = listed.json()["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, ["here"], "{listed}");
    assert!(kinds(&events_about(&h, "gone")).contains(&"agent.forgotten".to_string()));
    // Its branch stays here; its workspace there was not touched.
    assert_ne!(git(p.path(), &["branch", "--list", "berth/gone"]), "");
    assert!(dir.join("workspace/README").exists());
    // The agent still running there is ended by the test itself, before its directory goes.
    std::fs::write(dir.join("ended"), "").unwrap();
    let keeper = berth_supervisor::keeper::spec::KeeperDir(dir.join("keeper"));
    wait_until("the agent ended there", Duration::from_secs(20), || {
        berth_supervisor::keeper::read_state(&keeper).is_some_and(|st| st.exit.is_some())
    });
    run(&["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_place_berth_cannot_run_an_agent_in_is_refused_before_anything_is_made() {
    let h = home();
    let p = repo(&[("README", "hi\n")]);
    run_with(&h, p.path(), &[], &["daemon", "start"]).expect_code(0);
    for on in ["ftp://box/x", "ssh://box:port", "docker://", "/just/a/path"] {
        let out = run_with(
            &h,
            p.path(),
            &[],
            &["agent", "new", "nowhere", "--on", on, "--cmd", "true"],
        );
        assert_eq!(out.code, 2, "{on}: {out}");
        assert_eq!(out.json()["error"]["code"], "invalid_agent", "{on}: {out}");
    }
    // What an agent elsewhere cannot have is refused before anything is made: a `notify`
    // probe, whose socket would be here.
    let out = run_with(
        &h,
        p.path(),
        &[],
        &[
            "agent",
            "new",
            "nowhere",
            "--on",
            "ssh://box",
            "--ready",
            "notify",
            "--cmd",
            "true",
        ],
    );
    assert_eq!(out.code, 2, "{out}");
    assert_eq!(out.json()["error"]["code"], "invalid_agent", "{out}");
    assert_eq!(git(p.path(), &["branch", "--list", "berth/nowhere"]), "");
    let listed = run_with(&h, p.path(), &[], &["agent", "list"]);
    assert_eq!(listed.json()["agents"], serde_json::json!([]), "{listed}");
    run_with(&h, p.path(), &[], &["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_terminal_agent_over_ssh_is_typed_into_attached_and_outlives_a_cut_attach() {
    use berth_testkit::Tmux;

    use super::attach::{attach, terminal_put_back};
    use super::terminal::{pid_of, typed, wait_for};

    let sshd = Sshd::start();
    let h = home();
    let env = sshd.env("config").to_vec();
    let p = repo(&[("README", "hi\n")]);
    run_with(&h, p.path(), &env, &["daemon", "start"]).expect_code(0);
    let far = tempfile::tempdir().unwrap();
    let url = sshd.url(&far.path().join("agents/sh"));
    let created = run_with(
        &h,
        p.path(),
        &env,
        &[
            "agent",
            "new",
            "sh",
            "--on",
            &url,
            "--tty",
            "--start",
            "--env",
            "PS1=$ ",
            "--cmd",
            "exec bash --norc --noprofile -i",
        ],
    );
    created.expect_code(0);
    // `agent screen` and `agent input` reach the keeper there.
    wait_for(&h, p.path(), "sh", "$");
    typed(
        &h,
        p.path(),
        "sh",
        "echo typed-$((6*7)) in $(basename $(pwd))",
    );
    wait_for(&h, p.path(), "sh", "typed-42 in workspace");
    let pid = pid_of(&h, p.path(), "sh");
    assert!(alive(pid));

    // Attached: the screen drawn at once, keys typed, output seen.
    let t = Tmux::start();
    attach(&t, &h, p.path(), "a", &["sh"]);
    t.wait_for("a", "typed-42 in workspace");
    t.type_text("a", "echo v=$((6*7))");
    t.keys("a", &["Enter"]);
    t.wait_for("a", "v=42");

    // The attach's ssh connection killed: the client says so and puts the terminal back; the
    // program runs on there.
    let config = sshd.file("config");
    assert!(kill_where(&["-F", config.to_str().unwrap(), "__relay"]) >= 1);
    let shown = t.wait_for("a", "EXIT=");
    assert!(
        shown.contains("the connection to where the agent runs broke"),
        "{shown}"
    );
    assert!(!shown.contains("EXIT=0"), "{shown}");
    terminal_put_back(&t, "a");
    assert!(alive(pid), "the program ran on through the cut");
    assert_eq!(show(&h, p.path(), "sh")["state"], "running");

    // The host refusing new connections: attaching says it cannot reach it, and what to do.
    let keys = sshd.file("authorized_keys");
    let off = sshd.file("authorized_keys.off");
    std::fs::rename(&keys, &off).unwrap();
    attach(&t, &h, p.path(), "r", &["sh"]);
    let refused = t.wait_for("r", "EXIT=");
    assert!(
        refused.contains("cannot reach agent sh where it runs")
            && refused.contains("the program goes on running there")
            && !refused.contains("EXIT=0"),
        "{refused}"
    );
    terminal_put_back(&t, "r");
    std::fs::rename(&off, &keys).unwrap();

    // The daemon killed and started again: it re-attaches to the agent there.
    h.signal_daemon(libc::SIGKILL);
    wait_until("the daemon is gone", Duration::from_secs(10), || {
        h.state() != "running"
    });
    run_with(&h, p.path(), &env, &["daemon", "start"]).expect_code(0);
    wait_until("re-attached", Duration::from_secs(30), || {
        show(&h, p.path(), "sh")["state"] == "running"
    });

    // Attached again: the same screen, and it still answers.
    attach(&t, &h, p.path(), "b", &["sh"]);
    t.wait_for("b", "v=42");
    t.type_text("b", "echo again-$((2*3))");
    t.keys("b", &["Enter"]);
    t.wait_for("b", "again-6");
    t.keys("b", &["C-\\"]);
    t.wait_for("b", "EXIT=0");
    terminal_put_back(&t, "b");

    run_with(&h, p.path(), &env, &["agent", "stop", "sh"]).expect_code(0);
    assert!(!alive(pid));
    run_with(&h, p.path(), &env, &["daemon", "stop"]).expect_code(0);
}

#[test]
fn an_agent_over_ssh_is_running_only_once_its_probe_passes_there() {
    let sshd = Sshd::start();
    let h = home();
    let env = sshd.env("config").to_vec();
    let p = repo(&[("README", "hi\n")]);
    run_with(&h, p.path(), &env, &["daemon", "start"]).expect_code(0);
    let far = tempfile::tempdir().unwrap();
    let new = |name: &str, probe: &str, cmd: &str| {
        let url = sshd.url(&far.path().join("agents").join(name));
        run_with(
            &h,
            p.path(),
            &env,
            &[
                "agent", "new", name, "--on", &url, "--ready", probe, "--cmd", cmd, "--start",
            ],
        )
    };

    // An `exec` probe runs there, in the agent's workspace: starting until it passes.
    let created = new("svc", "exec:test -f go", "exec sleep 300");
    created.expect_code(0);
    assert_eq!(created.json()["state"], "starting", "{created}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(show(&h, p.path(), "svc")["state"], "starting");
    // Out of reach while starting (the link cut, new connections refused), then back: it is
    // starting again, not running, until its probe passes.
    let keys = sshd.file("authorized_keys");
    let off = sshd.file("authorized_keys.off");
    let config = sshd.file("config");
    std::fs::rename(&keys, &off).unwrap();
    assert!(kill_where(&["-F", config.to_str().unwrap(), "__endpoint"]) >= 1);
    wait_until(
        "unreachable while starting",
        Duration::from_secs(20),
        || show(&h, p.path(), "svc")["state"] == "unreachable",
    );
    std::fs::rename(&off, &keys).unwrap();
    wait_until("reached again", Duration::from_secs(30), || {
        kinds(&events_about(&h, "svc")).contains(&"agent.reachable".to_string())
    });
    assert_eq!(show(&h, p.path(), "svc")["state"], "starting");
    std::fs::write(far.path().join("agents/svc/workspace/go"), "").unwrap();
    wait_until("the probe passed there", Duration::from_secs(20), || {
        show(&h, p.path(), "svc")["state"] == "running"
    });
    let ready = events_about(&h, "svc");
    let ready = ready.iter().find(|e| e["kind"] == "agent.ready").unwrap();
    assert_eq!(ready["data"]["probe"], "exec:test -f go", "{ready}");

    // A `log` probe reads the copy here of the output there.
    let created = new("logged", "log:^up$", "sleep 1; echo up; exec sleep 300");
    created.expect_code(0);
    assert_eq!(created.json()["state"], "starting", "{created}");
    wait_until("the log probe passed", Duration::from_secs(20), || {
        show(&h, p.path(), "logged")["state"] == "running"
    });

    // `notify` cannot reach a socket here from there: refused, with what to use.
    let refused = new("n", "notify", "true");
    assert_eq!(refused.code, 2, "{refused}");
    assert!(refused.stdout.contains("notify"), "{refused}");

    for name in ["svc", "logged"] {
        run_with(&h, p.path(), &env, &["agent", "stop", name]).expect_code(0);
    }
    run_with(&h, p.path(), &env, &["daemon", "stop"]).expect_code(0);
}

#[test]
fn a_turn_agent_over_ssh_runs_each_message_as_a_turn_in_its_workspace_there() {
    use super::inbox::{GIT_ENV, RECORD, settled, turn, turns};

    let sshd = Sshd::start();
    let h = home();
    let env = sshd.env("config").to_vec();
    let p = repo(&[("README", "hi\n")]);
    run_with(&h, p.path(), &env, &["daemon", "start"]).expect_code(0);
    let far = tempfile::tempdir().unwrap();
    let dir = far.path().join("agents/bot");
    let url = sshd.url(&dir);
    // Each turn waits for `go` beside the workspace there (its files are in `turns/` there).
    let turn_cmd = format!("while [ ! -f ../go ]; do sleep 0.05; done; {RECORD}");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("go"), "").unwrap();
    let mut args = vec!["agent", "new", "bot", "--on", &url, "--turn", &turn_cmd];
    args.extend_from_slice(&GIT_ENV);
    run_with(&h, p.path(), &env, &args).expect_code(0);
    let base = git(p.path(), &["rev-parse", "berth/bot"]);

    let sent = run_with(&h, p.path(), &[], &["send", "bot", "hello there"]);
    sent.expect_code(0);
    let item = sent.json()["item"]["id"].as_i64().unwrap();
    let done = settled(&h, p.path(), "bot", 1);
    assert_eq!(done[0].state, "done", "{done:?}");

    // The turn ran there, in the workspace there, the message on its stdin and in its file.
    let ws = dir.join("workspace");
    assert_eq!(
        std::fs::read_to_string(ws.join("received.txt")).unwrap(),
        "hello there\n"
    );
    let t = &turns(&h, p.path(), "bot")[0];
    assert_eq!((t.status.as_str(), t.exit_code), ("done", Some(0)), "{t:?}");
    let shown = turn(&h, p.path(), t.id);
    assert!(
        shown.output.contains(&format!(
            "id={item} attempt=1 source=message file=hello there"
        )),
        "{shown:?}"
    );
    // Its commit, before and after, as the workspace there has them; nothing left behind.
    assert_eq!(t.commit_before.as_deref(), Some(base.trim()), "{t:?}");
    let after = git(&ws, &["rev-parse", "HEAD"]);
    assert_eq!(t.commit_after.as_deref(), Some(after.trim()), "{t:?}");
    assert_eq!(
        git(&ws, &["log", "-1", "--format=%s"]).trim(),
        format!("message {item}")
    );
    assert!(!dir.join("turns").join(t.id.to_string()).exists());
    // The turn's commit is mirrored into the project.
    wait_until(
        "the turn's commit reached the project",
        Duration::from_secs(20),
        || git(p.path(), &["rev-parse", "berth/bot"]) == after,
    );

    // The daemon killed during a turn there: the turn goes on there, and the daemon that
    // starts again watches it to its end instead of running it a second time.
    std::fs::remove_file(dir.join("go")).unwrap();
    run_with(&h, p.path(), &[], &["send", "bot", "second"]).expect_code(0);
    wait_until(
        "the second turn runs there",
        Duration::from_secs(20),
        || {
            turns(&h, p.path(), "bot")
                .iter()
                .any(|t| t.status == "running")
        },
    );
    h.signal_daemon(libc::SIGKILL);
    wait_until("the daemon is gone", Duration::from_secs(10), || {
        h.state() != "running"
    });
    run_with(&h, p.path(), &env, &["daemon", "start"]).expect_code(0);
    // The daemon must first reach the agent again (ssh, the directory there, berth's copy
    // checked, an endpoint started) to ask about the turn. Run alone, this whole test takes
    // about 9 s; in one full run on two cores this wait alone took longer than 20 s.
    wait_until(
        "the turn there was adopted",
        Duration::from_secs(60),
        || kinds(&events_about(&h, "bot")).contains(&"turn.adopted".to_string()),
    );
    std::fs::write(dir.join("go"), "").unwrap();
    let done = settled(&h, p.path(), "bot", 2);
    assert!(
        done.iter().all(|i| i.state == "done" && i.attempts == 1),
        "{done:?}"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("received.txt")).unwrap(),
        "hello there\nsecond\n",
        "each message once"
    );

    // A turn there that outlives its timeout is stopped there, and recorded as timed out.
    let slow_url = sshd.url(&far.path().join("agents/slow"));
    run_with(
        &h,
        p.path(),
        &env,
        &[
            "agent",
            "new",
            "slow",
            "--on",
            &slow_url,
            "--turn",
            "exec sleep 29.5",
            "--turn-timeout",
            "1s",
        ],
    )
    .expect_code(0);
    run_with(&h, p.path(), &[], &["send", "slow", "take your time"]).expect_code(0);
    let failed = settled(&h, p.path(), "slow", 1);
    assert_eq!(failed[0].state, "failed", "{failed:?}");
    let slow = turns(&h, p.path(), "slow");
    assert!(
        !slow.is_empty() && slow.iter().all(|t| t.status == "timed_out"),
        "{slow:?}"
    );
    assert_eq!(
        kill_where(&["sleep 29.5"]),
        0,
        "nothing of the turns is left there"
    );
    run_with(&h, p.path(), &env, &["daemon", "stop"]).expect_code(0);
}
