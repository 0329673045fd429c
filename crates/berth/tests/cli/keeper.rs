//! The keeper, run as the real binary: process-tree stops, exit status, logs, independence.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use berth_supervisor::keeper::control::{self, Request};
use berth_supervisor::keeper::read_state;
use berth_supervisor::keeper::spec::{KeeperDir, KeeperSpec};
use berth_testkit::{TestHome, wait_until};

use crate::home;

/// Writes a spec and starts a keeper for it, detached as the daemon starts it.
fn keeper(h: &TestHome, name: &str, command: &str, grace_ms: u64) -> KeeperDir {
    let dir = KeeperDir(h.path().join("agents").join(name));
    std::fs::create_dir_all(dir.path()).unwrap();
    let spec = KeeperSpec {
        name: name.into(),
        command: command.into(),
        cwd: h.path().to_path_buf(),
        env: [("BERTH_AGENT".to_string(), name.to_string())].into(),
        stop_signal: "SIGTERM".into(),
        stop_grace_ms: grace_ms,
        log_max_bytes: 1 << 20,
        log_keep: 2,
        terminal: None,
        stdin: None,
    };
    std::fs::write(dir.spec(), serde_json::to_vec(&spec).unwrap()).unwrap();
    let mut cmd = h.command(&["__keeper", "--dir", dir.path().to_str().unwrap()]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid(2) in the child before exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut spawned = cmd.spawn().unwrap();
    // Reap it when it ends so it does not linger as a zombie of the test process.
    std::thread::spawn(move || spawned.wait());
    wait_until(
        "the keeper started the child",
        Duration::from_secs(10),
        || dir.state().exists(),
    );
    dir
}

/// Pids of live `sleep` processes whose command line contains `marker`.
fn with_marker(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true);
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        // A whole argument, not a substring: `303.1234` must not match another run's `303.12345`.
        let has_marker = cmdline
            .split(|b| *b == 0)
            .any(|arg| arg == marker.as_bytes());
        if !zombie && comm.trim() == "sleep" && has_marker {
            found.push(pid);
        }
    }
    found
}

/// A marker unique to this test run, so leftovers of another run cannot be counted.
fn marker(n: u32) -> String {
    format!("{n}.{}", std::process::id())
}

/// Stops the keeper when a test ends, passing or failing, so no process outlives the test.
struct Kept(KeeperDir);

impl Drop for Kept {
    fn drop(&mut self) {
        let _ = control::request(
            &self.0.socket(),
            &Request::Stop { grace_ms: None },
            Duration::from_secs(10),
        );
    }
}

fn stop(dir: &KeeperDir) -> control::Response {
    control::request(
        &dir.socket(),
        &Request::Stop { grace_ms: None },
        Duration::from_secs(30),
    )
    .unwrap()
}

#[test]
fn stop_leaves_no_descendant_even_one_that_escaped_with_setsid() {
    let h = home();
    // The grandchild starts a new session and double-forks: its sleep ends up outside the
    // child's process group, reparented to the keeper.
    let marker = &marker(301);
    let cmd = format!("setsid sh -c 'sleep {marker} & exit 0' & sleep {marker}");
    let dir = keeper(&h, "escaper", &cmd, 2_000);
    let _guard = Kept(dir.clone());
    wait_until("both sleeps run", Duration::from_secs(10), || {
        with_marker(marker).len() == 2
    });
    let resp = stop(&dir);
    assert!(!resp.killed, "they honour SIGTERM");
    assert!(
        with_marker(marker).is_empty(),
        "left behind: {:?}",
        with_marker(marker)
    );
    assert!(
        resp.state.stopping && resp.state.exit.is_some(),
        "{:?}",
        resp.state
    );
    wait_until("the keeper is done", Duration::from_secs(10), || {
        read_state(&dir).is_some_and(|s| s.done)
    });
    assert!(!dir.socket().exists());
}

#[test]
fn a_child_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let h = home();
    let marker = &marker(302);
    let dir = keeper(
        &h,
        "stubborn",
        &format!("trap '' TERM; sleep {marker}"),
        400,
    );
    let _guard = Kept(dir.clone());
    wait_until("it runs", Duration::from_secs(10), || {
        with_marker(marker).len() == 1
    });
    let began = Instant::now();
    let resp = stop(&dir);
    let took = began.elapsed();
    assert!(resp.killed, "SIGKILL was needed");
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(with_marker(marker).is_empty());
    assert_eq!(resp.state.exit.unwrap().signal, Some(libc::SIGKILL));
}

