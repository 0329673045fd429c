//! The gate: whether a round may apply changes right now. The engine asks before it scans and
//! again after scanning, just before it writes anything, so a tree whose meaning changed
//! meanwhile (its checkout switched branches, a merge began) is never carried to the other
//! side. `berth debug sync` has no gate; pairing's gate reads each side's git state.

use std::fmt;

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Go on.
    Open,
    /// Something is briefly in the way (git holds the index lock while it rewrites the tree):
    /// try again in a moment.
    Busy(String),
    /// Syncing must stop until the owner releases it ([`crate::watch::Input::Release`]).
    Closed(String),
}

/// The question the engine asks; set by the owner of the trees.
pub struct Gatekeeper(Box<dyn FnMut() -> Gate + Send>);

impl Gatekeeper {
    pub fn new(f: impl FnMut() -> Gate + Send + 'static) -> Gatekeeper {
        Gatekeeper(Box::new(f))
    }

    /// Asks the gate.
    pub fn check(&mut self) -> Gate {
        (self.0)()
    }
}

impl fmt::Debug for Gatekeeper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Gatekeeper")
    }
}
