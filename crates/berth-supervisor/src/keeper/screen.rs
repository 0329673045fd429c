//! What a terminal agent's terminal shows: every byte the program writes goes through berth's
//! terminal emulator (`keeper/vt`), so the keeper always knows the screen, the cursor, the title
//! and the scrollback.
//!
//! The emulator keeps the screen only: a line that scrolls off the top is handed to
//! [`Scrollback`] as cells and kept there as plain text, at most `limit` lines, oldest dropped
//! first. A cell takes 16 bytes, so 10,000 lines of 80 columns as cells would take some 13 MB;
//! as text they take what they say (SPEC §10.1: a keeper with 10,000 lines of scrollback stays
//! under 8 MiB). The text of the lines is packed one after the other in one buffer ([`Lines`]),
//! so a line scrolling off costs a copy of its characters and no allocation of its own. Lines
//! that scroll off the alternate screen (a full-screen program's) are not history and are not
//! kept.
//!
//! An attached client is drawn from the emulator, not sent the program's bytes: whenever the
//! screen changed, the client gets what turns what its terminal shows into the screen
//! ([`Screen::draw`]: the whole screen first, then differences). What its terminal shows is
//! its [`Sight`], a copy of the screen as it was drawn there. So a client attaching late sees
//! the screen at once, a slow client skips what it had no time to show instead of falling
//! behind, and the client's own terminal never leaves the screen berth drew it on (a program's
//! switch to the alternate screen is just another change).

use std::collections::VecDeque;

use berth_core::terminal::Size;
use berth_proto::{Cursor, TerminalScreen, TerminalSize};

use super::echo;
use super::vt::{self, Cell, Shown, Terminal};

/// Lines of text, oldest first, packed one after the other in one buffer.
#[derive(Debug, Default)]
struct Lines {
    text: String,
    /// Where each line starts in `text`; a line ends where the next one starts.
    starts: VecDeque<usize>,
}

impl Lines {
    fn len(&self) -> usize {
        self.starts.len()
    }

    /// Adds the line that `write` writes at the end, without its trailing whitespace.
    fn push(&mut self, write: impl FnOnce(&mut String)) {
        let start = self.text.len();
        write(&mut self.text);
        let kept = self.text[start..].trim_end().len();
        self.text.truncate(start + kept);
        self.starts.push_back(start);
    }

    /// Drops the oldest line. The space it took is given back once the dropped lines take an
    /// eighth of the buffer, so the buffer stays within a seventh more than what it holds.
    fn pop(&mut self) {
        self.starts.pop_front();
        let dead = self.starts.front().copied().unwrap_or(self.text.len());
        if dead > self.text.len() / 8 {
            self.text.drain(..dead);
            for start in &mut self.starts {
                *start -= dead;
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        let ends = self.starts.iter().skip(1).copied();
        self.starts
            .iter()
            .zip(ends.chain(std::iter::once(self.text.len())))
            .map(|(&start, end)| &self.text[start..end])
    }
}

/// The lines that scrolled off the primary screen.
#[derive(Debug)]
struct Scrollback {
    lines: Lines,
    limit: usize,
}

impl vt::Scrolled for Scrollback {
    fn scrolled(&mut self, line: &[Cell]) {
        if self.limit == 0 {
            return;
        }
        if self.lines.len() >= self.limit {
            self.lines.pop();
        }
        self.lines.push(|out| vt::write_text(line, out));
    }

    fn clear(&mut self) {
        self.lines = Lines::default();
    }
}

/// What an attached client's terminal shows: the screen as it was drawn there. The next
/// drawing is the difference between it and the screen.
pub struct Sight {
    shown: Shown,
    /// The bells the client was sent.
    bells: u64,
    /// Which change of the screen ([`Screen::changes`]) it shows.
    at: u64,
}

impl std::fmt::Debug for Sight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sight")
            .field("size", &self.shown.size())
            .field("bells", &self.bells)
            .finish()
    }
}

