//! A read-only look at the daemon's database from outside a daemon run, for `berth doctor`:
//! whether it opens, and whether its schema is one this berth can use. Never writes it.

use std::path::Path;

use berth_store::{Store, StoreError};

/// What the database file at a path is, as far as berth is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseHealth {
    /// No database yet (a home that never ran a daemon).
    Missing,
    /// Readable; `version` is its schema, `supported` this berth's (a daemon migrates an older
    /// one when it starts).
    Readable { version: u32, supported: u32 },
    /// Written by a newer berth: this one must not touch it.
    Newer { message: String },
    /// Cannot be read as a berth database (damaged, not a database, no permission).
    Unreadable { message: String },
}

/// Looks at the database at `path` without changing it.
pub fn inspect(path: &Path) -> DatabaseHealth {
    if !path.exists() {
        return DatabaseHealth::Missing;
    }
    match Store::inspect(path) {
        Ok(info) => DatabaseHealth::Readable {
            version: info.version,
            supported: info.supported,
        },
        Err(e @ StoreError::NewerSchema { .. }) => DatabaseHealth::Newer {
            message: e.to_string(),
        },
        Err(e) => DatabaseHealth::Unreadable {
            message: e.to_string(),
        },
    }
}
