//! Agents' timers (`berth timer`).

use serde::{Deserialize, Serialize};

/// Body of `POST /v1/timers/add`: exactly one of `every`, `cron`, `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimerAdd {
    pub repo: String,
    pub name: String,
    /// An interval: `30m`, `2h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    /// Five cron fields: `0 9 * * 1-5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// A local date and time: `2026-12-24T09:00`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// The IANA time zone for `cron` and `at` (`Europe/Berlin`); default the daemon's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The message each fire queues.
    pub message: String,
}

/// One timer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerInfo {
    pub id: i64,
    pub agent: String,
    /// `every`, `cron` or `at`.
    pub kind: String,
    /// `30m`, `0 9 * * 1-5`, `2026-12-24T09:00:00`.
    pub spec: String,
    /// The IANA time zone its times are in.
    pub zone: String,
    pub message: String,
    /// Its next fire; `None` once it will not fire again.
    pub next_ms: Option<i64>,
    /// How many times it fired.
    pub fired: u32,
    pub last_fired_ms: Option<i64>,
    pub created_ms: i64,
}

/// Body of `POST /v1/timers/list` and `/v1/hooks/list`: the project's, or one agent's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentFilter {
    pub repo: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Answer to `POST /v1/timers/list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerList {
    pub timers: Vec<TimerInfo>,
}
