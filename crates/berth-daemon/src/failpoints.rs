//! The daemon's own failpoints (`daemon.prepare`, `daemon.shutdown`, the inbox's
//! `inbox.turn.*`), reached from async code.
//! `BERTH_FAILPOINTS` is read and carried out by `berth_git::failpoint` (which the pairing
//! steps reach directly); here it runs on a blocking thread, so a `sleep` never stalls the
//! runtime. An `error(ERRNO)` action is ignored: these points mark moments, not operations.
//!
//! [`CARRY_COMMITS`] is reached on the pairing's blocking thread instead, where an
//! `error(ERRNO)` fails the carry.

/// Carrying commits between the two copies of `berth/<agent>`: one side's branch moved, the
/// other's not yet (the crash matrix kills the daemon here).
pub const CARRY_COMMITS: &str = "pair.carry.commits";

/// Reaches the failpoint `name`: does nothing unless it is active.
pub async fn hit(name: &'static str) {
    let reached = tokio::task::spawn_blocking(move || berth_git::failpoint::hit(name)).await;
    match reached {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(failpoint = name, "an error action has no effect here: {e}"),
        // `panic` panics here as it would have in place.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => tracing::warn!(failpoint = name, "failpoint task: {e}"),
    }
}
