//! Agents' inboxes: one durable, ordered queue of messages per agent. States, priorities and
//! what may follow what are `berth_core::inbox`'s; every change here is a compare-and-swap on
//! the state it expects, so a cancel and the start of a delivery never both win.

use std::sync::MutexGuard;

use rusqlite::{Connection, OptionalExtension, params};

use berth_proto::Event;

use crate::events::{self, Tell};
use crate::{Store, StoreError};

/// One message in an agent's inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRecord {
    pub id: i64,
    pub project_id: i64,
    pub agent: String,
    pub text: String,
    /// Where it came from (`message` for `berth send`).
    pub source: String,
    /// Higher goes first (`berth_core::inbox::Priority::rank`).
    pub priority: i64,
    /// The idempotency key it was sent with.
    pub key: Option<String>,
    /// `queued`, `delivering`, `done`, `failed` or `cancelled`.
    pub state: String,
    /// Turns started for it so far.
    pub attempts: u32,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// A message to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem<'a> {
    pub project_id: i64,
    pub agent: &'a str,
    pub text: &'a str,
    pub source: &'a str,
    pub priority: i64,
    pub key: Option<&'a str>,
    pub now_ms: i64,
}

const SELECT: &str = "SELECT id, project_id, agent, text, source, priority, key, state, attempts,
                             created_ms, updated_ms FROM inbox";

fn item(r: &rusqlite::Row<'_>) -> rusqlite::Result<ItemRecord> {
    Ok(ItemRecord {
        id: r.get(0)?,
        project_id: r.get(1)?,
        agent: r.get(2)?,
        text: r.get(3)?,
        source: r.get(4)?,
        priority: r.get(5)?,
        key: r.get(6)?,
        state: r.get(7)?,
        attempts: r.get(8)?,
        created_ms: r.get(9)?,
        updated_ms: r.get(10)?,
    })
}

/// [`Store::inbox_send`] within a transaction of the caller's (a timer's fire), so the item,
/// the event that tells of it and what made it are committed together.
pub(crate) fn send_in(
    tx: &rusqlite::Transaction<'_>,
    new: &NewItem<'_>,
    tell: impl FnOnce(&ItemRecord) -> Tell,
) -> rusqlite::Result<Sent> {
    if let Some(key) = new.key {
        let existing = tx
            .prepare_cached(&format!(
                "{SELECT} WHERE project_id = ?1 AND agent = ?2 AND key = ?3"
            ))?
            .query_row(params![new.project_id, new.agent, key], item)
            .optional()?;
        if let Some(existing) = existing {
            return Ok(Sent {
                item: existing,
                told: None,
            });
        }
    }
    tx.prepare_cached(
        "INSERT INTO inbox (project_id, agent, text, source, priority, key, state, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?7)",
    )?
    .execute(params![
        new.project_id,
        new.agent,
        new.text,
        new.source,
        new.priority,
        new.key,
        new.now_ms
    ])?;
    // The row is what was just inserted: no need to read it back.
    let rec = ItemRecord {
        id: tx.last_insert_rowid(),
        project_id: new.project_id,
        agent: new.agent.to_string(),
        text: new.text.to_string(),
        source: new.source.to_string(),
        priority: new.priority,
        key: new.key.map(str::to_string),
        state: "queued".to_string(),
        attempts: 0,
        created_ms: new.now_ms,
        updated_ms: new.now_ms,
    };
    let tell = tell(&rec);
    let told = events::insert(tx, tell.kind, Some(&tell.subject), tell.data)?;
    Ok(Sent {
        item: rec,
        told: Some(told),
    })
}

/// What [`send_in`] did.
pub(crate) struct Sent {
    pub item: ItemRecord,
    /// The event that tells of a new item, to be published once committed; `None` when the
    /// key's item was there already.
    pub told: Option<Event>,
}

impl Sent {
    /// The item and whether it is new; publishes the event that tells of a new one.
    pub(crate) fn publish(
        self,
        store: &Store,
        conn: MutexGuard<'_, Connection>,
    ) -> (ItemRecord, bool) {
        let fresh = self.told.is_some();
        if let Some(event) = self.told {
            store.publish(conn, event);
        }
        (self.item, fresh)
    }
}

