//! `berth attach NAME`: a terminal agent's screen on yours, your keys to it.
//!
//! Everything that can be refused (unknown agent, not a terminal, not running, a detach key
//! that cannot be) is refused before the local terminal changes. Then the terminal goes raw
//! (`crate::raw_terminal`), the daemon's WebSocket (`GET /v1/agents/attach`) draws the current
//! screen at once and every change after it, keys go the other way, and the window size
//! follows yours (SIGWINCH). The detach key, closing the terminal (SIGHUP) or a signal ends
//! the attach; the program keeps running. How it ended is said once the terminal is back.

use std::fs::File;
use std::io::{Read, Write};

use berth_client::{AttachStream, Client};
use berth_core::terminal::DetachKey;
use berth_proto::{AttachControl, AttachEvent, AttachQuery};
use futures_util::{SinkExt, StreamExt};
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{SignalKind, signal};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::stash::here;
use crate::Ctx;
use crate::cli::AttachArgs;
use crate::error::{CliError, CliResult, Kind};
use crate::raw_terminal::{self, RawTerminal};

/// How an attach ended.
#[derive(Debug)]
enum End {
    /// The detach key, or the local terminal closed.
    Detached,
    /// A signal (SIGTERM, SIGINT, SIGHUP).
    Signal(&'static str),
    /// The program ended (its exit status, if the daemon said it).
    Exited(Option<AttachEvent>),
    /// The daemon is stopping.
    DaemonStopping,
    /// The connection ended without a word: the daemon went away.
    ConnectionLost,
    /// The daemon closed it with a reason.
    Closed(String),
}

pub async fn run(ctx: &Ctx, args: AttachArgs) -> CliResult<i32> {
    let key = DetachKey::parse(&args.detach_key).map_err(|e| {
        CliError::new(Kind::Usage, "invalid_detach_key", e.to_string())
            .hint("for example --detach-key ctrl-]")
    })?;
    if !raw_terminal::is_terminal() {
        return Err(CliError::new(
            Kind::Usage,
            "not_a_terminal",
            "berth attach needs a terminal on stdin and stdout",
        )
        .hint(format!(
            "from a script, use `berth agent screen {0}` and `berth agent input {0}`",
            args.name
        )));
    }
    let size = raw_terminal::size();
    let query = AttachQuery {
        repo: here()?,
        name: args.name.clone(),
        read_only: args.read_only,
        rows: size.map(|s| s.0),
        cols: size.map(|s| s.1),
    };
    let client = Client::unix(ctx.home.socket());
    let ws = client.attach(&query).await?;
    let end = {
        let _raw = RawTerminal::enter().map_err(|e| {
            CliError::failed(
                "terminal",
                format!("cannot put the terminal in raw mode: {e}"),
            )
        })?;
        relay(ws, key, args.read_only).await
    };
    report(&args.name, key, end)
}

/// What the person is told once the terminal is back, and the exit code.
fn report(name: &str, key: DetachKey, end: End) -> CliResult<i32> {
    let again = format!("`berth attach {name}` to come back");
    match end {
        End::Detached => {
            let how = match key.0 {
                Some(_) => format!(" ({})", key.name()),
                None => String::new(),
            };
            eprintln!("detached from {name}{how}; it keeps running: {again}");
            Ok(0)
        }
        End::Signal(sig) => {
            eprintln!("detached from {name} on {sig}; it keeps running: {again}");
            Ok(0)
        }
        End::Exited(exit) => {
            let how = match exit {
                Some(AttachEvent::Exit {
                    code: Some(code), ..
                }) => format!("with exit code {code}"),
                Some(AttachEvent::Exit {
                    signal: Some(sig), ..
                }) => format!("on signal {sig}"),
                _ => "".to_string(),
            };
            eprintln!("{name} exited {how}; `berth agent show {name}` tells more");
            Ok(0)
        }
        End::DaemonStopping => Err(CliError::new(
            Kind::NotRunning,
            "daemon_stopping",
            format!("the daemon is stopping; {name} keeps running"),
        )
        .hint(format!("after `berth daemon start`, {again}"))),
        End::ConnectionLost => Err(CliError::new(
            Kind::NotRunning,
            "daemon_gone",
            format!("the daemon went away; {name} keeps running"),
        )
        .hint(format!(
            "`berth daemon status` tells why; after `berth daemon start`, {again}"
        ))),
        End::Closed(reason) => Err(CliError::failed("attach_ended", reason).hint(format!(
            "`berth agent show {name}` and `berth daemon logs` tell more; {again}"
        ))),
    }
}

/// The local terminal's keys, read as they come on the runtime's own thread (no hand-over
/// from another thread on the way of a keystroke). Through a descriptor of its own, opened
/// anew, so making it non-blocking leaves the one the shell shares with berth as it was.
struct Keys {
    fd: AsyncFd<File>,
    buf: Vec<u8>,
}

impl Keys {
    fn open() -> std::io::Result<Keys> {
        let tty = File::open("/proc/self/fd/0")?;
        let flags = OFlag::from_bits_truncate(fcntl(&tty, FcntlArg::F_GETFL)?);
        fcntl(&tty, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        // SAFETY: `tty` is an open descriptor that the AsyncFd owns from here on, so it stays
        // open and the same until the AsyncFd is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(tty, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Keys {
            fd,
            buf: vec![0u8; 16 * 1024],
        })
    }

