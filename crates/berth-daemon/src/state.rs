//! The state one daemon run shares between its API handlers and its lifecycle.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use berth_control::metadata::Metadata;
use berth_control::token::Token;
use berth_core::config::{EffectiveConfig, ServeConfig};
use berth_core::daemon_state::LivePhase;
use berth_core::lifecycle::{self, Input, Phase};
use berth_core::{InvalidTransition, home::Home};
use berth_proto::{Activity, DaemonPhase, DaemonStatus, Handshake};
use berth_store::Store;
use tokio::sync::watch;

/// Shared by everything in one daemon run.
#[derive(Debug)]
pub struct Shared {
    pub config: ServeConfig,
    pub effective: EffectiveConfig,
    pub fingerprint: String,
    pub generation: String,
    pub pid: u32,
    pub started_at_ms: i64,
    pub started: Instant,
    pub socket: PathBuf,
    pub tcp: Option<std::net::SocketAddr>,
    /// Present when the TCP listener is on.
    pub token: Option<Token>,
    /// Set once storage is prepared.
    pub store: OnceLock<Store>,
    phase: Mutex<Phase>,
    live: watch::Sender<LivePhase>,
    pub requests: AtomicU64,
    pub open_connections: AtomicU64,
    pub subscribers: AtomicU64,
    /// Serialises git operations that change repositories (snapshots, workspaces).
    pub git_lock: tokio::sync::Mutex<()>,
    /// Agents under supervision.
    pub supervisor: crate::agents::Supervisor,
    /// Open pairings, by project root.
    pub pairings: crate::pairing::Registry,
}

impl Shared {
    pub fn new(
        config: ServeConfig,
        generation: String,
        started_at_ms: i64,
        socket: PathBuf,
        tcp: Option<std::net::SocketAddr>,
        token: Option<Token>,
    ) -> Shared {
        let effective = config.effective(berth_proto::PROTOCOL_VERSION);
        let fingerprint = effective.fingerprint();
        Shared {
            config,
            effective,
            fingerprint,
            generation,
            pid: std::process::id(),
            started_at_ms,
            started: Instant::now(),
            socket,
            tcp,
            token,
            store: OnceLock::new(),
            phase: Mutex::new(lifecycle::INITIAL),
            live: watch::channel(LivePhase::Starting).0,
            requests: AtomicU64::new(0),
            open_connections: AtomicU64::new(0),
            subscribers: AtomicU64::new(0),
            git_lock: tokio::sync::Mutex::new(()),
            supervisor: crate::agents::Supervisor::default(),
            pairings: crate::pairing::Registry::default(),
        }
    }

    pub fn home(&self) -> Home {
        self.config.layout()
    }

    /// Feeds the lifecycle machine and publishes the resulting phase.
    pub fn advance(&self, input: Input) -> Result<Phase, InvalidTransition> {
        let mut phase = self.phase.lock().unwrap_or_else(|p| p.into_inner());
        let new = lifecycle::next(*phase, input)?;
        *phase = new;
        if let Phase::Live(live) = new {
            self.live.send_replace(live);
        }
        Ok(new)
    }

    pub fn live_phase(&self) -> LivePhase {
        *self.live.borrow()
    }

    /// A receiver that sees every phase change (used to end streams at shutdown).
    pub fn watch_phase(&self) -> watch::Receiver<LivePhase> {
        self.live.subscribe()
    }

    pub fn handshake(&self) -> Handshake {
        let phase = wire_phase(self.live_phase());
        Handshake {
            product: berth_proto::PRODUCT.to_string(),
            protocol: berth_proto::PROTOCOL_VERSION,
            version: env!("CARGO_PKG_VERSION").to_string(),
            capabilities: berth_proto::CAPABILITIES
                .iter()
                .map(|c| c.to_string())
                .collect(),
            phase,
            healthy: phase == DaemonPhase::Running,
            pid: self.pid,
            generation: self.generation.clone(),
        }
    }

    pub fn status(&self) -> DaemonStatus {
        let last_event_seq = self
            .store
            .get()
            .and_then(|s| s.last_seq().ok())
            .unwrap_or_default();
        DaemonStatus {
            handshake: self.handshake(),
            started_at_ms: self.started_at_ms,
            uptime_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            socket: self.socket.display().to_string(),
            tcp: self.tcp.map(|a| a.to_string()),
            fingerprint: self.fingerprint.clone(),
            config: self.effective.fields.clone(),
            activity: Activity {
                requests: self.requests.load(Ordering::Relaxed),
                open_connections: self.open_connections.load(Ordering::Relaxed),
                event_subscribers: self.subscribers.load(Ordering::Relaxed),
                last_event_seq,
            },
        }
    }

    pub fn metadata(&self) -> Metadata {
        Metadata {
            pid: self.pid,
            generation: self.generation.clone(),
            phase: self.live_phase(),
            started_at_ms: self.started_at_ms,
            protocol: berth_proto::PROTOCOL_VERSION,
            version: env!("CARGO_PKG_VERSION").to_string(),
            socket: self.socket.clone(),
            tcp: self.tcp,
            config: self.config.clone(),
            fingerprint: self.fingerprint.clone(),
            fields: self.effective.fields.clone(),
        }
    }

    /// Appends an event if the store is open; failures are logged, never fatal to the caller.
    pub fn record(&self, kind: &str, data: serde_json::Value) {
        self.append(kind, None, data);
    }

    /// Like [`Shared::record`], about a subject (an agent, a snapshot id).
    pub fn record_about(&self, kind: &str, subject: &str, data: serde_json::Value) {
        self.append(kind, Some(subject), data);
    }

    fn append(&self, kind: &str, subject: Option<&str>, data: serde_json::Value) {
        if let Some(store) = self.store.get()
            && let Err(e) = store.append(kind, subject, data)
        {
            tracing::error!("cannot record event {kind}: {e}");
        }
    }
}

/// Maps the domain phase to its wire form.
pub fn wire_phase(p: LivePhase) -> DaemonPhase {
    match p {
        LivePhase::Starting => DaemonPhase::Starting,
        LivePhase::Running => DaemonPhase::Running,
        LivePhase::Stopping => DaemonPhase::Stopping,
    }
}
