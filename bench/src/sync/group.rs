//! A tool's process started in a process group of its own, with its output in a log file; the
//! whole group (helpers such as `unison-fsmonitor` included) is stopped when it is dropped.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use super::procs;

pub struct Group {
    name: String,
    child: Child,
    log: PathBuf,
    stopped: bool,
}

fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Group {
    /// Starts `cmd` as the leader of a new process group, stderr (and stdout unless `pipe_stdout`)
    /// appended to `log`. Returns the piped stdout when asked for.
    pub fn spawn(
        name: &str,
        mut cmd: Command,
        log: &Path,
        pipe_stdout: bool,
    ) -> Result<(Group, Option<ChildStdout>), String> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
        let err = file.try_clone().map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null()).stderr(err).process_group(0);
        if pipe_stdout {
            cmd.stdout(Stdio::piped());
        } else {
            cmd.stdout(file);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let stdout = child.stdout.take();
        Ok((
            Group {
                name: name.to_string(),
                child,
                log: log.to_path_buf(),
                stopped: false,
            },
            stdout,
        ))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error naming the exit status and the log's tail if the leader has exited.
    pub fn check_running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("{} exited ({status}){}", self.name, self.tail())),
            Err(e) => Err(format!("{}: {e}", self.name)),
        }
    }

    /// The last lines of the log, for error messages.
    pub fn tail(&self) -> String {
        let text = std::fs::read(&self.log).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = &lines[lines.len().saturating_sub(8)..];
        if tail.is_empty() {
            String::new()
        } else {
            format!(
                "; last lines of {}:\n    {}",
                self.log.display(),
                tail.join("\n    ")
            )
        }
    }

    /// SIGTERM to the whole group, SIGKILL to what is left after a few seconds; reaps the leader.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let pgid = self.pid();
        signal_group(pgid, "TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let _ = self.child.try_wait();
            let left = procs::group_members(pgid);
            // The leader stays listed until reaped; once reaped, nothing of the group may remain.
            if left.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        signal_group(pgid, "KILL");
        let _ = self.child.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop();
    }
}
