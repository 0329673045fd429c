//! Where the time of one edit goes: a live loop between two generated trees (shaped like the
//! benchmarks': 50 files of 200–4,000 bytes a directory, three levels deep), single-file
//! edits written in alpha and awaited in beta, and every call the loop makes into either tree
//! timed (the endpoints are wrapped).
//!
//! `cargo run --release --locked -p berth-sync --example latency -- [FILES] [EDITS] [MODE]`
//! (default 1,000 files, 100 edits; MODE `settled`, the loop as it is, `debounce-only`, every
//! change waiting for 2 ms of quiet as before settled changes were told apart, or
//! `no-debounce`, nothing waiting). Per edit: the write, the time until the round began (the watcher
//! waking up, the batch becoming due, the loop taking it), the scan of the changed path on
//! each side (stat, ignore rules, and in alpha the hash), opening the source, the write and
//! rename into beta, the rest of the round (decision, ancestor), and the probe's own delay
//! (it reads beta every 50 µs). Microseconds, p50 and p99.
//!
//! Then the price of not waiting: files written slowly (16 writes of 4 KiB, 1 ms apart, then
//! closed), counting how many times each was carried to beta — every carry but the last is a
//! half-written file carried and then carried again.

use std::io::Read;
use std::path::Path;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_sync::ancestor::Ancestor;
use berth_sync::apply::ApplyError;
use berth_sync::endpoint::Endpoint;
use berth_sync::engine::{DirKeeper, Sides};
use berth_sync::live::{self, Report};
use berth_sync::reconcile::{Entry, Side};
use berth_sync::scan::{ScanError, Scanner, Tree, Warning};
use berth_sync::watch::Input;

/// What a wrapped endpoint did, and when.
type Calls = Arc<Mutex<Vec<(&'static str, Instant, Instant)>>>;

/// An endpoint whose scans, reads and writes are timed.
struct Timed {
    inner: Scanner,
    calls: Calls,
    name: &'static str,
    /// Pass every change on as unsettled (the loop then always waits for quiet, as before
    /// settled changes were told apart).
    never_settled: bool,
}

impl Timed {
    fn time<T>(&mut self, what: &'static str, f: impl FnOnce(&mut Scanner) -> T) -> T {
        let t = Instant::now();
        let out = f(&mut self.inner);
        if let Ok(mut c) = self.calls.lock() {
            c.push((what, t, Instant::now()));
        }
        out
    }
}

impl Endpoint for Timed {
    type Watching = <Scanner as Endpoint>::Watching;
    type Reader<'a> = <Scanner as Endpoint>::Reader<'a>;

    fn name(&self) -> String {
        self.name.to_string()
    }
    fn full(&mut self) -> Result<(Tree, Vec<Warning>), ScanError> {
        Endpoint::full(&mut self.inner)
    }
    fn under(&mut self, rel: &[u8]) -> Result<(Tree, Vec<Warning>), ScanError> {
        let what = if self.name == "alpha" {
            "scan alpha (stat, rules, hash)"
        } else {
            "scan beta (stat, rules, hash)"
        };
        self.time(what, |s| Endpoint::under(s, rel))
    }
    fn root_is_empty(&mut self) -> Result<bool, ScanError> {
        Endpoint::root_is_empty(&mut self.inner)
    }
    fn exclude(&mut self, patterns: &[String]) -> Result<(), ScanError> {
        Endpoint::exclude(&mut self.inner, patterns)
    }
    fn forget_rules(&mut self) -> Result<(), ScanError> {
        Endpoint::forget_rules(&mut self.inner)
    }
    fn is_echo(&mut self, rel: &[u8]) -> bool {
        Endpoint::is_echo(&mut self.inner, rel)
    }
    fn read(&mut self, rel: &[u8]) -> Result<Self::Reader<'_>, ApplyError> {
        let t = Instant::now();
        let out = Endpoint::read(&mut self.inner, rel);
        if let Ok(mut c) = self.calls.lock() {
            c.push(("open the source", t, Instant::now()));
        }
        out
    }
    fn apply(
        &mut self,
        rel: &[u8],
        entry: Option<&Entry>,
        content: Option<&mut dyn Read>,
    ) -> Result<Option<Entry>, ApplyError> {
        self.time("write, rename, record", |s| {
            Endpoint::apply(s, rel, entry, content)
        })
    }
    fn watch(&mut self, side: Side, tx: Sender<Input>) -> std::io::Result<Self::Watching> {
        if !self.never_settled {
            return Endpoint::watch(&mut self.inner, side, tx);
        }
        let (itx, irx) = mpsc::channel();
        std::thread::spawn(move || {
            for input in irx {
                let input = match input {
                    Input::Changed { side, paths, .. } => Input::Changed {
                        side,
                        paths,
                        settled: false,
                    },
                    other => other,
                };
                if tx.send(input).is_err() {
                    return;
                }
            }
        });
        Endpoint::watch(&mut self.inner, side, itx)
    }
    fn heartbeat(&mut self) -> std::io::Result<()> {
        Endpoint::heartbeat(&mut self.inner)
    }
}

fn path(i: usize) -> String {
    let leaf = i / 50;
    format!(
        "d{:02}/e{}/f{}/file{:02}.txt",
        leaf / 100,
        (leaf / 10) % 10,
        leaf % 10,
        i % 50
    )
}

fn body(seed: &str, size: usize) -> Vec<u8> {
    seed.bytes()
        .chain(b"\n".iter().copied())
        .cycle()
        .take(size)
        .collect()
}

