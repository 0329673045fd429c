//! Ids of snapshots and pairings: UTC time, then four hex digits against collisions within a
//! second (valid in ref names: lowercase letters, digits and `-`).

use std::time::{SystemTime, UNIX_EPOCH};

/// A new id for something made at `now` (ms since the epoch).
pub fn new_id(now: i64) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let salt = blake3::hash(format!("{}:{nanos}", std::process::id()).as_bytes()).to_hex();
    format!("{}-{}", berth_core::time::compact_utc(now), &salt[..4])
}
