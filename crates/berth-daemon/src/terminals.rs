//! Terminal agents through the daemon: their screen, typing into them, attaching to them. The
//! daemon never holds a terminal; it relays each request to the agent's keeper (`keeper.sock`),
//! which owns the master side and the screen (`berth_supervisor::keeper::terminal`).

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use berth_proto::TerminalScreen;
use berth_store::AgentRecord;
use berth_supervisor::keeper::control::{Refusal, Request, TerminalAnswer};

use crate::agents::Supervisor;
use crate::keeper_socket::{KeeperSocket, SocketError};

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
    #[error("cannot reach agent {name} where it runs: {detail}")]
    Unreachable { name: String, detail: String },
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

/// A client's connection to an agent's keeper, attached: frames both ways
/// (`berth_proto::Frame`).
#[derive(Debug)]
pub struct Attached {
    /// Reads the keeper's frames (what it sent with its answer is in the buffer).
    pub from_keeper: BufReader<OwnedReadHalf>,
    pub to_keeper: OwnedWriteHalf,
}

/// Attaches a client to the agent's terminal: it takes the client's `size` unless `read_only`.
pub async fn attach(
    agents: &Supervisor,
    rec: &AgentRecord,
    read_only: bool,
    size: Option<(u32, u32)>,
) -> Result<Attached, TerminalError> {
    let keeper = |detail: String| TerminalError::Keeper {
        name: rec.name.clone(),
        detail,
    };
    let socket = check(agents, rec)?;
    let req = Request::Attach {
        read_only,
        rows: size.map(|s| s.0),
        cols: size.map(|s| s.1),
    };
    let mut line = serde_json::to_string(&req).map_err(|e| keeper(e.to_string()))?;
    line.push('\n');
    let exchange = async {
        let gone = |e: std::io::Error| SocketError::Gone(e.to_string());
        let (from, mut to) = socket.connect().await?.into_split();
        to.write_all(line.as_bytes()).await.map_err(gone)?;
        let mut from = BufReader::new(from);
        let mut answer = String::new();
        from.read_line(&mut answer).await.map_err(gone)?;
        Ok::<_, SocketError>((from, to, answer))
    };
    let (from_keeper, to_keeper, answer) = match tokio::time::timeout(ANSWER_WITHIN, exchange).await
    {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => return Err(socket_failure(rec, e)),
        Err(_) => return Err(keeper("its keeper did not answer in time".into())),
    };
    match serde_json::from_str::<TerminalAnswer>(&answer) {
        Ok(TerminalAnswer::Attached) => Ok(Attached {
            from_keeper,
            to_keeper,
        }),
        Ok(TerminalAnswer::Refused { reason, message }) => Err(refusal(rec, reason, message)),
        Ok(other) => Err(unexpected(rec, &other)),
        // An empty answer: the keeper ended in between.
        Err(_) if answer.is_empty() => Err(not_running(rec, "its keeper has ended".into())),
        Err(e) => Err(keeper(format!("{e}: {answer:?}"))),
    }
}

fn unexpected(rec: &AgentRecord, answer: &TerminalAnswer) -> TerminalError {
    TerminalError::Keeper {
        name: rec.name.clone(),
        detail: format!("it answered {answer:?}"),
    }
}

fn not_running(rec: &AgentRecord, state: String) -> TerminalError {
    TerminalError::NotRunning {
        name: rec.name.clone(),
        state,
    }
}

/// Checks that the agent is a terminal agent with a process; its keeper's socket.
fn check(agents: &Supervisor, rec: &AgentRecord) -> Result<KeeperSocket, TerminalError> {
    if !rec.tty {
        return Err(TerminalError::NotATerminal(rec.name.clone()));
    }
    let state = agents.state_of(rec);
    if !state.has_process() {
        return Err(not_running(rec, state.name().to_string()));
    }
    KeeperSocket::of(agents, rec).map_err(|e| socket_failure(rec, e))
}

/// The error for a keeper socket that could not be asked.
fn socket_failure(rec: &AgentRecord, e: SocketError) -> TerminalError {
    match e {
        // The keeper is gone (it finished between our look and the request).
        SocketError::Gone(_) => not_running(rec, "its keeper has ended".into()),
        SocketError::Unreachable(detail) => TerminalError::Unreachable {
            name: rec.name.clone(),
            detail,
        },
        SocketError::Other(detail) => TerminalError::Keeper {
            name: rec.name.clone(),
            detail,
        },
    }
}

/// The error for a keeper's refusal.
fn refusal(rec: &AgentRecord, reason: Refusal, message: String) -> TerminalError {
    match reason {
        // Its keeper was started before the definition said tty (`berth up` changed it).
        Refusal::NotATerminal => TerminalError::NotATerminal(rec.name.clone()),
        Refusal::Exited => not_running(rec, "exited".into()),
        Refusal::Invalid => TerminalError::Invalid(message),
        Refusal::Stuck => TerminalError::Stuck {
            name: rec.name.clone(),
            detail: message,
        },
    }
}

/// Checks that the agent is a terminal agent with a process, then asks its keeper; a refusal
/// becomes the matching error.
async fn ask(
    agents: &Supervisor,
    rec: &AgentRecord,
    req: Request,
) -> Result<TerminalAnswer, TerminalError> {
    let socket = check(agents, rec)?;
    match socket.ask::<TerminalAnswer>(req, ANSWER_WITHIN).await {
        Ok(TerminalAnswer::Refused { reason, message }) => Err(refusal(rec, reason, message)),
        Ok(answer) => Ok(answer),
        Err(e) => Err(socket_failure(rec, e)),
    }
}
