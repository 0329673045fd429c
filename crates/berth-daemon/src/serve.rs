//! One daemon run, from claiming the home to removing its runtime files. See the crate docs.

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_control::failure::FailureRecord;
use berth_control::lock::{DaemonLock, LockError};
use berth_control::readiness::ReadyPipe;
use berth_control::token::Token;
use berth_control::{files, privacy};
use berth_core::config::{ConfigError, ServeConfig};
use berth_core::daemon_state::LivePhase;
use berth_core::home::Home;
use berth_core::lifecycle::Input;
use berth_store::{Store, StoreError, StoreOptions};
use tokio::net::{TcpListener, UnixListener};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::console::{Console, ConsoleListener};
use crate::logging::{self, RotatingLog};
use crate::server::{self, Listener};
use crate::services::Services;
use crate::state::Shared;
use crate::watchdog::{self, Watchdog};
use crate::{api, failpoints};

/// How long shutdown waits for open connections to finish.
const DRAIN: Duration = Duration::from_secs(5);

/// Everything a run needs.
#[derive(Debug)]
pub struct ServeOptions {
    pub config: ServeConfig,
    /// The TCP bearer token (required when `config.listen` is set).
    pub token: Option<Token>,
    /// The readiness pipe inherited from `berth daemon start`.
    pub ready_fd: Option<RawFd>,
    /// Also log to standard error (`berth serve` in a terminal).
    pub log_to_stderr: bool,
    /// Standard error is the daemon log file (`berth daemon start`): re-point it at the new file
    /// on rotation, so even a panic message lands in the current log.
    pub stderr_is_log: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "a TCP listener is configured but no token was given; pass --token-file or set BERTH_TOKEN"
    )]
    MissingToken,
    #[error("cannot prepare {path}: {source}")]
    RunDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(
        "{path} is held by a program that is not a berth daemon of this home; berth will not touch \
         it. Find it with `ss -xlp | grep berth.sock` (or `lsof {path}`), stop it, then try again"
    )]
    Foreign { path: PathBuf },
    #[error("cannot open the daemon log {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {what}: {source}")]
    Bind {
        what: String,
        source: std::io::Error,
    },
    #[error("cannot prepare the store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Runtime(String),
}

impl ServeError {
    /// Refusals to touch something (as opposed to failures); the CLI exits 4 for these.
    pub fn is_refusal(&self) -> bool {
        matches!(self, ServeError::Foreign { .. })
    }
}

fn new_generation() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!("{}:{nanos}", std::process::id());
    blake3::hash(seed.as_bytes()).to_hex()[..12].to_string()
}

/// Runs the daemon until it is told to stop. Reports readiness or failure through the pipe.
pub async fn serve(opts: ServeOptions) -> Result<(), ServeError> {
    crate::memory::limit_arenas();
    let mut pipe = match opts.ready_fd {
        Some(fd) => Some(ReadyPipe::from_fd(fd).map_err(|e| ServeError::Runtime(e.to_string()))?),
        None => None,
    };
    let result = match launch(opts, &mut pipe).await {
        Ok(mut daemon) => {
            daemon.shutdown_limit = Some(watchdog::limit());
            daemon.run_until_stopped().await
        }
        Err(e) => Err(e),
    };
    if let (Err(e), Some(pipe)) = (&result, pipe.take()) {
        pipe.failed(&e.to_string());
    }
    result
}

/// A daemon run that has claimed its home and bound its sockets; see [`launch`].
pub struct Daemon {
    shared: Arc<Shared>,
    lock: DaemonLock,
    servers: Vec<tokio::task::JoinHandle<()>>,
    stop: watch::Sender<bool>,
    prepared: Result<(), ServeError>,
    /// How long a shutdown may take before the process ends itself (`None`: no watchdog, for
    /// daemons that share their process with a test or a benchmark).
    shutdown_limit: Option<Duration>,
}

