//! `attach` on the control socket: a client that watches the terminal and, unless it is
//! read-only, types into it and sizes it. After the JSON answer line the connection carries
//! [`berth_proto::Frame`]s both ways. Output that follows a quiet moment (a key's echo) is
//! drawn at once; during a burst of output a client is drawn at most 100 times a second.
//!
//! What a client was drawn is its [`Canvas`]: it is sent what turns what its terminal shows
//! into the screen as it is now, so a slow client skips changes instead of falling behind,
//! and never holds up the program. The thread that reads the program's output draws a client
//! right after feeding the screen when it can do so without waiting (the change follows a
//! quiet moment or a frame has passed, and the connection takes the bytes at once); otherwise
//! the client's own drawing thread does, a frame after the last drawing. A second thread per
//! client types its keys and takes its window sizes. Either ending ends both. When the
//! program's output ends, the client gets the last drawing and the exit status, and the
//! connection closes.
//!
//! A client may lend the keeper its terminal (`AttachControl::Lend`, `lent.rs`): the drawing
//! then goes to that terminal instead of into output frames, and its keys are read there by a
//! thread of the keeper's, which ends the attach at the detach key (`AttachEvent::Detached`).
//! Everything written on the connection or the terminal is written under the client's lock,
//! so frames never interleave and nothing is drawn on a terminal once it is let go of; the
//! terminal is let go of before the connection closes.

use std::io::{IoSliceMut, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use berth_core::terminal::DetachKey;
use berth_proto::{AttachControl, AttachEvent, Frame};
use nix::errno::Errno;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

use super::lent::{Keys, LentTerminal};
use super::screen::Sight;
use super::spec::ExitInfo;
use super::terminal::{Terminal, Viewer};

/// A client that takes no output for this long is let go of.
const WRITE_WAIT: Duration = Duration::from_secs(30);
/// The shortest time between two drawings of one client during a burst.
const FRAME: Duration = Duration::from_millis(1000 / FRAMES_PER_SECOND);
const FRAMES_PER_SECOND: u64 = 100;
/// `Canvas::drawn` before the first drawing.
const NOTHING: u64 = u64::MAX;

/// What one attached client may do.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub read_only: bool,
}

/// What one attached client has been drawn, and its connection to draw it on.
#[derive(Debug)]
pub struct Canvas {
    conn: UnixStream,
    /// The client left (its connection ended, or it sent what it may not).
    left: AtomicBool,
    /// The generation of the screen it was last drawn (`NOTHING` yet).
    drawn: AtomicU64,
    /// Part of what it was sent is still to be written.
    unsent: AtomicBool,
    state: Mutex<Drawn>,
    /// The thread reading the keys of the terminal the client lent, if it lent one.
    keys: Mutex<Option<Keys>>,
}

#[derive(Debug, Default)]
struct Drawn {
    /// What its terminal shows (nothing yet: `None`).
    sight: Option<Sight>,
    /// It was sent the `Attached` event.
    greeted: bool,
    /// When.
    at: Option<Instant>,
    /// What the connection (or the lent terminal) did not take at once.
    unsent: Vec<u8>,
    /// The terminal the client lent, which it is drawn on instead of in output frames.
    lent: Option<LentTerminal>,
}

impl Canvas {
    fn new(conn: UnixStream) -> Canvas {
        Canvas {
            conn,
            left: AtomicBool::new(false),
            drawn: AtomicU64::new(NOTHING),
            unsent: AtomicBool::new(false),
            state: Mutex::new(Drawn::default()),
            keys: Mutex::new(None),
        }
    }

    fn state(&self) -> MutexGuard<'_, Drawn> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes what is left to write, waiting for it; whether it went.
    fn flush(&self, state: &mut Drawn) -> bool {
        if state.unsent.is_empty() {
            return true;
        }
        let mut conn = &self.conn;
        let went = match &state.lent {
            Some(tty) => tty.write_all(&state.unsent, WRITE_WAIT).is_ok(),
            None => conn.write_all(&state.unsent).is_ok(),
        };
        state.unsent.clear();
        self.unsent.store(false, Ordering::SeqCst);
        went
    }

