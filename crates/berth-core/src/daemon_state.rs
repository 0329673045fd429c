//! The seven states of `berth daemon status`, classified from outside observations.
//!
//! The CLI gathers an [`Observation`] (who holds the lock, what answers on the socket, which
//! runtime files exist, the phase recorded in the metadata) and [`classify`] decides. The lock is
//! the authority on whether a daemon process exists; the socket probe says what it is.

use serde::{Deserialize, Serialize};

/// Phase of a live daemon, as it reports itself or as its metadata records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LivePhase {
    Starting,
    Running,
    Stopping,
}

/// What `berth daemon status` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DaemonState {
    /// The socket answers with a compatible protocol version and the daemon is ready.
    Running,
    /// The daemon process is up but still preparing storage or recovering.
    Starting,
    /// Shutdown requested and in progress.
    Stopping,
    /// Nothing running, no leftover files.
    Stopped,
    /// Leftover runtime files of a daemon that is gone.
    Stale,
    /// The socket path is held by something that is not berth.
    Foreign,
    /// A berth daemon of another protocol version answers.
    Incompatible,
}

impl DaemonState {
    pub fn as_str(self) -> &'static str {
        match self {
            DaemonState::Running => "running",
            DaemonState::Starting => "starting",
            DaemonState::Stopping => "stopping",
            DaemonState::Stopped => "stopped",
            DaemonState::Stale => "stale",
            DaemonState::Foreign => "foreign",
            DaemonState::Incompatible => "incompatible",
        }
    }

    /// States in which a berth daemon process of this home is alive.
    pub fn is_alive(self) -> bool {
        matches!(
            self,
            DaemonState::Running | DaemonState::Starting | DaemonState::Stopping
        )
    }
}

/// Who holds `run/daemon.lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockObservation {
    Free,
    Held { pid: Option<u32> },
}

/// What happened when connecting to the socket path and asking for the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketProbe {
    /// Nothing at the path.
    Absent,
    /// Something other than a socket is at the path.
    NotASocket,
    /// A socket file exists but nobody accepts connections on it.
    Refused,
    /// A connection was accepted but no answer came within the probe timeout.
    NoAnswer,
    /// It answered, but not as berth (another protocol, another product, garbage).
    Foreign,
    /// A berth daemon answered the handshake.
    Berth { protocol: u32, phase: LivePhase },
}

/// Everything [`classify`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub lock: LockObservation,
    pub socket: SocketProbe,
    /// Runtime files other than the socket and the lock that exist (pid file, metadata).
    pub leftover_files: bool,
    /// The phase the metadata file records, if it is readable.
    pub recorded_phase: Option<LivePhase>,
}

