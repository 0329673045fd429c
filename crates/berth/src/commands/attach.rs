//! `berth attach NAME`: a terminal agent's screen on yours, your keys to it.
//!
//! Everything that can be refused (unknown agent, not a terminal, not running, a detach key
//! that cannot be) is refused before the local terminal changes. The daemon attaches to the
//! agent's keeper and hands the attached stream over (`GET /v1/agents/attach/handover`,
//! `berth_client::HandedOver`), so a key and its echo go between berth and the keeper with no
//! daemon in between. Then the terminal goes raw (`crate::raw_terminal`), the keeper draws the
//! current screen at once and every change after it, keys go the other way, and the window
//! size follows yours (SIGWINCH).
//!
//! The hot paths are two plain threads, each blocked in one `read`: the keeper's frames to the
//! terminal, and the terminal's keys to the keeper. A third watches the daemon's connection,
//! which carries nothing: its end means the daemon went away (a `stopping` notice first: it
//! stops), and ends the attach as it would have over the daemon's WebSocket. The runtime's
//! thread only waits for signals and for whichever thread ends the attach. The detach key,
//! closing the terminal (SIGHUP) or a signal ends it; the program keeps running. How it ended
//! is said once the terminal is back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_client::{Client, HandedOver};
use berth_core::terminal::DetachKey;
use berth_proto::{AttachControl, AttachEvent, AttachQuery, Frame, HandoverNotice};
use tokio::signal::unix::{SignalKind, signal};

use super::stash::here;
use crate::Ctx;
use crate::cli::AttachArgs;
use crate::error::{CliError, CliResult, Kind};
use crate::raw_terminal::{self, Guard, RawTerminal};

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
    /// The keeper's stream ended without the program's exit (the reason, in the daemon's
    /// words): unless the daemon went away at the same time, this is what is said.
    KeeperGone(String),
    /// It ended for this reason.
    Closed(String),
}

/// How long the end of the keeper's stream waits for the daemon's connection to tell whether
/// it ended because the daemon went away (for an agent elsewhere, the daemon relays it).
const DAEMON_SAYS_WITHIN: Duration = Duration::from_millis(250);

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
    // Its start-up overlaps the round trip through the daemon.
    let guard = Guard::start();
    let handed = client.handover(&query).await?;
    let end = {
        let _raw = RawTerminal::enter(guard).map_err(|e| {
            CliError::failed(
                "terminal",
                format!("cannot put the terminal in raw mode: {e}"),
            )
        })?;
        relay(handed, key, args.read_only).await
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
        End::KeeperGone(reason) | End::Closed(reason) => {
            Err(CliError::failed("attach_ended", reason).hint(format!(
                "`berth agent show {name}` and `berth daemon logs` tell more; {again}"
            )))
        }
    }
}

/// Runs `work` on a thread of its own, sending how it ended on `tx`; `false` if no thread
/// could be started.
fn on_thread(
    tx: &tokio::sync::mpsc::UnboundedSender<End>,
    work: impl FnOnce() -> End + Send + 'static,
) -> bool {
    let tx = tx.clone();
    std::thread::Builder::new()
        .spawn(move || {
            let _ = tx.send(work());
        })
        .is_ok()
}