    /// The next keys typed; `None` once the terminal is gone.
    async fn next(&mut self) -> Option<Vec<u8>> {
        let Keys { fd, buf } = self;
        loop {
            let mut ready = fd.readable().await.ok()?;
            match ready.try_io(|tty| tty.get_ref().read(buf)) {
                Ok(Ok(0)) => return None,
                Ok(Ok(n)) => return Some(buf[..n].to_vec()),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Ok(Err(_)) => return None,
                // Not ready after all: wait again.
                Err(_) => {}
            }
        }
    }
}

fn draw(bytes: &[u8]) -> bool {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).and_then(|()| out.flush()).is_ok()
}

/// Relays between the terminal and the daemon until something ends it.
async fn relay(mut ws: AttachStream, key: DetachKey, read_only: bool) -> End {
    let (Ok(mut winch), Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::window_change()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        return End::Closed("cannot watch for signals".into());
    };
    let mut keys = match Keys::open() {
        Ok(keys) => keys,
        Err(e) => return End::Closed(format!("cannot read the terminal: {e}")),
    };
    let mut exit = None;
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Binary(bytes))) => {
                    if !draw(&bytes) {
                        return End::Detached;
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    if let Ok(event @ AttachEvent::Exit { .. }) = serde_json::from_str(text.as_str()) {
                        exit = Some(event);
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    return match frame {
                        _ if exit.is_some() => End::Exited(exit),
                        Some(f) if f.code == CloseCode::Normal => End::Exited(None),
                        Some(f) if f.code == CloseCode::Away => End::DaemonStopping,
                        Some(f) => End::Closed(f.reason.to_string()),
                        None => End::ConnectionLost,
                    };
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => {
                    return if exit.is_some() { End::Exited(exit) } else { End::ConnectionLost };
                }
            },
            typed = keys.next() => {
                let Some(mut typed) = typed else {
                    return End::Detached;
                };
                let detach = key.find(&typed);
                if let Some(at) = detach {
                    typed.truncate(at);
                }
                if !read_only && !typed.is_empty() && ws.send(Message::Binary(typed.into())).await.is_err() {
                    return End::ConnectionLost;
                }
                if detach.is_some() {
                    let _ = ws.close(None).await;
                    return End::Detached;
                }
            }
            _ = winch.recv() => {
                if let (false, Some((rows, cols))) = (read_only, raw_terminal::size()) {
                    let resize = serde_json::to_string(&AttachControl::Resize { rows, cols }).unwrap_or_default();
                    if ws.send(Message::Text(resize.into())).await.is_err() {
                        return End::ConnectionLost;
                    }
                }
            }
            _ = term.recv() => return End::Signal("SIGTERM"),
            _ = int.recv() => return End::Signal("SIGINT"),
            _ = hup.recv() => return End::Signal("SIGHUP"),
        }
    }
}
