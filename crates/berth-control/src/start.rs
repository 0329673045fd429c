//! Starting the daemon: `berth serve --detached` in a new session, ready when it says so.
//!
//! The parent hands the daemon the write end of a pipe as descriptor 3 ([`crate::readiness`])
//! and `poll`s the read end: `ready …` means done, `failed …` or end-of-file means it could not
//! start. A start that gives up — the deadline passed, or the daemon died — never leaves a
//! half-started daemon behind and never leaves the failure unrecorded: a daemon that is still
//! running is stopped (SIGTERM, then SIGKILL), and when the daemon wrote no failure record of
//! its own the parent writes one. The log lines shown are the ones this run wrote.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_core::config::{self, ServeConfig, TokenSource};
use berth_core::daemon_state::DaemonState;
use berth_core::home::Home;
use berth_proto::PROTOCOL_VERSION;
use serde::Serialize;

use crate::error::ControlError;
use crate::failure::{FailureRecord, now_ms};
use crate::files::prepare_run_dir;
use crate::logs::{Mark, tail_since};
use crate::probe::{Probe, clean_stale, probe};
use crate::readiness::{Report, parse_report};

/// Lines of the daemon log shown when a start fails.
const FAILURE_TAIL: usize = 20;
/// How long a daemon that was given up on gets to end after SIGTERM, and after SIGKILL.
const GIVE_UP_GRACE: Duration = Duration::from_secs(2);
/// How often a start looks again at a daemon that holds the lock without answering.
const SETTLE_POLL: Duration = Duration::from_millis(20);

/// What `daemon start` did.
#[derive(Debug, Serialize)]
pub struct Started {
    pub state: DaemonState,
    pub already_running: bool,
    pub pid: Option<u32>,
    pub generation: Option<String>,
    pub socket: PathBuf,
    pub tcp: Option<String>,
    pub ready_ms: Option<u64>,
    pub cleaned_stale_files: Vec<PathBuf>,
}

/// Refuses the states a start cannot proceed from.
pub(crate) fn refuse(home: &Home, p: &Probe) -> ControlError {
    match p.state {
        DaemonState::Stopping => ControlError::Stopping,
        DaemonState::Incompatible => {
            let (protocol, version, pid) = match &p.handshake {
                Some(h) => (h.protocol.to_string(), h.version.clone(), h.pid.to_string()),
                None => ("?".into(), "?".into(), "?".into()),
            };
            ControlError::Incompatible {
                protocol,
                version,
                pid,
            }
        }
        _ => ControlError::Foreign {
            socket: home.socket(),
        },
    }
}

