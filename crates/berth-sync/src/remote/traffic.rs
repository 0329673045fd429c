//! What an endpoint's connection carried: the bytes of files' contents each way, and the rate
//! of the last transfer large enough to tell the link's bandwidth (a small file's time is the
//! round trip's, not the link's). Shared (`Arc`), so whoever started a sync loop reads it while
//! the loop runs (pairing's `pair status`); others may count into it too (pairing's bundles).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Transfers of at least this many bytes measure the bandwidth.
pub const MEASURES_FROM: u64 = 64 * 1024;

/// Counters of one link (see the module docs).
#[derive(Debug, Default)]
pub struct Traffic {
    sent: AtomicU64,
    received: AtomicU64,
    /// Bytes per second of the last large transfer (0: none yet).
    rate: AtomicU64,
}

/// What a [`Traffic`] counted so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Figures {
    /// Bytes sent to the far side.
    pub sent: u64,
    /// Bytes received from it.
    pub received: u64,
    /// Bytes per second of the last transfer of at least [`MEASURES_FROM`] bytes, either way.
    pub bandwidth: Option<u64>,
}

/// `bytes` in `took`, per second.
pub fn per_second(bytes: u64, took: Duration) -> u64 {
    let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
    u64::try_from(u128::from(bytes) * 1_000_000 / u128::from(micros)).unwrap_or(u64::MAX)
}

impl Traffic {
    /// `bytes` went to the far side in `took`.
    pub fn sent(&self, bytes: u64, took: Duration) {
        self.sent.fetch_add(bytes, Ordering::Relaxed);
        self.measure(bytes, took);
    }

    /// `bytes` came from the far side in `took`.
    pub fn received(&self, bytes: u64, took: Duration) {
        self.received.fetch_add(bytes, Ordering::Relaxed);
        self.measure(bytes, took);
    }

    fn measure(&self, bytes: u64, took: Duration) {
        if bytes >= MEASURES_FROM {
            self.rate
                .store(per_second(bytes, took).max(1), Ordering::Relaxed);
        }
    }

    pub fn figures(&self) -> Figures {
        let rate = self.rate.load(Ordering::Relaxed);
        Figures {
            sent: self.sent.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            bandwidth: (rate > 0).then_some(rate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_add_up_each_way_and_only_large_transfers_tell_the_bandwidth() {
        let t = Traffic::default();
        assert_eq!(t.figures(), Figures::default());
        t.sent(100, Duration::from_millis(1));
        t.received(10, Duration::from_millis(2));
        assert_eq!(
            t.figures(),
            Figures {
                sent: 100,
                received: 10,
                bandwidth: None
            }
        );
        t.received(1 << 20, Duration::from_millis(100));
        assert_eq!(t.figures().bandwidth, Some(10_485_760));
        t.sent(MEASURES_FROM, Duration::from_secs(1));
        let f = t.figures();
        assert_eq!(f.bandwidth, Some(MEASURES_FROM), "the last one counts");
        assert_eq!((f.sent, f.received), (100 + MEASURES_FROM, 10 + (1 << 20)));
        // No time at all is not a division by zero.
        t.sent(MEASURES_FROM, Duration::ZERO);
        assert_eq!(t.figures().bandwidth, Some(MEASURES_FROM * 1_000_000));
        assert_eq!(per_second(u64::MAX, Duration::ZERO), u64::MAX);
    }
}