/// Claims the home, binds the sockets, prepares storage and reports readiness. The returned
/// [`Daemon`] serves until [`Daemon::run_until_stopped`] sees a shutdown request; in-process
/// users (tests, the benchmark) reach its state through [`Daemon::shared`].
pub async fn launch(
    opts: ServeOptions,
    pipe: &mut Option<ReadyPipe>,
) -> Result<Daemon, ServeError> {
    let config = opts.config;
    config.validate()?;
    // Registered first, so a failure here leaves nothing behind.
    let signal_err = |e: std::io::Error| ServeError::Runtime(format!("cannot watch signals: {e}"));
    let signals = (
        signal(SignalKind::terminate()).map_err(signal_err)?,
        signal(SignalKind::interrupt()).map_err(signal_err)?,
    );
    if config.listen.is_some() && opts.token.is_none() {
        return Err(ServeError::MissingToken);
    }
    let home = config.layout();
    files::prepare_run_dir(&home).map_err(|source| ServeError::RunDir {
        path: home.run_dir(),
        source,
    })?;
    let lock = DaemonLock::acquire(&home)?;
    let log = RotatingLog::open(
        &home,
        config.log_max_bytes,
        config.log_keep,
        opts.stderr_is_log,
    )
    .map_err(|source| ServeError::Log {
        path: home.daemon_log(),
        source,
    })?;
    logging::init(log, opts.log_to_stderr);

    let generation = new_generation();
    install_panic_record(&home, &generation);
    let fail = |phase: &str, e: &ServeError| {
        tracing::error!("{e}");
        let record = FailureRecord::of_this_process(&generation, phase, e.to_string());
        if let Err(io) = record.write(&home) {
            tracing::error!("cannot write the failure record: {io}");
        }
    };
    tracing::info!(generation = %generation, pid = std::process::id(), "berth daemon starting");
    // An older berth, or a loose umask, may have left the home readable by others.
    match privacy::make_private(&home) {
        Ok(tightened) => {
            for open in tightened {
                tracing::warn!("{open}: made it private");
            }
        }
        Err(e) => tracing::warn!(
            "cannot make {} private: {e}; see `berth doctor`",
            home.root().display()
        ),
    }

    let listeners = match bind(&config, &home).await {
        Ok(l) => l,
        Err(e) => {
            fail("start", &e);
            lock.unlink(&home);
            return Err(e);
        }
    };
    let tcp_addr = listeners.1.as_ref().map(|(_, addr)| *addr);
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared::new(
        config.clone(),
        generation.clone(),
        now_ms(),
        home.socket(),
        tcp_addr,
        opts.token,
        Console::new(ConsoleListener::new(stop_rx.clone())),
    ));
    let mut servers = Vec::new();
    servers.push(tokio::spawn(server::run(
        Listener::Unix(listeners.0),
        api::router(shared.clone(), None),
        shared.clone(),
        stop_rx.clone(),
        DRAIN,
    )));
    if let Some((tcp, addr)) = listeners.1 {
        servers.push(tokio::spawn(server::run(
            Listener::Tcp(tcp),
            api::router(shared.clone(), Some(addr)),
            shared.clone(),
            stop_rx.clone(),
            DRAIN,
        )));
    }
    let write_runtime = || -> std::io::Result<()> {
        files::write_atomically(&home.pid_file(), format!("{}\n", shared.pid).as_bytes())?;
        shared.metadata().write(&home)
    };
    if let Err(e) = write_runtime() {
        tracing::error!("cannot write runtime files: {e}");
    }
    spawn_signal_watch(shared.clone(), signals);

    // Preparation: storage (and, in later capabilities, recovery).
    failpoints::hit("daemon.prepare").await;
    let db = home.database();
    let options = StoreOptions {
        retain_events: config.event_retention,
        ..StoreOptions::default()
    };
    let prepared = tokio::task::spawn_blocking(move || Store::open(&db, options))
        .await
        .map_err(|e| ServeError::Runtime(format!("storage preparation panicked: {e}")))
        .and_then(|r| r.map_err(ServeError::from));
    let outcome = match prepared {
        Ok(store) => {
            let services = Services::new(home.clone(), store);
            shared.provide(services.clone());
            // Recovery: every agent that should run is re-adopted (or found lost).
            services.agents.adopt_all();
            // Inboxes: every agent with items queued or delivering gets its worker back.
            services.inbox.recover();
            // Timers: those due while the daemon was down fire once, now.
            services.timers.start();
            // Pairings: every interrupted transition is finished or undone from its journal.
            services.pairings.recover_all();
            // The console: served again where open pages expect it.
            reopen_console(&shared, &services.store).await;
            shared
                .advance(Input::Prepared)
                .map_err(|e| ServeError::Runtime(e.to_string()))
        }
        Err(e) => {
            fail("prepare", &e);
            let _ = shared.advance(Input::PreparationFailed);
            Err(e)
        }
    };

    if shared.live_phase() == LivePhase::Running {
        shared.record(
            "daemon.ready",
            serde_json::json!({ "pid": shared.pid, "generation": generation }),
        );
        if let Err(e) = shared.metadata().write(&home) {
            tracing::error!("cannot write metadata: {e}");
        }
        let detail = serde_json::json!({
            "pid": shared.pid,
            "generation": generation,
            "socket": home.socket(),
            "tcp": tcp_addr,
        });
        if let Some(pipe) = pipe.take() {
            pipe.ready(&detail.to_string());
        }
        tracing::info!(socket = %home.socket().display(), tcp = ?tcp_addr, "berth daemon ready");
    }
    let prepared = match (outcome, pipe.is_some()) {
        (Ok(_), true) => Err(ServeError::Runtime(
            "shutdown was requested before the daemon was ready".into(),
        )),
        (outcome, _) => outcome.map(|_| ()),
    };
    Ok(Daemon {
        shared,
        lock,
        servers,
        stop: stop_tx,
        prepared,
        shutdown_limit: None,
    })
}

