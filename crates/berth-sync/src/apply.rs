//! Applying one decision to one tree: atomically, and never outside the root.
//!
//! Every path from the other side is checked first ([`check_rel`]: no absolute path, no `..`,
//! no `.`, no empty component, no NUL). Then the parent directory is reached one component at a
//! time with `openat(O_NOFOLLOW | O_DIRECTORY)` from a descriptor of the root, so a symlink
//! anywhere on the way — even one swapped in during the walk — makes the open fail instead of
//! leading elsewhere. The new content is written to a temporary name in that same directory and
//! renamed over the target (`renameat`): a reader sees the old file or the new one, never a
//! part, and a failed write (disk full, permission) leaves only the old file.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::reconcile::Entry;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("refusing the path {0:?}: it could leave the synced directory")]
    BadPath(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Safety halt: one root is empty or gone while the other still holds what both agreed
    /// on. Syncing would empty the other side too, so it stops until the root is back.
    #[error(
        "{root} is empty or gone; syncing halts so that the other side is not emptied too (it resumes when the files are back)"
    )]
    RootEmptied { root: String },
    /// The round would delete more paths at once than the sides allow without waiting
    /// ([`crate::engine::DELETION_BURST`]); nothing was written: it waits until the side they
    /// vanished from is quiet.
    #[error("{deletions} paths vanished from {root}; waiting until it is quiet")]
    Burst { root: String, deletions: usize },
    /// The gate ([`crate::gate`]) did not let the round apply anything; nothing was written.
    #[error("{why}")]
    Gated { busy: bool, why: String },
}

impl ApplyError {
    /// Disk full, permission denied, or an emptied root: a condition that pauses syncing
    /// until a retry succeeds.
    pub fn is_pausing(&self) -> bool {
        match self {
            ApplyError::RootEmptied { .. } => true,
            ApplyError::Io { source, .. } => matches!(
                source.raw_os_error(),
                Some(libc::ENOSPC | libc::EDQUOT | libc::EACCES | libc::EPERM | libc::EROFS)
            ),
            ApplyError::BadPath(_) | ApplyError::Gated { .. } | ApplyError::Burst { .. } => false,
        }
    }
}

/// The components of a relative path from the other side, or an error if it is unsafe.
pub fn check_rel(rel: &[u8]) -> Result<Vec<&[u8]>, ApplyError> {
    let bad = || ApplyError::BadPath(String::from_utf8_lossy(rel).into_owned());
    if rel.is_empty() || rel.starts_with(b"/") || rel.contains(&0) {
        return Err(bad());
    }
    let parts: Vec<&[u8]> = rel.split(|b| *b == b'/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == b"." || *p == b"..")
    {
        return Err(bad());
    }
    Ok(parts)
}

fn cstr(part: &[u8], rel: &[u8]) -> Result<CString, ApplyError> {
    CString::new(part).map_err(|_| ApplyError::BadPath(String::from_utf8_lossy(rel).into_owned()))
}

fn io(rel: &[u8]) -> impl Fn(std::io::Error) -> ApplyError + '_ {
    move |source| ApplyError::Io {
        path: String::from_utf8_lossy(rel).into_owned(),
        source,
    }
}

fn last_error<T>(rel: &[u8]) -> Result<T, ApplyError> {
    Err(io(rel)(std::io::Error::last_os_error()))
}

fn open_dir_at(dir: i32, name: &CString, rel: &[u8]) -> Result<OwnedFd, ApplyError> {
    // SAFETY: openat(2) with a valid directory descriptor and NUL-terminated name.
    let fd = unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return last_error(rel);
    }
    // SAFETY: a descriptor openat just returned, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the parent directory of `rel` under `root`, creating missing directories, never
/// following a symlink. Returns it and the last component's name.
fn parent(root: &Path, rel: &[u8]) -> Result<(OwnedFd, CString), ApplyError> {
    let parts = check_rel(rel)?;
    let root_c = CString::new(root.as_os_str().as_encoded_bytes())
        .map_err(|_| ApplyError::BadPath(root.display().to_string()))?;
    // SAFETY: open(2) of the root itself (the caller's own directory).
    let fd = unsafe {
        libc::open(
            root_c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return last_error(rel);
    }
    // SAFETY: as above.
    let mut dir = unsafe { OwnedFd::from_raw_fd(fd) };
    let (last, dirs) = parts
        .split_last()
        .ok_or_else(|| ApplyError::BadPath(String::new()))?;
    for part in dirs {
        let name = cstr(part, rel)?;
        let next = match open_dir_at(dir.as_raw_fd(), &name, rel) {
            Ok(d) => d,
            Err(ApplyError::Io { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) => {
                // SAFETY: mkdirat(2) with a valid directory descriptor and name.
                if unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) } != 0 {
                    let e = std::io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::EEXIST) {
                        return Err(io(rel)(e));
                    }
                }
                open_dir_at(dir.as_raw_fd(), &name, rel)?
            }
            Err(e) => return Err(e),
        };
        dir = next;
    }
    Ok((dir, cstr(last, rel)?))
}

