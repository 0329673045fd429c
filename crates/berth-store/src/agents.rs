//! Projects (repositories berth was used in) and their agents' definitions. What an agent is
//! doing right now lives in its keeper's `state.json`; this is what it should be.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};

use crate::{Store, StoreError};

/// An agent's or a service's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    /// `agent` or `service`.
    pub kind: String,
    pub project_id: i64,
    pub project_root: String,
    pub name: String,
    pub command: Option<String>,
    /// The commit its workspace started from.
    pub base: String,
    /// `no`, `on-failure` or `always`.
    pub restart: String,
    pub env: BTreeMap<String, String>,
    /// Readiness probe (`ProbeSpec` as JSON); `None`: ready when started.
    pub ready: Option<String>,
    /// Liveness probe (`ProbeSpec` as JSON): failing, the process is killed and the restart
    /// policy decides.
    pub liveness: Option<String>,
    pub stop_signal: String,
    pub stop_grace_ms: u64,
    pub workspace: String,
    /// Whether it should be running (re-adopted or restarted after a daemon start).
    pub desired_running: bool,
    pub created_ms: i64,
    /// Runs under a pseudo-terminal its keeper owns.
    pub tty: bool,
    /// Lines of scrollback its keeper keeps (`None`: the default).
    pub scrollback: Option<u32>,
    /// A turn agent's turn command: run once per message of its inbox.
    pub turn: Option<String>,
    /// How long a turn may run (`None`: the default).
    pub turn_timeout_ms: Option<u64>,
    /// Where an agent elsewhere lives (`--on URL`); `None`: here, in `workspace`.
    pub remote: Option<String>,
}

const SELECT: &str = "SELECT a.project_id, p.root, a.name, a.command, a.base, a.restart, a.env,
                             a.workspace, a.desired, a.created_ms, a.ready, a.kind,
                             a.stop_signal, a.stop_grace_ms, a.liveness, a.tty, a.scrollback,
                             a.turn, a.turn_timeout_ms, a.remote
                      FROM agents a JOIN projects p ON p.id = a.project_id";

impl Store {
    /// The id of the project at `root`, registering it on first use.
    pub fn project_id(&self, root: &str, now_ms: i64) -> Result<i64, StoreError> {
        let conn = self.conn();
        let find = |conn: &rusqlite::Connection| {
            conn.prepare_cached("SELECT id FROM projects WHERE root = ?1")
                .and_then(|mut stmt| stmt.query_row(params![root], |r| r.get(0)).optional())
                .map_err(|e| self.sql(e))
        };
        // Nearly every request names a known project: a read, not a write transaction.
        if let Some(id) = find(&conn)? {
            return Ok(id);
        }
        conn.execute(
            "INSERT OR IGNORE INTO projects (root, created_ms) VALUES (?1, ?2)",
            params![root, now_ms],
        )
        .map_err(|e| self.sql(e))?;
        find(&conn)?.ok_or_else(|| self.sql(rusqlite::Error::QueryReturnedNoRows))
    }

    /// Every project's root, in order (projects are registered by their first agent or
    /// pairing).
    pub fn project_roots(&self) -> Result<Vec<String>, StoreError> {
        self.query_all("SELECT root FROM projects ORDER BY root", [], |r| r.get(0))
    }

