//! What can go wrong when controlling a daemon from outside, each with a stable code and what to
//! do about it.

use std::path::PathBuf;
use std::time::Duration;

use berth_client::ClientError;
use berth_core::config::FieldDiff;

use crate::failure::FailureRecord;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{} is held by a program that is not berth; berth will not touch it", socket.display())]
    Foreign { socket: PathBuf },
    #[error(
        "a berth daemon speaking protocol {protocol} (version {version}, pid {pid}) is running; \
         this berth speaks protocol {ours}",
        ours = berth_proto::PROTOCOL_VERSION
    )]
    Incompatible {
        protocol: String,
        version: String,
        pid: String,
    },
    #[error("the berth daemon is still stopping")]
    Stopping,
    #[error("a berth daemon is already running with a different configuration")]
    ConfigMismatch { diff: Vec<FieldDiff> },
    #[error("the daemon could not start: {message}")]
    StartFailed {
        message: String,
        /// The daemon refused for safety (exit 4) rather than failed.
        refused: bool,
        log: Vec<String>,
    },
    #[error("the daemon {how} before it was ready")]
    StartCrashed {
        how: String,
        failure: Option<Box<FailureRecord>>,
        log: Vec<String>,
    },
    #[error("the daemon (pid {pid}) did not report ready within {timeout:?}; {outcome}")]
    StartTimeout {
        pid: u32,
        timeout: Duration,
        /// What became of the process that was given up on.
        outcome: String,
        log: Vec<String>,
    },
    #[error("the daemon is running but its pid is unknown")]
    NoPid,
    #[error("the daemon (pid {pid}) is still alive after SIGKILL")]
    Unkillable { pid: u32 },
    #[error("{what}: {source}")]
    Io {
        code: &'static str,
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("stop procedure: {0}")]
    Internal(String),
}

impl ControlError {
    pub(crate) fn io(code: &'static str, what: impl Into<String>, source: std::io::Error) -> Self {
        ControlError::Io {
            code,
            what: what.into(),
            source,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ControlError::Foreign { .. } => "foreign_socket",
            ControlError::Incompatible { .. } => "incompatible",
            ControlError::Stopping => "daemon_stopping",
            ControlError::ConfigMismatch { .. } => "config_mismatch",
            ControlError::StartFailed { .. } => "start_failed",
            ControlError::StartCrashed { .. } => "start_crashed",
            ControlError::StartTimeout { .. } => "start_timeout",
            ControlError::NoPid => "no_pid",
            ControlError::Unkillable { .. } => "unkillable",
            ControlError::Io { code, .. } => code,
            ControlError::Client(_) => "daemon_unreachable",
            ControlError::Internal(_) => "internal",
        }
    }

    /// Whether berth refused for safety (exit 4) rather than failed.
    pub fn is_refusal(&self) -> bool {
        match self {
            ControlError::Foreign { .. } | ControlError::Incompatible { .. } => true,
            ControlError::StartFailed { refused, .. } => *refused,
            _ => false,
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            ControlError::Foreign { .. } => {
                "find it with `ss -xlp | grep berth.sock`, stop it, or use another BERTH_HOME".into()
            }
            ControlError::Incompatible { version, pid, .. } => format!(
                "stop it with the berth {version} that started it (`berth daemon stop`), or `kill {pid}`; then start again"
            ),
            ControlError::Stopping => {
                "wait until `berth daemon status` says stopped, then start again".into()
            }
            ControlError::ConfigMismatch { .. } => {
                "`berth daemon restart` keeps the running options; to change them, `berth daemon stop` and start again".into()
            }
            ControlError::StartFailed { .. } => "see `berth daemon logs` for the whole log".into(),
            ControlError::StartCrashed { .. } => {
                "fix the cause shown in the log above, then run `berth daemon start` again".into()
            }
            ControlError::StartTimeout { .. } => {
                "see `berth daemon logs`; a slow disk or a large recovery may need a longer --start-timeout".into()
            }
            ControlError::NoPid => {
                "find it with `pgrep -f 'berth.*serve'` and stop it by hand".into()
            }
            ControlError::Unkillable { .. } => {
                "it may be stuck in the kernel (e.g. on a hung file system); its runtime files were left in place".into()
            }
            ControlError::Client(_) => "check `berth daemon status` and `berth daemon logs`".into(),
            ControlError::Io { .. } | ControlError::Internal(_) => return None,
        })
    }

    /// Further lines: differing fields, the failure record, the log of the failed run.
    pub fn details(&self) -> Vec<String> {
        match self {
            ControlError::ConfigMismatch { diff } => diff.iter().map(describe_diff).collect(),
            ControlError::StartFailed { log, .. } | ControlError::StartTimeout { log, .. } => {
                log.clone()
            }
            ControlError::StartCrashed { failure, log, .. } => failure
                .iter()
                .map(|f| format!("failure record ({}): {}", f.phase, f.message))
                .chain(log.iter().cloned())
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// One differing field of the configuration, for a person.
pub fn describe_diff(d: &FieldDiff) -> String {
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
    format!(
        "{}: running {}, asked for {}",
        d.field,
        show(&d.running),
        show(&d.wanted)
    )
}
