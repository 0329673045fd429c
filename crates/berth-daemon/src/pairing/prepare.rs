//! What a start's copy step needs before it copies — both trees' endpoints, with the digests
//! kept of them loaded, both trees watched, and the agent's workspace scanned — made on a
//! thread of its own while the start's git steps run (the snapshot, the branch, the switch:
//! git keeps one core busy, this the other). The copy step then scans only the checkout. It
//! takes this when it is there and makes it itself otherwise (a start resumed after a
//! restart).
//!
//! Watching the checkout before the switch changes nothing for the copy: the switch's own
//! writes come as events, and the sync loop's first round looks at those paths again. The
//! workspace is watched before it is scanned, so what the agent changes after its scan (and
//! the copy carried over) is an event for that first round too.

use std::thread::JoinHandle;

use berth_store::Store;
use berth_sync::endpoint::Endpoint;
use berth_sync::engine::{Scanned, Sides};
use berth_sync::scan::Scanner;

use super::error::PairingError;
use super::hashes;
use super::roots::Roots;
use super::sync_loop::Watching;
use super::tree::AgentTree;

/// Both trees' endpoints, and their watches if both could be watched; the workspace's scan
/// if it was made (only when both are watched, see above).
pub struct Prepared {
    pub sides: Sides<Scanner, AgentTree>,
    pub watched: Option<Watching>,
    pub agent: Option<Scanned>,
}

/// Makes what the copy step needs.
pub fn prepare(roots: &Roots, store: &Store) -> Result<Prepared, PairingError> {
    let mut sides = roots.sides()?;
    hashes::load(store, &mut sides);
    // Watched from before the scan on: nothing that changes after it goes unseen, so the
    // sync loop needs no full round of its own to begin with.
    let watched = Watching::start(&mut sides);
    Ok(Prepared {
        sides,
        watched,
        agent: None,
    })
}

/// [`prepare`] under way on a thread of its own.
pub struct Preparing(JoinHandle<Result<Prepared, PairingError>>);

impl Preparing {
    pub fn start(roots: Roots, store: Store) -> std::io::Result<Preparing> {
        std::thread::Builder::new()
            .name("pair-prepare".into())
            .spawn(move || {
                let mut prepared = prepare(&roots, &store)?;
                if prepared.watched.is_some() {
                    // A tree that cannot be scanned now is scanned again by the copy, which
                    // reports it.
                    prepared.agent = Endpoint::full(&mut prepared.sides.beta).ok();
                }
                Ok(prepared)
            })
            .map(Preparing)
    }

    /// Waits for it.
    pub fn finish(self) -> Result<Prepared, PairingError> {
        self.0.join().map_err(|_| {
            PairingError::Failed(
                "preparing the copy of the agent's files stopped unexpectedly; see `berth \
                     daemon logs`"
                    .into(),
            )
        })?
    }
}
