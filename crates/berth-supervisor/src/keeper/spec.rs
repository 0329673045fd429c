//! What a keeper is asked to run, and what it records.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Written by the daemon as `spec.json` in the process's directory; read by its keeper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeeperSpec {
    pub name: String,
    /// Run with `sh -c`.
    pub command: String,
    pub cwd: PathBuf,
    /// Added to the keeper's (scrubbed) environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `SIGTERM`, `SIGINT`, `SIGHUP`, `SIGQUIT`, `SIGUSR1`, `SIGUSR2` or `SIGKILL`.
    pub stop_signal: String,
    pub stop_grace_ms: u64,
    pub log_max_bytes: u64,
    pub log_keep: u32,
    /// Run under a pseudo-terminal the keeper owns; absent: stdin is `/dev/null`, stdout and
    /// stderr are pipes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal: Option<TerminalSpec>,
    /// A file given to the child as its stdin (a turn's message); absent: `/dev/null`. Not for
    /// a terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<PathBuf>,
}

/// A terminal agent's terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalSpec {
    pub rows: u16,
    pub cols: u16,
    /// Lines kept above the screen.
    pub scrollback: usize,
}

/// The files of one supervised process, all in one directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeeperDir(pub PathBuf);

impl KeeperDir {
    pub fn spec(&self) -> PathBuf {
        self.0.join("spec.json")
    }
    pub fn socket(&self) -> PathBuf {
        self.0.join("keeper.sock")
    }
    pub fn state(&self) -> PathBuf {
        self.0.join("state.json")
    }
    pub fn output(&self) -> PathBuf {
        self.0.join("output.log")
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

/// A process by pid and start time (see `crate::tree::Identity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ident {
    pub pid: u32,
    pub start_time: u64,
}

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// Exit status, if it exited.
    pub code: Option<i32>,
    /// Signal number, if a signal ended it.
    pub signal: Option<i32>,
    pub at_ms: i64,
}

impl ExitInfo {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// `state.json`: rewritten (atomically) at every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeeperState {
    pub keeper: Ident,
    pub child: Option<Ident>,
    pub started_ms: i64,
    pub exit: Option<ExitInfo>,
    /// A stop was requested (so the exit is not a crash).
    pub stopping: bool,
    /// The keeper has finished: the child and every descendant are gone.
    pub done: bool,
}

/// Signal numbers for the names a spec may use.
pub fn signal_number(name: &str) -> Option<i32> {
    let name = name.strip_prefix("SIG").unwrap_or(name);
    Some(match name {
        "TERM" => libc::SIGTERM,
        "INT" => libc::SIGINT,
        "HUP" => libc::SIGHUP,
        "QUIT" => libc::SIGQUIT,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "KILL" => libc::SIGKILL,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_with_or_without_the_prefix() {
        assert_eq!(signal_number("SIGTERM"), Some(libc::SIGTERM));
        assert_eq!(signal_number("INT"), Some(libc::SIGINT));
        assert_eq!(signal_number("SIGSEGV"), None);
        assert_eq!(signal_number(""), None);
    }
}
