//! Trees elsewhere: the protocol between the daemon and `berth __endpoint ROOT`, and both of
//! its ends.
//!
//! # The protocol
//!
//! One byte stream each way (ssh's, a pipe's, `docker exec -i`'s): [`frame`]s of at most
//! [`frame::MAX_FRAME`] bytes, a 4-byte big-endian length then one message in `postcard`'s
//! compact format ([`message`]). The endpoint greets first with its protocol number and
//! version; the client answers with its own and the size limit, and either side refuses a
//! peer that speaks another [`message::PROTOCOL`]. Then the client asks and the endpoint
//! answers, one request at a time: scans (whole or a subtree; the stat cache stays on the
//! endpoint's side, so a rescan reads only what changed there), a file's content (chunks and
//! then their blake3 digest, only for the files the engine copies), applies (the same atomic
//! apply that never leaves the root, its content checked against the digest before it is
//! renamed into place), watching and heartbeats, and the git facts pairing reads. Watch events
//! come whenever they happen, between any two frames.
//!
//! # The ends
//!
//! [`serve`] is the endpoint (`berth __endpoint`, on the far side); [`RemoteEndpoint`] is the
//! daemon's end, an [`crate::endpoint::Endpoint`] like a local tree, over the standard input
//! and output of a command it starts ([`ssh::SshTarget::command`] for `ssh://` targets).

mod client;
mod content;
mod error;
pub mod frame;
pub mod message;
mod serve;
pub mod ssh;

pub use client::{RemoteEndpoint, RemoteReader, RemoteWatch};
pub use error::RemoteError;
pub use serve::{serve, serve_stdio};
