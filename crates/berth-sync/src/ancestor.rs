//! The ancestor — what both trees last agreed on — kept in the store, so a restart resumes
//! without false conflicts. It remembers which of its paths changed since they were last saved
//! ([`Ancestor::unsaved_rows`]), also when a round failed half-way, so only those rows are
//! written and none is forgotten.
//!
//! A round's writes are not atomic with the ancestor's save: a process killed after a write
//! but before the save would, on restart, see the written side as changed — and, if the other
//! side changed again meanwhile, take it for a conflict the written side wins, reverting that
//! newer edit. So before a round writes anything, the owner can have its writes journaled
//! ([`Journal`], each a [`Pending`]); on restart, every pending write the side it was meant for
//! holds exactly was carried out, and the ancestor adopts it ([`Ancestor::adopt`]).
//!
//! An entry is stored as a few bytes: `d` (directory), `l` + target (symlink), or `f` + the
//! executable bit + the 32-byte blake3 digest (file).

use std::collections::BTreeSet;

use crate::pathmap::PathMap;
use crate::reconcile::{Entry, Side};
use crate::relpath::RelPath;
use crate::scan::Tree;

/// What both trees last agreed on, and which paths of it are not saved yet. It is held for as
/// long as a pairing lasts, so it is packed ([`PathMap`]: front-coded paths, no heap block per
/// path).
#[derive(Debug, Default, Clone)]
pub struct Ancestor {
    agreed: PathMap<Entry>,
    unsaved: BTreeSet<RelPath>,
}

impl Ancestor {
    /// An ancestor as loaded from the store: everything saved.
    pub fn new(tree: Tree) -> Ancestor {
        Ancestor {
            agreed: tree.into_iter().collect(),
            unsaved: BTreeSet::new(),
        }
    }

    /// A copy of all of it as a tree (for checks and tests: it allocates every path).
    pub fn tree(&self) -> Tree {
        self.agreed.iter().map(|(p, e)| (p, e.clone())).collect()
    }

    /// What both sides last held at `path`.
    pub fn get(&self, path: &[u8]) -> Option<&Entry> {
        self.agreed.get(path)
    }

    /// How many paths both sides hold.
    pub fn len(&self) -> usize {
        self.agreed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.agreed.is_empty()
    }

    /// Every path, in order.
    pub fn paths(&self) -> impl Iterator<Item = RelPath> + '_ {
        self.agreed.iter().map(|(p, _)| p)
    }

    /// `rel` and every path below it, in order.
    pub fn paths_under<'a>(&'a self, rel: &'a [u8]) -> impl Iterator<Item = RelPath> + 'a {
        self.agreed.subtree(rel).map(|(p, _)| p)
    }

    /// Records what both sides now hold at `path` (`None`: nothing).
    pub fn set(&mut self, path: &[u8], entry: Option<Entry>) {
        if self.agreed.get(path) != entry.as_ref() {
            self.agreed.set(path, entry);
            self.unsaved.insert(path.to_vec());
        }
    }

    /// Replaces all of it with `entries` (in any order, each path once): the paths whose entry
    /// differs from before (added, changed or gone) become unsaved.
    pub fn replace(&mut self, entries: Vec<(RelPath, Entry)>) {
        let new: PathMap<Entry> = PathMap::from_unsorted(entries);
        for (p, e) in self.agreed.iter() {
            if new.get(&p) != Some(e) {
                self.unsaved.insert(p);
            }
        }
        for (p, e) in new.iter() {
            if self.agreed.get(&p) != Some(e) {
                self.unsaved.insert(p);
            }
        }
        self.agreed = new;
    }

    /// Packs the changes made so far (after a round that changed many paths, so that they are
    /// not left behind as a block each; see [`PathMap`]).
    pub fn pack(&mut self) {
        self.agreed.repack();
    }

    /// The rows to write: each path changed since the last save with its entry (`None`:
    /// delete the row).
    pub fn unsaved_rows(&self) -> Vec<(&[u8], Option<Vec<u8>>)> {
        self.unsaved
            .iter()
            .map(|p| (p.as_slice(), self.agreed.get(p).map(encode)))
            .collect()
    }

    /// The rows from [`Ancestor::unsaved_rows`] were written.
    pub fn mark_saved(&mut self) {
        self.unsaved = BTreeSet::new();
    }

    /// Adopts every pending write that was carried out: the side it was meant for holds
    /// exactly its entry now (`holds` tells what a side holds at a path). How many it adopted.
    pub fn adopt<E>(
        &mut self,
        pending: &[Pending],
        mut holds: impl FnMut(Side, &[u8]) -> Result<Option<Entry>, E>,
    ) -> Result<usize, E> {
        let mut adopted = 0;
        for w in pending {
            if holds(w.side, &w.path)? == w.entry && self.agreed.get(&w.path) != w.entry.as_ref() {
                self.set(&w.path, w.entry.clone());
                adopted += 1;
            }
        }
        Ok(adopted)
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

/// A write a round is about to make: `side` is to hold `entry` at `path` (`None`: nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub path: RelPath,
    pub side: Side,
    pub entry: Option<Entry>,
}

