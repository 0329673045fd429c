//! The history of snapshots (`berth stash`). The `refs/berth/stash/*` refs in each repository
//! are the truth about which snapshots exist; these rows add what happened to them.

use berth_proto::{SnapshotInfo, SnapshotMeta};
use rusqlite::params;

use crate::{Store, StoreError, columns};

/// What became of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotState {
    /// Its ref exists; it can be restored.
    Kept,
    Restored,
    Dropped,
}

impl SnapshotState {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotState::Kept => "kept",
            SnapshotState::Restored => "restored",
            SnapshotState::Dropped => "dropped",
        }
    }

    fn parse(s: &str) -> SnapshotState {
        match s {
            "restored" => SnapshotState::Restored,
            "dropped" => SnapshotState::Dropped,
            _ => SnapshotState::Kept,
        }
    }
}

/// A recorded snapshot and what became of it.
pub type Recorded = (SnapshotInfo, SnapshotState);

type Row = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
);

const SELECT: &str = "SELECT repo, id, commit_id, branch, head, time_ms, reason, message, pairing,
                             warnings, state
                      FROM snapshots";

impl Store {
    /// Records a snapshot just taken (or found in the refs without a record) as kept.
    pub fn record_snapshot(&self, r: &SnapshotInfo) -> Result<(), StoreError> {
        let warnings =
            serde_json::to_string(&r.warnings).map_err(|source| StoreError::BadData {
                path: self.path().into(),
                source,
            })?;
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO snapshots
                 (repo, id, commit_id, branch, head, time_ms, reason, message, pairing, warnings, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    r.repo, r.meta.id, r.commit, r.meta.branch, r.meta.head, r.meta.time_ms,
                    r.meta.reason, r.meta.message, r.meta.pairing, warnings, SnapshotState::Kept.as_str()
                ],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Marks a snapshot restored or dropped; `false` if it was not recorded.
    pub fn end_snapshot(
        &self,
        repo: &str,
        id: &str,
        state: SnapshotState,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute(
                "UPDATE snapshots SET state = ?3, ended_ms = ?4 WHERE repo = ?1 AND id = ?2",
                params![repo, id, state.as_str(), at_ms],
            )
            .map_err(|e| self.sql(e))?;
        Ok(n > 0)
    }

    /// One recorded snapshot.
    pub fn snapshot(&self, repo: &str, id: &str) -> Result<Option<Recorded>, StoreError> {
        let sql = format!("{SELECT} WHERE repo = ?1 AND id = ?2");
        let row = self.query_one(&sql, params![repo, id], columns)?;
        row.map(|row| self.decode(row)).transpose()
    }

    /// All recorded snapshots of a repository, oldest first.
    pub fn snapshots(&self, repo: &str) -> Result<Vec<Recorded>, StoreError> {
        let sql = format!("{SELECT} WHERE repo = ?1 ORDER BY time_ms, id");
        let rows = self.query_all(&sql, params![repo], columns)?;
        rows.into_iter().map(|row| self.decode(row)).collect()
    }

    fn decode(&self, row: Row) -> Result<Recorded, StoreError> {
        let (repo, id, commit, branch, head, time_ms, reason, message, pairing, warnings, state) =
            row;
        let warnings = self.json(&warnings)?;
        let info = SnapshotInfo {
            meta: SnapshotMeta {
                id,
                branch,
                head,
                time_ms,
                reason,
                message,
                pairing,
            },
            repo,
            commit,
            warnings,
            recorded: true,
        };
        Ok((info, SnapshotState::parse(&state)))
    }
}
