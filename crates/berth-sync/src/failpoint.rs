//! Failpoints inside the engine (`BERTH_FAILPOINTS`, syntax in `berth_core::failpoint`), so
//! tests can make a write fail for real reasons — `sync.write=error(28)` is a full disk — and
//! check that nothing partial is left and the condition is reported, or make the live loop
//! stop answering — `sync.flush=sleep(60000)` is a tree that hangs while a flush syncs it.
//!
//! The moments of [`CRASH_POINTS`] are where the crash matrix SIGKILLs a daemon in the middle
//! of live sync (`sleep` there, then kill): after a restart both trees must converge with no
//! edit lost and no temporary file left.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use berth_core::failpoint::{self, Action};

/// Apply: a file's new content is in its temporary file, which is not renamed over the
/// target yet.
pub const APPLY_TEMP_WRITTEN: &str = "sync.apply.temp_written";
/// Apply: the temporary file was renamed over the target; the ancestor does not record the
/// path's new state yet.
pub const APPLY_RENAMED: &str = "sync.apply.renamed";
/// A round is half-way through the changes it carries (reached only by a round of more than
/// one change).
pub const ROUND_HALF_WAY: &str = "sync.round.half_way";

/// The engine's moments a crash test kills the daemon at.
pub const CRASH_POINTS: &[&str] = &[APPLY_TEMP_WRITTEN, APPLY_RENAMED, ROUND_HALF_WAY];

fn active() -> &'static BTreeMap<String, Action> {
    static ACTIVE: OnceLock<BTreeMap<String, Action>> = OnceLock::new();
    ACTIVE.get_or_init(|| {
        failpoint::parse(&std::env::var("BERTH_FAILPOINTS").unwrap_or_default()).unwrap_or_default()
    })
}

/// Reaches the failpoint `name`: the error to fail with, if it is set to `error(ERRNO)`.
pub fn hit(name: &str) -> Option<std::io::Error> {
    let action = *active().get(name)?;
    tracing::warn!(failpoint = name, ?action, "failpoint reached");
    match action {
        Action::Error(errno) => Some(std::io::Error::from_raw_os_error(errno)),
        Action::Sleep(ms) => {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            None
        }
        Action::Exit(code) => std::process::exit(code),
        Action::Abort => std::process::abort(),
        Action::Panic => panic!("failpoint {name} reached"),
    }
}
