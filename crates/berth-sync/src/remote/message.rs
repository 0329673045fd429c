//! The protocol's messages. The client (the daemon's side) sends [`Request`]s, strictly one
//! after another; the endpoint answers each with one or more [`Response`]s, and sends
//! [`Response::Event`]s of its watch whenever they happen, between any two frames.
//!
//! Which responses answer which request:
//!
//! | request | answer |
//! | --- | --- |
//! | `Hello` (after the endpoint's own `Hello`) | `Done`, or `Failed` (root missing, protocol) |
//! | `Full`, `Under` | `Entries`… then `Scanned` (the warnings), or `Failed` |
//! | `Read` | `Chunk`… then `End` (digest of all chunks), or `Failed` (also after chunks) |
//! | `Apply`; for a file then `Chunk`… and `End` or `Abort` | `Applied`, or `Failed` |
//! | `RootIsEmpty` | `Empty` |
//! | `Exclude`, `ForgetRules`, `Watch`, `Heartbeat` | `Done`, or `Failed` |
//! | `GitFacts` | `GitFacts` |
//! | `Host` (protocol 3) | `Host`, or `Failed` |
//!
//! Once the handshake is done, the endpoint also sends `Alive` every [`ALIVE_EVERY`], between
//! any two frames, whatever it is doing: a far side from which nothing at all comes for a while
//! (a frozen host, a paused container) has stopped answering, and the client says so instead of
//! waiting for ever.
//!
//! Changing a message's shape changes [`PROTOCOL`]; both ends refuse a peer of another one. So
//! does a new kind of `Host` request: what the far side's host understands is part of the
//! protocol, and a peer that would not understand a request is refused at the hello, with what
//! to do, rather than failing halfway through the work that needed it.
//!
//! Versions: 2 added `Alive`; 3 added `Host`; 4 added the host requests of pairing with an
//! agent elsewhere (what git shows in its workspace, its gate, the user's commits moved there:
//! `berth_daemon::far_calls::Call::{Ping, PairLook, Gate, Advance}`); 5 added the keeper's own
//! requests passed to it there (`Call::Keeper`: a terminal agent's screen and input elsewhere)
//! and readiness probes run there (`Call::Probe`).

use serde::{Deserialize, Serialize};

use crate::apply::ApplyError;
use crate::reconcile::Entry;
use crate::relpath::RelPath;
use crate::scan::{ScanError, Warning};

/// The protocol's version: both ends must speak the same one.
pub const PROTOCOL: u32 = 5;

/// The version of berth speaking (told in the hellos, for messages).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How often the endpoint says it is alive ([`Response::Alive`]).
pub const ALIVE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Bytes of content per [`Response::Chunk`] or [`Request::Chunk`].
pub const CHUNK: usize = 256 * 1024;

/// Entries per [`Response::Entries`] of a scan.
pub const ENTRIES_PER_FRAME: usize = 1024;

/// What the client asks of the endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// The client's side of the handshake; files over `max_size` bytes are not synced.
    Hello {
        protocol: u32,
        version: String,
        max_size: u64,
    },
    /// The whole tree.
    Full,
    /// A path and everything below it.
    Under(RelPath),
    /// Whether the root is gone or holds nothing but `.git`.
    RootIsEmpty,
    /// Extra exclusions (gitignore syntax).
    Exclude(Vec<String>),
    /// Forget the ignore rules read so far.
    ForgetRules,
    /// A file's content.
    Read(RelPath),
    /// Make `rel` hold `entry` (`None`: nothing). A file's content follows as chunks.
    Apply { rel: RelPath, entry: Option<Entry> },
    /// Content of the file being applied.
    Chunk(Vec<u8>),
    /// The end of the content; the blake3 digest of every chunk sent.
    End([u8; 32]),
    /// The content could not be read to the end: the apply must leave nothing behind.
    Abort(String),
    /// Start (or restart) watching the tree; events follow as [`Response::Event`].
    Watch,
    /// Send a heartbeat through the watch.
    Heartbeat,
    /// What the worktree's git dir holds: its `HEAD`, and when each of `names` (relative to
    /// the git dir: `MERGE_HEAD`, `index.lock`, …) last changed, if it exists.
    GitFacts { names: Vec<String> },
    /// Work for whoever runs the endpoint (the daemon's agents elsewhere: their keepers and
    /// workspaces), opaque to the sync engine: handed to the endpoint's [`super::Host`].
    Host(Vec<u8>),
}

