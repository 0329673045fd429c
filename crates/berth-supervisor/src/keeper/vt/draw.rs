//! Drawing a client's terminal: what to send it so it shows the emulator's screen, the whole
//! of it or what changed since it was last drawn. Everything is drawn at explicit positions,
//! so nothing depends on the client's own wrapping or scrolling; a row is drawn from its
//! first changed cell, and a blank end of it is erased (`EL`) rather than written.

use super::cell::{BOLD, Cell, Color, DIM, INVERSE, ITALIC, UNDERLINE};
use super::{Attrs, Cursor, Modes, MouseEncoding, MouseMode, Terminal};

/// What a client's terminal shows: a copy of the screen as it was drawn there.
#[derive(Clone, Debug)]
pub struct Shown {
    lines: Vec<Vec<Cell>>,
    cursor: Cursor,
    pen: Attrs,
    modes: Modes,
}

fn number(out: &mut Vec<u8>, n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn goto(out: &mut Vec<u8>, row: usize, col: usize) {
    out.extend_from_slice(b"\x1b[");
    number(out, row + 1);
    out.push(b';');
    number(out, col + 1);
    out.push(b'H');
}

fn color(out: &mut Vec<u8>, color: Color, base: usize) {
    match color {
        Color::Default => {}
        Color::Idx(i) if i < 8 => {
            out.push(b';');
            number(out, base + usize::from(i));
        }
        Color::Idx(i) if i < 16 => {
            out.push(b';');
            number(out, base + 60 + usize::from(i - 8));
        }
        Color::Idx(i) => {
            out.push(b';');
            number(out, base + 8);
            out.extend_from_slice(b";5;");
            number(out, usize::from(i));
        }
        Color::Rgb(r, g, b) => {
            out.push(b';');
            number(out, base + 8);
            out.extend_from_slice(b";2");
            for c in [r, g, b] {
                out.push(b';');
                number(out, usize::from(c));
            }
        }
    }
}

/// Sets the client's pen to `attrs` (from scratch: SGR 0 first).
fn pen(out: &mut Vec<u8>, attrs: Attrs) {
    out.extend_from_slice(b"\x1b[0");
    for (flag, code) in [
        (BOLD, b'1'),
        (DIM, b'2'),
        (ITALIC, b'3'),
        (UNDERLINE, b'4'),
        (INVERSE, b'7'),
    ] {
        if attrs.has(flag) {
            out.extend_from_slice(&[b';', code]);
        }
    }
    color(out, attrs.fg, 30);
    color(out, attrs.bg, 40);
    out.push(b'm');
}

/// Writes `cell` with the client's pen at `*at`.
fn write_cell(out: &mut Vec<u8>, at: &mut Attrs, cell: &Cell) {
    let attrs = cell.attrs();
    if attrs != *at {
        pen(out, attrs);
        *at = attrs;
    }
    let mut utf8 = [0; 4];
    out.extend_from_slice(cell.char().encode_utf8(&mut utf8).as_bytes());
    if let Some(mark) = cell.mark() {
        out.extend_from_slice(mark.encode_utf8(&mut utf8).as_bytes());
    }
}

/// Draws row `row` from column `from` on, over `old` (`None`: a blank row).
fn draw_line(
    out: &mut Vec<u8>,
    at: &mut Attrs,
    row: usize,
    line: &[Cell],
    old: Option<&[Cell]>,
    from: usize,
) {
    let Some(last) = line.last() else { return };
    let mut end = line.len();
    if last.is_blank() {
        while end > from && line[end - 1] == *last {
            end -= 1;
        }
    }
    goto(out, row, from);
    for cell in &line[from..end] {
        if !cell.is_continuation() {
            write_cell(out, at, cell);
        }
    }
    if end < line.len() && old.is_none_or(|old| old[end..] != line[end..]) {
        if last.attrs() != *at {
            pen(out, last.attrs());
            *at = last.attrs();
        }
        out.extend_from_slice(b"\x1b[K");
    }
}

/// Sets private mode `mode` if it is to change (`was` is `None` when not known).
fn mode(out: &mut Vec<u8>, number_: usize, was: Option<bool>, now: bool) {
    if was != Some(now) {
        out.extend_from_slice(b"\x1b[?");
        number(out, number_);
        out.push(if now { b'h' } else { b'l' });
    }
}

fn mouse_number(mode: MouseMode) -> Option<usize> {
    match mode {
        MouseMode::None => None,
        MouseMode::Press => Some(9),
        MouseMode::PressRelease => Some(1000),
        MouseMode::ButtonMotion => Some(1002),
        MouseMode::AnyMotion => Some(1003),
    }
}

fn encoding_number(encoding: MouseEncoding) -> Option<usize> {
    match encoding {
        MouseEncoding::Default => None,
        MouseEncoding::Utf8 => Some(1005),
        MouseEncoding::Sgr => Some(1006),
    }
}

/// Sets the modes that differ from `was` (all of them when it is not known).
fn modes(out: &mut Vec<u8>, was: Option<Modes>, now: Modes) {
    mode(out, 1, was.map(|m| m.app_cursor), now.app_cursor);
    if was.map(|m| m.app_keypad) != Some(now.app_keypad) {
        out.extend_from_slice(if now.app_keypad { b"\x1b=" } else { b"\x1b>" });
    }
    mode(
        out,
        2004,
        was.map(|m| m.bracketed_paste),
        now.bracketed_paste,
    );
    if was.map(|m| m.mouse) != Some(now.mouse) {
        let off = match was {
            Some(m) => mouse_number(m.mouse).into_iter().collect(),
            None => vec![9, 1000, 1002, 1003],
        };
        for n in off {
            mode(out, n, None, false);
        }
        if let Some(n) = mouse_number(now.mouse) {
            mode(out, n, None, true);
        }
    }
    if was.map(|m| m.encoding) != Some(now.encoding) {
        let off = match was {
            Some(m) => encoding_number(m.encoding).into_iter().collect(),
            None => vec![1005, 1006],
        };
        for n in off {
            mode(out, n, None, false);
        }
        if let Some(n) = encoding_number(now.encoding) {
            mode(out, n, None, true);
        }
    }
    mode(out, 25, was.map(|m| !m.cursor_hidden), !now.cursor_hidden);
    if was.map(|m| m.cursor_style) != Some(now.cursor_style) {
        out.extend_from_slice(b"\x1b[");
        number(out, usize::from(now.cursor_style));
        out.extend_from_slice(b" q");
    }
}

/// Puts the client's cursor where the screen's is: after a character written in the last
/// column, by writing that character again (the client's cursor is then where it waits to
/// wrap); then its pen.
fn cursor(out: &mut Vec<u8>, at: &mut Attrs, term: &Terminal) {
    let Cursor { row, col, pending } = term.cursor();
    let (row, col) = (usize::from(row), usize::from(col));
    let line = &term.lines()[row];
    if pending {
        let col = if line[col].is_continuation() {
            col.saturating_sub(1)
        } else {
            col
        };
        goto(out, row, col);
        write_cell(out, at, &line[col]);
    } else {
        goto(out, row, col);
    }
    if term.pen() != *at {
        pen(out, term.pen());
        *at = term.pen();
    }
}

impl Shown {
    /// Draws all of `term` on a terminal in any state (but its size): the settings drawing
    /// relies on, a clear screen, the rows, the cursor, the pen and the modes.
    pub fn draw_all(term: &Terminal, out: &mut Vec<u8>) -> Shown {
        out.extend_from_slice(b"\x1b[0m\x1b[4l\x1b[?6l\x1b[?7h\x1b[r\x1b[H\x1b[2J");
        let mut at = Attrs::default();
        for (row, line) in term.lines().iter().enumerate() {
            if line.iter().any(|c| *c != Cell::default()) {
                draw_line(out, &mut at, row, line, None, 0);
            }
        }
        cursor(out, &mut at, term);
        modes(out, None, term.modes());
        Shown {
            lines: term.lines().to_vec(),
            cursor: term.cursor(),
            pen: term.pen(),
            modes: term.modes(),
        }
    }

    /// Draws what differs between what the client shows and `term` (which has its size).
    pub fn draw_changes(&mut self, term: &Terminal, out: &mut Vec<u8>) {
        let mut at = self.pen;
        let mut moved = false;
        for (row, (line, old)) in term.lines().iter().zip(&self.lines).enumerate() {
            let Some(from) = line.iter().zip(old).position(|(a, b)| a != b) else {
                continue;
            };
            let from = if line[from].is_continuation() || old[from].is_continuation() {
                from.saturating_sub(1)
            } else {
                from
            };
            draw_line(out, &mut at, row, line, Some(old), from);
            moved = true;
        }
        if moved || self.cursor != term.cursor() {
            cursor(out, &mut at, term);
        } else if term.pen() != at {
            pen(out, term.pen());
        }
        modes(out, Some(self.modes), term.modes());
        self.update(term);
    }

    /// The client was sent what makes it show `term`.
    pub fn update(&mut self, term: &Terminal) {
        for (line, new) in self.lines.iter_mut().zip(term.lines()) {
            if line != new {
                line.copy_from_slice(new);
            }
        }
        self.cursor = term.cursor();
        self.pen = term.pen();
        self.modes = term.modes();
    }

    /// Rows, columns.
    pub fn size(&self) -> (u16, u16) {
        let rows = self.lines.len();
        let cols = self.lines.first().map_or(0, Vec::len);
        (
            u16::try_from(rows).unwrap_or(u16::MAX),
            u16::try_from(cols).unwrap_or(u16::MAX),
        )
    }
}
