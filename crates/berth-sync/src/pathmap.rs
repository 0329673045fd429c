//! A sorted map from paths to values, packed for trees of hundreds of thousands of paths: what
//! a pairing holds for as long as it lasts (each scanner's hash cache, the ancestor).
//!
//! The bulk of it is *packed*: the paths front-coded in sorted order (each stores only what
//! differs from the one before it; every [`BLOCK`]th path whole, so a lookup is a binary search
//! over those and a short walk), the values in one `Vec` beside them. That is three heap blocks
//! however many paths there are — no block per path, so nothing for malloc to fragment, and a
//! path of a typical tree costs a few bytes instead of a 32-byte block. Changes made since it
//! was packed are kept in a small ordered *overlay* (a `BTreeMap`, `None` for a removal), which
//! is folded into the packed part once it grows past a fraction of it; every read sees the
//! overlay first.

use std::collections::BTreeMap;

use crate::relpath::RelPath;

/// Paths per block: every block begins with a whole path.
const BLOCK: usize = 16;

/// The immutable, packed part.
#[derive(Debug, Clone, Default)]
struct Packed<V> {
    /// The paths, front-coded: at a block's start `len, bytes`; after it `shared, len, bytes`
    /// (the length of the prefix shared with the previous path, then the rest), as LEB128.
    bytes: Vec<u8>,
    /// Where each block starts in `bytes`.
    blocks: Vec<usize>,
    values: Vec<V>,
}

fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// The number at `pos` and the position after it (the bytes are ours: always well formed).
fn varint(bytes: &[u8], mut pos: usize) -> (usize, usize) {
    let mut n = 0usize;
    let mut shift = 0;
    while let Some(b) = bytes.get(pos) {
        pos += 1;
        n |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    (n, pos)
}

impl<V> Packed<V> {
    fn len(&self) -> usize {
        self.values.len()
    }

    /// Packs `(path, value)` pairs given in strictly ascending path order.
    fn build(items: impl Iterator<Item = (RelPath, V)>) -> Packed<V> {
        let mut p = Packed {
            bytes: Vec::new(),
            blocks: Vec::new(),
            values: Vec::new(),
        };
        let mut prev: RelPath = Vec::new();
        for (path, value) in items {
            let i = p.values.len();
            if i % BLOCK == 0 {
                p.blocks.push(p.bytes.len());
                put_varint(&mut p.bytes, path.len());
                p.bytes.extend_from_slice(&path);
            } else {
                let shared = prev.iter().zip(&path).take_while(|(a, b)| a == b).count();
                put_varint(&mut p.bytes, shared);
                put_varint(&mut p.bytes, path.len() - shared);
                p.bytes.extend_from_slice(&path[shared..]);
            }
            p.values.push(value);
            prev = path;
        }
        p.bytes.shrink_to_fit();
        p.blocks.shrink_to_fit();
        p.values.shrink_to_fit();
        p
    }

    /// The whole path a block starts with.
    fn first_of(&self, block: usize) -> &[u8] {
        let (len, pos) = varint(&self.bytes, self.blocks[block]);
        &self.bytes[pos..pos + len]
    }

    /// Decodes the entry that starts at `pos` (the `k`th of its block) into `path`, which holds
    /// the previous path; the position of the next entry.
    fn decode(&self, pos: usize, k: usize, path: &mut RelPath) -> usize {
        let (shared, pos) = if k == 0 {
            (0, pos)
        } else {
            varint(&self.bytes, pos)
        };
        let (len, pos) = varint(&self.bytes, pos);
        path.truncate(shared);
        path.extend_from_slice(&self.bytes[pos..pos + len]);
        pos + len
    }

    /// The block whose range holds `path`'s place (the last one starting at or before it).
    fn block_of(&self, path: &[u8]) -> Option<usize> {
        let idx = partition(self.blocks.len(), |b| self.first_of(b) <= path);
        idx.checked_sub(1)
    }

    /// The index of `path`.
    fn find(&self, path: &[u8]) -> Option<usize> {
        let block = self.block_of(path)?;
        let mut cur = Vec::new();
        let mut pos = self.blocks[block];
        for k in 0..BLOCK {
            let i = block * BLOCK + k;
            if i >= self.len() {
                return None;
            }
            pos = self.decode(pos, k, &mut cur);
            match cur.as_slice().cmp(path) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return Some(i),
                std::cmp::Ordering::Greater => return None,
            }
        }
        None
    }

    /// Iterates from the first path at or after `start`.
    fn iter_from(&self, start: &[u8]) -> PackedIter<'_, V> {
        let mut it = PackedIter {
            packed: self,
            i: 0,
            pos: 0,
            path: Vec::new(),
        };
        if let Some(block) = self.block_of(start) {
            it.i = block * BLOCK;
            it.pos = self.blocks[block];
            // Skip what lies before `start` in that block.
            loop {
                let (i, pos, path) = (it.i, it.pos, it.path.clone());
                match it.next() {
                    Some((p, _)) if p.as_slice() < start => {}
                    Some(_) => {
                        (it.i, it.pos, it.path) = (i, pos, path);
                        break;
                    }
                    None => break,
                }
            }
        }
        it
    }
}

