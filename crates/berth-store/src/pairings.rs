//! Pairings and their intent journals. The JSON columns hold `berth_core::pairing` values (the
//! state, each intent); the store checks only that they are JSON.
//!
//! The journal is what crash recovery trusts: an intent is appended *before* the daemon acts on
//! it and marked done after, so the newest intent of a pairing that is not done is the step a
//! crash interrupted. The pairing row's `state` is what `pair status` shows between the two.
//! Journal sequence numbers come from one `AUTOINCREMENT` counter: they increase, are never
//! reused, and order a pairing's intents.

use rusqlite::{OptionalExtension, Transaction, params};

use crate::{Store, StoreError};

/// One pairing: the link between a project's checkout and one agent, from start to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingRecord {
    pub id: String,
    /// The project's root (the user's checkout).
    pub project_root: String,
    pub agent: String,
    /// `berth_core::pairing::State` as JSON.
    pub state: String,
    /// The branch the checkout was on before pairing (`None`: a detached HEAD).
    pub original_branch: Option<String>,
    /// The commit the checkout was on before pairing.
    pub original_head: Option<String>,
    /// Where `refs/heads/berth/<agent>` pointed before the start mirrored it (`None`: it did
    /// not exist), so a rollback can put it back.
    pub mirror_before: Option<String>,
    /// The snapshot holding the user's uncommitted state (`None`: nothing to keep).
    pub snapshot: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// When it ended; `None` while open. At most one pairing per project is open.
    pub ended_ms: Option<i64>,
}

/// One journal entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentRecord {
    pub seq: u64,
    pub pairing: String,
    /// `berth_core::pairing::Intent` as JSON.
    pub intent: String,
    pub time_ms: i64,
    /// When it was marked done; `None`: not (yet) carried out completely.
    pub done_ms: Option<i64>,
}

impl IntentRecord {
    pub fn done(&self) -> bool {
        self.done_ms.is_some()
    }
}

const PAIRING: &str = "SELECT id, project, agent, state, original_branch, original_head,
                              mirror_before, snapshot, created_ms, updated_ms, ended_ms
                       FROM pairings";

const INTENT: &str = "SELECT seq, pairing, intent, time_ms, done_ms FROM pairing_journal";

fn pairing_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PairingRecord> {
    Ok(PairingRecord {
        id: r.get(0)?,
        project_root: r.get(1)?,
        agent: r.get(2)?,
        state: r.get(3)?,
        original_branch: r.get(4)?,
        original_head: r.get(5)?,
        mirror_before: r.get(6)?,
        snapshot: r.get(7)?,
        created_ms: r.get(8)?,
        updated_ms: r.get(9)?,
        ended_ms: r.get(10)?,
    })
}

fn intent_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IntentRecord> {
    let seq: i64 = r.get(0)?;
    Ok(IntentRecord {
        seq: u64::try_from(seq).unwrap_or(0),
        pairing: r.get(1)?,
        intent: r.get(2)?,
        time_ms: r.get(3)?,
        done_ms: r.get(4)?,
    })
}

fn insert_pairing(tx: &Transaction<'_>, p: &PairingRecord) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT INTO pairings (id, project, agent, state, original_branch, original_head,
                               mirror_before, snapshot, created_ms, updated_ms, ended_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            p.id,
            p.project_root,
            p.agent,
            p.state,
            p.original_branch,
            p.original_head,
            p.mirror_before,
            p.snapshot,
            p.created_ms,
            p.updated_ms,
            p.ended_ms
        ],
    )
}

fn has_open(tx: &Transaction<'_>, project_root: &str) -> rusqlite::Result<bool> {
    tx.query_row(
        "SELECT 1 FROM pairings WHERE project = ?1 AND ended_ms IS NULL",
        params![project_root],
        |_| Ok(()),
    )
    .optional()
    .map(|r| r.is_some())
}

impl Store {
    fn check_json(&self, text: &str) -> Result<(), StoreError> {
        self.json::<serde_json::Value>(text).map(drop)
    }