/// The start of the name of every temporary file berth writes (next to its target).
pub const TEMP_PREFIX: &[u8] = b".berth-tmp-";

/// Whether `rel` names one of berth's temporary files (never synced, its events never matter).
pub fn is_temp(rel: &[u8]) -> bool {
    rel.rsplit(|b| *b == b'/')
        .next()
        .is_some_and(|n| n.starts_with(TEMP_PREFIX))
}

/// Whether `name` (one component) is a temporary file another process wrote: one killed in
/// the middle of an apply, since a tree is written by one process at a time. Ours
/// (`.berth-tmp-<our pid>-…`) may be a write in flight.
pub fn is_stale_temp(name: &[u8]) -> bool {
    let Some(rest) = name.strip_prefix(TEMP_PREFIX) else {
        return false;
    };
    let pid = rest.split(|b| *b == b'-').next().unwrap_or_default();
    pid != std::process::id().to_string().as_bytes()
}

/// Removes berth's temporary files under `root` (`.git` left alone): the stale ones
/// ([`is_stale_temp`]), or all of them when no write of this process can be in flight there
/// (`only_stale` false). Unreadable directories are skipped.
pub fn remove_temps(root: &Path, only_stale: bool) {
    let Ok(read) = std::fs::read_dir(root) else {
        return;
    };
    for item in read.flatten() {
        let name = item.file_name();
        let name = name.as_encoded_bytes();
        let Ok(kind) = item.file_type() else { continue };
        if kind.is_dir() {
            if name != b".git" {
                remove_temps(&item.path(), only_stale);
            }
        } else if name.starts_with(TEMP_PREFIX) && (!only_stale || is_stale_temp(name)) {
            let _ = std::fs::remove_file(item.path());
        }
    }
}

fn temp_name(last: &CString) -> CString {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut name = TEMP_PREFIX.to_vec();
    name.extend_from_slice(format!("{}-{n}-", std::process::id()).as_bytes());
    name.extend_from_slice(last.as_bytes());
    name.truncate(200);
    CString::new(name).unwrap_or_default()
}

/// Removes what is at `name` in `dir` (a file, a link, or an empty directory); absent is fine.
fn remove_at(dir: i32, name: &CString, rel: &[u8]) -> Result<(), ApplyError> {
    // SAFETY: unlinkat(2) with a valid directory descriptor and name.
    if unsafe { libc::unlinkat(dir, name.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOENT) => Ok(()),
        Some(libc::EISDIR) => {
            // SAFETY: as above, for a directory.
            if unsafe { libc::unlinkat(dir, name.as_ptr(), libc::AT_REMOVEDIR) } == 0 {
                Ok(())
            } else {
                last_error(rel)
            }
        }
        _ => Err(io(rel)(e)),
    }
}

/// Makes `rel` under `root` hold `entry` (`None`: nothing) and returns what it now holds. A
/// file's content is copied from `content` (a file of the other side, or the bytes arriving
/// from a remote one) through a bounded buffer (so large files need little memory) and hashed
/// on the way: if the source changed since it was scanned, the returned entry describes what
/// was really written.
///
/// Files are not flushed to disk one by one (that would cost a millisecond or more each); the
/// rename is atomic for every reader, and durability across a power cut is the file system's.
pub fn apply(
    root: &Path,
    rel: &[u8],
    entry: Option<&Entry>,
    content: Option<&mut dyn Read>,
) -> Result<Option<Entry>, ApplyError> {
    // Errors name the path in the root written to, so the owner can tell which side failed.
    apply_in(root, rel, entry, content).map_err(|e| match e {
        ApplyError::Io { path, source } => ApplyError::Io {
            path: root.join(&path).display().to_string(),
            source,
        },
        other => other,
    })
}

