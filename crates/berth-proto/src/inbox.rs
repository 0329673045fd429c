//! Agents' inboxes and turns (`berth send`, `berth inbox`, `berth turns`).

use serde::{Deserialize, Serialize};

/// Body of `POST /v1/inbox/send`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxSend {
    pub repo: String,
    pub name: String,
    pub text: String,
    /// An idempotency key: a send with a key this agent has seen queues nothing and answers the
    /// item that key made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `now` or `normal` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
}

/// An item of an inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxItem {
    pub id: i64,
    pub agent: String,
    pub text: String,
    /// `message` (from `berth send`).
    pub source: String,
    /// `now` or `normal`.
    pub priority: String,
    pub key: Option<String>,
    /// `queued`, `delivering`, `done`, `failed` or `cancelled`.
    pub state: String,
    /// Turns started for it.
    pub attempts: u32,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// Answer to `POST /v1/inbox/send`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxSent {
    pub item: InboxItem,
    /// The key had been used: nothing new was queued.
    pub duplicate: bool,
}

/// Answer to `POST /v1/inbox/list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxList {
    pub items: Vec<InboxItem>,
}

/// One agent's items, counted by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxCount {
    pub agent: String,
    pub queued: u64,
    pub delivering: u64,
    pub done: u64,
    pub failed: u64,
    pub cancelled: u64,
}

/// Answer to `POST /v1/inbox/counts`: every agent of the project that has had an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxCounts {
    pub agents: Vec<InboxCount>,
}

/// Body of `POST /v1/inbox/cancel` and `POST /v1/turns/show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ById {
    pub id: i64,
}

/// One turn: an attempt to deliver an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnInfo {
    pub id: i64,
    pub item: i64,
    pub agent: String,
    pub attempt: u32,
    /// What the item came from (`message`).
    pub trigger: String,
    /// `turn` (a run of the turn command) or `type` (typed into the terminal).
    pub mode: String,
    /// `running`, `done`, `failed`, `timed_out` or `interrupted`.
    pub status: String,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    /// The end of its output, at most 16 KiB (`turns show`; empty in lists).
    pub output: String,
    /// The agent's branch before and after the turn (equal: no commits).
    pub commit_before: Option<String>,
    pub commit_after: Option<String>,
}

/// Answer to `POST /v1/turns/list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnList {
    pub turns: Vec<TurnInfo>,
}
