//! Native file events for one tree (inotify), turned into the relative paths the engine
//! reconciles.
//!
//! Every directory of the tree except `.git` gets a watch, added before [`watch`] returns (so a
//! scan started afterwards misses nothing); links are never followed. The mask asks only for
//! changes — creation, deletion, writes, close after writing, renames, attributes — never for
//! opens or reads, so scanning and hashing do not wake the watcher or fill its queue.
//!
//! A directory that appears (created or moved in) is watched at once with everything below it,
//! and reported as one changed path: the engine scans what is under it, so files made inside
//! before its watch existed are not missed. A directory moved away loses its watches (its
//! events would carry stale paths); if it moved within the tree, it is watched anew under its
//! new name. The kernel's lost-events notice becomes [`Input::Overflow`] (the loop rescans).
//! An attribute change of the root itself is the heartbeat ([`touch_root`]).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::inotify::{AddWatchFlags as F, InitFlags, Inotify, WatchDescriptor};

use crate::reconcile::Side;
use crate::relpath::RelPath;
use crate::stats::Stats;

/// What the live loop receives: file events, and requests from whoever runs it.
#[derive(Debug)]
pub enum Input {
    /// These paths changed on `side` (or may have). `settled`: whatever changed them is done
    /// with them — a file written and closed, renamed into place, removed, its attributes
    /// changed — so they can be synced at once; otherwise (a write to a file still open, a
    /// creation) more may follow, and the loop waits for a moment of quiet first.
    Changed {
        side: Side,
        paths: Vec<RelPath>,
        settled: bool,
    },
    /// Events on `side` were lost: only a full rescan can tell what changed.
    Overflow { side: Side },
    /// Watching `side` ran into a problem (for example the limit of watches was reached).
    WatchError { side: Side, error: String },
    /// The heartbeat of `side` came through.
    Heartbeat { side: Side },
    /// Sync everything now; the reply comes when both sides agree.
    Flush(Sender<Result<Stats, String>>),
    /// Apply nothing until [`Input::Release`] (changes are still collected).
    Hold,
    /// Apply again, beginning with a full round.
    Release,
    /// Stop the loop (after the round in progress).
    Stop,
}

