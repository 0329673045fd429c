//! Runtime files under `run/`: the directory itself, atomic writes, removal, and descriptors
//! inherited from the process that spawned the daemon.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use berth_core::home::Home;

/// Creates `run/` with mode 0700, or tightens it to 0700 if it exists; refuses one owned by
/// another user.
pub fn prepare_run_dir(home: &Home) -> std::io::Result<()> {
    let dir = home.run_dir();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let meta = std::fs::metadata(&dir)?;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} belongs to uid {}, not to you (uid {me}); use a BERTH_HOME of your own",
                dir.display(),
                meta.uid()
            ),
        ));
    }
    if meta.permissions().mode() & 0o777 != 0o700 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Takes ownership of a descriptor inherited from the parent process (`flag` names the option
/// that passed it, for errors) and marks it close-on-exec so nothing spawned later inherits it.
///
/// Refuses descriptors 0–2 and descriptors that are not open, so a wrong number cannot make the
/// daemon take over its own standard streams.
pub fn take_inherited_fd(fd: RawFd, flag: &str) -> std::io::Result<File> {
    if fd <= 2 {
        return Err(std::io::Error::other(format!(
            "{flag} {fd} is a standard stream; it must name an inherited pipe"
        )));
    }
    // SAFETY: fcntl(F_GETFD) only queries the descriptor table.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(std::io::Error::other(format!(
            "{flag} {fd} is not an open descriptor"
        )));
    }
    // SAFETY: as above, on a descriptor just checked to be open.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: the descriptor is open, not a standard stream, and was handed to this process for
    // this purpose alone; nothing else in the process owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader sees the old content or the new, never a part. Mode 0600.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes a file, treating "already gone" as success.
pub fn remove_if_present(path: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn run_dir_is_created_and_tightened_to_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::new(tmp.path());
        prepare_run_dir(&home).unwrap();
        assert_eq!(mode(&home.run_dir()), 0o700);
        std::fs::set_permissions(home.run_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare_run_dir(&home).unwrap();
        assert_eq!(mode(&home.run_dir()), 0o700);
    }

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temporary() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f.json");
        write_atomically(&p, b"one").unwrap();
        write_atomically(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
        assert!(remove_if_present(&p).unwrap());
        assert!(!remove_if_present(&p).unwrap());
    }
}
