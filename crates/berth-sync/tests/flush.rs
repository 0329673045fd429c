//! A flush of the live loop, in step and out of step, on two real trees with real watches.
//!
//! Each test hides one difference from the loop: a file is written on beta and its event is
//! taken out of the channel before the loop runs. Only a full round can find it, so whether it
//! crossed tells a flush that trusted the watches (a fence of heartbeats, then a round over the
//! changed paths) from one that rescanned both trees.

// An integration test: its helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use berth_sync::ancestor::Ancestor;
use berth_sync::endpoint::Endpoint;
use berth_sync::engine::{DirKeeper, Sides, copy_over};
use berth_sync::live::{self, Options, Watched};
use berth_sync::reconcile::Side;
use berth_sync::scan::Scanner;
use berth_sync::watch::Input;

const LONG: Duration = Duration::from_secs(600);

/// Timings under which nothing happens on its own: a change waits for a flush.
fn patient() -> Options {
    Options {
        debounce: LONG,
        max_delay: LONG,
        rescan_every: LONG,
        heartbeat_every: LONG,
        heartbeat_timeout: Duration::from_secs(5),
        retry_every: LONG,
    }
}

struct Run {
    tx: Sender<Input>,
    loop_thread: std::thread::JoinHandle<bool>,
}

/// Two agreeing trees under `root`, watched, with `hidden.txt` on beta that the loop is not
/// told about; the loop runs with them, in step or not.
fn start(root: &Path, in_step: bool) -> Run {
    let (alpha, beta, kept) = (root.join("a"), root.join("b"), root.join("kept"));
    for dir in [&alpha, &beta, &kept] {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(alpha.join("same.txt"), "same\n").unwrap();
    std::fs::write(beta.join("same.txt"), "same\n").unwrap();
    let (tx, rx) = mpsc::channel();
    let mut sides = Sides::new(&alpha, &beta, u64::MAX);
    let watched_alpha = sides.alpha.watch(Side::Alpha, tx.clone()).unwrap();
    let watched_beta = Endpoint::watch(&mut sides.beta, Side::Beta, tx.clone()).unwrap();
    let mut ancestor = Ancestor::default();
    let copied = copy_over(&mut sides, &mut ancestor, Side::Alpha, &mut None).unwrap();
    assert!(copied.warnings.is_empty());
    std::fs::write(beta.join("hidden.txt"), "hidden\n").unwrap();
    drain_until_quiet(&rx);
    let watched = Watched::<Scanner, Scanner> {
        alpha: watched_alpha,
        beta: watched_beta,
        in_step,
    };
    let loop_tx = tx.clone();
    let loop_thread = std::thread::spawn(move || {
        let mut keeper = DirKeeper::new(&kept);
        let mut link = live::Link {
            sides,
            ancestor,
            keeper: &mut keeper,
        };
        let ended = live::run_watched(
            &mut link,
            &patient(),
            &rx,
            &loop_tx,
            Some(watched),
            &mut |_, _| {},
        )
        .unwrap();
        ended.agreed
    });
    Run { tx, loop_thread }
}

/// Takes every event out of the channel until none came for a while.
fn drain_until_quiet(rx: &Receiver<Input>) {
    while rx.recv_timeout(Duration::from_millis(200)).is_ok() {}
}

fn flush(run: &Run) {
    let (reply, answer) = mpsc::channel();
    run.tx.send(Input::Flush(reply)).unwrap();
    answer
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap();
}

/// Stops the loop; whether it ended agreeing.
fn stop(run: Run) -> bool {
    run.tx.send(Input::Stop).unwrap();
    run.loop_thread.join().unwrap()
}

#[test]
fn a_flush_in_step_carries_what_changed_before_it_without_rescanning() {
    let dir = tempfile::tempdir().unwrap();
    let run = start(dir.path(), true);
    // Written right before the flush: its event may still be on its way when the flush is
    // asked, and the fence waits for it.
    std::fs::write(dir.path().join("a/new.txt"), "made just before\n").unwrap();
    flush(&run);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("b/new.txt")).unwrap(),
        "made just before\n"
    );
    assert!(
        !dir.path().join("a/hidden.txt").exists(),
        "a flush in step scans no tree whole"
    );
    assert!(stop(run), "after a fenced flush both trees agree");
}

#[test]
fn a_flush_out_of_step_rescans_both_trees() {
    let dir = tempfile::tempdir().unwrap();
    let run = start(dir.path(), false);
    std::fs::write(dir.path().join("a/new.txt"), "made just before\n").unwrap();
    flush(&run);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("b/new.txt")).unwrap(),
        "made just before\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a/hidden.txt")).unwrap(),
        "hidden\n"
    );
    stop(run);
}

#[test]
fn a_flush_in_step_rescans_once_an_ignore_file_changed() {
    let dir = tempfile::tempdir().unwrap();
    let run = start(dir.path(), true);
    // New rules may bring in files no event named: only a full round finds them.
    std::fs::write(dir.path().join("a/.gitignore"), "*.tmp\n").unwrap();
    flush(&run);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a/hidden.txt")).unwrap(),
        "hidden\n"
    );
    stop(run);
}
