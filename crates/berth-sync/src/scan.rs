//! Scanning one tree: every path git would consider, with what is there.
//!
//! The walk honours *that* tree's ignore rules as they are now ([`crate::ignores`]) and never
//! enters `.git`. Regular files are hashed (blake3) only when their stat data changed since they
//! were last hashed (and not "racily": see `Hashed::holds_for`); symlinks are recorded as
//! links, never followed; directories are entries of their own (so empty ones sync too). Other
//! file types and files over the size limit are left out with a warning.
//!
//! A [`Scanner`] scans its whole tree ([`Scanner::full`]) or just what is at and below one path
//! ([`Scanner::under`], what the watcher asks for), and recognises the events of berth's own
//! writes ([`Scanner::is_echo`]).

use std::collections::{BTreeMap, HashMap};

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ignore::gitignore::Gitignore;

use crate::ignores::{Chain, Ignores};
use crate::pathmap::PathMap;
use crate::reconcile::Entry;
use crate::relpath::{self, RelPath};

/// One tree at one moment.
pub type Tree = BTreeMap<RelPath, Entry>;

/// What a scan left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Warning {
    /// A FIFO, socket or device: not synced.
    OtherType(RelPath),
    /// Larger than the limit: not synced.
    TooLarge { path: RelPath, size: u64 },
    /// Could not be read (it may have vanished during the scan).
    Unreadable { path: RelPath, error: String },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::OtherType(p) => write!(
                f,
                "{}: not a file, link or directory; skipped",
                String::from_utf8_lossy(p)
            ),
            Warning::TooLarge { path, size } => write!(
                f,
                "{}: {size} bytes, over the limit; skipped",
                String::from_utf8_lossy(path)
            ),
            Warning::Unreadable { path, error } => {
                write!(f, "{}: {error}", String::from_utf8_lossy(path))
            }
        }
    }
}

impl Warning {
    /// The path the warning is about.
    pub fn path(&self) -> &RelPath {
        match self {
            Warning::TooLarge { path, .. }
            | Warning::OtherType(path)
            | Warning::Unreadable { path, .. } => path,
        }
    }
}

/// What `lstat` says about a path: enough to tell that it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
    mode: u32,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
            mode: meta.mode(),
        }
    }

    fn ctime_ns(&self) -> i128 {
        i128::from(self.ctime.0) * 1_000_000_000 + i128::from(self.ctime.1)
    }

    /// Whether the inode last changed clearly before `at` (ns since the epoch). If not, the
    /// stamp is *racy*: the file system's clock ticks coarsely, so a same-size write in the same
    /// tick would leave every field as it is. ctime is what is compared because a write moves it
    /// as far as mtime and no program can set it back.
    fn settled_before(&self, at: i128) -> bool {
        self.ctime_ns() < at - CLOCK_SLACK_NS
    }
}

/// A file's digest and the stat data it was computed for, kept only when the digest can be
/// trusted again while those stay the same: the inode had settled clearly before it was hashed
/// (see [`Stamp::settled_before`]; a racy digest is never used again, so it is not kept). One is
/// kept per file of a tree for as long as a pairing lasts, so it is 56 bytes: size, inode and
/// ctime (as nanoseconds since the epoch: a file whose ctime lies outside 1677–2262 is simply
/// not kept, and is read again at every scan). Neither mtime nor the mode is needed: whatever
/// changes them (a write, a truncation, `utimes`, `chmod`) sets ctime to the present, which is
/// after the hash, so the settled ctime no longer matches; and no program can set ctime.
#[derive(Debug, Clone, Copy)]
struct Hashed {
    size: u64,
    ctime: i64,
    ino: u64,
    digest: [u8; 32],
}

/// How far the file system's clock may lag the real one (it ticks coarsely).
const CLOCK_SLACK_NS: i128 = 50_000_000;