/// What the endpoint sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The endpoint's side of the handshake, sent first, before any request.
    Hello { protocol: u32, version: String },
    /// The request was carried out.
    Done,
    /// A batch of a scan's entries.
    Entries(Vec<(RelPath, Entry)>),
    /// The end of a scan, with what it left out.
    Scanned(Vec<Warning>),
    /// Whether the root is empty.
    Empty(bool),
    /// Content of the file being read.
    Chunk(Vec<u8>),
    /// The end of the content; the blake3 digest of every chunk sent.
    End([u8; 32]),
    /// What the path now holds after an apply.
    Applied(Option<Entry>),
    /// The git facts asked for.
    GitFacts(GitFacts),
    /// The request failed.
    Failed(Fault),
    /// Something happened in the watched tree.
    Event(Event),
    /// The endpoint still runs (sent every [`ALIVE_EVERY`]).
    Alive,
    /// The answer of a [`Request::Host`].
    Host(Vec<u8>),
}

/// A watch's news.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// These paths changed (berth's own writes left out).
    Changed(Vec<RelPath>),
    /// Events were lost: only a full rescan can tell what changed.
    Overflow,
    /// Watching ran into a problem.
    WatchError(String),
    /// The heartbeat came through.
    Heartbeat,
}

/// Why a request failed, in terms the client turns back into the engine's errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Fault {
    /// A path that could leave the root.
    #[error("refusing the path {0:?}: it could leave the synced directory")]
    BadPath(String),
    /// An I/O error at `path` (its `errno`, when the system gave one, so a full disk on the far
    /// side pauses syncing as a local one does).
    #[error("{path}: {message}")]
    Io {
        path: String,
        errno: Option<i32>,
        message: String,
    },
    /// The tree could not be scanned.
    #[error("cannot scan {root}: {error}")]
    Scan { root: String, error: String },
    /// The request made no sense here (another protocol, a message out of turn).
    #[error("{0}")]
    Refused(String),
}

/// What a worktree's git dir holds, as far as pairing reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitFacts {
    /// The git dir (`.git`, or where a `.git` file points); `None`: not a git worktree.
    pub git_dir: Option<String>,
    /// The content of `HEAD`.
    pub head: Option<String>,
    /// For each name asked about: when it last changed (ns since the epoch), if it exists.
    pub changed_ns: Vec<Option<i64>>,
}

impl Fault {
    /// An apply's error as it crosses the wire.
    pub fn of_apply(e: &ApplyError) -> Fault {
        match e {
            ApplyError::BadPath(p) => Fault::BadPath(p.clone()),
            ApplyError::Io { path, source } => Fault::Io {
                path: path.clone(),
                errno: source.raw_os_error(),
                message: source.to_string(),
            },
            other => Fault::Refused(other.to_string()),
        }
    }

    /// A scan's error as it crosses the wire.
    pub fn of_scan(e: ScanError) -> Fault {
        Fault::Scan {
            root: e.root,
            error: e.error,
        }
    }

    /// The engine's error for this fault of the endpoint `name`: an `errno` the far side gave
    /// stays one here, so a full disk there pauses syncing as a local one does.
    pub fn into_apply(self, name: &str) -> ApplyError {
        match self {
            Fault::BadPath(p) => ApplyError::BadPath(p),
            Fault::Io {
                path,
                errno,
                message,
            } => ApplyError::Io {
                path: format!("{name}: {path}"),
                source: match errno {
                    Some(n) => std::io::Error::from_raw_os_error(n),
                    None => std::io::Error::other(message),
                },
            },
            Fault::Scan { root, error } => ApplyError::Io {
                path: format!("{name}: {root}"),
                source: std::io::Error::other(error),
            },
            Fault::Refused(why) => ApplyError::Io {
                path: name.to_string(),
                source: std::io::Error::other(why),
            },
        }
    }

    /// The engine's scan error for this fault of the endpoint `name`.
    pub fn into_scan(self, name: &str) -> ScanError {
        match self {
            Fault::Scan { root, error } => ScanError {
                root: format!("{name} ({root})"),
                error,
            },
            other => ScanError {
                root: name.to_string(),
                error: other.to_string(),
            },
        }
    }
}
