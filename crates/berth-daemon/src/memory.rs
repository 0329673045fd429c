//! Keeping the daemon small (SPEC §7: under 30 MB with an idle pairing). A full scan of a large
//! tree allocates and frees tens of megabytes on whichever thread runs it; glibc keeps freed
//! memory in per-thread arenas instead of returning it, so the daemon would stay as large as
//! its largest scan. Fewer arenas, and handing free memory back after the big steps, keep the
//! resident size close to what is really in use.

use std::sync::atomic::{AtomicUsize, Ordering};

/// At daemon start: at most two malloc arenas (threads share them; the daemon's allocation
/// rate is low), and fixed thresholds. By default glibc raises its trim threshold (up to 64
/// MiB) each time a large block is freed, and a thread's arena (the sync loop's) gives back the
/// free top of its heap only above that threshold — `malloc_trim` does not touch it either — so
/// after a full scan of a large tree its transient peak stayed resident: 10 MiB more or less
/// from one run to the next at 50,000 files (issue 20). Fixed, the free top goes back at once.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt(3) only changes allocator tuning; M_ARENA_MAX takes any positive count,
    // the thresholds any size.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// After a big allocation is freed (a full scan, a copy, a stop): free memory goes back to
/// the system.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim(3) only releases free memory at the top of the heaps and arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How many changed paths the live rounds since the last give-back carried, and how many make
/// a burst whose freed memory is worth handing back ([`after_round`]).
static CHANGED_SINCE_GIVE_BACK: AtomicUsize = AtomicUsize::new(0);
const BURST_PATHS: usize = 256;

/// After a live round: what a round that scanned both trees whole (the first, a rescan, a
/// flush) freed goes back ([`give_back`]), and so does what a burst of smaller rounds freed,
/// once they carried [`BURST_PATHS`] changed paths between them. Without the second, 10,000
/// files rewritten one event at a time left 11 MiB of freed memory resident at 50,000 files
/// (issue 20). A single edit costs nothing here. Pairing's sync loop and `berth debug sync`
/// both call it.
pub fn after_round(report: &berth_sync::live::Report) {
    if give_back_due(report, &CHANGED_SINCE_GIVE_BACK) {
        give_back();
    }
}

/// Whether [`after_round`] gives back after `report`, counting changed paths in `carried`.
fn give_back_due(report: &berth_sync::live::Report, carried: &AtomicUsize) -> bool {
    use berth_sync::live::{Reason, Report};
    let due = match report {
        Report::Ready { .. } => true,
        Report::Synced {
            reason: Reason::Events(paths),
            ..
        } => carried.fetch_add(*paths, Ordering::Relaxed) + paths >= BURST_PATHS,
        Report::Synced { .. } => true,
        _ => false,
    };
    if due {
        carried.store(0, Ordering::Relaxed);
    }
    due
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_sync::live::{Reason, Report};
    use berth_sync::stats::Stats;
    use std::time::Duration;

    fn synced(reason: Reason, stats: &Stats) -> Report<'_> {
        Report::Synced {
            reason,
            stats,
            took: Duration::ZERO,
        }
    }

    #[test]
    fn whole_rounds_give_back_at_once_and_small_ones_once_they_add_up_to_a_burst() {
        let (carried, stats) = (AtomicUsize::new(0), Stats::default());
        let took = Duration::ZERO;
        assert!(give_back_due(&Report::Ready { took }, &carried));
        assert!(give_back_due(&synced(Reason::Start, &stats), &carried));
        assert!(give_back_due(&synced(Reason::Flush, &stats), &carried));
        assert!(give_back_due(
            &synced(Reason::Rescan("why"), &stats),
            &carried
        ));
        for _ in 1..BURST_PATHS {
            assert!(!give_back_due(&synced(Reason::Events(1), &stats), &carried));
        }
        assert!(give_back_due(&synced(Reason::Events(1), &stats), &carried));
        assert!(
            !give_back_due(&synced(Reason::Events(1), &stats), &carried),
            "counted anew"
        );
        assert!(give_back_due(
            &synced(Reason::Events(BURST_PATHS), &stats),
            &carried
        ));
        assert!(!give_back_due(&Report::Resumed, &carried));
    }
}
