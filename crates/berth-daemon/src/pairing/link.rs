//! The file side of a pairing: the sync engine's live loop between the user's checkout (alpha,
//! which wins conflicts) and the agent's workspace (beta), on a thread of its own.
//!
//! - The **gate** reads both sides' git state straight from their git dirs before every round
//!   and again before anything is written: a checkout that is not on `berth/<agent>`, or that
//!   has a merge, rebase, am, cherry-pick, revert or bisect stopped in it, shuts the gate (the
//!   loop holds until the controller releases it); git holding `index.lock` (it is rewriting
//!   the tree) makes the round wait a moment. So nothing from a checkout on another branch
//!   ever reaches the other side, even before the controller has noticed the switch.
//! - The **keeper** commits the agent's losing version of a conflict under
//!   `refs/berth/conflicts/<pairing>/<n>` in the agent's workspace.
//! - The **ancestor** is saved to the store after every report (link `pair:<pairing>`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use berth_core::pairing::{Notice, Side};
use berth_git::Git;
use berth_git::pairing::{self as gitpair, KeptKind};
use berth_store::Store;
use berth_sync::ancestor::{self, Ancestor};
use berth_sync::apply::{ApplyError, TEMP_PREFIX};
use berth_sync::engine::{DEFAULT_MAX_SIZE, Keeper, Sides, Stats};
use berth_sync::gate::{Gate, Gatekeeper};
use berth_sync::live::{self, Report};
use berth_sync::reconcile::{self, Entry};
use berth_sync::watch::Input;

/// How long git may hold `index.lock` before the gate counts it as stale and shuts.
const STALE_LOCK: Duration = Duration::from_secs(10);
/// A branch switch rewrites the index, then HEAD: an index this fresh may belong to a switch
/// whose HEAD is not written yet, so the round waits a moment.
const FRESH_INDEX: Duration = Duration::from_millis(50);

/// Whether `path` changed (content or name) less than `within` ago.
fn changed_within(path: &Path, within: Duration) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(path) else {
        return false;
    };
    let ns = |sec: i64, nsec: i64| i128::from(sec) * 1_000_000_000 + i128::from(nsec);
    let changed_ns = ns(m.ctime(), m.ctime_nsec()).max(ns(m.mtime(), m.mtime_nsec()));
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    now_ns - changed_ns < within.as_nanos() as i128
}

/// What the loop tells the controller.
#[derive(Debug)]
pub enum LinkEvent {
    /// The first round is done and the trees follow each other live.
    Ready,
    /// A round finished.
    Synced {
        to_user: u64,
        to_agent: u64,
        conflicts: u64,
        took: Duration,
        warnings: Vec<String>,
    },
    /// A write failed in a way that pauses (disk full, permission denied, an emptied root).
    Paused(Notice),
    /// The condition of the last pause went away.
    Resumed,
    /// A round failed for another reason (it is retried).
    Failed(String),
    /// A side's heartbeat did not come back.
    Stalled(Side),
    /// The gate shut: the loop holds until released.
    Held(String),
    /// A conflict's losing version was committed.
    Kept { refname: String, path: String },
    /// The loop ended (`Err`: it could not watch the trees).
    Ended(Result<(), String>),
}

/// Environment variable (milliseconds) shortening the heartbeat period, for tests and
/// diagnosis; the default is the live loop's.
pub const HEARTBEAT_ENV: &str = "BERTH_PAIR_HEARTBEAT_MS";

