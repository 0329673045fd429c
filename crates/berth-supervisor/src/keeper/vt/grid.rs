//! The screen's rows of cells (the primary screen and the alternate one), the cursor, the
//! scroll region, tab stops, and what writing, moving, erasing and scrolling do to them.
//!
//! The cursor is xterm's: always on a cell, plus a pending wrap (a character written in the
//! last column leaves the cursor there, and the next one goes to the start of the next row).

use unicode_width::UnicodeWidthChar;

use super::Scrolled;
use super::cell::{Attrs, BOLD, Cell};

/// Where the next character goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    pub row: u16,
    pub col: u16,
    /// A character was written in the last column: the next one wraps first.
    pub pending: bool,
}

/// What DECSC saves (one for each screen, as xterm keeps them).
#[derive(Clone, Copy, Debug, Default)]
struct Saved {
    cursor: Cursor,
    attrs: Attrs,
    origin: bool,
}

/// The screens and what is written on them.
#[derive(Clone, Debug)]
pub struct Grid {
    rows: u16,
    cols: u16,
    primary: Vec<Vec<Cell>>,
    alternate: Vec<Vec<Cell>>,
    alternate_active: bool,
    pub cursor: Cursor,
    /// The attributes text is written with.
    pub pen: Attrs,
    /// DECSC's, for the primary screen and the alternate one.
    saved: [Saved; 2],
    /// The scroll region, first and last row.
    top: u16,
    bottom: u16,
    /// DECOM: rows count from the top of the scroll region.
    origin: bool,
    /// DECAWM.
    pub autowrap: bool,
    /// IRM: a character pushes the rest of the row right.
    pub insert: bool,
    /// LNM: a line feed is also a carriage return.
    pub newline: bool,
    tabs: Vec<bool>,
    /// The last character printed, for REP.
    last: Option<char>,
}

fn blank_rows(rows: u16, cols: u16) -> Vec<Vec<Cell>> {
    vec![vec![Cell::default(); usize::from(cols)]; usize::from(rows)]
}

fn default_tabs(cols: u16) -> Vec<bool> {
    (0..cols).map(|c| c > 0 && c % 8 == 0).collect()
}

/// Makes `row[col]` no half of a wide character: the other half becomes a blank.
fn clear_wide(row: &mut [Cell], col: usize) {
    let cell = row[col];
    if cell.is_wide() {
        match row.get_mut(col + 1) {
            Some(next) => *next = Cell::blank(next.attrs()),
            None => row[col] = Cell::blank(cell.attrs()),
        }
    } else if cell.is_continuation() && col > 0 {
        row[col - 1] = Cell::blank(row[col - 1].attrs());
    }
}

/// Erases `row[from..to]` to blanks of `attrs`.
fn erase(row: &mut [Cell], from: usize, to: usize, attrs: Attrs) {
    if from >= to {
        return;
    }
    clear_wide(row, from);
    clear_wide(row, to - 1);
    row[from..to].fill(Cell::blank(attrs));
}

/// The last cell of a row must not be the first half of a wide character.
fn fix_last(row: &mut [Cell]) {
    if let Some(last) = row.last_mut()
        && last.is_wide()
    {
        *last = Cell::blank(last.attrs());
    }
}

impl Grid {
    pub fn new(rows: u16, cols: u16) -> Grid {
        Grid {
            rows,
            cols,
            primary: blank_rows(rows, cols),
            alternate: blank_rows(rows, cols),
            alternate_active: false,
            cursor: Cursor::default(),
            pen: Attrs::default(),
            saved: [Saved::default(); 2],
            top: 0,
            bottom: rows - 1,
            origin: false,
            autowrap: true,
            insert: false,
            newline: false,
            tabs: default_tabs(cols),
            last: None,
        }
    }

    /// Back to how it started (RIS), keeping the size.
    pub fn reset(&mut self) {
        *self = Grid::new(self.rows, self.cols);
    }

    pub fn size(&self) -> (u16, u16) {
        (self.rows, self.cols)
    }

