//! berth's terminal emulator: what a terminal shows after a program's output, kept as cells,
//! and what to send a terminal so it shows the same.
//!
//! The bytes go through `vte`'s parser (the VT500 state machine: text, controls, escape and
//! control sequences, strings), whose actions ([`perform`]) change the state: the screens'
//! cells, the cursor, the scroll region and tab stops ([`grid`]), the input modes a client's
//! terminal must share ([`Modes`]), the title, the bells and the answers to the program's
//! queries (status, cursor position, device attributes). What it does is xterm's, as the
//! `vt100` crate does it, with which it is compared in the tests; where `vt100` is not xterm,
//! xterm is followed and the code says so.
//!
//! It exists for speed and size (ARCHITECTURE.md has the figures): text — nearly all of what
//! programs write — goes into a row's cells a run at a time: between sequences, runs of
//! printable ASCII skip the parser, which only sees the rest (other text, controls,
//! sequences); whether it is between sequences is known from its actions (`Terminal::parse`).
//! A cell takes 16 bytes, and a line scrolling off the top of the primary screen (with the
//! scroll region at the top) is handed to [`Scrolled`] as cells, whose text the keeper keeps
//! (`keeper/screen.rs`): the emulator keeps no history of its own, and lines scrolling off the
//! alternate screen are not history. A resize does not reflow.
//!
//! [`draw`] sends a client's terminal what turns what it shows ([`Shown`], a copy of the
//! screen as it was last drawn there) into the screen: rows that differ, the cursor, the pen
//! and the input modes. It never switches the client's terminal to its alternate screen: the
//! alternate screen is just other rows to draw.

mod cell;
mod draw;
mod grid;
mod perform;

#[cfg(test)]
use cell::Color;
pub use cell::{Attrs, Cell, write_text};
pub use draw::Shown;
pub use grid::Cursor;
use grid::Grid;
use perform::Performer;

/// Where lines that scroll off the top of the primary screen go.
pub trait Scrolled {
    /// `line` scrolled off.
    fn scrolled(&mut self, line: &[Cell]);
    /// The program asked for the scrollback to be erased (ED 3).
    fn clear(&mut self);
}

/// Lines scrolled off, dropped.
#[cfg(test)]
impl Scrolled for () {
    fn scrolled(&mut self, _: &[Cell]) {}
    fn clear(&mut self) {}
}

/// Which mouse events the program asked to be reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MouseMode {
    #[default]
    None,
    /// 9: presses.
    Press,
    /// 1000: presses and releases.
    PressRelease,
    /// 1002: and motion with a button down.
    ButtonMotion,
    /// 1003: and all motion.
    AnyMotion,
}

/// How mouse events are to be reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MouseEncoding {
    #[default]
    Default,
    /// 1005.
    Utf8,
    /// 1006.
    Sgr,
}

/// The modes that change what a terminal sends, and how its cursor looks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Modes {
    /// DECCKM.
    pub app_cursor: bool,
    /// DECKPAM.
    pub app_keypad: bool,
    pub bracketed_paste: bool,
    pub mouse: MouseMode,
    pub encoding: MouseEncoding,
    pub cursor_hidden: bool,
    /// DECSCUSR's number.
    pub cursor_style: u8,
}

/// Everything a parse changes.
#[derive(Debug)]
pub struct State {
    grid: Grid,
    modes: Modes,
    title: Option<String>,
    bells: u64,
    /// What the terminal answers the program's queries (status, cursor position, device
    /// attributes), to be typed back to it.
    replies: Vec<u8>,
}

/// How many bytes at the end of `bytes` are the first of a UTF-8 character whose others are
/// not there.
fn cut_char(bytes: &[u8]) -> usize {
    let tail = &bytes[bytes.len().saturating_sub(4)..];
    for (i, b) in tail.iter().enumerate().rev() {
        let needs = match b {
            0x00..=0x7f => return 0,
            0x80..=0xbf => continue,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            _ => 4,
        };
        let has = tail.len() - i;
        return if has < needs { has } else { 0 };
    }
    0
}

/// A terminal: a parser and the state it changes.
pub struct Terminal {
    parser: vte::Parser,
    /// The first bytes of a character cut in two by the end of what was fed, which the parser
    /// is given with the rest of it: the parser then never holds part of a character while
    /// text skips it. (`vte` 0.15 itself, given the rest of a character in one call with more
    /// text, can drop some of that text: `vt100` fed "\u{301}a\u{308}" cut after the first
    /// byte loses the "a".)
    cut: Vec<u8>,
    /// The parser is between sequences (see `Performer::ground`).
    ground: bool,
    state: State,
}

impl std::fmt::Debug for Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Terminal")
            .field("size", &self.size())
            .finish_non_exhaustive()
    }
}

