//! Pairing, carried out: the link between a project's checkout and one agent's workspace.
//!
//! # Theory of operation
//!
//! [`Pairings`] is the handle the API and `serve` hold: every open pairing of the run, by
//! project root (`registry.rs`). Each open pairing is a few actors, each on a thread of its own
//! and reached only by typed messages — the front door, the controller, the sync loop, the git
//! watch — and the controller's own work is split between a driver that decides and a worker
//! that acts:
//!
//! - the **controller** (`controller.rs`) serves the pairing's mailbox (`messages.rs`: requests,
//!   the link's reports, changes in either git dir) behind a **front door** (`front.rs`) that
//!   answers a start arriving during a transition at once, as `pairing_busy`;
//! - its **driver** (`driver.rs`) holds the state (`berth_core::pairing::State`), the record
//!   and the intent journal, and decides: every input goes through the pure transition
//!   function, and each new state is journaled (`journal.rs`) *before* its actions are carried
//!   out and marked done after. The driver does no git or file work: its hands (`driver::Hands`)
//!   do, and their reports are fed back in;
//! - the **worker** (`worker.rs`) is those hands: the steps (`steps.rs`, plain blocking git and
//!   file work, each after its failpoint `pair.start.<step>`, `pair.stop.<step>`,
//!   `pair.undo.<undo>`), both sides' git state (`sides.rs` over `observe.rs`), the link's
//!   lifetime and the **status view** (`status.rs`: what `pair status` shows, published after
//!   every change);
//! - the **link** (`link.rs`) runs beside them while a pairing is active: the sync engine's
//!   live loop (`sync_loop.rs`) between the checkout (which wins conflicts) and the workspace,
//!   whose gate (`gate.rs`) reads both sides' git state before every round and before every
//!   write, so a checkout that switched branches is never carried over; conflict losers go to
//!   the keeper (`keeper.rs`); its trees and settings are `roots.rs`, its ancestor `ancestor.rs`,
//!   the line that keeps berth's temporary files out of git (added when syncing starts, taken
//!   out when the pairing ends) `excludes.rs`.
//!   Beside the loop, the git watch (`gitwatch.rs`: inotify on both git dirs) wakes the
//!   controller, which then looks at both sides: pausing causes are raised or cleared
//!   (`notices.rs`), and commits are carried by fast-forward when one copy of `berth/<agent>`
//!   is ahead. What the loop reports reaches the controller as a `LinkEvent` (`link_event.rs`).
//!
//! With an agent elsewhere (`agent new --on`) the agent's side is its workspace there
//! (`far_side.rs`): the sync loop's agent tree is a connection to it (`tree.rs`: the local or
//! the remote endpoint, one type), what git shows there and its gate come from the far side's
//! answers (`crate::far`), its commits are fetched into the project as bundles (so the project
//! stands in for the workspace in every git comparison and move), the user's go there as
//! bundles, and the controller looks at it every second. A look that cannot get through pauses
//! the pairing with `connection_lost`; the controller looks again with a growing wait
//! (`berth_core::pairing::reconnect_after`), and the first look that gets through resumes it
//! with a full reconcile.
//!
//! Errors are [`PairingError`]s; what a request is answered is decided by `answers.rs`, how a
//! pairing ended is put in words by `outcome.rs`; what it writes to the event log goes through
//! `events.rs`.
//!
//! A daemon start re-opens every open pairing from its journal (`berth_core::pairing::recover`):
//! an interrupted start is undone (or finished, once sync had begun), an interrupted stop is
//! finished, and an active pairing comes back through re-validation and a full reconcile.
//! A graceful shutdown parks every pairing after a last flush, leaving its journal as it is.

mod ancestor;
mod answers;
mod controller;
mod driver;
mod error;
mod events;
mod excludes;
mod far_side;
mod front;
mod gate;
mod gitwatch;
mod hashes;
mod journal;
mod keeper;
mod link;
mod link_event;
mod messages;
mod notices;
mod observe;
mod outcome;
mod prepare;
mod registry;
mod roots;
mod sides;
mod status;
mod steps;
mod sync_loop;
mod tree;
mod worker;