impl Pending {
    /// The stored form: the path, the side (0 alpha, 1 beta) and the entry's stored form.
    pub fn row(&self) -> (&[u8], u8, Option<Vec<u8>>) {
        let side = match self.side {
            Side::Alpha => 0,
            Side::Beta => 1,
        };
        (&self.path, side, self.entry.as_ref().map(encode))
    }

    /// A pending write from its stored form; `None` when the row is not one (it is then
    /// ignored, which at worst shows a conflict that keeps an extra copy).
    pub fn from_row(path: RelPath, side: u8, entry: Option<&[u8]>) -> Option<Pending> {
        let side = match side {
            0 => Side::Alpha,
            1 => Side::Beta,
            _ => return None,
        };
        let entry = match entry {
            Some(bytes) => Some(decode(bytes)?),
            None => None,
        };
        Some(Pending { path, side, entry })
    }
}

/// Where a round's pending writes are recorded, durably, before it writes anything (an error
/// stops the round before its first write).
pub struct Journal(Box<Record>);

/// What records pending writes: their error in words.
type Record = dyn FnMut(&[Pending]) -> Result<(), String> + Send;

impl Journal {
    pub fn new(f: impl FnMut(&[Pending]) -> Result<(), String> + Send + 'static) -> Journal {
        Journal(Box::new(f))
    }

    /// Records `pending`.
    pub fn record(&mut self, pending: &[Pending]) -> Result<(), String> {
        (self.0)(pending)
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Journal")
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
    Ancestor {
        agreed: PathMap::from_unsorted(
            rows.into_iter()
                .filter_map(|(p, e)| Some((p, decode(&e)?)))
                .collect(),
        ),
        unsaved: BTreeSet::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(n: u8) -> Entry {
        Entry::File {
            digest: [n; 32],
            executable: false,
        }
    }

    #[test]
    fn replacing_it_whole_leaves_unsaved_exactly_the_rows_that_differ() {
        let mut a = Ancestor::new(Tree::from([
            (b"kept".to_vec(), file(0)),
            (b"changed".to_vec(), file(0)),
            (b"gone".to_vec(), file(0)),
        ]));
        a.replace(vec![
            (b"new".to_vec(), Entry::Dir),
            (b"kept".to_vec(), file(0)),
            (b"changed".to_vec(), file(1)),
        ]);
        let rows: Vec<(String, Option<Vec<u8>>)> = a
            .unsaved_rows()
            .into_iter()
            .map(|(p, e)| (String::from_utf8_lossy(p).into_owned(), e))
            .collect();
        assert_eq!(
            rows,
            [
                ("changed".to_string(), Some(encode(&file(1)))),
                ("gone".to_string(), None),
                ("new".to_string(), Some(b"d".to_vec())),
            ]
        );
        assert_eq!(a.len(), 3);
        assert_eq!(a.get(b"kept"), Some(&file(0)));
        assert_eq!(a.get(b"gone"), None);
    }

    #[test]
    fn a_pending_write_is_adopted_only_where_its_side_holds_it() {
        let mut a = Ancestor::new(Tree::from([
            (b"x".to_vec(), file(0)),
            (b"y".to_vec(), file(0)),
        ]));
        let pending = [
            // Carried out: alpha holds it.
            Pending {
                path: b"x".to_vec(),
                side: Side::Alpha,
                entry: Some(file(1)),
            },
            // Never carried out: beta still holds the old version.
            Pending {
                path: b"y".to_vec(),
                side: Side::Beta,
                entry: Some(file(1)),
            },
            // A removal carried out.
            Pending {
                path: b"y".to_vec(),
                side: Side::Alpha,
                entry: None,
            },
        ];
        let holds = |side: Side, p: &[u8]| -> Result<Option<Entry>, ()> {
            Ok(match (side, p) {
                (Side::Alpha, b"x") => Some(file(1)),
                (Side::Beta, b"y") => Some(file(0)),
                _ => None,
            })
        };
        assert_eq!(a.adopt(&pending, holds), Ok(2));
        assert_eq!(a.get(b"x"), Some(&file(1)));
        assert_eq!(a.get(b"y"), None);
        for w in &pending {
            let (path, side, entry) = w.row();
            let back = Pending::from_row(path.to_vec(), side, entry.as_deref());
            assert_eq!(back.as_ref(), Some(w));
        }
        assert_eq!(Pending::from_row(b"x".to_vec(), 2, None), None);
    }

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
        assert_eq!(tree.len(), 1);
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
