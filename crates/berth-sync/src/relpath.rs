//! Paths relative to a tree's root, as the engine keeps them: bytes (names need not be UTF-8),
//! `/`-separated, ordered bytewise so that everything below a directory is one range.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A path relative to the root.
pub type RelPath = Vec<u8>;

/// The range of keys strictly below `rel` in a map ordered by bytes (`rel/` up to `rel0`).
pub fn below(rel: &[u8]) -> (std::ops::Bound<RelPath>, std::ops::Bound<RelPath>) {
    let mut lo = rel.to_vec();
    lo.push(b'/');
    let mut hi = rel.to_vec();
    hi.push(b'/' + 1);
    (std::ops::Bound::Included(lo), std::ops::Bound::Excluded(hi))
}

/// The absolute path of a relative one under `root`.
pub fn absolute(root: &Path, rel: &[u8]) -> PathBuf {
    root.join(std::ffi::OsStr::from_bytes(rel))
}