impl Store {
    /// Queues a message, and the event `tell` makes of a new item in the same transaction; with
    /// a key already used for this agent, queues nothing (and tells nothing) and returns the
    /// item that key made. The flag says whether the item is new.
    pub fn inbox_send(
        &self,
        new: &NewItem<'_>,
        tell: impl FnOnce(&ItemRecord) -> Tell,
    ) -> Result<(ItemRecord, bool), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql(e))?;
        let sent = send_in(&tx, new, tell).map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(sent.publish(self, conn))
    }

    pub fn inbox_item(&self, id: i64) -> Result<Option<ItemRecord>, StoreError> {
        self.query_one(&format!("{SELECT} WHERE id = ?1"), params![id], item)
    }

    /// An agent's items, oldest first: every open one, and the newest `finished` that are done,
    /// failed or cancelled.
    pub fn inbox_items(
        &self,
        project_id: i64,
        agent: &str,
        finished: usize,
    ) -> Result<Vec<ItemRecord>, StoreError> {
        self.query_all(
            &format!(
                "{SELECT} WHERE project_id = ?1 AND agent = ?2 AND (state IN ('queued', 'delivering')
                    OR id IN (SELECT id FROM inbox WHERE project_id = ?1 AND agent = ?2
                              AND state NOT IN ('queued', 'delivering') ORDER BY id DESC LIMIT ?3))
                 ORDER BY id"
            ),
            params![project_id, agent, i64::try_from(finished).unwrap_or(i64::MAX)],
            item,
        )
    }

    /// The item an agent's delivery is at: the one `delivering` (there is at most one), else
    /// the first queued (`now` before `normal`, then oldest).
    pub fn inbox_next(
        &self,
        project_id: i64,
        agent: &str,
    ) -> Result<Option<ItemRecord>, StoreError> {
        self.query_one(
            &format!(
                "{SELECT} WHERE project_id = ?1 AND agent = ?2 AND state IN ('queued', 'delivering')
                 ORDER BY state = 'delivering' DESC, priority DESC, id LIMIT 1"
            ),
            params![project_id, agent],
            item,
        )
    }

    /// A project's items counted per agent and state: `(agent, state, count)`.
    pub fn inbox_counts(&self, project_id: i64) -> Result<Vec<(String, String, i64)>, StoreError> {
        self.query_all(
            "SELECT agent, state, COUNT(*) FROM inbox WHERE project_id = ?1
             GROUP BY agent, state ORDER BY agent, state",
            params![project_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }

    /// Every agent with an item queued or delivering: `(project_id, agent)`.
    pub fn inbox_busy_agents(&self) -> Result<Vec<(i64, String)>, StoreError> {
        self.query_all(
            "SELECT DISTINCT project_id, agent FROM inbox WHERE state IN ('queued', 'delivering')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Moves an item from `from` to `to` if it is still in `from`; returns it as it is now,
    /// and whether it moved.
    pub fn inbox_move(
        &self,
        id: i64,
        from: &str,
        to: &str,
        now_ms: i64,
    ) -> Result<Option<(ItemRecord, bool)>, StoreError> {
        let moved = self
            .conn()
            .execute(
                "UPDATE inbox SET state = ?3, updated_ms = ?4 WHERE id = ?1 AND state = ?2",
                params![id, from, to, now_ms],
            )
            .map_err(|e| self.sql(e))?;
        Ok(self.inbox_item(id)?.map(|rec| (rec, moved == 1)))
    }

    /// Cancels every queued item of an agent (it was removed); returns their ids.
    pub fn inbox_cancel_all(
        &self,
        project_id: i64,
        agent: &str,
        now_ms: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql(e))?;
        let ids = {
            let mut stmt = tx
                .prepare(
                    "UPDATE inbox SET state = 'cancelled', updated_ms = ?3
                     WHERE project_id = ?1 AND agent = ?2 AND state = 'queued' RETURNING id",
                )
                .map_err(|e| self.sql(e))?;
            let rows = stmt
                .query_map(params![project_id, agent, now_ms], |r| r.get(0))
                .map_err(|e| self.sql(e))?;
            rows.collect::<Result<Vec<i64>, _>>()
                .map_err(|e| self.sql(e))?
        };
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(ids)
    }
}
