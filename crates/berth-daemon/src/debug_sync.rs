//! `berth debug sync ALPHA BETA [--once]`: the sync engine between two plain directories; BETA
//! may be elsewhere — `ssh://[user@]host[:port]/dir`, `docker://IMAGE/dir`,
//! `docker-exec://CONTAINER/dir` (podman's alike) — a directory served by `berth __endpoint`
//! there, berth installing itself first when needed (`berth_sync::remote`), whose losing
//! versions of conflicts are kept beside ALPHA (`<alpha>.berth-kept`).
//!
//! The ancestor is kept in berth's store under the link `debug:<hash of both paths>`, so a new
//! run resumes without false conflicts. Live mode prints one line per round (JSON lines with
//! `--json`, starting with `"event":"ready"`), answers `flush` lines on standard input, and stops
//! on SIGINT or SIGTERM after the round in progress.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use berth_core::home::Home;
use berth_store::{Store, StoreOptions};
use berth_sync::ancestor::Ancestor;
use berth_sync::endpoint::Endpoint;
use berth_sync::engine::{DirKeeper, Sides, sync_once};
use berth_sync::live::{self, Link, Reason, Report};
use berth_sync::reconcile::Side;
use berth_sync::remote::install::{Installed, Installing};
use berth_sync::remote::target::Target;
use berth_sync::remote::{RemoteEndpoint, RemoteError};
use berth_sync::scan::Scanner;
use berth_sync::stats::Stats;
use berth_sync::watch::Input;
use nix::sys::signal::{SigSet, Signal};
use serde_json::{Value, json};

/// Files larger than this are not synced unless told otherwise.
pub const DEFAULT_MAX_SIZE: u64 = berth_sync::engine::DEFAULT_MAX_SIZE;

/// What `berth debug sync` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub alpha: PathBuf,
    /// A directory, or a tree elsewhere (`ssh://…`, `docker://…`, `docker-exec://…`, podman's).
    pub beta: PathBuf,
    /// One full round, then return; otherwise watch and sync until SIGINT or SIGTERM.
    pub once: bool,
    pub max_size: u64,
    /// Extra exclusions (gitignore syntax).
    pub exclude: Vec<String>,
    pub debounce: Duration,
    pub max_delay: Duration,
    pub rescan_every: Duration,
    pub heartbeat_every: Duration,
    /// JSON lines instead of lines for a person.
    pub json: bool,
}

/// Why the debug sync could not run or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DebugSyncError {
    #[error("{path}: {source}")]
    BadRoot {
        path: String,
        source: std::io::Error,
    },
    #[error("one root is inside the other")]
    NestedRoots,
    #[error("--exclude: {0}")]
    BadExclude(String),
    #[error("{0}")]
    Store(String),
    #[error("{0}")]
    Signals(String),
    #[error("cannot watch the trees: {0}")]
    Watch(String),
    #[error("{message}")]
    Sync { message: String, pausing: bool },
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

impl DebugSyncError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            DebugSyncError::BadRoot { .. } => "bad_root",
            DebugSyncError::NestedRoots => "nested_roots",
            DebugSyncError::BadExclude(_) => "bad_exclude",
            DebugSyncError::Store(_) => "store",
            DebugSyncError::Signals(_) => "signals",
            DebugSyncError::Watch(_) => "watch_failed",
            DebugSyncError::Sync { .. } => "sync_failed",
            DebugSyncError::Remote(RemoteError::BadTarget(_)) => "bad_root",
            DebugSyncError::Remote(_) => "endpoint_failed",
        }
    }

    /// Whether the arguments were at fault (a usage error) rather than the run.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            DebugSyncError::BadRoot { .. }
                | DebugSyncError::NestedRoots
                | DebugSyncError::BadExclude(_)
                | DebugSyncError::Remote(RemoteError::BadTarget(_))
        )
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            DebugSyncError::BadRoot { .. } => Some("both roots must be existing directories"),
            DebugSyncError::NestedRoots => Some("sync two separate directories"),
            DebugSyncError::BadExclude(_) => {
                Some("use gitignore syntax, e.g. --exclude '*.tmp' --exclude /scratch/")
            }
            DebugSyncError::Watch(_) => Some(
                "if the limit of inotify watches was reached, raise fs.inotify.max_user_watches",
            ),
            DebugSyncError::Sync { pausing: true, .. } => {
                Some("nothing was half-written; free space or fix the permission, then run again")
            }
            DebugSyncError::Remote(e) => e.hint(),
            _ => None,
        }
    }
}

fn absolute(p: &Path) -> Result<PathBuf, DebugSyncError> {
    std::fs::canonicalize(p).map_err(|source| DebugSyncError::BadRoot {
        path: p.display().to_string(),
        source,
    })
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Alpha => "alpha",
        Side::Beta => "beta",
    }
}

