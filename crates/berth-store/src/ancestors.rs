//! Sync ancestors: for each link between two trees (a pairing, or a `berth debug sync` pair),
//! the last state both sides agreed on, one row per path. The entry bytes are the sync engine's
//! (`berth_sync::ancestor`); the store only keeps them.

use rusqlite::{OptionalExtension, params};

use crate::{Store, StoreError, columns};

/// One stored path of an ancestor and its entry, both as bytes.
pub type AncestorRow = (Vec<u8>, Vec<u8>);

/// An ancestor read or written in one piece at least this large leaves the connection's page
/// cache full of its rows; the cache is emptied afterwards ([`Store::release_cache`]).
const LARGE: usize = 1024;

/// One pending write of a link: its path, the side (0 or 1) and the entry (`None`: removed).
pub type PendingRow = (Vec<u8>, u8, Option<Vec<u8>>);

impl Store {
    /// Every path of `link`'s ancestor with its stored entry.
    pub fn ancestor(&self, link: &str) -> Result<Vec<AncestorRow>, StoreError> {
        let rows = self.query_all(
            "SELECT path, entry FROM sync_ancestors WHERE link = ?1",
            params![link],
            columns,
        )?;
        if rows.len() >= LARGE {
            self.release_cache();
        }
        Ok(rows)
    }

    /// Empties the connection's page cache: after a large ancestor went through it, its pages
    /// would stay in the daemon's memory (up to SQLite's cache size, 2 MiB) for as long as
    /// nothing else needs the room — while a pairing idles, for nothing. The next queries
    /// read their pages again (from the system's file cache).
    fn release_cache(&self) {
        if let Err(e) = self.conn().execute_batch("PRAGMA shrink_memory") {
            tracing::debug!("cannot empty the page cache: {e}");
        }
    }

    /// Writes the paths of `link`'s ancestor that changed (`None`: the path is gone), in one
    /// transaction.
    pub fn update_ancestor<'a>(
        &self,
        link: &str,
        rows: impl IntoIterator<Item = (&'a [u8], Option<Vec<u8>>)>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql(e))?;
        let mut written = 0;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO sync_ancestors (link, path, entry) VALUES (?1, ?2, ?3)",
                )
                .map_err(|e| self.sql(e))?;
            let mut del = tx
                .prepare_cached("DELETE FROM sync_ancestors WHERE link = ?1 AND path = ?2")
                .map_err(|e| self.sql(e))?;
            for (path, entry) in rows {
                match entry {
                    Some(e) => put.execute(params![link, path, e]),
                    None => del.execute(params![link, path]),
                }
                .map_err(|e| self.sql(e))?;
                written += 1;
            }
        }
        tx.commit().map_err(|e| self.sql(e))?;
        drop(conn);
        if written >= LARGE {
            self.release_cache();
        }
        Ok(())
    }

    /// Forgets `link`'s ancestor entirely, and its pending writes.
    pub fn drop_ancestor(&self, link: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql(e))?;
        for table in ["sync_ancestors", "sync_pending"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE link = ?1"),
                params![link],
            )
            .map_err(|e| self.sql(e))?;
        }
        tx.commit().map_err(|e| self.sql(e))?;
        drop(conn);
        self.release_cache();
        Ok(())
    }

    /// Records the writes a round of `link` is about to make, in place of any recorded before.
    pub fn record_pending<'a>(
        &self,
        link: &str,
        rows: impl IntoIterator<Item = (&'a [u8], u8, Option<Vec<u8>>)>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql(e))?;
        tx.execute("DELETE FROM sync_pending WHERE link = ?1", params![link])
            .map_err(|e| self.sql(e))?;
        let mut written = 0;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO sync_pending (link, path, side, entry) \
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(|e| self.sql(e))?;
            for (path, side, entry) in rows {
                put.execute(params![link, path, side, entry])
                    .map_err(|e| self.sql(e))?;
                written += 1;
            }
        }
        tx.commit().map_err(|e| self.sql(e))?;
        drop(conn);
        if written >= LARGE {
            self.release_cache();
        }
        Ok(())
    }

    /// The pending writes recorded for `link`.
    pub fn pending(&self, link: &str) -> Result<Vec<PendingRow>, StoreError> {
        self.query_all(
            "SELECT path, side, entry FROM sync_pending WHERE link = ?1",
            params![link],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }

    /// Forgets `link`'s pending writes (the ancestor now records their outcome).
    pub fn clear_pending(&self, link: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM sync_pending WHERE link = ?1", params![link])
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Whether `link` has an ancestor at all.
    pub fn has_ancestor(&self, link: &str) -> Result<bool, StoreError> {
        self.conn()
            .query_row(
                "SELECT 1 FROM sync_ancestors WHERE link = ?1 LIMIT 1",
                params![link],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| self.sql(e))
    }
}
