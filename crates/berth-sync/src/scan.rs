//! Scanning one tree: every path git would consider, with what is there.
//!
//! The walk honours *that* tree's ignore rules as they are now — `.gitignore` files at every
//! level, `.git/info/exclude` and `core.excludesFile` — and never enters `.git`. Regular files
//! are hashed (blake3) only when their size, modification time or inode changed since the last
//! scan ([`Cache`]); symlinks are recorded as links, never followed; directories are entries of
//! their own (so empty ones sync too). Other file types and files over the size limit are left
//! out with a warning.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::reconcile::Entry;

/// Paths relative to the root, as bytes (names need not be UTF-8), `/`-separated.
pub type RelPath = Vec<u8>;

/// One tree at one moment.
pub type Tree = BTreeMap<RelPath, Entry>;

/// What a scan left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// A FIFO, socket or device: not synced.
    OtherType(RelPath),
    /// Larger than the limit: not synced.
    TooLarge { path: RelPath, size: u64 },
    /// Could not be read (it may have vanished during the scan).
    Unreadable { path: RelPath, error: String },
}

/// Stat data of the last hash of each file, so unchanged files are not read again.
#[derive(Debug, Default, Clone)]
pub struct Cache {
    known: BTreeMap<RelPath, (u64, i64, i64, u64, [u8; 32])>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot scan {root}: {error}")]
pub struct ScanError {
    pub root: String,
    pub error: String,
}

/// Scans `root`. Files larger than `max_size` bytes are left out (with a warning).
pub fn scan(
    root: &Path,
    cache: &mut Cache,
    max_size: u64,
) -> Result<(Tree, Vec<Warning>), ScanError> {
    let fail = |error: String| ScanError {
        root: root.display().to_string(),
        error,
    };
    if !root.is_dir() {
        return Err(fail("it is not a directory".into()));
    }
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .parents(false)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(true)
        .require_git(false)
        .follow_links(false)
        .filter_entry(|e| e.file_name() != ".git")
        .build();
    let mut tree = Tree::new();
    let mut warnings = Vec::new();
    let mut fresh = Cache::default();
    for item in walker {
        let entry = match item {
            Ok(e) => e,
            Err(e) => {
                warnings.push(Warning::Unreadable {
                    path: Vec::new(),
                    error: e.to_string(),
                });
                continue;
            }
        };
        let Ok(rel) = entry.path().strip_prefix(root) else {
            continue;
        };
        if rel.as_os_str().is_empty() {
            continue; // the root itself
        }
        let rel: RelPath = rel.as_os_str().as_bytes().to_vec();
        let meta = match std::fs::symlink_metadata(entry.path()) {
            Ok(m) => m,
            Err(e) => {
                warnings.push(Warning::Unreadable {
                    path: rel,
                    error: e.to_string(),
                });
                continue;
            }
        };
        let ft = meta.file_type();
        if ft.is_dir() {
            tree.insert(rel, Entry::Dir);
        } else if ft.is_symlink() {
            match std::fs::read_link(entry.path()) {
                Ok(t) => {
                    tree.insert(
                        rel,
                        Entry::Symlink {
                            target: t.as_os_str().as_bytes().to_vec(),
                        },
                    );
                }
                Err(e) => warnings.push(Warning::Unreadable {
                    path: rel,
                    error: e.to_string(),
                }),
            }
        } else if ft.is_file() {
            if meta.len() > max_size {
                warnings.push(Warning::TooLarge {
                    path: rel,
                    size: meta.len(),
                });
                continue;
            }
            let stamp = (meta.len(), meta.mtime(), meta.mtime_nsec(), meta.ino());
            let executable = meta.permissions().mode() & 0o111 != 0;
            let digest = match cache.known.get(&rel) {
                Some(&(len, s, ns, ino, d)) if (len, s, ns, ino) == stamp => Ok(d),
                _ => hash(entry.path()),
            };
            match digest {
                Ok(d) => {
                    fresh
                        .known
                        .insert(rel.clone(), (stamp.0, stamp.1, stamp.2, stamp.3, d));
                    tree.insert(
                        rel,
                        Entry::File {
                            digest: d,
                            executable,
                        },
                    );
                }
                Err(e) => warnings.push(Warning::Unreadable {
                    path: rel,
                    error: e.to_string(),
                }),
            }
        } else {
            warnings.push(Warning::OtherType(rel));
        }
    }
    *cache = fresh;
    Ok((tree, warnings))
}

/// blake3 of a file's content, read in bounded chunks.
pub fn hash(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(*hasher.finalize().as_bytes())
}

/// The absolute path of a relative one under `root`.
pub fn absolute(root: &Path, rel: &[u8]) -> PathBuf {
    root.join(std::ffi::OsStr::from_bytes(rel))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn write(root: &Path, rel: &str, bytes: &[u8]) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    fn keys(t: &Tree) -> Vec<String> {
        t.keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect()
    }

    #[test]
    fn sees_files_links_and_empty_directories_but_not_git_or_ignored_files() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, ".gitignore", b"*.log\nbuild/\n");
        write(r, "src/main.rs", b"fn main() {}\n");
        write(r, "src/.gitignore", b"secret.txt\n");
        write(r, "src/secret.txt", b"ignored by the nested .gitignore\n");
        write(r, "debug.log", b"ignored\n");
        write(r, "build/out", b"ignored dir\n");
        write(r, ".git/info/exclude", b"local-only\n");
        write(r, "local-only", b"ignored by .git/info/exclude\n");
        write(r, ".git/HEAD", b"ref: refs/heads/main\n");
        std::fs::create_dir(r.join("empty")).unwrap();
        symlink("src/main.rs", r.join("link")).unwrap();
        std::fs::write(
            r.join(std::ffi::OsStr::from_bytes(b"bytes-\xff")),
            b"non-utf8 name",
        )
        .unwrap();
        let (tree, warnings) = scan(r, &mut Cache::default(), u64::MAX).unwrap();
        assert_eq!(
            keys(&tree),
            [
                ".gitignore",
                "bytes-\u{fffd}",
                "empty",
                "link",
                "src",
                "src/.gitignore",
                "src/main.rs"
            ]
        );
        assert!(
            tree.contains_key(b"bytes-\xff".as_slice()),
            "raw bytes are kept"
        );
        assert_eq!(
            tree[&b"link".to_vec()],
            Entry::Symlink {
                target: b"src/main.rs".to_vec()
            }
        );
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn ignore_rules_are_read_live() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "a.tmp", b"x");
        let (first, _) = scan(r, &mut Cache::default(), u64::MAX).unwrap();
        assert!(first.contains_key(b"a.tmp".as_slice()));
        write(r, ".gitignore", b"*.tmp\n");
        let (second, _) = scan(r, &mut Cache::default(), u64::MAX).unwrap();
        assert!(!second.contains_key(b"a.tmp".as_slice()));
    }

    #[test]
    fn executable_bits_large_files_and_other_types() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "run.sh", b"#!/bin/sh\n");
        std::fs::set_permissions(r.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        write(r, "big.bin", &[0u8; 2048]);
        let fifo = std::ffi::CString::new(r.join("pipe").as_os_str().as_bytes()).unwrap();
        // SAFETY: mkfifo(3) with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let (tree, warnings) = scan(r, &mut Cache::default(), 1024).unwrap();
        assert!(matches!(
            tree[&b"run.sh".to_vec()],
            Entry::File {
                executable: true,
                ..
            }
        ));
        assert!(!tree.contains_key(b"big.bin".as_slice()));
        assert!(warnings.contains(&Warning::TooLarge {
            path: b"big.bin".to_vec(),
            size: 2048
        }));
        assert!(warnings.contains(&Warning::OtherType(b"pipe".to_vec())));
    }

    #[test]
    fn unchanged_stat_data_is_served_from_the_cache_and_changes_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "f", b"one");
        let mut cache = Cache::default();
        let (t1, _) = scan(r, &mut cache, u64::MAX).unwrap();
        // Same size, same inode, same mtime: the scan trusts its cache and does not re-read.
        let mtime = std::fs::metadata(r.join("f")).unwrap().modified().unwrap();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(r.join("f"))
            .unwrap();
        std::io::Write::write_all(&mut &f, b"two").unwrap();
        f.set_modified(mtime).unwrap();
        drop(f);
        let (t2, _) = scan(r, &mut cache, u64::MAX).unwrap();
        assert_eq!(t2, t1, "not re-read");
        // A new mtime is a change: hashed again.
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(r.join("f"))
            .unwrap();
        f.set_modified(mtime + std::time::Duration::from_secs(1))
            .unwrap();
        drop(f);
        let (t3, _) = scan(r, &mut cache, u64::MAX).unwrap();
        assert_ne!(t3, t1);
    }
}
