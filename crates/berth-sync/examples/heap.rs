//! Where a pairing's memory goes: the heap held by both trees' scanners and the ancestor after
//! a first full round, on a generated tree shaped like the pairing benchmark's (50 files of
//! 200–4,000 bytes a directory, three levels deep).
//!
//! `cargo run --release --locked -p berth-sync --example heap -- [FILES]` (default 50,000).
//! Every allocation is counted (a counting global allocator), so the figures are the live heap
//! bytes and blocks, before malloc's own overhead; the process's RSS is shown beside them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_sync::ancestor::Ancestor;
use berth_sync::engine::{DirKeeper, Sides, sync_once};
use berth_sync::reconcile::Entry;
use berth_sync::scan::Scanner;

struct Counting;

static BYTES: AtomicUsize = AtomicUsize::new(0);
static BLOCKS: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only counters move.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = BYTES.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        BLOCKS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's layout is passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        BLOCKS.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn heap() -> (usize, usize) {
    (
        BYTES.load(Ordering::Relaxed),
        BLOCKS.load(Ordering::Relaxed),
    )
}

/// malloc's own view: the heap's size, what is mapped apart, in use and free (MiB).
fn malloc_view() -> String {
    // SAFETY: mallinfo2(3) only reads the allocator's counters.
    let m = unsafe { libc::mallinfo2() };
    let mib = |b: usize| b as f64 / 1048576.0;
    format!(
        "malloc: heap {:.1} MiB, mmapped {:.1} MiB, in use {:.1} MiB, free {:.1} MiB",
        mib(m.arena),
        mib(m.hblkhd),
        mib(m.uordblks),
        mib(m.fordblks)
    )
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Writes `files` files under `root`, shaped like the pairing benchmark's tree.
fn generate(root: &Path, files: usize) -> std::io::Result<()> {
    for i in 0..files {
        let leaf = i / 50;
        let dir = root.join(format!(
            "d{:02}/e{}/f{}",
            leaf / 100,
            (leaf / 10) % 10,
            leaf % 10
        ));
        if i % 50 == 0 {
            std::fs::create_dir_all(&dir)?;
        }
        let size = 200 + (i * 7919) % 3801;
        let line = format!("file {i}\n");
        let body: Vec<u8> = line.bytes().cycle().take(size).collect();
        std::fs::write(dir.join(format!("file{:02}.txt", i % 50)), body)?;
    }
    Ok(())
}

struct Table {
    base: (usize, usize),
    entries: usize,
}

impl Table {
    fn row(&self, what: &str, before: (usize, usize), after: (usize, usize)) {
        let bytes = after.0 as f64 - before.0 as f64;
        let blocks = after.1 as f64 - before.1 as f64;
        println!(
            "| {what} | {:.2} | {:.0} | {:.0} | {:.2} |",
            bytes / 1048576.0,
            blocks,
            bytes / self.entries as f64,
            blocks / self.entries as f64
        );
    }

    fn total(&self, what: &str) {
        let now = heap();
        self.row(what, self.base, now);
        println!(
            "|   RSS now: {:.1} MiB | | | | |",
            rss_kib() as f64 / 1024.0
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(50_000);
    let dir = tempfile::tempdir()?;
    let (alpha, beta) = (dir.path().join("alpha"), dir.path().join("beta"));
    generate(&alpha, files)?;
    generate(&beta, files)?;
    println!(
        "sizes: Entry {} B, (RelPath, Entry) {} B, Scanner {} B",
        std::mem::size_of::<Entry>(),
        std::mem::size_of::<(Vec<u8>, Entry)>(),
        std::mem::size_of::<Scanner>()
    );
    let base = heap();
    let rss_base = rss_kib();

    // A first full round, as the live loop makes it when a pairing starts.
    let mut sides = Sides::new(&alpha, &beta, u64::MAX);
    let mut ancestor = Ancestor::default();
    let keep = dir.path().join("kept");
    std::fs::create_dir_all(&keep)?;
    let mut keeper = DirKeeper::new(&keep);
    PEAK.store(base.0, Ordering::Relaxed);
    sync_once(&mut sides, &mut ancestor, &mut keeper)?;
    // The owner saves the ancestor's changed rows after every round (the set of them empties).
    ancestor.mark_saved();
    let peak = PEAK.load(Ordering::Relaxed);
    let entries = ancestor.len();
    let t = Table { base, entries };
    println!(
        "\n{files} files, {entries} entries (files and directories); RSS before: {:.1} MiB\n",
        rss_base as f64 / 1024.0
    );
    println!(
        "| held | MiB | blocks | bytes/entry | blocks/entry |\n| --- | --- | --- | --- | --- |"
    );
    t.total("after a full round: both scanners + the ancestor");
    println!(
        "| peak during the round | {:.2} | | {:.0} | |",
        (peak - base.0) as f64 / 1048576.0,
        (peak - base.0) as f64 / entries as f64
    );
    // What the daemon does after a full round: free memory goes back to the system.
    // SAFETY: malloc_trim(3) only hands free memory back to the system.
    unsafe { libc::malloc_trim(0) };
    println!(
        "|   RSS after malloc_trim (the round's transient trees freed): {:.1} MiB; {} | | | | |",
        rss_kib() as f64 / 1024.0,
        malloc_view()
    );

    // Take the parts away one by one to see what each held.
    let before = heap();
    drop(ancestor);
    let after = heap();
    t.row(
        "the ancestor (path → entry), as the round left it",
        after,
        before,
    );
    // The daemon's link loads its ancestor from the store's sorted rows.
    let rows: Vec<(Vec<u8>, Vec<u8>)> = {
        let tree = sides.alpha.full()?.0;
        tree.iter()
            .map(|(p, e)| (p.clone(), berth_sync::ancestor::encode(e)))
            .collect()
    };
    let before = heap();
    let loaded = berth_sync::ancestor::from_rows(rows.iter().cloned());
    t.row("the ancestor as loaded from the store", before, heap());
    drop((loaded, rows));
    let Sides { alpha, beta, .. } = sides;
    let before = heap();
    drop(alpha);
    let after = heap();
    t.row("alpha's scanner (hash cache, ignore rules)", after, before);
    let before = heap();
    drop(beta);
    let after = heap();
    t.row("beta's scanner", after, before);
    t.total("left");

    // One scanner, then its tree: what a scan returns besides the cache.
    let mut sc = Scanner::new(dir.path().join("alpha").as_path(), u64::MAX);
    let before = heap();
    let (tree, _) = sc.full()?;
    let after = heap();
    t.row(
        "one scanner + the tree its full scan returns",
        before,
        after,
    );
    drop(tree);
    t.row("that scanner alone", before, heap());
    // SAFETY: malloc_trim(3) only hands free memory back to the system.
    unsafe { libc::malloc_trim(0) };
    println!(
        "\nRSS with that scanner, after malloc_trim: {:.1} MiB; {}",
        rss_kib() as f64 / 1024.0,
        malloc_view()
    );
    drop(sc);
    // SAFETY: as above.
    unsafe { libc::malloc_trim(0) };
    println!(
        "RSS with nothing held, after malloc_trim: {:.1} MiB",
        rss_kib() as f64 / 1024.0
    );
    Ok(())
}
