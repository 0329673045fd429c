//! A pairing's ancestor (what both sides last agreed on) in the store, under the link
//! `pair:<pairing>`: loaded by the link and the steps that copy or compare the trees, saved
//! after every round, dropped when the pairing ends.

use berth_store::Store;
use berth_sync::ancestor::{self, Ancestor};

use super::error::PairingError;

/// Where a pairing's ancestor is stored.
pub fn key(pairing: &str) -> String {
    format!("pair:{pairing}")
}

/// Loads a pairing's ancestor from the store.
pub fn load(store: &Store, pairing: &str) -> Result<Ancestor, PairingError> {
    Ok(ancestor::from_rows(store.ancestor(&key(pairing))?))
}

/// Saves what changed in the ancestor.
pub fn save(store: &Store, pairing: &str, a: &mut Ancestor) -> Result<(), PairingError> {
    let key = key(pairing);
    Ok(a.save(|rows| store.update_ancestor(&key, rows))?)
}