    /// Records a new pairing; `false` (and nothing written) if its project already has an open
    /// one — the caller reports `pairing_busy`.
    pub fn create_pairing(&self, p: &PairingRecord) -> Result<bool, StoreError> {
        self.check_json(&p.state)?;
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql(e))?;
        if p.ended_ms.is_none() && has_open(&tx, &p.project_root).map_err(|e| self.sql(e))? {
            return Ok(false);
        }
        insert_pairing(&tx, p).map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(true)
    }

    /// Ends pairing `old` (with its final state) and opens `new` for the same project in one
    /// transaction (`old` ends at `new.created_ms`): a switch to another agent. `false` (nothing
    /// written) if `old` is not an open pairing of `new`'s project.
    pub fn hand_over_pairing(
        &self,
        old: &str,
        old_state: &str,
        new: &PairingRecord,
    ) -> Result<bool, StoreError> {
        self.check_json(old_state)?;
        self.check_json(&new.state)?;
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql(e))?;
        let ended = tx
            .execute(
                "UPDATE pairings SET state = ?2, updated_ms = ?3, ended_ms = ?3
                 WHERE id = ?1 AND project = ?4 AND ended_ms IS NULL",
                params![old, old_state, new.created_ms, new.project_root],
            )
            .map_err(|e| self.sql(e))?;
        if ended == 0 {
            return Ok(false);
        }
        insert_pairing(&tx, new).map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(true)
    }

    /// Writes a pairing's changing fields (state, original branch and head, mirror, snapshot,
    /// updated and ended times); `false` if there is no such pairing.
    pub fn update_pairing(&self, p: &PairingRecord) -> Result<bool, StoreError> {
        self.check_json(&p.state)?;
        let n = self
            .conn()
            .execute(
                "UPDATE pairings SET state = ?2, original_branch = ?3, original_head = ?4,
                     mirror_before = ?5, snapshot = ?6, updated_ms = ?7, ended_ms = ?8
                 WHERE id = ?1",
                params![
                    p.id,
                    p.state,
                    p.original_branch,
                    p.original_head,
                    p.mirror_before,
                    p.snapshot,
                    p.updated_ms,
                    p.ended_ms
                ],
            )
            .map_err(|e| self.sql(e))?;
        Ok(n > 0)
    }

    /// Sets a pairing's state; `false` if there is no such pairing.
    pub fn set_pairing_state(
        &self,
        id: &str,
        state: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.check_json(state)?;
        let n = self
            .conn()
            .execute(
                "UPDATE pairings SET state = ?2, updated_ms = ?3 WHERE id = ?1",
                params![id, state, now_ms],
            )
            .map_err(|e| self.sql(e))?;
        Ok(n > 0)
    }

    /// Ends an open pairing with its final state; `false` if it is not open.
    pub fn end_pairing(&self, id: &str, state: &str, now_ms: i64) -> Result<bool, StoreError> {
        self.check_json(state)?;
        let n = self
            .conn()
            .execute(
                "UPDATE pairings SET state = ?2, updated_ms = ?3, ended_ms = ?3
                 WHERE id = ?1 AND ended_ms IS NULL",
                params![id, state, now_ms],
            )
            .map_err(|e| self.sql(e))?;
        Ok(n > 0)
    }

    pub fn pairing(&self, id: &str) -> Result<Option<PairingRecord>, StoreError> {
        self.query_one(
            &format!("{PAIRING} WHERE id = ?1"),
            params![id],
            pairing_row,
        )
    }

    /// The open pairing of a project, if any.
    pub fn open_pairing(&self, project_root: &str) -> Result<Option<PairingRecord>, StoreError> {
        self.query_one(
            &format!("{PAIRING} WHERE project = ?1 AND ended_ms IS NULL"),
            params![project_root],
            pairing_row,
        )
    }

    /// Every open pairing (what the daemon recovers on start), by project.
    pub fn open_pairings(&self) -> Result<Vec<PairingRecord>, StoreError> {
        self.query_all(
            &format!("{PAIRING} WHERE ended_ms IS NULL ORDER BY project"),
            [],
            pairing_row,
        )
    }

    /// Every pairing of a project, oldest first.
    pub fn pairings(&self, project_root: &str) -> Result<Vec<PairingRecord>, StoreError> {
        self.query_all(
            &format!("{PAIRING} WHERE project = ?1 ORDER BY created_ms, id"),
            params![project_root],
            pairing_row,
        )
    }

    /// Appends an intent to a pairing's journal, before acting on it; returns its sequence
    /// number.
    pub fn append_intent(
        &self,
        pairing: &str,
        intent: &str,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        self.check_json(intent)?;
        let conn = self.conn();
        conn.execute(
            "INSERT INTO pairing_journal (pairing, intent, time_ms) VALUES (?1, ?2, ?3)",
            params![pairing, intent, now_ms],
        )
        .map_err(|e| self.sql(e))?;
        Ok(u64::try_from(conn.last_insert_rowid()).unwrap_or(0))
    }

    /// Marks an intent carried out; `false` if there is no such intent or it was done already.
    pub fn mark_intent_done(&self, seq: u64, now_ms: i64) -> Result<bool, StoreError> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        let n = self
            .conn()
            .execute(
                "UPDATE pairing_journal SET done_ms = ?2 WHERE seq = ?1 AND done_ms IS NULL",
                params![seq, now_ms],
            )
            .map_err(|e| self.sql(e))?;
        Ok(n > 0)
    }

    /// The newest intent of a pairing, done or not (what recovery starts from).
    pub fn last_intent(&self, pairing: &str) -> Result<Option<IntentRecord>, StoreError> {
        self.query_one(
            &format!("{INTENT} WHERE pairing = ?1 ORDER BY seq DESC LIMIT 1"),
            params![pairing],
            intent_row,
        )
    }

    /// The newest intent of a pairing that is not done: what a crash interrupted.
    pub fn unfinished_intent(&self, pairing: &str) -> Result<Option<IntentRecord>, StoreError> {
        self.query_one(
            &format!("{INTENT} WHERE pairing = ?1 AND done_ms IS NULL ORDER BY seq DESC LIMIT 1"),
            params![pairing],
            intent_row,
        )
    }

    /// A pairing's whole journal, oldest first.
    pub fn journal(&self, pairing: &str) -> Result<Vec<IntentRecord>, StoreError> {
        self.query_all(
            &format!("{INTENT} WHERE pairing = ?1 ORDER BY seq"),
            params![pairing],
            intent_row,
        )
    }
}