use std::sync::Arc;

use berth_proto::{PairFlushed, PairLeftovers, PairStatus, PairStopped};
use berth_store::Store;

pub use error::PairingError;
/// What the far side of an agent elsewhere answers pairing with (`crate::far`).
pub(crate) use excludes::add_for_good as exclude_temps_for_good;
pub(crate) use gate::side_state;
pub(crate) use hashes::forget as forget_kept_digests;
pub(crate) use observe::operation_of;

use controller::Context;
use messages::Request;
use registry::Registry;

use crate::git_lock::GitLock;
use crate::recorder::Recorder;

/// Every open pairing of this daemon run, by project root; a cheap handle.
#[derive(Debug, Clone)]
pub struct Pairings {
    cx: Context,
}

impl Pairings {
    pub fn new(store: Store, events: Recorder, git: GitLock) -> Pairings {
        Pairings {
            cx: Context {
                store,
                events,
                git,
                registry: Arc::new(Registry::default()),
            },
        }
    }

    /// The status of the checkout at `root` (not paired: state `off`).
    pub fn status(&self, root: &str) -> PairStatus {
        match self.cx.registry.get(root) {
            Some(h) => h.status(),
            None => PairStatus::off(root),
        }
    }

    /// `berth pair AGENT`: starts pairing (or switches to AGENT while paired with another);
    /// answers when the start has finished or was undone.
    pub async fn start(
        &self,
        root: &str,
        agent: &str,
        no_stash: bool,
    ) -> Result<PairStatus, PairingError> {
        // A controller that is just ending answers nothing: then a new one starts.
        for _ in 0..2 {
            let handle = {
                let mut open = self.cx.registry.lock();
                match open.get(root) {
                    Some(h) => h.clone(),
                    None => {
                        let h = controller::spawn(&self.cx, root.to_string(), None);
                        open.insert(root.to_string(), h.clone());
                        h
                    }
                }
            };
            let request = |reply| Request::Start {
                agent: agent.to_string(),
                no_stash,
                reply,
            };
            if let Some(answer) = handle.ask(request).await {
                return answer;
            }
            self.cx.registry.remove(root, &handle.status);
        }
        Err(PairingError::ControllerEnded)
    }

    /// `berth pair stop`.
    pub async fn stop(&self, root: &str) -> Result<PairStopped, PairingError> {
        let h = self.cx.registry.get(root).ok_or(PairingError::NotPaired)?;
        h.ask(|reply| Request::Stop { reply })
            .await
            .unwrap_or(Err(PairingError::NotPaired))
    }

    /// `berth pair flush`.
    pub async fn flush(&self, root: &str) -> Result<PairFlushed, PairingError> {
        let h = self.cx.registry.get(root).ok_or(PairingError::NotPaired)?;
        h.ask(|reply| Request::Flush { reply })
            .await
            .unwrap_or(Err(PairingError::NotPaired))
    }

    /// berth's lines left in repositories' `info/exclude` where no pairing is open (`berth
    /// doctor`); `fix`: taken out (`berth doctor --fix`).
    pub fn leftovers(&self, fix: bool) -> Result<PairLeftovers, PairingError> {
        excludes::leftovers(&self.cx.store, fix).map(|lines| PairLeftovers { lines })
    }

    /// On daemon start: re-opens every open pairing from its journal.
    pub fn recover_all(&self) {
        let open = match self.cx.store.open_pairings() {
            Ok(open) => open,
            Err(e) => {
                tracing::error!("cannot read open pairings: {e}");
                return;
            }
        };
        let mut registry = self.cx.registry.lock();
        for rec in open {
            let root = rec.project_root.clone();
            let h = controller::spawn(&self.cx, root.clone(), Some(rec));
            registry.insert(root, h);
        }
    }

    /// On graceful shutdown: every pairing is parked at a safe point (a last flush, then the
    /// link stops); their journals stay as they are, so the next start resumes them.
    pub async fn park_all(&self) {
        let handles: Vec<_> = self.cx.registry.lock().values().cloned().collect();
        for h in handles {
            h.park().await;
        }
    }
}
