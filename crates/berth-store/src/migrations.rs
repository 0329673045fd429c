//! Versioned schema migrations. Append to [`MIGRATIONS`]; never edit a released entry.

use rusqlite::Connection;

/// Migration `i` (0-based) brings the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: the event log.
    "CREATE TABLE events (
         seq     INTEGER PRIMARY KEY AUTOINCREMENT,
         time_ms INTEGER NOT NULL,
         kind    TEXT    NOT NULL,
         subject TEXT,
         data    TEXT    NOT NULL
     );",
    // 2: snapshots (`berth stash`); the refs are the truth, this is their history and metadata.
    "CREATE TABLE snapshots (
         repo     TEXT    NOT NULL,
         id       TEXT    NOT NULL,
         commit_id TEXT   NOT NULL,
         branch   TEXT,
         head     TEXT,
         time_ms  INTEGER NOT NULL,
         reason   TEXT    NOT NULL,
         message  TEXT,
         pairing  TEXT,
         warnings TEXT    NOT NULL DEFAULT '[]',
         state    TEXT    NOT NULL DEFAULT 'kept',
         ended_ms INTEGER,
         PRIMARY KEY (repo, id)
     );",
    // 3: projects and their agents.
    "CREATE TABLE projects (
         id         INTEGER PRIMARY KEY AUTOINCREMENT,
         root       TEXT    NOT NULL UNIQUE,
         created_ms INTEGER NOT NULL
     );
     CREATE TABLE agents (
         project_id INTEGER NOT NULL REFERENCES projects(id),
         name       TEXT    NOT NULL,
         command    TEXT,
         base       TEXT    NOT NULL,
         restart    TEXT    NOT NULL,
         env        TEXT    NOT NULL DEFAULT '{}',
         workspace  TEXT    NOT NULL,
         desired    TEXT    NOT NULL DEFAULT 'stopped',
         created_ms INTEGER NOT NULL,
         PRIMARY KEY (project_id, name)
     );",
    // 4: an agent's readiness probe (`berth_core::probe::ProbeSpec` as JSON).
    "ALTER TABLE agents ADD COLUMN ready TEXT;",
    // 5: services share the table; how each stops.
    "ALTER TABLE agents ADD COLUMN kind TEXT NOT NULL DEFAULT 'agent';
     ALTER TABLE agents ADD COLUMN stop_signal TEXT NOT NULL DEFAULT 'SIGTERM';
     ALTER TABLE agents ADD COLUMN stop_grace_ms INTEGER NOT NULL DEFAULT 10000;",
    // 6: the liveness probe (`ProbeSpec` as JSON).
    "ALTER TABLE agents ADD COLUMN liveness TEXT;",
    // 7: sync ancestors (entries encoded by `berth_sync::ancestor`).
    "CREATE TABLE sync_ancestors (
         link  TEXT NOT NULL,
         path  BLOB NOT NULL,
         entry BLOB NOT NULL,
         PRIMARY KEY (link, path)
     ) WITHOUT ROWID;",
    // 8: pairings (one open per project) and their intent journal (`berth_core::pairing`
    // states and intents as JSON).
    "CREATE TABLE pairings (
         id              TEXT    PRIMARY KEY,
         project         TEXT    NOT NULL,
         agent           TEXT    NOT NULL,
         state           TEXT    NOT NULL,
         original_branch TEXT,
         original_head   TEXT,
         mirror_before   TEXT,
         snapshot        TEXT,
         created_ms      INTEGER NOT NULL,
         updated_ms      INTEGER NOT NULL,
         ended_ms        INTEGER
     );
     CREATE UNIQUE INDEX pairings_open_per_project ON pairings (project) WHERE ended_ms IS NULL;
     CREATE TABLE pairing_journal (
         seq     INTEGER PRIMARY KEY AUTOINCREMENT,
         pairing TEXT    NOT NULL REFERENCES pairings(id),
         intent  TEXT    NOT NULL,
         time_ms INTEGER NOT NULL,
         done_ms INTEGER
     );
     CREATE INDEX pairing_journal_by_pairing ON pairing_journal (pairing, seq);",
    // 9: lines pairing added to a repository's info/exclude (`berth_git::exclude`), recorded
    // before they are written and forgotten once taken out again.
    "CREATE TABLE exclude_lines (
         path      TEXT    PRIMARY KEY,
         project   TEXT    NOT NULL,
         created   INTEGER NOT NULL,
         separator INTEGER NOT NULL,
         added_ms  INTEGER NOT NULL
     );",
    // 10: whether an agent runs under a pseudo-terminal its keeper owns.
    "ALTER TABLE agents ADD COLUMN tty INTEGER NOT NULL DEFAULT 0;",
    // 11: how many lines of scrollback a terminal agent's keeper keeps (NULL: the default).
    "ALTER TABLE agents ADD COLUMN scrollback INTEGER;",
    // 12: the inbox: each agent's durable queue of messages, and the turns that delivered them.
    "ALTER TABLE agents ADD COLUMN turn TEXT;
     ALTER TABLE agents ADD COLUMN turn_timeout_ms INTEGER;
     CREATE TABLE inbox (
         id         INTEGER PRIMARY KEY AUTOINCREMENT,
         project_id INTEGER NOT NULL REFERENCES projects(id),
         agent      TEXT    NOT NULL,
         text       TEXT    NOT NULL,
         source     TEXT    NOT NULL,
         priority   INTEGER NOT NULL,
         key        TEXT,
         state      TEXT    NOT NULL,
         attempts   INTEGER NOT NULL DEFAULT 0,
         created_ms INTEGER NOT NULL,
         updated_ms INTEGER NOT NULL
     );
     CREATE UNIQUE INDEX inbox_key ON inbox (project_id, agent, key) WHERE key IS NOT NULL;
     CREATE INDEX inbox_open ON inbox (project_id, agent, state, priority, id);
     CREATE TABLE turns (
         id            INTEGER PRIMARY KEY AUTOINCREMENT,
         item_id       INTEGER NOT NULL REFERENCES inbox(id),
         project_id    INTEGER NOT NULL,
         agent         TEXT    NOT NULL,
         attempt       INTEGER NOT NULL,
         trigger       TEXT    NOT NULL,
         mode          TEXT    NOT NULL,
         status        TEXT    NOT NULL,
         started_ms    INTEGER NOT NULL,
         ended_ms      INTEGER,
         exit_code     INTEGER,
         error         TEXT,
         output        TEXT    NOT NULL DEFAULT '',
         commit_before TEXT,
         commit_after  TEXT
     );
     CREATE INDEX turns_item ON turns (item_id, id);
     CREATE INDEX turns_agent ON turns (project_id, agent, id);",
    // 13: the web console: browser sessions (digests of their secrets) and the loopback port
    // its listener had, so a restarted daemon serves the console where the pages expect it.
    "CREATE TABLE console_sessions (
         digest     TEXT    PRIMARY KEY,
         csrf       TEXT    NOT NULL,
         created_ms INTEGER NOT NULL,
         expires_ms INTEGER NOT NULL
     );
     CREATE TABLE settings (
         key   TEXT PRIMARY KEY,
         value TEXT NOT NULL
     );",
    // 14: where an agent elsewhere lives (`berth agent new --on URL`; NULL: here).
    "ALTER TABLE agents ADD COLUMN remote TEXT;",
    // 15: agents' timers and webhooks, both feeding their inboxes. Each names the agent by
    // project, name and `created_ms`, so an agent made again under the same name does not
    // inherit them. A timer's `next_ms` is NULL once it will never fire again.
    "CREATE TABLE timers (
         id               INTEGER PRIMARY KEY AUTOINCREMENT,
         project_id       INTEGER NOT NULL REFERENCES projects(id),
         agent            TEXT    NOT NULL,
         agent_created_ms INTEGER NOT NULL,
         kind             TEXT    NOT NULL,
         spec             TEXT    NOT NULL,
         zone             TEXT    NOT NULL,
         message          TEXT    NOT NULL,
         anchor_ms        INTEGER NOT NULL,
         next_ms          INTEGER,
         fired            INTEGER NOT NULL DEFAULT 0,
         last_fired_ms    INTEGER,
         created_ms       INTEGER NOT NULL
     );
     CREATE INDEX timers_next ON timers (next_ms) WHERE next_ms IS NOT NULL;
     CREATE TABLE hooks (
         project_id       INTEGER NOT NULL REFERENCES projects(id),
         agent            TEXT    NOT NULL,
         name             TEXT    NOT NULL,
         agent_created_ms INTEGER NOT NULL,
         secret           TEXT    NOT NULL,
         template         TEXT,
         created_ms       INTEGER NOT NULL,
         PRIMARY KEY (project_id, agent, name)
     );
     CREATE INDEX hooks_by_name ON hooks (agent, name);",
    // 16: the writes a sync round is about to make, recorded before it makes them (entries
    // encoded by `berth_sync::ancestor`; side 0 is alpha, 1 beta; a NULL entry: removed).
    "CREATE TABLE sync_pending (
         link  TEXT    NOT NULL,
         path  BLOB    NOT NULL,
         side  INTEGER NOT NULL,
         entry BLOB,
         PRIMARY KEY (link, path, side)
     );",
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

pub fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// Applies every pending migration, each in its own transaction with its version bump.
pub fn apply(conn: &mut Connection) -> rusqlite::Result<()> {
    let current = version(conn)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as u32)?;
        tx.commit()?;
    }
    Ok(())
}
