//! Process trees and identities against real processes.

// An integration test: its helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_supervisor::tree::{self, Identity};

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn finds_children_and_grandchildren_but_nothing_else() {
    // sh → (sleep, sh → sleep): two levels below the shell.
    let mut child = Command::new("sh")
        .args(["-c", "sleep 30 & sh -c 'sleep 30 & wait' & wait"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let root = child.id();
    wait_until("three descendants exist", || {
        tree::descendants(&tree::all_processes().unwrap(), root).len() == 3
    });
    let all = tree::all_processes().unwrap();
    let below = tree::descendants(&all, root);
    let names: Vec<String> = below
        .iter()
        .map(|pid| tree::read_stat(*pid).unwrap().comm)
        .collect();
    assert_eq!(
        names.iter().filter(|n| *n == "sleep").count(),
        2,
        "{names:?}"
    );
    assert!(!below.contains(&std::process::id()));
    for pid in below.iter().rev() {
        // SAFETY: kill(2) on processes this test started.
        unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn an_identity_survives_only_as_long_as_its_process() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let id = Identity::of(child.id()).unwrap();
    assert!(id.is_alive());
    let recycled = Identity {
        start_time: id.start_time + 1,
        ..id
    };
    assert!(
        !recycled.is_alive(),
        "same pid, other start time: not the same process"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!id.is_alive());
    assert_eq!(Identity::of(u32::MAX), None);
}
