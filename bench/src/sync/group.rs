//! A tool's process started in a process group of its own, with its output in a log file; the
//! whole group (helpers such as `unison-fsmonitor` included) is stopped when it is dropped.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use super::{cleanup, procs};

pub struct Group {
    name: String,
    child: Child,
    log: PathBuf,
    stopped: bool,
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
        cleanup::add_group(child.id());
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
        cleanup::signal_group(pgid, "TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let _ = self.child.try_wait();
            let left = procs::group_members(pgid);
            // The leader stays listed until reaped; once reaped, nothing of the group may remain.
            if left.is_empty() {
                cleanup::remove_group(pgid);
                return;
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        cleanup::signal_group(pgid, "KILL");
        let _ = self.child.wait();
        cleanup::remove_group(pgid);
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_ends_the_leader_and_its_children() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 60 & sleep 60 & wait"]);
        let (mut group, _) =
            Group::spawn("sleepers", cmd, &dir.path().join("log"), false).expect("spawn");
        let pgid = group.pid();
        let deadline = Instant::now() + Duration::from_secs(5);
        while procs::group_members(pgid).len() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(procs::group_members(pgid).len(), 3);
        assert!(group.check_running().is_ok());
        group.stop();
        assert!(procs::group_members(pgid).is_empty());
    }
}
