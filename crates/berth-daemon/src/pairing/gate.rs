//! Pairing's gate (`berth_sync::gate`): both sides' git state read straight from their git
//! dirs before every round and again before anything is written. A checkout that is not on
//! `berth/<agent>`, or has a merge, rebase, am, cherry-pick, revert or bisect stopped in it,
//! shuts the gate (the loop holds until the controller releases it); git busy with the index
//! or HEAD (their locks, or an index written a moment ago: a branch switch writes HEAD right
//! after it) makes the round wait a moment. So nothing from a checkout on another branch ever
//! reaches the other side, even before the controller has noticed the switch.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth_git::operation;
use berth_sync::gate::{Gate, Gatekeeper};

use super::far_side::FarSide;

/// Where the gate reads the agent's git state.
pub enum AgentGit {
    /// Its git dir here.
    Here(PathBuf),
    /// Over the link to an agent elsewhere (its far side answers with [`side_state`]).
    Far(Box<FarSide>),
}

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

/// Why a side's git state shuts the gate, if it does; `Err` while git is busy with the index
/// or HEAD (it holds their locks, or has just written the index). The far side of an agent
/// elsewhere answers its gate with this too (`far_calls::Call::Gate`).
pub fn side_state(dir: &Path, branch_ref: &str, who: &str) -> Result<Option<String>, ()> {
    let head = std::fs::read_to_string(dir.join("HEAD")).unwrap_or_default();
    if head.trim() != format!("ref: {branch_ref}") {
        return Ok(Some(format!("{who} is not on {branch_ref} any more")));
    }
    if let Some(op) = operation::detect(|m| dir.join(m).exists()) {
        return Ok(Some(format!("{who} has {} in progress", op.describe())));
    }
    if dir.join("index.lock").exists()
        || dir.join("HEAD.lock").exists()
        || changed_within(&dir.join("index"), FRESH_INDEX)
    {
        return Err(());
    }
    Ok(None)
}

/// The gate of a pairing (see the module docs): both sides' git state, each to be on
/// `branch_ref` (`refs/heads/berth/<agent>`).
pub fn gate(user_git_dir: PathBuf, agent: AgentGit, branch_ref: String) -> Gatekeeper {
    let mut locked_since: Option<Instant> = None;
    Gatekeeper::new(move || {
        let mut busy = false;
        let agent_state = |branch_ref: &str| match &agent {
            AgentGit::Here(dir) => side_state(dir, branch_ref, "the agent's workspace"),
            AgentGit::Far(far) => match far.gate() {
                Gate::Open => Ok(None),
                Gate::Busy(_) => Err(()),
                Gate::Closed(why) => Ok(Some(why)),
            },
        };
        for state in [
            side_state(&user_git_dir, &branch_ref, "your checkout"),
            agent_state(&branch_ref),
        ] {
            match state {
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

/// `inner`, shut for good once `shut` is set: a sync loop that was let go of without ending
/// (it did not answer in time) applies nothing more when it wakes up.
pub fn until_shut(mut inner: Option<Gatekeeper>, shut: Arc<AtomicBool>) -> Gatekeeper {
    Gatekeeper::new(move || {
        if shut.load(Ordering::SeqCst) {
            return Gate::Closed("the pairing let go of this sync loop".into());
        }
        inner.as_mut().map_or(Gate::Open, Gatekeeper::check)
    })
}
