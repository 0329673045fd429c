//! Reaching an agent elsewhere again after its connection was lost: how long to wait between
//! tries (a first try at once, then 1 s doubling up to 10 s), so a host that is down for long
//! is not hammered and one that is back soon is found soon.

use std::time::Duration;

/// The first wait after a failed try.
pub const RECONNECT_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two tries.
pub const RECONNECT_AT_MOST: Duration = Duration::from_secs(10);

/// How long to wait before the next try, after `failed` tries in a row failed (0: the link
/// was just found lost, try again at once).
pub fn reconnect_after(failed: u32) -> Duration {
    if failed == 0 {
        return Duration::ZERO;
    }
    let doublings = (failed - 1).min(16);
    RECONNECT_FIRST
        .saturating_mul(1 << doublings)
        .min(RECONNECT_AT_MOST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tries_come_at_once_then_after_one_second_doubling_up_to_ten() {
        let waits: Vec<u64> = (0..8)
            .map(|n| reconnect_after(n).as_millis() as u64)
            .collect();
        assert_eq!(waits, [0, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
        for n in [8, 16, 17, 31, 32, 1000, u32::MAX] {
            assert_eq!(reconnect_after(n), RECONNECT_AT_MOST, "{n}");
        }
        // Never shorter than the one before.
        for n in 0..64 {
            assert!(reconnect_after(n) <= reconnect_after(n + 1), "{n}");
        }
    }
}
