//! Keeping the daemon small (SPEC §7: under 30 MB with an idle pairing). A full scan of a large
//! tree allocates and frees tens of megabytes on whichever thread runs it; glibc keeps freed
//! memory in per-thread arenas instead of returning it, so the daemon would stay as large as
//! its largest scan. Fewer arenas, and handing free memory back after the big steps, keep the
//! resident size close to what is really in use.

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

/// After a live round that scanned both trees whole (the first, a rescan, a flush): what it
/// freed goes back ([`give_back`]). Pairing's sync loop and `berth debug sync` both call it.
pub fn after_round(report: &berth_sync::live::Report) {
    use berth_sync::live::{Reason, Report};
    if matches!(
        report,
        Report::Ready { .. }
            | Report::Synced {
                reason: Reason::Start | Reason::Rescan(_) | Reason::Flush,
                ..
            }
    ) {
        give_back();
    }
}
