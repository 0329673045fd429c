//! A terminal agent's terminal as its keeper holds it: the master side of the pseudo-terminal
//! (input, resize) and the screen every byte of output went through. Answers the control
//! socket's `screen`, `input` and `resize`, and keeps attached clients drawn: the thread that
//! fed the screen a change draws the clients it can at once ([`Viewer::draw_now`]: a key's
//! echo reaches the client without waking another thread), and wakes the drawing threads of
//! the others ([`Terminal::wait_change`]). What a client is on the wire is `attach`'s
//! (`attach::Canvas`); the terminal sees it as a [`Viewer`].
//!
//! Lock order: `clients`, then a client's own state, then `screen`, then `master`; a resize
//! needs neither the writer's lock nor a wait (it goes through its own handle), so a program
//! that stops reading its input never holds up its output or a resize.

use std::fs::File;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use berth_core::terminal::{Size, check_input};

use super::control::{Refusal, TerminalAnswer};
use super::pty;
use super::screen::{Screen, Sight};

/// How long typed input may wait for the program to take it.
const INPUT_WAIT: Duration = Duration::from_secs(5);
/// Output that comes after this long without any is not part of a burst: it is drawn at once.
const QUIET: Duration = Duration::from_millis(2);

/// An attached client, as the terminal that draws it sees it.
pub trait Viewer: std::fmt::Debug + Send + Sync {
    /// From the thread that just fed the screen a change (`quiet`: after a quiet moment):
    /// draws it now if that needs no wait; whether the client was drawn (if not, its drawing
    /// thread is woken).
    fn draw_now(&self, terminal: &Terminal, quiet: bool) -> bool;
    /// The client left.
    fn left(&self) -> bool;
    /// Whether the client has yet to be drawn generation `generation` of the screen, or sent
    /// the rest of what it was drawn.
    fn behind(&self, generation: u64) -> bool;
}

#[derive(Debug)]
pub struct Terminal {
    /// One writer at a time, so inputs never interleave.
    master: Mutex<File>,
    /// The master side again, for resizing and for the terminal's answers to the program.
    sizer: File,
    screen: Mutex<Shown>,
    /// Signalled when a client's drawing thread has something to do.
    changed: Condvar,
    /// The attached clients.
    clients: Mutex<Vec<Arc<dyn Viewer>>>,
}

/// The screen, and how far it has come.
#[derive(Debug)]
struct Shown {
    screen: Screen,
    /// Counts changes, so a client can tell whether it has drawn the latest.
    generation: u64,
    /// When the program last wrote.
    written: Option<Instant>,
    /// The program's output ended: nothing will change any more.
    ended: bool,
}

/// What a client was drawn.
pub struct Drawing {
    /// What turns what it showed into the screen.
    pub bytes: Vec<u8>,
    /// The screen's size.
    pub size: (u16, u16),
    /// Which change of the screen it shows now.
    pub generation: u64,
    /// The output ended: this is the last drawing.
    pub ended: bool,
}

fn refused(reason: Refusal, message: impl Into<String>) -> TerminalAnswer {
    TerminalAnswer::Refused {
        reason,
        message: message.into(),
    }
}

impl Terminal {
    /// `master` is a handle on the master side used for input and resizing (the output is
    /// read through another).
    pub fn new(master: File, size: Size, scrollback: usize) -> std::io::Result<Terminal> {
        Ok(Terminal {
            sizer: master.try_clone()?,
            master: Mutex::new(master),
            screen: Mutex::new(Shown {
                screen: Screen::new(size, scrollback),
                generation: 0,
                written: None,
                ended: false,
            }),
            changed: Condvar::new(),
            clients: Mutex::new(Vec::new()),
        })
    }