/// Decides the daemon state from an observation.
///
/// Rules, in order:
/// 1. A berth handshake decides: our protocol → the phase it reports; another → `incompatible`.
/// 2. An answer that is not berth's, or a non-socket at the path → `foreign`.
/// 3. An accepted connection without an answer is our daemon only if the lock is held (busy);
///    otherwise someone else is listening → `foreign`.
/// 4. No answer at all: a held lock means our daemon is between phases (before its socket is
///    bound, or after it closed it) — `stopping` if its metadata says so, else `starting`.
/// 5. Lock free: any runtime file left → `stale`, else `stopped`.
pub fn classify(obs: &Observation, our_protocol: u32) -> DaemonState {
    let held = matches!(obs.lock, LockObservation::Held { .. });
    let between_phases = || match obs.recorded_phase {
        Some(LivePhase::Stopping) => DaemonState::Stopping,
        _ => DaemonState::Starting,
    };
    match &obs.socket {
        SocketProbe::Berth { protocol, phase } if *protocol == our_protocol => match phase {
            LivePhase::Starting => DaemonState::Starting,
            LivePhase::Running => DaemonState::Running,
            LivePhase::Stopping => DaemonState::Stopping,
        },
        SocketProbe::Berth { .. } => DaemonState::Incompatible,
        SocketProbe::Foreign | SocketProbe::NotASocket => DaemonState::Foreign,
        SocketProbe::NoAnswer if held => between_phases(),
        SocketProbe::NoAnswer => DaemonState::Foreign,
        SocketProbe::Absent | SocketProbe::Refused if held => between_phases(),
        SocketProbe::Refused => DaemonState::Stale,
        SocketProbe::Absent if obs.leftover_files => DaemonState::Stale,
        SocketProbe::Absent => DaemonState::Stopped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DaemonState as S;

    const P: u32 = 1;

    fn obs(lock: LockObservation, socket: SocketProbe, leftovers: bool) -> Observation {
        Observation {
            lock,
            socket,
            leftover_files: leftovers,
            recorded_phase: None,
        }
    }

    fn all_probes() -> Vec<SocketProbe> {
        let mut v = vec![
            SocketProbe::Absent,
            SocketProbe::NotASocket,
            SocketProbe::Refused,
            SocketProbe::NoAnswer,
            SocketProbe::Foreign,
        ];
        for protocol in [P, P + 1] {
            for phase in [LivePhase::Starting, LivePhase::Running, LivePhase::Stopping] {
                v.push(SocketProbe::Berth { protocol, phase });
            }
        }
        v
    }

    /// The full table: every lock observation × every probe × leftovers × recorded phase.
    #[test]
    fn classification_table_is_exhaustive() {
        let locks = [
            LockObservation::Free,
            LockObservation::Held { pid: Some(42) },
        ];
        let phases = [None, Some(LivePhase::Starting), Some(LivePhase::Stopping)];
        for lock in locks {
            for probe in all_probes() {
                for leftovers in [false, true] {
                    for recorded in phases {
                        let o = Observation {
                            lock,
                            socket: probe.clone(),
                            leftover_files: leftovers,
                            recorded_phase: recorded,
                        };
                        let held = lock != LockObservation::Free;
                        let between = if recorded == Some(LivePhase::Stopping) {
                            S::Stopping
                        } else {
                            S::Starting
                        };
                        let expected = match &probe {
                            SocketProbe::Berth {
                                protocol: P,
                                phase: LivePhase::Starting,
                            } => S::Starting,
                            SocketProbe::Berth {
                                protocol: P,
                                phase: LivePhase::Running,
                            } => S::Running,
                            SocketProbe::Berth {
                                protocol: P,
                                phase: LivePhase::Stopping,
                            } => S::Stopping,
                            SocketProbe::Berth { .. } => S::Incompatible,
                            SocketProbe::Foreign | SocketProbe::NotASocket => S::Foreign,
                            SocketProbe::NoAnswer => {
                                if held {
                                    between
                                } else {
                                    S::Foreign
                                }
                            }
                            SocketProbe::Refused => {
                                if held {
                                    between
                                } else {
                                    S::Stale
                                }
                            }
                            SocketProbe::Absent => match (held, leftovers) {
                                (true, _) => between,
                                (false, true) => S::Stale,
                                (false, false) => S::Stopped,
                            },
                        };
                        assert_eq!(classify(&o, P), expected, "{o:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_plain_cases_read_naturally() {
        let free = LockObservation::Free;
        let held = LockObservation::Held { pid: None };
        assert_eq!(
            classify(&obs(free, SocketProbe::Absent, false), P),
            S::Stopped
        );
        assert_eq!(
            classify(&obs(free, SocketProbe::Refused, false), P),
            S::Stale
        );
        assert_eq!(classify(&obs(free, SocketProbe::Absent, true), P), S::Stale);
        assert_eq!(
            classify(&obs(held, SocketProbe::Absent, true), P),
            S::Starting
        );
        assert_eq!(
            classify(&obs(free, SocketProbe::NoAnswer, false), P),
            S::Foreign
        );
        let other = SocketProbe::Berth {
            protocol: 99,
            phase: LivePhase::Running,
        };
        assert_eq!(classify(&obs(held, other, true), P), S::Incompatible);
    }

    #[test]
    fn only_live_states_are_alive() {
        let alive: Vec<_> = [
            S::Running,
            S::Starting,
            S::Stopping,
            S::Stopped,
            S::Stale,
            S::Foreign,
            S::Incompatible,
        ]
        .into_iter()
        .filter(|s| s.is_alive())
        .collect();
        assert_eq!(alive, [S::Running, S::Starting, S::Stopping]);
    }
}