/// Relays between the terminal and the keeper until something ends it.
async fn relay(handed: HandedOver, key: DetachKey, read_only: bool) -> End {
    let (Ok(mut winch), Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::window_change()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        return End::Closed("cannot watch for signals".into());
    };
    let HandedOver {
        keeper,
        unread,
        gone,
        daemon,
    } = handed;
    let Ok(from_keeper) = keeper.try_clone() else {
        return End::Closed("cannot read the keeper's stream".into());
    };
    let to_keeper = Arc::new(Mutex::new(keeper));
    // Set once the attach ended: nothing more is drawn on the terminal being put back.
    let ended = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let started = {
        let (drawn, typed) = (ended.clone(), to_keeper.clone());
        on_thread(&tx, move || draw(from_keeper, unread, gone, &drawn))
            && on_thread(&tx, move || type_keys(&typed, key, read_only))
            && on_thread(&tx, move || watch_daemon(daemon))
    };
    if !started {
        ended.store(true, Ordering::SeqCst);
        return End::Closed("cannot start a thread to relay with".into());
    }
    let end = loop {
        tokio::select! {
            end = rx.recv() => match end {
                Some(End::KeeperGone(reason)) => {
                    break match tokio::time::timeout(DAEMON_SAYS_WITHIN, rx.recv()).await {
                        Ok(Some(end @ (End::ConnectionLost | End::DaemonStopping))) => end,
                        _ => End::KeeperGone(reason),
                    };
                }
                Some(end) => break end,
                None => break End::ConnectionLost,
            },
            _ = winch.recv() => {
                if let (false, Some((rows, cols))) = (read_only, raw_terminal::size())
                    && !send(&to_keeper, &Frame::Control(AttachControl::Resize { rows, cols }))
                {
                    break End::KeeperGone("the agent's keeper went away".into());
                }
            }
            _ = term.recv() => break End::Signal("SIGTERM"),
            _ = int.recv() => break End::Signal("SIGINT"),
            _ = hup.recv() => break End::Signal("SIGHUP"),
        }
    };
    ended.store(true, Ordering::SeqCst);
    // The keeper lets go of this client at once; the drawing thread's read ends.
    let _ = lock(&to_keeper).shutdown(Shutdown::Both);
    end
}

fn lock(m: &Mutex<UnixStream>) -> std::sync::MutexGuard<'_, UnixStream> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes one frame to the keeper (keys and sizes never interleave); whether it went.
fn send(to_keeper: &Mutex<UnixStream>, frame: &Frame) -> bool {
    let mut wire = Vec::new();
    frame.encode(&mut wire);
    lock(to_keeper).write_all(&wire).is_ok()
}

/// The drawing thread: the keeper's frames, output drawn on the terminal as it comes, until
/// the program exits or the stream ends.
fn draw(mut from_keeper: UnixStream, mut buf: Vec<u8>, gone: String, ended: &AtomicBool) -> End {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let mut used = 0;
        loop {
            let frame = match Frame::decode(&buf[used..]) {
                Ok(Some((frame, n))) => {
                    used += n;
                    frame
                }
                Ok(None) => break,
                Err(e) => return End::Closed(format!("the keeper sent {e}")),
            };
            match frame {
                Frame::Output(bytes) => {
                    let mut out = std::io::stdout().lock();
                    // Checked under the lock the terminal is put back under.
                    if ended.load(Ordering::SeqCst) {
                        return End::Detached;
                    }
                    if out.write_all(&bytes).and_then(|()| out.flush()).is_err() {
                        return End::Detached;
                    }
                }
                Frame::Event(exit @ AttachEvent::Exit { .. }) => return End::Exited(Some(exit)),
                Frame::Event(AttachEvent::Attached { .. }) => {}
                Frame::Input(_) | Frame::Control(_) => {
                    return End::Closed("the keeper sent a client's frame".into());
                }
            }
        }
        buf.drain(..used);
        match from_keeper.read(&mut chunk) {
            Ok(0) => return End::KeeperGone(gone),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return End::KeeperGone(gone),
        }
    }
}

/// The keys thread: what is typed goes to the keeper as it comes (a read-only client's goes
/// nowhere), until the detach key or the terminal's end.
fn type_keys(to_keeper: &Mutex<UnixStream>, key: DetachKey, read_only: bool) -> End {
    let stdin = std::io::stdin();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match nix::unistd::read(stdin.as_fd(), &mut buf) {
            Ok(0) => return End::Detached,
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return End::Detached,
        };
        let mut typed = &buf[..n];
        let detach = key.find(typed);
        if let Some(at) = detach {
            typed = &typed[..at];
        }
        if !read_only && !typed.is_empty() && !send(to_keeper, &Frame::Input(typed.to_vec())) {
            return End::KeeperGone("the agent's keeper went away".into());
        }
        if detach.is_some() {
            return End::Detached;
        }
    }
}

/// The daemon's thread: its connection ends when the daemon goes, after a notice if it stops.
fn watch_daemon(daemon: UnixStream) -> End {
    let mut lines = BufReader::new(daemon);
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line) {
            Ok(0) | Err(_) => return End::ConnectionLost,
            Ok(_) => {
                if let Ok(HandoverNotice::Stopping) = serde_json::from_str(&line) {
                    return End::DaemonStopping;
                }
            }
        }
    }
}
