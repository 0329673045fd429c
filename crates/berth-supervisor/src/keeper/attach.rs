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

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use berth_proto::{AttachControl, AttachEvent, Frame};

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
}

#[derive(Debug, Default)]
struct Drawn {
    /// What its terminal shows (nothing yet: `None`).
    sight: Option<Sight>,
    /// When.
    at: Option<Instant>,
    /// What the connection did not take at once.
    unsent: Vec<u8>,
}

impl Canvas {
    fn new(conn: UnixStream) -> Canvas {
        Canvas {
            conn,
            left: AtomicBool::new(false),
            drawn: AtomicU64::new(NOTHING),
            unsent: AtomicBool::new(false),
            state: Mutex::new(Drawn::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, Drawn> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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
        let mut conn = &self.conn;
        if !state.unsent.is_empty() {
            if conn.write_all(&state.unsent).is_err() {
                return false;
            }
            state.unsent.clear();
            self.unsent.store(false, Ordering::SeqCst);
        }
        let first = state.sight.is_none();
        let Some(drawing) = terminal.draw(&mut state.sight, false) else {
            return false;
        };
        let mut wire = Vec::new();
        if first {
            let (rows, cols) = drawing.size;
            let attached = AttachEvent::Attached {
                rows,
                cols,
                read_only: client.read_only,
            };
            Frame::Event(attached).encode(&mut wire);
        }
        if !drawing.bytes.is_empty() {
            Frame::Output(drawing.bytes).encode(&mut wire);
        }
        if drawing.ended {
            let (code, signal) = exit().map_or((None, None), |e| (e.code, e.signal));
            Frame::Event(AttachEvent::Exit { code, signal }).encode(&mut wire);
        }
        if conn.write_all(&wire).is_err() {
            return false;
        }
        state.at = Some(Instant::now());
        self.drawn.store(drawing.generation, Ordering::SeqCst);
        !drawing.ended
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
        let mut wire = Vec::new();
        if !drawing.bytes.is_empty() {
            Frame::Output(drawing.bytes).encode(&mut wire);
        }
        let sent = send_now(&self.conn, &wire);
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
        std::thread::spawn(move || {
            take_input(&terminal, input, unread, client);
            canvas.left.store(true, Ordering::SeqCst);
            terminal.wake();
        })
    };
    let viewer: Arc<dyn Viewer> = canvas.clone();
    terminal.add_client(viewer.clone());
    draw(terminal, &canvas, client, &exit);
    terminal.remove_client(&viewer);
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

/// Types the client's keys and takes its sizes until it leaves or sends something that is not
/// a frame a client may send.
fn take_input(terminal: &Terminal, mut conn: UnixStream, mut buf: Vec<u8>, client: Client) {
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        loop {
            match Frame::decode(&buf) {
                Ok(Some((frame, used))) => {
                    buf.drain(..used);
                    if !take(terminal, frame, client) {
                        return;
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        match conn.read(&mut chunk) {
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
        Frame::Input(_) | Frame::Control(_) if client.read_only => true,
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
        Frame::Output(_) | Frame::Event(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::terminal::Size;
    use std::fs::File;

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
}
