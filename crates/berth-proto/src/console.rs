//! The web console (`berth web`).

use serde::{Deserialize, Serialize};

use crate::{AgentInfo, DaemonStatus, PairStatus};

/// Answer to `POST /v1/console/open` (Unix socket only): a one-time login link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleOpened {
    /// `http://127.0.0.1:PORT/login?code=…`: valid once, until `expires_ms`.
    pub url: String,
    /// The listener serving the console.
    pub listener: String,
    pub expires_ms: i64,
}

/// Answer to `GET /v1/console/session`: what the page needs of its own session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleSessionInfo {
    /// Sent back in the `X-Berth-CSRF` header of every state-changing request.
    pub csrf: String,
    pub expires_ms: i64,
}

/// Answer to `POST /v1/console/logout-all`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedOut {
    /// How many sessions were open.
    pub revoked: usize,
}

/// Answer to `GET /v1/overview`: everything the console's first page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsoleOverview {
    pub daemon: DaemonStatus,
    pub projects: Vec<ConsoleProject>,
}

/// One project: its agents and services, and its pairing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsoleProject {
    pub root: String,
    pub agents: Vec<AgentInfo>,
    pub pairing: PairStatus,
}