/// A running watch of one tree; dropping it stops watching.
pub struct Watch {
    stop: Option<OwnedFd>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        // Closing the write end wakes the thread's poll (the read end sees end of file).
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The changes asked for on every directory.
fn mask() -> F {
    F::IN_CREATE
        | F::IN_DELETE
        | F::IN_MODIFY
        | F::IN_CLOSE_WRITE
        | F::IN_MOVED_FROM
        | F::IN_MOVED_TO
        | F::IN_ATTRIB
        | F::IN_DELETE_SELF
        | F::IN_MOVE_SELF
        | F::IN_DONT_FOLLOW
        | F::IN_ONLYDIR
}

/// Whether `rel` is inside a `.git` directory, or is one.
fn in_git(rel: &[u8]) -> bool {
    rel.split(|b| *b == b'/').any(|c| c == b".git")
}

fn join(dir: &[u8], name: &[u8]) -> RelPath {
    let mut p = dir.to_vec();
    if !p.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// The watches of one tree, by descriptor.
struct Watched {
    inotify: Inotify,
    root: PathBuf,
    dirs: HashMap<WatchDescriptor, RelPath>,
}

impl Watched {
    /// Watches `rel` and every directory below it (not `.git`, not through links).
    fn add_tree(&mut self, rel: &[u8]) -> Result<(), Errno> {
        let abs = if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(OsStr::from_bytes(rel))
        };
        let wd = match self.inotify.add_watch(&abs, mask()) {
            Ok(wd) => wd,
            // Gone already, or not a directory (any more): nothing to watch.
            Err(Errno::ENOENT | Errno::ENOTDIR) if !rel.is_empty() => return Ok(()),
            Err(e) => return Err(e),
        };
        self.dirs.insert(wd, rel.to_vec());
        let Ok(entries) = std::fs::read_dir(&abs) else {
            return Ok(());
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if name.as_bytes() == b".git" || !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            self.add_tree(&join(rel, name.as_bytes()))?;
        }
        Ok(())
    }

    /// Stops watching `rel` and everything below it.
    fn drop_tree(&mut self, rel: &[u8]) {
        let gone: Vec<WatchDescriptor> = self
            .dirs
            .iter()
            .filter(|(_, p)| {
                p.as_slice() == rel
                    || (p.len() > rel.len() && p.starts_with(rel) && p[rel.len()] == b'/')
            })
            .map(|(wd, _)| *wd)
            .collect();
        for wd in gone {
            self.dirs.remove(&wd);
            let _ = self.inotify.rm_watch(wd);
        }
    }
}

fn limit_message(e: Errno) -> String {
    if e == Errno::ENOSPC {
        "the limit of inotify watches was reached (raise fs.inotify.max_user_watches)".into()
    } else {
        format!("cannot watch a directory: {e}")
    }
}

/// Starts watching `root`; events go to `tx` as [`Input`]s for `side`. Every directory is
/// watched when this returns.
pub fn watch(root: &Path, side: Side, tx: Sender<Input>) -> std::io::Result<Watch> {
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?;
    let mut w = Watched {
        inotify,
        root: root.to_path_buf(),
        dirs: HashMap::new(),
    };
    w.add_tree(b"")
        .map_err(|e| std::io::Error::other(limit_message(e)))?;
    let (stop_read, stop_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let thread = std::thread::Builder::new()
        .name("berth-watch".into())
        .spawn(move || run(w, side, &tx, &stop_read))?;
    Ok(Watch {
        stop: Some(stop_write),
        thread: Some(thread),
    })
}

fn run(mut w: Watched, side: Side, tx: &Sender<Input>, stop: &OwnedFd) {
    loop {
        let mut fds = [
            PollFd::new(w.inotify.as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                let _ = tx.send(Input::WatchError {
                    side,
                    error: format!("waiting for events: {e}"),
                });
                return;
            }
        }
        if fds[1].any().unwrap_or(true) {
            return; // stopped
        }
        // Each path with whether its last event settled it.
        let mut paths = BTreeMap::new();
        loop {
            let events = match w.inotify.read_events() {
                Ok(ev) => ev,
                Err(Errno::EAGAIN | Errno::EINTR) => break,
                Err(e) => {
                    let _ = tx.send(Input::WatchError {
                        side,
                        error: format!("reading events: {e}"),
                    });
                    return;
                }
            };
            for ev in events {
                if ev.mask.contains(F::IN_Q_OVERFLOW) {
                    if !send_paths(tx, side, &mut paths)
                        || tx.send(Input::Overflow { side }).is_err()
                    {
                        return;
                    }
                    continue;
                }
                if ev.mask.contains(F::IN_IGNORED) {
                    w.dirs.remove(&ev.wd);
                    continue;
                }
                let Some(dir) = w.dirs.get(&ev.wd).cloned() else {
                    continue;
                };
                let Some(name) = ev.name else {
                    // An event on a watched directory itself.
                    if dir.is_empty() {
                        let input = if ev.mask.intersects(F::IN_DELETE_SELF | F::IN_MOVE_SELF) {
                            Input::WatchError {
                                side,
                                error: "the directory itself was removed or moved".into(),
                            }
                        } else {
                            Input::Heartbeat { side }
                        };
                        // What changed before it goes first: once a heartbeat is seen, every
                        // change made before it has been.
                        if !send_paths(tx, side, &mut paths) || tx.send(input).is_err() {
                            return;
                        }
                    }
                    continue;
                };
                let rel = join(&dir, name.as_bytes());
                if in_git(&rel) || crate::apply::is_temp(&rel) {
                    continue;
                }
                if ev.mask.contains(F::IN_ISDIR) {
                    if ev.mask.contains(F::IN_MOVED_FROM) {
                        w.drop_tree(&rel);
                    }
                    if ev.mask.intersects(F::IN_CREATE | F::IN_MOVED_TO)
                        && let Err(e) = w.add_tree(&rel)
                    {
                        let _ = tx.send(Input::WatchError {
                            side,
                            error: limit_message(e),
                        });
                    }
                }
                paths.insert(rel, settles(ev.mask));
            }
        }
        if !send_paths(tx, side, &mut paths) {
            return;
        }
    }
}

/// Sends the changed paths collected so far (each with whether its last event settled it),
/// the open ones first; `false` once nobody listens.
fn send_paths(tx: &Sender<Input>, side: Side, paths: &mut BTreeMap<RelPath, bool>) -> bool {
    let (settled, open): (Vec<_>, Vec<_>) =
        std::mem::take(paths).into_iter().partition(|(_, s)| *s);
    for (list, settled) in [(open, false), (settled, true)] {
        if list.is_empty() {
            continue;
        }
        let paths = list.into_iter().map(|(p, _)| p).collect();
        if tx
            .send(Input::Changed {
                side,
                paths,
                settled,
            })
            .is_err()
        {
            return false;
        }
    }
    true
}

/// Whether an event leaves its path as it will stay until the next one: written and closed,
/// renamed in or away, removed, or its attributes changed. A write to a file still open and
/// the creation of a file (which its writer is about to fill) do not.
fn settles(mask: F) -> bool {
    mask.intersects(
        F::IN_CLOSE_WRITE | F::IN_MOVED_TO | F::IN_MOVED_FROM | F::IN_DELETE | F::IN_ATTRIB,
    ) || (mask.contains(F::IN_ISDIR) && mask.contains(F::IN_CREATE))
}

/// Sends a heartbeat through `root`'s watch: sets the root's mode to what it already is, which
/// changes nothing but makes the kernel report an attribute change of the root.
pub fn touch_root(root: &Path) -> std::io::Result<()> {
    let mode = std::fs::metadata(root)?.permissions().mode();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::mpsc::{Receiver, channel};
    use std::time::Duration;

    use super::*;

    /// Collects changed paths until `want` has been seen (or 5 s pass).
    fn collect(rx: &Receiver<Input>, want: &[&str]) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !want.iter().all(|w| seen.contains(*w)) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(Input::Changed { paths, .. }) => seen.extend(
                    paths
                        .iter()
                        .map(|p| String::from_utf8_lossy(p).into_owned()),
                ),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        seen
    }

    #[test]
    fn reports_changes_anywhere_including_new_and_moved_directories_but_not_reads_or_git() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("a/b")).unwrap();
        std::fs::create_dir_all(r.join(".git")).unwrap();
        std::fs::write(r.join("a/b/f"), "x").unwrap();
        let (tx, rx) = channel();
        let _w = watch(r, Side::Alpha, tx).unwrap();
        // Reading is not a change.
        std::fs::read(r.join("a/b/f")).unwrap();
        std::fs::write(r.join(".git/index"), "ignored").unwrap();
        std::fs::write(r.join("a/b/f"), "y").unwrap();
        let seen = collect(&rx, &["a/b/f"]);
        assert_eq!(seen, BTreeSet::from(["a/b/f".to_string()]));
        // A new directory is reported, and then watched.
        std::fs::create_dir_all(r.join("n/m")).unwrap();
        assert!(collect(&rx, &["n"]).contains("n"));
        std::fs::write(r.join("n/m/g"), "z").unwrap();
        assert!(collect(&rx, &["n/m/g"]).contains("n/m/g"));
        // A directory moved within the tree is watched under its new name.
        std::fs::rename(r.join("a"), r.join("c")).unwrap();
        let seen = collect(&rx, &["a", "c"]);
        assert!(seen.contains("a") && seen.contains("c"), "{seen:?}");
        std::fs::write(r.join("c/b/f"), "moved").unwrap();
        assert!(collect(&rx, &["c/b/f"]).contains("c/b/f"));
    }

    #[test]
    fn the_heartbeat_comes_through_and_dropping_stops_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = channel();
        let w = watch(dir.path(), Side::Beta, tx).unwrap();
        touch_root(dir.path()).unwrap();
        let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(
            matches!(got, Input::Heartbeat { side: Side::Beta }),
            "{got:?}"
        );
        drop(w);
        // The thread is gone, and with it the only sender.
        assert!(rx.recv_timeout(Duration::from_secs(1)).is_err());
    }
}
