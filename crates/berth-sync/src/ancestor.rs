//! The ancestor — what both trees last agreed on — as rows for the store, so a restart resumes
//! without false conflicts. Each round changes only some paths ([`crate::engine::Stats::changed`]);
//! only those rows are written.
//!
//! An entry is stored as a few bytes: `d` (directory), `l` + target (symlink), or `f` + the
//! executable bit + the 32-byte blake3 digest (file).

use crate::reconcile::Entry;
use crate::scan::{RelPath, Tree};

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

/// A tree from stored rows; rows that do not decode are left out (that path then looks new to
/// both sides, which at worst keeps an extra copy — it never loses one).
pub fn from_rows(rows: impl IntoIterator<Item = (RelPath, Vec<u8>)>) -> Tree {
    rows.into_iter()
        .filter_map(|(p, e)| Some((p, decode(&e)?)))
        .collect()
}

/// The rows to write after a round: each changed path with its new entry (`None`: delete).
pub fn changed_rows<'a>(
    tree: &'a Tree,
    changed: impl IntoIterator<Item = &'a RelPath>,
) -> Vec<(&'a [u8], Option<Vec<u8>>)> {
    changed
        .into_iter()
        .map(|p| (p.as_slice(), tree.get(p).map(encode)))
        .collect()
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
        assert_eq!(tree.len(), 1);
    }
}
