//! Native file events for one tree (inotify, through `notify`), turned into the relative paths
//! the engine reconciles.
//!
//! Every directory of the tree is watched, links are never followed. What reaches the live loop
//! ([`crate::live`]) is already filtered: reads and opens are dropped (scanning would otherwise
//! wake itself), as are `.git` and berth's own temporary files. A lost-events notice from the
//! kernel (its queue overflowed) becomes [`Input::Overflow`], which the loop answers with a
//! full rescan. An attribute change of the root itself is the heartbeat ([`touch_root`]).

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

use notify::event::{AccessKind, AccessMode, EventKind, Flag, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use crate::engine::Stats;
use crate::reconcile::Side;
use crate::scan::RelPath;

/// What the live loop receives: file events, and requests from whoever runs it.
#[derive(Debug)]
pub enum Input {
    /// These paths changed on `side` (or may have).
    Changed { side: Side, paths: Vec<RelPath> },
    /// Events on `side` were lost: only a full rescan can tell what changed.
    Overflow { side: Side },
    /// Watching `side` reported an error (for example the limit of watches was reached).
    WatchError { side: Side, error: String },
    /// The heartbeat of `side` came through.
    Heartbeat { side: Side },
    /// Sync everything now; the reply comes when both sides agree.
    Flush(Sender<Result<Stats, String>>),
    /// Stop the loop (after the round in progress).
    Stop,
}

/// A running watch of one tree; dropping it stops watching.
pub struct Watch {
    _watcher: RecommendedWatcher,
}

/// Whether `rel` is inside a `.git` directory, or is one.
fn in_git(rel: &[u8]) -> bool {
    rel.split(|b| *b == b'/').any(|c| c == b".git")
}

/// Whether an event of this kind can mean a change of content, kind, mode or name.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        // Access-time updates are not changes either.
        EventKind::Modify(ModifyKind::Metadata(notify::event::MetadataKind::AccessTime)) => false,
        _ => true,
    }
}

/// Starts watching `root`; events go to `tx` as [`Input`]s for `side`.
pub fn watch(root: &Path, side: Side, tx: Sender<Input>) -> Result<Watch, notify::Error> {
    let base: PathBuf = root.to_path_buf();
    let handler = move |res: notify::Result<notify::Event>| {
        let input = match res {
            Err(e) => Input::WatchError {
                side,
                error: e.to_string(),
            },
            Ok(ev) if ev.flag() == Some(Flag::Rescan) => Input::Overflow { side },
            Ok(ev) => {
                if !is_change(&ev.kind) {
                    return;
                }
                let mut paths = Vec::with_capacity(ev.paths.len());
                for p in &ev.paths {
                    let Ok(rel) = p.strip_prefix(&base) else {
                        continue;
                    };
                    let rel = rel.as_os_str().as_bytes();
                    if rel.is_empty() {
                        if matches!(ev.kind, EventKind::Modify(ModifyKind::Metadata(_))) {
                            let _ = tx.send(Input::Heartbeat { side });
                        }
                        continue;
                    }
                    if in_git(rel) || crate::apply::is_temp(rel) {
                        continue;
                    }
                    paths.push(rel.to_vec());
                }
                if paths.is_empty() {
                    return;
                }
                Input::Changed { side, paths }
            }
        };
        // The loop is gone: nobody needs the event any more.
        let _ = tx.send(input);
    };
    let config = notify::Config::default().with_follow_symlinks(false);
    let mut watcher = RecommendedWatcher::new(handler, config)?;
    watcher.watch(root, RecursiveMode::Recursive)?;
    Ok(Watch { _watcher: watcher })
}

/// Sends a heartbeat through `root`'s watch: sets the root's mode to what it already is, which
/// changes nothing but makes the kernel report an attribute change of the root.
pub fn touch_root(root: &Path) -> std::io::Result<()> {
    let mode = std::fs::metadata(root)?.permissions().mode();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(mode))
}