/// The first index in `0..n` for which `pred` is false (`pred` true before it, false after).
fn partition(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The packed part's entries in order.
struct PackedIter<'a, V> {
    packed: &'a Packed<V>,
    i: usize,
    pos: usize,
    path: RelPath,
}

impl<'a, V> Iterator for PackedIter<'a, V> {
    type Item = (RelPath, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        let value = self.packed.values.get(self.i)?;
        self.pos = self.packed.decode(self.pos, self.i % BLOCK, &mut self.path);
        self.i += 1;
        Some((self.path.clone(), value))
    }
}

/// A sorted map from paths to values, packed (see the module's documentation).
#[derive(Debug, Clone)]
pub struct PathMap<V> {
    packed: Packed<V>,
    overlay: BTreeMap<RelPath, Option<V>>,
    len: usize,
}

impl<V> Default for PathMap<V> {
    fn default() -> Self {
        PathMap {
            packed: Packed {
                bytes: Vec::new(),
                blocks: Vec::new(),
                values: Vec::new(),
            },
            overlay: BTreeMap::new(),
            len: 0,
        }
    }
}

impl<V: Clone> PathMap<V> {
    /// A map of `items`, in any order (of equal paths, the last one counts).
    pub fn from_unsorted(mut items: Vec<(RelPath, V)>) -> PathMap<V> {
        items.reverse();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        items.dedup_by(|later, earlier| later.0 == earlier.0);
        let packed = Packed::build(items.into_iter());
        PathMap {
            len: packed.len(),
            packed,
            overlay: BTreeMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, path: &[u8]) -> Option<&V> {
        match self.overlay.get(path) {
            Some(v) => v.as_ref(),
            None => self.packed.find(path).map(|i| &self.packed.values[i]),
        }
    }

    pub fn contains(&self, path: &[u8]) -> bool {
        self.get(path).is_some()
    }

    /// Sets `path` to `value` (`None`: removes it); what it held before.
    pub fn set(&mut self, path: &[u8], value: Option<V>) -> Option<V> {
        let old = self.get(path).cloned();
        match (&old, &value) {
            (None, Some(_)) => self.len += 1,
            (Some(_), None) => self.len -= 1,
            _ => {}
        }
        if value.is_none() && self.packed.find(path).is_none() {
            self.overlay.remove(path);
        } else {
            self.overlay.insert(path.to_vec(), value);
        }
        if self.overlay.len() > 256 + self.packed.len() / 8 {
            self.repack();
        }
        old
    }

    /// Folds the overlay into the packed part.
    pub fn repack(&mut self) {
        if self.overlay.is_empty() {
            return;
        }
        let items: Vec<(RelPath, V)> = self.iter().map(|(p, v)| (p, v.clone())).collect();
        self.packed = Packed::build(items.into_iter());
        self.overlay = BTreeMap::new();
        self.len = self.packed.len();
    }

    /// Every path and its value, in order.
    pub fn iter(&self) -> Iter<'_, V> {
        self.iter_from(&[])
    }

    /// The paths at or after `start` and their values, in order.
    pub fn iter_from(&self, start: &[u8]) -> Iter<'_, V> {
        Iter {
            packed: self.packed.iter_from(start).peekable(),
            overlay: self.overlay.range(start.to_vec()..).peekable(),
        }
    }

    /// `rel` and every path below it, with their values, in order.
    pub fn subtree<'a>(&'a self, rel: &'a [u8]) -> impl Iterator<Item = (RelPath, &'a V)> + 'a {
        let mut end = rel.to_vec();
        end.push(b'/' + 1);
        self.iter_from(rel)
            .take_while(move |(p, _)| *p < end)
            .filter(move |(p, _)| {
                p.as_slice() == rel || (p.starts_with(rel) && p.get(rel.len()) == Some(&b'/'))
            })
    }

    /// The heap bytes it holds (without the overlay's tree nodes), for figures.
    pub fn packed_bytes(&self) -> usize {
        self.packed.bytes.capacity()
            + self.packed.blocks.capacity() * std::mem::size_of::<usize>()
            + self.packed.values.capacity() * std::mem::size_of::<V>()
    }
}

