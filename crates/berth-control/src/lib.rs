//! The berth daemon seen from outside, and the files one daemon run shares with the world.
//!
//! # Theory of operation
//!
//! A home's daemon is known by what it leaves under `run/` and by what answers on its socket.
//! This crate owns both sides of that contract, so each format has one definition:
//!
//! - **Runtime files** the daemon writes and everyone else reads: the exclusive lock
//!   ([`lock`]: taken by the daemon, queried with `F_GETLK` by everyone else), the metadata
//!   ([`metadata`]), failure records ([`failure`]), the readiness pipe's one line
//!   ([`readiness`]), the bearer token's handling ([`token`]), atomic writes ([`files`]), the
//!   home kept private ([`privacy`]).
//! - **Discovery** ([`probe`]): the lock holder, a handshake on the socket and the files present
//!   are classified by `berth_core::daemon_state` into the seven states of `daemon status`.
//! - **Lifecycle**: [`start`] spawns `berth serve --detached` and waits for its readiness line
//!   (stopping what it spawned and recording the failure when it gives up); [`stop`] asks,
//!   then signals, each wait bounded (`berth_core::stop`).
//! - **Logs** ([`logs`]): tails across rotated files, the lines written since a mark, following.
//!
//! The CLI, the web console and remote tools control a daemon through this crate and
//! `berth-client`; none of them opens the daemon's database or reaches into its modules.

pub mod error;
pub mod failure;
pub mod files;
pub mod lock;
pub mod logs;
pub mod metadata;
pub mod privacy;
pub mod probe;
pub mod readiness;
pub mod start;
pub mod stop;
pub mod token;

pub use error::ControlError;

/// The exit status with which a daemon refuses for safety (a foreign socket, a held home).
pub const REFUSED_EXIT: i32 = 4;
