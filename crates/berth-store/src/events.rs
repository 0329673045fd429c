//! The durable event log.

use std::sync::MutexGuard;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use berth_proto::Event;
use rusqlite::{OptionalExtension, params};

use crate::{Store, StoreError, columns};

/// Retention runs once per this many appends (and at open).
const PRUNE_EVERY: u64 = 1000;

/// SQLite integers are signed; anything beyond `i64::MAX` means "no upper bound".
fn to_sql_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// An event to append in the same transaction as the change it tells of, so the two are
/// committed together or not at all.
#[derive(Debug, Clone, PartialEq)]
pub struct Tell {
    pub kind: &'static str,
    pub subject: String,
    pub data: serde_json::Value,
}

/// Inserts an event in `conn`'s transaction (or as its own, in autocommit mode): the event with
/// its sequence number, to be published once committed ([`Store::publish`]).
pub(crate) fn insert(
    conn: &rusqlite::Connection,
    kind: &str,
    subject: Option<&str>,
    data: serde_json::Value,
) -> rusqlite::Result<Event> {
    let time_ms = now_ms();
    conn.prepare_cached(
        "INSERT INTO events (time_ms, kind, subject, data) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![time_ms, kind, subject, data.to_string()])?;
    Ok(Event {
        seq: u64::try_from(conn.last_insert_rowid()).unwrap_or(0),
        time_ms,
        kind: kind.to_string(),
        subject: subject.map(str::to_string),
        data,
    })
}

impl Store {
    /// Appends an event; returns it with its sequence number. Broadcast after commit.
    pub fn append(
        &self,
        kind: &str,
        subject: Option<&str>,
        data: serde_json::Value,
    ) -> Result<Event, StoreError> {
        let conn = self.conn();
        // A single INSERT in autocommit mode is its own transaction: when it returns, the row is
        // committed (and durable per `synchronous=NORMAL`).
        let event = insert(&conn, kind, subject, data).map_err(|e| self.sql(e))?;
        Ok(self.publish(conn, event))
    }

    /// Sends a committed event live and counts it for retention. The writer is still held, so
    /// receivers see events in sequence order even when several threads append at once.
    pub(crate) fn publish(
        &self,
        conn: MutexGuard<'_, rusqlite::Connection>,
        event: Event,
    ) -> Event {
        // No receivers is fine.
        let _ = self.inner.live.send(event.clone());
        drop(conn);
        if self.inner.appends.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            // The event is committed; a failed retention pass must not make the append look
            // failed. The next pass (or the next open) tries again.
            if let Err(e) = self.prune() {
                tracing::warn!(error = %e, "event retention failed; will retry");
            }
        }
        event
    }

    /// Events with `seq > since`, oldest first, at most `limit`.
    pub fn events_since(&self, since: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let rows = self.query_all(
            "SELECT seq, time_ms, kind, subject, data FROM events
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            params![to_sql_int(since), to_sql_int(limit as u64)],
            columns::<(i64, i64, String, Option<String>, String)>,
        )?;
        let mut events = Vec::with_capacity(rows.len());
        for (seq, time_ms, kind, subject, data) in rows {
            events.push(Event {
                seq: u64::try_from(seq).unwrap_or(0),
                time_ms,
                kind,
                subject,
                data: self.json(&data)?,
            });
        }
        Ok(events)
    }

    /// The newest sequence number ever handed out (0 if none), retention notwithstanding.
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        let seq: Option<i64> = self
            .conn()
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        Ok(seq.map_or(0, |s| u64::try_from(s).unwrap_or(0)))
    }

    /// The oldest retained sequence number, if any event is retained.
    pub fn first_seq(&self) -> Result<Option<u64>, StoreError> {
        let seq: Option<i64> = self
            .conn()
            .query_row("SELECT min(seq) FROM events", [], |r| r.get(0))
            .map_err(|e| self.sql(e))?;
        Ok(seq.and_then(|s| u64::try_from(s).ok()))
    }

    /// Applies retention now: keeps the newest `retain_events` events. Returns how many went.
    pub fn prune(&self) -> Result<u64, StoreError> {
        let last = self.last_seq()?;
        let keep = self.inner.options.retain_events;
        if last <= keep {
            return Ok(0);
        }
        let deleted = self
            .conn()
            .execute(
                "DELETE FROM events WHERE seq <= ?1",
                params![to_sql_int(last - keep)],
            )
            .map_err(|e| self.sql(e))?;
        Ok(deleted as u64)
    }
}
