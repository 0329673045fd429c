//! The emulator against `vt100` (the crate berth used before, whose screens are xterm's for
//! what both do): the same bytes, fed to both, must leave the same screen — text, every
//! cell's attributes, the cursor, the modes, the scrollback. And what a client is drawn must
//! make a fresh terminal (this emulator, and `vt100` as an independent one) show the screen.

use super::*;

/// Lines scrolled off, as text.
#[derive(Default)]
pub struct Kept(pub Vec<String>);

impl Scrolled for Kept {
    fn scrolled(&mut self, line: &[Cell]) {
        let mut text = String::new();
        write_text(line, &mut text);
        self.0.push(text.trim_end().to_string());
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// `vt100`'s lines scrolled off the primary screen, as text.
#[derive(Default)]
pub struct ReferenceKept(pub Vec<String>);

impl vt100::Callbacks for ReferenceKept {
    fn on_scroll(&mut self, contents: vt100::capture::RowContents<'_>, alternate: bool) {
        if alternate {
            return;
        }
        let mut formatted = String::new();
        let mut state = vt100::capture::BasicFormattedCaptureState::new();
        contents
            .write_formatted_basic(&mut formatted, &mut state)
            .unwrap();
        let plain: String = vt100::capture::basic_formatted_to_plain(&formatted).collect();
        self.0.push(plain.trim_end().to_string());
    }
}

fn reference_color(c: Color) -> vt100::Color {
    match c {
        Color::Default => vt100::Color::Default,
        Color::Idx(i) => vt100::Color::Idx(i),
        Color::Rgb(r, g, b) => vt100::Color::Rgb(r, g, b),
    }
}

/// How `term` differs from `reference` (nothing: the same screen).
pub fn differences(reference: &vt100::Screen, term: &Terminal) -> Vec<String> {
    use cell::{BOLD, DIM, INVERSE, ITALIC, UNDERLINE};
    let mut out = Vec::new();
    let (rows, cols) = term.size();
    let (rrows, rcols) = reference.size();
    if (rrows.get(), rcols.get()) != (rows, cols) {
        return vec![format!("size {rows}x{cols}, reference {rrows}x{rcols}")];
    }
    for (r, line) in term.lines().iter().enumerate() {
        for (c, cell) in line.iter().enumerate() {
            let theirs = reference.cell(r as u16, c as u16).unwrap();
            let at = format!("cell {r},{c}");
            if cell.is_continuation() {
                if !theirs.is_wide_continuation() {
                    out.push(format!(
                        "{at}: second half of a wide character, reference {theirs:?}"
                    ));
                }
                continue;
            }
            let mut text = String::new();
            cell.write_text(&mut text);
            let same_text =
                theirs.contents() == text || (text == " " && theirs.contents().is_empty());
            if !same_text || theirs.is_wide() != cell.is_wide() || theirs.is_wide_continuation() {
                out.push(format!("{at}: {cell:?}, reference {theirs:?}"));
                continue;
            }
            let a = cell.attrs();
            let same = theirs.fgcolor() == reference_color(a.fg)
                && theirs.bgcolor() == reference_color(a.bg)
                && theirs.bold() == a.has(BOLD)
                && theirs.dim() == a.has(DIM)
                && theirs.italic() == a.has(ITALIC)
                && theirs.underline() == a.has(UNDERLINE)
                && theirs.inverse() == a.has(INVERSE);
            if !same {
                out.push(format!("{at}: attributes {a:?}, reference {theirs:?}"));
            }
        }
    }
    let cursor = term.cursor();
    let col = if cursor.pending { cols } else { cursor.col };
    if reference.cursor_position() != (cursor.row, col) {
        out.push(format!(
            "cursor {cursor:?}, reference {:?}",
            reference.cursor_position()
        ));
    }
    let m = term.modes();
    let mouse = match m.mouse {
        MouseMode::None => vt100::MouseProtocolMode::None,
        MouseMode::Press => vt100::MouseProtocolMode::Press,
        MouseMode::PressRelease => vt100::MouseProtocolMode::PressRelease,
        MouseMode::ButtonMotion => vt100::MouseProtocolMode::ButtonMotion,
        MouseMode::AnyMotion => vt100::MouseProtocolMode::AnyMotion,
    };
    let encoding = match m.encoding {
        MouseEncoding::Default => vt100::MouseProtocolEncoding::Default,
        MouseEncoding::Utf8 => vt100::MouseProtocolEncoding::Utf8,
        MouseEncoding::Sgr => vt100::MouseProtocolEncoding::Sgr,
    };
    let modes = (
        m.app_cursor,
        m.app_keypad,
        m.bracketed_paste,
        m.cursor_hidden,
        mouse,
        encoding,
    );
    let theirs = (
        reference.application_cursor(),
        reference.application_keypad(),
        reference.bracketed_paste(),
        reference.hide_cursor(),
        reference.mouse_protocol_mode(),
        reference.mouse_protocol_encoding(),
    );
    if modes != theirs {
        out.push(format!("modes {modes:?}, reference {theirs:?}"));
    }
    out
}

fn reference(rows: u16, cols: u16) -> vt100::Parser<ReferenceKept> {
    vt100::Parser::new_with_callbacks(
        rows.try_into().unwrap(),
        cols.try_into().unwrap(),
        0,
        ReferenceKept::default(),
    )
}

/// Feeds `parts` to the emulator, one after the other, and all of them at once to `vt100`
/// (which, fed a character cut in two, can lose what follows it), and says how they differ.
fn compare(rows: u16, cols: u16, parts: &[&[u8]]) -> Vec<String> {
    let mut theirs = reference(rows, cols);
    let mut term = Terminal::new(rows, cols);
    let mut kept = Kept::default();
    theirs.process(&parts.concat());
    for part in parts {
        term.feed(part, &mut kept);
    }
    let mut out = differences(theirs.screen(), &term);
    if theirs.screen().alternate_screen() != term.is_alternate() {
        out.push("alternate screen".into());
    }
    if theirs.callbacks().0 != kept.0 {
        out.push(format!(
            "scrollback {:?}, reference {:?}",
            kept.0,
            theirs.callbacks().0
        ));
    }
    out
}

/// Every feature `vt100` has, one sequence each, on a screen with something on it.
const CORPUS: &[&str] = &[
    "plain text that is longer than the row and wraps around twice over",
    "exactly twelve\r\nnext",
    "abcdefghijk\x08\x08X",
    "a\tb\tc\r\n\t\tx",
    "line\nfeed\x0bvt\x0cff\rcr",
    "bell\x07 \x07",
    "日本語とemoji🦀 mixed",
    "abcdefghijk日 wide at the end",
    "e\u{301}a\u{308} combining, 日\u{301}",
    "\u{301} at the start",
    "over 日本 half\r\x1b[1Cx\x1b[3Cy",
    "\x1b[2;3Hat 2,3\x1b[H\x1b[4;20Hclamped\x1b[0;0Hhome",
    "\x1b[3;3H\x1b[Aup\x1b[2Bdown\x1b[5Cright\x1b[2Dleft\x1b[99A\x1b[99B\x1b[99C\x1b[99D",
    "\x1b[3;5H\x1b[Enext\x1b[2Fprev\x1b[7Gcol\x1b[3`hpa\x1b[2dvpa\x1b[3;4fhvp",
    "0123456789ab\r\n0123456789ab\r\n0123456789ab\x1b[2;5H\x1b[J",
    "0123456789ab\r\n0123456789ab\r\n0123456789ab\x1b[2;5H\x1b[1J",
    "0123456789ab\r\n0123456789ab\r\n\x1b[31m\x1b[2J\x1b[0mx",
    "0123456789ab\x1b[1;5H\x1b[K\r\n0123456789a\x1b[1K\r\n0123456789a\x1b[2K",
    "0123456789ab\x1b[1;3H\x1b[3@\x1b[1;7H\x1b[2P\x1b[1;2H\x1b[4X",
    "日本語日本\x1b[1;2H\x1b[@\x1b[1;6H\x1b[P\x1b[1;4H\x1b[2X",
    "1\r\n2\r\n3\r\n4\r\n5\x1b[2;1H\x1b[L\x1b[4;1H\x1b[2M",
    "1\r\n2\r\n3\r\n4\r\n5\x1b[2S\x1b[T",
    "1\r\n2\r\n3\r\n4\r\n5\r\n6\r\n7\r\n8",
    "\x1b[2;4r\x1b[4;1H1\n2\n3\n4\x1b[2;1H\x1bM\x1bM\x1b[r\x1b[Hx",
    "\x1b[1;3r\x1b[3;1Ha\nb\nc\nd\x1b[r",
    "\x1b[2;5r\x1b[3H\x1b[3L\x1b[2M\x1b[r",
    "\x1b[1;31mred\x1b[2mdim\x1b[22m\x1b[3;4;7mall\x1b[23;24;27mnone\x1b[0m",
    "\x1b[38;5;208mx\x1b[48;5;20my\x1b[38;2;1;2;3mz\x1b[48;2;4;5;6mw\x1b[39;49mv",
    "\x1b[38:5:100mx\x1b[38:2:7:8:9my\x1b[91;102mz\x1b[97;107mw\x1b[1;300mv",
    "\x1b[44m\x1b[K\x1b[2;1H\x1b[42m\x1b[2X\x1b[m\x1b[3;1H\x1b[45m\x1b[J",
    "\x1b[?1h\x1b=\x1b[?2004h\x1b[?25l\x1b[?1000h\x1b[?1006h",
    "\x1b[?1h\x1b[?1l\x1b=\x1b>\x1b[?9h\x1b[?1002h\x1b[?1003h\x1b[?1003l\x1b[?1005h\x1b[?1005l",
    "\x1b[2;3H\x1b7\x1b[31m\x1b[5;5Hmoved\x1b8back",
    "before\x1b[?1049h\x1b[Halternate\x1b[?1049lafter",
    "\x1b[?47h\x1b[Hin\x1b[?47l\x1b[Hout",
    "\x1b]0;a title\x07\x1b]2;another\x1b\\text",
    "\x1b[5bx\x1b[3b\x1b[2;1H日\x1b[2b",
    "text\x1bc\x1b[2;2Hafter reset",
    "\x1b[?6h\x1b[2;4r\x1b[2;2Horigin\x1b[?6l\x1b[r",
    "\x1b(0\x1b#8\x1bPq\x1b\\\x1b[>1c\x1b]52;c;?\x07\x0e\x0f\u{7f}\u{90}\u{fffd}nothing",
    "cut 日x, éß, 日本 and é\u{301}y",
    "\x1b[1?mignored\x1b[3\x18cancelled\x1b]0;t\x1b\\ended\x1bP1$r\x18x\x1b[31\x1a!",
    "bad \u{80}\u{9f} \x1b[2 qbad utf-8 \u{ff}\u{fe}",
    "\x1b[31;1H\x1b[1;99H\x1b[99;1H",
];

fn corpus_bytes(entry: &str) -> Vec<u8> {
    // `\xff`, `\xfe` in the corpus stand for bytes that are not UTF-8.
    let mut bytes = Vec::new();
    for c in entry.chars() {
        match c {
            '\u{ff}' => bytes.push(0xff),
            '\u{fe}' => bytes.push(0xfe),
            '\u{80}' => bytes.push(0x80),
            '\u{9f}' => bytes.push(0x9f),
            _ => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    bytes
}

#[test]
fn every_sequence_leaves_the_screen_vt100_leaves_whole_or_cut_at_any_byte() {
    let setup = "\x1b[33mpre\x1b[0m filled\r\nsecond row\r\n";
    for entry in CORPUS {
        let bytes = corpus_bytes(entry);
        let mut all = setup.as_bytes().to_vec();
        all.extend_from_slice(&bytes);
        let diff = compare(5, 12, &[&all]);
        assert!(diff.is_empty(), "{entry:?}: {diff:#?}");
        for cut in 0..all.len() {
            let diff = compare(5, 12, &[&all[..cut], &all[cut..]]);
            assert!(diff.is_empty(), "{entry:?} cut at {cut}: {diff:#?}");
        }
        // All of them one after the other.
    }
    let everything: Vec<u8> = CORPUS.iter().flat_map(|e| corpus_bytes(e)).collect();
    let diff = compare(5, 12, &[&everything]);
    assert!(diff.is_empty(), "{diff:#?}");
}

/// A seeded generator of what programs write.
pub struct Gen {
    state: u64,
    region: bool,
    text_last: bool,
}

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen {
            state: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            region: false,
            text_last: false,
        }
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state % n
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }

    /// Some output. With `pending` (the cursor waits to wrap), only what `vt100` and xterm
    /// agree on then; `xterm_only` adds what `vt100` does not do (or does otherwise).
    pub fn step(&mut self, pending: bool, xterm_only: bool) -> Vec<u8> {
        let text_last = std::mem::take(&mut self.text_last);
        let kinds = if pending { 5 } else { 12 };
        let out = match self.below(kinds + u64::from(xterm_only)) {
            0 | 1 => {
                let words = [
                    "word ",
                    "x",
                    "longer text here",
                    "  ",
                    "日本",
                    "🦀",
                    "é",
                    "ab日",
                ];
                let mut s = String::new();
                for _ in 0..=self.below(4) {
                    s.push_str(self.pick(&words));
                }
                self.text_last = true;
                s
            }
            2 if text_last => self.pick(&["\u{301}", "\u{308}"]).to_string(),
            2 => "\r\n".to_string(),
            3 => {
                let mut s = String::from("\x1b[");
                for i in 0..self.below(4) {
                    if i > 0 {
                        s.push(';');
                    }
                    let p = self.pick(&[
                        "0",
                        "1",
                        "2",
                        "3",
                        "4",
                        "7",
                        "22",
                        "23",
                        "24",
                        "27",
                        "31",
                        "39",
                        "44",
                        "49",
                        "92",
                        "103",
                        "38;5;201",
                        "48;5;17",
                        "38;2;10;20;30",
                        "48;2;255;0;9",
                    ]);
                    s.push_str(p);
                }
                s.push('m');
                s
            }
            4 => format!("\x1b[{};{}H", self.below(8), self.below(16)),
            5 => self
                .pick(&["\r", "\n", "\x08", "\t", "\x07", "\x0b"])
                .to_string(),
            6 => {
                let c = self.pick(&[
                    "@", "A", "B", "C", "D", "E", "F", "G", "J", "K", "L", "M", "P", "S", "T", "X",
                    "`", "b", "d",
                ]);
                let n = self.below(5);
                let n = if c == "J" || c == "K" { n % 3 } else { n };
                let n = if n == 0 { String::new() } else { n.to_string() };
                format!("\x1b[{n}{c}")
            }
            7 => {
                let m = self.pick(&[
                    "1", "25", "2004", "9", "1000", "1002", "1003", "1005", "1006",
                ]);
                let hl = self.pick(&["h", "l"]);
                format!("\x1b[?{m}{hl}")
            }
            8 => {
                if self.region {
                    self.region = false;
                    "\x1b[r\x1b[H".to_string()
                } else {
                    self.region = true;
                    format!(
                        "\x1b[{};{}r\x1b[{}H",
                        1 + self.below(3),
                        3 + self.below(4),
                        1 + self.below(6)
                    )
                }
            }
            9 => {
                let s = self.pick(&[
                    "\x1b7",
                    "\x1b8",
                    "\x1b=",
                    "\x1b>",
                    "\x1bM",
                    "\x1bc",
                    "\x1b]0;t\x07",
                ]);
                if s == "\x1bM" && self.region {
                    String::new()
                } else {
                    if s == "\x1bc" {
                        self.region = false;
                    }
                    s.to_string()
                }
            }
            10 => {
                let was = std::mem::take(&mut self.region);
                let switch = self.pick(&["\x1b[?1049h", "\x1b[?1049l", "\x1b[?47h", "\x1b[?47l"]);
                let reset = if was { "\x1b[r" } else { "" };
                // vt100 keeps a cursor and a scroll region for each screen, xterm one; xterm
                // saves the pen for each screen, vt100 one: whatever those were is set anew.
                format!(
                    "{reset}\x1b[0m{switch}\x1b[{}H\x1b[0m\x1b7",
                    1 + self.below(5)
                )
            }
            11 => {
                let bytes = self.pick(&["\u{fffd}", "\u{7f}", "\x1b[2 q", "\x1b[?25h"]);
                bytes.to_string()
            }
            _ => {
                let s = self.pick(&[
                    "\x1b[4h",
                    "\x1b[4l",
                    "\x1b[?7l",
                    "\x1b[?7h",
                    "\x1bD",
                    "\x1bE",
                    "\x1bH",
                    "\x1b[g",
                    "\x1b[3g",
                    "\x1b[s",
                    "\x1b[u",
                    "\x1b[3J",
                    "\x1b[20h\n\x1b[20l",
                    "\x1b[?1047h",
                    "\x1b[?1047l",
                    "\x1b[?6h",
                    "\x1b[?6l",
                ]);
                s.to_string()
            }
        };
        out.into_bytes()
    }
}

#[test]
fn random_output_leaves_the_screen_vt100_leaves() {
    for seed in 0..300 {
        let mut g = Gen::new(seed);
        let (rows, cols) = (1 + g.below(7) as u16, 1 + g.below(14) as u16);
        let mut theirs = reference(rows, cols);
        let mut term = Terminal::new(rows, cols);
        let mut kept = Kept::default();
        let mut all = Vec::new();
        for _ in 0..60 {
            let pending = theirs.screen().cursor_position().1 == cols;
            let step = g.step(pending, false);
            all.extend_from_slice(&step);
            // Fed in pieces cut anywhere.
            let cut = g.below(step.len() as u64 + 1) as usize;
            theirs.process(&step);
            for part in [&step[..cut], &step[cut..]] {
                term.feed(part, &mut kept);
            }
            let diff = differences(theirs.screen(), &term);
            assert!(
                diff.is_empty(),
                "seed {seed}, {rows}x{cols}, after {:?}: {diff:#?}",
                String::from_utf8_lossy(&all)
            );
            assert_eq!(theirs.screen().alternate_screen(), term.is_alternate());
            assert_eq!(theirs.callbacks().0, kept.0, "seed {seed}");
        }
    }
}

#[test]
fn a_smaller_screen_keeps_the_rows_at_the_cursor_and_scrolls_off_those_above() {
    for seed in 0..100 {
        let mut g = Gen::new(seed);
        let mut theirs = reference(6, 12);
        let mut term = Terminal::new(6, 12);
        let mut kept = Kept::default();
        let mut all = Vec::new();
        for _ in 0..20 {
            let pending = theirs.screen().cursor_position().1 == 12;
            let step = g.step(pending, false);
            all.extend_from_slice(&step);
            theirs.process(&step);
            term.feed(&step, &mut kept);
        }
        // (vt100 keeps a cursor waiting to wrap past the last column, wherever that is then,
        // and a cursor for each screen.)
        let back = format!("\x1b[?47l\x1b[{}H", 1 + g.below(6));
        theirs.process(back.as_bytes());
        term.feed(back.as_bytes(), &mut kept);
        let (rows, cols) = (1 + g.below(6) as u16, 2 + g.below(14) as u16);
        theirs.set_size(rows.try_into().unwrap(), cols.try_into().unwrap());
        term.resize(rows, cols, &mut kept);
        let diff = differences(theirs.screen(), &term);
        assert!(diff.is_empty(), "seed {seed} to {rows}x{cols}: {diff:#?}");
        assert_eq!(
            theirs.callbacks().0,
            kept.0,
            "seed {seed} to {rows}x{cols} after {:?}",
            String::from_utf8_lossy(&all)
        );
    }
}

/// Draws `term` on a client that shows `shown` (`None`: anything), as `Screen::draw` does.
fn draw(term: &Terminal, shown: &mut Option<Shown>) -> Vec<u8> {
    let mut out = Vec::new();
    match shown {
        Some(s) if s.size() == term.size() => s.draw_changes(term, &mut out),
        _ => *shown = Some(Shown::draw_all(term, &mut out)),
    }
    out
}

#[test]
fn what_a_client_is_drawn_makes_a_fresh_terminal_show_the_screen() {
    for seed in 0..300 {
        let mut g = Gen::new(seed);
        let (rows, cols) = (1 + g.below(7) as u16, 1 + g.below(14) as u16);
        let mut term = Terminal::new(rows, cols);
        // What the client's terminal is: this emulator, and vt100.
        let mut client = Terminal::new(rows, cols);
        let mut other = reference(rows, cols);
        // Something on the client's terminal before it is drawn the first time.
        client.feed(b"\x1b[44mjunk\x1b[3;4r\x1b[?6h\x1b[4h", &mut ());
        other.process(b"\x1b[44mjunk\x1b[3;4r\x1b[?6h");
        let mut shown = None;
        let mut sent = Vec::new();
        for i in 0..40 {
            for _ in 0..=g.below(3) {
                // Anything, xterm's own too: the client's terminal is only drawn.
                term.feed(&g.step(false, true), &mut ());
            }
            if g.below(8) == 0 {
                shown = None;
            }
            let drawn = draw(&term, &mut shown);
            sent.extend_from_slice(&drawn);
            client.feed(&drawn, &mut ());
            other.process(&drawn);
            let context = format!(
                "seed {seed}, {rows}x{cols}, drawing {i}, sent {:?}",
                String::from_utf8_lossy(&sent)
            );
            assert_eq!(client.lines(), term.lines(), "{context}");
            assert_eq!(client.cursor(), term.cursor(), "{context}");
            assert_eq!(client.pen(), term.pen(), "{context}");
            assert_eq!(client.modes(), term.modes(), "{context}");
            assert!(!client.is_alternate(), "{context}");
            let diff = differences(other.screen(), &term);
            assert!(diff.is_empty(), "{context}: {diff:#?}");
            // Nothing changed since: nothing to draw.
            assert!(draw(&term, &mut shown).is_empty(), "{context}");
        }
    }
}

#[test]
fn a_row_is_drawn_from_its_first_change() {
    let mut term = Terminal::new(3, 20);
    term.feed(b"hello world\r\nsecond", &mut ());
    let mut shown = None;
    draw(&term, &mut shown);
    term.feed(b"\x1b[1;7Hthere", &mut ());
    let drawn = draw(&term, &mut shown);
    assert_eq!(drawn, b"\x1b[1;7Hthere\x1b[1;12H");
}

/// The screen's rows as text.
fn rows(term: &Terminal) -> Vec<String> {
    term.lines()
        .iter()
        .map(|line| {
            let mut text = String::new();
            write_text(line, &mut text);
            text
        })
        .collect()
}

fn fed(rows_: u16, cols: u16, bytes: &[u8]) -> (Terminal, Kept) {
    let mut term = Terminal::new(rows_, cols);
    let mut kept = Kept::default();
    term.feed(bytes, &mut kept);
    (term, kept)
}

#[test]
fn output_fed_a_byte_at_a_time_leaves_what_it_leaves_fed_at_once() {
    for seed in 0..200 {
        let mut g = Gen::new(seed);
        let bytes: Vec<u8> = (0..50).flat_map(|_| g.step(false, true)).collect();
        let (whole, kept) = fed(5, 11, &bytes);
        let mut term = Terminal::new(5, 11);
        let mut bytewise = Kept::default();
        for b in &bytes {
            term.feed(std::slice::from_ref(b), &mut bytewise);
        }
        let context = format!("seed {seed}: {:?}", String::from_utf8_lossy(&bytes));
        assert_eq!(term.lines(), whole.lines(), "{context}");
        assert_eq!(term.cursor(), whole.cursor(), "{context}");
        assert_eq!(term.pen(), whole.pen(), "{context}");
        assert_eq!(term.modes(), whole.modes(), "{context}");
        assert_eq!(bytewise.0, kept.0, "{context}");
    }
}

#[test]
fn where_vt100_is_not_xterm_xterm_is_followed() {
    // After a character in the last column the cursor is in that column: a backspace goes
    // to the one before it, an erase starts there.
    let (t, _) = fed(2, 5, b"abcde\x08X");
    assert_eq!(rows(&t)[0], "abcXe");
    let (t, _) = fed(2, 5, b"abcde\x1b[K");
    assert_eq!(rows(&t)[0], "abcd");
    assert!(!t.cursor().pending);
    // Insert mode pushes the rest of the row right; without auto-wrap the last column is
    // written over.
    let (t, _) = fed(2, 6, b"abcd\r\x1b[4hXY\x1b[4lZ");
    assert_eq!(rows(&t)[0], "XYZbcd");
    let (t, _) = fed(2, 4, b"\x1b[?7labcdef");
    assert_eq!(rows(&t), ["abcf", ""]);
    // Tab stops set and cleared; IND, NEL; SCOSC/SCORC; LNM.
    let (t, _) = fed(3, 20, b"\x1b[3g\x1b[5G\x1bH\rx\ty\tz");
    assert_eq!(rows(&t)[0], "x   y              z");
    let (t, _) = fed(3, 10, b"ab\x1bDc\x1bEd\x1b[s\x1b[3;5He\x1b[uf\x1b[20h\ng");
    assert_eq!(rows(&t), ["  c", "df  e", "g"]);
    assert_eq!(
        t.cursor(),
        Cursor {
            row: 2,
            col: 1,
            pending: false
        }
    );
    // The alternate screen keeps the cursor where it was; 1047 clears it on leaving.
    let (t, _) = fed(
        3,
        10,
        b"ab\x1b[?1049hc\x1b[?1049ld\x1b[?1047hxy\x1b[?1047l\x1b[?47h",
    );
    assert_eq!(rows(&t), ["", "", ""]);
    assert_eq!(t.cursor().col, 5);
    // A title may hold `;`.
    let (t, _) = fed(3, 10, b"\x1b]2;a;b\x07");
    assert_eq!(t.title(), Some("a;b"));
    // Origin mode counts VPA's rows from the region's top.
    let (t, _) = fed(5, 10, b"\x1b[2;4r\x1b[?6h\x1b[2dx");
    assert_eq!(t.cursor().row, 2);
    // RI on the top row above the region moves nothing.
    let (t, _) = fed(5, 10, b"top\x1b[3;4r\x1b[1;1H\x1bM");
    assert_eq!(rows(&t)[0], "top");
}

#[test]
fn the_scrollback_is_erased_by_ed_3_and_a_larger_screen_grows_at_the_bottom() {
    let (mut t, mut kept) = fed(2, 10, b"1\r\n2\r\n3\r\n4");
    assert_eq!(kept.0, ["1", "2"]);
    t.feed(b"\x1b[3J", &mut kept);
    assert!(kept.0.is_empty());
    t.resize(4, 10, &mut kept);
    assert_eq!(rows(&t), ["3", "4", "", ""]);
    assert_eq!(
        t.cursor(),
        Cursor {
            row: 1,
            col: 1,
            pending: false
        }
    );
    // Smaller again: the rows above the cursor's go to the scrollback.
    t.feed(b"\r\n5", &mut kept);
    t.resize(1, 3, &mut kept);
    assert_eq!(rows(&t), ["5"]);
    assert_eq!(kept.0, ["3", "4"]);
}

#[test]
fn a_cell_of_the_screen_takes_sixteen_bytes() {
    assert_eq!(std::mem::size_of::<Cell>(), 16);
}

/// Bytes a program may write that no generator above would: any byte at all, sequences with
/// parameters far out of range, strings cut off, sizes from one cell up.
fn garbage(g: &mut Gen) -> Vec<u8> {
    const PIECES: [&[u8]; 14] = [
        b"\x1b[65535;65535H",
        b"\x1b[99999@",
        b"\x1b[99999P",
        b"\x1b[99999L",
        b"\x1b[99999M",
        b"\x1b[65535X",
        b"\x1b[65535b",
        b"\x1b[0;65535r",
        b"\x1b[65535;1r",
        b"\x1b[?1049h\x1b[?6h\x1b[65535d",
        b"\x1b[38;2;999;999;999;48;5;999m",
        b"\x1b]2;\xff\xfe",
        b"\x1bP\x1b[",
        b"\xf0\x9f",
    ];
    let mut out = Vec::new();
    for _ in 0..=g.below(6) {
        if g.below(2) == 0 {
            out.extend_from_slice(PIECES[g.below(PIECES.len() as u64) as usize]);
        } else {
            for _ in 0..=g.below(24) {
                out.push(g.below(256) as u8);
            }
        }
    }
    out
}

#[test]
fn any_bytes_and_any_size_leave_a_screen_that_can_be_drawn_and_read() {
    for seed in 0..400 {
        let mut g = Gen::new(seed);
        let mut term = Terminal::new(1 + g.below(30) as u16, 1 + g.below(100) as u16);
        let mut kept = Kept::default();
        let mut shown = None;
        for _ in 0..30 {
            term.feed(&garbage(&mut g), &mut kept);
            if g.below(6) == 0 {
                let (rows, cols) = (1 + g.below(30) as u16, 1 + g.below(100) as u16);
                term.resize(rows, cols, &mut kept);
            }
            let _ = draw(&term, &mut shown);
            let (rows, cols) = term.size();
            let cursor = term.cursor();
            assert!(
                cursor.row < rows && cursor.col < cols,
                "seed {seed}: {cursor:?}"
            );
            assert_eq!(term.lines().len(), usize::from(rows), "seed {seed}");
            assert!(
                term.lines().iter().all(|l| l.len() == usize::from(cols)),
                "seed {seed}"
            );
            let _ = term.prints_in_place(1 + g.below(4) as u16);
        }
    }
}

#[test]
fn the_queries_a_program_waits_on_are_answered_as_a_terminal_would() {
    let answers = |bytes: &[u8]| {
        let mut term = Terminal::new(10, 20);
        term.feed(bytes, &mut ());
        String::from_utf8(term.take_replies()).unwrap()
    };
    assert_eq!(answers(b"\x1b[5n"), "\x1b[0n");
    assert_eq!(answers(b"\x1b[6n"), "\x1b[1;1R");
    assert_eq!(answers(b"\x1b[3;5Hab\x1b[6n"), "\x1b[3;7R");
    // In origin mode the row counts from the region's top.
    assert_eq!(answers(b"\x1b[4;8r\x1b[?6h\x1b[2;3H\x1b[6n"), "\x1b[2;3R");
    assert_eq!(answers(b"\x1b[c"), "\x1b[?1;2c");
    assert_eq!(answers(b"\x1b[0c"), "\x1b[?1;2c");
    assert_eq!(answers(b"\x1b[>c"), "\x1b[>0;0;0c");
    // Several, in order; and what is not a query is not answered.
    assert_eq!(answers(b"\x1b[6n\x1b[5n"), "\x1b[1;1R\x1b[0n");
    assert_eq!(answers(b"\x1b[1c\x1b[7n\x1b[?6n text"), "");
    // Taken once.
    let mut term = Terminal::new(10, 20);
    term.feed(b"\x1b[5n", &mut ());
    assert!(!term.take_replies().is_empty());
    assert!(term.take_replies().is_empty());
}

/// Whether the parser is between sequences after `parts`, fed one after the other.
fn between_after(parts: &[&[u8]]) -> bool {
    let mut term = Terminal::new(3, 20);
    for part in parts {
        term.feed(part, &mut ());
    }
    term.between_sequences()
}

#[test]
fn the_parser_is_between_sequences_after_text_and_complete_sequences() {
    let ground: [&[u8]; 12] = [
        b"",
        b"plain text\r\n",
        "wide 日本語\r\n".as_bytes(),
        b"\x1b[1;31mred\x1b[0m",
        b"\x1b[?2004h$ ",
        b"\x1b(B",
        b"\x1b7saved\x1b8",
        b"\x1b]0;title\x1b\\after",
        b"\x07\x08\t",
        "🦀".as_bytes(),
        b"not \xff utf-8 \x80 inside",
        // A string ended by BEL (the old guess from the bytes alone could not tell).
        b"\x1b]0;title\x07",
    ];
    for bytes in ground {
        assert!(between_after(&[bytes]), "{bytes:?}");
    }
}

#[test]
fn a_sequence_or_a_character_cut_short_or_a_string_is_not_between_sequences() {
    let inside: [&[u8]; 9] = [
        b"\x1b",
        b"text\x1b[",
        b"\x1b[1;3",
        b"\x1b[?",
        b"\x1b(",
        b"\x1bPq#0\x1b",
        b"\xe6\x97",
        b"\x1b[0m\xe6",
        b"\xf0\x9f\xa6",
    ];
    for bytes in inside {
        assert!(!between_after(&[bytes]), "{bytes:?}");
    }
    // Plain bytes after a sequence cut short are its parameters.
    assert!(!between_after(&[b"\x1b[", b"31"]));
    // A sequence that completes in the next bytes leaves it between sequences again.
    assert!(between_after(&[b"\x1b[", b"31m"]));
    assert!(between_after(&[b"\x1b[1;3", b"1mx"]));
    // The rest of a character cut in two.
    assert!(between_after(&[b"\xe6\x97", b"\xa5"]));
}
