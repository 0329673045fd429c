//! Paths relative to a tree's root, as the engine keeps them: bytes (names need not be UTF-8),
//! `/`-separated, ordered bytewise (so everything below a directory `rel` lies between `rel/` and
//! `rel0`).

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A path relative to the root.
pub type RelPath = Vec<u8>;

/// The absolute path of a relative one under `root`.
pub fn absolute(root: &Path, rel: &[u8]) -> PathBuf {
    root.join(std::ffi::OsStr::from_bytes(rel))
}
