//! The daemon's git lock: one change to a repository at a time (snapshots, workspaces,
//! mirroring, pairing's steps and ref sync), whether it is made from the async API or from a
//! pairing controller's thread.

use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard};

/// A handle on the run's git lock; clones share the one lock.
#[derive(Debug, Clone, Default)]
pub struct GitLock(Arc<Mutex<()>>);

impl GitLock {
    /// Waits for the lock (async callers).
    pub async fn lock(&self) -> MutexGuard<'_, ()> {
        self.0.lock().await
    }

    /// Waits for the lock on a plain thread (never from inside the async runtime).
    pub fn blocking(&self) -> MutexGuard<'_, ()> {
        self.0.blocking_lock()
    }
}
