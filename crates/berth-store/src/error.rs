//! Store errors: each names the database file and says what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no database at {path}; berth creates it when the daemon first starts")]
    Missing { path: PathBuf },
    #[error(
        "the database at {path} has schema version {found}, newer than this berth supports \
         ({supported}); upgrade berth, or move the file aside to start with a new one"
    )]
    NewerSchema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{path} is not a berth database (or is damaged): {message}; run `berth doctor`")]
    NotADatabase { path: PathBuf, message: String },
    #[error("cannot use the database at {path}: {source}; run `berth doctor`")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create {path}: {source}; check that its parent is writable by you")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("stored event data in {path} is not valid JSON: {source}; run `berth doctor`")]
    BadData {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl StoreError {
    pub(crate) fn sqlite(path: &std::path::Path, source: rusqlite::Error) -> StoreError {
        use rusqlite::ffi::ErrorCode::{DatabaseCorrupt, NotADatabase};
        match source.sqlite_error_code() {
            Some(NotADatabase | DatabaseCorrupt) => StoreError::NotADatabase {
                path: path.into(),
                message: source.to_string(),
            },
            _ => StoreError::Sqlite {
                path: path.into(),
                source,
            },
        }
    }
}