    /// The rows shown: the alternate screen's when it is on.
    pub fn lines(&self) -> &[Vec<Cell>] {
        if self.alternate_active {
            &self.alternate
        } else {
            &self.primary
        }
    }

    fn lines_mut(&mut self) -> &mut [Vec<Cell>] {
        if self.alternate_active {
            &mut self.alternate
        } else {
            &mut self.primary
        }
    }

    pub fn is_alternate(&self) -> bool {
        self.alternate_active
    }

    fn line(&mut self) -> &mut Vec<Cell> {
        let row = usize::from(self.cursor.row);
        &mut self.lines_mut()[row]
    }

    /// Writes `c` at the cursor: a character of its width, a combining mark on the one before.
    #[inline]
    pub fn print(&mut self, c: char, sink: &mut impl Scrolled) {
        if (' '..'\x7f').contains(&c) {
            return self.put(c, 1, sink);
        }
        // Like vt100 (whose screens are what berth's match): a replacement character (bytes
        // that are not UTF-8) and C1 controls show nothing; so do other controls (DEL).
        if c == '\u{fffd}' || ('\u{80}'..'\u{a0}').contains(&c) {
            return;
        }
        match c.width() {
            None if u32::from(c) < 256 => {}
            Some(0) => self.combine(c),
            width => self.put(c, width.unwrap_or(1).min(2) as u16, sink),
        }
    }

    /// Puts the combining `mark` on the character before the cursor (under it after one
    /// written in the last column). A mark never makes a character wide here.
    fn combine(&mut self, mark: char) {
        let Cursor { col, pending, .. } = self.cursor;
        let mut col = if pending {
            usize::from(col)
        } else if col > 0 {
            usize::from(col) - 1
        } else {
            return;
        };
        let line = self.line();
        if line[col].is_continuation() && col > 0 {
            col -= 1;
        }
        line[col].combine(mark);
    }

    #[inline]
    fn put(&mut self, c: char, width: u16, sink: &mut impl Scrolled) {
        if width > self.cols {
            return;
        }
        if self.cursor.pending {
            self.next_line(sink);
        }
        if self.cursor.col + width > self.cols {
            // A wide character in the last column goes to the next row.
            if self.autowrap {
                self.next_line(sink);
            } else {
                self.cursor.col = self.cols - width;
            }
        }
        let col = usize::from(self.cursor.col);
        let (pen, insert) = (self.pen, self.insert);
        let line = self.line();
        if insert {
            if line[col].is_wide() || line[col].is_continuation() {
                clear_wide(line, col);
                line[col] = Cell::blank(line[col].attrs());
            }
            line[col..].rotate_right(usize::from(width));
            line[col..col + usize::from(width)].fill(Cell::default());
            fix_last(line);
        }
        if width == 1 {
            if line[col].is_wide() || line[col].is_continuation() {
                clear_wide(line, col);
                if line[col].is_wide() {
                    line[col + 1] = Cell::blank(pen);
                }
            }
            line[col] = Cell::new(c, pen);
        } else {
            clear_wide(line, col);
            if line[col + 1].is_wide() {
                line[col + 2] = Cell::blank(pen);
            }
            line[col] = Cell::wide(c, pen);
            line[col + 1] = Cell::continuation();
        }
        self.last = Some(c);
        let next = self.cursor.col + width;
        if next >= self.cols {
            self.cursor.col = self.cols - 1;
            self.cursor.pending = self.autowrap;
        } else {
            self.cursor.col = next;
        }
    }

    /// Writes a run of printable ASCII: as [`Grid::print`] does each, but a row's worth at a
    /// time where nothing but the cells change.
    pub fn print_ascii(&mut self, run: &[u8], sink: &mut impl Scrolled) {
        let mut run = run;
        while let Some(&first) = run.first() {
            let Cursor { row, col, pending } = self.cursor;
            let col = usize::from(col);
            let n = run.len().min(usize::from(self.cols) - col);
            let (pen, insert) = (self.pen, self.insert);
            let cells = &mut self.lines_mut()[usize::from(row)][col..col + n];
            if pending || insert || cells.iter().any(|c| c.is_wide() || c.is_continuation()) {
                self.put(char::from(first), 1, sink);
                run = &run[1..];
                continue;
            }
            for (cell, b) in cells.iter_mut().zip(run) {
                *cell = Cell::new(char::from(*b), pen);
            }
            self.last = Some(char::from(run[n - 1]));
            if col + n == usize::from(self.cols) {
                self.cursor.col = self.cols - 1;
                self.cursor.pending = self.autowrap;
            } else {
                self.cursor.col += n as u16;
            }
            run = &run[n..];
        }
    }

