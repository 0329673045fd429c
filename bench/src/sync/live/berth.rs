//! berth's side: `berth --json debug sync ALPHA BETA` with a fresh `BERTH_HOME`, ready once it
//! prints a line with `"event":"ready"` (the initial sync is done and it is watching). Over ssh
//! BETA is `ssh://127.0.0.1:PORT/BETA` and `BERTH_SSH` the client with the benchmark's
//! configuration; the far side runs the copy of itself berth installed there by digest.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{ChildStdout, Command};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use super::super::Env;
use super::super::group::Group;

pub struct Berth {
    lines: Receiver<String>,
}

/// Forwards berth's stdout line by line, copying it to `log`; keeps draining after the receiver
/// is gone so berth never blocks on a full pipe.
fn forward(stdout: ChildStdout, log: std::fs::File) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut log = log;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(log, "{line}");
            let _ = tx.send(line);
        }
    });
    rx
}

fn home(work: &Path) -> Result<std::path::PathBuf, String> {
    let home = work.join("berth-home");
    std::fs::create_dir_all(&home).map_err(|e| format!("{}: {e}", home.display()))?;
    Ok(home)
}

/// `berth debug sync ALPHA BETA` with its own home, BETA reached through `env.ssh` when set.
fn command(env: &Env, work: &Path, alpha: &Path, beta: &Path) -> Result<Command, String> {
    let mut cmd = Command::new(&env.berth);
    cmd.env("BERTH_HOME", home(work)?)
        .env_remove("BERTH_REMOTE_BIN")
        .args(["debug", "sync"])
        .arg(alpha);
    match &env.ssh {
        Some(ssh) => cmd.env("BERTH_SSH", ssh.command()).arg(format!(
            "ssh://127.0.0.1:{}{}",
            ssh.port,
            beta.display()
        )),
        None => cmd.arg(beta),
    };
    Ok(cmd)
}

pub fn start(env: &Env, work: &Path, alpha: &Path, beta: &Path) -> Result<(Group, Berth), String> {
    let mut cmd = command(env, work, alpha, beta)?;
    cmd.arg("--json");
    spawn(cmd, work)
}

/// Starts `cmd` as berth, its stdout forwarded line by line (and copied to a log under `work`).
fn spawn(cmd: Command, work: &Path) -> Result<(Group, Berth), String> {
    let (group, stdout) = Group::spawn("berth debug sync", cmd, &work.join("berth.log"), true)?;
    let stdout = stdout.ok_or("berth's stdout was not piped")?;
    let out_log = work.join("berth.stdout");
    let file = std::fs::File::create(&out_log)
        .map_err(|e| format!("cannot create {}: {e}", out_log.display()))?;
    Ok((
        group,
        Berth {
            lines: forward(stdout, file),
        },
    ))
}

/// One round into an empty directory: `berth debug sync SRC DST --once`.
pub fn once_command(env: &Env, work: &Path, src: &Path, dst: &Path) -> Result<Command, String> {
    let mut cmd = command(env, work, src, dst)?;
    cmd.arg("--once");
    Ok(cmd)
}

impl Berth {
    /// Waits for the ready line, failing early if berth exits.
    pub fn wait_ready(&mut self, group: &mut Group, deadline: Instant) -> Result<(), String> {
        let began = Instant::now();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(line) => {
                    let event = serde_json::from_str::<serde_json::Value>(&line)
                        .ok()
                        .and_then(|v| v["event"].as_str().map(str::to_string));
                    if event.as_deref() == Some("ready") {
                        return Ok(());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    // Stdout closes just before the exit is seen: give the exit a moment.
                    for _ in 0..10 {
                        group.check_running()?;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    return Err(format!(
                        "berth closed its stdout without a ready line{}",
                        group.tail()
                    ));
                }
            }
            group.check_running()?;
            if Instant::now() >= deadline {
                return Err(format!(
                    "berth printed no \"event\":\"ready\" line within {:.0} s (a binary without \
                     the live watcher never does; --berth-no-ready measures it anyway){}",
                    began.elapsed().as_secs_f64(),
                    group.tail()
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `script` as if it were berth and waits up to `secs` for its ready line.
    fn wait_for(script: &str, secs: u64) -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        let (mut group, mut berth) = spawn(cmd, dir.path())?;
        berth.wait_ready(&mut group, Instant::now() + Duration::from_secs(secs))
    }

    #[test]
    fn the_ready_line_is_found_among_others() {
        let script = r#"echo '{"event":"scan"}'; echo 'not json'; echo '{"event":"ready","ms":1}'; exec sleep 30"#;
        assert_eq!(wait_for(script, 5), Ok(()));
    }

    #[test]
    fn no_ready_line_fails_at_the_deadline() {
        let e = wait_for("exec sleep 30", 1).unwrap_err();
        assert!(e.contains(r#"no "event":"ready" line"#), "{e}");
    }

    #[test]
    fn exiting_before_ready_fails_at_once_with_the_log() {
        let began = Instant::now();
        let e = wait_for("echo 'engine broke' >&2; exit 3", 10).unwrap_err();
        assert!(e.contains("exited") && e.contains("engine broke"), "{e}");
        assert!(began.elapsed() < Duration::from_secs(5));
    }
}
