//! Carries out the failpoints named in `BERTH_FAILPOINTS` (syntax: `berth_core::failpoint`).

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use berth_core::failpoint::{self, Action};

/// Environment variable naming the active failpoints.
pub const ENV: &str = "BERTH_FAILPOINTS";

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

/// Reaches the failpoint `name`: does nothing unless it is active.
pub async fn hit(name: &str) {
    let Some(action) = active().get(name) else {
        return;
    };
    tracing::warn!(failpoint = name, ?action, "failpoint reached");
    match *action {
        Action::Sleep(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Action::Exit(code) => std::process::exit(code),
        Action::Abort => std::process::abort(),
        Action::Panic => panic!("failpoint {name} reached"),
        // The daemon's failpoints mark steps, not operations that could return an OS error.
        Action::Error(_) => {}
    }
}