    /// REP: the last character printed, `n` more times.
    pub fn repeat(&mut self, n: u16, sink: &mut impl Scrolled) {
        if let Some(c) = self.last {
            let most = self.rows.saturating_mul(self.cols);
            for _ in 0..n.min(most) {
                self.print(c, sink);
            }
        }
    }

    fn next_line(&mut self, sink: &mut impl Scrolled) {
        self.carriage_return();
        self.index(sink);
    }

    /// IND: down a row, scrolling the region at its bottom.
    pub fn index(&mut self, sink: &mut impl Scrolled) {
        if self.cursor.row == self.bottom {
            self.scroll_up(1, sink);
        } else if self.cursor.row + 1 < self.rows {
            self.cursor.row += 1;
        }
    }

    pub fn line_feed(&mut self, sink: &mut impl Scrolled) {
        self.index(sink);
        if self.newline {
            self.carriage_return();
        }
    }

    /// RI: up a row, scrolling the region down at its top (xterm; vt100 also scrolls the
    /// region when the cursor is on the top row above it).
    pub fn reverse_index(&mut self) {
        if self.cursor.row == self.top {
            self.scroll_down(1);
        } else if self.cursor.row > 0 {
            self.cursor.row -= 1;
        }
    }

    pub fn carriage_return(&mut self) {
        self.cursor.col = 0;
        self.cursor.pending = false;
    }

    /// BS, CUB: left, from the last column after a character written there too (xterm; vt100
    /// counts from one column further right then).
    pub fn back(&mut self, n: u16) {
        self.cursor.col = self.cursor.col.saturating_sub(n);
        self.cursor.pending = false;
    }

    /// CUF.
    pub fn forward(&mut self, n: u16) {
        self.set_col(self.cursor.col.saturating_add(n));
    }

    /// HT: to the next tab stop, or the last column.
    pub fn tab(&mut self) {
        let from = usize::from(self.cursor.col) + 1;
        let stop = self.tabs[from.min(self.tabs.len())..]
            .iter()
            .position(|t| *t)
            .map_or(self.cols - 1, |at| (from + at) as u16);
        self.set_col(stop);
    }

    /// HTS.
    pub fn set_tab(&mut self) {
        self.tabs[usize::from(self.cursor.col)] = true;
    }

    /// TBC: the stop at the cursor (0) or all of them (3).
    pub fn clear_tabs(&mut self, mode: u16) {
        match mode {
            0 => self.tabs[usize::from(self.cursor.col)] = false,
            3 => self.tabs.fill(false),
            _ => {}
        }
    }

    /// CUU: up, not past the region's top if the cursor is in it.
    pub fn up(&mut self, n: u16) {
        let limit = if self.cursor.row >= self.top {
            self.top
        } else {
            0
        };
        self.cursor.row = self.cursor.row.saturating_sub(n).max(limit);
    }

    /// CUD: down, not past the region's bottom if the cursor is in it.
    pub fn down(&mut self, n: u16) {
        let limit = if self.cursor.row <= self.bottom {
            self.bottom
        } else {
            self.rows - 1
        };
        self.cursor.row = self.cursor.row.saturating_add(n).min(limit);
    }

    /// CHA, HPA (0-based).
    pub fn set_col(&mut self, col: u16) {
        self.cursor.col = col.min(self.cols - 1);
        self.cursor.pending = false;
    }

