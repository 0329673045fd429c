//! The pure domain of berth: no I/O, no clocks, no processes.
//!
//! Everything berth decides is decided here, from plain data, by functions that only compute —
//! so every decision is unit-tested exhaustively and the crates at the edges (daemon, CLI) only
//! gather observations and carry out the answers.
//!
//! - [`names`]: what an agent or service may be called.
//! - [`command`]: what a process may run: a command line and environment variables exec can
//!   take.
//! - [`agent_state`]: the states of a supervised process and their transitions.
//! - [`restart`]: restart policies, exponential backoff and the restart budget.
//! - [`probe`]: readiness and liveness probes and how their results add up.
//! - [`project`]: `berth.toml`, parsed strictly.
//! - [`deps`]: dependency order for `berth up` / `berth down`; what is skipped after a failure;
//!   how `berth down`'s overall timeout shortens each grace period.
//! - [`compose`]: whether a process `berth up` started reached what its dependents ask for, and
//!   if it never will, why.
//! - [`inbox`]: an agent's inbox: an item's states, priorities, how an agent takes messages,
//!   what follows a turn (retries with backoff) and what a restarted daemon makes of a delivery.
//! - [`hook`]: webhooks: the signature a delivery must carry (HMAC-SHA256, GitHub's form), its
//!   size, its delivery id as an idempotency key, and the template that makes its message.
//! - [`home`]: the layout of `$BERTH_HOME` (which file lives where).
//! - [`config`]: the daemon's serve configuration, its effective-config fingerprint and the
//!   field-by-field diff shown when a running daemon's configuration differs.
//! - [`daemon_state`]: the seven states `berth daemon status` reports, classified from what can be
//!   observed from outside (lock holder, socket probe, leftover files).
//! - [`lifecycle`]: the phases one daemon run goes through (`starting → running → stopping`).
//! - [`stop`]: the escalation `berth daemon stop` follows (ask → SIGTERM → SIGKILL, each wait
//!   bounded).
//! - [`pairing`]: pairing's states, start/stop steps and their undo, blockers, pause notices,
//!   the transition function, the intent journal's entry and crash recovery.
//! - [`duration`]: human durations (`250ms`, `10s`).
//! - [`failpoint`]: the `BERTH_FAILPOINTS` syntax used by crash tests.
//! - [`terminal`]: terminal agents: the size of their pseudo-terminal, what may be typed into
//!   one, the scrollback their keeper keeps.
//! - [`time`]: timestamps rendered in UTC or in a time zone (`jiff`).
//! - [`timer`]: agents' timers (`every`, `cron`, `at`): when each fires next, missed fires
//!   and daylight-saving changes, as functions of a clock reading.

pub mod agent_state;
pub mod command;
pub mod compose;
pub mod config;
pub mod console;
pub mod daemon_state;
pub mod deps;
pub mod duration;
pub mod failpoint;
pub mod home;
pub mod hook;
pub mod inbox;
pub mod lifecycle;
pub mod names;
pub mod output_line;
pub mod pairing;
pub mod plain_text;
pub mod probe;
pub mod project;
pub mod restart;
pub mod stop;
pub mod terminal;
pub mod time;
pub mod timer;

/// The transition asked for is not defined for the current state. Returned by every pure state
/// machine in this crate; the edge that fed the input has a bug or observed something impossible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid transition: {input} while {state}")]
pub struct InvalidTransition {
    pub state: String,
    pub input: String,
}

impl InvalidTransition {
    pub(crate) fn new(state: impl std::fmt::Debug, input: impl std::fmt::Debug) -> Self {
        InvalidTransition {
            state: format!("{state:?}"),
            input: format!("{input:?}"),
        }
    }
}