    /// From the client's drawing thread: sends what is left to send and what turns the last
    /// the client's terminal into the screen as it is now (the first time, the `Attached` event and the
    /// whole screen; at the end, the exit status). Whether to go on drawing.
    fn draw(
        &self,
        state: &mut Drawn,
        terminal: &Terminal,
        client: Client,
        exit: &impl Fn() -> Option<ExitInfo>,
    ) -> bool {
        if !self.flush(state) {
            return false;
        }
        let Some(drawing) = terminal.draw(&mut state.sight, false) else {
            return false;
        };
        let mut wire = Vec::new();
        if !state.greeted {
            let (rows, cols) = drawing.size;
            let attached = AttachEvent::Attached {
                rows,
                cols,
                read_only: client.read_only,
                takes_terminal: true,
            };
            Frame::Event(attached).encode(&mut wire);
            state.greeted = true;
        }
        if !drawing.bytes.is_empty() {
            match &state.lent {
                Some(tty) => {
                    if tty.write_all(&drawing.bytes, WRITE_WAIT).is_err() {
                        return false;
                    }
                }
                None => Frame::Output(drawing.bytes).encode(&mut wire),
            }
        }
        if drawing.ended {
            let (code, signal) = exit().map_or((None, None), |e| (e.code, e.signal));
            Frame::Event(AttachEvent::Exit { code, signal }).encode(&mut wire);
        }
        let mut conn = &self.conn;
        if conn.write_all(&wire).is_err() {
            return false;
        }
        state.at = Some(Instant::now());
        self.drawn.store(drawing.generation, Ordering::SeqCst);
        !drawing.ended
    }

    /// `AttachControl::Lend`: takes the terminal that came with it (`fd`) if it is one, and
    /// says whether it did; either way the whole screen is drawn anew after the answer.
    /// `false` if the client cannot be answered, or lends a second terminal.
    fn lend(
        self: &Arc<Self>,
        terminal: &Arc<Terminal>,
        fd: Option<OwnedFd>,
        key: DetachKey,
        client: Client,
    ) -> bool {
        let mut state = self.state();
        // What is left of the output frames goes first, so the stream stays whole.
        if state.lent.is_some() || !self.flush(&mut state) {
            return false;
        }
        let taken = fd.and_then(|fd| LentTerminal::take(fd).ok());
        let keys = taken.as_ref().and_then(|tty| {
            let (canvas, terminal) = (self.clone(), terminal.clone());
            tty.keys(move |read| canvas.keys_typed(&terminal, read, key, client))
                .ok()
        });
        let taken = taken.filter(|_| keys.is_some());
        let mut wire = Vec::new();
        Frame::Event(AttachEvent::Lent {
            taken: taken.is_some(),
        })
        .encode(&mut wire);
        let mut conn = &self.conn;
        if conn.write_all(&wire).is_err() {
            return false;
        }
        state.lent = taken;
        // Drawn anew at once, not a frame after the first drawing.
        state.sight = None;
        state.at = None;
        *self.keys.lock().unwrap_or_else(|p| p.into_inner()) = keys;
        self.drawn.store(NOTHING, Ordering::SeqCst);
        drop(state);
        terminal.wake();
        true
    }

    /// From the thread reading the lent terminal's keys: types them (up to the detach key,
    /// unless the client only watches); at the detach key or when the terminal closed, lets
    /// go of it and tells the client. Whether to go on reading.
    fn keys_typed(
        &self,
        terminal: &Terminal,
        read: Option<&[u8]>,
        key: DetachKey,
        client: Client,
    ) -> bool {
        let (typed, detach) = match read {
            Some(bytes) => match key.find(bytes) {
                Some(at) => (&bytes[..at], true),
                None => (bytes, false),
            },
            None => (&[][..], true),
        };
        if !client.read_only && !typed.is_empty() {
            // As for keys in frames: those the program did not take in time are dropped.
            terminal.type_in(typed, false);
        }
        if !detach {
            return true;
        }
        let mut state = self.state();
        state.lent = None;
        state.unsent.clear();
        let mut wire = Vec::new();
        Frame::Event(AttachEvent::Detached).encode(&mut wire);
        let mut conn = &self.conn;
        let _ = conn.write_all(&wire);
        self.left.store(true, Ordering::SeqCst);
        drop(state);
        terminal.wake();
        false
    }

    /// Lets go of the terminal the client lent, if it did: once this returns, nothing is read
    /// from it or drawn on it any more.
    fn release(&self) {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(keys) = keys {
            keys.stop();
        }
        self.state().lent = None;
    }
}

