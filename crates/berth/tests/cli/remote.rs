//! The sync engine with beta behind a real `berth __endpoint` process, over its pipes: the
//! model-based test (`crates/berth-sync/tests/model.rs`; a new endpoint process at every restart
//! of the model, and the same invariants: both trees equal after every round, alpha's edits as
//! made, beta's in beta or kept), and conditions of the far side reaching the engine as they
//! would locally.

use std::process::Command;

use berth_sync::ancestor::Ancestor;
use berth_sync::engine::{DirKeeper, Sides, sync_once};
use berth_sync::remote::{RemoteEndpoint, RemoteError};
use berth_sync::scan::Scanner;
use proptest::prelude::*;

#[path = "../../../berth-sync/tests/world/mod.rs"]
mod world;

fn endpoint(beta: &std::path::Path) -> RemoteEndpoint {
    endpoint_with(beta, &[]).unwrap()
}

/// `berth __endpoint BETA` with `env` set for it.
fn endpoint_with(
    beta: &std::path::Path,
    env: &[(&str, &str)],
) -> Result<RemoteEndpoint, RemoteError> {
    let beta = beta.to_path_buf();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let command = move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
        command.arg("__endpoint").arg(&beta).envs(env.clone());
        command
    };
    RemoteEndpoint::spawn("beta (berth __endpoint)", command, u64::MAX)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn random_edits_converge_with_beta_behind_a_real_endpoint(ops in proptest::collection::vec(world::op(), 1..40)) {
        world::run(world::World::new(endpoint), &ops)?;
    }
}

#[test]
fn a_full_disk_on_the_far_side_pauses_syncing_and_leaves_nothing_partial() {
    let dir = tempfile::tempdir().unwrap();
    let (alpha, beta) = (dir.path().join("alpha"), dir.path().join("beta"));
    std::fs::create_dir_all(&alpha).unwrap();
    std::fs::create_dir_all(&beta).unwrap();
    std::fs::write(alpha.join("f"), vec![7u8; 600_000]).unwrap();
    // The endpoint's writes fail as on a full disk (ENOSPC).
    let far = endpoint_with(&beta, &[("BERTH_FAILPOINTS", "sync.write=error(28)")]).unwrap();
    let mut sides = Sides::with(Scanner::new(&alpha, u64::MAX), far);
    let mut keeper = DirKeeper::new(&dir.path().join("kept"));
    let mut ancestor = Ancestor::default();
    let err = sync_once(&mut sides, &mut ancestor, &mut keeper).unwrap_err();
    assert!(
        err.is_pausing(),
        "a full disk there pauses as one here: {err}"
    );
    assert!(err.to_string().contains("beta (berth __endpoint)"), "{err}");
    assert_eq!(
        std::fs::read_dir(&beta).unwrap().count(),
        0,
        "nothing partial on the far side"
    );
    assert!(ancestor.tree().is_empty());
    // The stream is still in step: the next round sees the same.
    assert!(sync_once(&mut sides, &mut ancestor, &mut keeper).is_err());
}

#[test]
fn a_missing_root_on_the_far_side_is_refused_at_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let err = endpoint_with(&dir.path().join("missing"), &[]).unwrap_err();
    assert!(matches!(err, RemoteError::Refused(_)), "{err}");
    assert!(err.to_string().contains("missing"), "{err}");
}

/// SIGKILLs every process whose arguments include all of `needles`; how many there were.
pub fn kill_where(needles: &[&str]) -> usize {
    let mut killed = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if pid != std::process::id() as i32 && needles.iter().all(|n| args.contains(n)) {
            // SAFETY: kill(2) of a process this test started (its arguments name the test's
            // own temporary directory).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed += 1;
        }
    }
    killed
}

#[test]
fn an_endpoint_that_died_is_started_again_at_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let (alpha, beta) = (dir.path().join("alpha"), dir.path().join("beta"));
    std::fs::create_dir_all(&alpha).unwrap();
    std::fs::create_dir_all(&beta).unwrap();
    std::fs::write(alpha.join("first"), "1").unwrap();
    let mut sides = Sides::with(Scanner::new(&alpha, u64::MAX), endpoint(&beta));
    let mut keeper = DirKeeper::new(&dir.path().join("kept"));
    let mut ancestor = Ancestor::default();
    sync_once(&mut sides, &mut ancestor, &mut keeper).unwrap();
    let beta_arg = beta.to_str().unwrap();
    assert_eq!(kill_where(&["__endpoint", beta_arg]), 1);
    std::fs::write(alpha.join("second"), "2").unwrap();
    std::fs::write(beta.join("made-meanwhile"), "3").unwrap();
    // The round that finds the stream broken fails and says so; the next one starts the
    // endpoint again and carries over what changed on both sides meanwhile.
    let err = sync_once(&mut sides, &mut ancestor, &mut keeper).unwrap_err();
    assert!(err.to_string().contains("was lost"), "{err}");
    sync_once(&mut sides, &mut ancestor, &mut keeper).unwrap();
    assert_eq!(std::fs::read_to_string(beta.join("second")).unwrap(), "2");
    assert_eq!(
        std::fs::read_to_string(alpha.join("made-meanwhile")).unwrap(),
        "3"
    );
}
