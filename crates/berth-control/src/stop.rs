//! Stopping the daemon: ask over the API, then SIGTERM, then SIGKILL, each wait bounded
//! (`berth_core::stop` decides the steps). The daemon is gone when nobody holds its lock; only
//! then are the runtime files it could not remove itself cleaned (a socket something still
//! answers on excepted).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_client::Client;
use berth_core::daemon_state::{DaemonState, LockObservation};
use berth_core::home::Home;
use berth_core::stop::{self, StopInput, StopOutcome, StopState};
use serde::Serialize;

use crate::error::ControlError;
use crate::lock::probe_lock;
use crate::probe::{clean_stale, probe};
use crate::start::refuse;

/// How long each step of a stop may wait.
#[derive(Debug, Clone, Copy)]
pub struct StopTimeouts {
    /// After asking the daemon to stop, before SIGTERM.
    pub graceful: Duration,
    /// After SIGTERM, before SIGKILL.
    pub term: Duration,
    /// After SIGKILL, before giving up.
    pub kill: Duration,
}

/// What `daemon stop` did.
#[derive(Debug, Serialize)]
pub struct Stopped {
    pub was: DaemonState,
    pub stopped: bool,
    pub pid: Option<u32>,
    pub outcome: Option<StopOutcome>,
    pub elapsed_ms: u64,
    /// Stale files left in place (not running; `daemon start` or `doctor --fix` cleans them).
    pub stale_files: Vec<PathBuf>,
}

/// Waits until no process holds the home's lock, polling; `false` when `timeout` passes first.
pub async fn wait_gone(home: &Home, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if probe_lock(home) == LockObservation::Free {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) -> StopInput {
    let Ok(raw) = i32::try_from(pid) else {
        return StopInput::Exited;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), sig) {
        Ok(()) => StopInput::SignalSent,
        Err(_) => StopInput::Exited,
    }
}

async fn wait_input(home: &Home, timeout: Duration) -> StopInput {
    if wait_gone(home, timeout).await {
        StopInput::Exited
    } else {
        StopInput::TimedOut
    }
}

/// Stops the daemon of `home`; with `all`, its agents and services too.
pub async fn stop(home: &Home, t: &StopTimeouts, all: bool) -> Result<Stopped, ControlError> {
    let p = probe(home).await;
    let started = Instant::now();
    let mut report = Stopped {
        was: p.state,
        stopped: false,
        pid: p.pid(),
        outcome: None,
        elapsed_ms: 0,
        stale_files: Vec::new(),
    };
    match p.state {
        DaemonState::Stopped => return Ok(report),
        DaemonState::Stale => {
            report.stale_files = p.files.clone();
            return Ok(report);
        }
        DaemonState::Foreign | DaemonState::Incompatible => return Err(refuse(home, &p)),
        DaemonState::Running | DaemonState::Starting | DaemonState::Stopping => {}
    }
    let pid = match p.lock {
        LockObservation::Held { pid: Some(pid) } => pid,
        _ => p.pid().ok_or(ControlError::NoPid)?,
    };
    let mut state = stop::INITIAL;
    loop {
        let input = match state {
            // With --all the answer waits for every agent's stop (grace periods included).
            StopState::Ask => match Client::unix(home.socket())
                .with_timeout(if all {
                    Duration::from_secs(120)
                } else {
                    berth_client::DEFAULT_TIMEOUT
                })
                .shutdown("berth daemon stop", all)
                .await
            {
                Ok(()) => StopInput::AskAccepted,
                Err(_) if probe_lock(home) == LockObservation::Free => StopInput::Exited,
                Err(_) => StopInput::AskFailed,
            },
            StopState::AwaitGraceful => wait_input(home, t.graceful).await,
            StopState::Terminate => signal(pid, nix::sys::signal::Signal::SIGTERM),
            StopState::AwaitTerm => wait_input(home, t.term).await,
            StopState::Kill => signal(pid, nix::sys::signal::Signal::SIGKILL),
            StopState::AwaitKill => wait_input(home, t.kill).await,
            StopState::Done(outcome) => {
                // Whatever the daemon could not remove itself (killed, crashed) goes now that it
                // is really gone; a socket something else answers on stays.
                let after = probe(home).await;
                clean_stale(home, &after).map_err(|e| {
                    ControlError::io("io", "cannot remove the stopped daemon's runtime files", e)
                })?;
                report.stopped = true;
                report.outcome = Some(outcome);
                report.elapsed_ms = started.elapsed().as_millis() as u64;
                return Ok(report);
            }
            StopState::Unkillable => return Err(ControlError::Unkillable { pid }),
        };
        state = stop::next(state, input).map_err(|e| ControlError::Internal(e.to_string()))?;
    }
}