    fn shown(&self) -> MutexGuard<'_, Shown> {
        self.screen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn clients(&self) -> MutexGuard<'_, Vec<Arc<dyn Viewer>>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes what the program wrote, and draws the clients that can be drawn at once; wakes
    /// the drawing threads of the others.
    pub fn feed(&self, bytes: &[u8]) {
        let (quiet, replies) = {
            let mut shown = self.shown();
            shown.screen.feed(bytes);
            shown.generation += 1;
            let now = Instant::now();
            let quiet = shown.written.is_none_or(|w| now.duration_since(w) >= QUIET);
            shown.written = Some(now);
            (quiet, shown.screen.take_replies())
        };
        if !replies.is_empty() {
            // Without waiting: a program that does not read its input is not waited for (what
            // does not fit is dropped, as its queries are). Not under the writer's lock either,
            // which typed input may hold for a while: an answer goes between two of its writes,
            // as a terminal's answers go between keys.
            let _ = pty::write(&self.sizer, &replies, Duration::ZERO);
        }
        // Every client is offered the change, whatever the others did.
        let mut waiting = false;
        for viewer in self.clients().iter() {
            if !viewer.draw_now(self, quiet) {
                waiting = true;
            }
        }
        // Once the lock is free, so a woken client takes it at once. The change was made
        // under the lock, so a drawing thread that had not begun to wait yet sees it.
        if waiting {
            self.changed.notify_all();
        }
    }

    /// An attached client, to be drawn from now on.
    pub fn add_client(&self, viewer: Arc<dyn Viewer>) {
        self.clients().push(viewer);
    }

    pub fn remove_client(&self, viewer: &Arc<dyn Viewer>) {
        self.clients().retain(|c| !Arc::ptr_eq(c, viewer));
    }

    /// The program's output has ended; attached clients are told once they drew the last.
    pub fn end(&self) {
        self.shown().ended = true;
        self.changed.notify_all();
    }

    /// Wakes every client waiting in [`Terminal::wait_change`], so one that left sees it.
    pub fn wake(&self) {
        let _guard = self.shown();
        self.changed.notify_all();
    }

    /// For an attached client's drawing thread: waits until the client has something to be
    /// drawn (a change it was not drawn, output it was not sent in full, the end of the
    /// output); `false` once the client left.
    pub fn wait_change(&self, viewer: &dyn Viewer) -> bool {
        let mut shown = self.shown();
        loop {
            if viewer.left() {
                return false;
            }
            if viewer.behind(shown.generation) || shown.ended {
                return true;
            }
            shown = self.changed.wait(shown).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Draws a client's terminal that shows `sight` (see [`Screen::draw`]) — unless the output
    /// ended and `not_the_end` is set.
    pub fn draw(&self, sight: &mut Option<Sight>, not_the_end: bool) -> Option<Drawing> {
        let shown = self.shown();
        if shown.ended && not_the_end {
            return None;
        }
        Some(Drawing {
            bytes: shown.screen.draw(sight),
            size: shown.screen.size(),
            generation: shown.generation,
            ended: shown.ended,
        })
    }

    /// `screen`: the screen with the newest `scrollback` lines of scrollback (readable while
    /// the keeper lives, also after the program ended).
    pub fn view(&self, scrollback: usize) -> TerminalAnswer {
        TerminalAnswer::Screen(self.shown().screen.view(scrollback))
    }

    /// `input`: types `bytes`, unless they are not valid or the program has `exited`.
    pub fn type_in(&self, bytes: &[u8], exited: bool) -> TerminalAnswer {
        if let Err(e) = check_input(bytes) {
            return refused(Refusal::Invalid, e.to_string());
        }
        if exited {
            return refused(Refusal::Exited, "the program has exited; nothing was typed");
        }
        let master = self.master.lock().unwrap_or_else(|p| p.into_inner());
        match pty::write(&master, bytes, INPUT_WAIT) {
            Ok(()) => TerminalAnswer::Typed { bytes: bytes.len() },
            Err(e) => refused(Refusal::Stuck, e.to_string()),
        }
    }

    /// `resize`: a new size for the terminal and the screen; the program gets SIGWINCH.
    pub fn resize(&self, rows: u32, cols: u32) -> TerminalAnswer {
        let size = match Size::new(rows, cols) {
            Ok(s) => s,
            Err(e) => return refused(Refusal::Invalid, e.to_string()),
        };
        // The screen takes the new size before the program can draw for it.
        let mut shown = self.shown();
        if let Err(e) = pty::resize(&self.sizer, size) {
            return refused(Refusal::Exited, format!("cannot resize the terminal: {e}"));
        }
        shown.screen.resize(size);
        shown.generation += 1;
        self.changed.notify_all();
        TerminalAnswer::Resized {
            rows: size.rows,
            cols: size.cols,
        }
    }
}
