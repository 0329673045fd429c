//! How a pairing ended, in words: the outcome's name on the wire and the sentence the user
//! reads, naming what is left where.

use berth_core::pairing::{Outcome, RollbackCause};
use berth_store::PairingRecord;

pub fn name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Stopped => "stopped",
        Outcome::LeftAsIs => "left_as_is",
        Outcome::RolledBack { .. } => "rolled_back",
        Outcome::StopIncomplete { .. } => "stop_incomplete",
        Outcome::RollbackIncomplete { .. } => "rollback_incomplete",
    }
}

/// What happened, for the user, naming what is left where.
pub fn message(o: &Outcome, rec: &PairingRecord) -> String {
    let original = rec
        .original_branch
        .as_deref()
        .map(|b| b.strip_prefix("refs/heads/").unwrap_or(b).to_string())
        .unwrap_or_else(|| "your detached HEAD".into());
    let kept = |what: &str| match &rec.snapshot {
        Some(id) => format!(
            "{what}; your uncommitted work from before pairing is kept in snapshot {id} \
             (`berth stash restore {id}` once the checkout is clean)"
        ),
        None => what.to_string(),
    };
    match o {
        Outcome::Stopped => format!(
            "stopped pairing with {}: your checkout is back on {original}{}",
            rec.agent,
            if rec.snapshot.is_some() {
                " with your uncommitted work restored"
            } else {
                ""
            }
        ),
        Outcome::LeftAsIs => kept(&format!(
            "stopped pairing with {} while paused: nothing was changed — your checkout is as it \
             is now, not back on {original}",
            rec.agent
        )),
        Outcome::RolledBack { cause } => match cause {
            RollbackCause::Failed { step, failure } => format!(
                "pairing with {} did not start: {} failed: {} — everything was put back as it was",
                rec.agent,
                step.name(),
                failure.message()
            ),
            RollbackCause::StopRequested => format!(
                "pairing with {} was stopped while starting; everything was put back as it was",
                rec.agent
            ),
            RollbackCause::Crashed { step } => format!(
                "the daemon stopped during {} of pairing with {}; everything was put back as it was",
                step.name(),
                rec.agent
            ),
        },
        Outcome::StopIncomplete { step, failure } => kept(&format!(
            "stopping the pairing with {} stopped at {}: {} — the rest was not attempted",
            rec.agent,
            step.name(),
            failure.message()
        )),
        Outcome::RollbackIncomplete { undo, failure } => kept(&format!(
            "undoing the start of pairing with {} stopped at {}: {} — the rest was not attempted",
            rec.agent,
            undo.name(),
            failure.message()
        )),
    }
}
