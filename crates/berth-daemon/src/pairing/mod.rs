//! Pairing, carried out: the link between a project's checkout and one agent's workspace.
//!
//! # Theory of operation
//!
//! Each open pairing has one **controller** ([`controller`]) on a thread of its own. It owns
//! the pairing's state (`berth_core::pairing::State`) and feeds every observation and request
//! through the pure transition function; it writes each new state to the intent journal in the
//! store *before* carrying out what the transition asks (a step, holding or releasing sync, a
//! full reconcile) and marks it done after. The steps ([`steps`]) are plain blocking git and
//! file work, each preceded by its failpoint (`pair.start.<step>`, `pair.stop.<step>`,
//! `pair.undo.<undo>`).
//!
//! While active, two things run beside the controller:
//! - the **link** ([`link`]): the sync engine's live loop between the checkout (which wins
//!   conflicts) and the workspace, whose gate reads both sides' git state before every round
//!   and before every write, so a checkout that switched branches is never carried over;
//! - the **git watch** ([`gitwatch`]): inotify on both git dirs. Any change there makes the
//!   controller look at both sides ([`observe`]): pausing causes are raised or cleared, and
//!   commits are carried by fast-forward when one copy of `berth/<agent>` is ahead.
//!
//! Where things are: `controller` (the thread, the state machine, git checks, the link),
//! `front` (a start during a transition answered at once), `requests` (start, switch, stop,
//! flush, park), `steps`, `recovery`, `status` (what `pair status` and events show),
//! `observe`, `link` (the live loop) with `gate`, `keeper` and `roots`, `gitwatch`.
//!
//! A daemon start re-opens every open pairing from its journal (`berth_core::pairing::recover`):
//! an interrupted start is undone (or finished, once sync had begun), an interrupted stop is
//! finished, and an active pairing comes back through re-validation and a full reconcile.
//! A graceful shutdown parks every pairing after a last flush, leaving its journal as it is.

mod controller;
mod front;
mod gate;
mod gitwatch;
mod keeper;
pub mod link;
pub mod observe;
mod recovery;
mod requests;
mod roots;
mod status;
mod steps;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_core::pairing::Refusal;
use berth_proto::{PairFlushed, PairStatus, PairStopped};
use tokio::sync::oneshot;

pub use controller::{Msg, Request};

use crate::state::Shared;

/// Why a pairing request did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// Blockers refuse the start; the text lists them, one line each.
    #[error("{0}")]
    Blocked(String),
    #[error("{}", .0.message())]
    Refused(Refusal),
    #[error("not paired — nothing to do (start with `berth pair NAME`)")]
    NotPaired,
    /// Paused: the notices say why.
    #[error("{0}")]
    Paused(String),
    /// A step failed; the text says what happened and what is left.
    #[error("{0}")]
    Failed(String),
}

/// A running controller, as the API sees it.
#[derive(Debug, Clone)]
struct Handle {
    tx: std::sync::mpsc::Sender<Msg>,
    status: Arc<Mutex<PairStatus>>,
}

/// Every open pairing of this daemon run, by project root.
#[derive(Debug, Default)]
pub struct Registry {
    open: Mutex<HashMap<String, Handle>>,
}

impl Registry {
    fn get(&self, root: &str) -> Option<Handle> {
        self.lock().get(root).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Handle>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets the controller of `root` if it is the one whose status is `status`.
    fn remove(&self, root: &str, status: &Arc<Mutex<PairStatus>>) {
        let mut open = self.lock();
        if open
            .get(root)
            .is_some_and(|h| Arc::ptr_eq(&h.status, status))
        {
            open.remove(root);
        }
    }
}

/// The status of the checkout at `root` (not paired: state `off`).
pub fn status(shared: &Shared, root: &str) -> PairStatus {
    match shared.pairings.get(root) {
        Some(h) => h.status.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        None => PairStatus::off(root),
    }
}

async fn ask<T>(
    h: &Handle,
    make: impl FnOnce(oneshot::Sender<Result<T, PairError>>) -> Request,
) -> Option<Result<T, PairError>> {
    let (tx, rx) = oneshot::channel();
    h.tx.send(Msg::Request(make(tx))).ok()?;
    rx.await.ok()
}

/// `berth pair AGENT`: starts pairing (or switches to AGENT while paired with another);
/// answers when the start has finished or was undone.
pub async fn start(
    shared: &Arc<Shared>,
    root: &str,
    agent: &str,
    no_stash: bool,
) -> Result<PairStatus, PairError> {
    // A controller that is just ending answers nothing: then a new one starts.
    for _ in 0..2 {
        let handle = {
            let mut open = shared.pairings.lock();
            match open.get(root) {
                Some(h) => h.clone(),
                None => {
                    let h = controller::spawn_new(shared.clone(), root.to_string());
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
        if let Some(answer) = ask(&handle, request).await {
            return answer;
        }
        shared.pairings.remove(root, &handle.status);
    }
    Err(PairError::Failed(
        "the pairing controller ended unexpectedly; see `berth daemon logs`".into(),
    ))
}

/// `berth pair stop`.
pub async fn stop(shared: &Arc<Shared>, root: &str) -> Result<PairStopped, PairError> {
    let h = shared.pairings.get(root).ok_or(PairError::NotPaired)?;
    ask(&h, |reply| Request::Stop { reply })
        .await
        .unwrap_or(Err(PairError::NotPaired))
}

/// `berth pair flush`.
pub async fn flush(shared: &Arc<Shared>, root: &str) -> Result<PairFlushed, PairError> {
    let h = shared.pairings.get(root).ok_or(PairError::NotPaired)?;
    ask(&h, |reply| Request::Flush { reply })
        .await
        .unwrap_or(Err(PairError::NotPaired))
}

/// On daemon start: re-opens every open pairing from its journal.
pub fn recover_all(shared: &Arc<Shared>) {
    let Some(store) = shared.store.get() else {
        return;
    };
    let open = match store.open_pairings() {
        Ok(open) => open,
        Err(e) => {
            tracing::error!("cannot read open pairings: {e}");
            return;
        }
    };
    let mut registry = shared.pairings.lock();
    for rec in open {
        let root = rec.project_root.clone();
        let h = controller::spawn_recovered(shared.clone(), rec);
        registry.insert(root, h);
    }
}

/// On graceful shutdown: every pairing is parked at a safe point (a last flush, then the link
/// stops); their journals stay as they are, so the next start resumes them.
pub async fn park_all(shared: &Arc<Shared>) {
    let handles: Vec<Handle> = shared.pairings.lock().values().cloned().collect();
    for h in handles {
        let (tx, rx) = oneshot::channel();
        if h.tx.send(Msg::Request(Request::Park { reply: tx })).is_ok() {
            let _ = rx.await;
        }
    }
}
