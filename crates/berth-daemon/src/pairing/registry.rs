//! The open pairings of one daemon run, by project root: how the API finds a checkout's
//! controller, and how a controller that ends takes itself out.

use std::collections::HashMap;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};

use berth_proto::PairStatus;
use tokio::sync::oneshot;

use super::error::PairingError;
use super::messages::{Msg, Request};

/// A running controller, as the API sees it: its mailbox (through its front door) and the
/// status it publishes.
#[derive(Debug, Clone)]
pub struct Handle {
    pub tx: Sender<Msg>,
    pub status: Arc<Mutex<PairStatus>>,
}

impl Handle {
    /// The status the controller published last.
    pub fn status(&self) -> PairStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sends a request and waits for its answer; `None` if the controller ended first.
    pub async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, PairingError>>) -> Request,
    ) -> Option<Result<T, PairingError>> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Msg::Request(make(tx))).ok()?;
        rx.await.ok()
    }

    /// Parks the pairing (see `Pairings::park_all`) and waits until it is parked.
    pub async fn park(&self) {
        let (tx, rx) = oneshot::channel();
        if self
            .tx
            .send(Msg::Request(Request::Park { reply: tx }))
            .is_ok()
        {
            let _ = rx.await;
        }
    }
}

/// Every open pairing of this daemon run, by project root.
#[derive(Debug, Default)]
pub struct Registry {
    open: Mutex<HashMap<String, Handle>>,
}

impl Registry {
    pub fn get(&self, root: &str) -> Option<Handle> {
        self.lock().get(root).cloned()
    }

    pub fn lock(&self) -> MutexGuard<'_, HashMap<String, Handle>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets the controller of `root` if it is the one whose status is `status`.
    pub fn remove(&self, root: &str, status: &Arc<Mutex<PairStatus>>) {
        let mut open = self.lock();
        if open
            .get(root)
            .is_some_and(|h| Arc::ptr_eq(&h.status, status))
        {
            open.remove(root);
        }
    }
}
