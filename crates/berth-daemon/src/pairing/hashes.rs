//! The digests a pairing's scanners keep, kept between pairings: one file per tree under the
//! daemon's state folder (`state/hashes/`), written when a stop has compared both trees and
//! read by the next start's copy step. A checkout and an agent's workspace are mostly
//! unchanged between two pairings, so the next start reads only the files that changed
//! instead of hashing both trees whole; every kept digest is checked against the file's stat
//! data before it is used, exactly as within a pairing ([`Scanner::load_hashes`]).

use std::path::{Path, PathBuf};

use berth_store::Store;
use berth_sync::engine::Sides;
use berth_sync::scan::Scanner;

use super::tree::AgentTree;

/// Where the digests of the tree at `root` are kept.
fn file_for(store: &Store, root: &Path) -> Option<PathBuf> {
    let name = blake3::hash(root.as_os_str().as_encoded_bytes()).to_hex();
    Some(store.path().parent()?.join("hashes").join(&name[..32]))
}

/// Both local trees' scanners, starting from what was kept of them (read one after the other:
/// a start reads them on its preparation's thread, beside the git steps).
pub fn load(store: &Store, sides: &mut Sides<Scanner, AgentTree>) {
    for scanner in local(sides) {
        if let Some(file) = file_for(store, scanner.root()) {
            scanner.load_hashes(&file);
        }
    }
}

/// Keeps both local trees' digests (best effort: without them the next start hashes more).
pub fn save(store: &Store, sides: &mut Sides<Scanner, AgentTree>) {
    for scanner in local(sides) {
        let Some(file) = file_for(store, scanner.root()) else {
            continue;
        };
        let kept = file
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| scanner.save_hashes(&file));
        if let Err(e) = kept {
            tracing::debug!(
                "cannot keep the digests of {}: {e}",
                scanner.root().display()
            );
        }
    }
}

/// Forgets the digests kept of the tree at `root` (an agent's workspace, removed).
pub fn forget(store: &Store, root: &Path) {
    let Some(file) = file_for(store, root) else {
        return;
    };
    match std::fs::remove_file(&file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("cannot remove {}: {e}", file.display()),
    }
}

/// The scanners of the trees on this machine.
fn local(sides: &mut Sides<Scanner, AgentTree>) -> Vec<&mut Scanner> {
    let mut all = vec![&mut sides.alpha];
    if let AgentTree::Here(agent) = &mut sides.beta {
        all.push(&mut **agent);
    }
    all
}