/// The live loop's timings: its defaults, with the heartbeat from [`HEARTBEAT_ENV`] if set.
fn options() -> live::Options {
    let defaults = live::Options::default();
    match std::env::var(HEARTBEAT_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
    {
        Some(ms) => {
            let every = Duration::from_millis(ms);
            live::Options {
                heartbeat_every: every,
                heartbeat_timeout: defaults.heartbeat_timeout.min(every),
                ..defaults
            }
        }
        None => defaults,
    }
}

/// Makes git leave berth's temporary files alone in `git`'s repository: an agent running
/// `git add -A` while berth writes a file must not trip over a temporary file that is renamed
/// away under it. One line in `info/exclude` (berth's own name pattern), added once.
pub fn exclude_temp_files(git: &Git) -> Result<(), String> {
    let path = git
        .query(&[
            "rev-parse",
            "--path-format=absolute",
            "--git-path",
            "info/exclude",
        ])
        .map_err(|e| e.to_string())?;
    let path = PathBuf::from(path);
    let pattern = format!("{}*", String::from_utf8_lossy(TEMP_PREFIX));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    if text.lines().any(|l| l.trim() == pattern) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut add = String::new();
    if !text.is_empty() && !text.ends_with('\n') {
        add.push('\n');
    }
    add.push_str(&format!(
        "# berth: its temporary files while it writes\n{pattern}\n"
    ));
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(add.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Where the loop's events go.
pub type Tell = Arc<dyn Fn(LinkEvent) + Send + Sync>;

/// Where a pairing's ancestor is stored.
pub fn ancestor_key(pairing: &str) -> String {
    format!("pair:{pairing}")
}

/// The ref a conflict's losing version is kept under.
pub fn conflict_ref(pairing: &str, n: usize) -> String {
    format!("refs/berth/conflicts/{pairing}/{n}")
}

/// Loads a pairing's ancestor from the store.
pub fn load_ancestor(store: &Store, pairing: &str) -> Result<Ancestor, String> {
    let rows = store
        .ancestor(&ancestor_key(pairing))
        .map_err(|e| e.to_string())?;
    Ok(ancestor::from_rows(rows))
}

/// Saves what changed in the ancestor.
pub fn save_ancestor(store: &Store, pairing: &str, a: &mut Ancestor) -> Result<(), String> {
    let key = ancestor_key(pairing);
    a.save(|rows| store.update_ancestor(&key, rows))
        .map_err(|e| e.to_string())
}

/// The two roots and their git dirs.
#[derive(Debug, Clone)]
pub struct Roots {
    pub user: PathBuf,
    pub user_git_dir: PathBuf,
    pub agent: PathBuf,
    pub agent_git_dir: PathBuf,
    /// `refs/heads/berth/<agent>`.
    pub branch_ref: String,
    /// Extra exclusions (gitignore syntax): the checkout's `git config berth.exclude` values.
    pub exclude: Vec<String>,
    /// Files larger than this are not synced: `git config berth.maxSize` (bytes, `k`/`m`/`g`
    /// suffixes as git reads them), else the engine's default.
    pub max_size: u64,
}

/// Reads pairing's settings from the checkout's git config (`berth.exclude`, repeatable, and
/// `berth.maxSize`): they live with the repository, like its other ignore rules.
pub fn settings(user: &Git) -> Result<(Vec<String>, u64), String> {
    let exclude = user
        .output(
            berth_git::Access::Read,
            &["config", "--get-all", "berth.exclude"],
        )
        .map_err(|e| e.to_string())?;
    let exclude = if exclude.success() {
        exclude.text().lines().map(str::to_string).collect()
    } else {
        vec![]
    };
    let size = user
        .output(
            berth_git::Access::Read,
            &["config", "--type=int", "--get", "berth.maxSize"],
        )
        .map_err(|e| e.to_string())?;
    let max_size = if size.success() {
        size.text().trim().parse::<u64>().map_err(|_| {
            format!(
                "git config berth.maxSize is {:?}: give a size in bytes (k, m, g allowed)",
                size.text()
            )
        })?
    } else if size.code == 1 {
        DEFAULT_MAX_SIZE
    } else {
        return Err(format!(
            "git config berth.maxSize: {}",
            String::from_utf8_lossy(&size.stderr).trim()
        ));
    };
    Ok((exclude, max_size))
}

impl Roots {
    /// Scanners for both roots with the pairing's gate, size limit and extra exclusions.
    pub fn sides(&self) -> Result<Sides, String> {
        let mut sides = Sides::new(&self.user, &self.agent, self.max_size);
        sides
            .exclude(&self.exclude)
            .map_err(|e| format!("git config berth.exclude: {e}"))?;
        sides.gate = Some(gate(self));
        Ok(sides)
    }

    /// Which side an absolute path is on.
    fn side_of(&self, path: &str) -> Side {
        if Path::new(path).starts_with(&self.agent) {
            Side::Agent
        } else {
            Side::User
        }
    }
}

/// Why a side's git state shuts the gate, if it does; `Err` while git is busy with the index
/// or HEAD (it holds their locks, or has just written the index).
fn git_state(dir: &Path, branch_ref: &str, who: &str) -> Result<Option<String>, ()> {
    let head = std::fs::read_to_string(dir.join("HEAD")).unwrap_or_default();
    if head.trim() != format!("ref: {branch_ref}") {
        return Ok(Some(format!("{who} is not on {branch_ref} any more")));
    }
    const MARKERS: [&str; 6] = [
        "MERGE_HEAD",
        "rebase-merge",
        "rebase-apply",
        "CHERRY_PICK_HEAD",
        "REVERT_HEAD",
        "BISECT_LOG",
    ];
    if let Some(m) = MARKERS.iter().find(|m| dir.join(m).exists()) {
        return Ok(Some(format!("{who} has an operation in progress ({m})")));
    }
    if dir.join("index.lock").exists()
        || dir.join("HEAD.lock").exists()
        || changed_within(&dir.join("index"), FRESH_INDEX)
    {
        return Err(());
    }
    Ok(None)
}

/// The gate of a pairing (see the module docs).
fn gate(roots: &Roots) -> Gatekeeper {
    let roots = roots.clone();
    let mut locked_since: Option<Instant> = None;
    Gatekeeper::new(move || {
        let mut busy = false;
        for (dir, who) in [
            (&roots.user_git_dir, "your checkout"),
            (&roots.agent_git_dir, "the agent's workspace"),
        ] {
            match git_state(dir, &roots.branch_ref, who) {
                Ok(None) => {}
                Ok(Some(why)) => {
                    locked_since = None;
                    return Gate::Closed(why);
                }
                Err(()) => busy = true,
            }
        }
        if !busy {
            locked_since = None;
            return Gate::Open;
        }
        let since = *locked_since.get_or_insert_with(Instant::now);
        if since.elapsed() > STALE_LOCK {
            Gate::Closed(format!(
                "git's index.lock has been held for over {} s; if no git command is running, \
                 remove the stale .git/index.lock",
                STALE_LOCK.as_secs()
            ))
        } else {
            Gate::Busy("git is rewriting the index".into())
        }
    })
}

/// Keeps the agent's losing versions as commits in its workspace.
struct RefKeeper {
    ws: Git,
    pairing: String,
    next: usize,
    tell: Tell,
}

/// How many conflicts of `pairing` the workspace keeps already.
pub fn kept_count(ws: &Git, pairing: &str) -> usize {
    ws.query(&[
        "for-each-ref",
        "--format=%(refname)",
        &format!("refs/berth/conflicts/{pairing}/"),
    ])
    .map(|s| s.lines().count())
    .unwrap_or(0)
}

impl Keeper for RefKeeper {
    fn keep(&mut self, rel: &[u8], entry: &Entry, from: &Path) -> Result<(), ApplyError> {
        let io = |source: std::io::Error| ApplyError::Io {
            path: from.display().to_string(),
            source,
        };
        let (kind, content) = match entry {
            Entry::File { executable, .. } => (
                KeptKind::File {
                    executable: *executable,
                },
                std::fs::read(from).map_err(io)?,
            ),
            Entry::Symlink { target } => (KeptKind::Symlink, target.clone()),
            // An empty directory holds nothing to lose.
            Entry::Dir => return Ok(()),
        };
        self.next += 1;
        let refname = conflict_ref(&self.pairing, self.next);
        gitpair::keep_conflict(&self.ws, &refname, rel, kind, &content)
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        (self.tell)(LinkEvent::Kept {
            refname,
            path: String::from_utf8_lossy(rel).into_owned(),
        });
        Ok(())
    }
}

/// A running live loop.
pub struct Link {
    input: Sender<Input>,
    thread: Option<JoinHandle<()>>,
    /// Sent to once the loop watches both trees and its first full round went through (or the
    /// gate held it); dropped if the loop ends first.
    started: Receiver<()>,
}

impl Link {
    /// Starts the loop: its first round is a full one; [`LinkEvent::Ready`] follows once the
    /// trees agree.
    pub fn start(store: Store, pairing: String, roots: Roots, tell: Tell) -> std::io::Result<Link> {
        let (tx, rx) = mpsc::channel();
        let loop_tx = tx.clone();
        let (started_tx, started) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("pair-{pairing}"))
            .spawn(move || {
                let ws = Git::new(&roots.agent);
                let mut keeper = RefKeeper {
                    next: kept_count(&ws, &pairing),
                    ws,
                    pairing: pairing.clone(),
                    tell: tell.clone(),
                };
                let ancestor = match load_ancestor(&store, &pairing) {
                    Ok(a) => a,
                    Err(e) => {
                        tell(LinkEvent::Ended(Err(e)));
                        return;
                    }
                };
                let sides = match roots.sides() {
                    Ok(s) => s,
                    Err(e) => {
                        tell(LinkEvent::Ended(Err(e)));
                        return;
                    }
                };
                let mut link = live::Link {
                    sides,
                    ancestor,
                    keeper: &mut keeper,
                };
                let mut report = |r: &Report, a: &mut Ancestor| {
                    if let Err(e) = save_ancestor(&store, &pairing, a) {
                        tell(LinkEvent::Failed(format!(
                            "cannot save what both sides agreed on: {e}"
                        )));
                    }
                    if matches!(
                        r,
                        Report::Ready { .. }
                            | Report::Held { .. }
                            | Report::Synced {
                                reason: live::Reason::Start,
                                ..
                            }
                    ) {
                        let _ = started_tx.send(());
                    }
                    if let Some(ev) = event(&roots, r) {
                        tell(ev);
                    }
                    // A full round scanned both trees: what it freed goes back.
                    if matches!(
                        r,
                        Report::Ready { .. }
                            | Report::Synced {
                                reason: live::Reason::Start
                                    | live::Reason::Rescan(_)
                                    | live::Reason::Flush,
                                ..
                            }
                    ) {
                        crate::memory::give_back();
                    }
                };
                let end = live::run(&mut link, &options(), &rx, &loop_tx, &mut report)
                    .map_err(|e| format!("cannot watch the trees: {e}"));
                tell(LinkEvent::Ended(end));
            })?;
        Ok(Link {
            input: tx,
            thread: Some(thread),
            started,
        })
    }

    /// Waits until the loop watches both trees and its first full round went through (or the
    /// gate holds it); `false` if it ended first or `timeout` passed.
    pub fn wait_started(&self, timeout: Duration) -> bool {
        self.started.recv_timeout(timeout).is_ok()
    }

    /// Apply nothing until released.
    pub fn hold(&self) {
        let _ = self.input.send(Input::Hold);
    }

    /// Apply again, beginning with a full round.
    pub fn release(&self) {
        let _ = self.input.send(Input::Release);
    }

    /// Syncs everything now; answers once both sides agree.
    pub fn flush(&self) -> Result<Stats, String> {
        let (tx, rx) = mpsc::channel();
        self.input
            .send(Input::Flush(tx))
            .map_err(|_| "the sync loop has ended".to_string())?;
        rx.recv()
            .map_err(|_| "the sync loop has ended".to_string())?
    }

    /// Stops the loop after the round in progress and waits for it.
    pub fn stop(mut self) {
        self.end();
    }

    fn end(&mut self) {
        let _ = self.input.send(Input::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.end();
    }
}

/// The notice a pausing write error stands for.
pub fn pause_notice(roots: &Roots, e: &ApplyError) -> Notice {
    match e {
        ApplyError::RootEmptied { root } => {
            let side = roots.side_of(root);
            if Path::new(root).exists() {
                Notice::RootEmptied {
                    side,
                    path: root.clone(),
                }
            } else {
                Notice::RootDeleted {
                    side,
                    path: root.clone(),
                }
            }
        }
        ApplyError::Io { path, source } => {
            let side = roots.side_of(path);
            match source.raw_os_error() {
                Some(libc::ENOSPC | libc::EDQUOT) => Notice::DiskFull {
                    side,
                    path: path.clone(),
                },
                _ => Notice::PermissionDenied {
                    side,
                    path: path.clone(),
                },
            }
        }
        other => Notice::UnexpectedError {
            message: other.to_string(),
        },
    }
}

fn side_of(s: reconcile::Side) -> Side {
    match s {
        reconcile::Side::Alpha => Side::User,
        reconcile::Side::Beta => Side::Agent,
    }
}

fn event(roots: &Roots, r: &Report) -> Option<LinkEvent> {
    Some(match r {
        Report::Ready { .. } => LinkEvent::Ready,
        Report::Synced { stats, took, .. } => LinkEvent::Synced {
            to_user: stats.to_alpha as u64,
            to_agent: stats.to_beta as u64,
            conflicts: stats.conflicts as u64,
            took: *took,
            warnings: stats.warnings.iter().map(ToString::to_string).collect(),
        },
        Report::Paused { error } => LinkEvent::Paused(pause_notice(roots, error)),
        Report::Held { why } => LinkEvent::Held(why.to_string()),
        Report::Resumed => LinkEvent::Resumed,
        Report::Failed { error } => LinkEvent::Failed(error.clone()),
        Report::Stalled { side } => LinkEvent::Stalled(side_of(*side)),
        Report::WatchTrouble { error, .. } => {
            tracing::warn!("pairing watch: {error}");
            return None;
        }
    })
}
