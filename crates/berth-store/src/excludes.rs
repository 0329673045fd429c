//! The lines pairing added to repositories' `info/exclude` files: one row per file, written
//! *before* the line is (so a crash in between leaves a row whose line is not there, which
//! taking it out finds and forgets), deleted once the line was taken out again. A row is what
//! tells berth's own line from an identical one the user wrote.

use rusqlite::params;

use crate::{Store, StoreError};

/// A line berth added (or is about to add) to an `info/exclude` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExcludeLine {
    /// The `info/exclude` file.
    pub path: String,
    /// The checkout whose pairing added it.
    pub project: String,
    /// The file did not exist before.
    pub created: bool,
    /// A newline went before the line (the file did not end with one).
    pub separator: bool,
    pub added_ms: i64,
}

const LINE: &str = "SELECT path, project, created, separator, added_ms FROM exclude_lines";

fn line_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExcludeLine> {
    Ok(ExcludeLine {
        path: r.get(0)?,
        project: r.get(1)?,
        created: r.get(2)?,
        separator: r.get(3)?,
        added_ms: r.get(4)?,
    })
}

impl Store {
    /// Records `line` (replacing a row of the same file: its line was taken out meanwhile).
    pub fn record_exclude_line(&self, line: &ExcludeLine) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO exclude_lines (path, project, created, separator, added_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    line.path,
                    line.project,
                    line.created,
                    line.separator,
                    line.added_ms
                ],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// The lines the pairings of `project` added.
    pub fn exclude_lines(&self, project: &str) -> Result<Vec<ExcludeLine>, StoreError> {
        self.query_all(
            &format!("{LINE} WHERE project = ?1 ORDER BY path"),
            params![project],
            line_row,
        )
    }

    /// The lines left behind: of projects that have no open pairing.
    pub fn leftover_exclude_lines(&self) -> Result<Vec<ExcludeLine>, StoreError> {
        self.query_all(
            &format!(
                "{LINE} WHERE project NOT IN
                     (SELECT project FROM pairings WHERE ended_ms IS NULL)
                 ORDER BY path"
            ),
            [],
            line_row,
        )
    }

    /// Forgets the line of the file at `path` (taken out, or not there any more).
    pub fn forget_exclude_line(&self, path: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM exclude_lines WHERE path = ?1", params![path])
            .map_err(|e| self.sql(e))?;
        Ok(())
    }
}
