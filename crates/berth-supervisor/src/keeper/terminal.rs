//! A terminal agent's terminal as its keeper holds it: the master side of the pseudo-terminal
//! (input, resize) and the screen every byte of output went through. Answers the control
//! socket's `screen`, `input` and `resize`, and tells attached clients when the screen changed
//! ([`Terminal::wait_change`]).
//!
//! Lock order: `screen`, then `master`; a resize needs neither the writer's lock nor a wait
//! (it goes through its own handle), so a program that stops reading its input never holds up
//! its output or a resize.

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use berth_core::terminal::{Size, check_input};

use super::control::{Refusal, TerminalAnswer};
use super::pty;
use super::screen::{Picture, Screen};

/// How long typed input may wait for the program to take it.
const INPUT_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Terminal {
    /// One writer at a time, so inputs never interleave.
    master: Mutex<File>,
    /// The master side again, for resizing.
    sizer: File,
    screen: Mutex<Shown>,
    /// Signalled whenever `screen` changed.
    changed: Condvar,
}

/// The screen, and how far it has come.
#[derive(Debug)]
struct Shown {
    screen: Screen,
    /// Counts changes, so a client can tell whether it has drawn the latest.
    generation: u64,
    /// The program's output ended: nothing will change any more.
    ended: bool,
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
                ended: false,
            }),
            changed: Condvar::new(),
        })
    }

    fn shown(&self) -> MutexGuard<'_, Shown> {
        self.screen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes what the program wrote.
    pub fn feed(&self, bytes: &[u8]) {
        {
            let mut shown = self.shown();
            shown.screen.feed(bytes);
            shown.generation += 1;
        }
        // Once the lock is free, so a woken client takes it at once.
        self.changed.notify_all();
    }

    /// The program's output has ended; attached clients are told once they drew the last.
    pub fn end(&self) {
        self.shown().ended = true;
        self.changed.notify_all();
    }

    /// Wakes every client waiting in [`Terminal::wait_change`], so one whose `gone` was set
    /// sees it.
    pub fn wake(&self) {
        let _guard = self.shown();
        self.changed.notify_all();
    }

    /// For an attached client that drew generation `drawn` (`None`: nothing yet): waits until
    /// the screen is newer or the output ended, and says how many changes it is ahead (`None`
    /// once `gone` is set).
    pub fn wait_change(&self, drawn: Option<u64>, gone: &AtomicBool) -> Option<u64> {
        let mut shown = self.shown();
        loop {
            if gone.load(Ordering::SeqCst) {
                return None;
            }
            if drawn != Some(shown.generation) || shown.ended {
                return Some(drawn.map_or(u64::MAX, |d| shown.generation.wrapping_sub(d)));
            }
            shown = self.changed.wait(shown).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The screen as it is now for an attached client, which then has drawn its generation;
    /// and whether it is final (the output ended).
    pub fn picture(&self, drawn: &mut Option<u64>) -> (Picture, bool) {
        let shown = self.shown();
        *drawn = Some(shown.generation);
        (shown.screen.picture(), shown.ended)
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