impl Daemon {
    /// The run's shared state (its store, its phase).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Asks the run to shut down, as SIGTERM would.
    pub fn request_shutdown(&self) {
        if let Err(e) = self.shared.advance(Input::ShutdownRequested) {
            tracing::warn!("{e}");
        }
    }

    /// Serves until a shutdown is requested, then shuts down: stop accepting, drain, flush,
    /// remove the runtime files, release the lock last.
    pub async fn run_until_stopped(self) -> Result<(), ServeError> {
        let Daemon {
            shared,
            lock,
            servers,
            stop,
            prepared,
            shutdown_limit,
        } = self;
        let home = shared.home();
        let mut phase = shared.watch_phase();
        let _ = phase.wait_for(|p| *p == LivePhase::Stopping).await;

        let watchdog = shutdown_limit
            .map(|limit| Watchdog::arm(home.clone(), shared.generation.clone(), limit));
        let step = |name: &'static str| {
            if let Some(w) = &watchdog {
                w.step(name);
            }
        };
        step("announcing the stop");
        tracing::info!("berth daemon stopping");
        shared.record(
            "daemon.stopping",
            serde_json::json!({ "generation": shared.generation }),
        );
        if let Err(e) = shared.metadata().write(&home) {
            tracing::error!("cannot write metadata: {e}");
        }
        failpoints::hit("daemon.shutdown").await;
        step("parking pairings");
        if let Some(services) = shared.services() {
            services.pairings.park_all().await;
        }
        step("draining connections");
        let _ = stop.send(true);
        for s in servers {
            let _ = s.await;
        }
        shared.console.listener.finish().await;
        step("checkpointing the store");
        if let Some(services) = shared.services()
            && let Err(e) = services.store.checkpoint()
        {
            tracing::error!("cannot checkpoint the store: {e}");
        }
        step("removing the runtime files");
        for path in [home.socket(), home.pid_file(), home.metadata_file()] {
            if let Err(e) = files::remove_if_present(&path) {
                tracing::error!("cannot remove {}: {e}", path.display());
            }
        }
        lock.unlink(&home);
        let _ = shared.advance(Input::ShutdownComplete);
        tracing::info!("berth daemon stopped");
        if let Some(w) = watchdog {
            w.finish();
        }
        drop(lock);
        prepared
    }
}

/// Binds the console's listener again on the port an earlier run had (when `berth web` was
/// used and no `--listen` is configured). A port taken meanwhile is only a warning: the next
/// `berth web` chooses another.
async fn reopen_console(shared: &Arc<Shared>, store: &Store) {
    if shared.tcp.is_some() {
        return;
    }
    match store.console_port() {
        Ok(Some(port)) => {
            if let Err(e) = shared.console.listener.ensure(shared, port).await {
                tracing::warn!(
                    "cannot serve the console on 127.0.0.1:{port} again ({e}); \
                     `berth web` will choose another port"
                );
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!("cannot read the console's port: {e}"),
    }
}

/// Binds the Unix socket (0600) and the optional TCP listener. A socket path held by something
/// else is refused; one left by a dead daemon (nobody accepts on it) is replaced.
async fn bind(
    config: &ServeConfig,
    home: &Home,
) -> Result<(UnixListener, Option<(TcpListener, SocketAddr)>), ServeError> {
    let path = home.socket();
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        let listening =
            meta.file_type().is_socket() && std::os::unix::net::UnixStream::connect(&path).is_ok();
        if !meta.file_type().is_socket() || listening {
            return Err(ServeError::Foreign { path });
        }
        tracing::info!("removing the stale socket {}", path.display());
        files::remove_if_present(&path).map_err(|source| ServeError::Bind {
            what: path.display().to_string(),
            source,
        })?;
    }
    let bind_err = |what: String| move |source| ServeError::Bind { what, source };
    let tcp = match config.listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(bind_err(addr.to_string()))?;
            let bound = listener.local_addr().map_err(bind_err(addr.to_string()))?;
            Some((listener, bound))
        }
        None => None,
    };
    let unix = UnixListener::bind(&path).map_err(bind_err(path.display().to_string()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(bind_err(path.display().to_string()))?;
    Ok((unix, tcp))
}

fn spawn_signal_watch(shared: Arc<Shared>, (mut term, mut int): (Signal, Signal)) {
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!("{name} received: shutting down gracefully");
            if let Err(e) = shared.advance(Input::ShutdownRequested) {
                tracing::warn!("{e}");
            }
        }
    });
}

/// Records a panic anywhere in the daemon as a failure of this run, then reports it as usual.
fn install_panic_record(home: &Home, generation: &str) {
    let home = home.clone();
    let generation = generation.to_string();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let record = FailureRecord::of_this_process(&generation, "panic", info.to_string());
        let _ = record.write(&home);
        previous(info);
    }));
}
