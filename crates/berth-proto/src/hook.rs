//! Agents' webhooks (`berth hook`).

use serde::{Deserialize, Serialize};

/// Body of `POST /v1/hooks/add`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookAdd {
    pub repo: String,
    /// The agent.
    pub name: String,
    /// The hook's name (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<String>,
    /// Makes the message from a JSON payload: `{{.pull_request.title}}` is that field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// Body of `POST /v1/hooks/rm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookTarget {
    pub repo: String,
    pub name: String,
    pub hook: String,
}

/// One webhook. `secret` only in the answer to `add`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookInfo {
    pub agent: String,
    pub hook: String,
    /// The path senders post to: `/hooks/<agent>/<hook>`.
    pub path: String,
    /// The HMAC-SHA256 key senders sign bodies with (only when the hook is made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub template: Option<String>,
    pub created_ms: i64,
}

/// Answer to `POST /v1/hooks/list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookList {
    pub hooks: Vec<HookInfo>,
}
