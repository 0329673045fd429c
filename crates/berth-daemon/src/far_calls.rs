//! The calls the daemon makes to the far side of an agent elsewhere (SPEC §10.4) and their
//! answers: plain serde types (JSON inside the protocol's opaque `Host` frames), since both ends
//! are this crate. The far side's handling of them is [`crate::far`]; the daemon's end makes
//! them through an agent's `Link` (`crate::agents`), pairing (`crate::pairing::far_side`), the
//! keeper socket (`crate::keeper_socket`) and turns (`crate::far_turns`).

use berth_core::probe::ProbeSpec;
use berth_supervisor::keeper::control::Request;
use berth_supervisor::keeper::spec::KeeperSpec;
use serde::{Deserialize, Serialize};

/// The bundle the daemon copies over to make the workspace from.
pub const INCOMING: &str = ".berth-incoming.bundle";
/// The bundle the far side makes of the agent's commits for the daemon to fetch.
pub const OUTGOING: &str = ".berth-outgoing.bundle";
/// The end of a turn's output log brought back ([`Call::TurnEnd`]): the daemon keeps the last
/// `OUTPUT_SLICE_BYTES` of its text, and records carry a prefix.
pub const TURN_OUTPUT: u64 = 2 * berth_core::inbox::OUTPUT_SLICE_BYTES as u64;

/// What the daemon asks of the far side.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Call {
    /// Clone the workspace from [`INCOMING`], on `branch`.
    Clone { branch: String },
    /// Start the agent under a keeper (its working directory: the workspace).
    Start { spec: KeeperSpec },
    /// How the keeper is, and its output log from byte `log_from` on.
    Look { log_from: u64 },
    /// Stop the agent (the keeper's own stop, as locally).
    Stop {
        grace_ms: Option<u64>,
        timeout_ms: u64,
    },
    /// The workspace's uncommitted paths.
    Dirty,
    /// Save the workspace as snapshot `id` (kept in the workspace's refs).
    Snapshot {
        id: String,
        time_ms: i64,
        reason: String,
    },
    /// Make [`OUTGOING`]: a bundle of those of `refs` (the agent's branch, snapshots) that are
    /// not at `have` (a commit the project holds), leaving out the history `have` already
    /// reaches when it can. Answered `Bundled` with the refs it holds, or `UpToDate` when
    /// every ref is at `have` (no bundle is made then).
    Bundle {
        refs: Vec<String>,
        have: Option<String>,
    },
    /// Remove the workspace and the keeper's files.
    Remove,
    /// Answered at once: the link's round trip (pairing's latency).
    Ping,
    /// Pairing: what git shows in the workspace about `branch_ref` (`refs/heads/berth/<name>`).
    PairLook { branch_ref: String },
    /// Pairing's gate on this side: whether the workspace is on `branch_ref` with nothing in
    /// progress, and git not busy rewriting its index.
    Gate { branch_ref: String },
    /// Passes `request` to the keeper's control socket there (a terminal agent's `screen` and
    /// `input`), waiting at most `timeout_ms` for its answer: `Keeper` with the answer's JSON as
    /// the keeper wrote it, or `KeeperGone` when its socket does not answer (it ended).
    Keeper { request: Request, timeout_ms: u64 },
    /// One attempt of a readiness probe there (`exec` in the workspace, `tcp` and `http` from
    /// there), bounded by its own timeout: answered `Probed`.
    Probe { probe: ProbeSpec },
    /// A turn agent's turn: runs `spec`'s command under a keeper of its own (its files in
    /// `turns/<turn>/`) in the workspace, `message` on its standard input and in
    /// `$BERTH_MESSAGE_FILE`. Answered `Look` once the keeper reported.
    TurnStart {
        turn: i64,
        spec: KeeperSpec,
        message: Vec<u8>,
    },
    /// How turn `turn`'s keeper is (`Look`, without its log).
    TurnLook { turn: i64 },
    /// Stops turn `turn` (its keeper's own stop): `Stopped`.
    TurnStop { turn: i64 },
    /// The end of turn `turn`'s output log (at most [`TURN_OUTPUT`] bytes), its files removed
    /// there: `Look` with the log.
    TurnEnd { turn: i64 },
    /// Pairing: the user's commits, in [`INCOMING`], to `branch_ref` there — its objects
    /// fetched, then the branch moved from `from` to `to` by fast-forward only (compare and
    /// swap), the index following when it is checked out. The working tree is sync's business.
    Advance {
        branch_ref: String,
        from: String,
        to: String,
    },
}

/// What git shows in an agent's workspace there, as pairing reads it ([`Call::PairLook`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairLook {
    /// The workspace exists (a git worktree).
    pub workspace: bool,
    /// The branch HEAD names, in full (`None`: a detached HEAD).
    pub on: Option<String>,
    /// Where the branch asked about is (`None`: it does not exist).
    pub tip: Option<String>,
    /// A merge, rebase, … stopped in the workspace.
    pub operation: Option<berth_core::pairing::Operation>,
}

/// How the keeper is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeeperLook {
    /// It was never started (or its files are gone).
    NotStarted,
    Alive {
        pid: Option<u32>,
        started_ms: i64,
    },
    /// Everything it kept ended.
    Done {
        code: Option<i32>,
        success: bool,
    },
    /// It is gone without saying it was done.
    Vanished,
}

/// What the far side answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Answer {
    Done,
    Look {
        keeper: KeeperLook,
        /// New bytes of the output log (from `log_from`, or from 0 if the log is shorter now).
        log: Vec<u8>,
    },
    /// Every ref asked for is at `have`: nothing to bring.
    UpToDate,
    /// [`OUTGOING`] is made, holding these refs.
    Bundled(Vec<String>),
    Stopped {
        killed: bool,
        code: Option<i32>,
    },
    Dirty(Vec<String>),
    PairLook(PairLook),
    /// The gate there: `closed` with why, or `busy` (git is rewriting the index), or open.
    Gate {
        closed: Option<String>,
        busy: bool,
    },
    /// Whether [`Call::Probe`]'s attempt passed.
    Probed {
        passed: bool,
    },
    /// The keeper's answer to [`Call::Keeper`], as it wrote it.
    Keeper(serde_json::Value),
    /// The keeper's socket did not answer [`Call::Keeper`] (the keeper ended): what was seen.
    KeeperGone(String),
}
