//! An agent's keeper socket (`keeper.sock`: its control requests, and attached clients), here
//! or there: the one place that decides how the daemon reaches it. `terminals.rs` asks it for
//! an answer or for an attached connection and never looks at where the agent runs.
//!
//! Here it is the socket in the agent's keeper directory. For an agent elsewhere (SPEC §10.4)
//! it is the same socket of the keeper on the far side, reached in two ways, each speaking the
//! keeper's own protocol unchanged end to end:
//!
//! - one request and its answer (a terminal's `screen` and `input`): a far call over the
//!   agent's [`Link`] (`far_calls::Call::Keeper`), so no new connection is made for it;
//! - an attached client's stream: a relay, `berth __relay SOCKET` ([`relay`]), run there over a
//!   byte stream of the agent's place of its own (`ssh`, `docker exec -i`), with the berth the
//!   link installed. It connects to the socket, says [`CONNECTED`] on its standard output, then
//!   copies its standard input to the socket and the socket to its standard output. The
//!   daemon's end is one side of a Unix socket pair whose other side a task copies to and from
//!   the relay's command, so the attach route relays a keeper's frames with the same code
//!   wherever the keeper is. A relay whose stream breaks (the ssh connection killed, the host
//!   gone) ends the daemon's side like a keeper that went away; the program there goes on.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use berth_store::AgentRecord;
use berth_supervisor::keeper::control::{self, ControlError, Request};
use berth_sync::remote::ssh::quote;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::UnixStream;

use crate::agents::{Link, LinkError, Supervisor};
use crate::far_calls::{Answer, Call};

/// What a relay says on its standard output once it is connected to the keeper's socket.
pub const CONNECTED: &str = "berth-relay: connected\n";
/// How a relay's message begins when the keeper's socket does not answer.
const NO_KEEPER: &str = "berth-relay: no keeper answers";
/// How long a relay may take to connect (within the time `terminals.rs` gives an attach).
const CONNECT_WITHIN: Duration = Duration::from_secs(8);
/// How long the relay's command may take to say why it ended.
const SAID_WITHIN: Duration = Duration::from_secs(2);

/// Where an agent's keeper socket is.
#[derive(Debug)]
pub enum KeeperSocket {
    Here(PathBuf),
    /// On the far side of an agent elsewhere: the socket's path there.
    There {
        link: Link,
        socket: String,
    },
}

/// Why the keeper's socket could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Nothing answers on the socket: the keeper ended.
    #[error("{0}")]
    Gone(String),
    /// The place the agent runs could not be reached.
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Other(String),
}

impl From<LinkError> for SocketError {
    fn from(e: LinkError) -> SocketError {
        match e {
            LinkError::Unreachable { detail, .. } => SocketError::Unreachable(detail),
            LinkError::Refused(why) => SocketError::Other(why),
        }
    }
}

impl KeeperSocket {
    /// The socket of `rec`'s keeper.
    pub fn of(agents: &Supervisor, rec: &AgentRecord) -> Result<KeeperSocket, SocketError> {
        if rec.remote.is_none() {
            return Ok(KeeperSocket::Here(agents.keeper_dir(rec).socket()));
        }
        let link = agents
            .link(rec)
            .map_err(|e| SocketError::Other(e.to_string()))?;
        let socket =
            berth_supervisor::keeper::spec::KeeperDir(Path::new(link.dir()).join("keeper"))
                .socket()
                .display()
                .to_string();
        Ok(KeeperSocket::There { link, socket })
    }