#[test]
fn the_exit_status_and_timestamped_output_are_recorded() {
    let h = home();
    let dir = keeper(&h, "short", "echo hello; echo oops >&2; exit 7", 1_000);
    wait_until("the keeper is done", Duration::from_secs(10), || {
        read_state(&dir).is_some_and(|s| s.done)
    });
    let state = read_state(&dir).unwrap();
    let exit = state.exit.unwrap();
    assert_eq!((exit.code, exit.signal), (Some(7), None));
    assert!(!state.stopping);
    let log = std::fs::read_to_string(dir.output()).unwrap();
    let line = |needle: &str| {
        log.lines()
            .find(|l| l.ends_with(needle))
            .map(str::to_string)
    };
    let hello = line("out| hello").unwrap_or_else(|| panic!("{log}"));
    assert!(line("err| oops").is_some(), "{log}");
    // "2026-11-23 01:29:42.762Z out| hello"
    assert_eq!(
        hello.len(),
        "2026-11-23 01:29:42.762Z out| hello".len(),
        "{hello}"
    );
    assert!(
        hello.as_bytes()[4] == b'-' && hello.as_bytes()[23] == b'Z',
        "{hello}"
    );
}

#[test]
fn the_environment_carries_the_agent_name_and_never_the_token() {
    let h = home();
    let out = h.path().join("env.txt");
    let cmd = format!("env > {}", out.display());
    let mut spawn_env = std::collections::BTreeMap::new();
    spawn_env.insert("BERTH_TOKEN", "leak-me-not");
    let dir = KeeperDir(h.path().join("agents").join("envy"));
    std::fs::create_dir_all(dir.path()).unwrap();
    let spec = KeeperSpec {
        name: "envy".into(),
        command: cmd,
        cwd: h.path().to_path_buf(),
        env: [("BERTH_AGENT".to_string(), "envy".to_string())].into(),
        stop_signal: "TERM".into(),
        stop_grace_ms: 100,
        log_max_bytes: 1 << 20,
        log_keep: 1,
        terminal: None,
        stdin: None,
    };
    std::fs::write(dir.spec(), serde_json::to_vec(&spec).unwrap()).unwrap();
    let mut cmd = h.command(&["__keeper", "--dir", dir.path().to_str().unwrap()]);
    cmd.envs(spawn_env);
    let status = cmd.status().unwrap();
    assert!(status.success());
    let env = std::fs::read_to_string(out).unwrap();
    assert!(env.contains("BERTH_AGENT=envy"), "{env}");
    assert!(!env.contains("leak-me-not"), "{env}");
}

#[test]
fn the_keeper_outlives_whoever_started_it() {
    let h = home();
    let marker = &marker(303);
    let dir = keeper(&h, "durable", &format!("sleep {marker}"), 1_000);
    let _guard = Kept(dir.clone());
    // The spawner (this test's child) is long gone; the keeper answers on its own.
    let status = control::request(&dir.socket(), &Request::Status, Duration::from_secs(5)).unwrap();
    let keeper_pid = status.state.keeper.pid;
    assert!(berth_supervisor::tree::Identity::of(keeper_pid).is_some());
    // The keeper answers as soon as it runs; its child may still be on its way to `exec`.
    wait_until("the agent runs", Duration::from_secs(10), || {
        with_marker(marker).len() == 1
    });
    assert!(Path::new(&format!("/proc/{keeper_pid}")).exists());
    stop(&dir);
}

#[test]
fn an_agent_that_exits_leaves_nothing_running_behind() {
    let h = home();
    let marker = &marker(304);
    let dir = keeper(&h, "leaver", &format!("sleep {marker} & exit 3"), 1_000);
    let _guard = Kept(dir.clone());
    wait_until("the keeper is done", Duration::from_secs(10), || {
        read_state(&dir).is_some_and(|s| s.done)
    });
    assert_eq!(read_state(&dir).unwrap().exit.unwrap().code, Some(3));
    assert!(
        with_marker(marker).is_empty(),
        "left behind: {:?}",
        with_marker(marker)
    );
}