impl Viewer for Canvas {
    fn left(&self) -> bool {
        self.left.load(Ordering::SeqCst)
    }

    /// Whether the client has yet to be drawn generation `generation` of the screen, or sent
    /// the rest of what it was drawn.
    fn behind(&self, generation: u64) -> bool {
        // `unsent` is set before `drawn` moves on, so one who sees the new `drawn` sees it.
        self.unsent.load(Ordering::SeqCst) || self.drawn.load(Ordering::SeqCst) != generation
    }

    /// From the thread that just fed the screen a change (`quiet`: after a quiet moment):
    /// draws the change now if that needs no wait — the client was drawn before, is not busy
    /// being drawn, took all it was sent, and the change is not part of a burst that was drawn
    /// less than a frame ago. Whether the client is drawn; if not, its drawing thread must be
    /// woken.
    fn draw_now(&self, terminal: &Terminal, quiet: bool) -> bool {
        let Ok(mut state) = self.state.try_lock() else {
            return false;
        };
        if state.sight.is_none()
            || !at_once(quiet, state.at.map(|at| at.elapsed()))
            || !state.unsent.is_empty()
        {
            return false;
        }
        // The end is told by the drawing thread, with the exit status.
        let Some(drawing) = terminal.draw(&mut state.sight, true) else {
            return false;
        };
        let (wire, sent) = match &state.lent {
            Some(tty) => {
                let sent = tty.write_now(&drawing.bytes);
                (drawing.bytes, sent)
            }
            None => {
                let mut wire = Vec::new();
                if !drawing.bytes.is_empty() {
                    Frame::Output(drawing.bytes).encode(&mut wire);
                }
                let sent = send_now(&self.conn, &wire);
                (wire, sent)
            }
        };
        if sent < wire.len() {
            state.unsent.extend_from_slice(&wire[sent..]);
            self.unsent.store(true, Ordering::SeqCst);
        }
        state.at = Some(Instant::now());
        self.drawn.store(drawing.generation, Ordering::SeqCst);
        state.unsent.is_empty()
    }
}

/// Whether the thread that fed the screen a change draws it at once: when it came after a quiet
/// moment (a key's echo), or at least a frame after the last drawing (`since_drawn`) — not in
/// the middle of a burst, whose drawings the drawing thread spaces a frame apart.
fn at_once(quiet: bool, since_drawn: Option<Duration>) -> bool {
    quiet || since_drawn.is_none_or(|since| since >= FRAME)
}

