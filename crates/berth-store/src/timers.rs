//! Agents' timers. When each fires is `berth_core::timer`'s; here a fire is one transaction:
//! the timer moves on (a compare-and-swap on the fire it expects) and its message is queued
//! with the fire's idempotency key, so a fire is queued once whatever happens to the daemon.

use rusqlite::params;

use crate::events::Tell;
use crate::inbox::send_in;
use crate::{ItemRecord, NewItem, Store, StoreError};

/// A timer as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerRecord {
    pub id: i64,
    pub project_id: i64,
    pub agent: String,
    /// The agent's `created_ms`: a timer belongs to one incarnation of a name.
    pub agent_created_ms: i64,
    /// `every`, `cron` or `at`.
    pub kind: String,
    /// The schedule's text (`30m`, `0 9 * * 1-5`, `2026-12-24T09:00:00`).
    pub spec: String,
    /// The IANA time zone its wall-clock times are in.
    pub zone: String,
    pub message: String,
    /// An `every` timer's fires are whole periods from here.
    pub anchor_ms: i64,
    /// Its next fire; `None`: it will not fire again.
    pub next_ms: Option<i64>,
    /// How many times it fired.
    pub fired: u32,
    pub last_fired_ms: Option<i64>,
    pub created_ms: i64,
}

const SELECT: &str = "SELECT id, project_id, agent, agent_created_ms, kind, spec, zone, message,
                             anchor_ms, next_ms, fired, last_fired_ms, created_ms FROM timers";

fn timer(r: &rusqlite::Row<'_>) -> rusqlite::Result<TimerRecord> {
    Ok(TimerRecord {
        id: r.get(0)?,
        project_id: r.get(1)?,
        agent: r.get(2)?,
        agent_created_ms: r.get(3)?,
        kind: r.get(4)?,
        spec: r.get(5)?,
        zone: r.get(6)?,
        message: r.get(7)?,
        anchor_ms: r.get(8)?,
        next_ms: r.get(9)?,
        fired: r.get(10)?,
        last_fired_ms: r.get(11)?,
        created_ms: r.get(12)?,
    })
}

impl Store {
    /// Records a new timer (its `id`, `fired` and `last_fired_ms` are ignored) and returns it.
    pub fn timer_add(&self, t: &TimerRecord) -> Result<TimerRecord, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO timers (project_id, agent, agent_created_ms, kind, spec, zone, message,
                                     anchor_ms, next_ms, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                t.project_id,
                t.agent,
                t.agent_created_ms,
                t.kind,
                t.spec,
                t.zone,
                t.message,
                t.anchor_ms,
                t.next_ms,
                t.created_ms
            ],
        )
        .map_err(|e| self.sql(e))?;
        conn.query_row(
            &format!("{SELECT} WHERE id = ?1"),
            params![conn.last_insert_rowid()],
            timer,
        )
        .map_err(|e| self.sql(e))
    }

    pub fn timer(&self, id: i64) -> Result<Option<TimerRecord>, StoreError> {
        self.query_one(&format!("{SELECT} WHERE id = ?1"), params![id], timer)
    }

    /// A project's timers (one agent's with `agent`), oldest first.
    pub fn timers(
        &self,
        project_id: i64,
        agent: Option<&str>,
    ) -> Result<Vec<TimerRecord>, StoreError> {
        self.query_all(
            &format!("{SELECT} WHERE project_id = ?1 AND (?2 IS NULL OR agent = ?2) ORDER BY id"),
            params![project_id, agent],
            timer,
        )
    }

    /// Every timer due at `now_ms`, earliest first.
    pub fn timers_due(&self, now_ms: i64) -> Result<Vec<TimerRecord>, StoreError> {
        self.query_all(
            &format!("{SELECT} WHERE next_ms IS NOT NULL AND next_ms <= ?1 ORDER BY next_ms, id"),
            params![now_ms],
            timer,
        )
    }

    /// The earliest next fire of any timer.
    pub fn timers_earliest(&self) -> Result<Option<i64>, StoreError> {
        self.query_one(
            "SELECT MIN(next_ms) FROM timers WHERE next_ms IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .map(Option::flatten)
    }

    /// Removes a timer; returns it as it was.
    pub fn timer_remove(&self, id: i64) -> Result<Option<TimerRecord>, StoreError> {
        let found = self.timer(id)?;
        if found.is_some() {
            self.conn()
                .execute("DELETE FROM timers WHERE id = ?1", params![id])
                .map_err(|e| self.sql(e))?;
        }
        Ok(found)
    }

    /// Fires a timer whose next fire is `scheduled_ms`: in one transaction, moves it on to
    /// `next_ms` and queues `item` (whose key names this fire) with the event `tell` makes of
    /// it. `None` if the timer is gone or already moved on (nothing queued); else the item and
    /// whether it is new.
    pub fn timer_fire(
        &self,
        id: i64,
        scheduled_ms: i64,
        next_ms: Option<i64>,
        item: &NewItem<'_>,
        tell: impl FnOnce(&ItemRecord) -> Tell,
    ) -> Result<Option<(ItemRecord, bool)>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql(e))?;
        let moved = tx
            .execute(
                "UPDATE timers SET next_ms = ?3, fired = fired + 1, last_fired_ms = ?4
                 WHERE id = ?1 AND next_ms = ?2",
                params![id, scheduled_ms, next_ms, item.now_ms],
            )
            .map_err(|e| self.sql(e))?;
        if moved == 0 {
            return Ok(None);
        }
        let sent = send_in(&tx, item, tell).map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(Some(sent.publish(self, conn)))
    }
}
