//! berth's benchmarks, one subcommand each (`daemon`, `snapshots`, `supervisor`, `sync`,
//! `remote`, `pairing`, `terminal`, `web`, `inbox`, `soak`); each
//! measures against the SPEC §7 targets or its peer tools in the same run (the soak: that
//! random operations and SIGKILL restarts never make the two sides of a pairing diverge) and
//! writes `bench/results/<name>.md`.

mod cli;
mod daemon;
mod inbox;
mod machine;
mod pairing;
mod remote;
mod snapshots;
mod soak;
mod stats;
mod supervisor;
mod sync;
mod terminal;
mod web;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// Builds the release `berth` binary and returns its path.
fn build_berth() -> Result<PathBuf, String> {
    let root = repo_root();
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--locked", "-p", "berth"])
        .current_dir(&root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("cargo build of berth failed".into());
    }
    Ok(root.join("target/release/berth"))
}

fn main() -> ExitCode {
    // `cargo run` puts its build directories on the dynamic loader's path. Nothing measured
    // here needs them, yet every process the benchmark starts — berth, each git berth runs,
    // the peers — would look for each of its libraries there first, as no process started
    // from a shell does: a pairing's start, mostly git runs, took 1.35 times as long.
    // SAFETY: the first thing main does, before any other thread exists.
    unsafe { std::env::remove_var("LD_LIBRARY_PATH") };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().cloned().unwrap_or_default();
    let result = match which.as_str() {
        "daemon" => build_berth().and_then(|bin| daemon::run(&bin, &repo_root())),
        "snapshots" => snapshots::run(&repo_root()),
        "supervisor" => build_berth().and_then(|bin| supervisor::run_bench(&bin, &repo_root())),
        "sync" => sync::run(&args[1..], &repo_root()),
        "remote" => remote::run(&args[1..], &repo_root()),
        "terminal" => build_berth().and_then(|bin| terminal::run(&bin, &repo_root())),
        "inbox" => build_berth().and_then(|bin| inbox::run(&bin, &repo_root())),
        "pairing" => build_berth().and_then(|bin| pairing::run(&args[1..], &bin, &repo_root())),
        "web" => build_berth().and_then(|bin| web::run(&bin, &repo_root())),
        "soak" => soak::parse(&args[1..]).and_then(|o| {
            let bin = match &o.berth {
                Some(b) => b.clone(),
                None => build_berth()?,
            };
            soak::run(&o, &bin, &repo_root())
        }),
        _ => Err(format!(
            "usage: berth-bench daemon|snapshots|supervisor|sync|remote|pairing|terminal|web|inbox|soak\n{}\n{}\n{}",
            sync::USAGE,
            pairing::USAGE,
            soak::USAGE
        )),
    };
    match result {
        Ok(report) => {
            println!("wrote {}", report.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
