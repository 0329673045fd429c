//! A pairing's ancestor (what both sides last agreed on) in the store, under the link
//! `pair:<pairing>`: loaded by the link and the steps that copy or compare the trees, saved
//! after every round, dropped when the pairing ends. The link journals every round's writes
//! before making them ([`journal`]); loading adopts those that were carried out
//! ([`berth_sync::ancestor::Ancestor::adopt`]), so a daemon killed between a write and the
//! save never reverts an edit made after it.

use berth_store::Store;
use berth_sync::ancestor::{self, Ancestor, Journal, Pending};
use berth_sync::reconcile::{Entry, Side};

use super::error::PairingError;

/// Where a pairing's ancestor is stored.
pub fn key(pairing: &str) -> String {
    format!("pair:{pairing}")
}

/// Loads a pairing's ancestor from the store.
pub fn load(store: &Store, pairing: &str) -> Result<Ancestor, PairingError> {
    Ok(ancestor::from_rows(store.ancestor(&key(pairing))?))
}

/// Loads a pairing's ancestor and adopts its pending writes that were carried out (what a
/// side holds at a path: `holds`).
pub fn load_adopting<E: std::fmt::Display>(
    store: &Store,
    pairing: &str,
    holds: impl FnMut(Side, &[u8]) -> Result<Option<Entry>, E>,
) -> Result<Ancestor, PairingError> {
    let mut a = load(store, pairing)?;
    let pending: Vec<Pending> = store
        .pending(&key(pairing))?
        .into_iter()
        .filter_map(|(path, side, entry)| Pending::from_row(path, side, entry.as_deref()))
        .collect();
    let adopted = a
        .adopt(&pending, holds)
        .map_err(|e| PairingError::Pending(e.to_string()))?;
    if adopted > 0 {
        tracing::info!(pairing, adopted, "writes made before a restart adopted");
    }
    Ok(a)
}

/// Records a round's writes before it makes them.
pub fn journal(store: Store, pairing: &str) -> Journal {
    let key = key(pairing);
    Journal::new(move |pending| {
        store
            .record_pending(&key, pending.iter().map(Pending::row))
            .map_err(|e| e.to_string())
    })
}

/// Saves what changed in the ancestor; the journaled writes are then recorded there.
pub fn save(store: &Store, pairing: &str, a: &mut Ancestor) -> Result<(), PairingError> {
    let key = key(pairing);
    a.save(|rows| store.update_ancestor(&key, rows))?;
    Ok(store.clear_pending(&key)?)
}
