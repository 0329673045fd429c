//! Terminal agents through the daemon: their screen and typing into them. The daemon never
//! holds a terminal; it relays each request to the agent's keeper (`keeper.sock`), which owns
//! the master side and the screen (`berth_supervisor::keeper::terminal`).

use std::time::Duration;

use berth_proto::TerminalScreen;
use berth_store::AgentRecord;
use berth_supervisor::keeper::control::{self, Refusal, Request, TerminalAnswer};

use crate::agents::Supervisor;

/// How long a keeper may take to answer (typing waits up to 5 s for the program).
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// Why a terminal request was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error("agent {0} does not run under a terminal")]
    NotATerminal(String),
    #[error("agent {name} is not running ({state})")]
    NotRunning { name: String, state: String },
    #[error("{0}")]
    Invalid(String),
    #[error("agent {name}: {detail}")]
    Stuck { name: String, detail: String },
    #[error("cannot ask the keeper of {name}: {detail}")]
    Keeper { name: String, detail: String },
}

/// The agent's screen, with the newest `scrollback` lines above it.
pub async fn screen(
    agents: &Supervisor,
    rec: &AgentRecord,
    scrollback: usize,
) -> Result<TerminalScreen, TerminalError> {
    match ask(agents, rec, Request::Screen { scrollback }).await? {
        TerminalAnswer::Screen(s) => Ok(s),
        other => Err(unexpected(rec, &other)),
    }
}

/// Types `bytes` (checked by the caller with `berth_core::terminal::keystrokes`) into the
/// agent's terminal; returns how many were typed.
pub async fn type_in(
    agents: &Supervisor,
    rec: &AgentRecord,
    bytes: Vec<u8>,
) -> Result<usize, TerminalError> {
    match ask(agents, rec, Request::Input { bytes }).await? {
        TerminalAnswer::Typed { bytes } => Ok(bytes),
        other => Err(unexpected(rec, &other)),
    }
}

fn unexpected(rec: &AgentRecord, answer: &TerminalAnswer) -> TerminalError {
    TerminalError::Keeper {
        name: rec.name.clone(),
        detail: format!("it answered {answer:?}"),
    }
}

/// Checks that the agent is a terminal agent with a process, then asks its keeper; a refusal
/// becomes the matching error.
async fn ask(
    agents: &Supervisor,
    rec: &AgentRecord,
    req: Request,
) -> Result<TerminalAnswer, TerminalError> {
    if !rec.tty {
        return Err(TerminalError::NotATerminal(rec.name.clone()));
    }
    let not_running = |state: String| TerminalError::NotRunning {
        name: rec.name.clone(),
        state,
    };
    let state = agents.state_of(rec);
    if !state.has_process() {
        return Err(not_running(state.name().to_string()));
    }
    let socket = agents.keeper_dir(rec).socket();
    let answer = tokio::task::spawn_blocking(move || {
        control::ask::<TerminalAnswer>(&socket, &req, ANSWER_WITHIN)
    })
    .await
    .map_err(|e| TerminalError::Keeper {
        name: rec.name.clone(),
        detail: e.to_string(),
    })?;
    match answer {
        Ok(TerminalAnswer::Refused { reason, message }) => Err(match reason {
            // Its keeper was started before the definition said tty (`berth up` changed it).
            Refusal::NotATerminal => TerminalError::NotATerminal(rec.name.clone()),
            Refusal::Exited => not_running("exited".into()),
            Refusal::Invalid => TerminalError::Invalid(message),
            Refusal::Stuck => TerminalError::Stuck {
                name: rec.name.clone(),
                detail: message,
            },
        }),
        Ok(answer) => Ok(answer),
        // The keeper is gone (it finished between our look and the request).
        Err(control::ControlError::Io { .. }) => Err(not_running("its keeper has ended".into())),
        Err(e) => Err(TerminalError::Keeper {
            name: rec.name.clone(),
            detail: e.to_string(),
        }),
    }
}
