//! What a request is answered, from how the transitions it set off ended: refused, finished
//! with an outcome, or still going (a start that is active, a stop that left the pairing
//! paused).

use berth_core::pairing::{Failure, Notice, Outcome, Refusal, RollbackCause, State};
use berth_proto::PairStopped;
use berth_store::PairingRecord;

use super::error::PairingError;
use super::notices::notices_of;
use super::outcome;

/// A start (or switch) of the pairing `rec`: `Ok` while it goes on.
pub fn start(
    refused: Option<Refusal>,
    finished: Option<Outcome>,
    rec: &PairingRecord,
) -> Result<(), PairingError> {
    if let Some(refusal) = refused {
        return Err(PairingError::Refused(refusal));
    }
    match finished {
        Some(Outcome::RolledBack {
            cause:
                RollbackCause::Failed {
                    failure: Failure::Blocked { blockers },
                    ..
                },
        }) => Err(PairingError::Blocked(blockers.into_iter().collect())),
        Some(outcome) => Err(PairingError::Failed(outcome::message(&outcome, rec))),
        None => Ok(()),
    }
}

/// A stop of the pairing that was `before` and is now `rec` in `state`.
pub fn stop(
    refused: Option<Refusal>,
    finished: Option<Outcome>,
    before: &PairingRecord,
    rec: &PairingRecord,
    state: &State,
) -> Result<PairStopped, PairingError> {
    if let Some(refusal) = refused {
        return Err(PairingError::Refused(refusal));
    }
    match finished {
        Some(outcome) => Ok(PairStopped {
            pairing: before.id.clone(),
            agent: before.agent.clone(),
            outcome: outcome::name(&outcome).into(),
            restored: outcome.restored(),
            snapshot: (!outcome.restored())
                .then(|| rec.snapshot.clone())
                .flatten(),
            message: outcome::message(&outcome, rec),
        }),
        // A stop during a start is honoured when the step in progress ends; a stop whose
        // final sync failed left the pairing paused.
        None => {
            let kept = match (state, &rec.snapshot) {
                (State::Paused { .. }, Some(id)) => {
                    format!(" (your uncommitted work from before pairing stays in snapshot {id})")
                }
                _ => String::new(),
            };
            Err(PairingError::Paused(format!(
                "pairing is {} — {}{kept}",
                state.describe(),
                messages(state).join("; ")
            )))
        }
    }
}

/// Whether a pairing in `state` can flush now, and if not, why.
pub fn flush(state: &State) -> Result<(), PairingError> {
    match state {
        State::Active { .. } => Ok(()),
        State::Paused { .. } => Err(PairingError::Paused(messages(state).join("\n"))),
        State::Off => Err(PairingError::NotPaired),
        _ => Err(PairingError::Refused(Refusal::Busy)),
    }
}

fn messages(state: &State) -> Vec<String> {
    notices_of(state).iter().map(Notice::message).collect()
}
