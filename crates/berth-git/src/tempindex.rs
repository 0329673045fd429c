//! Temporary index files in the git dir, so trees can be built without ever writing the user's
//! own index file.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Prefix of every temporary index file berth creates in a git dir.
const PREFIX: &str = "berth-";

/// Leftovers of a process that died (e.g. SIGKILL between two steps) older than this are
/// removed when the next temporary index is made in the same git dir.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// A temporary index file, removed (with any lock git left for it) when dropped.
pub(crate) struct TempIndex(PathBuf);

impl TempIndex {
    /// A copy of the repository's index (or no file at all when the repository has no index
    /// yet), named `berth-<name>.index` in `git_dir`.
    pub(crate) fn copy_of(git_dir: &Path, name: &str) -> std::io::Result<TempIndex> {
        let t = TempIndex::empty(git_dir, name)?;
        let real = git_dir.join("index");
        if real.exists() {
            std::fs::copy(&real, &t.0)?;
        }
        Ok(t)
    }

    /// An index that starts empty (the file does not exist until git writes it).
    pub(crate) fn empty(git_dir: &Path, name: &str) -> std::io::Result<TempIndex> {
        sweep(git_dir);
        let path = git_dir.join(format!("{PREFIX}{name}.index"));
        // A leftover of a process that died with this very name (ids are unique, and the daemon
        // runs one git operation per repository at a time, so nobody else uses it).
        remove_if_exists(&path)?;
        remove_if_exists(&lock_of(&path))?;
        Ok(TempIndex(path))
    }

    /// The file to pass as `GIT_INDEX_FILE`.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempIndex {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_file(lock_of(&self.0));
    }
}

fn lock_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

fn remove_if_exists(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes berth's temporary index files (and their locks) that a dead process left behind long
/// ago. Best effort: a failure here never fails the operation.
fn sweep(git_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(git_dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with(PREFIX) || !(name.ends_with(".index") || name.ends_with(".index.lock"))
        {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > STALE_AFTER);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