impl Terminal {
    /// A blank terminal of `rows` × `cols` (each at least 1).
    pub fn new(rows: u16, cols: u16) -> Terminal {
        Terminal {
            parser: vte::Parser::new(),
            cut: Vec::new(),
            ground: true,
            state: State {
                grid: Grid::new(rows.max(1), cols.max(1)),
                modes: Modes::default(),
                title: None,
                bells: 0,
                replies: Vec::new(),
            },
        }
    }

    /// Takes what the program wrote; lines scrolling off the primary screen go to `sink`.
    pub fn feed(&mut self, bytes: &[u8], sink: &mut impl Scrolled) {
        let mut bytes = bytes;
        if let Some(&lead) = self.cut.first() {
            let needs = match lead {
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                _ => 4,
            };
            let more = (needs - self.cut.len()).min(bytes.len());
            self.cut.extend_from_slice(&bytes[..more]);
            bytes = &bytes[more..];
            if self.cut.len() < needs {
                return;
            }
            let cut = std::mem::take(&mut self.cut);
            self.parse(&cut, sink);
        }
        let whole = bytes.len() - cut_char(bytes);
        self.parse(&bytes[..whole], sink);
        self.cut.extend_from_slice(&bytes[whole..]);
    }

    /// Parses `bytes`, which end with no character cut in two. Between sequences, a run of
    /// printable ASCII goes into the cells at once; what lies between such runs goes to the
    /// parser up to the next run or escape; a control sequence up to its final byte, and
    /// then, or any other sequence from its start, a byte at a time until it has ended. The
    /// parser is given one escape at a time, at the start of what it is given, so the actions
    /// that end a sequence tell whether it is between sequences after it.
    fn parse(&mut self, bytes: &[u8], sink: &mut impl Scrolled) {
        let printable = |b: &u8| (0x20..0x7f).contains(b);
        let mut rest = bytes;
        while let Some(&first) = rest.first() {
            let end = if !self.ground {
                1
            } else if printable(&first) {
                let run = rest
                    .iter()
                    .position(|b| !printable(b))
                    .unwrap_or(rest.len());
                self.state.grid.print_ascii(&rest[..run], sink);
                rest = &rest[run..];
                continue;
            } else if first == 0x1b {
                self.ground = false;
                // A control sequence at once: up to its final byte (or the next escape).
                match rest.get(1) {
                    Some(b'[') => rest[2..]
                        .iter()
                        .position(|b| (0x40..=0x7e).contains(b) || *b == 0x1b)
                        .map_or(rest.len(), |at| 2 + at + usize::from(rest[2 + at] != 0x1b)),
                    _ => 1,
                }
            } else {
                1 + rest[1..]
                    .iter()
                    .position(|b| *b == 0x1b || printable(b))
                    .unwrap_or(rest.len() - 1)
            };
            let mut performer = Performer {
                state: &mut self.state,
                sink,
                ground: &mut self.ground,
            };
            self.parser.advance(&mut performer, &rest[..end]);
            rest = &rest[end..];
        }
    }

    /// A new size (each at least 1); see `Grid::resize`.
    pub fn resize(&mut self, rows: u16, cols: u16, sink: &mut impl Scrolled) {
        self.state.grid.resize(rows.max(1), cols.max(1), sink);
    }

    /// Rows, columns.
    pub fn size(&self) -> (u16, u16) {
        self.state.grid.size()
    }

    pub fn cursor(&self) -> Cursor {
        self.state.grid.cursor
    }

    /// The rows shown (the alternate screen's when it is on).
    pub fn lines(&self) -> &[Vec<Cell>] {
        self.state.grid.lines()
    }

    /// What text is written with now.
    pub fn pen(&self) -> Attrs {
        self.state.grid.pen
    }

    pub fn modes(&self) -> Modes {
        self.state.modes
    }

    #[cfg(test)]
    pub fn is_alternate(&self) -> bool {
        self.state.grid.is_alternate()
    }

    pub fn title(&self) -> Option<&str> {
        self.state.title.as_deref()
    }

    /// How often the bell rang.
    pub fn bells(&self) -> u64 {
        self.state.bells
    }

    /// The answers to the program's queries since the last call, for the program's input.
    pub fn take_replies(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.state.replies)
    }

    /// Whether the parser is between sequences, with no character cut in two: printable ASCII
    /// written now is text, not a sequence's parameters. Errs towards `false` (a sequence
    /// `vte` drops without dispatching leaves it so until the next one ends).
    pub fn between_sequences(&self) -> bool {
        self.ground && self.cut.is_empty()
    }

    /// Whether `n` printable ASCII characters written now land on narrow cells of the cursor's
    /// row, in order, ending before its last column, and do nothing else.
    pub fn prints_in_place(&self, n: u16) -> bool {
        self.state.grid.prints_in_place(n)
    }
}

#[cfg(test)]
pub mod tests;
