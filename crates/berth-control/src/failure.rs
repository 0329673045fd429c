//! Failure records: `run/last_failure.json` and `run/failure-<phase>.json`.
//!
//! Each carries the generation of the daemon run it belongs to, so `daemon status` can tell a
//! failure of the current run from one of an earlier run.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use berth_core::home::Home;
use serde::{Deserialize, Serialize};

use crate::files::write_atomically;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// Generation of the run that failed.
    pub generation: String,
    /// Where it failed: `start`, `prepare`, `serve`, `shutdown`, `panic`.
    pub phase: String,
    pub pid: u32,
    pub time_ms: i64,
    pub message: String,
}

/// Milliseconds since the Unix epoch, as failure records carry them.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl FailureRecord {
    /// A failure of this process, now.
    pub fn of_this_process(generation: &str, phase: &str, message: String) -> FailureRecord {
        FailureRecord::of_process(std::process::id(), generation, phase, message)
    }

    /// A failure of process `pid`, now (the CLI records one for a daemon that could not).
    pub fn of_process(pid: u32, generation: &str, phase: &str, message: String) -> FailureRecord {
        FailureRecord {
            generation: generation.to_string(),
            phase: phase.to_string(),
            pid,
            time_ms: now_ms(),
            message,
        }
    }

    /// Writes the record both as the last failure and as the last failure of its phase.
    pub fn write(&self, home: &Home) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write_atomically(&home.phase_failure(&self.phase), &json)?;
        write_atomically(&home.last_failure(), &json)
    }

    /// Every per-phase record of the home, oldest first.
    pub fn all(home: &Home) -> Vec<FailureRecord> {
        let mut records: Vec<FailureRecord> = std::fs::read_dir(home.run_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("failure-"))
            .filter_map(|e| FailureRecord::read(&e.path()))
            .collect();
        records.sort_by_key(|f| f.time_ms);
        records
    }

    /// Reads a record; `None` when absent or unreadable (a damaged record is not worth failing).
    pub fn read(path: &Path) -> Option<FailureRecord> {
        let bytes = std::fs::read(path).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}
