//! The berth daemon: one process per home that owns the control API, the event log, the agents
//! under supervision and the pairings.
//!
//! # Theory of operation
//!
//! A run ([`serve::serve`]) goes through the phases of `berth_core::lifecycle`:
//!
//! 1. **Claim the home.** `run/` is created 0700 and `run/daemon.lock` is locked exclusively
//!    (`berth_control::lock::DaemonLock`). The lock, not a pid file, is what makes a daemon the only one:
//!    a second `serve` fails at once. Holding it, the daemon may clean runtime files a dead
//!    predecessor left — except a socket that something else still answers on (foreign), which
//!    it never removes.
//! 2. **Early socket.** The control socket is bound (0600) before storage is prepared, so
//!    `daemon status` answers `starting` while the store migrates or recovery runs.
//! 3. **Prepare.** The store is opened and the run's [`services::Services`] are made from it;
//!    agents that should run are re-adopted ([`agents`]), open pairings recovered from their
//!    journals ([`pairing`]) and every inbox with work handed to its worker ([`inbox`]: a turn
//!    found running is re-adopted, one whose keeper vanished retried), and the timers' task
//!    started ([`timers`]: a timer due while the daemon was down fires once). On failure a failure record carrying this run's generation is
//!    written and the run ends.
//! 4. **Ready.** The phase becomes `running`, the metadata is rewritten and, when started by
//!    `berth daemon start`, one line goes through the inherited readiness pipe
//!    (`berth_control::readiness`); the parent returns at that moment, not after a sleep.
//! 5. **Shutdown** on SIGTERM, SIGINT or `POST /v1/daemon/shutdown`: stop accepting, end event
//!    streams, finish in-flight requests (bounded), checkpoint the store, remove the runtime
//!    files, release the lock last. A shutdown that hangs past its limit ends the process with a
//!    failure record naming the step ([`watchdog`]).
//!
//! The API ([`api`]) is axum behind a hand-written accept loop ([`server`]) so that every Unix
//! connection's peer uid is checked before a byte is read, and every TCP request carries the
//! bearer token (`berth_control::token`) or a browser session of the web console ([`console`]:
//! a one-time login code from `berth web`, a cookie, `Host`, `Origin` and CSRF checks; the page
//! itself is embedded in the binary).
//!
//! # Handles, not a context
//!
//! The run as a whole ([`state::Shared`]: identity, phase, counters) is held only by `serve`
//! and the API. What requests are served with are cheap handles ([`services::Services`]): the
//! store, the git lock ([`git_lock`]), the event recorder ([`recorder`]), the supervisor
//! ([`agents`]), the inboxes ([`inbox`]), the timers ([`timers`]), the webhooks ([`hooks`]) and the
//! pairings ([`pairing`]); each module is given just the handles it
//! needs. Agents' commits are mirrored into their project by [`mirror`], the one place besides
//! pairing that moves refs after the fact.

pub mod agents;
pub mod api;
pub mod clock;
pub mod compose;
pub mod console;
pub mod database;
pub mod debug_sync;
pub mod failpoints;
pub mod far;
pub mod far_calls;
pub mod far_turns;
pub mod git_lock;
pub mod hooks;
pub mod ids;
pub mod inbox;
pub mod keeper_socket;
pub mod keepers;
pub mod logging;
pub mod memory;
pub mod mirror;
pub mod pairing;
pub mod recorder;
pub mod serve;
pub mod server;
pub mod services;
pub mod state;
pub mod terminals;
pub mod timers;
pub mod watchdog;
pub mod workspaces;

pub use serve::{Daemon, ServeError, ServeOptions, launch, serve};

/// `berth __keeper --dir DIR`: the keeper of one agent (`berth_supervisor::keeper`), the other
/// long-lived program the `berth` binary hosts besides the daemon itself.
pub fn run_keeper(dir: std::path::PathBuf) -> Result<(), berth_supervisor::keeper::KeeperError> {
    berth_supervisor::keeper::run(berth_supervisor::keeper::spec::KeeperDir(dir))
}

/// `berth __endpoint ROOT`: serves one tree on standard input and output to a daemon at the
/// other end of a byte stream (ssh, a pipe): `berth_sync::remote`'s protocol, with the far side
/// of agents elsewhere ([`far`]) answering the daemon's host calls.
pub fn run_endpoint(root: std::path::PathBuf) -> Result<(), berth_sync::remote::RemoteError> {
    berth_sync::remote::serve_stdio(&root, &mut far::FarHost)
}

/// `berth __relay SOCKET`: on the far side of an agent elsewhere, copies standard input and
/// output to and from its keeper's socket for an attached client ([`keeper_socket`]).
pub fn run_relay(socket: &std::path::Path) -> Result<(), String> {
    keeper_socket::relay(socket)
}

/// `berth __digest FILE`: the blake3 digest of a file in hex, with which a copy of berth just
/// installed on the far side checks itself (`berth_sync::remote::install`).
pub fn file_digest(file: &std::path::Path) -> std::io::Result<String> {
    berth_sync::remote::install::digest_file(file)
}
