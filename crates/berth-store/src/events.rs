//! The durable event log.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use berth_proto::Event;
use rusqlite::{OptionalExtension, params};

use crate::{Store, StoreError};

/// Retention runs once per this many appends (and at open).
const PRUNE_EVERY: u64 = 1000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Store {
    /// Appends an event; returns it with its sequence number. Broadcast after commit.
    pub fn append(
        &self,
        kind: &str,
        subject: Option<&str>,
        data: serde_json::Value,
    ) -> Result<Event, StoreError> {
        let time_ms = now_ms();
        let text = data.to_string();
        let seq = {
            let conn = self.conn();
            conn.execute(
                "INSERT INTO events (time_ms, kind, subject, data) VALUES (?1, ?2, ?3, ?4)",
                params![time_ms, kind, subject, text],
            )
            .map_err(|e| self.sql(e))?;
            conn.last_insert_rowid() as u64
        };
        let event = Event {
            seq,
            time_ms,
            kind: kind.to_string(),
            subject: subject.map(str::to_string),
            data,
        };
        // No receivers is fine: nobody is listening right now.
        let _ = self.inner.live.send(event.clone());
        if self.inner.appends.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.prune()?;
        }
        Ok(event)
    }

    /// Events with `seq > since`, oldest first, at most `limit`.
    pub fn events_since(&self, since: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, time_ms, kind, subject, data FROM events
                 WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![since as i64, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(|e| self.sql(e))?;
        let mut events = Vec::new();
        for row in rows {
            let (seq, time_ms, kind, subject, data) = row.map_err(|e| self.sql(e))?;
            let data = serde_json::from_str(&data).map_err(|source| StoreError::BadData {
                path: self.path().into(),
                source,
            })?;
            events.push(Event {
                seq: seq as u64,
                time_ms,
                kind,
                subject,
                data,
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
        Ok(seq.unwrap_or(0) as u64)
    }

    /// The oldest retained sequence number, if any event is retained.
    pub fn first_seq(&self) -> Result<Option<u64>, StoreError> {
        let seq: Option<i64> = self
            .conn()
            .query_row("SELECT min(seq) FROM events", [], |r| r.get(0))
            .map_err(|e| self.sql(e))?;
        Ok(seq.map(|s| s as u64))
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
                params![(last - keep) as i64],
            )
            .map_err(|e| self.sql(e))?;
        Ok(deleted as u64)
    }
}
