//! berth's store: one SQLite database (`state/berth.db`) holding the durable event log and what
//! berth knows about projects, agents, snapshots, sync ancestors and pairings.
//!
//! # Theory of operation
//!
//! - **One writer.** A single read-write connection behind a mutex does every write, so writes
//!   are serialised in the process and SQLite never sees two writers of ours. WAL mode lets
//!   readers (another process, `berth doctor`) read while it writes. `synchronous=NORMAL` in WAL
//!   is durable across process crashes (a power cut may lose the last transactions, never
//!   corrupt the file).
//! - **Versioned migrations.** `PRAGMA user_version` records the schema version; each pending
//!   migration ([`migrations`]) runs in its own transaction together with the version bump. A
//!   database newer than this build is refused untouched ([`StoreError::NewerSchema`]).
//! - **The event log.** `events.seq` is `INTEGER PRIMARY KEY AUTOINCREMENT`: it increases by one
//!   per append and is never reused, even after retention deletes old rows, so "everything after
//!   N" always means the same thing. Retention keeps the newest `retain_events` rows.
//! - **Projects and agents.** Each repository berth was used in, and its agents' definitions
//!   (what should run); what runs right now is in each keeper's `state.json`.
//! - **Sync ancestors.** What two synced trees last agreed on, one row per path, written
//!   per round only for the paths that changed.
//! - **Snapshots.** A history of `berth stash` snapshots per repository; the refs in the
//!   repository stay the truth about which exist.
//! - **Pairings.** One row per pairing (at most one open per project) and its intent journal:
//!   each transition is appended before it is acted on and marked done after, so the newest
//!   unfinished intent is what a crash interrupted.
//! - **Exclude lines.** The lines pairing added to repositories' `info/exclude`, recorded
//!   before they are written, so a stop (or `berth doctor --fix`) takes out berth's own and
//!   never an identical one of the user's.
//! - **Inboxes and turns.** Each agent's queue of messages, and every attempt to deliver one
//!   (a turn). A new item is stored with the event that tells of it ([`Tell`]) in one
//!   transaction. A turn's start moves its item to `delivering` in the same transaction, and its
//!   end settles the item's state in the same transaction too; moves are compare-and-swaps on
//!   the state expected, and an idempotency key is unique per agent.
//! - **Timers and webhooks.** What feeds an inbox besides `berth send`. A timer's fire moves
//!   the timer on and queues its item (keyed by the fire) in one transaction; a webhook holds
//!   the secret its bodies are signed with.
//! - **Live broadcast.** After an append commits, the event is sent on a `tokio` broadcast
//!   channel. The channel is bounded: a receiver that falls behind gets `Lagged` and must resume
//!   with [`Store::events_since`] from the last sequence number it handled. Because the event is
//!   committed before it is broadcast, the store always holds whatever a receiver missed.
//!
//! A poisoned mutex (a panic while holding it) is recovered rather than propagated: SQLite
//! transactions are atomic, so the connection is consistent whatever the panicking code did.

mod agents;
mod ancestors;
mod console;
mod error;
mod events;
mod excludes;
mod hooks;
mod inbox;
pub mod migrations;
mod pairings;
mod snapshots;
mod timers;
mod turns;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use berth_proto::Event;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::broadcast;

pub use agents::AgentRecord;
pub use ancestors::AncestorRow;
pub use console::ConsoleSession;
pub use error::StoreError;
pub use events::Tell;
pub use excludes::ExcludeLine;
pub use hooks::HookRecord;
pub use inbox::{ItemRecord, NewItem};
pub use migrations::SCHEMA_VERSION;
pub use pairings::{IntentRecord, PairingRecord};
pub use snapshots::{Recorded, SnapshotState};
pub use timers::TimerRecord;
pub use turns::{NewTurn, TurnEnd, TurnRecord};

/// How the store behaves.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Newest events kept by retention.
    pub retain_events: u64,
    /// Capacity of the live broadcast before receivers lag.
    pub broadcast_capacity: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            retain_events: 100_000,
            broadcast_capacity: 1024,
        }
    }
}

/// Schema version found in a database, and the newest this build knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaInfo {
    /// `PRAGMA user_version` of the file.
    pub version: u32,
    /// [`SCHEMA_VERSION`] of this build.
    pub supported: u32,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    conn: Mutex<Connection>,
    options: StoreOptions,
    live: broadcast::Sender<Event>,
    /// Appends since open, to pace retention.
    appends: AtomicU64,
}

/// A handle to the store; clones share the one writer.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Prepared statements kept for reuse by the one connection.
const STATEMENTS_KEPT: usize = 128;

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            create_private_dir(dir).map_err(|source| StoreError::Io {
                path: dir.into(),
                source,
            })?;
        }
        create_private_file(path).map_err(|source| StoreError::Io {
            path: path.into(),
            source,
        })?;
        let sql = |source| StoreError::sqlite(path, source);
        let mut conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        // Every statement the daemon runs often stays prepared (rusqlite keeps 16 by default).
        conn.set_prepared_statement_cache_capacity(STATEMENTS_KEPT);
        let version = migrations::version(&conn).map_err(sql)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: path.into(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sql)?;
        migrations::apply(&mut conn).map_err(sql)?;
        let (live, _) = broadcast::channel(options.broadcast_capacity.max(1));
        let store = Store {
            inner: Arc::new(Inner {
                path: path.into(),
                conn: Mutex::new(conn),
                options,
                live,
                appends: AtomicU64::new(0),
            }),
        };
        store.prune()?;
        Ok(store)
    }

    /// Reads the schema version without creating, migrating or writing anything.
    pub fn inspect(path: &Path) -> Result<SchemaInfo, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing { path: path.into() });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|e| StoreError::sqlite(path, e))?;
        let version = migrations::version(&conn).map_err(|e| StoreError::sqlite(path, e))?;
        // Reading the schema proves the file is a database, not just that it opened.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(|e| StoreError::sqlite(path, e))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: path.into(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(SchemaInfo {
            version,
            supported: SCHEMA_VERSION,
        })
    }

    /// The database file this store was opened on.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.inner
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn sql(&self, e: rusqlite::Error) -> StoreError {
        StoreError::sqlite(&self.inner.path, e)
    }

    /// Every row `sql` selects, each mapped by `row` ([`columns`] for a plain tuple).
    fn query_all<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        row: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql).map_err(|e| self.sql(e))?;
        let rows = stmt.query_map(params, row).map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    /// The first row `sql` selects, if any, mapped by `row`.
    fn query_one<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        row: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        use rusqlite::OptionalExtension;
        self.conn()
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.query_row(params, row).optional())
            .map_err(|e| self.sql(e))
    }

    /// Decodes a JSON column; a row that does not decode is bad data, not a panic.
    fn json<T: serde::de::DeserializeOwned>(&self, text: &str) -> Result<T, StoreError> {
        serde_json::from_str(text).map_err(|source| StoreError::BadData {
            path: self.path().into(),
            source,
        })
    }

    /// Live events appended from now on; see the crate docs for what to do on `Lagged`.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.live.subscribe()
    }

    /// Checkpoints the WAL into the main file (at shutdown).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| self.sql(e))
    }
}

/// A row as the tuple of its columns, in the order the query selects them.
fn columns<T>(r: &rusqlite::Row<'_>) -> rusqlite::Result<T>
where
    T: for<'a> TryFrom<&'a rusqlite::Row<'a>, Error = rusqlite::Error>,
{
    T::try_from(r)
}

/// Creates the database file 0600 if it is missing (an empty file is an empty database); SQLite
/// gives its `-wal` and `-shm` files the same mode.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map(drop)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}
