//! Entries of the durable event log, as stored and as streamed.

use serde::{Deserialize, Serialize};

/// One event. `seq` increases by one per appended event and is never reused, so a subscriber
/// resumes exactly where it stopped by asking for everything after the last `seq` it saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    /// Milliseconds since the Unix epoch, when the event was appended.
    pub time_ms: i64,
    /// Dotted kind, e.g. `daemon.ready`.
    pub kind: String,
    /// What the event is about (an agent name, a pairing id), if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default)]
    pub data: serde_json::Value,
}
