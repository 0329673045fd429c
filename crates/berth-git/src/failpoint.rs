//! Failpoints at the git-side steps of snapshot capture and restore (`BERTH_FAILPOINTS`, syntax
//! in `berth_core::failpoint`), so tests can stop the process between any two steps — as a
//! SIGKILL of the daemon would — and check that nothing is lost and that the next run finishes
//! or starts over cleanly.
//!
//! Every name is listed in [`FAILPOINTS`]; each marks the moment *before* its step.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use berth_core::failpoint::{self, Action};

/// Environment variable naming the active failpoints.
pub const ENV: &str = "BERTH_FAILPOINTS";

/// Capture: before the index's tree is built (from a copy of the index).
pub const SNAPSHOT_INDEX_TREE: &str = "snapshot.index_tree";
/// Capture: before the working tree's tree is built (through a second temporary index).
pub const SNAPSHOT_WORK_TREE: &str = "snapshot.work_tree";
/// Capture: before the index and working-tree commits are written.
pub const SNAPSHOT_COMMIT: &str = "snapshot.commit";
/// Capture: before `refs/berth/stash/<id>` is created.
pub const SNAPSHOT_REF: &str = "snapshot.ref";
/// Restore: before anything is checked or planned.
pub const RESTORE_PLAN: &str = "restore.plan";
/// Restore: before the working tree is moved to the snapshot (`read-tree -m -u`).
pub const RESTORE_READ_TREE: &str = "restore.read_tree";
/// Restore: before HEAD is pointed back where the snapshot was taken.
pub const RESTORE_HEAD: &str = "restore.head";
/// Restore: before the index is set to the snapshot's index.
pub const RESTORE_INDEX: &str = "restore.index";
/// Restore: before the snapshot's ref is deleted.
pub const RESTORE_DELETE_REF: &str = "restore.delete_ref";

/// Every failpoint of this crate, capture's in order, then restore's in order.
pub const FAILPOINTS: &[&str] = &[
    SNAPSHOT_INDEX_TREE,
    SNAPSHOT_WORK_TREE,
    SNAPSHOT_COMMIT,
    SNAPSHOT_REF,
    RESTORE_PLAN,
    RESTORE_READ_TREE,
    RESTORE_HEAD,
    RESTORE_INDEX,
    RESTORE_DELETE_REF,
];

fn active() -> &'static BTreeMap<String, Action> {
    static ACTIVE: OnceLock<BTreeMap<String, Action>> = OnceLock::new();
    ACTIVE.get_or_init(|| {
        let spec = std::env::var(ENV).unwrap_or_default();
        failpoint::parse(&spec).unwrap_or_else(|e| {
            tracing::error!("{e}; ignoring all failpoints");
            BTreeMap::new()
        })
    })
}

/// Reaches the failpoint `name`: nothing unless it is active; then sleeps, exits, aborts,
/// panics, or returns the OS error it is set to (`error(ERRNO)`).
pub fn hit(name: &str) -> Result<(), std::io::Error> {
    let Some(action) = active().get(name) else {
        return Ok(());
    };
    tracing::warn!(failpoint = name, ?action, "failpoint reached");
    match *action {
        Action::Sleep(ms) => {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            Ok(())
        }
        Action::Exit(code) => std::process::exit(code),
        Action::Abort => std::process::abort(),
        Action::Panic => panic!("failpoint {name} reached"),
        Action::Error(errno) => Err(std::io::Error::from_raw_os_error(errno)),
    }
}

/// [`hit`], with an error that says which failpoint it was, as a [`crate::GitError`].
pub(crate) fn check(name: &str) -> Result<(), crate::GitError> {
    hit(name).map_err(|e| crate::GitError::Parse {
        args: format!("failpoint {name}"),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_inactive_by_default() {
        let mut seen = std::collections::BTreeSet::new();
        for name in FAILPOINTS {
            assert!(seen.insert(*name), "{name} listed twice");
            assert!(failpoint::parse(&format!("{name}=abort")).is_ok(), "{name}");
        }
        // The test environment sets no failpoints; an unknown name is never active.
        assert!(hit("no.such.failpoint").is_ok());
    }
}
