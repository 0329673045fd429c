//! Watching both sides' git dirs: HEAD moving, the index being rewritten, a merge or rebase
//! beginning or ending, `berth/<agent>` moving (loose or packed) — any of these wakes the
//! controller, which then looks at both sides. Only the directories themselves are watched (not
//! their trees), with a mask of changes only, so git reading its files costs nothing.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::inotify::{AddWatchFlags as F, InitFlags, Inotify};

use super::roots::Roots;

/// A running watch; dropping it stops it.
pub struct GitWatch {
    stop: Option<OwnedFd>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for GitWatch {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The directories worth watching for one side: its git dir, the common dir (packed refs) and
/// where the loose `berth/…` branch refs live.
fn dirs(git_dir: &Path) -> Vec<PathBuf> {
    let common = std::fs::read_to_string(git_dir.join("commondir"))
        .map(|c| git_dir.join(c.trim()))
        .unwrap_or_else(|_| git_dir.to_path_buf());
    vec![
        git_dir.to_path_buf(),
        common.clone(),
        common.join("refs/heads"),
        common.join("refs/heads/berth"),
    ]
}

impl GitWatch {
    /// Starts watching; `changed` is called (from the watch's thread) after every batch of
    /// events.
    pub fn start(roots: &Roots, changed: impl Fn() + Send + 'static) -> std::io::Result<GitWatch> {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?;
        let mask = F::IN_CREATE
            | F::IN_DELETE
            | F::IN_MOVED_TO
            | F::IN_MOVED_FROM
            | F::IN_CLOSE_WRITE
            | F::IN_DELETE_SELF
            | F::IN_MOVE_SELF
            | F::IN_ONLYDIR;
        let mut all = dirs(&roots.user_git_dir);
        // An agent elsewhere's git dir is not here: the controller looks at it over the link.
        if roots.far.is_none() {
            all.extend(dirs(&roots.agent_git_dir));
        }
        all.sort();
        all.dedup();
        for d in &all {
            // A directory that does not exist (no `berth/` refs directory yet) is skipped; the
            // periodic check covers what happens there.
            match inotify.add_watch(d, mask) {
                Ok(_) | Err(Errno::ENOENT | Errno::ENOTDIR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let (stop_read, stop_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let thread = std::thread::Builder::new()
            .name("berth-gitwatch".into())
            .spawn(move || run(&inotify, &stop_read, &changed))?;
        Ok(GitWatch {
            stop: Some(stop_write),
            thread: Some(thread),
        })
    }
}

fn run(inotify: &Inotify, stop: &OwnedFd, changed: &dyn Fn()) {
    loop {
        let mut fds = [
            PollFd::new(inotify.as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                tracing::warn!("watching git dirs: {e}");
                return;
            }
        }
        if fds[1].any().unwrap_or(true) {
            return;
        }
        let mut any = false;
        while let Ok(events) = inotify.read_events() {
            if events.is_empty() {
                break;
            }
            any = true;
        }
        if any {
            changed();
        }
    }
}
