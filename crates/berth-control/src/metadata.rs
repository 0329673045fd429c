//! `run/daemon.json`: what a running daemon records about itself for the CLI.
//!
//! Holds the serve configuration (so `daemon restart` can reuse it), the fingerprint and its
//! fields, the run generation and the phase. Never a secret: the token's *source* is recorded,
//! never its value.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use berth_core::config::ServeConfig;
use berth_core::daemon_state::LivePhase;
use berth_core::home::Home;
use serde::{Deserialize, Serialize};

use crate::files::write_atomically;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub pid: u32,
    pub generation: String,
    pub phase: LivePhase,
    pub started_at_ms: i64,
    pub protocol: u32,
    pub version: String,
    pub socket: PathBuf,
    pub tcp: Option<SocketAddr>,
    /// The web console's listener, once `berth web` started one (or `tcp`'s when configured).
    #[serde(default)]
    pub console: Option<SocketAddr>,
    pub config: ServeConfig,
    pub fingerprint: String,
    pub fields: BTreeMap<String, String>,
}

impl Metadata {
    pub fn write(&self, home: &Home) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write_atomically(&home.metadata_file(), &json)
    }

    /// Reads the metadata; `None` when absent or unreadable.
    pub fn read(home: &Home) -> Option<Metadata> {
        let bytes = std::fs::read(home.metadata_file()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}