    /// VPA (0-based; within the region in origin mode, as xterm).
    pub fn set_row(&mut self, row: u16) {
        self.cursor.row = if self.origin {
            row.saturating_add(self.top).min(self.bottom)
        } else {
            row.min(self.rows - 1)
        };
    }

    /// CUP (0-based; within the region in origin mode).
    pub fn goto(&mut self, row: u16, col: u16) {
        self.set_row(row);
        self.set_col(col);
    }

    /// DECSTBM (1-based, as sent); a region of less than two rows is the whole screen. The
    /// cursor goes home (xterm; vt100 puts it on the region's top row).
    pub fn set_region(&mut self, top: u16, bottom: u16) {
        let (top, bottom) = (
            top.saturating_sub(1),
            bottom.saturating_sub(1).min(self.rows - 1),
        );
        (self.top, self.bottom) = if top < bottom {
            (top, bottom)
        } else {
            (0, self.rows - 1)
        };
        self.goto(0, 0);
    }

    /// Where the cursor is as CPR reports it: 1-based, its row counted from the region's top
    /// in origin mode.
    pub fn reported_position(&self) -> (u16, u16) {
        let top = if self.origin { self.top } else { 0 };
        (self.cursor.row - top + 1, self.cursor.col + 1)
    }

    /// DECOM.
    pub fn set_origin(&mut self, on: bool) {
        self.origin = on;
        self.goto(0, 0);
    }

    /// ED: below (0), above (1), all (2) the cursor, with it. (3, the scrollback, is the
    /// keeper's: `Scrolled::clear`.)
    pub fn erase_display(&mut self, mode: u16) {
        let row = usize::from(self.cursor.row);
        let pen = self.pen;
        let lines = self.lines_mut();
        let whole = match mode {
            0 => row + 1..lines.len(),
            1 => 0..row,
            2 => 0..lines.len(),
            _ => return,
        };
        for line in &mut lines[whole] {
            line.fill(Cell::blank(pen));
        }
        if mode != 2 {
            self.erase_line(mode);
        }
    }

    /// EL: right of (0), left of (1) the cursor, with it, or the whole row (2).
    pub fn erase_line(&mut self, mode: u16) {
        self.cursor.pending = false;
        let col = usize::from(self.cursor.col);
        let pen = self.pen;
        let line = self.line();
        let len = line.len();
        match mode {
            0 => erase(line, col, len, pen),
            1 => erase(line, 0, col + 1, pen),
            2 => erase(line, 0, len, pen),
            _ => {}
        }
    }

    /// ECH.
    pub fn erase_chars(&mut self, n: u16) {
        self.cursor.pending = false;
        let col = usize::from(self.cursor.col);
        let pen = self.pen;
        let line = self.line();
        let to = (col + usize::from(n)).min(line.len());
        erase(line, col, to, pen);
    }

    /// ICH: blanks at the cursor, the rest of the row pushed right (a blank inserted on the
    /// second half of a wide character goes after it, as vt100 does).
    pub fn insert_chars(&mut self, n: u16) {
        self.cursor.pending = false;
        let col = usize::from(self.cursor.col);
        let line = self.line();
        let count = usize::from(n).min(line.len() - col);
        if count == 0 {
            return;
        }
        let continuation = line[col].is_continuation();
        line[col..].rotate_right(count);
        line[col..col + count].fill(Cell::default());
        if continuation {
            line[col] = Cell::continuation();
            if let Some(moved) = line.get_mut(col + count) {
                *moved = Cell::default();
            }
        }
        fix_last(line);
    }

    /// DCH: the cells at the cursor go, the rest of the row comes left, blanks at its end.
    pub fn delete_chars(&mut self, n: u16) {
        self.cursor.pending = false;
        let col = usize::from(self.cursor.col);
        let line = self.line();
        let end = (col + usize::from(n)).min(line.len());
        if col >= end {
            return;
        }
        clear_wide(line, col);
        clear_wide(line, end - 1);
        line[col..end].fill(Cell::default());
        line[col..].rotate_left(end - col);
    }

    fn in_region(&self) -> bool {
        (self.top..=self.bottom).contains(&self.cursor.row)
    }

