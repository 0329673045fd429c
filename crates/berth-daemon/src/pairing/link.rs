//! The file side of a pairing: the sync engine's live loop between the user's checkout (alpha,
//! which wins conflicts) and the agent's workspace (beta), on a thread of its own.
//!
//! Its scanners carry the pairing's gate (`gate.rs`) and settings (`roots.rs`), conflict losers
//! go to the keeper (`keeper.rs`), and the ancestor is saved to the store after every report
//! (link `pair:<pairing>`). Reports become [`LinkEvent`]s for the controller.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use berth_core::pairing::{Notice, Side};
use berth_git::Git;
use berth_store::Store;

use super::keeper::{RefKeeper, kept_count};
use super::roots::Roots;
use berth_sync::ancestor::{self, Ancestor};
use berth_sync::apply::ApplyError;
use berth_sync::engine::Stats;
use berth_sync::live::{self, Report};
use berth_sync::reconcile::{self};
use berth_sync::watch::Input;

/// What the loop tells the controller.
#[derive(Debug)]
pub enum LinkEvent {
    /// The first round is done and the trees follow each other live.
    Ready,
    /// A round finished.
    Synced {
        to_user: u64,
        to_agent: u64,
        took: Duration,
        warnings: Vec<String>,
    },
    /// A write failed in a way that pauses (disk full, permission denied, an emptied root).
    Paused(Notice),
    /// The condition of the last pause went away.
    Resumed,
    /// A round failed for another reason (it is retried).
    Failed(String),
    /// A side's heartbeat did not come back.
    Stalled(Side),
    /// The gate shut: the loop holds until released.
    Held(String),
    /// A conflict's losing version was committed.
    Kept { refname: String, path: String },
    /// The loop ended (`Err`: it could not watch the trees).
    Ended(Result<(), String>),
}

/// Environment variable (milliseconds) shortening the heartbeat period, for tests and
/// diagnosis; the default is the live loop's.
pub const HEARTBEAT_ENV: &str = "BERTH_PAIR_HEARTBEAT_MS";

