//! A terminal agent's terminal as its keeper holds it: the master side of the pseudo-terminal
//! (input, resize) and the screen every byte of output went through. Answers the control
//! socket's `screen`, `input` and `resize`.

use std::fs::File;
use std::sync::Mutex;
use std::time::Duration;

use berth_core::terminal::{Size, check_input};

use super::control::{Refusal, TerminalAnswer};
use super::pty;
use super::screen::Screen;

/// How long typed input may wait for the program to take it.
const INPUT_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Terminal {
    /// One writer at a time, so inputs never interleave.
    master: Mutex<File>,
    screen: Mutex<Screen>,
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
    pub fn new(master: File, size: Size, scrollback: usize) -> Terminal {
        Terminal {
            master: Mutex::new(master),
            screen: Mutex::new(Screen::new(size, scrollback)),
        }
    }

    fn screen(&self) -> std::sync::MutexGuard<'_, Screen> {
        self.screen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes what the program wrote.
    pub fn feed(&self, bytes: &[u8]) {
        self.screen().feed(bytes);
    }

    /// `screen`: the screen with the newest `scrollback` lines of scrollback (readable while
    /// the keeper lives, also after the program ended).
    pub fn view(&self, scrollback: usize) -> TerminalAnswer {
        TerminalAnswer::Screen(self.screen().view(scrollback))
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
        let mut screen = self.screen();
        let master = self.master.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = pty::resize(&master, size) {
            return refused(Refusal::Exited, format!("cannot resize the terminal: {e}"));
        }
        screen.resize(size);
        TerminalAnswer::Resized {
            rows: size.rows,
            cols: size.cols,
        }
    }
}