    /// IL: blank rows at the cursor's, those below pushed down within the region.
    pub fn insert_lines(&mut self, n: u16) {
        if self.in_region() {
            let (from, to) = (usize::from(self.cursor.row), usize::from(self.bottom));
            Self::shift_down(&mut self.lines_mut()[from..=to], n);
        }
    }

    /// DL: the rows at the cursor's go, those below come up within the region.
    pub fn delete_lines(&mut self, n: u16) {
        if self.in_region() {
            let (from, to) = (usize::from(self.cursor.row), usize::from(self.bottom));
            Self::shift_up(&mut self.lines_mut()[from..=to], n);
        }
    }

    fn shift_up(lines: &mut [Vec<Cell>], n: u16) {
        let count = usize::from(n).min(lines.len());
        lines.rotate_left(count);
        let len = lines.len();
        for line in &mut lines[len - count..] {
            line.fill(Cell::default());
        }
    }

    fn shift_down(lines: &mut [Vec<Cell>], n: u16) {
        let count = usize::from(n).min(lines.len());
        lines.rotate_right(count);
        for line in &mut lines[..count] {
            line.fill(Cell::default());
        }
    }

    /// SU, and a line feed at the region's bottom: the region's rows go up `n`; those that
    /// leave the top of the primary screen go to the scrollback.
    pub fn scroll_up(&mut self, n: u16, sink: &mut impl Scrolled) {
        let (top, bottom) = (usize::from(self.top), usize::from(self.bottom));
        if top == 0 && !self.alternate_active {
            let count = usize::from(n).min(bottom + 1);
            for line in &self.primary[..count] {
                sink.scrolled(line);
            }
        }
        Self::shift_up(&mut self.lines_mut()[top..=bottom], n);
    }

    /// SD, and a reverse index at the region's top.
    pub fn scroll_down(&mut self, n: u16) {
        let (top, bottom) = (usize::from(self.top), usize::from(self.bottom));
        Self::shift_down(&mut self.lines_mut()[top..=bottom], n);
    }

    fn slot(&self) -> usize {
        usize::from(self.alternate_active)
    }

    /// DECSC.
    pub fn save_cursor(&mut self) {
        self.saved[self.slot()] = Saved {
            cursor: self.cursor,
            attrs: self.pen,
            origin: self.origin,
        };
    }

    /// DECRC.
    pub fn restore_cursor(&mut self) {
        let saved = self.saved[self.slot()];
        self.cursor = saved.cursor;
        self.pen = saved.attrs;
        self.origin = saved.origin;
    }

    /// Switches to the alternate screen (`on`) or back. The cursor stays where it is (xterm;
    /// vt100 keeps one for each screen).
    pub fn set_alternate(&mut self, on: bool) {
        self.alternate_active = on;
    }

    /// Blanks the alternate screen.
    pub fn clear_alternate(&mut self) {
        for line in &mut self.alternate {
            line.fill(Cell::default());
        }
    }

    /// A new size. Nothing reflows: rows are kept from the top, and when there are fewer,
    /// the rows above the cursor's (on both screens: xterm has one cursor, where vt100 has one
    /// for each screen) that no longer fit scroll off (into the scrollback from the
    /// primary screen); when there are more, blank rows come in at the bottom. The scroll
    /// region becomes the whole screen.
    pub fn resize(&mut self, rows: u16, cols: u16, sink: &mut impl Scrolled) {
        if (rows, cols) == (self.rows, self.cols) {
            return;
        }
        let at = self.cursor.row;
        for screen in [0, 1] {
            let lines = if screen == 0 {
                &mut self.primary
            } else {
                &mut self.alternate
            };
            let below = self.rows - at - 1;
            let gone = (self.rows - rows.min(self.rows)).saturating_sub(below);
            if screen == 0 {
                for line in &lines[..usize::from(gone)] {
                    sink.scrolled(line);
                }
            }
            lines.drain(..usize::from(gone));
            lines.resize_with(usize::from(rows), Vec::new);
            for line in lines.iter_mut() {
                line.resize(usize::from(cols), Cell::default());
                fix_last(line);
            }
            let saved = &mut self.saved[screen].cursor;
            saved.row = saved.row.saturating_sub(gone).min(rows - 1);
            saved.col = saved.col.min(cols - 1);
            if screen == self.slot() {
                self.cursor.row = at.saturating_sub(gone).min(rows - 1);
            }
        }
        self.cursor.col = self.cursor.col.min(cols - 1);
        self.cursor.pending = false;
        self.tabs.resize(usize::from(cols), false);
        for (col, tab) in self
            .tabs
            .iter_mut()
            .enumerate()
            .skip(usize::from(self.cols))
        {
            *tab = col % 8 == 0;
        }
        (self.rows, self.cols) = (rows, cols);
        (self.top, self.bottom) = (0, rows - 1);
    }

