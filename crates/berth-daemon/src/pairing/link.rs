//! The link: everything that runs beside the controller while a pairing is active — the sync
//! loop ([`SyncLoop`], with its gate) and the git watch ([`GitWatch`]) — and whether the loop
//! is held. The controller owns one and tells it what to do; what the loop and the watch see
//! comes back as messages (a [`LinkEvent`] through `tell`, a bare wake-up through `on_git`).

use std::time::Duration;

use berth_core::pairing::State;
use berth_git::Git;
use berth_store::Store;
use berth_sync::stats::Stats;

use super::error::PairingError;
use super::excludes;
use super::gitwatch::GitWatch;
use super::link_event::Tell;
use super::notices::held_by_git;
use super::roots::Roots;
use super::sync_loop::{SyncLoop, Warm};

/// A pairing's link (none running until started).
#[derive(Default)]
pub struct Link {
    sync: Option<SyncLoop>,
    gitwatch: Option<GitWatch>,
    /// Whether the sync loop is held.
    held: bool,
}

impl Link {
    /// Whether the sync loop runs.
    pub fn is_running(&self) -> bool {
        self.sync.is_some()
    }

    /// Starts the sync loop between `roots` (and the git watch, unless it runs already); a
    /// loop that cannot start is logged, and the controller's checks try again later. `warm`:
    /// what the loop begins with ([`SyncLoop::start`]).
    pub fn start(
        &mut self,
        roots: &Roots,
        store: &Store,
        pairing: &str,
        warm: Option<Warm>,
        tell: Tell,
        on_git: impl Fn() + Send + 'static,
    ) {
        if self.sync.is_some() {
            return;
        }
        // An agent elsewhere's workspace has berth's line already (`far_calls::Call::Clone`).
        let here = [
            Some(&roots.user),
            roots.far.is_none().then_some(&roots.agent),
        ];
        for root in here.into_iter().flatten() {
            let project = roots.user.display().to_string();
            if let Err(e) = excludes::add(store, &project, &Git::new(root)) {
                tracing::warn!(pairing, "cannot exclude berth's temporary files: {e}");
            }
        }
        match SyncLoop::start(
            store.clone(),
            pairing.to_string(),
            roots.clone(),
            warm,
            tell,
        ) {
            Ok(sync) => {
                self.sync = Some(sync);
                self.held = false;
            }
            Err(e) => tracing::error!(pairing, "cannot start syncing: {e}"),
        }
        if self.gitwatch.is_none() {
            match GitWatch::start(roots, on_git) {
                Ok(w) => self.gitwatch = Some(w),
                Err(e) => tracing::warn!(pairing, "cannot watch git: {e}"),
            }
        }
    }

    /// Stops the sync loop and the git watch.
    pub fn stop(&mut self) {
        drop(self.finish());
        crate::memory::give_back();
    }

    /// Stops the sync loop and the git watch; what the loop ended with, if it ended as asked.
    pub fn finish(&mut self) -> Option<Warm> {
        let warm = self.sync.take().and_then(SyncLoop::stop);
        self.gitwatch = None;
        self.held = false;
        warm
    }

    /// The sync loop ended by itself: its thread is joined; the git watch goes on.
    pub fn ended(&mut self) {
        if let Some(sync) = self.sync.take() {
            let _ = sync.stop();
        }
        self.held = false;
    }

    /// Holds or releases the sync loop so that it applies nothing while a git-shown cause is
    /// among `state`'s notices.
    pub fn follow(&mut self, state: &State) {
        let want = match state {
            State::Paused { notices } => notices.iter().any(|n| held_by_git(n.cause())),
            _ => false,
        };
        if let Some(sync) = &self.sync
            && want != self.held
        {
            if want {
                sync.hold();
            } else {
                sync.release();
            }
            self.held = want;
        }
    }

    /// The gate held the loop by itself.
    pub fn held_by_gate(&mut self) {
        self.held = true;
    }

    /// Lets a running loop apply again, beginning with a full round.
    pub fn release(&mut self) {
        if let Some(sync) = &self.sync {
            sync.release();
            self.held = false;
        }
    }

    /// Syncs everything now; answers once both sides agree, or gives up after `limit`.
    pub fn flush(&mut self, limit: Duration) -> Result<Stats, PairingError> {
        self.sync
            .as_mut()
            .ok_or(PairingError::NotSyncing)?
            .flush(limit)
    }

    /// Whether the sync loop (if it runs) has answered every flush it was sent
    /// ([`SyncLoop::answering`]).
    pub fn answering(&mut self) -> bool {
        self.sync.as_mut().is_none_or(SyncLoop::answering)
    }

    /// Waits until the loop watches both trees and its first full round went through (or the
    /// gate holds it); `false` if it is not running, ended first or `timeout` passed.
    pub fn wait_started(&self, timeout: Duration) -> bool {
        self.sync.as_ref().is_some_and(|s| s.wait_started(timeout))
    }
}
