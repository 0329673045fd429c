//! The exclusive lock of one home: `run/daemon.lock`.
//!
//! The lock is a POSIX record lock (`fcntl(F_SETLK)`). Unlike `flock`, it can be *queried*
//! without being taken (`F_GETLK`, which also names the holder's pid), so `daemon status` never
//! competes with a starting daemon for it. It is released by the kernel when the process dies,
//! however it dies, and is not inherited by children.
//!
//! The daemon unlinks the lock file at shutdown (so a clean stop leaves no runtime files). To keep
//! that safe, a daemon that acquires the lock checks that the path still names the inode it
//! locked; if a stopping daemon unlinked it in between, it tries again on the new file.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use berth_core::daemon_state::LockObservation;
use berth_core::home::Home;

fn flock_struct(kind: libc::c_short) -> libc::flock {
    // SAFETY: `flock` is a plain C struct for which all-zero bytes are a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl
}

/// The exclusive lock of one home, held for the whole daemon run.
#[derive(Debug)]
pub struct DaemonLock {
    file: File,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another berth daemon{} is already serving this home", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Held { pid: Option<u32> },
    #[error("cannot open the lock file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl DaemonLock {
    /// Takes the lock without waiting.
    pub fn acquire(home: &Home) -> Result<DaemonLock, LockError> {
        let path = home.lock_file();
        let io = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(io)?;
            let fl = flock_struct(libc::F_WRLCK as libc::c_short);
            // SAFETY: F_SETLK with a valid, initialised flock on an open descriptor.
            let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) };
            if rc != 0 {
                let err = std::io::Error::last_os_error();
                return match err.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EACCES) => {
                        let pid = match probe_lock(home) {
                            LockObservation::Held { pid } => pid,
                            LockObservation::Free => None,
                        };
                        Err(LockError::Held { pid })
                    }
                    _ => Err(io(err)),
                };
            }
            // The file we locked must still be the one at the path (see the module docs).
            let locked = file.metadata().map_err(io)?;
            match std::fs::metadata(&path) {
                Ok(now) if now.ino() == locked.ino() && now.dev() == locked.dev() => {
                    return Ok(DaemonLock { file });
                }
                _ => continue,
            }
        }
    }

    /// Removes the lock file; the lock itself is released when `self` is dropped.
    pub fn unlink(&self, home: &Home) {
        let _ = std::fs::remove_file(home.lock_file());
    }

    /// Keeps the descriptor alive (the lock lasts as long as it does).
    pub fn hold(&self) -> &File {
        &self.file
    }
}

/// Asks the kernel who holds the lock, without taking it.
pub fn probe_lock(home: &Home) -> LockObservation {
    let Ok(file) = File::open(home.lock_file()) else {
        return LockObservation::Free;
    };
    let mut fl = flock_struct(libc::F_WRLCK as libc::c_short);
    // SAFETY: F_GETLK with a valid flock on an open descriptor; it only fills `fl`.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut fl) };
    if rc != 0 || fl.l_type == libc::F_UNLCK as libc::c_short {
        LockObservation::Free
    } else {
        LockObservation::Held {
            pid: u32::try_from(fl.l_pid).ok().filter(|p| *p > 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::prepare_run_dir;

    #[test]
    fn lock_is_probed_free_before_and_after_but_not_while_held_elsewhere() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::new(tmp.path());
        prepare_run_dir(&home).unwrap();
        assert_eq!(probe_lock(&home), LockObservation::Free);
        let lock = DaemonLock::acquire(&home).unwrap();
        // POSIX locks never conflict with their own process, so the probe of a lock this very
        // process holds reports it free; the cross-process case is covered by the CLI tests.
        assert_eq!(probe_lock(&home), LockObservation::Free);
        lock.unlink(&home);
        drop(lock);
        assert!(!home.lock_file().exists());
    }
}
