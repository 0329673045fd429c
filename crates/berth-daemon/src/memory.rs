//! Keeping the daemon small (SPEC §7: under 30 MB with an idle pairing). A full scan of a large
//! tree allocates and frees tens of megabytes on whichever thread runs it; glibc keeps freed
//! memory in per-thread arenas instead of returning it, so the daemon would stay as large as
//! its largest scan. Fewer arenas, and handing free memory back after the big steps, keep the
//! resident size close to what is really in use.

/// At daemon start: at most two malloc arenas (threads share them; the daemon's allocation
/// rate is low).
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt(3) only changes allocator tuning; M_ARENA_MAX takes any positive count.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
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