    /// Whether the cells from the cursor on for `n` columns are all narrow characters and no
    /// mode changes what printing does there beyond putting characters in (`echo.rs`).
    pub fn prints_in_place(&self, n: u16) -> bool {
        let Cursor { row, col, pending } = self.cursor;
        !pending
            && !self.insert
            && col.checked_add(n).is_some_and(|end| end < self.cols)
            && self.lines()[usize::from(row)][usize::from(col)..usize::from(col + n)]
                .iter()
                .all(|c| !c.is_wide() && !c.is_continuation())
    }
}

/// SGR: sets what the pen writes with, as vt100 reads it (bold and dim exclude each other;
/// what it does not know is skipped; a colour out of range ends the sequence).
pub fn select_graphic_rendition(pen: &mut Attrs, params: &vte::Params) {
    use super::cell::{Color, DIM, INVERSE, ITALIC, UNDERLINE};
    if params.is_empty() {
        *pen = Attrs::default();
        return;
    }
    let mut params = params.iter();
    let byte = |n: u16| u8::try_from(n).ok();
    while let Some(param) = params.next() {
        let color = match param {
            [0] => {
                *pen = Attrs::default();
                continue;
            }
            [1] => {
                pen.set(DIM, false);
                pen.set(BOLD, true);
                continue;
            }
            [2] => {
                pen.set(BOLD, false);
                pen.set(DIM, true);
                continue;
            }
            [22] => {
                pen.set(BOLD | DIM, false);
                continue;
            }
            [n @ (3 | 4 | 7 | 23 | 24 | 27)] => {
                let flag = match n % 20 {
                    3 => ITALIC,
                    4 => UNDERLINE,
                    _ => INVERSE,
                };
                pen.set(flag, *n < 20);
                continue;
            }
            [n @ (30..=37 | 90..=97)] => {
                (true, Color::Idx((n % 10) as u8 + 8 * u8::from(*n >= 90)))
            }
            [n @ (40..=47 | 100..=107)] => {
                (false, Color::Idx((n % 10) as u8 + 8 * u8::from(*n >= 100)))
            }
            [39] => (true, Color::Default),
            [49] => (false, Color::Default),
            [n @ (38 | 48), 2, r, g, b] => {
                let (Some(r), Some(g), Some(b)) = (byte(*r), byte(*g), byte(*b)) else {
                    return;
                };
                (*n == 38, Color::Rgb(r, g, b))
            }
            [n @ (38 | 48), 5, i] => {
                let Some(i) = byte(*i) else { return };
                (*n == 38, Color::Idx(i))
            }
            [n @ (38 | 48)] => {
                let kind = params.next();
                let mut next = || match params.next() {
                    Some([v]) => byte(*v),
                    _ => None,
                };
                let color = match kind {
                    Some([2]) => {
                        let (Some(r), Some(g), Some(b)) = (next(), next(), next()) else {
                            return;
                        };
                        Color::Rgb(r, g, b)
                    }
                    Some([5]) => {
                        let Some(i) = next() else { return };
                        Color::Idx(i)
                    }
                    _ => return,
                };
                (*n == 38, color)
            }
            _ => continue,
        };
        match color {
            (true, c) => pen.fg = c,
            (false, c) => pen.bg = c,
        }
    }
}
