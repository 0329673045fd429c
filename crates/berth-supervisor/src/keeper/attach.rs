//! `attach` on the control socket: a client that watches the terminal and, unless it is
//! read-only, types into it and sizes it. After the JSON answer line the connection carries
//! [`berth_proto::Frame`]s both ways. A single change (a key's echo) is drawn at once; during
//! a burst of output a client is sent at most 100 pictures a second.
//!
//! Two threads per client: this one draws (it waits for the screen to change, then sends what
//! turns the client's last picture into the new one, so a slow client skips pictures instead
//! of falling behind, and never holds up the program), and a reader that types the client's
//! keys and takes its window sizes. Either ending ends both. When the program's output ends,
//! the client gets the last picture and the exit status, and the connection closes.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth_proto::{AttachControl, AttachEvent, Frame};

use super::screen::Picture;
use super::spec::ExitInfo;
use super::terminal::Terminal;

/// A client that takes no output for this long is let go of.
const WRITE_WAIT: Duration = Duration::from_secs(30);
/// The shortest time between two pictures sent to one client.
const FRAME: Duration = Duration::from_millis(1000 / FRAMES_PER_SECOND);
const FRAMES_PER_SECOND: u64 = 100;

/// What one attached client may do.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub read_only: bool,
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
    let gone = Arc::new(AtomicBool::new(false));
    let reader = conn.try_clone().map(|input| {
        let terminal = terminal.clone();
        let gone = gone.clone();
        std::thread::spawn(move || {
            take_input(&terminal, input, unread, client);
            gone.store(true, Ordering::SeqCst);
            terminal.wake();
        })
    });
    if reader.is_ok() && conn.set_write_timeout(Some(WRITE_WAIT)).is_ok() {
        draw(terminal, conn, client, &gone, exit);
    }
    // The reader ends with the connection.
    let _ = conn.shutdown(Shutdown::Both);
    if let Ok(reader) = reader {
        let _ = reader.join();
    }
}

fn send(mut conn: &UnixStream, frame: &Frame) -> bool {
    let mut wire = Vec::new();
    frame.encode(&mut wire);
    conn.write_all(&wire).is_ok()
}

/// Sends pictures until the client is gone or the output ended, then the exit status.
fn draw(
    terminal: &Terminal,
    conn: &UnixStream,
    client: Client,
    gone: &AtomicBool,
    exit: impl Fn() -> Option<ExitInfo>,
) {
    let mut drawn = None;
    let mut before: Option<Picture> = None;
    let mut last: Option<Instant> = None;
    loop {
        let Some(ahead) = terminal.wait_change(drawn, gone) else {
            return;
        };
        // Several changes since the last picture, and that one was just sent: a burst of
        // output. Let it gather for the rest of a frame, so a busy program is drawn at most
        // FRAMES_PER_SECOND times; a single change (a key's echo) is drawn at once.
        if let Some(since) = last.map(|l| l.elapsed())
            && ahead > 1
            && since < FRAME
        {
            std::thread::sleep(FRAME - since);
        }
        let (picture, ended) = terminal.picture(&mut drawn);
        last = Some(Instant::now());
        if before.is_none() {
            let (rows, cols) = picture.size();
            let attached = AttachEvent::Attached {
                rows,
                cols,
                read_only: client.read_only,
            };
            if !send(conn, &Frame::Event(attached)) {
                return;
            }
        }
        let bytes = picture.draw(before.as_ref());
        if !bytes.is_empty() && !send(conn, &Frame::Output(bytes)) {
            return;
        }
        before = Some(picture);
        if ended {
            let (code, signal) = exit().map_or((None, None), |e| (e.code, e.signal));
            send(conn, &Frame::Event(AttachEvent::Exit { code, signal }));
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
        // A read-only client's keys and sizes are not taken (the daemon does not pass them on).
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