/// Starts the daemon of `home` with `config` (or finds it running with the same configuration),
/// waiting at most `timeout` for it to be ready. `env_token` is the token when the configuration
/// takes it from `BERTH_TOKEN`; it reaches the daemon through a pipe, never its environment.
pub async fn start(
    home: &Home,
    config: &ServeConfig,
    env_token: Option<&str>,
    timeout: Duration,
) -> Result<Started, ControlError> {
    let asked = Instant::now();
    let mut p = probe(home).await;
    // The lock is held but nothing answers yet: a daemon between its start and its socket, or
    // one killed a moment ago whose descriptors the kernel is still closing. Either settles.
    while matches!(p.state, DaemonState::Running | DaemonState::Starting)
        && p.connection.is_none()
        && asked.elapsed() < timeout
    {
        tokio::time::sleep(SETTLE_POLL).await;
        p = probe(home).await;
    }
    let mut cleaned = Vec::new();
    match p.state {
        DaemonState::Running | DaemonState::Starting => {
            let status = p.daemon_status().await?;
            let wanted = config.effective(PROTOCOL_VERSION).fields;
            let diff = config::diff(&wanted, &status.config);
            if !diff.is_empty() {
                return Err(ControlError::ConfigMismatch { diff });
            }
            return Ok(Started {
                state: p.state,
                already_running: true,
                pid: Some(status.handshake.pid),
                generation: Some(status.handshake.generation),
                socket: home.socket(),
                tcp: status.tcp,
                ready_ms: None,
                cleaned_stale_files: cleaned,
            });
        }
        DaemonState::Stopping | DaemonState::Foreign | DaemonState::Incompatible => {
            return Err(refuse(home, &p));
        }
        DaemonState::Stale => {
            cleaned = clean_stale(home, &p)
                .map_err(|e| ControlError::io("io", "cannot remove stale runtime files", e))?
        }
        DaemonState::Stopped => {}
    }

    let started = Instant::now();
    let spawned_at_ms = now_ms();
    let log_mark = Mark::now(&home.daemon_log());
    let (mut child, pipe) = spawn(home, config, env_token)?;
    let log = || run_log(home, log_mark);
    match read_report(pipe, timeout) {
        ReadOutcome::Report(Report::Ready(detail)) => {
            let detail: serde_json::Value = serde_json::from_str(&detail).unwrap_or_default();
            Ok(Started {
                state: DaemonState::Running,
                already_running: false,
                pid: detail["pid"].as_u64().and_then(|p| u32::try_from(p).ok()),
                generation: detail["generation"].as_str().map(str::to_string),
                socket: home.socket(),
                tcp: detail["tcp"].as_str().map(str::to_string),
                ready_ms: Some(started.elapsed().as_millis() as u64),
                cleaned_stale_files: cleaned,
            })
        }
        ReadOutcome::Report(Report::Failed(message)) => {
            let code = wait_end(&mut child, GIVE_UP_GRACE).and_then(|s| s.code());
            Err(ControlError::StartFailed {
                message,
                refused: code == Some(crate::REFUSED_EXIT),
                log: log(),
            })
        }
        ReadOutcome::Eof => {
            // It closed the pipe without a word: it is ending (or must be made to).
            let how = match wait_end(&mut child, GIVE_UP_GRACE) {
                Some(status) => status.code().map_or_else(
                    || "was killed by a signal".to_string(),
                    |c| format!("exited with status {c}"),
                ),
                None => format!("closed its readiness pipe ({})", give_up(&mut child)),
            };
            let failure = own_record(home, spawned_at_ms).or_else(|| {
                record_for(
                    home,
                    &child,
                    "start",
                    format!("the daemon {how} before it was ready"),
                )
            });
            Err(ControlError::StartCrashed {
                how,
                failure: failure.map(Box::new),
                log: log(),
            })
        }
        ReadOutcome::TimedOut => {
            let outcome = give_up(&mut child);
            let message = format!("the daemon did not report ready within {timeout:?}; {outcome}");
            record_for(home, &child, "start", message);
            Err(ControlError::StartTimeout {
                pid: child.id(),
                timeout,
                outcome,
                log: log(),
            })
        }
    }
}

/// The log lines this run wrote, for a person.
fn run_log(home: &Home, mark: Option<Mark>) -> Vec<String> {
    let lines = tail_since(&home.daemon_log(), mark, FAILURE_TAIL);
    if lines.is_empty() {
        return vec![format!(
            "(the daemon wrote nothing to {})",
            home.daemon_log().display()
        )];
    }
    let mut out = vec![format!("last lines of {}:", home.daemon_log().display())];
    out.extend(lines.into_iter().map(|l| format!("| {l}")));
    out
}

/// The failure record the daemon itself wrote during this start, if any.
fn own_record(home: &Home, since_ms: i64) -> Option<FailureRecord> {
    FailureRecord::read(&home.last_failure()).filter(|f| f.time_ms >= since_ms)
}

/// Writes the failure record a daemon could not write itself (it died first, or was given up
/// on). Its generation is the daemon's when its metadata names it, else `start-<pid>`.
fn record_for(home: &Home, child: &Child, phase: &str, message: String) -> Option<FailureRecord> {
    let generation = crate::metadata::Metadata::read(home)
        .filter(|m| m.pid == child.id())
        .map_or_else(|| format!("start-{}", child.id()), |m| m.generation);
    let record = FailureRecord::of_process(child.id(), &generation, phase, message);
    // Recording is best effort: the error the caller returns says the same.
    record.write(home).ok().map(|()| record)
}

/// Stops a daemon that did not become ready in time: SIGTERM, then SIGKILL. Says what happened.
fn give_up(child: &mut Child) -> String {
    let Ok(raw) = i32::try_from(child.id()) else {
        return "berth could not stop it (its pid is out of range)".into();
    };
    let pid = nix::unistd::Pid::from_raw(raw);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    if wait_end(child, GIVE_UP_GRACE).is_some() {
        return "berth stopped it (SIGTERM)".into();
    }
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    if wait_end(child, GIVE_UP_GRACE).is_some() {
        return "berth killed it (SIGKILL)".into();
    }
    format!("it is still alive after SIGKILL (pid {})", child.id())
}

/// The file descriptors the daemon sees the readiness pipe and the token pipe on.
const READY_FD: i32 = 3;
const TOKEN_FD: i32 = 4;

fn pipe_error(e: nix::errno::Errno, what: &str) -> ControlError {
    ControlError::io("pipe", what, e.into())
}