impl<V: Clone> FromIterator<(RelPath, V)> for PathMap<V> {
    fn from_iter<I: IntoIterator<Item = (RelPath, V)>>(iter: I) -> Self {
        PathMap::from_unsorted(iter.into_iter().collect())
    }
}

/// A [`PathMap`]'s entries in order: the packed part and the overlay merged.
pub struct Iter<'a, V> {
    packed: std::iter::Peekable<PackedIter<'a, V>>,
    overlay: std::iter::Peekable<std::collections::btree_map::Range<'a, RelPath, Option<V>>>,
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (RelPath, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let order = match (self.packed.peek(), self.overlay.peek()) {
                (None, None) => return None,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((p, _)), Some((o, _))) => p.cmp(o),
            };
            if order == std::cmp::Ordering::Equal {
                self.packed.next(); // replaced (or removed) by the overlay
            }
            if order != std::cmp::Ordering::Less {
                match self.overlay.next() {
                    Some((p, Some(v))) => return Some((p.clone(), v)),
                    _ => continue,
                }
            }
            return self.packed.next();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn path(i: usize) -> RelPath {
        format!("d{:02}/e{}/file{:03}.txt", i % 7, i % 3, i).into_bytes()
    }

    #[test]
    fn behaves_like_an_ordered_map_through_every_change() {
        let mut model: BTreeMap<RelPath, u32> = (0..500).map(|i| (path(i), i as u32)).collect();
        let mut map: PathMap<u32> = model.iter().map(|(p, v)| (p.clone(), *v)).collect();
        let check = |map: &PathMap<u32>, model: &BTreeMap<RelPath, u32>| {
            let all: Vec<(RelPath, u32)> = map.iter().map(|(p, v)| (p, *v)).collect();
            let want: Vec<(RelPath, u32)> = model.iter().map(|(p, v)| (p.clone(), *v)).collect();
            assert_eq!(all, want);
            assert_eq!(map.len(), model.len());
            for i in 0..700 {
                assert_eq!(map.get(&path(i)), model.get(&path(i)), "{i}");
            }
            assert_eq!(map.get(b""), None);
            assert_eq!(map.get(b"zzz"), None);
            for rel in [&b"d03"[..], b"d03/e1", b"d0", b"d03/e1/file010.txt", b""] {
                let got: Vec<RelPath> = map.subtree(rel).map(|(p, _)| p).collect();
                let want: Vec<RelPath> = model
                    .keys()
                    .filter(|p| {
                        p.as_slice() == rel
                            || (p.starts_with(rel) && p.get(rel.len()) == Some(&b'/'))
                    })
                    .cloned()
                    .collect();
                assert_eq!(got, want, "{}", String::from_utf8_lossy(rel));
            }
        };
        check(&map, &model);
        // Changes, additions and removals, past the point where the overlay is folded in.
        for i in (0..700).step_by(3) {
            let v = (i * 7) as u32;
            if i % 2 == 0 {
                map.set(&path(i), Some(v));
                model.insert(path(i), v);
            } else {
                map.set(&path(i), None);
                model.remove(&path(i));
            }
            if i % 90 == 0 {
                check(&map, &model);
            }
        }
        check(&map, &model);
        map.repack();
        check(&map, &model);
        // A directory entry sorts before what is below it, and `d03-x` is not below `d03`.
        map.set(b"d03", Some(1));
        map.set(b"d03-x", Some(2));
        model.insert(b"d03".to_vec(), 1);
        model.insert(b"d03-x".to_vec(), 2);
        check(&map, &model);
    }

    #[test]
    fn long_and_non_utf8_paths_round_trip() {
        let long = vec![b'a'; 300];
        let mut odd = long.clone();
        odd.push(0xff);
        let map: PathMap<u8> = [(long.clone(), 1), (odd.clone(), 2), (b"\xfe".to_vec(), 3)]
            .into_iter()
            .collect();
        assert_eq!(map.get(&long), Some(&1));
        assert_eq!(map.get(&odd), Some(&2));
        assert_eq!(map.get(b"\xfe"), Some(&3));
        let keys: Vec<RelPath> = map.iter().map(|(p, _)| p).collect();
        assert_eq!(keys, [long, odd, b"\xfe".to_vec()]);
    }
}