/// One round as a JSON object.
fn stats_json(event: &str, reason: Option<&Reason>, stats: &Stats, ms: f64) -> Value {
    let reason = reason.map(|r| match r {
        Reason::Start => "start".to_string(),
        Reason::Events(n) => format!("{n} changed paths"),
        Reason::Rescan(why) => format!("rescan: {why}"),
        Reason::Flush => "flush".to_string(),
    });
    json!({
        "event": event,
        "reason": reason,
        "to_alpha": stats.to_alpha,
        "to_beta": stats.to_beta,
        "conflicts": stats.conflicts,
        "warnings": stats.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "ms": (ms * 1000.0).round() / 1000.0,
    })
}

/// An installation of berth on the far side as a JSON object.
fn installed_json(i: &Installed) -> Value {
    json!({
        "event": "installed",
        "path": i.path,
        "replaced": i.replaced,
        "bytes": i.bytes,
        "ms": (i.took.as_secs_f64() * 1e6).round() / 1000.0,
    })
}

/// Prints an event: the JSON line with `--json`, else a line for a person.
fn print(json_mode: bool, v: &Value, kept_in: &Path) {
    let text = if json_mode {
        v.to_string()
    } else {
        human(v, kept_in)
    };
    // Whoever read the output may be gone; syncing goes on regardless.
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

fn human(v: &Value, kept_in: &Path) -> String {
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let event = text("event");
    match event.as_str() {
        "ready" | "synced" | "flushed" | "done" => {
            let reason = v["reason"]
                .as_str()
                .map(|r| format!(", {r}"))
                .unwrap_or_default();
            let mut out = vec![format!(
                "{event}: → alpha {}, → beta {}, conflicts {} ({} ms{reason})",
                v["to_alpha"], v["to_beta"], v["conflicts"], v["ms"]
            )];
            if v["conflicts"].as_u64().unwrap_or(0) > 0 {
                out.push(format!(
                    "beta's losing versions are in {}",
                    kept_in.display()
                ));
            }
            for w in v["warnings"].as_array().into_iter().flatten() {
                out.push(format!("warning: {}", w.as_str().unwrap_or_default()));
            }
            out.join("\n")
        }
        "installed" => format!(
            "installed berth at {} there ({} bytes, {} ms){}",
            text("path"),
            v["bytes"],
            v["ms"],
            if v["replaced"] == true {
                ", replacing one of another version"
            } else {
                ""
            }
        ),
        "paused" => format!("paused: {} (retrying)", text("cause")),
        "resumed" => "resumed".into(),
        "failed" => format!("round failed: {} (retrying)", text("error")),
        "stalled" => format!(
            "watching {} stopped delivering events; watching it anew and rescanning",
            text("side")
        ),
        "watch_trouble" => format!("watching {}: {}", text("side"), text("error")),
        _ => v.to_string(),
    }
}

/// Writes the ancestor's unsaved rows (if any) to the store.
fn persist(store: &Store, link: &str, ancestor: &mut Ancestor) -> Result<(), String> {
    ancestor
        .save(|rows| store.update_ancestor(link, rows))
        .map_err(|e| e.to_string())
}

/// SIGINT and SIGTERM, which stop the live loop between rounds: blocked before any thread
/// starts (a remote endpoint starts threads of its own), so every thread inherits the mask, and
/// awaited by one thread.
fn stop_signals() -> SigSet {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals
}

/// Runs the engine between two directories (the second one possibly remote), its ancestor kept
/// in `home`'s store, printing one line per round to standard output.
pub fn run(home: &Home, args: &Options) -> Result<(), DebugSyncError> {
    crate::memory::limit_arenas();
    if !args.once {
        stop_signals()
            .thread_block()
            .map_err(|e| DebugSyncError::Signals(e.to_string()))?;
    }
    let alpha = absolute(&args.alpha)?;
    let alpha_side = Scanner::new(&alpha, args.max_size);
    let target = args.beta.to_str().map(Target::parse).transpose()?.flatten();
    if let Some(target) = target {
        let name = args.beta.display().to_string();
        let (json_mode, kept_in) = (args.json, kept_beside(&alpha));
        let kept = kept_in.clone();
        let notify = move |i: &Installed| print(json_mode, &installed_json(i), &kept);
        let launcher = Installing::new(&name, target, notify);
        let beta = RemoteEndpoint::spawn(&name, launcher, args.max_size)?;
        return run_between(home, args, Sides::with(alpha_side, beta), kept_in);
    }
    let beta = absolute(&args.beta)?;
    if alpha.starts_with(&beta) || beta.starts_with(&alpha) {
        return Err(DebugSyncError::NestedRoots);
    }
    let beta_side = Scanner::new(&beta, args.max_size);
    run_between(
        home,
        args,
        Sides::with(alpha_side, beta_side),
        kept_beside(&beta),
    )
}

/// Where beta's losing versions are kept: `<dir>.berth-kept` beside `dir` (beta's own
/// directory, or alpha's when beta is on another machine).
fn kept_beside(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.with_file_name(format!("{name}.berth-kept"))
}

/// Runs the engine between `sides`, losing versions kept in `kept_in`.
fn run_between<B: Endpoint>(
    home: &Home,
    args: &Options,
    mut sides: Sides<Scanner, B>,
    kept_in: PathBuf,
) -> Result<(), DebugSyncError> {
    let names = format!("{}\0{}", sides.name(Side::Alpha), sides.name(Side::Beta));
    let id = blake3::hash(names.as_bytes()).to_hex();
    let link = format!("debug:{}", &id[..16]);
    let store = Store::open(&home.database(), StoreOptions::default())
        .map_err(|e| DebugSyncError::Store(e.to_string()))?;
    let ancestor = berth_sync::ancestor::from_rows(
        store
            .ancestor(&link)
            .map_err(|e| DebugSyncError::Store(e.to_string()))?,
    );
    let mut keeper = DirKeeper::new(&kept_in);
    sides
        .exclude(&args.exclude)
        .map_err(|e| DebugSyncError::BadExclude(e.to_string()))?;
    if args.once {
        return once(
            args.json,
            &store,
            &link,
            sides,
            ancestor,
            &mut keeper,
            &kept_in,
        );
    }
    let signals = stop_signals();
    let (tx, rx) = mpsc::channel();
    let stop = tx.clone();
    std::thread::spawn(move || {
        if signals.wait().is_ok() {
            let _ = stop.send(Input::Stop);
        }
    });
    let (flush_tx, json_mode, kept) = (tx.clone(), args.json, kept_in.clone());
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line.trim() != "flush" {
                continue;
            }
            let (reply_tx, reply_rx) = mpsc::channel();
            let started = std::time::Instant::now();
            if flush_tx.send(Input::Flush(reply_tx)).is_err() {
                break;
            }
            let ms = || started.elapsed().as_secs_f64() * 1000.0;
            match reply_rx.recv() {
                Ok(Ok(stats)) => {
                    print(json_mode, &stats_json("flushed", None, &stats, ms()), &kept)
                }
                Ok(Err(e)) => print(
                    json_mode,
                    &json!({"event": "failed", "error": format!("flush: {e}")}),
                    &kept,
                ),
                Err(_) => break,
            }
        }
    });
    let opts = live::Options {
        debounce: args.debounce,
        max_delay: args.max_delay,
        rescan_every: args.rescan_every,
        heartbeat_every: args.heartbeat_every,
        heartbeat_timeout: live::Options::default()
            .heartbeat_timeout
            .min(args.heartbeat_every),
        ..live::Options::default()
    };
    let mut link_state = Link {
        sides,
        ancestor,
        keeper: &mut keeper,
    };
    // Until ready, rounds are added up and shown as one "ready" line.
    let mut before_ready: Option<Stats> = Some(Stats::default());
    let mut report = |r: &Report, ancestor: &mut Ancestor| {
        // Saved after every report: a failed round may have moved the ancestor too.
        if let Err(e) = persist(&store, &link, ancestor) {
            print(
                args.json,
                &json!({"event": "failed", "error": format!("cannot save the ancestor: {e}")}),
                &kept_in,
            );
        }
        crate::memory::after_round(r);
        let v = match r {
            Report::Synced {
                reason,
                stats,
                took,
            } => {
                if let Some(total) = &mut before_ready {
                    total.absorb((*stats).clone());
                    return;
                }
                if *reason == Reason::Flush || stats.is_quiet() {
                    return; // flushes are answered on their own; echoes need no line
                }
                stats_json("synced", Some(reason), stats, took.as_secs_f64() * 1000.0)
            }
            Report::Ready { took } => {
                let total = before_ready.take().unwrap_or_default();
                let ms = took.as_secs_f64() * 1000.0;
                stats_json("ready", Some(&Reason::Start), &total, ms)
            }
            Report::Paused { error } => json!({"event": "paused", "cause": error.to_string()}),
            Report::Held { why } => json!({"event": "held", "why": why}),
            Report::Resumed => json!({"event": "resumed"}),
            Report::Failed { error } => json!({"event": "failed", "error": error}),
            Report::Stalled { side } => json!({"event": "stalled", "side": side_name(*side)}),
            Report::WatchTrouble { side, error } => {
                json!({"event": "watch_trouble", "side": side_name(*side), "error": error})
            }
        };
        print(args.json, &v, &kept_in);
    };
    live::run(&mut link_state, &opts, &rx, &tx, &mut report)
        .map_err(|e| DebugSyncError::Watch(e.to_string()))
}

/// `--once`: one full round, saved, printed.
fn once<B: Endpoint>(
    json_mode: bool,
    store: &Store,
    link: &str,
    mut sides: Sides<Scanner, B>,
    mut ancestor: Ancestor,
    keeper: &mut DirKeeper,
    kept_in: &Path,
) -> Result<(), DebugSyncError> {
    let started = std::time::Instant::now();
    // One round sees everything at once: a burst of deletions needs no waiting (a side that
    // lost most of what both agreed on still halts).
    sides.burst_settled = true;
    let result = sync_once(&mut sides, &mut ancestor, keeper);
    // What was done before a failure is saved too.
    persist(store, link, &mut ancestor).map_err(DebugSyncError::Store)?;
    let stats = result.map_err(|e| DebugSyncError::Sync {
        message: e.to_string(),
        pausing: e.is_pausing(),
    })?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    print(json_mode, &stats_json("done", None, &stats, ms), kept_in);
    Ok(())
}