    /// Adds a definition, or updates the command, policy, probe, stop and terminal settings of
    /// an existing one (its workspace and base never change).
    pub fn put_agent(&self, a: &AgentRecord) -> Result<(), StoreError> {
        let env = serde_json::to_string(&a.env).map_err(|source| StoreError::BadData {
            path: self.path().into(),
            source,
        })?;
        self.conn()
            .execute(
                "INSERT INTO agents (project_id, name, command, base, restart, env, workspace, desired, created_ms, ready,
                                     kind, stop_signal, stop_grace_ms, liveness, tty, scrollback, turn, turn_timeout_ms, remote)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)
                 ON CONFLICT (project_id, name) DO UPDATE SET
                     command = excluded.command, restart = excluded.restart, env = excluded.env,
                     ready = excluded.ready, kind = excluded.kind, stop_signal = excluded.stop_signal,
                     stop_grace_ms = excluded.stop_grace_ms, liveness = excluded.liveness,
                     tty = excluded.tty, scrollback = excluded.scrollback,
                     turn = excluded.turn, turn_timeout_ms = excluded.turn_timeout_ms",
                params![
                    a.project_id,
                    a.name,
                    a.command,
                    a.base,
                    a.restart,
                    env,
                    a.workspace,
                    if a.desired_running { "running" } else { "stopped" },
                    a.created_ms,
                    a.ready,
                    a.kind,
                    a.stop_signal,
                    i64::try_from(a.stop_grace_ms).unwrap_or(i64::MAX),
                    a.liveness,
                    a.tty,
                    a.scrollback,
                    a.turn,
                    a.turn_timeout_ms.map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
                    a.remote
                ],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    pub fn set_desired(
        &self,
        project_id: i64,
        name: &str,
        running: bool,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE agents SET desired = ?3 WHERE project_id = ?1 AND name = ?2",
                params![
                    project_id,
                    name,
                    if running { "running" } else { "stopped" }
                ],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Forgets an agent's definition, with its timers and webhooks (its inbox and turns stay:
    /// they are history).
    pub fn remove_agent(&self, project_id: i64, name: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql(e))?;
        for table in ["agents", "timers", "hooks"] {
            let column = if table == "agents" { "name" } else { "agent" };
            tx.execute(
                &format!("DELETE FROM {table} WHERE project_id = ?1 AND {column} = ?2"),
                params![project_id, name],
            )
            .map_err(|e| self.sql(e))?;
        }
        tx.commit().map_err(|e| self.sql(e))
    }

    pub fn agent(&self, project_id: i64, name: &str) -> Result<Option<AgentRecord>, StoreError> {
        let sql = format!("{SELECT} WHERE a.project_id = ?1 AND a.name = ?2");
        let row = self.query_one(&sql, params![project_id, name], row)?;
        row.map(|r| self.decode_agent(r)).transpose()
    }

    /// Agents of one project (`Some`) or of all projects, by name.
    pub fn agents(&self, project_id: Option<i64>) -> Result<Vec<AgentRecord>, StoreError> {
        let sql = format!("{SELECT} WHERE ?1 IS NULL OR a.project_id = ?1 ORDER BY p.root, a.name");
        let rows = self.query_all(&sql, params![project_id], row)?;
        rows.into_iter().map(|r| self.decode_agent(r)).collect()
    }

    /// Completes a row of [`SELECT`] with its environment, which is stored as JSON.
    fn decode_agent(
        &self,
        (mut rec, env): (AgentRecord, String),
    ) -> Result<AgentRecord, StoreError> {
        rec.env = self.json(&env)?;
        Ok(rec)
    }
}

/// A row of [`SELECT`], with its environment still JSON.
fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(AgentRecord, String)> {
    let rec = AgentRecord {
        project_id: r.get(0)?,
        project_root: r.get(1)?,
        name: r.get(2)?,
        command: r.get(3)?,
        base: r.get(4)?,
        restart: r.get(5)?,
        env: Default::default(),
        workspace: r.get(7)?,
        desired_running: r.get::<_, String>(8)? == "running",
        created_ms: r.get(9)?,
        ready: r.get(10)?,
        kind: r.get(11)?,
        stop_signal: r.get(12)?,
        stop_grace_ms: u64::try_from(r.get::<_, i64>(13)?).unwrap_or(0),
        liveness: r.get(14)?,
        tty: r.get(15)?,
        scrollback: r.get(16)?,
        turn: r.get(17)?,
        turn_timeout_ms: r
            .get::<_, Option<i64>>(18)?
            .map(|ms| u64::try_from(ms).unwrap_or(0)),
        remote: r.get(19)?,
    };
    Ok((rec, r.get(6)?))
}