/// The live loop's timings: its defaults, with the heartbeat from [`HEARTBEAT_ENV`] if set.
fn options() -> live::Options {
    let defaults = live::Options::default();
    match std::env::var(HEARTBEAT_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
    {
        Some(ms) => {
            let every = Duration::from_millis(ms);
            live::Options {
                heartbeat_every: every,
                heartbeat_timeout: defaults.heartbeat_timeout.min(every),
                ..defaults
            }
        }
        None => defaults,
    }
}

/// Where the loop's events go.
pub type Tell = Arc<dyn Fn(LinkEvent) + Send + Sync>;

/// Where a pairing's ancestor is stored.
pub fn ancestor_key(pairing: &str) -> String {
    format!("pair:{pairing}")
}

/// Loads a pairing's ancestor from the store.
pub fn load_ancestor(store: &Store, pairing: &str) -> Result<Ancestor, String> {
    let rows = store
        .ancestor(&ancestor_key(pairing))
        .map_err(|e| e.to_string())?;
    Ok(ancestor::from_rows(rows))
}

/// Saves what changed in the ancestor.
pub fn save_ancestor(store: &Store, pairing: &str, a: &mut Ancestor) -> Result<(), String> {
    let key = ancestor_key(pairing);
    a.save(|rows| store.update_ancestor(&key, rows))
        .map_err(|e| e.to_string())
}

/// A running live loop.
pub struct Link {
    input: Sender<Input>,
    thread: Option<JoinHandle<()>>,
    /// Sent to once the loop watches both trees and its first full round went through (or the
    /// gate held it); dropped if the loop ends first.
    started: Receiver<()>,
}

impl Link {
    /// Starts the loop: its first round is a full one; [`LinkEvent::Ready`] follows once the
    /// trees agree.
    pub fn start(store: Store, pairing: String, roots: Roots, tell: Tell) -> std::io::Result<Link> {
        let (tx, rx) = mpsc::channel();
        let loop_tx = tx.clone();
        let (started_tx, started) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("pair-{pairing}"))
            .spawn(move || {
                let ws = Git::new(&roots.agent);
                let mut keeper = RefKeeper {
                    next: kept_count(&ws, &pairing),
                    ws,
                    pairing: pairing.clone(),
                    tell: tell.clone(),
                };
                let ancestor = match load_ancestor(&store, &pairing) {
                    Ok(a) => a,
                    Err(e) => {
                        tell(LinkEvent::Ended(Err(e)));
                        return;
                    }
                };
                let sides = match roots.sides() {
                    Ok(s) => s,
                    Err(e) => {
                        tell(LinkEvent::Ended(Err(e)));
                        return;
                    }
                };
                let mut link = live::Link {
                    sides,
                    ancestor,
                    keeper: &mut keeper,
                };
                let mut report = |r: &Report, a: &mut Ancestor| {
                    if let Err(e) = save_ancestor(&store, &pairing, a) {
                        tell(LinkEvent::Failed(format!(
                            "cannot save what both sides agreed on: {e}"
                        )));
                    }
                    if matches!(
                        r,
                        Report::Ready { .. }
                            | Report::Held { .. }
                            | Report::Synced {
                                reason: live::Reason::Start,
                                ..
                            }
                    ) {
                        let _ = started_tx.send(());
                    }
                    if let Some(ev) = event(&roots, r) {
                        tell(ev);
                    }
                    // A full round scanned both trees: what it freed goes back.
                    if matches!(
                        r,
                        Report::Ready { .. }
                            | Report::Synced {
                                reason: live::Reason::Start
                                    | live::Reason::Rescan(_)
                                    | live::Reason::Flush,
                                ..
                            }
                    ) {
                        crate::memory::give_back();
                    }
                };
                let end = live::run(&mut link, &options(), &rx, &loop_tx, &mut report)
                    .map_err(|e| format!("cannot watch the trees: {e}"));
                tell(LinkEvent::Ended(end));
            })?;
        Ok(Link {
            input: tx,
            thread: Some(thread),
            started,
        })
    }

    /// Waits until the loop watches both trees and its first full round went through (or the
    /// gate holds it); `false` if it ended first or `timeout` passed.
    pub fn wait_started(&self, timeout: Duration) -> bool {
        self.started.recv_timeout(timeout).is_ok()
    }

    /// Apply nothing until released.
    pub fn hold(&self) {
        let _ = self.input.send(Input::Hold);
    }

    /// Apply again, beginning with a full round.
    pub fn release(&self) {
        let _ = self.input.send(Input::Release);
    }

    /// Syncs everything now; answers once both sides agree.
    pub fn flush(&self) -> Result<Stats, String> {
        let (tx, rx) = mpsc::channel();
        self.input
            .send(Input::Flush(tx))
            .map_err(|_| "the sync loop has ended".to_string())?;
        rx.recv()
            .map_err(|_| "the sync loop has ended".to_string())?
    }

    /// Stops the loop after the round in progress and waits for it.
    pub fn stop(mut self) {
        self.end();
    }

    fn end(&mut self) {
        let _ = self.input.send(Input::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.end();
    }
}

/// The notice a pausing write error stands for.
fn pause_notice(roots: &Roots, e: &ApplyError) -> Notice {
    match e {
        ApplyError::RootEmptied { root } => {
            let side = roots.side_of(root);
            if Path::new(root).exists() {
                Notice::RootEmptied {
                    side,
                    path: root.clone(),
                }
            } else {
                Notice::RootDeleted {
                    side,
                    path: root.clone(),
                }
            }
        }
        ApplyError::Io { path, source } => {
            let side = roots.side_of(path);
            match source.raw_os_error() {
                Some(libc::ENOSPC | libc::EDQUOT) => Notice::DiskFull {
                    side,
                    path: path.clone(),
                },
                _ => Notice::PermissionDenied {
                    side,
                    path: path.clone(),
                },
            }
        }
        other => Notice::UnexpectedError {
            message: other.to_string(),
        },
    }
}

fn side_of(s: reconcile::Side) -> Side {
    match s {
        reconcile::Side::Alpha => Side::User,
        reconcile::Side::Beta => Side::Agent,
    }
}

fn event(roots: &Roots, r: &Report) -> Option<LinkEvent> {
    Some(match r {
        Report::Ready { .. } => LinkEvent::Ready,
        Report::Synced { stats, took, .. } => LinkEvent::Synced {
            to_user: stats.to_alpha as u64,
            to_agent: stats.to_beta as u64,
            took: *took,
            warnings: stats.warnings.iter().map(ToString::to_string).collect(),
        },
        Report::Paused { error } => LinkEvent::Paused(pause_notice(roots, error)),
        Report::Held { why } => LinkEvent::Held(why.to_string()),
        Report::Resumed => LinkEvent::Resumed,
        Report::Failed { error } => LinkEvent::Failed(error.clone()),
        Report::Stalled { side } => LinkEvent::Stalled(side_of(*side)),
        Report::WatchTrouble { error, .. } => {
            tracing::warn!("pairing watch: {error}");
            return None;
        }
    })
}