/// A pipe already holding the whole token, read end first; the token never enters the
/// daemon's environment (where `/proc/PID/environ` would show it).
fn token_pipe(token: &str) -> Result<OwnedFd, ControlError> {
    const WHAT: &str = "cannot pass the token";
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| pipe_error(e, WHAT))?;
    std::io::Write::write_all(&mut File::from(write_end), token.as_bytes())
        .map_err(|e| ControlError::io("pipe", WHAT, e))?;
    Ok(read_end)
}

fn spawn(
    home: &Home,
    config: &ServeConfig,
    env_token: Option<&str>,
) -> Result<(Child, OwnedFd), ControlError> {
    prepare_run_dir(home).map_err(|e| {
        ControlError::io(
            "run_dir",
            format!("cannot prepare {}", home.run_dir().display()),
            e,
        )
    })?;
    let exe = std::env::current_exe()
        .map_err(|e| ControlError::io("no_exe", "cannot find the berth executable", e))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.daemon_log())
        .map_err(|e| {
            ControlError::io(
                "log",
                format!("cannot open {}", home.daemon_log().display()),
                e,
            )
        })?;
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| pipe_error(e, "cannot create the readiness pipe"))?;

    let mut cmd = Command::new(exe);
    cmd.arg("--home")
        .arg(home.root())
        .arg("serve")
        .arg("--log-max-bytes")
        .arg(config.log_max_bytes.to_string())
        .arg("--log-keep")
        .arg(config.log_keep.to_string())
        .arg("--event-retention")
        .arg(config.event_retention.to_string())
        .arg("--ready-fd")
        .arg(READY_FD.to_string())
        .arg("--detached")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(addr) = config.listen {
        cmd.arg("--listen").arg(addr.to_string());
        if config.listen_public {
            cmd.arg("--listen-public");
        }
    }
    let mut token_read = None;
    match &config.token_source {
        Some(TokenSource::File(path)) => {
            cmd.arg("--token-file").arg(path);
        }
        Some(TokenSource::Env) => {
            token_read = Some(token_pipe(env_token.unwrap_or_default())?);
            cmd.arg("--token-fd").arg(TOKEN_FD.to_string());
        }
        None => {}
    }
    let fd = write_end.as_raw_fd();
    let token_fd = token_read.as_ref().map(|t| t.as_raw_fd());
    // SAFETY: the closure runs in the forked child before exec and calls only async-signal-safe
    // functions (fcntl, dup2, setsid) on descriptors that exist in the child. Both pipes are
    // first copied above 10 (close-on-exec), so placing one on 3 or 4 cannot clobber the other.
    unsafe {
        cmd.pre_exec(move || {
            let place = |from: i32, to: i32| -> std::io::Result<()> {
                if libc::dup2(from, to) < 0 || libc::fcntl(to, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            };
            let ready_high = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
            let token_high = token_fd.map(|t| libc::fcntl(t, libc::F_DUPFD_CLOEXEC, 10));
            if ready_high < 0 || token_high.is_some_and(|t| t < 0) {
                return Err(std::io::Error::last_os_error());
            }
            place(ready_high, READY_FD)?;
            if let Some(t) = token_high {
                place(t, TOKEN_FD)?;
            }
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| ControlError::io("spawn", "cannot start the daemon process", e))?;
    drop(write_end);
    drop(token_read);
    Ok((child, read_end))
}

enum ReadOutcome {
    Report(Report),
    Eof,
    TimedOut,
}

/// Waits for the daemon's one line on the readiness pipe, bounded by `timeout`.
fn read_report(pipe: OwnedFd, timeout: Duration) -> ReadOutcome {
    let deadline = Instant::now() + timeout;
    let mut file = File::from(pipe);
    let mut buf = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return ReadOutcome::TimedOut;
        }
        let mut pfd = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1);
        // SAFETY: one valid pollfd for an open descriptor.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return ReadOutcome::Eof;
        }
        if rc == 0 {
            continue;
        }
        let mut chunk = [0u8; 4096];
        match file.read(&mut chunk) {
            Ok(0) | Err(_) => return ReadOutcome::Eof,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line = String::from_utf8_lossy(&buf[..end]).into_owned();
            return match parse_report(&line) {
                Some(r) => ReadOutcome::Report(r),
                None => ReadOutcome::Report(Report::Failed(format!(
                    "unexpected readiness message {line:?}"
                ))),
            };
        }
    }
}

/// How the child ended, if it did within `wait`.
fn wait_end(child: &mut Child, wait: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => return None,
        }
    }
    None
}
