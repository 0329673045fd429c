//! What the link tells the controller: the sync loop's reports, in pairing's terms (sides are
//! the user's and the agent's, write errors are notices).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use berth_core::pairing::{Notice, Side};
use berth_sync::apply::ApplyError;
use berth_sync::live::Report;
use berth_sync::reconcile;

use super::error::PairingError;
use super::far_side::is_far_path;

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
    Ended(Result<(), PairingError>),
}

/// Where the loop's events go.
pub type Tell = Arc<dyn Fn(LinkEvent) + Send + Sync>;

/// The event a report stands for (`None`: only logged). `agent_root` tells the sides apart.
pub fn from_report(agent_root: &Path, r: &Report) -> Option<LinkEvent> {
    Some(match r {
        Report::Ready { .. } => LinkEvent::Ready,
        Report::Synced { stats, took, .. } => LinkEvent::Synced {
            to_user: stats.to_alpha as u64,
            to_agent: stats.to_beta as u64,
            took: *took,
            warnings: stats.warnings.iter().map(ToString::to_string).collect(),
        },
        Report::Paused { error } => LinkEvent::Paused(pause_notice(agent_root, error)),
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

/// Which side an absolute path is on.
fn side_at(agent_root: &Path, path: &str) -> Side {
    if Path::new(path).starts_with(agent_root) || is_far_path(agent_root, path) {
        Side::Agent
    } else {
        Side::User
    }
}

/// The notice a pausing write error stands for.
fn pause_notice(agent_root: &Path, e: &ApplyError) -> Notice {
    match e {
        ApplyError::RootEmptied { root } => {
            let side = side_at(agent_root, root);
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
            let side = side_at(agent_root, path);
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
