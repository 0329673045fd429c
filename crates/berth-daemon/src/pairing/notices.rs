//! Which pausing causes git shows, and how the notices a pairing holds are brought in line
//! with what was found.

use std::collections::BTreeSet;

use berth_core::pairing::{Cause, Input, Notice, State};

/// Causes that git shows (and `observe::notices` re-checks); while one is held, the link
/// applies nothing. The others come from the link itself, which keeps retrying.
pub fn held_by_git(c: Cause) -> bool {
    !matches!(
        c,
        Cause::Root(_)
            | Cause::Watch(_)
            | Cause::Write(_)
            | Cause::Unexpected
            | Cause::SyncUnanswered
    )
}

/// The inputs that bring the notices `held` in line with what was `found`: every found notice
/// not held yet is raised; every held cause not found (of those `clears` covers; never
/// `revalidating`) is cleared.
pub fn changes(held: &[Notice], found: &[Notice], clears: impl Fn(Cause) -> bool) -> Vec<Input> {
    let found_causes: BTreeSet<Cause> = found.iter().map(Notice::cause).collect();
    let gone: BTreeSet<Cause> = held
        .iter()
        .map(Notice::cause)
        .filter(|c| !found_causes.contains(c) && *c != Cause::Revalidating && clears(*c))
        .collect();
    found
        .iter()
        .filter(|n| !held.contains(n))
        .map(|n| Input::Raise(n.clone()))
        .chain(gone.into_iter().map(Input::Clear))
        .collect()
}

/// The notices of a paused pairing (none otherwise).
pub fn notices_of(state: &State) -> Vec<Notice> {
    match state {
        State::Paused { notices } => notices.iter().cloned().collect(),
        _ => vec![],
    }
}
