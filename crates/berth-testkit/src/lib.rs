//! Test helpers shared by berth's integration tests.
//!
//! [`TestHome`] is a temporary `BERTH_HOME` plus the path of the real `berth` binary; every
//! command runs as a separate process, exactly as a user would run it, with a scrubbed
//! environment (no `BERTH_*` variables leak in from the developer's shell). Dropping a
//! `TestHome` kills any daemon still holding it, so a failing test leaves no process behind.

// A test helper fails its test by panicking, with the message saying what went wrong; it
// only ever runs under `cargo test` (berth-testkit is a dev-dependency of every crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod tmux;
mod worktree;

pub use tmux::{Tmux, quote};

pub use worktree::{
    WorktreeState, base, base_with_env, chmod, dirty, files, reset_clean, worktree_state, write,
};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The result of one command.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    fn from_output(o: Output) -> Outcome {
        Outcome {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Standard output parsed as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }

    /// Panics with the whole outcome unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Outcome {
        assert_eq!(self.code, code, "unexpected exit code:\n{self}");
        self
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A temporary berth home and the binary to drive it with.
pub struct TestHome {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl TestHome {
    pub fn new(bin: impl Into<PathBuf>) -> TestHome {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir()
            .expect("temp dir");
        TestHome {
            dir,
            bin: bin.into(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The binary under test.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    pub fn run_dir(&self) -> PathBuf {
        self.path().join("run")
    }

    pub fn socket(&self) -> PathBuf {
        self.run_dir().join("berth.sock")
    }

    /// A command for the binary with this home and a clean environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("BERTH_") {
                cmd.env_remove(&k);
            }
        }
        cmd.env("BERTH_HOME", self.path())
            .env("RUST_LOG", "info")
            .args(args);
        cmd
    }

    /// Runs `berth ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Outcome {
        self.run_cmd(self.command(args))
    }

    /// Runs `berth ARGS` inside `dir`, as a user standing there would.
    pub fn run_in(&self, dir: &Path, args: &[&str]) -> Outcome {
        let mut cmd = self.command(args);
        cmd.current_dir(dir);
        self.run_cmd(cmd)
    }

    pub fn run_cmd(&self, mut cmd: Command) -> Outcome {
        cmd.stdin(Stdio::null());
        Outcome::from_output(cmd.output().expect("run berth"))
    }

    /// Starts `berth ARGS` without waiting (e.g. `serve` in the foreground).
    pub fn spawn(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Child {
        let mut cmd = self.command(args);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().expect("spawn berth")
    }

    /// `daemon status --json` parsed.
    pub fn status(&self) -> serde_json::Value {
        self.run(&["--json", "daemon", "status"]).json()
    }

    /// The state `daemon status` reports.
    pub fn state(&self) -> String {
        self.status()["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The pid recorded in `run/daemon.pid`, if any.
    pub fn recorded_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.run_dir().join("daemon.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Sends `signal` to the daemon recorded in `run/daemon.pid` and waits until it is gone.
    /// Returns its pid.
    #[track_caller]
    pub fn signal_daemon(&self, signal: i32) -> i32 {
        let pid = self.recorded_pid().expect("a daemon pid is recorded");
        // SAFETY: kill(2) on the daemon this home's test started.
        assert_eq!(
            unsafe { libc::kill(pid, signal) },
            0,
            "kill({pid}, {signal})"
        );
        wait_until("the daemon is gone", Duration::from_secs(10), || {
            !alive(pid)
        });
        pid
    }

    /// Names of the files in `run/`.
    pub fn run_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.run_dir())
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

impl Drop for TestHome {
    /// Leaves no process behind, even when the test failed halfway: the daemon, and every
    /// keeper with its agent (keepers outlive the daemon by design).
    fn drop(&mut self) {
        if let Some(pid) = self.recorded_pid() {
            // SAFETY: kill(2) on the daemon of this home.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let projects = std::fs::read_dir(self.path().join("agents"))
            .into_iter()
            .flatten()
            .flatten();
        for agent in
            projects.flat_map(|p| std::fs::read_dir(p.path()).into_iter().flatten().flatten())
        {
            kill_keeper(&agent.path());
        }
    }
}

/// Asks a keeper to SIGKILL its whole tree, then makes sure the keeper and child are gone.
fn kill_keeper(dir: &Path) {
    let state: Option<serde_json::Value> = std::fs::read(dir.join("state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    // A keeper that finished has nothing left, and its pids may belong to others by now.
    if state.as_ref().is_none_or(|s| s["done"] == true) {
        return;
    }
    if let Ok(mut sock) = std::os::unix::net::UnixStream::connect(dir.join("keeper.sock")) {
        use std::io::{Read, Write};
        let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = sock.write_all(b"{\"op\":\"kill\"}\n");
        let _ = sock.read(&mut [0u8; 1]);
    }
    for who in ["child", "keeper"] {
        if let Some(pid) = state.as_ref().and_then(|s| s[who]["pid"].as_i64()) {
            // SAFETY: kill(2) on a process this home's keeper recorded, still running.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}

/// Polls `cond` every few milliseconds until it holds; panics with `what` after `timeout`.
#[track_caller]
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs git in `dir` and panics unless it succeeds; its standard output, trimmed.
#[track_caller]
pub fn git(dir: &Path, args: &[&str]) -> String {
    String::from_utf8_lossy(&git_bytes(dir, args))
        .trim()
        .to_string()
}

/// Runs git in `dir` and panics unless it succeeds; its standard output as it is.
#[track_caller]
pub fn git_bytes(dir: &Path, args: &[&str]) -> Vec<u8> {
    git_with_env(dir, &[], args)
}

/// Runs git in `dir` with `env` added to its environment (e.g. [`FIXED_DATES`]) and panics
/// unless it succeeds; its standard output as it is.
#[track_caller]
pub fn git_with_env(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Vec<u8> {
    let out = Command::new("git")
        .current_dir(dir)
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Author and committer dates for [`git_with_env`]: commits made with them are identical in
/// twin repositories.
pub const FIXED_DATES: &[(&str, &str)] = &[
    ("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z"),
    ("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z"),
];

/// Makes the existing directory `dir` a new repository on `main` with a user identity.
pub fn init_repo(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["config", "user.name", "Test"]);
    git(dir, &["config", "user.email", "test@example.com"]);
}

/// A new repository on `main` with a user identity and no commit yet.
pub fn empty_repo() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("berth-repo-")
        .tempdir()
        .expect("temp dir");
    init_repo(dir.path());
    dir
}

/// A new repository on `main` with a user identity and one commit holding `files`.
pub fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = empty_repo();
    let p = dir.path();
    for (name, content) in files {
        std::fs::write(p.join(name), content).expect("write a file");
    }
    git(p, &["add", "-A"]);
    git(p, &["commit", "-q", "--allow-empty", "-m", "base"]);
    dir
}

/// Permission bits of a file.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or_default()
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}
