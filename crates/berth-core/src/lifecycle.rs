//! The phases of one daemon run: `starting → running → stopping → exited`.
//!
//! The daemon feeds [`Input`]s as they happen; [`next`] answers the new phase or refuses an
//! input that makes no sense in the current one. A shutdown may arrive at any time, including
//! during preparation; a repeated shutdown request is harmless.

use crate::InvalidTransition;
use crate::daemon_state::LivePhase;

/// What can happen to a daemon run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Storage is prepared and recovery finished: the daemon can serve.
    Prepared,
    /// SIGTERM, SIGINT or an API shutdown request.
    ShutdownRequested,
    /// Preparation failed; the run ends.
    PreparationFailed,
    /// Everything is flushed and the runtime files are removed.
    ShutdownComplete,
}

/// A run's phase, including its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Live(LivePhase),
    Exited,
}

/// The phase a run starts in.
pub const INITIAL: Phase = Phase::Live(LivePhase::Starting);

pub fn next(phase: Phase, input: Input) -> Result<Phase, InvalidTransition> {
    use LivePhase::*;
    use Phase::*;
    match (phase, input) {
        (Live(Starting), Input::Prepared) => Ok(Live(Running)),
        (Live(Starting | Running | Stopping), Input::ShutdownRequested) => Ok(Live(Stopping)),
        (Live(Starting), Input::PreparationFailed) => Ok(Live(Stopping)),
        (Live(Stopping), Input::ShutdownComplete) => Ok(Exited),
        // A shutdown that arrives during preparation wins: preparation finishing afterwards
        // leaves the run stopping.
        (Live(Stopping), Input::Prepared) => Ok(Live(Stopping)),
        (state, input) => Err(InvalidTransition::new(state, input)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LivePhase::*;
    use Phase::*;

    const INPUTS: [Input; 4] = [
        Input::Prepared,
        Input::ShutdownRequested,
        Input::PreparationFailed,
        Input::ShutdownComplete,
    ];
    const PHASES: [Phase; 4] = [Live(Starting), Live(Running), Live(Stopping), Exited];

    #[test]
    fn every_phase_and_input_has_the_expected_outcome() {
        for phase in PHASES {
            for input in INPUTS {
                let expected = match (phase, input) {
                    (Live(Starting), Input::Prepared) => Some(Live(Running)),
                    (Live(_), Input::ShutdownRequested) => Some(Live(Stopping)),
                    (Live(Starting), Input::PreparationFailed) => Some(Live(Stopping)),
                    (Live(Stopping), Input::ShutdownComplete) => Some(Exited),
                    (Live(Stopping), Input::Prepared) => Some(Live(Stopping)),
                    _ => None,
                };
                assert_eq!(next(phase, input).ok(), expected, "{phase:?} + {input:?}");
            }
        }
    }

    #[test]
    fn a_normal_run_walks_all_phases() {
        let mut p = INITIAL;
        for input in [
            Input::Prepared,
            Input::ShutdownRequested,
            Input::ShutdownComplete,
        ] {
            p = next(p, input).unwrap();
        }
        assert_eq!(p, Exited);
    }

    #[test]
    fn nothing_follows_exit() {
        for input in INPUTS {
            let err = next(Exited, input).unwrap_err();
            assert_eq!(err.state, "Exited");
        }
    }
}
