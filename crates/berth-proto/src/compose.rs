//! `berth up` / `berth down`.

use serde::{Deserialize, Serialize};

/// Body of `POST /v1/up` and `POST /v1/down`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComposeRequest {
    /// Absolute path inside the project.
    pub repo: String,
    /// Only these (and what they depend on); empty: everything.
    #[serde(default)]
    pub names: Vec<String>,
    /// One overall timeout.
    pub timeout_ms: u64,
}

/// Answer to `POST /v1/up`: what was started and, all together, what did not come up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpReport {
    /// The plan, level by level, in start order.
    pub levels: Vec<Vec<String>>,
    /// Every process that did not reach what was wanted of it (nothing of it runs).
    pub failed: Vec<UpFailure>,
    /// Every process that was not started, and why.
    pub skipped: Vec<UpSkipped>,
    /// What of the plan runs now (started by this `up` or before it).
    pub running: Vec<String>,
    pub took_ms: u64,
}

/// One process that did not come up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpFailure {
    pub name: String,
    /// `agent` or `service`.
    pub kind: String,
    /// What happened, for a person.
    pub reason: String,
    /// Its readiness probe (command-line form), if it has one.
    pub probe: Option<String>,
    /// The exit status of its last run, if it ended with one.
    pub exit_code: Option<i32>,
    /// The last lines of its output log, oldest first.
    pub output: Vec<String>,
    /// Its output log.
    pub log: String,
}

/// One process that was not started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpSkipped {
    pub name: String,
    /// The failed processes it waited for, directly or through other skipped ones; empty when
    /// the overall timeout passed before its turn.
    pub because: Vec<String>,
}

/// Answer to `POST /v1/down`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownReport {
    /// Level by level, dependents first, in stop order.
    pub levels: Vec<Vec<String>>,
    /// Still running when their grace period after the stop signal ran out: killed.
    pub killed: Vec<DownKilled>,
    /// Could not be stopped.
    pub failed: Vec<DownFailure>,
    pub took_ms: u64,
}

/// A process `berth down` had to kill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownKilled {
    pub name: String,
    /// How long it had between the stop signal and SIGKILL (its own grace period, shortened to
    /// fit the overall timeout).
    pub grace_ms: u64,
}

/// A process `berth down` could not stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownFailure {
    pub name: String,
    pub error: String,
}
