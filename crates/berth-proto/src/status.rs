//! Handshake and daemon status.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The phase a live daemon reports about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DaemonPhase {
    /// Up and answering, but storage preparation or recovery is still running.
    Starting,
    /// Ready.
    Running,
    /// Shutdown requested and in progress.
    Stopping,
}

impl DaemonPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            DaemonPhase::Starting => "starting",
            DaemonPhase::Running => "running",
            DaemonPhase::Stopping => "stopping",
        }
    }
}

/// Answer to `GET /handshake`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handshake {
    /// Always [`crate::PRODUCT`] for a berth daemon.
    pub product: String,
    pub protocol: u32,
    /// The daemon's build version.
    pub version: String,
    pub capabilities: Vec<String>,
    pub phase: DaemonPhase,
    /// `true` only in [`DaemonPhase::Running`].
    pub healthy: bool,
    pub pid: u32,
    /// Identifies this run of the daemon; failure records carry it.
    pub generation: String,
}

/// Counters describing what the daemon has been doing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub requests: u64,
    pub open_connections: u64,
    pub event_subscribers: u64,
    /// Sequence number of the newest event in the log (0 when empty).
    pub last_event_seq: u64,
}

/// Answer to `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub handshake: Handshake,
    pub started_at_ms: i64,
    pub uptime_ms: u64,
    pub socket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    /// Hash of the effective configuration; see `berth_core::config`.
    pub fingerprint: String,
    /// The fields the fingerprint was computed from (never a secret).
    pub config: BTreeMap<String, String>,
    pub activity: Activity,
}

/// Body of `POST /v1/daemon/shutdown`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownRequest {
    /// Free-form reason recorded in the event log.
    #[serde(default)]
    pub reason: Option<String>,
    /// Also stop every agent and service (by default they keep running).
    #[serde(default)]
    pub all: bool,
}