/// Writes what the connection takes of `bytes` without waiting; how much that was.
fn send_now(conn: &UnixStream, bytes: &[u8]) -> usize {
    if bytes.is_empty() {
        return 0;
    }
    // SAFETY: send(2) on the connection's open socket, from a buffer of `bytes.len()` bytes
    // that outlives the call; MSG_NOSIGNAL: a client gone is an error, not a SIGPIPE.
    let n = unsafe {
        libc::send(
            conn.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    // An error (the connection is full, or gone): nothing was taken, the drawing thread
    // tries again and finds out which.
    usize::try_from(n).unwrap_or(0)
}

/// Serves one attached client on `conn` until it leaves or the program's output ended.
/// `unread` is what was read from `conn` after the request line; `exit` tells how the program
/// ended (it has, once the output ended).
pub fn serve(
    terminal: &Arc<Terminal>,
    conn: &UnixStream,
    unread: Vec<u8>,
    client: Client,
    exit: impl Fn() -> Option<ExitInfo>,
) {
    let (Ok(input), Ok(output)) = (conn.try_clone(), conn.try_clone()) else {
        return;
    };
    if conn.set_write_timeout(Some(WRITE_WAIT)).is_err() {
        return;
    }
    let canvas = Arc::new(Canvas::new(output));
    let reader = {
        let terminal = terminal.clone();
        let canvas = canvas.clone();
        std::thread::Builder::new()
            .name("attach-input".into())
            .spawn(move || {
                take_input(&terminal, &canvas, input, unread, client);
                canvas.left.store(true, Ordering::SeqCst);
                terminal.wake();
            })
    };
    let Ok(reader) = reader else {
        return;
    };
    let viewer: Arc<dyn Viewer> = canvas.clone();
    terminal.add_client(viewer.clone());
    draw(terminal, &canvas, client, &exit);
    terminal.remove_client(&viewer);
    // A lent terminal is let go of before the client learns that its stream ended.
    canvas.release();
    // The reader ends with the connection.
    let _ = conn.shutdown(Shutdown::Both);
    let _ = reader.join();
}

/// The client's drawing thread: draws what the reader of the output did not, until the client
/// left or the output ended.
fn draw(
    terminal: &Terminal,
    canvas: &Canvas,
    client: Client,
    exit: &impl Fn() -> Option<ExitInfo>,
) {
    while terminal.wait_change(canvas) {
        let mut state = canvas.state();
        // Part of a burst (or a slow client): let it gather for the rest of a frame, so a busy
        // program is drawn at most FRAMES_PER_SECOND times.
        if let Some(since) = state.at.map(|at| at.elapsed())
            && since < FRAME
        {
            drop(state);
            std::thread::sleep(FRAME - since);
            state = canvas.state();
        }
        if !canvas.draw(&mut state, terminal, client, exit) {
            return;
        }
    }
}

/// Reads what `conn` has, with the descriptors that came with it (a lent terminal).
fn receive(conn: &UnixStream, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> std::io::Result<usize> {
    let mut space = nix::cmsg_space!([RawFd; 4]);
    loop {
        let mut iov = [IoSliceMut::new(buf)];
        let msg = match recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => msg,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        for cmsg in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(received) = cmsg {
                // SAFETY: each descriptor was just received with SCM_RIGHTS: open, and ours
                // alone, so owning it is right.
                fds.extend(
                    received
                        .into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        return Ok(msg.bytes);
    }
}

/// Types the client's keys and takes its sizes (and a terminal it lends) until it leaves or
/// sends something that is not a frame a client may send.
fn take_input(
    terminal: &Arc<Terminal>,
    canvas: &Arc<Canvas>,
    conn: UnixStream,
    mut buf: Vec<u8>,
    client: Client,
) {
    let mut chunk = vec![0u8; 16 * 1024];
    // Descriptors that came with what was read, for the `Lend` frame they came with.
    let mut fds = Vec::new();
    loop {
        loop {
            match Frame::decode(&buf) {
                Ok(Some((frame, used))) => {
                    buf.drain(..used);
                    let carried_on = match frame {
                        Frame::Control(AttachControl::Lend { detach_key }) => {
                            let fd = fds.pop();
                            fds.clear();
                            canvas.lend(terminal, fd, DetachKey(detach_key), client)
                        }
                        frame => take(terminal, frame, client),
                    };
                    if !carried_on {
                        return;
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        match receive(&conn, &mut chunk, &mut fds) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Carries out one frame from the client; `false` for one a client may not send.
fn take(terminal: &Terminal, frame: Frame, client: Client) -> bool {
    match frame {
        // A read-only client's keys and sizes are not taken: the keeper enforces it itself,
        // as a stream handed over to a client (`berth attach`) is no longer the daemon's.
        Frame::Input(_) | Frame::Control(AttachControl::Resize { .. }) if client.read_only => true,
        Frame::Input(bytes) => {
            // Keys for a program that has ended, or that did not take them in time, are
            // dropped: the client sees on its screen what was typed.
            terminal.type_in(&bytes, false);
            true
        }
        Frame::Control(AttachControl::Resize { rows, cols }) => {
            terminal.resize(rows, cols);
            true
        }
        // `serve` takes a `Lend` before it gets here.
        Frame::Control(AttachControl::Lend { .. }) | Frame::Output(_) | Frame::Event(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::terminal::Size;
    use std::fs::File;
    use std::io::Read;

    fn terminal() -> Terminal {
        let nowhere = File::options().write(true).open("/dev/null").unwrap();
        Terminal::new(nowhere, Size::DEFAULT, 10).unwrap()
    }

    /// Which change of the screen it is at.
    fn generation(terminal: &Terminal) -> u64 {
        terminal.draw(&mut None, false).unwrap().generation
    }

    /// The next frame on `conn`, or `None` if none comes within a second.
    fn next_frame(conn: &mut UnixStream, buf: &mut Vec<u8>) -> Option<Frame> {
        conn.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        loop {
            if let Some((frame, used)) = Frame::decode(buf).unwrap() {
                buf.drain(..used);
                return Some(frame);
            }
            let mut chunk = [0u8; 4096];
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    #[test]
    fn a_change_is_drawn_at_once_after_a_quiet_moment_or_a_frame_not_inside_a_burst() {
        assert!(at_once(true, Some(Duration::ZERO)));
        assert!(at_once(true, None));
        assert!(at_once(false, None));
        assert!(at_once(false, Some(FRAME)));
        assert!(at_once(false, Some(FRAME * 3)));
        assert!(!at_once(false, Some(Duration::ZERO)));
        assert!(!at_once(false, Some(FRAME - Duration::from_micros(1))));
    }

    #[test]
    fn the_thread_that_fed_a_quiet_change_draws_it_without_the_drawing_thread() {
        let terminal = terminal();
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let canvas = Arc::new(Canvas::new(ours));
        let viewer: Arc<dyn Viewer> = canvas.clone();
        terminal.add_client(viewer.clone());
        let client = Client { read_only: false };
        let mut buf = Vec::new();

        // Not drawn yet: its drawing thread sends the first drawing, not the feeder.
        terminal.feed(b"a");
        assert!(canvas.behind(generation(&terminal)));
        theirs.set_nonblocking(true).unwrap();
        assert!(theirs.read(&mut [0u8; 16]).is_err(), "nothing sent yet");
        theirs.set_nonblocking(false).unwrap();
        assert!(canvas.draw(&mut canvas.state(), &terminal, client, &|| None));
        assert!(matches!(
            next_frame(&mut theirs, &mut buf),
            Some(Frame::Event(AttachEvent::Attached { .. }))
        ));
        assert!(matches!(
            next_frame(&mut theirs, &mut buf),
            Some(Frame::Output(_))
        ));

        // Drawn the whole screen at least a frame ago: the next change is drawn by `feed` itself.
        std::thread::sleep(FRAME);
        terminal.feed(b"b");
        assert!(!canvas.behind(generation(&terminal)));
        match next_frame(&mut theirs, &mut buf) {
            Some(Frame::Output(bytes)) => assert!(bytes.contains(&b'b'), "{bytes:?}"),
            other => panic!("expected the echo, got {other:?}"),
        }

        // Gone: no longer drawn.
        terminal.remove_client(&viewer);
        terminal.feed(b"c");
        assert!(canvas.behind(generation(&terminal)));
    }
    /// Sends `frame` with `fd` attached, as `berth attach` lends its terminal.
    fn send_with(conn: &UnixStream, frame: &Frame, fd: Option<&OwnedFd>) {
        use nix::sys::socket::{ControlMessage, sendmsg};
        use std::os::fd::AsFd;
        let mut wire = Vec::new();
        frame.encode(&mut wire);
        let iov = [std::io::IoSlice::new(&wire)];
        let fds: Vec<RawFd> = fd.iter().map(|fd| fd.as_fd().as_raw_fd()).collect();
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let cmsg = if fds.is_empty() {
            &cmsg[..0]
        } else {
            &cmsg[..]
        };
        let sent = sendmsg::<()>(conn.as_raw_fd(), &iov, cmsg, MsgFlags::empty(), None).unwrap();
        assert_eq!(sent, wire.len());
    }

    /// A client attached to a terminal served on a thread of its own.
    fn served(terminal: &Arc<Terminal>) -> (UnixStream, std::thread::JoinHandle<()>) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let terminal = terminal.clone();
        let server = std::thread::spawn(move || {
            serve(
                &terminal,
                &ours,
                Vec::new(),
                Client { read_only: false },
                || None,
            );
        });
        (theirs, server)
    }

    /// Frames until the answer to a lend; whether it was taken.
    fn lent(conn: &mut UnixStream, buf: &mut Vec<u8>) -> bool {
        loop {
            match next_frame(conn, buf) {
                Some(Frame::Event(AttachEvent::Lent { taken })) => return taken,
                Some(Frame::Output(_) | Frame::Event(AttachEvent::Attached { .. })) => {}
                other => panic!("expected the answer to the lend, got {other:?}"),
            }
        }
    }

    /// A terminal in raw mode, as `berth attach` leaves its own: (master, slave).
    fn raw_terminal() -> (File, OwnedFd) {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let pty = nix::pty::openpty(None, None).unwrap();
        let mut raw = tcgetattr(&pty.slave).unwrap();
        cfmakeraw(&mut raw);
        tcsetattr(&pty.slave, SetArg::TCSANOW, &raw).unwrap();
        (File::from(pty.master), pty.slave)
    }

    /// Reads `master` until what came holds `text`.
    fn shows(master: &mut File, text: &str) -> String {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains(text) {
            let n = master.read(&mut buf).unwrap();
            assert!(n > 0);
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    }

    #[test]
    fn a_lend_without_a_terminal_is_refused_and_the_screen_drawn_in_frames_again() {
        let terminal = Arc::new(terminal());
        terminal.feed(b"before");
        let (mut conn, server) = served(&terminal);
        let mut buf = Vec::new();
        assert!(matches!(
            next_frame(&mut conn, &mut buf),
            Some(Frame::Event(AttachEvent::Attached {
                takes_terminal: true,
                ..
            }))
        ));
        // No descriptor (a relayed stream), then a pipe: neither is a terminal.
        let (pipe, _w) = nix::unistd::pipe().unwrap();
        for fd in [None, Some(&pipe)] {
            send_with(
                &conn,
                &Frame::Control(AttachControl::Lend { detach_key: None }),
                fd,
            );
            assert!(!lent(&mut conn, &mut buf));
            // The whole screen again, in an output frame.
            match next_frame(&mut conn, &mut buf) {
                Some(Frame::Output(bytes)) => {
                    assert!(
                        String::from_utf8_lossy(&bytes).contains("before"),
                        "{bytes:?}"
                    );
                }
                other => panic!("expected the screen, got {other:?}"),
            }
        }
        drop(conn);
        server.join().unwrap();
    }

    #[test]
    fn a_lent_terminal_is_drawn_on_and_let_go_of_at_the_detach_key() {
        let terminal = Arc::new(terminal());
        terminal.feed(b"before");
        let (mut conn, server) = served(&terminal);
        let mut buf = Vec::new();
        let (mut master, slave) = raw_terminal();
        let lend = Frame::Control(AttachControl::Lend {
            detach_key: Some(0x1c),
        });
        send_with(&conn, &lend, Some(&slave));
        assert!(lent(&mut conn, &mut buf));
        // The whole screen, then what changes, on the terminal itself.
        shows(&mut master, "before");
        terminal.feed(b" after");
        shows(&mut master, "after");
        master.write_all(b"\x1c").unwrap();
        assert_eq!(
            next_frame(&mut conn, &mut buf),
            Some(Frame::Event(AttachEvent::Detached))
        );
        assert_eq!(next_frame(&mut conn, &mut buf), None, "the stream ends");
        server.join().unwrap();
        // Let go of: a key typed now is for whoever reads the terminal next.
        master.write_all(b"z").unwrap();
        let mut mine = File::from(slave);
        let mut got = [0u8; 8];
        let n = mine.read(&mut got).unwrap();
        assert_eq!(&got[..n], b"z");
    }

    #[test]
    fn a_client_that_lends_twice_or_leaves_is_let_go_of_with_its_terminal() {
        let terminal = Arc::new(terminal());
        let (mut conn, server) = served(&terminal);
        let mut buf = Vec::new();
        let (mut master, slave) = raw_terminal();
        let lend = Frame::Control(AttachControl::Lend { detach_key: None });
        send_with(&conn, &lend, Some(&slave));
        assert!(lent(&mut conn, &mut buf));
        send_with(&conn, &lend, Some(&slave));
        assert_eq!(next_frame(&mut conn, &mut buf), None, "let go of");
        server.join().unwrap();
        master.write_all(b"y").unwrap();
        let mut mine = File::from(slave.try_clone().unwrap());
        let mut got = [0u8; 8];
        let n = mine.read(&mut got).unwrap();
        assert_eq!(&got[..n], b"y");

        // One that shuts its side: the terminal is let go of before the stream closes.
        let (mut conn, server) = served(&terminal);
        send_with(&conn, &lend, Some(&slave));
        assert!(lent(&mut conn, &mut buf));
        conn.shutdown(Shutdown::Write).unwrap();
        while next_frame(&mut conn, &mut buf).is_some() {}
        master.write_all(b"w").unwrap();
        let n = mine.read(&mut got).unwrap();
        assert_eq!(&got[..n], b"w");
        server.join().unwrap();
    }
}
