//! Turns: every attempt to deliver an inbox item, recorded before it starts and completed when
//! it ends. A turn's start and its item's move to `delivering` are one transaction, and so are
//! its end and its item's final state, so after a crash the store never says a turn ran that
//! did not, nor that an item is finished while its turn is still `running`.

use rusqlite::{OptionalExtension, params};

use crate::{Store, StoreError};

/// One turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnRecord {
    pub id: i64,
    pub item_id: i64,
    pub project_id: i64,
    pub agent: String,
    /// 1 for the item's first turn.
    pub attempt: u32,
    /// What the item came from (`message`).
    pub trigger: String,
    /// `turn` (a run of the turn command) or `type` (typed into a terminal).
    pub mode: String,
    /// `running`, `done`, `failed`, `timed_out` or `interrupted`.
    pub status: String,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub exit_code: Option<i32>,
    /// What went wrong, when something did.
    pub error: Option<String>,
    /// The end of its output (bounded).
    pub output: String,
    /// The agent's branch before and after it.
    pub commit_before: Option<String>,
    pub commit_after: Option<String>,
}

/// A turn about to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTurn<'a> {
    pub item_id: i64,
    pub trigger: &'a str,
    pub mode: &'a str,
    pub started_ms: i64,
    pub commit_before: Option<&'a str>,
}

/// How a turn ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnEnd<'a> {
    pub status: &'a str,
    pub ended_ms: i64,
    pub exit_code: Option<i32>,
    pub error: Option<&'a str>,
    pub output: &'a str,
    pub commit_after: Option<&'a str>,
    /// The item's new state when this ends it (`done`, `failed`); `None`: it stays
    /// `delivering` for another attempt.
    pub item_state: Option<&'a str>,
}

const SELECT: &str = "SELECT id, item_id, project_id, agent, attempt, trigger, mode, status,
                             started_ms, ended_ms, exit_code, error, output, commit_before,
                             commit_after FROM turns";

fn turn(r: &rusqlite::Row<'_>) -> rusqlite::Result<TurnRecord> {
    Ok(TurnRecord {
        id: r.get(0)?,
        item_id: r.get(1)?,
        project_id: r.get(2)?,
        agent: r.get(3)?,
        attempt: r.get(4)?,
        trigger: r.get(5)?,
        mode: r.get(6)?,
        status: r.get(7)?,
        started_ms: r.get(8)?,
        ended_ms: r.get(9)?,
        exit_code: r.get(10)?,
        error: r.get(11)?,
        output: r.get(12)?,
        commit_before: r.get(13)?,
        commit_after: r.get(14)?,
    })
}

impl Store {
    /// Records the start of a turn of an item that is `queued` or `delivering`, moving it to
    /// `delivering` and counting the attempt. `None` when the item is in neither state (it was
    /// cancelled meanwhile): nothing is recorded then.
    pub fn begin_turn(&self, new: &NewTurn<'_>) -> Result<Option<TurnRecord>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql(e))?;
        let moved = tx
            .execute(
                "UPDATE inbox SET state = 'delivering', attempts = attempts + 1, updated_ms = ?2
                 WHERE id = ?1 AND state IN ('queued', 'delivering')",
                params![new.item_id, new.started_ms],
            )
            .map_err(|e| self.sql(e))?;
        if moved == 0 {
            return Ok(None);
        }
        tx.execute(
            "INSERT INTO turns (item_id, project_id, agent, attempt, trigger, mode, status, started_ms, commit_before)
             SELECT id, project_id, agent, attempts, ?2, ?3, 'running', ?4, ?5 FROM inbox WHERE id = ?1",
            params![
                new.item_id,
                new.trigger,
                new.mode,
                new.started_ms,
                new.commit_before
            ],
        )
        .map_err(|e| self.sql(e))?;
        let id = tx.last_insert_rowid();
        let rec = tx
            .query_row(&format!("{SELECT} WHERE id = ?1"), params![id], turn)
            .map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(Some(rec))
    }

    /// Records how a running turn ended, and its item's new state with it. Returns the turn as
    /// recorded; a turn that had already ended is left as it was.
    pub fn end_turn(&self, id: i64, end: &TurnEnd<'_>) -> Result<Option<TurnRecord>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql(e))?;
        let ended = tx
            .execute(
                "UPDATE turns SET status = ?2, ended_ms = ?3, exit_code = ?4, error = ?5, output = ?6,
                                  commit_after = ?7
                 WHERE id = ?1 AND status = 'running'",
                params![
                    id,
                    end.status,
                    end.ended_ms,
                    end.exit_code,
                    end.error,
                    end.output,
                    end.commit_after
                ],
            )
            .map_err(|e| self.sql(e))?;
        if ended == 1
            && let Some(state) = end.item_state
        {
            tx.execute(
                "UPDATE inbox SET state = ?2, updated_ms = ?3
                 WHERE id = (SELECT item_id FROM turns WHERE id = ?1) AND state = 'delivering'",
                params![id, state, end.ended_ms],
            )
            .map_err(|e| self.sql(e))?;
        }
        let rec = tx
            .query_row(&format!("{SELECT} WHERE id = ?1"), params![id], turn)
            .optional()
            .map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(rec)
    }

    pub fn turn(&self, id: i64) -> Result<Option<TurnRecord>, StoreError> {
        self.query_one(&format!("{SELECT} WHERE id = ?1"), params![id], turn)
    }

    /// The newest turn of an item.
    pub fn last_turn(&self, item_id: i64) -> Result<Option<TurnRecord>, StoreError> {
        self.query_one(
            &format!("{SELECT} WHERE item_id = ?1 ORDER BY id DESC LIMIT 1"),
            params![item_id],
            turn,
        )
    }

    /// An agent's newest `limit` turns, oldest first.
    pub fn turns(
        &self,
        project_id: i64,
        agent: &str,
        limit: usize,
    ) -> Result<Vec<TurnRecord>, StoreError> {
        let mut rows = self.query_all(
            &format!("{SELECT} WHERE project_id = ?1 AND agent = ?2 ORDER BY id DESC LIMIT ?3"),
            params![project_id, agent, i64::try_from(limit).unwrap_or(i64::MAX)],
            turn,
        )?;
        rows.reverse();
        Ok(rows)
    }
}
