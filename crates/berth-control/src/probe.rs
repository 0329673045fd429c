//! Looks at a home from outside and classifies the daemon's state (`berth_core::daemon_state`).

use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;
use std::time::Duration;

use berth_client::{Client, ClientError, Connection};
use berth_core::daemon_state::{
    self, DaemonState, LivePhase, LockObservation, Observation, SocketProbe,
};
use berth_core::home::Home;
use berth_proto::{DaemonPhase, DaemonStatus, Handshake};

use crate::files::remove_if_present;
use crate::lock::probe_lock;
use crate::metadata::Metadata;

/// How long the socket probe waits for a handshake.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Everything observed, and the state it means.
pub struct Probe {
    pub state: DaemonState,
    pub lock: LockObservation,
    pub socket: SocketProbe,
    pub handshake: Option<Handshake>,
    /// The connection the handshake went over, kept open for a follow-up request.
    pub connection: Option<Connection>,
    pub metadata: Option<Metadata>,
    /// Runtime files that exist (all of them, socket and lock included).
    pub files: Vec<PathBuf>,
}

impl Probe {
    /// The daemon's pid, from the lock holder or else the metadata.
    pub fn pid(&self) -> Option<u32> {
        match self.lock {
            LockObservation::Held { pid: Some(pid) } => Some(pid),
            _ => self
                .handshake
                .as_ref()
                .map(|h| h.pid)
                .or(self.metadata.as_ref().map(|m| m.pid)),
        }
    }
}

fn live(p: DaemonPhase) -> LivePhase {
    match p {
        DaemonPhase::Starting => LivePhase::Starting,
        DaemonPhase::Running => LivePhase::Running,
        DaemonPhase::Stopping => LivePhase::Stopping,
    }
}

/// Longest a probe waits for a daemon that is dying to be gone (see [`probe`]).
const DYING_WAIT: Duration = Duration::from_secs(5);

/// Looks at the home and classifies what it sees.
///
/// A daemon killed a moment ago is torn down by the kernel one descriptor at a time: for a few
/// milliseconds its socket may still accept a connection and then drop it, after its lock is
/// already released. That looks like a program that is not berth. So when the socket seems
/// foreign and the metadata names a daemon process, the probe waits until that process has
/// ended (at once if it has; at most [`DYING_WAIT`]) and looks once more: what it sees then is
/// the truth — usually the stale files of a dead daemon, or still a foreign program.
pub async fn probe(home: &Home) -> Probe {
    let first = observe(home).await;
    let Some(recorded) = first.metadata.as_ref().map(|m| m.pid) else {
        return first;
    };
    if first.state != DaemonState::Foreign {
        return first;
    }
    let deadline = std::time::Instant::now() + DYING_WAIT;
    while process_running(recorded) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    observe(home).await
}

/// Whether a process with this pid exists and has not yet ended (a zombie has: its descriptors
/// are closed).
fn process_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may contain anything.
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    !matches!(state, None | Some("Z" | "X" | "x"))
}

/// One look at the home: the lock, the socket, the runtime files.
async fn observe(home: &Home) -> Probe {
    let lock = probe_lock(home);
    let (socket, handshake, connection) = probe_socket(home).await;
    let metadata = Metadata::read(home);
    let files: Vec<PathBuf> = home
        .runtime_files()
        .into_iter()
        .filter(|p| p.exists())
        .collect();
    let leftover_files = [home.pid_file(), home.metadata_file(), home.lock_file()]
        .iter()
        .any(|p| files.contains(p));
    let obs = Observation {
        lock,
        socket: socket.clone(),
        leftover_files,
        recorded_phase: metadata.as_ref().map(|m| m.phase),
    };
    let state = daemon_state::classify(&obs, berth_proto::PROTOCOL_VERSION);
    Probe {
        state,
        lock,
        socket,
        handshake,
        connection,
        metadata,
        files,
    }
}

async fn probe_socket(home: &Home) -> (SocketProbe, Option<Handshake>, Option<Connection>) {
    let path = home.socket();
    match std::fs::symlink_metadata(&path) {
        Err(_) => return (SocketProbe::Absent, None, None),
        Ok(m) if !m.file_type().is_socket() => return (SocketProbe::NotASocket, None, None),
        Ok(_) => {}
    }
    let client = Client::unix(&path).with_timeout(PROBE_TIMEOUT);
    let answer = match client.connect().await {
        Ok(mut conn) => conn.handshake().await.map(|h| (h, conn)),
        Err(e) => Err(e),
    };
    match answer {
        Ok((h, conn)) => {
            let probe = SocketProbe::Berth {
                protocol: h.protocol,
                phase: live(h.phase),
            };
            (probe, Some(h), Some(conn))
        }
        Err(ClientError::NotRunning { .. }) => (SocketProbe::Refused, None, None),
        Err(ClientError::Timeout { .. }) => (SocketProbe::NoAnswer, None, None),
        Err(_) => (SocketProbe::Foreign, None, None),
    }
}

impl Probe {
    /// `GET /v1/status` over the probe's connection (a compatible daemon answered it).
    pub async fn daemon_status(&mut self) -> Result<DaemonStatus, ClientError> {
        match self.connection.as_mut() {
            Some(conn) => conn.get_json("/v1/status").await,
            None => Err(ClientError::Protocol("no daemon answered the probe".into())),
        }
    }
}

/// Removes the runtime files of a daemon that is gone. Only valid while nobody holds the lock;
/// a socket something still answers on is never removed. Returns what was removed.
pub fn clean_stale(home: &Home, probe: &Probe) -> std::io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    if probe.lock != LockObservation::Free {
        return Ok(removed);
    }
    let socket_is_dead = probe.socket == SocketProbe::Refused;
    for path in home.runtime_files() {
        if path == home.socket() && !socket_is_dead {
            continue;
        }
        if remove_if_present(&path)? {
            removed.push(path);
        }
    }
    Ok(removed)
}
