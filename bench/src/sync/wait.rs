//! Waiting until files on the receiving side have the expected content.

use std::path::Path;
use std::time::{Duration, Instant};

/// How often a single edited file is re-read while waiting for it.
pub const EDIT_POLL: Duration = Duration::from_micros(150);
/// How often a large set of files is re-checked while some are still missing.
const BULK_POLL: Duration = Duration::from_millis(20);

fn has(path: &Path, want: &[u8]) -> bool {
    std::fs::read(path).is_ok_and(|got| got == want)
}

/// Polls `path` until it holds exactly `want`; returns the instant it was first seen, or `None`
/// at the deadline.
pub fn file(path: &Path, want: &[u8], deadline: Instant) -> Option<Instant> {
    loop {
        if has(path, want) {
            return Some(Instant::now());
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(EDIT_POLL);
    }
}

/// Waits until every `(relative path, content)` under `root` is there, checking them in order
/// and moving on only once the current one matches. Contents come from `expect` on demand, so a
/// large tree needs no copy in memory.
pub fn all(
    root: &Path,
    count: usize,
    expect: impl Fn(usize) -> (std::path::PathBuf, Vec<u8>),
    deadline: Instant,
) -> Result<(), String> {
    for k in 0..count {
        let (rel, want) = expect(k);
        let path = root.join(&rel);
        while !has(&path, &want) {
            if Instant::now() >= deadline {
                return Err(format!(
                    "the first {k} of {count} files arrived, {} is still missing or different",
                    rel.display()
                ));
            }
            std::thread::sleep(BULK_POLL);
        }
    }
    Ok(())
}
