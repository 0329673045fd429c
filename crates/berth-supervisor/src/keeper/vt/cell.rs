//! A cell of the screen and the attributes text is written with, kept small: a screen is rows
//! of cells, and a client's [`super::Shown`] is a copy of one.

/// A colour of the text or of the cell behind it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Color {
    /// The terminal's own.
    #[default]
    Default,
    /// One of the 256 of the palette (0–7 the standard colours, 8–15 their bright ones).
    Idx(u8),
    Rgb(u8, u8, u8),
}

pub const BOLD: u8 = 1;
pub const DIM: u8 = 1 << 1;
pub const ITALIC: u8 = 1 << 2;
pub const UNDERLINE: u8 = 1 << 3;
pub const INVERSE: u8 = 1 << 4;
/// The attributes of the text among the flags (the rest say what the cell holds).
const STYLE: u8 = BOLD | DIM | ITALIC | UNDERLINE | INVERSE;
/// The cell holds the first half of a wide character.
const WIDE: u8 = 1 << 5;
/// The cell is the second half of the wide character on its left.
const CONTINUATION: u8 = 1 << 6;

/// What text is written with: the pen (SGR).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attrs {
    pub fg: Color,
    pub bg: Color,
    /// [`BOLD`], [`DIM`], [`ITALIC`], [`UNDERLINE`], [`INVERSE`].
    pub style: u8,
}

impl Attrs {
    pub fn has(&self, flag: u8) -> bool {
        self.style & flag != 0
    }

    pub fn set(&mut self, flag: u8, on: bool) {
        if on {
            self.style |= flag;
        } else {
            self.style &= !flag;
        }
    }
}

/// Bits of `text` that hold the character (every `char` fits in 21 bits); the flags take the
/// top byte, so a cell takes 16 bytes.
const CHAR_BITS: u32 = 0x1f_ffff;
const FLAGS_SHIFT: u32 = 24;

/// One cell: a character (a blank is a space), at most one combining mark on it, its colours
/// and flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    /// The character and, in the top byte, the style and wide flags.
    text: u32,
    /// A combining mark on the character, `'\0'` for none (further ones are dropped).
    mark: char,
    fg: Color,
    bg: Color,
}

const _: () = assert!(std::mem::size_of::<Cell>() == 16);

impl Default for Cell {
    fn default() -> Cell {
        Cell::blank(Attrs::default())
    }
}

impl Cell {
    /// `c` written with `attrs`.
    #[inline]
    pub fn new(c: char, attrs: Attrs) -> Cell {
        Cell {
            text: u32::from(c) | u32::from(attrs.style) << FLAGS_SHIFT,
            mark: '\0',
            fg: attrs.fg,
            bg: attrs.bg,
        }
    }

    /// An erased cell (erasing keeps the pen's attributes, as xterm's colours do).
    pub fn blank(attrs: Attrs) -> Cell {
        Cell::new(' ', attrs)
    }

    /// The first half of the wide `c`.
    pub fn wide(c: char, attrs: Attrs) -> Cell {
        let mut cell = Cell::new(c, attrs);
        cell.text |= u32::from(WIDE) << FLAGS_SHIFT;
        cell
    }

    /// The second half of a wide character.
    pub fn continuation() -> Cell {
        let mut cell = Cell::default();
        cell.text |= u32::from(CONTINUATION) << FLAGS_SHIFT;
        cell
    }

    fn flags(&self) -> u8 {
        (self.text >> FLAGS_SHIFT) as u8
    }

    pub fn char(&self) -> char {
        char::from_u32(self.text & CHAR_BITS).unwrap_or(' ')
    }

    pub fn mark(&self) -> Option<char> {
        (self.mark != '\0').then_some(self.mark)
    }

    /// Puts the combining `mark` on the character (a second one is dropped).
    pub fn combine(&mut self, mark: char) {
        if self.mark == '\0' {
            self.mark = mark;
        }
    }

    pub fn attrs(&self) -> Attrs {
        Attrs {
            fg: self.fg,
            bg: self.bg,
            style: self.flags() & STYLE,
        }
    }

    pub fn is_wide(&self) -> bool {
        self.flags() & WIDE != 0
    }

    pub fn is_continuation(&self) -> bool {
        self.flags() & CONTINUATION != 0
    }

    /// A space and nothing else on it (whatever its colours).
    pub fn is_blank(&self) -> bool {
        self.text & (CHAR_BITS | u32::from(WIDE | CONTINUATION) << FLAGS_SHIFT) == u32::from(' ')
            && self.mark == '\0'
    }

    /// Writes the cell's text (nothing for the second half of a wide character).
    pub fn write_text(&self, out: &mut String) {
        if self.is_continuation() {
            return;
        }
        out.push(self.char());
        if let Some(mark) = self.mark() {
            out.push(mark);
        }
    }
}

/// The text of `cells`, as [`Cell::write_text`] writes each, without the blanks at the end.
pub fn write_text(cells: &[Cell], out: &mut String) {
    let end = cells
        .iter()
        .rposition(|c| !c.is_blank())
        .map_or(0, |at| at + 1);
    // ASCII (nearly all text) is gathered and added a piece at a time.
    let mut ascii = [0u8; 64];
    let mut held = 0;
    for cell in &cells[..end] {
        let text = cell.text & !(u32::from(STYLE) << FLAGS_SHIFT);
        if text < 0x80 && cell.mark == '\0' {
            ascii[held] = text as u8;
            held += 1;
            if held < ascii.len() {
                continue;
            }
        }
        out.push_str(std::str::from_utf8(&ascii[..held]).unwrap_or_default());
        if held < ascii.len() {
            cell.write_text(out);
        }
        held = 0;
    }
    out.push_str(std::str::from_utf8(&ascii[..held]).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_keeps_its_character_mark_attributes_and_width() {
        let attrs = Attrs {
            fg: Color::Rgb(1, 2, 3),
            bg: Color::Idx(200),
            style: BOLD | INVERSE,
        };
        let mut cell = Cell::wide('日', attrs);
        cell.combine('\u{301}');
        cell.combine('\u{302}');
        assert_eq!(cell.char(), '日');
        assert_eq!(cell.mark(), Some('\u{301}'));
        assert_eq!(cell.attrs(), attrs);
        assert!(cell.is_wide() && !cell.is_continuation() && !cell.is_blank());
        assert!(Cell::continuation().is_continuation());
        assert!(!Cell::continuation().is_blank());
        assert!(Cell::blank(attrs).is_blank());
        let mut text = String::new();
        write_text(
            &[cell, Cell::continuation(), Cell::new('x', attrs)],
            &mut text,
        );
        assert_eq!(text, "日\u{301}x");
    }
}
