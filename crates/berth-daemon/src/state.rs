//! A run's lifecycle and status: its identity (generation, pid, sockets, fingerprint), its
//! phase, its activity counters and — once storage is prepared — its [`Services`]. Only `serve`
//! and the API hold it; everything else gets the narrow handles of [`Services`].

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
use tokio::sync::watch;

use crate::console::Console;
use crate::services::Services;

/// One daemon run, as `serve` and the API see it.
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
    /// The web console's login codes and listener.
    pub console: Console,
    /// Set once storage is prepared.
    services: OnceLock<Services>,
    phase: Mutex<Phase>,
    live: watch::Sender<LivePhase>,
    pub requests: AtomicU64,
    pub open_connections: AtomicU64,
    pub subscribers: AtomicU64,
}

impl Shared {
    pub fn new(
        config: ServeConfig,
        generation: String,
        started_at_ms: i64,
        socket: PathBuf,
        tcp: Option<std::net::SocketAddr>,
        token: Option<Token>,
        console: Console,
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
            console,
            services: OnceLock::new(),
            phase: Mutex::new(lifecycle::INITIAL),
            live: watch::channel(LivePhase::Starting).0,
            requests: AtomicU64::new(0),
            open_connections: AtomicU64::new(0),
            subscribers: AtomicU64::new(0),
        }
    }

    pub fn home(&self) -> Home {
        self.config.layout()
    }

    /// The run's services, once storage is prepared (`None` while starting).
    pub fn services(&self) -> Option<&Services> {
        self.services.get()
    }

    /// Makes the run's services available; once only (a second call changes nothing).
    pub fn provide(&self, services: Services) {
        if self.services.set(services).is_err() {
            tracing::warn!("the run's services were provided twice; the first stay");
        }
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
            .services()
            .and_then(|s| s.store.last_seq().ok())
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
            console: self.console.listener.address(self),
            config: self.config.clone(),
            fingerprint: self.fingerprint.clone(),
            fields: self.effective.fields.clone(),
        }
    }

    /// Appends an event about the daemon if the store is open (see [`crate::recorder`]).
    pub fn record(&self, kind: &str, data: serde_json::Value) {
        if let Some(services) = self.services() {
            services.events.record(kind, data);
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