fn generate(root: &Path, files: usize) -> std::io::Result<()> {
    for i in 0..files {
        let p = root.join(path(i));
        if i % 50 == 0
            && let Some(dir) = p.parent()
        {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(p, body(&format!("file {i}"), 200 + (i * 7919) % 3801))?;
    }
    Ok(())
}

fn percentile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let files: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let edits: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);
    // `settled` (the loop as it is), `debounce-only` (every change waits for 2 ms of quiet),
    // `no-debounce` (nothing waits).
    let mode = args.next().unwrap_or_else(|| "settled".into());
    let never_settled = mode == "debounce-only";
    let mut opts = live::Options::default();
    if mode == "no-debounce" {
        opts.debounce = Duration::ZERO;
    }
    let dir = tempfile::tempdir()?;
    let (alpha, beta) = (dir.path().join("alpha"), dir.path().join("beta"));
    generate(&alpha, files)?;
    std::fs::create_dir_all(&beta)?;
    let calls: Calls = Arc::default();
    let sides = Sides::with(
        Timed {
            inner: Scanner::new(&alpha, u64::MAX),
            calls: calls.clone(),
            name: "alpha",
            never_settled,
        },
        Timed {
            inner: Scanner::new(&beta, u64::MAX),
            calls: calls.clone(),
            name: "beta",
            never_settled,
        },
    );
    let (tx, rx) = mpsc::channel();
    let loop_tx = tx.clone();
    let (rounds_tx, rounds) = mpsc::channel::<(Instant, Instant, usize)>();
    let (ready_tx, ready) = mpsc::channel::<()>();
    let kept = dir.path().join("kept");
    let thread = std::thread::spawn(move || {
        let mut keeper = DirKeeper::new(&kept);
        let mut link = live::Link {
            sides,
            ancestor: Ancestor::default(),
            keeper: &mut keeper,
        };
        let mut report = |r: &Report, _: &mut Ancestor| match r {
            Report::Ready { .. } => {
                let _ = ready_tx.send(());
            }
            Report::Synced {
                reason: live::Reason::Events(_),
                took,
                stats,
            } => {
                let end = Instant::now();
                let _ = rounds_tx.send((end - *took, end, stats.to_beta));
            }
            _ => {}
        };
        live::run(&mut link, &opts, &rx, &loop_tx, &mut report)
    });
    ready.recv_timeout(Duration::from_secs(600))?;
    let mut parts: std::collections::BTreeMap<&'static str, Vec<f64>> = Default::default();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    for k in 0..edits {
        std::thread::sleep(Duration::from_millis(60));
        while rounds.try_recv().is_ok() {}
        if let Ok(mut c) = calls.lock() {
            c.clear();
        }
        let i = (k * 7_777_777 + 13) % files;
        let rel = path(i);
        let content = body(&format!("edit {k}"), 200 + (i * 31) % 3801);
        let began = Instant::now();
        std::fs::write(alpha.join(&rel), &content)?;
        let written = Instant::now();
        let target = beta.join(&rel);
        let mut last_look = began;
        let arrived = loop {
            let look = Instant::now();
            if std::fs::read(&target).is_ok_and(|b| b == content) {
                break look;
            }
            if look.duration_since(began) > Duration::from_secs(10) {
                return Err(format!("edit {k} never arrived").into());
            }
            last_look = look;
            std::thread::sleep(Duration::from_micros(50));
        };
        let Ok((start, end, _)) = rounds.recv_timeout(Duration::from_secs(5)) else {
            continue;
        };
        let mut within = Duration::ZERO;
        if let Ok(c) = calls.lock() {
            for (what, t0, t1) in c.iter() {
                let d = t1.duration_since(*t0);
                within += d;
                parts.entry(what).or_default().push(us(d));
            }
        }
        let total = arrived.duration_since(began);
        parts
            .entry("0 total: write → seen in beta")
            .or_default()
            .push(us(total));
        parts
            .entry("1 the write itself (open, write, close)")
            .or_default()
            .push(us(written - began));
        parts
            .entry("2 written → round begins (wake-up, batch due, loop)")
            .or_default()
            .push(us(start.saturating_duration_since(written)));
        parts
            .entry("3 round: all else (decide, ancestor, journal)")
            .or_default()
            .push(us((end - start).saturating_sub(within)));
        parts
            .entry("4 the probe's delay (last look → seen; its poll is 50 µs)")
            .or_default()
            .push(us(arrived.saturating_duration_since(last_look)));
    }
    // Slow writers: how often is a file carried before its writer is done?
    let mut carries = Vec::new();
    for k in 0..20 {
        std::thread::sleep(Duration::from_millis(60));
        while rounds.try_recv().is_ok() {}
        let rel = format!("slow{k}.bin");
        let mut f = std::fs::File::create(alpha.join(&rel))?;
        let chunk = body(&format!("slow {k}"), 4096);
        for _ in 0..16 {
            std::io::Write::write_all(&mut f, &chunk)?;
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(f);
        std::thread::sleep(Duration::from_millis(50));
        carries.push(rounds.try_iter().map(|(_, _, n)| n).sum::<usize>());
    }
    let _ = tx.send(Input::Stop);
    let _ = thread.join();
    let twice = carries.iter().filter(|n| **n > 1).count();
    println!(
        "slow writers (16 × 4 KiB, 1 ms apart): {twice} of {} files carried more than once; \
         carries per file {carries:?}\n",
        carries.len()
    );
    println!("{files} files, {edits} edits alpha → beta, mode {mode}; µs\n");
    println!("| part | p50 µs | p99 µs |\n| --- | --- | --- |");
    for (what, mut v) in parts {
        let (p50, p99) = (percentile(&mut v, 0.5), percentile(&mut v, 0.99));
        println!("| {what} | {p50:.0} | {p99:.0} |");
    }
    Ok(())
}
