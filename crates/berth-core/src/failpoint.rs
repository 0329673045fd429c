//! Failpoints: named places in the daemon where a test can make it sleep, exit or abort.
//!
//! Syntax of `BERTH_FAILPOINTS`: `name=action[;name=action...]` where action is `sleep(MS)`,
//! `exit(CODE)`, `abort` (dies like SIGKILL would, without cleanup), `panic`, or `error(ERRNO)`
//! (the operation there fails with that OS error, e.g. 28 for ENOSPC). Only the parsing lives
//! here; the daemon and the sync engine carry the actions out.

use std::collections::BTreeMap;

/// What to do when a failpoint is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Sleep(u64),
    Exit(i32),
    Abort,
    Panic,
    /// Fail the operation with this OS error number.
    Error(i32),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid BERTH_FAILPOINTS entry {entry:?}: expected name=sleep(MS)|exit(CODE)|abort|panic|error(ERRNO)"
)]
pub struct FailpointError {
    pub entry: String,
}

/// Parses the whole variable into a map from failpoint name to action.
pub fn parse(spec: &str) -> Result<BTreeMap<String, Action>, FailpointError> {
    let mut map = BTreeMap::new();
    for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let err = || FailpointError {
            entry: entry.to_string(),
        };
        let (name, action) = entry.split_once('=').ok_or_else(err)?;
        let (name, action) = (name.trim(), action.trim());
        if name.is_empty() {
            return Err(err());
        }
        let arg = |prefix: &str| {
            action
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(')'))
                .map(str::trim)
        };
        let parsed = if action == "abort" {
            Action::Abort
        } else if action == "panic" {
            Action::Panic
        } else if let Some(ms) = arg("sleep(") {
            Action::Sleep(ms.parse().map_err(|_| err())?)
        } else if let Some(code) = arg("exit(") {
            Action::Exit(code.parse().map_err(|_| err())?)
        } else if let Some(errno) = arg("error(") {
            Action::Error(errno.parse().map_err(|_| err())?)
        } else {
            return Err(err());
        };
        map.insert(name.to_string(), parsed);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_action() {
        let m = parse("a=sleep(250); b=exit(3);c=abort;d=panic;e=error(28)").unwrap();
        assert_eq!(m["e"], Action::Error(28));
        assert_eq!(m["a"], Action::Sleep(250));
        assert_eq!(m["b"], Action::Exit(3));
        assert_eq!(m["c"], Action::Abort);
        assert_eq!(m["d"], Action::Panic);
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn rejects_malformed_entries() {
        for bad in [
            "a",
            "=abort",
            "a=sleep(x)",
            "a=exit()",
            "a=boom",
            "a=sleep(1",
            "a=error(ENOSPC)",
        ] {
            assert_eq!(parse(bad).unwrap_err().entry, bad, "{bad}");
        }
    }
}