    /// Sends one request and waits (bounded by `within`) for the keeper's answer.
    pub async fn ask<T: DeserializeOwned + Send + 'static>(
        &self,
        request: Request,
        within: Duration,
    ) -> Result<T, SocketError> {
        match self {
            KeeperSocket::Here(path) => {
                let path = path.clone();
                let answer =
                    tokio::task::spawn_blocking(move || control::ask::<T>(&path, &request, within))
                        .await
                        .map_err(|e| SocketError::Other(e.to_string()))?;
                answer.map_err(|e| match e {
                    e @ ControlError::Io { .. } => SocketError::Gone(e.to_string()),
                    e => SocketError::Other(e.to_string()),
                })
            }
            KeeperSocket::There { link, .. } => {
                let call = Call::Keeper {
                    request,
                    timeout_ms: u64::try_from(within.as_millis()).unwrap_or(u64::MAX),
                };
                match link.call_async(call).await? {
                    Answer::Keeper(json) => serde_json::from_value(json)
                        .map_err(|e| SocketError::Other(format!("the keeper there answered {e}"))),
                    Answer::KeeperGone(said) => Err(SocketError::Gone(said)),
                    _ => Err(SocketError::Other(
                        "the far side answered out of turn".into(),
                    )),
                }
            }
        }
    }

    /// A connection to the socket, to attach through.
    pub async fn connect(&self) -> Result<UnixStream, SocketError> {
        match self {
            KeeperSocket::Here(path) => UnixStream::connect(path)
                .await
                .map_err(|e| SocketError::Gone(e.to_string())),
            KeeperSocket::There { link, socket } => relayed(link, socket).await,
        }
    }
}

/// Starts a relay to `socket` there; the daemon's side of the stream once it is connected.
/// The agent's link is made first (a round trip when it is up): berth is then installed there
/// in this daemon's version, and a place that cannot be reached says so in the link's words.
async fn relayed(link: &Link, socket: &str) -> Result<UnixStream, SocketError> {
    link.call_async(Call::Ping).await?;
    let command = link.berth_there(&format!("__relay {}", quote(socket)))?;
    let mut command = tokio::process::Command::from(command);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| {
        SocketError::Unreachable(format!("cannot start {:?}: {e}", command.as_std()))
    })?;
    let (Some(stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(SocketError::Other(
            "the relay has no standard streams".into(),
        ));
    };
    // What the command says (ssh's reason), read all along so it can never block on it.
    let said = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    let answered = tokio::time::timeout(CONNECT_WITHIN, stdout.read_line(&mut line)).await;
    if answered.is_err() {
        let _ = child.kill().await;
        return Err(SocketError::Unreachable(format!(
            "the connection to {} was not made within {} s",
            link.label(),
            CONNECT_WITHIN.as_secs()
        )));
    }
    if line != CONNECTED {
        let said = match tokio::time::timeout(SAID_WITHIN, said).await {
            Ok(Ok(text)) => text.trim().to_string(),
            _ => String::new(),
        };
        let _ = child.kill().await;
        return Err(if said.contains(NO_KEEPER) {
            SocketError::Gone(said)
        } else if said.is_empty() {
            SocketError::Unreachable(format!(
                "the connection to {} ended before it was made",
                link.label()
            ))
        } else {
            SocketError::Unreachable(said)
        });
    }
    let (ours, theirs) = UnixStream::pair().map_err(|e| SocketError::Other(e.to_string()))?;
    tokio::spawn(async move {
        let (mut from_daemon, mut to_daemon) = theirs.into_split();
        let mut to_relay = stdin;
        tokio::select! {
            _ = tokio::io::copy(&mut from_daemon, &mut to_relay) => {}
            _ = tokio::io::copy(&mut stdout, &mut to_daemon) => {}
        }
        // Either end is done: the relay's input closes (it ends there), and the daemon's side
        // sees the end of its stream.
        drop((to_relay, to_daemon));
        if tokio::time::timeout(SAID_WITHIN, child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    });
    Ok(ours)
}

/// `berth __relay SOCKET`, on the far side: connects to the keeper's socket, says
/// [`CONNECTED`], then copies standard input to it and it to standard output until either
/// ends.
pub fn relay(socket: &Path) -> Result<(), String> {
    use std::io::{Read, Write};
    let stream = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| format!("{NO_KEEPER} at {}: {e}", socket.display()))?;
    let mut to_keeper = stream.try_clone().map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    out.write_all(CONNECTED.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut to_keeper);
        // The daemon's side is gone: so is this client, for the keeper.
        let _ = to_keeper.shutdown(std::net::Shutdown::Both);
    });
    let mut from_keeper = stream;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from_keeper.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.to_string()),
        };
        if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
            return Ok(()); // the stream to the daemon is gone
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relay_says_when_no_keeper_answers() {
        let dir = tempfile::tempdir().unwrap();
        let err = relay(&dir.path().join("keeper.sock")).unwrap_err();
        assert!(err.starts_with(NO_KEEPER), "{err}");
    }
}
