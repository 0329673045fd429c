//! The console's loopback listener, started on demand by `berth web`.
//!
//! A daemon started with `--listen` serves the console on that listener. Otherwise `berth web`
//! asks for one: a free port on 127.0.0.1, remembered in the store, so the next run binds the
//! same port again and open pages reconnect by themselves after a restart. It is recorded in
//! the run metadata (`console`), and stops with the run like every other listener.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::server::{self, Listener};
use crate::state::Shared;

/// How long shutdown waits for the console's connections (its streams end with the run).
const DRAIN: Duration = Duration::from_secs(2);

/// The on-demand listener of one run.
#[derive(Debug)]
pub struct ConsoleListener {
    stop: watch::Receiver<bool>,
    /// Held while binding, so two `berth web` at once bind one listener.
    binding: tokio::sync::Mutex<()>,
    /// The address once bound.
    bound: Mutex<Option<SocketAddr>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl ConsoleListener {
    /// A listener not yet bound, that stops when `stop` turns true.
    pub fn new(stop: watch::Receiver<bool>) -> ConsoleListener {
        ConsoleListener {
            stop,
            binding: tokio::sync::Mutex::new(()),
            bound: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// The address the console is served on, if any: `--listen`'s, or the one bound on demand.
    pub fn address(&self, shared: &Shared) -> Option<SocketAddr> {
        shared
            .tcp
            .or(*self.bound.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Makes sure the console is served, binding 127.0.0.1:`port` (0: any free port) when the
    /// run has no listener yet; answers its address.
    pub async fn ensure(&self, shared: &Arc<Shared>, port: u16) -> std::io::Result<SocketAddr> {
        if let Some(addr) = shared.tcp {
            return Ok(addr);
        }
        let _binding = self.binding.lock().await;
        if let Some(addr) = self.address(shared) {
            return Ok(addr);
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(server::run(
            Listener::Tcp(listener),
            crate::api::router(shared.clone(), Some(addr)),
            shared.clone(),
            self.stop.clone(),
            DRAIN,
        ));
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
        *self.bound.lock().unwrap_or_else(|p| p.into_inner()) = Some(addr);
        tracing::info!(%addr, "serving the web console");
        Ok(addr)
    }

    /// Waits for the serving task to finish (after the run's stop was sent).
    pub async fn finish(&self) {
        let tasks: Vec<_> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
    }
}
