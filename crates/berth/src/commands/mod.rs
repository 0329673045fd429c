//! One module per command group.

use std::time::Duration;

use berth_client::Client;

use crate::Ctx;

/// How long a request that works on a whole tree may take before the CLI stops waiting: a
/// pairing's start, flush or stop (a first copy), an agent's creation (its workspace checked
/// out) or removal. The daemon carries on either way; `berth pair status` and `berth agent
/// show` tell where it is.
const LONG_REQUEST: Duration = Duration::from_secs(600);

/// A client for requests that work on a whole tree ([`LONG_REQUEST`]).
pub fn long_client(ctx: &Ctx) -> Client {
    Client::unix(ctx.home.socket()).with_timeout(LONG_REQUEST)
}

pub mod agent;
pub mod attach;
pub mod completions;
pub mod compose;
pub mod daemon;
pub mod debug_sync;
pub mod demo;
pub mod doctor;
pub mod events;
pub mod hook;
pub mod inbox;
pub mod logs;
pub mod man;
pub mod pair;
pub mod serve;
pub mod stash;
pub mod status;
pub mod timer;
pub mod turns;
pub mod web;