fn apply_in(
    root: &Path,
    rel: &[u8],
    entry: Option<&Entry>,
    content: Option<&mut dyn Read>,
) -> Result<Option<Entry>, ApplyError> {
    let (dir, name) = parent(root, rel)?;
    let d = dir.as_raw_fd();
    match entry {
        None => remove_at(d, &name, rel).map(|()| None),
        Some(Entry::Dir) => {
            // SAFETY: mkdirat(2) with a valid directory descriptor and name.
            if unsafe { libc::mkdirat(d, name.as_ptr(), 0o755) } == 0 {
                return Ok(Some(Entry::Dir));
            }
            match open_dir_at(d, &name, rel) {
                Ok(_) => Ok(Some(Entry::Dir)), // already a directory
                Err(_) => {
                    // Something else is there (a file, a link): replace it.
                    remove_at(d, &name, rel)?;
                    // SAFETY: as above.
                    if unsafe { libc::mkdirat(d, name.as_ptr(), 0o755) } == 0 {
                        Ok(Some(Entry::Dir))
                    } else {
                        last_error(rel)
                    }
                }
            }
        }
        Some(link @ Entry::Symlink { target }) => {
            let tmp = temp_name(&name);
            let target = cstr(target, rel)?;
            // SAFETY: symlinkat(2) creating a new link named `tmp` in `d`.
            if unsafe { libc::symlinkat(target.as_ptr(), d, tmp.as_ptr()) } != 0 {
                return last_error(rel);
            }
            rename_into_place(d, &tmp, &name, rel)?;
            Ok(Some(link.clone()))
        }
        Some(Entry::File { executable, .. }) => {
            let tmp = temp_name(&name);
            let mode = if *executable { 0o755 } else { 0o644 };
            // SAFETY: openat(2) creating a new file that must not exist, never following a link.
            let fd = unsafe {
                libc::openat(
                    d,
                    tmp.as_ptr(),
                    libc::O_WRONLY
                        | libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_NOFOLLOW
                        | libc::O_CLOEXEC,
                    mode,
                )
            };
            if fd < 0 {
                return last_error(rel);
            }
            // SAFETY: the descriptor just created, owned here.
            let mut out = unsafe { File::from_raw_fd(fd) };
            let written = (|| -> std::io::Result<[u8; 32]> {
                let mut hasher = blake3::Hasher::new();
                if let Some(input) = content {
                    let mut buf = vec![0u8; 256 * 1024];
                    loop {
                        let n = input.read(&mut buf)?;
                        if n == 0 {
                            break;
                        }
                        out.write_all(&buf[..n])?;
                        hasher.update(&buf[..n]);
                        if let Some(e) = crate::failpoint::hit("sync.write") {
                            return Err(e);
                        }
                    }
                }
                // The umask may have cut the mode: set it exactly.
                out.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
                Ok(*hasher.finalize().as_bytes())
            })();
            drop(out);
            let digest = match written {
                Ok(digest) => match crate::failpoint::hit(crate::failpoint::APPLY_TEMP_WRITTEN) {
                    None => digest,
                    Some(e) => {
                        // SAFETY: unlinkat(2) of the temporary this function created.
                        unsafe { libc::unlinkat(d, tmp.as_ptr(), 0) };
                        return Err(io(rel)(e));
                    }
                },
                Err(e) => {
                    // Nothing partial stays visible: the temporary goes, the old file stays.
                    // SAFETY: unlinkat(2) of the temporary this function created.
                    unsafe { libc::unlinkat(d, tmp.as_ptr(), 0) };
                    return Err(io(rel)(e));
                }
            };
            rename_into_place(d, &tmp, &name, rel)?;
            if let Some(e) = crate::failpoint::hit(crate::failpoint::APPLY_RENAMED) {
                return Err(io(rel)(e));
            }
            Ok(Some(Entry::File {
                digest,
                executable: *executable,
            }))
        }
    }
}

