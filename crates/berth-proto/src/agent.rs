//! Agents.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Body of `POST /v1/agents/new`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentNew {
    /// Absolute path inside the project.
    pub repo: String,
    pub name: String,
    #[serde(default)]
    pub command: Option<String>,
    /// What the workspace starts from; default: the project's HEAD.
    #[serde(default)]
    pub base: Option<String>,
    /// `no`, `on-failure` or `always`; default `no`.
    #[serde(default)]
    pub restart: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Readiness probe: `tcp:HOST:PORT`, `http:URL`, `exec:CMD`, `log:REGEX`, `notify` or
    /// `none` (default: ready when started).
    #[serde(default)]
    pub ready: Option<String>,
    /// Start it right away.
    #[serde(default)]
    pub start: bool,
    /// Run it under a pseudo-terminal (`berth agent screen`, `berth agent input`).
    #[serde(default)]
    pub tty: bool,
    /// Lines of scrollback its keeper keeps (terminal agents only; absent: 10,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrollback: Option<u32>,
    /// A turn agent's turn command: run once per inbox message, in its workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<String>,
    /// How long a turn may run, in milliseconds (absent: 30 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn_timeout_ms: Option<u64>,
    /// Where the agent lives if not here: `ssh://[user@]host[:port][/dir]`, `docker://IMAGE`,
    /// `podman://IMAGE`, `docker-exec://CONTAINER[/dir]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
}

/// Body of `POST /v1/agents/show|start|stop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentTarget {
    pub repo: String,
    pub name: String,
}

/// An agent (or a service from `berth.toml`) and what it is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// `agent` or `service`.
    pub kind: String,
    pub name: String,
    pub project: String,
    pub command: Option<String>,
    /// `berth/<name>` for agents; services run in the repository itself.
    pub branch: Option<String>,
    pub base: String,
    pub workspace: String,
    pub restart: String,
    /// Readiness probe (CLI form), if any.
    pub ready: Option<String>,
    /// `stopped`, `starting`, `running`, `stopping`, `exited`, `backoff`, `failed`, `lost` or
    /// `unreachable`.
    pub state: String,
    /// The agent process, while one runs.
    pub pid: Option<u32>,
    /// When its keeper started this run (ms since the epoch), while one runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<i64>,
    /// How often the restart policy started it again during this daemon run.
    #[serde(default)]
    pub restarts: u32,
    /// The exit status of the last run, if it ended.
    pub exit_code: Option<i32>,
    /// Its output log (stdout and stderr, timestamped).
    pub log: String,
    /// Whether it runs under a pseudo-terminal.
    #[serde(default)]
    pub tty: bool,
    /// Lines of scrollback its keeper keeps, for a terminal agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrollback: Option<u32>,
    /// A turn agent's turn command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<String>,
    /// Where an agent elsewhere lives (`--on`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
    /// Why an `unreachable` agent cannot be reached: `CAUSE: detail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<String>,
}

/// Answer to `POST /v1/agents/list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentList {
    pub agents: Vec<AgentInfo>,
}

/// Body of `POST /v1/agents/rm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRemove {
    pub repo: String,
    pub name: String,
    /// Remove even with uncommitted changes or unsaved commits, after snapshotting them into
    /// the project.
    #[serde(default)]
    pub force: bool,
    /// Also delete the project's `berth/<name>` branch.
    #[serde(default)]
    pub delete_branch: bool,
    /// An agent elsewhere whose host is gone for good: forget it here without reaching it
    /// (nothing there is touched; its branch stays as last brought here).
    #[serde(default)]
    pub forget: bool,
}

/// Answer to `POST /v1/agents/rm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRemoved {
    pub name: String,
    /// The snapshot in the project holding what the workspace had (with `force`).
    pub snapshot: Option<String>,
    /// Whether `berth/<name>` stays in the project.
    pub branch_kept: bool,
    /// With `forget`: what may be left where the agent ran, and how to remove it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_there: Option<String>,
}
