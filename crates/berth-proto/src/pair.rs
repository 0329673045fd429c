//! Pairing (`berth pair`).

use serde::{Deserialize, Serialize};

/// Body of `POST /v1/pair/start`: pair the checkout with an agent, or switch to it while paired
/// with another. Answered once the start has finished (active) or was undone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairStart {
    /// Absolute path inside the checkout.
    pub repo: String,
    pub agent: String,
    /// Refuse (`dirty_no_stash`) instead of keeping uncommitted changes in a snapshot.
    #[serde(default)]
    pub no_stash: bool,
}

/// Body of `POST /v1/pair/status|flush|stop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairRepo {
    pub repo: String,
}

/// A reason pairing is paused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairNotice {
    /// Stable code (`user_switched_branch`, `diverged`, `disk_full`, …).
    pub code: String,
    /// `user` or `agent`, when the notice is about one side.
    pub side: Option<String>,
    /// What happened and how pairing resumes.
    pub message: String,
}

/// A conflict whose losing (agent) version berth kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairConflict {
    /// `refs/berth/conflicts/<pairing>/<n>` in the agent's workspace.
    pub refname: String,
    pub path: String,
    pub time_ms: i64,
}

/// Edit-to-identical latency of recent rounds, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairLatency {
    pub samples: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The link to an agent elsewhere, as pairing measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairLink {
    /// Where the agent runs (its `--on` URL).
    pub on: String,
    /// A request's round trip to the far side and back (the median of the last few), in
    /// milliseconds; `None` until one went through.
    pub latency_ms: Option<f64>,
    /// Bytes per second of the last transfer of at least 64 KiB over the link (a file's
    /// content or a bundle of commits, either way); `None` until there was one.
    pub bandwidth_bps: Option<u64>,
    /// Bytes of files' contents and commits carried to the agent's side, and from it.
    pub bytes_to_agent: u64,
    pub bytes_to_user: u64,
}

/// Answer to `POST /v1/pair/status` (and to a start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairStatus {
    /// The checkout's top level.
    pub repo: String,
    /// `off`, `starting`, `rolling_back`, `active`, `paused` or `stopping`.
    pub state: String,
    /// One line: `active (idle)`, `starting (snapshot)`, `paused (2 notices)`.
    pub describe: String,
    /// The step under way, `start.snapshot` and the like.
    pub step: Option<String>,
    pub pairing: Option<String>,
    pub agent: Option<String>,
    /// `berth/<agent>`.
    pub branch: Option<String>,
    pub agent_workspace: Option<String>,
    /// The branch the checkout was on before pairing (`None`: detached HEAD or not paired).
    pub original_branch: Option<String>,
    /// The snapshot that holds the uncommitted state from before pairing.
    pub snapshot: Option<String>,
    pub notices: Vec<PairNotice>,
    pub conflicts: Vec<PairConflict>,
    /// Recent warnings: files not synced (over the size limit, not a file, link or directory,
    /// unreadable).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// When both sides last agreed (ms since the epoch).
    pub last_sync_ms: Option<i64>,
    pub latency: Option<PairLatency>,
    /// Changes applied since pairing started: into the checkout, into the agent's workspace.
    pub to_user: u64,
    pub to_agent: u64,
    /// Commits carried: agent → checkout, checkout → agent.
    pub commits_to_user: u64,
    pub commits_to_agent: u64,
    /// With an agent elsewhere: the link's figures.
    #[serde(default)]
    pub link: Option<PairLink>,
}

impl PairStatus {
    /// The status of a checkout that is not paired.
    pub fn off(repo: &str) -> PairStatus {
        PairStatus {
            repo: repo.to_string(),
            state: "off".into(),
            describe: "off".into(),
            step: None,
            pairing: None,
            agent: None,
            branch: None,
            agent_workspace: None,
            original_branch: None,
            snapshot: None,
            notices: vec![],
            conflicts: vec![],
            warnings: vec![],
            last_sync_ms: None,
            latency: None,
            to_user: 0,
            to_agent: 0,
            commits_to_user: 0,
            commits_to_agent: 0,
            link: None,
        }
    }
}

/// Answer to `POST /v1/pair/flush`: both sides agree now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairFlushed {
    pub to_user: u64,
    pub to_agent: u64,
    pub conflicts: u64,
    pub took_ms: u64,
}

/// Answer to `POST /v1/pair/stop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairStopped {
    pub pairing: String,
    pub agent: String,
    /// `stopped` (back on the original branch, snapshot restored), `left_as_is` (stopped
    /// while paused: nothing changed), `rolled_back` (a start undone), `stop_incomplete` or
    /// `rollback_incomplete` (a step failed; the rest was not attempted).
    pub outcome: String,
    /// Whether the checkout holds the user's pre-pairing state again.
    pub restored: bool,
    /// The snapshot that still holds the pre-pairing state, when it was not restored.
    pub snapshot: Option<String>,
    /// What happened, and what to do when something is left.
    pub message: String,
}

/// `POST /v1/pair/leftovers`: the lines pairing added to repositories' `info/exclude` that are
/// still there although no pairing of their checkout is open (a daemon that died as a pairing
/// ended); `fix`: take them out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairLeftoversRequest {
    pub fix: bool,
}

/// Answer to `POST /v1/pair/leftovers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairLeftovers {
    pub lines: Vec<PairLeftover>,
}

/// One line berth left behind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairLeftover {
    /// The `info/exclude` file.
    pub path: String,
    /// The checkout whose pairing added it.
    pub project: String,
    /// Taken out (only when asked to fix).
    pub removed: bool,
    /// Why it could not be taken out.
    pub error: Option<String>,
}

/// Body of `POST /v1/pair/conflict`: one kept conflict of the checkout's pairing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairConflictRequest {
    pub repo: String,
    /// As `pair status` lists it.
    pub refname: String,
}

/// Answer to `POST /v1/pair/conflict`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairConflictDiff {
    pub refname: String,
    pub path: String,
    /// Unified diff: `-` lines the agent's kept version, `+` lines the file now.
    pub diff: String,
}
