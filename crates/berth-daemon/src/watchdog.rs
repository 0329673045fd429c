//! The shutdown watchdog: a daemon whose shutdown hangs ends by itself.
//!
//! Shutdown parks pairings, drains connections, checkpoints the store and removes the runtime
//! files; any of these can hang (a stuck file system, a request that never finishes). Once the
//! shutdown begins, a plain thread — not a task, so a blocked runtime cannot stop it — waits
//! for the limit. If the shutdown has not finished by then it writes a failure record naming the
//! step that hung and exits the process; the kernel releases the lock, and the files left are
//! the stale files `daemon start` and `doctor --fix` clean.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_control::failure::FailureRecord;
use berth_core::home::Home;

/// How long a shutdown may take unless `BERTH_SHUTDOWN_LIMIT_MS` says otherwise: the drain of
/// connections (5 s) plus the parking of pairings and the store's checkpoint.
pub const DEFAULT_LIMIT: Duration = Duration::from_secs(20);
/// Shortens (or lengthens) the limit, for tests and diagnosis.
pub const LIMIT_ENV: &str = "BERTH_SHUTDOWN_LIMIT_MS";
/// The exit status of a daemon whose shutdown hung.
const HUNG_EXIT: i32 = 1;

/// The limit this process runs with.
pub fn limit() -> Duration {
    std::env::var(LIMIT_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(DEFAULT_LIMIT, Duration::from_millis)
}

#[derive(Debug, Default)]
struct Progress {
    step: Mutex<&'static str>,
    finished: AtomicBool,
}

/// An armed watchdog; [`Watchdog::step`] says what the shutdown is doing, [`Watchdog::finish`]
/// disarms it.
#[derive(Debug)]
pub struct Watchdog {
    progress: Arc<Progress>,
}

impl Watchdog {
    /// Arms the watchdog for a shutdown of the run `generation` of `home`.
    pub fn arm(home: Home, generation: String, limit: Duration) -> Watchdog {
        let progress = Arc::new(Progress::default());
        let watched = progress.clone();
        let spawned = std::thread::Builder::new()
            .name("shutdown-watchdog".into())
            .spawn(move || {
                std::thread::sleep(limit);
                if watched.finished.load(Ordering::SeqCst) {
                    return;
                }
                let step = *watched.step.lock().unwrap_or_else(|p| p.into_inner());
                let message = format!(
                    "shutdown hung while {step} for more than {limit:?}; the daemon exited by itself"
                );
                tracing::error!("{message}");
                let record = FailureRecord::of_this_process(&generation, "shutdown", message);
                if let Err(e) = record.write(&home) {
                    tracing::error!("cannot write the failure record: {e}");
                }
                std::process::exit(HUNG_EXIT);
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the shutdown watchdog: {e}");
        }
        Watchdog { progress }
    }

    /// Records the step the shutdown is in now (named for a person: "draining connections").
    pub fn step(&self, step: &'static str) {
        *self.progress.step.lock().unwrap_or_else(|p| p.into_inner()) = step;
    }

    /// The shutdown finished: the watchdog does nothing.
    pub fn finish(self) {
        self.progress.finished.store(true, Ordering::SeqCst);
    }
}
