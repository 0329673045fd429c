//! Snapshots of uncommitted work (`berth stash`).

use serde::{Deserialize, Serialize};

/// Body of `POST /v1/stash/save`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StashSave {
    /// Absolute path inside the repository (its top level is found from it).
    pub repo: String,
    #[serde(default)]
    pub message: Option<String>,
}

/// Body of `POST /v1/stash/show|restore|drop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StashTarget {
    pub repo: String,
    pub id: String,
}

/// Body of `POST /v1/stash/list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StashRepo {
    pub repo: String,
}

/// What a snapshot records about itself: in the database, in the snapshot commit's message
/// (`berth_git::snapshot::meta`) and on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub id: String,
    /// The branch checked out at capture (full ref), `None` when HEAD was detached.
    pub branch: Option<String>,
    /// HEAD's commit at capture, `None` on an unborn branch.
    pub head: Option<String>,
    pub time_ms: i64,
    pub reason: String,
    pub message: Option<String>,
    pub pairing: Option<String>,
}

/// A snapshot: what it records about itself, where it is, and what berth knows of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    #[serde(flatten)]
    pub meta: SnapshotMeta,
    /// The repository's top level.
    pub repo: String,
    /// The snapshot commit (`refs/berth/stash/<id>`).
    pub commit: String,
    /// What could not be captured exactly.
    pub warnings: Vec<String>,
    /// Whether berth's database knew it (`false`: found from the refs alone).
    pub recorded: bool,
}

/// Answer to `POST /v1/stash/list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotList {
    pub snapshots: Vec<SnapshotInfo>,
    /// Recorded as kept in the database, but their ref is gone (deleted by hand).
    pub missing: Vec<String>,
}

/// One path a snapshot changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    /// `A`dded, `M`odified, `D`eleted, `T`ype changed.
    pub status: String,
    pub path: String,
}

/// Answer to `POST /v1/stash/show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotDetail {
    pub snapshot: SnapshotInfo,
    /// Index against HEAD.
    pub staged: Vec<FileChange>,
    /// Working tree against the index (untracked files included).
    pub unstaged: Vec<FileChange>,
}

/// Answer to `POST /v1/stash/restore`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreResult {
    pub snapshot: SnapshotInfo,
    /// The branch checked out again, `None` for a detached HEAD.
    pub branch: Option<String>,
    /// Set when the branch had moved and the snapshot was applied on its new tip.
    pub onto_moved_branch: Option<String>,
}