pub(crate) fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// A `(seconds, nanoseconds)` time as nanoseconds since the epoch, if it fits in 64 bits.
fn time_ns((secs, nanos): (i64, i64)) -> Option<i64> {
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

impl Hashed {
    /// What to keep of `digest`, computed from a read that began at `at` (ns since the epoch)
    /// of a file with stat data `stamp`; `None` when it cannot be trusted again.
    fn new(stamp: &Stamp, digest: [u8; 32], at: i128) -> Option<Hashed> {
        if !stamp.settled_before(at) {
            return None;
        }
        Some(Hashed {
            size: stamp.size,
            ctime: time_ns(stamp.ctime)?,
            ino: stamp.ino,
            digest,
        })
    }

    /// Whether the digest still holds for a file with stat data `now`: the same size, inode
    /// and ctime. (Only digests that had settled are kept: a file whose inode changed *while
    /// or after* it was hashed is read again, since a write in the same clock tick would leave
    /// its stat data unchanged; `ctime` cannot be set by a program, so a later change always
    /// moves it.)
    fn holds_for(&self, now: &Stamp) -> bool {
        self.size == now.size && self.ino == now.ino && time_ns(now.ctime) == Some(self.ctime)
    }
}

/// How long a recorded write of berth's own waits for its event (ns). Events come within
/// milliseconds, or a round later when the loop was busy; when the queue overflowed they never
/// come (a large first copy or rewrite overflows it), and a record kept for them would stay for
/// good: 50,000 of them after the first copy of a 50,000-file tree, 9.5 MiB. A record dropped
/// too early costs nothing but a look at that path, which finds it as the ancestor has it.
const ECHO_WINDOW_NS: i128 = 10_000_000_000;

/// One of berth's own writes: what it wrote, the stat data right after, and when it recorded
/// them (ns since the epoch).
#[derive(Debug, Clone)]
struct Written {
    entry: Entry,
    stamp: Stamp,
    at: i128,
}

impl Written {
    /// Whether `path`, with stat data `now`, is still exactly what berth wrote. Equal stat data
    /// is enough only when the write had settled before berth recorded it; otherwise the file is
    /// *racily clean* (as git says of its index): a write by someone else in the same clock tick
    /// would leave the stat data unchanged, so the content is compared. A write berth just made
    /// is nearly always racy, so an echo costs one read of the file it wrote.
    fn matches(&self, path: &Path, now: &Stamp) -> bool {
        if self.stamp != *now {
            return false;
        }
        if self.stamp.settled_before(self.at) {
            return true;
        }
        match &self.entry {
            Entry::File { digest, .. } => hash(path).is_ok_and(|d| d == *digest),
            Entry::Symlink { target } => {
                std::fs::read_link(path).is_ok_and(|t| t.as_os_str().as_bytes() == target)
            }
            // A directory has no content of its own; what is inside has events of its own.
            Entry::Dir => true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot scan {root}: {error}")]
pub struct ScanError {
    pub root: String,
    pub error: String,
}

/// Scans one tree, remembering what it hashed (so unchanged files are not read again), the
/// tree's ignore rules, and berth's own recent writes (so their events are recognised).
#[derive(Debug)]
pub struct Scanner {
    root: PathBuf,
    max_size: u64,
    hashed: PathMap<Hashed>,
    hashes: u64,
    written: HashMap<RelPath, Written>,
    /// When records older than [`ECHO_WINDOW_NS`] were last dropped (ns since the epoch).
    written_pruned: i128,
    ignores: Ignores,
}

impl Scanner {
    /// A scanner of `root`; files larger than `max_size` bytes are left out with a warning.
    pub fn new(root: &Path, max_size: u64) -> Scanner {
        Scanner {
            root: root.to_path_buf(),
            max_size,
            hashed: PathMap::default(),
            hashes: 0,
            written: HashMap::new(),
            written_pruned: 0,
            ignores: Ignores::new(root),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How many times a file was read to hash it, in total.
    pub fn hashes(&self) -> u64 {
        self.hashes
    }

    /// Writes the digests it keeps to `file` (replaced whole, through a temporary file beside
    /// it), so that a later scanner of the same tree starts with them ([`Scanner::load_hashes`]).
    pub fn save_hashes(&self, file: &Path) -> std::io::Result<()> {
        let dev = std::fs::metadata(&self.root)?.dev();
        let root = self.root.as_os_str().as_bytes();
        let mut out = Vec::with_capacity(64 + root.len() + self.hashed.len() * 80);
        out.extend_from_slice(HASHES_MAGIC);
        out.extend_from_slice(&dev.to_le_bytes());
        out.extend_from_slice(&(root.len() as u64).to_le_bytes());
        out.extend_from_slice(root);
        for (path, h) in self.hashed.iter() {
            out.extend_from_slice(&(path.len() as u64).to_le_bytes());
            out.extend_from_slice(&path);
            out.extend_from_slice(&h.size.to_le_bytes());
            out.extend_from_slice(&h.ctime.to_le_bytes());
            out.extend_from_slice(&h.ino.to_le_bytes());
            out.extend_from_slice(&h.digest);
        }
        let mut tmp = file.as_os_str().to_owned();
        tmp.push(format!(".{}.tmp", std::process::id()));
        std::fs::write(&tmp, &out)?;
        std::fs::rename(&tmp, file).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }

    /// Starts with the digests [`Scanner::save_hashes`] wrote to `file` for this very tree
    /// (same root, same file system), when it has none of its own yet. They are trusted
    /// exactly as the ones it computes itself: only for a file whose size, inode and ctime are
    /// still the ones it was hashed with, ctime having settled before the hash; anything else
    /// is read again. Whether any were taken (a missing, foreign or damaged file: none).
    pub fn load_hashes(&mut self, file: &Path) -> bool {
        if !self.hashed.is_empty() {
            return false;
        }
        let (Ok(bytes), Ok(meta)) = (std::fs::read(file), std::fs::metadata(&self.root)) else {
            return false;
        };
        match parse_hashes(&bytes, meta.dev(), self.root.as_os_str().as_bytes()) {
            Some(items) => {
                self.hashed = PathMap::from_unsorted(items);
                true
            }
            None => false,
        }
    }

    /// The whole tree, with the ignore rules read afresh.
    pub fn full(&mut self) -> Result<(Tree, Vec<Warning>), ScanError> {
        if !self.root.is_dir() {
            return Err(ScanError {
                root: self.root.display().to_string(),
                error: "it is not a directory".into(),
            });
        }
        self.forget_old_writes(now_ns());
        self.ignores.forget();
        let mut out = Tree::new();
        let mut warnings = Vec::new();
        let old = std::mem::take(&mut self.hashed);
        let mut fresh = Vec::new();
        let mut walk = Walk {
            scanner: self,
            old: &old,
            fresh: &mut fresh,
            out: &mut out,
            warnings: &mut warnings,
        };
        walk.dir(Vec::new(), &Chain::new());
        drop(old);
        self.hashed = PathMap::from_unsorted(fresh);
        self.ignores.pack();
        Ok((out, warnings))
    }

    /// `rel` and everything below it, as now on disk (nothing when it, or a directory on the
    /// way to it, is missing, ignored, or not a directory).
    pub fn under(&mut self, rel: &[u8]) -> (Tree, Vec<Warning>) {
        let mut out = Tree::new();
        let mut warnings = Vec::new();
        let old = std::mem::take(&mut self.hashed);
        let mut fresh = Vec::new();
        if self.reachable(rel)
            && let Ok(meta) = std::fs::symlink_metadata(relpath::absolute(&self.root, rel))
            && !self.ignores.is_ignored_with_parents(rel, meta.is_dir())
        {
            let above = self.ignores.chain_above(rel);
            let mut walk = Walk {
                scanner: self,
                old: &old,
                fresh: &mut fresh,
                out: &mut out,
                warnings: &mut warnings,
            };
            walk.entry(rel.to_vec(), &meta, &above);
        }
        self.hashed = old;
        // What the cache knew at and below `rel` is replaced by what the walk found there.
        let stale: Vec<RelPath> = self.hashed.subtree(rel).map(|(p, _)| p).collect();
        for p in stale {
            self.hashed.set(&p, None);
        }
        for (p, h) in fresh {
            self.hashed.set(&p, Some(h));
        }
        (out, warnings)
    }

    /// Whether every directory on the way to `rel` is a real directory (not a link), and no
    /// component is `.git`.
    fn reachable(&self, rel: &[u8]) -> bool {
        if rel.is_empty() || rel.split(|b| *b == b'/').any(|c| c == b".git") {
            return false;
        }
        rel.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'/')
            .all(|(i, _)| {
                std::fs::symlink_metadata(relpath::absolute(&self.root, &rel[..i]))
                    .is_ok_and(|m| m.is_dir())
            })
    }

    /// Records that berth itself just wrote `entry` at `rel` (`None`: removed it), so the event
    /// it causes is recognised.
    pub fn wrote(&mut self, rel: &[u8], entry: Option<&Entry>) {
        self.forget_old_writes(now_ns());
        let meta = std::fs::symlink_metadata(relpath::absolute(&self.root, rel));
        match (entry, meta) {
            (Some(entry), Ok(m)) => self.written.insert(
                rel.to_vec(),
                Written {
                    entry: entry.clone(),
                    stamp: Stamp::of(&m),
                    at: now_ns(),
                },
            ),
            _ => self.written.remove(rel),
        };
    }

    /// Drops the records of berth's own writes whose events did not come within
    /// [`ECHO_WINDOW_NS`] before `now` (looked at once per window; called on every write and
    /// full scan, and by the heartbeat while the tree is idle).
    pub fn forget_old_writes(&mut self, now: i128) {
        if now - self.written_pruned < ECHO_WINDOW_NS {
            return;
        }
        self.written_pruned = now;
        self.written.retain(|_, w| now - w.at < ECHO_WINDOW_NS);
        if self.written.capacity() > 4 * self.written.len().max(256) {
            self.written.shrink_to_fit();
        }
    }

    /// Whether an event on `rel` is only the echo of berth's own last write there (the path
    /// is exactly as berth left it: same stat data and, when those are racy, same content).
    /// Each recorded write answers once.
    pub fn is_echo(&mut self, rel: &[u8]) -> bool {
        let Some(written) = self.written.remove(rel) else {
            return false;
        };
        let path = relpath::absolute(&self.root, rel);
        std::fs::symlink_metadata(&path).is_ok_and(|m| written.matches(&path, &Stamp::of(&m)))
    }

    /// Whether the root is gone, or holds nothing but `.git`.
    pub fn root_is_empty(&self) -> bool {
        match std::fs::read_dir(&self.root) {
            Ok(mut entries) => {
                !entries.any(|e| e.is_ok_and(|e| e.file_name().as_bytes() != b".git"))
            }
            Err(_) => true,
        }
    }

    /// Adds extra exclusions (gitignore syntax) on top of the tree's own rules.
    pub fn exclude(&mut self, patterns: &[String]) -> Result<(), ignore::Error> {
        self.ignores.exclude(patterns)
    }

    /// Forgets the ignore rules read so far (an ignore file changed).
    pub fn forget_rules(&mut self) {
        self.ignores.forget();
    }
}

/// One walk, filling a tree and the digests to keep (from the cache `old` where they still
/// hold, else read afresh).
struct Walk<'a> {
    scanner: &'a mut Scanner,
    old: &'a PathMap<Hashed>,
    fresh: &'a mut Vec<(RelPath, Hashed)>,
    out: &'a mut Tree,
    warnings: &'a mut Vec<Warning>,
}

impl Walk<'_> {
    /// The entries of directory `rel`, whose parent's ignore rules are `above`.
    fn dir(&mut self, rel: RelPath, above: &[Arc<Gitignore>]) {
        let abs = relpath::absolute(&self.scanner.root, &rel);
        let read = match std::fs::read_dir(&abs) {
            Ok(r) => r,
            Err(e) => {
                self.warnings.push(Warning::Unreadable {
                    path: rel,
                    error: e.to_string(),
                });
                return;
            }
        };
        let chain = self.scanner.ignores.chain(&rel, above);
        let ruled = self.scanner.ignores.any_rules(&chain);
        for item in read {
            let Ok(item) = item else { continue };
            let name = item.file_name();
            let name = name.as_bytes();
            if name == b".git" {
                continue;
            }
            if name.starts_with(crate::apply::TEMP_PREFIX) {
                // Left by a process killed in the middle of a write: never synced, removed.
                if crate::apply::is_stale_temp(name) && item.file_type().is_ok_and(|t| !t.is_dir())
                {
                    let _ = std::fs::remove_file(item.path());
                }
                continue;
            }
            let mut child = rel.clone();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(name);
            match item.metadata() {
                Ok(meta) => {
                    if !ruled
                        || !self.scanner.ignores.is_ignored_by(
                            &chain,
                            &abs.join(OsStr::from_bytes(name)),
                            meta.is_dir(),
                        )
                    {
                        self.entry(child, &meta, &chain);
                    }
                }
                Err(e) => self.warnings.push(Warning::Unreadable {
                    path: child,
                    error: e.to_string(),
                }),
            }
        }
    }

    /// Records `rel` (not ignored; `meta` from lstat) and, for a directory, what is inside;
    /// the ignore rules of the directory holding it are `above`.
    fn entry(&mut self, rel: RelPath, meta: &std::fs::Metadata, above: &[Arc<Gitignore>]) {
        let ft = meta.file_type();
        if ft.is_dir() {
            self.out.insert(rel.clone(), Entry::Dir);
            self.dir(rel, above);
        } else if ft.is_symlink() {
            match std::fs::read_link(relpath::absolute(&self.scanner.root, &rel)) {
                Ok(t) => {
                    let target = t.as_os_str().as_bytes().to_vec();
                    self.out.insert(rel, Entry::Symlink { target });
                }
                Err(e) => self.warnings.push(Warning::Unreadable {
                    path: rel,
                    error: e.to_string(),
                }),
            }
        } else if ft.is_file() {
            if meta.len() > self.scanner.max_size {
                self.warnings.push(Warning::TooLarge {
                    path: rel,
                    size: meta.len(),
                });
                return;
            }
            let stamp = Stamp::of(meta);
            let executable = meta.permissions().mode() & 0o111 != 0;
            let known = self.old.get(&rel).filter(|h| h.holds_for(&stamp)).copied();
            let digest = match known {
                Some(h) => {
                    self.fresh.push((rel.clone(), h));
                    Ok(h.digest)
                }
                None => {
                    self.scanner.hashes += 1;
                    let at = now_ns();
                    hash(&relpath::absolute(&self.scanner.root, &rel)).inspect(|digest| {
                        if let Some(h) = Hashed::new(&stamp, *digest, at) {
                            self.fresh.push((rel.clone(), h));
                        }
                    })
                }
            };
            match digest {
                Ok(digest) => {
                    self.out.insert(rel, Entry::File { digest, executable });
                }
                Err(e) => self.warnings.push(Warning::Unreadable {
                    path: rel,
                    error: e.to_string(),
                }),
            }
        } else {
            self.warnings.push(Warning::OtherType(rel));
        }
    }
}

/// What a file of kept digests ([`Scanner::save_hashes`]) begins with.
const HASHES_MAGIC: &[u8] = b"berth hashes 1\n";

/// Reads a file of kept digests from its beginning.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    fn word(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_le_bytes)
    }
}

/// The digests in `bytes`, if it is a whole file of them written for the tree at `root` on
/// device `dev`.
fn parse_hashes(bytes: &[u8], dev: u64, root: &[u8]) -> Option<Vec<(RelPath, Hashed)>> {
    let mut c = Cursor(bytes.strip_prefix(HASHES_MAGIC)?);
    if c.word()? != dev {
        return None;
    }
    let len = usize::try_from(c.word()?).ok()?;
    if c.take(len)? != root {
        return None;
    }
    let mut items = Vec::new();
    while !c.0.is_empty() {
        let len = usize::try_from(c.word()?).ok()?;
        let path = c.take(len)?.to_vec();
        let size = c.word()?;
        let ctime = i64::from_le_bytes(c.take(8)?.try_into().ok()?);
        let ino = c.word()?;
        let digest: [u8; 32] = c.take(32)?.try_into().ok()?;
        items.push((
            path,
            Hashed {
                size,
                ctime,
                ino,
                digest,
            },
        ));
    }
    Some(items)
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
        let (tree, warnings) = Scanner::new(r, u64::MAX).full().unwrap();
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
    fn a_full_scan_removes_temporary_files_a_killed_process_left() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "a.txt", b"a");
        write(r, "d/.berth-tmp-1-7-b.txt", b"half of b");
        let ours = format!(".berth-tmp-{}-7-c.txt", std::process::id());
        write(r, &ours, b"in flight");
        let (tree, _) = Scanner::new(r, u64::MAX).full().unwrap();
        assert_eq!(keys(&tree), ["a.txt", "d"]);
        assert!(!r.join("d/.berth-tmp-1-7-b.txt").exists(), "stale: removed");
        assert!(
            r.join(&ours).exists(),
            "this process's write may be in flight"
        );
    }

    #[test]
    fn ignore_rules_are_read_live() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "a.tmp", b"x");
        let (first, _) = Scanner::new(r, u64::MAX).full().unwrap();
        assert!(first.contains_key(b"a.tmp".as_slice()));
        write(r, ".gitignore", b"*.tmp\n");
        let (second, _) = Scanner::new(r, u64::MAX).full().unwrap();
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
        let (tree, warnings) = Scanner::new(r, 1024).full().unwrap();
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
    fn a_file_is_hashed_again_only_when_it_changed_or_was_racy() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "f", b"one");
        let mut sc = Scanner::new(r, u64::MAX);
        let (t1, _) = sc.full().unwrap();
        assert_eq!(sc.hashes(), 1);
        // Hashed in the same instant it was written: racy, so read again next time.
        std::thread::sleep(std::time::Duration::from_millis(100));
        sc.full().unwrap();
        assert_eq!(sc.hashes(), 2);
        // Now clearly older than its hash: served from the cache.
        let (t2, _) = sc.full().unwrap();
        assert_eq!((sc.hashes(), &t2), (2, &t1));
        // Same size and the old mtime put back: the change of ctime still shows it.
        let mtime = std::fs::metadata(r.join("f")).unwrap().modified().unwrap();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(r.join("f"))
            .unwrap();
        std::io::Write::write_all(&mut &f, b"two").unwrap();
        f.set_modified(mtime).unwrap();
        drop(f);
        let (t3, _) = sc.full().unwrap();
        assert_eq!(sc.hashes(), 3);
        assert_ne!(t3, t1);
    }

    #[test]
    fn kept_digests_spare_reading_unchanged_files_of_the_same_tree_only() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path().join("tree");
        write(&r, "a", b"one");
        write(&r, "d/b", b"two");
        std::thread::sleep(std::time::Duration::from_millis(100));
        let mut first = Scanner::new(&r, u64::MAX);
        let (t1, _) = first.full().unwrap();
        assert_eq!(first.hashes(), 2);
        let file = dir.path().join("hashes");
        first.save_hashes(&file).unwrap();

        // A new scanner of the same tree reads only what changed since.
        write(&r, "d/b", b"TWO");
        let mut second = Scanner::new(&r, u64::MAX);
        assert!(second.load_hashes(&file));
        let (t2, _) = second.full().unwrap();
        assert_eq!(second.hashes(), 1, "only the changed file is read");
        assert_eq!(t2[&b"a".to_vec()], t1[&b"a".to_vec()]);
        assert_ne!(t2[&b"d/b".to_vec()], t1[&b"d/b".to_vec()]);

        // Another tree, or a damaged file, gives nothing.
        let other = dir.path().join("other");
        write(&other, "a", b"one");
        assert!(!Scanner::new(&other, u64::MAX).load_hashes(&file));
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() - 1]).unwrap();
        assert!(!Scanner::new(&r, u64::MAX).load_hashes(&file));
        assert!(!Scanner::new(&r, u64::MAX).load_hashes(&dir.path().join("missing")));
    }

    #[test]
    fn under_sees_a_subtree_and_nothing_through_a_link_or_in_an_ignored_directory() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, ".gitignore", b"out/\n");
        write(r, "d/a", b"a");
        write(r, "d/e/b", b"b");
        write(r, "out/x", b"x");
        write(r, "elsewhere/f", b"f");
        symlink("elsewhere", r.join("l")).unwrap();
        let mut sc = Scanner::new(r, u64::MAX);
        assert_eq!(keys(&sc.under(b"d").0), ["d", "d/a", "d/e", "d/e/b"]);
        assert_eq!(keys(&sc.under(b"d/e/b").0), ["d/e/b"]);
        assert!(sc.under(b"l/f").0.is_empty(), "not through a symlink");
        assert_eq!(keys(&sc.under(b"l").0), ["l"]);
        assert!(
            sc.under(b"out/x").0.is_empty(),
            "inside an ignored directory"
        );
        assert!(sc.under(b"missing").0.is_empty());
    }

    /// Writes `bytes` at `rel` the way berth does (a new file renamed into place) and returns
    /// the entry written.
    fn write_like_berth(root: &Path, rel: &str, bytes: &[u8]) -> Entry {
        let tmp = root.join(format!(".tmp-{rel}"));
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, root.join(rel)).unwrap();
        Entry::File {
            digest: *blake3::hash(bytes).as_bytes(),
            executable: false,
        }
    }

    /// Overwrites `rel` in place, as an editor that does not rename would.
    fn write_in_place(root: &Path, rel: &str, bytes: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(root.join(rel))
            .unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
    }

    #[test]
    fn berths_own_write_is_recognised_once_and_a_later_change_is_not_an_echo() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let mut sc = Scanner::new(r, u64::MAX);
        let ours = write_like_berth(r, "f", b"ours");
        sc.wrote(b"f", Some(&ours));
        assert!(sc.is_echo(b"f"));
        assert!(!sc.is_echo(b"f"), "answers once");
        sc.wrote(b"f", Some(&ours));
        write(r, "f", b"theirs, longer");
        assert!(!sc.is_echo(b"f"));
        sc.wrote(b"gone", None);
        assert!(!sc.is_echo(b"gone"), "a removal is not recorded");
    }

    #[test]
    fn a_same_size_write_right_after_berths_own_is_not_an_echo() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let mut sc = Scanner::new(r, u64::MAX);
        // Someone writes before berth got to record its write: the stat data berth records
        // are already theirs, so only the content tells.
        let ours = write_like_berth(r, "f", b"ours");
        write_in_place(r, "f", b"mine");
        sc.wrote(b"f", Some(&ours));
        assert!(
            !sc.is_echo(b"f"),
            "written before berth recorded its own write"
        );
        // Someone writes right after: on a file system whose clock ticks coarsely, in the same
        // tick, which leaves size, times and inode as berth recorded them.
        let ours = write_like_berth(r, "g", b"ours");
        sc.wrote(b"g", Some(&ours));
        write_in_place(r, "g", b"mine");
        assert!(
            !sc.is_echo(b"g"),
            "written right after berth recorded its own write"
        );
        // A link replaced by another of the same length is told apart too.
        symlink("ab", r.join("l")).unwrap();
        let link = Entry::Symlink {
            target: b"ab".to_vec(),
        };
        std::fs::remove_file(r.join("l")).unwrap();
        symlink("cd", r.join("l")).unwrap();
        sc.wrote(b"l", Some(&link));
        assert!(!sc.is_echo(b"l"));
        // What berth wrote, untouched, is still its echo.
        let ours = write_like_berth(r, "h", b"ours");
        sc.wrote(b"h", Some(&ours));
        assert!(sc.is_echo(b"h"));
    }

    #[test]
    fn a_write_whose_event_never_came_is_forgotten_after_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let mut sc = Scanner::new(r, u64::MAX);
        let ours = write_like_berth(r, "old", b"ours");
        sc.wrote(b"old", Some(&ours));
        let recorded = sc.written[b"old".as_slice()].at;
        let ours = write_like_berth(r, "new", b"ours");
        sc.wrote(b"new", Some(&ours));
        sc.written.get_mut(b"new".as_slice()).unwrap().at = recorded + 3 * ECHO_WINDOW_NS / 2;
        // Within the window nothing is dropped.
        sc.forget_old_writes(recorded + ECHO_WINDOW_NS - 1);
        assert_eq!(sc.written.len(), 2);
        // A window later, only what is older than it.
        sc.forget_old_writes(recorded + 2 * ECHO_WINDOW_NS);
        assert!(!sc.is_echo(b"old"), "its record was dropped");
        assert!(sc.is_echo(b"new"), "a younger record is kept");
    }
}
