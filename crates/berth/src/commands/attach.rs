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
//! The keeper's stream is the client's own, so berth then lends the keeper its terminal
//! (`AttachControl::Lend`, when the keeper says it takes one): the keeper reads the keys and
//! draws the screen there itself, so a key and its echo pass through no other process. berth
//! keeps raw mode, the window size and the restore, and reads only events (the detach key, the
//! program's exit). Before it puts the terminal back, it shuts its side of the stream and waits
//! for the keeper to close it: the keeper has then let go of the terminal.
//!
//! Otherwise (an older keeper, or a stream relayed from elsewhere) the hot paths are two plain
//! threads, each blocked in one `read`: the keeper's frames to the
//! terminal, and the terminal's keys to the keeper. A third watches the daemon's connection,
//! which carries nothing: its end means the daemon went away (a `stopping` notice first: it
//! stops), and ends the attach as it would have over the daemon's WebSocket. The runtime's
//! thread only waits for signals and for whichever thread ends the attach. The detach key,
//! closing the terminal (SIGHUP) or a signal ends it; the program keeps running. How it ended
//! is said once the terminal is back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_client::{Client, ClientError, HandedOver};
use berth_core::terminal::DetachKey;
use berth_proto::{AttachControl, AttachEvent, AttachQuery, ErrorCode, Frame, HandoverNotice};
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
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
/// How long the keeper may take to answer a lend, and to let go of the terminal at the end.
const KEEPER_ANSWERS_WITHIN: Duration = Duration::from_secs(2);

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
    let handed = client.handover(&query).await.map_err(|e| match e {
        // The route itself is unknown: a daemon started by an older berth.
        ClientError::Api { error, .. } if error.code == ErrorCode::NotFound => CliError::new(
            Kind::Failed,
            "daemon_outdated",
            "the running daemon was started by an older berth, which cannot hand over a \
             terminal agent's stream",
        )
        .hint("`berth daemon restart` starts it again from this berth; agents keep running"),
        e => e.into(),
    })?;
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
        mut unread,
        gone,
        daemon,
    } = handed;
    let lent = match lend(&keeper, &mut unread, key) {
        Ok(lent) => lent,
        Err(end) => {
            // A keeper that took the terminal without saying so in time lets go of it too.
            let _ = keeper.shutdown(Shutdown::Write);
            wait_closed(&keeper);
            return end;
        }
    };
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
            && (lent || on_thread(&tx, move || type_keys(&typed, key, read_only)))
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
    if lent {
        // The keeper lets go of the terminal, then closes the stream.
        let keeper = lock(&to_keeper);
        let _ = keeper.shutdown(Shutdown::Write);
        wait_closed(&keeper);
    }
    // The keeper lets go of this client at once; the drawing thread's read ends.
    let _ = lock(&to_keeper).shutdown(Shutdown::Both);
    end
}

/// Lends the keeper the terminal if it takes one: sends `Lend` with the terminal's descriptor,
/// and waits for the answer (output frames until then are not drawn: the whole screen is drawn
/// anew after it). `buf` holds what was read of the stream and keeps what follows the answer.
/// Whether the keeper took it; `Err` if the attach ended meanwhile.
fn lend(keeper: &UnixStream, buf: &mut Vec<u8>, key: DetachKey) -> Result<bool, End> {
    let broken = |e: String| End::Closed(format!("the keeper's stream broke: {e}"));
    keeper
        .set_read_timeout(Some(KEEPER_ANSWERS_WITHIN))
        .map_err(|e| broken(e.to_string()))?;
    // What follows is left for the drawing thread, which draws it if nothing is lent.
    let takes = match next_frame(keeper, buf)? {
        Frame::Event(AttachEvent::Attached { takes_terminal, .. }) => takes_terminal,
        Frame::Event(exit @ AttachEvent::Exit { .. }) => return Err(End::Exited(Some(exit))),
        frame => {
            return Err(End::Closed(format!(
                "the keeper began with {frame:?}, not the attached event"
            )));
        }
    };
    let lent = takes && raw_terminal::is_one_terminal() && {
        let mut wire = Vec::new();
        let detach_key = key.0;
        Frame::Control(AttachControl::Lend { detach_key }).encode(&mut wire);
        send_with_terminal(keeper, &wire).map_err(|e| broken(e.to_string()))?;
        loop {
            match next_frame(keeper, buf)? {
                Frame::Output(_) => {}
                Frame::Event(AttachEvent::Lent { taken }) => break taken,
                Frame::Event(exit @ AttachEvent::Exit { .. }) => {
                    return Err(End::Exited(Some(exit)));
                }
                frame => {
                    return Err(End::Closed(format!(
                        "the keeper answered a lend with {frame:?}"
                    )));
                }
            }
        }
    };
    keeper
        .set_read_timeout(None)
        .map_err(|e| broken(e.to_string()))?;
    Ok(lent)
}

/// The next frame on the stream, taken out of `buf` (what was read and not taken yet).
fn next_frame(mut keeper: &UnixStream, buf: &mut Vec<u8>) -> Result<Frame, End> {
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match Frame::decode(buf) {
            Ok(Some((frame, used))) => {
                buf.drain(..used);
                return Ok(frame);
            }
            Ok(None) => {}
            Err(e) => return Err(End::Closed(format!("the keeper sent {e}"))),
        }
        match keeper.read(&mut chunk) {
            Ok(0) => return Err(End::KeeperGone("the agent's keeper went away".into())),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(End::Closed(format!(
                    "the keeper did not answer in time: {e}"
                )));
            }
        }
    }
}

/// Writes `wire` to the keeper with the terminal's descriptor (stdout's) attached.
fn send_with_terminal(keeper: &UnixStream, wire: &[u8]) -> std::io::Result<()> {
    let iov = [std::io::IoSlice::new(wire)];
    let fds = [std::io::stdout().as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let sent = sendmsg::<()>(
        keeper.as_raw_fd(),
        &iov,
        &cmsg,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    // The descriptor went with the first byte; the rest is plain.
    let mut keeper = keeper;
    keeper.write_all(&wire[sent..])
}

/// Waits (a little, at most) until the keeper closes the stream.
fn wait_closed(mut keeper: &UnixStream) {
    let _ = keeper.set_read_timeout(Some(KEEPER_ANSWERS_WITHIN));
    let mut chunk = [0u8; 4096];
    while let Ok(1..) = keeper.read(&mut chunk) {}
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
                Frame::Event(AttachEvent::Detached) => return End::Detached,
                Frame::Event(AttachEvent::Attached { .. } | AttachEvent::Lent { .. }) => {}
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
