//! Integration tests of the `berth` binary, each in a temporary home. One test binary for the
//! crate; one module per capability.

// An integration test: its helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli {
    pub mod agents;
    pub mod api;
    pub mod attach;
    pub mod bad_input;
    pub mod completions;
    pub mod compose;
    pub mod console;
    pub mod debug_sync;
    pub mod demo;
    pub mod docker;
    pub mod doctor;
    pub mod exit_codes;
    pub mod hardening;
    pub mod hooks;
    pub mod inbox;
    pub mod keeper;
    pub mod lifecycle;
    pub mod pair;
    pub mod pair_crash;
    pub mod pair_model;
    pub mod probes;
    pub mod progress;
    pub mod remote;
    pub mod remote_agents;
    pub mod ssh;
    pub mod stash;
    pub mod states;
    pub mod terminal;
    pub mod timers;
}

use berth_testkit::TestHome;

/// A fresh home driven by the binary under test.
pub fn home() -> TestHome {
    TestHome::new(env!("CARGO_BIN_EXE_berth"))
}

/// Fails the test, saying what is missing, unless it runs as root. Tests that need root are
/// `#[ignore = "needs root ..."]`, so a plain `cargo test` lists them as ignored instead of
/// passing them untested; `.ci/run` (as root) runs them with `--include-ignored`.
pub fn require_root(to: &str) {
    // SAFETY: geteuid(2) has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test needs root to {to}; run it as root: scripts/test -- --include-ignored"
    );
}

/// A runtime for a test that talks to the daemon through `berth_client`.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Starts the daemon and checks it reports itself running.
pub fn start(h: &TestHome) -> serde_json::Value {
    let out = h.run(&["--json", "daemon", "start"]);
    out.expect_code(0);
    out.json()
}
