//! berth's side: `berth --json debug sync ALPHA BETA` with a fresh `BERTH_HOME`, ready once it
//! prints a line with `"event":"ready"` (the initial sync is done and it is watching).

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

pub fn start(env: &Env, work: &Path, alpha: &Path, beta: &Path) -> Result<(Group, Berth), String> {
    let mut cmd = Command::new(&env.berth);
    cmd.env("BERTH_HOME", home(work)?)
        .arg("--json")
        .args(["debug", "sync"])
        .args([alpha, beta]);
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
    let mut cmd = Command::new(&env.berth);
    cmd.env("BERTH_HOME", home(work)?)
        .args(["debug", "sync"])
        .args([src, dst])
        .arg("--once");
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
                    group.check_running()?;
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
