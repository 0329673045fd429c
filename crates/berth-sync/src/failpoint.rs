//! Failpoints inside the engine (`BERTH_FAILPOINTS`, syntax in `berth_core::failpoint`), so
//! tests can make a write fail for real reasons — `sync.write=error(28)` is a full disk — and
//! check that nothing partial is left and the condition is reported, or make the live loop
//! stop answering — `sync.flush=sleep(60000)` is a tree that hangs while a flush syncs it.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use berth_core::failpoint::{self, Action};

fn active() -> &'static BTreeMap<String, Action> {
    static ACTIVE: OnceLock<BTreeMap<String, Action>> = OnceLock::new();
    ACTIVE.get_or_init(|| {
        failpoint::parse(&std::env::var("BERTH_FAILPOINTS").unwrap_or_default()).unwrap_or_default()
    })
}

/// Reaches the failpoint `name`: the error to fail with, if it is set to `error(ERRNO)`.
pub fn hit(name: &str) -> Option<std::io::Error> {
    match *active().get(name)? {
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
