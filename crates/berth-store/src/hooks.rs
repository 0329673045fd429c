//! Agents' webhooks: a name per agent, the secret its senders sign bodies with, and an optional
//! template that makes the message from the payload. A delivery is queued through the inbox
//! with its delivery id as the idempotency key.

use rusqlite::params;

use crate::{Store, StoreError};

/// A webhook as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRecord {
    pub project_id: i64,
    pub agent: String,
    pub name: String,
    /// The agent's `created_ms`: a hook belongs to one incarnation of a name.
    pub agent_created_ms: i64,
    /// The HMAC-SHA256 key, as the sender is given it. Never logged.
    pub secret: String,
    pub template: Option<String>,
    pub created_ms: i64,
}

const SELECT: &str =
    "SELECT project_id, agent, name, agent_created_ms, secret, template, created_ms FROM hooks";

fn hook(r: &rusqlite::Row<'_>) -> rusqlite::Result<HookRecord> {
    Ok(HookRecord {
        project_id: r.get(0)?,
        agent: r.get(1)?,
        name: r.get(2)?,
        agent_created_ms: r.get(3)?,
        secret: r.get(4)?,
        template: r.get(5)?,
        created_ms: r.get(6)?,
    })
}

impl Store {
    /// Records a hook; `false` if the agent has one of that name already (nothing changed).
    pub fn hook_add(&self, h: &HookRecord) -> Result<bool, StoreError> {
        let added = self
            .conn()
            .execute(
                "INSERT OR IGNORE INTO hooks (project_id, agent, name, agent_created_ms, secret,
                                              template, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    h.project_id,
                    h.agent,
                    h.name,
                    h.agent_created_ms,
                    h.secret,
                    h.template,
                    h.created_ms
                ],
            )
            .map_err(|e| self.sql(e))?;
        Ok(added == 1)
    }

    /// A project's hooks (one agent's with `agent`).
    pub fn hooks(
        &self,
        project_id: i64,
        agent: Option<&str>,
    ) -> Result<Vec<HookRecord>, StoreError> {
        self.query_all(
            &format!(
                "{SELECT} WHERE project_id = ?1 AND (?2 IS NULL OR agent = ?2) ORDER BY agent, name"
            ),
            params![project_id, agent],
            hook,
        )
    }

    /// Every hook of that agent and hook name, in any project (a URL names no project: the
    /// secret tells them apart).
    pub fn hooks_named(&self, agent: &str, name: &str) -> Result<Vec<HookRecord>, StoreError> {
        self.query_all(
            &format!("{SELECT} WHERE agent = ?1 AND name = ?2 ORDER BY project_id"),
            params![agent, name],
            hook,
        )
    }

    /// Removes a hook; `false` if there was none.
    pub fn hook_remove(
        &self,
        project_id: i64,
        agent: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let removed = self
            .conn()
            .execute(
                "DELETE FROM hooks WHERE project_id = ?1 AND agent = ?2 AND name = ?3",
                params![project_id, agent, name],
            )
            .map_err(|e| self.sql(e))?;
        Ok(removed == 1)
    }
}
