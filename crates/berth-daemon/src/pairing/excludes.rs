//! berth's line in `info/exclude` of both repositories of a pairing (`berth_git::exclude`): so
//! that an agent's `git add -A` never trips over a temporary file berth is about to rename
//! into place, the line `.berth-tmp-*` (with a comment naming berth) is added when syncing
//! starts — recorded in the store *before* it is written, and only where no line with the
//! pattern is there yet (one the user wrote is theirs). When the pairing ends, every line its
//! checkout's pairings added is taken out so the file is byte for byte as it was; a line a
//! crash left behind is found and taken out by `berth doctor --fix` ([`leftovers`]).

use std::path::Path;

use berth_git::Git;
use berth_git::exclude::{self, Addition, Block};
use berth_proto::PairLeftover;
use berth_store::{ExcludeLine, Store};
use berth_sync::apply::TEMP_PREFIX;

use super::error::PairingError;
use crate::clock::now_ms;

/// Reached after a pairing ended, before its lines are taken out.
const FAILPOINT: &str = "pair.finish.exclude";

const COMMENT: &str = "# berth: its temporary files while pairing writes (removed when it stops)";

/// What berth writes, for `run` to use.
fn with_block<T>(run: impl FnOnce(Block<'_>) -> T) -> T {
    let pattern = format!("{}*", String::from_utf8_lossy(TEMP_PREFIX));
    run(Block {
        comment: COMMENT,
        pattern: &pattern,
    })
}

/// Adds berth's line to `git`'s `info/exclude` for the pairing of `project`, unless a line
/// with its pattern is there.
pub fn add(store: &Store, project: &str, git: &Git) -> Result<(), PairingError> {
    let path = exclude::path(git)?;
    with_block(|block| {
        let Some(addition) = exclude::plan(&path, block)? else {
            return Ok(());
        };
        store.record_exclude_line(&ExcludeLine {
            path: path.display().to_string(),
            project: project.to_string(),
            created: addition.created,
            separator: addition.separator,
            added_ms: now_ms(),
        })?;
        exclude::add(&path, block, addition)?;
        Ok(())
    })
}

/// Adds berth's line to the `info/exclude` of a workspace berth made for an agent elsewhere
/// (on the far side, when it is cloned), for good: nothing there is the user's to give back,
/// and pairing writes there whenever it pairs.
pub fn add_for_good(git: &Git) -> Result<(), PairingError> {
    let path = exclude::path(git)?;
    with_block(|block| {
        if let Some(addition) = exclude::plan(&path, block)? {
            exclude::add(&path, block, addition)?;
        }
        Ok(())
    })
}

/// Takes `line` out as it was put in (nothing if it is not there any more) and forgets it.
fn take_out(store: &Store, line: &ExcludeLine) -> Result<(), PairingError> {
    let addition = Addition {
        created: line.created,
        separator: line.separator,
    };
    with_block(|block| exclude::remove(Path::new(&line.path), block, addition))?;
    store.forget_exclude_line(&line.path)?;
    Ok(())
}

/// The pairing of `project` ended (its link stopped): every line its pairings added is taken
/// out. One that cannot be stays recorded, for `berth doctor --fix`.
pub fn remove_all(store: &Store, project: &str) {
    if let Err(e) = berth_git::failpoint::hit(FAILPOINT) {
        tracing::warn!(project, "failpoint {FAILPOINT}: {e}");
        return;
    }
    let lines = match store.exclude_lines(project) {
        Ok(lines) => lines,
        Err(e) => {
            tracing::warn!(project, "cannot read berth's lines in info/exclude: {e}");
            return;
        }
    };
    for line in lines {
        if let Err(e) = take_out(store, &line) {
            tracing::warn!(
                project,
                "cannot take berth's line out of {}: {e}; `berth doctor --fix` tries again",
                line.path
            );
        }
    }
}

/// berth's lines still in `info/exclude` files although no pairing of their checkout is open;
/// `fix`: each taken out (a record whose line is not there any more is then forgotten).
pub fn leftovers(store: &Store, fix: bool) -> Result<Vec<PairLeftover>, PairingError> {
    let mut found = Vec::new();
    for line in store.leftover_exclude_lines()? {
        let there = with_block(|block| exclude::holds(Path::new(&line.path), block));
        let mut left = PairLeftover {
            path: line.path.clone(),
            project: line.project.clone(),
            removed: false,
            error: None,
        };
        match there {
            Ok(false) if fix => take_out(store, &line)?,
            Ok(false) => {}
            Ok(true) if fix => {
                match take_out(store, &line) {
                    Ok(()) => left.removed = true,
                    Err(e) => left.error = Some(e.to_string()),
                }
                found.push(left);
            }
            Ok(true) => found.push(left),
            Err(e) => {
                left.error = Some(e.to_string());
                found.push(left);
            }
        }
    }
    Ok(found)
}
