//! The web console's sessions and settings. A session is stored by the digest of the secret its
//! browser holds in a cookie, with its CSRF token and when it expires; the secret itself is never
//! written anywhere.

use rusqlite::params;

use crate::{Store, StoreError};

/// A browser session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub digest: String,
    pub csrf: String,
    pub created_ms: i64,
    pub expires_ms: i64,
}

/// The key of the console listener's port in `settings`.
const CONSOLE_PORT: &str = "console.port";

impl Store {
    /// Records a new session (and forgets the expired ones).
    pub fn add_console_session(&self, s: &ConsoleSession) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute(
            "DELETE FROM console_sessions WHERE expires_ms <= ?1",
            params![s.created_ms],
        )
        .map_err(|e| self.sql(e))?;
        conn.execute(
            "INSERT INTO console_sessions (digest, csrf, created_ms, expires_ms)
             VALUES (?1, ?2, ?3, ?4)",
            params![s.digest, s.csrf, s.created_ms, s.expires_ms],
        )
        .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// The session with this digest, if it exists and has not expired at `now_ms`.
    pub fn console_session(
        &self,
        digest: &str,
        now_ms: i64,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        self.query_one(
            "SELECT digest, csrf, created_ms, expires_ms FROM console_sessions
             WHERE digest = ?1 AND expires_ms > ?2",
            params![digest, now_ms],
            |r| {
                Ok(ConsoleSession {
                    digest: r.get(0)?,
                    csrf: r.get(1)?,
                    created_ms: r.get(2)?,
                    expires_ms: r.get(3)?,
                })
            },
        )
    }

    /// Ends one session (logout).
    pub fn remove_console_session(&self, digest: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "DELETE FROM console_sessions WHERE digest = ?1",
                params![digest],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Ends every session; answers how many were open (expired ones not counted).
    pub fn remove_console_sessions(&self, now_ms: i64) -> Result<usize, StoreError> {
        let conn = self.conn();
        let open = conn
            .query_row(
                "SELECT COUNT(*) FROM console_sessions WHERE expires_ms > ?1",
                params![now_ms],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| self.sql(e))?;
        conn.execute("DELETE FROM console_sessions", [])
            .map_err(|e| self.sql(e))?;
        Ok(usize::try_from(open).unwrap_or(0))
    }

    /// The loopback port the console's listener had, if one was ever started.
    pub fn console_port(&self) -> Result<Option<u16>, StoreError> {
        let value = self.query_one(
            "SELECT value FROM settings WHERE key = ?1",
            params![CONSOLE_PORT],
            |r| r.get::<_, String>(0),
        )?;
        Ok(value.and_then(|v| v.parse().ok()))
    }

    /// Remembers the console listener's port for the next daemon run.
    pub fn set_console_port(&self, port: u16) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)",
                params![CONSOLE_PORT, port.to_string()],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("berth.db"), StoreOptions::default()).unwrap();
        (dir, store)
    }

    fn session(digest: &str, created_ms: i64, expires_ms: i64) -> ConsoleSession {
        ConsoleSession {
            digest: digest.into(),
            csrf: format!("csrf-{digest}"),
            created_ms,
            expires_ms,
        }
    }

    #[test]
    fn a_session_is_found_until_it_expires_and_expired_ones_are_forgotten() {
        let (_dir, store) = store();
        store.add_console_session(&session("a", 0, 100)).unwrap();
        assert_eq!(
            store.console_session("a", 99).unwrap(),
            Some(session("a", 0, 100))
        );
        assert_eq!(store.console_session("a", 100).unwrap(), None);
        assert_eq!(store.console_session("b", 0).unwrap(), None);
        store.add_console_session(&session("b", 200, 300)).unwrap();
        // Adding "b" at 200 removed the expired "a", so only one was open to revoke.
        assert_eq!(store.remove_console_sessions(250).unwrap(), 1);
        assert_eq!(store.console_session("b", 250).unwrap(), None);
    }

    #[test]
    fn logout_ends_one_session_only() {
        let (_dir, store) = store();
        store.add_console_session(&session("a", 0, 100)).unwrap();
        store.add_console_session(&session("b", 0, 100)).unwrap();
        store.remove_console_session("a").unwrap();
        assert_eq!(store.console_session("a", 1).unwrap(), None);
        assert!(store.console_session("b", 1).unwrap().is_some());
    }

    #[test]
    fn the_console_port_is_remembered() {
        let (_dir, store) = store();
        assert_eq!(store.console_port().unwrap(), None);
        store.set_console_port(8123).unwrap();
        store.set_console_port(8124).unwrap();
        assert_eq!(store.console_port().unwrap(), Some(8124));
    }
}