fn rename_into_place(d: i32, tmp: &CString, name: &CString, rel: &[u8]) -> Result<(), ApplyError> {
    // SAFETY: renameat(2) within one directory descriptor.
    if unsafe { libc::renameat(d, tmp.as_ptr(), d, name.as_ptr()) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    // A directory in the way (replaced by a file or a link): remove it if empty, then retry.
    if matches!(
        e.raw_os_error(),
        Some(libc::EISDIR) | Some(libc::ENOTEMPTY) | Some(libc::EEXIST)
    ) {
        // SAFETY: as in remove_at.
        if unsafe { libc::unlinkat(d, name.as_ptr(), libc::AT_REMOVEDIR) } == 0
            // SAFETY: as above.
            && unsafe { libc::renameat(d, tmp.as_ptr(), d, name.as_ptr()) } == 0
        {
            return Ok(());
        }
    }
    // SAFETY: unlinkat(2) of our own temporary.
    unsafe { libc::unlinkat(d, tmp.as_ptr(), 0) };
    Err(io(rel)(e))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    fn file(exec: bool) -> Entry {
        Entry::File {
            digest: [0; 32],
            executable: exec,
        }
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for bad in [
            &b""[..],
            b"/etc/passwd",
            b"../x",
            b"a/../../x",
            b"a//b",
            b"./a",
            b"a/.",
            b"a\0b",
        ] {
            assert!(
                matches!(check_rel(bad), Err(ApplyError::BadPath(_))),
                "{bad:?}"
            );
        }
        assert_eq!(check_rel(b"a/b c/\xff").unwrap().len(), 3);
    }

    #[test]
    fn writes_files_links_and_directories_atomically_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let (root, src) = (dir.path().join("root"), dir.path().join("src"));
        std::fs::create_dir(&root).unwrap();
        std::fs::write(&src, b"content").unwrap();
        apply(
            &root,
            b"deep/new/file.sh",
            Some(&file(true)),
            Some(&mut File::open(&src).unwrap()),
        )
        .unwrap();
        let written = root.join("deep/new/file.sh");
        assert_eq!(std::fs::read(&written).unwrap(), b"content");
        assert_eq!(
            std::fs::metadata(&written).unwrap().permissions().mode() & 0o777,
            0o755
        );
        apply(
            &root,
            b"link",
            Some(&Entry::Symlink {
                target: b"deep".to_vec(),
            }),
            None,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_link(root.join("link")).unwrap(),
            Path::new("deep")
        );
        apply(&root, b"empty", Some(&Entry::Dir), None).unwrap();
        assert!(root.join("empty").is_dir());
        // Type changes both ways, and deletion.
        apply(
            &root,
            b"empty",
            Some(&file(false)),
            Some(&mut File::open(&src).unwrap()),
        )
        .unwrap();
        assert!(root.join("empty").is_file());
        apply(&root, b"empty", Some(&Entry::Dir), None).unwrap();
        assert!(root.join("empty").is_dir());
        apply(&root, b"empty", None, None).unwrap();
        assert!(!root.join("empty").exists());
        let leftovers: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".berth-tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn a_symlinked_directory_component_never_leads_a_write_outside() {
        let dir = tempfile::tempdir().unwrap();
        let (root, outside, src) = (
            dir.path().join("root"),
            dir.path().join("outside"),
            dir.path().join("src"),
        );
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(&src, b"payload").unwrap();
        symlink(&outside, root.join("escape")).unwrap();
        let err = apply(
            &root,
            b"escape/owned.txt",
            Some(&file(false)),
            Some(&mut File::open(&src).unwrap()),
        )
        .unwrap_err();
        assert!(matches!(err, ApplyError::Io { .. }), "{err}");
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "nothing written outside the root"
        );
        // Replacing the link itself (as an entry) is fine and stays inside.
        apply(
            &root,
            b"escape",
            Some(&file(false)),
            Some(&mut File::open(&src).unwrap()),
        )
        .unwrap();
        assert!(root.join("escape").is_file());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn temporary_files_of_another_process_are_stale_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("d/.git")).unwrap();
        let ours = format!(".berth-tmp-{}-5-mine", std::process::id());
        for rel in [
            "d/.berth-tmp-1-2-f",
            "d/.git/.berth-tmp-1-2-g",
            ".berth-tmp-4194305-9-x",
            &ours,
            "keep.txt",
        ] {
            std::fs::write(root.join(rel), b"x").unwrap();
        }
        assert!(is_stale_temp(b".berth-tmp-1-2-f") && !is_stale_temp(ours.as_bytes()));
        assert!(!is_stale_temp(b"plain"));
        remove_temps(root, true);
        let left = |rel: &str| root.join(rel).exists();
        assert!(!left("d/.berth-tmp-1-2-f") && !left(".berth-tmp-4194305-9-x"));
        assert!(left(&ours) && left("keep.txt") && left("d/.git/.berth-tmp-1-2-g"));
        remove_temps(root, false);
        assert!(!left(&ours) && left("keep.txt"));
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_partial_one() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("f"), b"old").unwrap();
        // A source that fails midway (a file that vanished, a connection that broke).
        struct Broken(usize);
        impl Read for Broken {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.0 += 1;
                if self.0 > 1 {
                    return Err(std::io::Error::other("the source broke"));
                }
                buf[0] = b'x';
                Ok(1)
            }
        }
        let err = apply(&root, b"f", Some(&file(false)), Some(&mut Broken(0))).unwrap_err();
        assert!(matches!(err, ApplyError::Io { .. }));
        assert_eq!(std::fs::read(root.join("f")).unwrap(), b"old");
        assert_eq!(
            std::fs::read_dir(&root).unwrap().count(),
            1,
            "no temporary left"
        );
    }

    #[test]
    fn disk_full_and_permission_errors_are_pausing_conditions() {
        let full = ApplyError::Io {
            path: "f".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOSPC),
        };
        let denied = ApplyError::Io {
            path: "f".into(),
            source: std::io::Error::from_raw_os_error(libc::EACCES),
        };
        let other = ApplyError::Io {
            path: "f".into(),
            source: std::io::Error::from_raw_os_error(libc::EIO),
        };
        assert!(full.is_pausing() && denied.is_pausing() && !other.is_pausing());
        assert!(!ApplyError::BadPath("x".into()).is_pausing());
    }
}