/// A terminal's screen and scrollback.
pub struct Screen {
    term: Terminal,
    kept: Scrollback,
    /// Counts the changes (what the program wrote, resizes), so a client's [`Sight`] can tell
    /// whether it shows the screen as it was just before the last.
    changes: u64,
    /// The last change was these bytes, which a client that showed the screen just before can
    /// be sent as they are (`echo::in_place`); otherwise empty.
    echo: Vec<u8>,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (rows, cols) = self.term.size();
        f.debug_struct("Screen")
            .field("rows", &rows)
            .field("cols", &cols)
            .field("scrollback", &self.kept.lines.len())
            .finish()
    }
}

impl Screen {
    /// An empty screen of `size` that keeps at most `scrollback` lines above it.
    pub fn new(size: Size, scrollback: usize) -> Screen {
        Screen {
            term: Terminal::new(size.rows, size.cols),
            kept: Scrollback {
                lines: Lines::default(),
                limit: scrollback,
            },
            changes: 0,
            echo: Vec::new(),
        }
    }

    /// Takes what the program wrote.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.echo.clear();
        if echo::in_place(&self.term, bytes) {
            self.echo.extend_from_slice(bytes);
        }
        self.term.feed(bytes, &mut self.kept);
        self.changes += 1;
    }

    /// What the terminal answered the program's queries since the last call (the keeper types
    /// it back: no client's terminal ever sees the queries).
    pub fn take_replies(&mut self) -> Vec<u8> {
        self.term.take_replies()
    }

    pub fn resize(&mut self, size: Size) {
        self.term.resize(size.rows, size.cols, &mut self.kept);
        self.echo.clear();
        self.changes += 1;
    }

    pub fn size(&self) -> (u16, u16) {
        self.term.size()
    }

    /// What turns a client's terminal that shows `sight` (nothing yet: `None`) into one that
    /// shows this screen — the whole screen the first time and after a resize; nothing if it
    /// shows it already; the program's bytes themselves if they are all that changed since and
    /// every terminal does the same with them (a key's echo, `echo.rs`); the differences
    /// otherwise; a bell for the bells rung in between — and `sight` into what it then shows.
    pub fn draw(&self, sight: &mut Option<Sight>) -> Vec<u8> {
        let bells = self.term.bells();
        let mut out = Vec::new();
        match sight {
            Some(seen) if seen.shown.size() == self.term.size() => {
                if seen.at == self.changes {
                } else if seen.at + 1 == self.changes && !self.echo.is_empty() {
                    out.extend_from_slice(&self.echo);
                    seen.shown.update(&self.term);
                } else {
                    seen.shown.draw_changes(&self.term, &mut out);
                }
            }
            _ => {
                *sight = Some(Sight {
                    shown: Shown::draw_all(&self.term, &mut out),
                    bells,
                    at: self.changes,
                });
            }
        }
        if let Some(seen) = sight {
            if seen.bells < bells {
                out.push(0x07);
            }
            seen.bells = bells;
            seen.at = self.changes;
        }
        out
    }

    /// The screen as text, with the newest `scrollback` lines of scrollback.
    pub fn view(&self, scrollback: usize) -> TerminalScreen {
        let (rows, cols) = self.term.size();
        let cursor = self.term.cursor();
        let lines = &self.kept.lines;
        let skip = lines.len().saturating_sub(scrollback);
        TerminalScreen {
            size: TerminalSize { rows, cols },
            rows: self
                .term
                .lines()
                .iter()
                .map(|line| {
                    let mut text = String::new();
                    vt::write_text(line, &mut text);
                    text.truncate(text.trim_end().len());
                    text
                })
                .collect(),
            cursor: Cursor {
                row: cursor.row,
                col: cursor.col,
            },
            title: self.term.title().map(str::to_string),
            scrollback: lines.iter().skip(skip).map(|l| l.to_string()).collect(),
            scrollback_lines: lines.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU16;

    use vt100::capture::{BasicFormattedCaptureState, RowContents};

    use super::*;

    fn size(rows: u16, cols: u16) -> Size {
        Size { rows, cols }
    }

    #[test]
    fn text_and_cursor_moves_land_where_a_terminal_puts_them() {
        let mut s = Screen::new(Size::DEFAULT, 100);
        s.feed(b"$ echo hi\r\nhi\r\n$ ");
        let v = s.view(0);
        assert_eq!(v.size, TerminalSize { rows: 24, cols: 80 });
        assert_eq!(&v.rows[..3], ["$ echo hi", "hi", "$"]);
        assert_eq!(v.cursor, Cursor { row: 2, col: 2 });
        // Clear the screen, then write at row 5, column 10 (1-based).
        s.feed(b"\x1b[2J\x1b[5;10Hhello");
        let v = s.view(0);
        assert_eq!(v.rows[4], format!("{}hello", " ".repeat(9)));
        assert!(
            v.rows
                .iter()
                .enumerate()
                .all(|(i, r)| i == 4 || r.is_empty())
        );
        assert_eq!(v.cursor, Cursor { row: 4, col: 14 });
        assert_eq!(v.rows.len(), 24);
    }

    #[test]
    fn the_title_is_kept() {
        let mut s = Screen::new(Size::DEFAULT, 10);
        assert_eq!(s.view(0).title, None);
        s.feed(b"\x1b]2;building\x07");
        assert_eq!(s.view(0).title.as_deref(), Some("building"));
    }

    #[test]
    fn scrollback_is_bounded_plain_text_oldest_dropped_first() {
        let mut s = Screen::new(size(3, 20), 5);
        for i in 0..10 {
            s.feed(format!("\x1b[31mline {i}\x1b[0m\r\n").as_bytes());
        }
        let v = s.view(100);
        // 3 rows: lines 8, 9 and the empty one the cursor is on; 0..=7 scrolled off.
        assert_eq!(v.rows, ["line 8", "line 9", ""]);
        assert_eq!(v.scrollback_lines, 5);
        assert_eq!(
            v.scrollback,
            ["line 3", "line 4", "line 5", "line 6", "line 7"]
        );
        assert_eq!(s.view(2).scrollback, ["line 6", "line 7"]);
        assert!(s.view(0).scrollback.is_empty());
    }

    /// The text of each line that scrolls off, the way the emulator's own capture gives it:
    /// formatted, then turned into plain text.
    #[derive(Default)]
    struct Reference(Vec<String>);

    impl vt100::Callbacks for Reference {
        fn on_scroll(&mut self, contents: RowContents<'_>, alternate_screen: bool) {
            assert!(!alternate_screen);
            let mut formatted = String::new();
            contents
                .write_formatted_basic(&mut formatted, &mut BasicFormattedCaptureState::new())
                .unwrap();
            let plain: String = vt100::capture::basic_formatted_to_plain(&formatted).collect();
            self.0.push(plain.trim_end().to_string());
        }
    }

    #[test]
    fn scrollback_text_is_the_emulators_plain_capture_of_the_line() {
        let output = concat!(
            "plain line   \r\n",
            "\x1b[31mred\x1b[0m then \x1b[1;4;7mbold underlined inverse\x1b[0m\r\n",
            "\x1b[38;5;208m256 colours\x1b[48;2;10;20;30m and rgb on rgb\x1b[0m\r\n",
            "\x1b[44m   \x1b[0m blue blanks first, then blue blanks last \x1b[42m    \x1b[0m\r\n",
            "wide 日本語 chars, \x1b[32m綠色\x1b[0m and an emoji 🦀 end\r\n",
            "a\x1b[10Cgap\x1b[5Cafter a gap\r\n",
            "\x1b[33mcolour left on at the end of the line\r\n",
            "still coloured\x1b[0m\r\n",
            "\u{3000}ideographic space at both ends\u{3000}\r\n",
            "a line much longer than the screen is wide, so that it wraps onto the next row\r\n",
            "\x1b[2mdim\x1b[22m \x1b[3mitalic\x1b[23m\r\n",
            "\r\n",
            "last\r\n",
        );
        let mut reference = vt100::Parser::new_with_callbacks(
            NonZeroU16::new(3).unwrap(),
            NonZeroU16::new(40).unwrap(),
            0,
            Reference::default(),
        );
        reference.process(output.as_bytes());
        let expected = &reference.callbacks().0;
        assert!(expected.len() > 10, "{expected:?}");
        assert!(expected.iter().any(|l| l.contains("日本語")));

        // All at once, and in pieces that cut sequences and characters apart.
        for piece in [output.len(), 7, 1] {
            let mut s = Screen::new(size(3, 40), 100);
            for part in output.as_bytes().chunks(piece) {
                s.feed(part);
            }
            let v = s.view(100);
            assert_eq!(&v.scrollback, expected, "fed {piece} bytes at a time");
        }
    }

    #[test]
    fn packed_lines_drop_the_oldest_and_keep_the_rest_whole() {
        let mut lines = Lines::default();
        let mut all = Vec::new();
        for i in 0..1000 {
            let line = format!("line {i}:{}", "x".repeat(i % 37));
            if lines.len() == 50 {
                lines.pop();
            }
            lines.push(|out| out.push_str(&format!("{line}  ")));
            all.push(line);
            let kept: Vec<&str> = lines.iter().collect();
            assert_eq!(kept, all[all.len() - lines.len()..], "after line {i}");
            // The dropped lines' space is given back.
            let held: usize = kept.iter().map(|l| l.len()).sum();
            assert!(lines.text.len() <= held + held / 7 + 50, "after line {i}");
        }
        assert_eq!(lines.len(), 50);
    }

    #[test]
    fn the_alternate_screen_leaves_no_history() {
        let mut s = Screen::new(size(3, 20), 100);
        s.feed(b"before\r\n");
        s.feed(b"\x1b[?1049h");
        for i in 0..10 {
            s.feed(format!("full {i}\r\n").as_bytes());
        }
        s.feed(b"\x1b[?1049l");
        let v = s.view(100);
        assert!(v.scrollback.iter().all(|l| !l.starts_with("full")), "{v:?}");
        assert_eq!(v.rows[0], "before");
    }

    /// What a fresh terminal of the same size shows after `drawn`.
    fn shown(drawn: &[u8], size: Size) -> Vec<String> {
        let mut client = Screen::new(size, 0);
        client.feed(drawn);
        client.view(0).rows
    }

    #[test]
    fn a_client_is_drawn_the_whole_screen_then_only_what_changed() {
        let mut s = Screen::new(size(4, 20), 10);
        s.feed(b"\x1b[1;31mred\x1b[0m\r\nplain\r\n$ ");
        let mut sight = None;
        let whole = s.draw(&mut sight);
        assert_eq!(shown(&whole, size(4, 20)), s.view(0).rows);

        s.feed(b"ls\r\nfile\r\n$ ");
        let diff = s.draw(&mut sight);
        assert!(diff.len() < s.draw(&mut None).len(), "{diff:?}");
        let mut both = whole.clone();
        both.extend_from_slice(&diff);
        assert_eq!(shown(&both, size(4, 20)), s.view(0).rows);
        // Nothing changed: nothing to draw.
        assert!(s.draw(&mut sight).is_empty());
    }

    #[test]
    fn what_a_client_was_sent_leaves_nothing_to_draw_whatever_the_screen_went_through() {
        let mut s = Screen::new(size(5, 20), 10);
        let mut sight = None;
        let mut sent = s.draw(&mut sight);
        let steps: [&[u8]; 9] = [
            b"\x1b[1;31mred\x1b[0m plain \x1b[44mblue\x1b[0m\r\n",
            "wide 日本語 and 🦀\r\n".as_bytes(),
            b"a line much longer than twenty columns wraps\r\n",
            b"\x1b[?25l\x1b[3;5Hhidden cursor, moved",
            b"\x1b[?1049h\x1b[2J\x1b[Hfull screen\x1b[?1h\x1b[?2004h",
            b"\x1b[?1049l\x1b[?25h",
            b"\x1b[2;4r\x1b[4;1H\n\n\nscrolled region\x1b[r",
            b"\x07\x1b[7minverse\x1b[27m\x1b[K",
            b"\r\n\r\n\r\n\r\n\r\nscrolled off",
        ];
        for step in steps {
            s.feed(step);
            sent.extend_from_slice(&s.draw(&mut sight));
            // The client's terminal shows the screen, and is drawn nothing more until it
            // changes.
            assert_eq!(shown(&sent, size(5, 20)), s.view(0).rows, "after {step:?}");
            assert!(s.draw(&mut sight).is_empty(), "after {step:?}");
        }
    }

    #[test]
    fn an_echo_is_sent_as_typed_when_every_terminal_shows_it_alike_and_drawn_otherwise() {
        let sz = size(5, 20);
        let mut s = Screen::new(sz, 10);
        let mut sight = None;
        let mut sent = s.draw(&mut sight);
        // Each step, then a key's echo: whether it goes as typed (if not, it is drawn as a
        // difference, which may or may not be the same bytes).
        let steps: [(&[u8], bool); 13] = [
            (b"$ ", true),
            (b"\x1b[1;31mred ", true),
            (b"\x1b[0m\x1b[44mblue", true),
            ("\r\n日本語\r\x1b[1C".as_bytes(), false),
            (b"\r\x1b[2C", false),
            (b"\x1b[1;19H", true),
            (b"\x1b[1;20H", false),
            (b"a line much longer than twenty columns wraps", true),
            (b"\x1b[?25l\x1b[3;5Hhidden cursor", true),
            (b"\x1b[?1049h\x1b[2J\x1b[Hfull screen", true),
            (b"\x1b[2;4r\x1b[4;1H\n\n\nscrolled region", true),
            (b"\x1b]0;a title", false),
            (b"\x07\r\n\x1b[7minverse", true),
        ];
        for (step, as_typed) in steps {
            s.feed(step);
            sent.extend_from_slice(&s.draw(&mut sight));
            s.feed(b"x");
            assert_eq!(s.echo == b"x", as_typed, "after {step:?}");
            let drawn = s.draw(&mut sight);
            if as_typed {
                assert_eq!(drawn, b"x", "after {step:?}");
            }
            sent.extend_from_slice(&drawn);
            // The client's terminal shows the screen: its text, colours and cursor.
            let mut client = vt100::Parser::new(
                NonZeroU16::new(sz.rows).unwrap(),
                NonZeroU16::new(sz.cols).unwrap(),
                0,
            );
            client.process(&sent);
            let diff = vt::tests::differences(client.screen(), &s.term);
            assert!(diff.is_empty(), "after {step:?}: {diff:#?}");
            assert!(s.draw(&mut sight).is_empty(), "after {step:?}");
        }
        // Two changes since the last drawing: their difference, even if the last is an echo.
        s.feed(b"\r");
        s.feed(b"y");
        assert_ne!(s.draw(&mut sight), b"y");
    }

    #[test]
    fn a_full_screen_program_leaving_is_drawn_as_a_change() {
        let mut s = Screen::new(size(3, 20), 10);
        s.feed(b"$ vim\r\n");
        let mut sight = None;
        let mut all = s.draw(&mut sight);
        s.feed(b"\x1b[?1049h\x1b[2J\x1b[Hediting");
        let drawn = s.draw(&mut sight);
        // The client is drawn the new screen; it is never switched to its own alternate one.
        assert!(
            !String::from_utf8_lossy(&drawn).contains("1049"),
            "{drawn:?}"
        );
        all.extend_from_slice(&drawn);
        assert_eq!(shown(&all, size(3, 20))[0], "editing");
        s.feed(b"\x1b[?1049l");
        all.extend_from_slice(&s.draw(&mut sight));
        assert_eq!(shown(&all, size(3, 20))[0], "$ vim");
    }

    #[test]
    fn a_resize_or_a_bell_is_drawn() {
        let mut s = Screen::new(size(3, 20), 10);
        let mut sight = None;
        let first = s.draw(&mut sight);
        s.feed(b"\x07");
        assert_eq!(s.draw(&mut sight), b"\x07");
        s.resize(size(5, 30));
        assert_eq!(s.size(), (5, 30));
        // Another size: the whole screen again (it starts by clearing it).
        assert!(s.draw(&mut sight).starts_with(&first[..6]));
    }

    #[test]
    fn resize_changes_the_size() {
        let mut s = Screen::new(Size::DEFAULT, 10);
        s.resize(size(40, 120));
        let v = s.view(0);
        assert_eq!(
            v.size,
            TerminalSize {
                rows: 40,
                cols: 120
            }
        );
        assert_eq!(v.rows.len(), 40);
    }
}
