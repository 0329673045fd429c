//! The ancestor — what both trees last agreed on — kept in the store, so a restart resumes
//! without false conflicts. It remembers which of its paths changed since they were last saved
//! ([`Ancestor::unsaved_rows`]), also when a round failed half-way, so only those rows are
//! written and none is forgotten.
//!
//! An entry is stored as a few bytes: `d` (directory), `l` + target (symlink), or `f` + the
//! executable bit + the 32-byte blake3 digest (file).

use std::collections::BTreeSet;

use crate::reconcile::Entry;
use crate::relpath::RelPath;
use crate::scan::Tree;

/// What both trees last agreed on, and which paths of it are not saved yet.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ancestor {
    tree: Tree,
    unsaved: BTreeSet<RelPath>,
}

impl Ancestor {
    /// An ancestor as loaded from the store: everything saved.
    pub fn new(tree: Tree) -> Ancestor {
        Ancestor {
            tree,
            unsaved: BTreeSet::new(),
        }
    }

    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Records what both sides now hold at `path` (`None`: nothing).
    pub fn set(&mut self, path: &[u8], entry: Option<Entry>) {
        let old = match &entry {
            Some(e) => self.tree.insert(path.to_vec(), e.clone()),
            None => self.tree.remove(path),
        };
        if old != entry {
            self.unsaved.insert(path.to_vec());
        }
    }

    /// The rows to write: each path changed since the last save with its entry (`None`:
    /// delete the row).
    pub fn unsaved_rows(&self) -> Vec<(&[u8], Option<Vec<u8>>)> {
        self.unsaved
            .iter()
            .map(|p| (p.as_slice(), self.tree.get(p).map(encode)))
            .collect()
    }

    /// The rows from [`Ancestor::unsaved_rows`] were written.
    pub fn mark_saved(&mut self) {
        self.unsaved.clear();
    }

    /// Hands the unsaved rows (if any) to `write` and, once it succeeded, marks them saved.
    pub fn save<E>(
        &mut self,
        write: impl FnOnce(Vec<(&[u8], Option<Vec<u8>>)>) -> Result<(), E>,
    ) -> Result<(), E> {
        let rows = self.unsaved_rows();
        if rows.is_empty() {
            return Ok(());
        }
        write(rows)?;
        self.mark_saved();
        Ok(())
    }
}

/// The stored form of an entry.
pub fn encode(entry: &Entry) -> Vec<u8> {
    match entry {
        Entry::Dir => b"d".to_vec(),
        Entry::Symlink { target } => [b"l".as_slice(), target].concat(),
        Entry::File { digest, executable } => {
            let mut v = vec![b'f', u8::from(*executable)];
            v.extend_from_slice(digest);
            v
        }
    }
}

/// An entry from its stored form (`None` when the bytes are not one).
pub fn decode(bytes: &[u8]) -> Option<Entry> {
    match bytes.split_first()? {
        (b'd', []) => Some(Entry::Dir),
        (b'l', target) => Some(Entry::Symlink {
            target: target.to_vec(),
        }),
        (b'f', [exec @ (0 | 1), digest @ ..]) => Some(Entry::File {
            digest: digest.try_into().ok()?,
            executable: *exec == 1,
        }),
        _ => None,
    }
}

/// An ancestor from stored rows; rows that do not decode are left out (that path then looks
/// new to both sides, which at worst keeps an extra copy — it never loses one).
pub fn from_rows(rows: impl IntoIterator<Item = (RelPath, Vec<u8>)>) -> Ancestor {
    Ancestor::new(
        rows.into_iter()
            .filter_map(|(p, e)| Some((p, decode(&e)?)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_and_garbage_is_refused() {
        for e in [
            Entry::Dir,
            Entry::Symlink {
                target: b"../x/\xff".to_vec(),
            },
            Entry::Symlink { target: Vec::new() },
            Entry::File {
                digest: [7; 32],
                executable: true,
            },
            Entry::File {
                digest: [0; 32],
                executable: false,
            },
        ] {
            assert_eq!(decode(&encode(&e)), Some(e));
        }
        for bad in [&b""[..], b"dx", b"f", b"f\x02", b"f\x01short", b"q"] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
        let tree = from_rows([
            (b"a".to_vec(), encode(&Entry::Dir)),
            (b"b".to_vec(), b"garbage".to_vec()),
        ]);
        assert_eq!(tree.tree().len(), 1);
    }

    #[test]
    fn only_changed_paths_are_unsaved_until_marked_saved() {
        let mut a = Ancestor::default();
        a.set(b"d", Some(Entry::Dir));
        a.set(b"gone", None);
        assert_eq!(a.unsaved_rows(), [(&b"d"[..], Some(b"d".to_vec()))]);
        a.mark_saved();
        a.set(b"d", Some(Entry::Dir));
        assert!(
            a.unsaved_rows().is_empty(),
            "the same entry again is no change"
        );
        a.set(b"d", None);
        assert_eq!(a.unsaved_rows(), [(&b"d"[..], None)]);
    }
}
