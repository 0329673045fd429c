//! Where everything lives under `$BERTH_HOME`.
//!
//! ```text
//! $BERTH_HOME/
//!   run/               0700: runtime files of the current daemon run
//!     berth.sock       control socket (0600)
//!     daemon.lock      exclusive lock held by the one daemon of this home
//!     daemon.pid       pid of the daemon
//!     daemon.json      metadata: generation, phase, serve options, fingerprint
//!     daemon.log       daemon log (rotated: daemon.log.1, daemon.log.2, ...)
//!     last_failure.json, failure-<phase>.json
//!   state/berth.db     SQLite store (0600, as its -wal and -shm files)
//!   agents/            one directory per agent and service: its keeper's files and output log
//!   workspaces/        agent workspaces
//! ```
//!
//! The home and these folders are 0700: nobody else may read what agents did or wrote.

use std::path::{Path, PathBuf};

/// The layout of one berth home. Pure path arithmetic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Home { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn run_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    pub fn socket(&self) -> PathBuf {
        self.run_dir().join("berth.sock")
    }

    pub fn lock_file(&self) -> PathBuf {
        self.run_dir().join("daemon.lock")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.run_dir().join("daemon.pid")
    }

    pub fn metadata_file(&self) -> PathBuf {
        self.run_dir().join("daemon.json")
    }

    pub fn daemon_log(&self) -> PathBuf {
        self.run_dir().join("daemon.log")
    }

    pub fn last_failure(&self) -> PathBuf {
        self.run_dir().join("last_failure.json")
    }

    pub fn phase_failure(&self, phase: &str) -> PathBuf {
        self.run_dir().join(format!("failure-{phase}.json"))
    }

    /// The folders berth keeps in the home.
    pub fn folders(&self) -> [PathBuf; 4] {
        [
            self.run_dir(),
            self.root.join("state"),
            self.agents_dir(),
            self.root.join("workspaces"),
        ]
    }

    /// Where each agent's keeper keeps its files.
    pub fn agents_dir(&self) -> PathBuf {
        self.root.join("agents")
    }

    /// The workspace of agent `agent` of project `project` (its id in the store).
    pub fn workspace(&self, project: i64, agent: &str) -> PathBuf {
        self.root
            .join("workspaces")
            .join(project.to_string())
            .join(agent)
    }

    pub fn database(&self) -> PathBuf {
        self.root.join("state").join("berth.db")
    }

    /// The database and the files SQLite keeps beside it (write-ahead log, shared memory).
    pub fn database_files(&self) -> [PathBuf; 3] {
        let db = self.database();
        let beside = |suffix: &str| {
            let mut s = db.as_os_str().to_owned();
            s.push(suffix);
            PathBuf::from(s)
        };
        [beside("-wal"), beside("-shm"), db]
    }

    /// Runtime files that only a live daemon run may leave behind: once no daemon holds the lock,
    /// any of these that exist are stale. The daemon log and failure records are not among them;
    /// they are history, kept on purpose.
    pub fn runtime_files(&self) -> [PathBuf; 4] {
        [
            self.socket(),
            self.pid_file(),
            self.metadata_file(),
            self.lock_file(),
        ]
    }
}

/// The `n`th rotated file of the log at `path` (`n >= 1`; larger is older): `NAME.n`. Every
/// rotating log (the daemon's, each agent's output) is named this way; the writer and the
/// readers of its tail both ask here.
pub fn rotated_log(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_files_live_in_run_and_exclude_history() {
        let home = Home::new("/h");
        for f in home.runtime_files() {
            assert!(f.starts_with("/h/run"), "{f:?}");
        }
        assert!(!home.runtime_files().contains(&home.daemon_log()));
        assert!(!home.runtime_files().contains(&home.last_failure()));
        assert_eq!(home.database(), Path::new("/h/state/berth.db"));
        assert_eq!(
            home.database_files().map(|p| p.display().to_string()),
            [
                "/h/state/berth.db-wal",
                "/h/state/berth.db-shm",
                "/h/state/berth.db"
            ]
        );
        for folder in home.folders() {
            assert_eq!(folder.parent(), Some(Path::new("/h")), "{folder:?}");
        }
        assert!(home.database().starts_with(&home.folders()[1]));
        assert!(home.workspace(1, "a").starts_with(&home.folders()[3]));
    }
}
