//! Why a pairing did not do what was asked, or could not prepare what it needs.

use std::path::PathBuf;

use berth_core::pairing::{Blocker, Refusal};
use berth_git::GitError;
use berth_store::StoreError;

/// A pairing's error. The first five answer a request (the API maps each to its code); the
/// rest say why something a pairing needs could not be read or prepared, and end up in a
/// step's failure or a notice.
#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    /// Blockers refuse the start; one line each, with the fix.
    #[error("{}", Blocker::report(.0))]
    Blocked(Vec<Blocker>),
    #[error("{}", .0.message())]
    Refused(Refusal),
    #[error("not paired — nothing to do (start with `berth pair NAME`)")]
    NotPaired,
    /// Paused: the notices say why.
    #[error("{0}")]
    Paused(String),
    /// A start or stop ended otherwise than asked; the text says what happened and what is
    /// left where.
    #[error("{0}")]
    Failed(String),
    #[error("the pairing controller ended unexpectedly; see `berth daemon logs`")]
    ControllerEnded,
    #[error("syncing is not running")]
    NotSyncing,
    /// The agent elsewhere could not be reached or refused.
    #[error("the agent's side: {0}")]
    Far(String),
    #[error("cannot start pairing: {0}")]
    Open(#[source] OpenError),
    #[error("cannot read git's state: {0}")]
    GitState(#[source] GitError),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("git config berth.maxSize is {0:?}: give a size in bytes (k, m, g allowed)")]
    MaxSize(String),
    #[error("git config {key}: {message}")]
    Setting { key: &'static str, message: String },
    #[error("git config berth.stopTimeout is {0:?}: give a duration above zero (e.g. 15s, 1m)")]
    StopTimeout(String),
    #[error("git config berth.exclude: {0}")]
    Exclude(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("berth's line in info/exclude: {0}")]
    ExcludeFile(#[from] berth_git::exclude::ExcludeError),
    #[error("cannot watch the trees: {0}")]
    Watch(#[source] std::io::Error),
    #[error("the sync loop has ended")]
    LoopEnded,
    /// A write journaled before a restart could not be looked at in its tree.
    #[error("cannot look at a write made before the restart: {0}")]
    Pending(String),
    /// The sync loop did not answer a flush within the limit (`berth.stopTimeout`).
    #[error(
        "syncing got no answer within {}: a tree does not respond (a hung disk or network \
         filesystem?) — see `berth pair status`; raise the limit with `git config \
         berth.stopTimeout 60s`",
        berth_core::duration::show(*.0)
    )]
    FlushTimedOut(std::time::Duration),
    /// The sync loop's own answer to a flush (a round failed, or syncing is held).
    #[error("{0}")]
    Sync(String),
}

/// What kept a pairing from being recorded.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
