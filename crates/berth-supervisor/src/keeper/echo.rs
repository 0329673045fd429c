//! Output that a client can be sent as the program wrote it, instead of as a difference of two
//! screens: a key's echo. Comparing a client's screen with the keeper's costs a walk over every
//! cell (a third of the keeper's time per key); sending the echo as it is costs nothing.
//!
//! That is only right when every terminal does the same with the bytes as the keeper's
//! emulator did. [`in_place`] says so for printable ASCII written within the cursor's row, over
//! cells without wide characters, ending before the row's last column: each byte then becomes
//! the cell under the cursor, in the current colours, and the cursor moves one to the right —
//! nothing wraps, scrolls or depends on a mode a difference does not carry (a scroll region,
//! auto-wrap, insert mode). And only when the emulator's parser was between sequences before the bytes
//! (printable bytes inside an escape sequence are its parameters): [`ends_in_ground`] follows
//! that from one read to the next, erring towards "no".

/// Whether the parser is between sequences after `bytes`, given whether it was before them.
/// `false` whenever that cannot be told cheaply (a string sequence, a sequence cut short, a
/// character cut in two): the next output is then drawn as a difference.
pub fn ends_in_ground(was: bool, bytes: &[u8]) -> bool {
    let tail = match bytes.iter().rposition(|b| *b == ESC) {
        None => return was && !ends_mid_char(bytes),
        Some(at) => &bytes[at + 1..],
    };
    let rest = match tail.split_first() {
        // CSI: parameters, intermediates, then the final byte.
        Some((b'[', after)) => {
            let Some(end) = after.iter().position(|b| !(0x20..=0x3f).contains(b)) else {
                return false;
            };
            if !(0x40..=0x7e).contains(&after[end]) {
                return false;
            }
            &after[end + 1..]
        }
        // Those that begin a string (DCS, OSC, SOS, PM, APC) end later than we can tell.
        Some((b'P' | b']' | b'X' | b'^' | b'_', _)) => return false,
        // Intermediates then a final byte (`ESC ( B`), or a final byte alone (`ESC 7`, `ESC \`).
        Some((_, _)) => {
            let Some(end) = tail.iter().position(|b| !(0x20..=0x2f).contains(b)) else {
                return false;
            };
            if !(0x30..=0x7e).contains(&tail[end]) {
                return false;
            }
            &tail[end + 1..]
        }
        None => return false,
    };
    // What follows the last sequence: text and controls that start none.
    !ends_mid_char(rest)
}

/// Whether `bytes` end with the first bytes of a UTF-8 character and not the rest (bytes that
/// are not UTF-8 elsewhere become a replacement character and leave the parser where it was;
/// only the end of a read needs a look, not every byte of it).
fn ends_mid_char(bytes: &[u8]) -> bool {
    super::vt::cut_char(bytes) > 0
}

const ESC: u8 = 0x1b;

use super::vt::Terminal;

/// Whether `bytes`, written when the parser is between sequences, only put printable ASCII in
/// the cursor's row of `term`, over cells without wide characters, ending before its last
/// column, and not in insert mode.
pub fn in_place(term: &Terminal, bytes: &[u8]) -> bool {
    let Ok(n) = u16::try_from(bytes.len()) else {
        return false;
    };
    n > 0 && bytes.iter().all(|b| (0x20..0x7f).contains(b)) && term.prints_in_place(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parser_is_between_sequences_after_text_and_complete_sequences() {
        let ground: [&[u8]; 11] = [
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
        ];
        for bytes in ground {
            assert!(ends_in_ground(true, bytes), "{bytes:?}");
        }
    }

    #[test]
    fn a_sequence_or_a_character_cut_short_or_a_string_is_not_between_sequences() {
        let inside: [&[u8]; 10] = [
            b"\x1b",
            b"text\x1b[",
            b"\x1b[1;3",
            b"\x1b[?",
            b"\x1b(",
            b"\x1b]0;title\x07",
            b"\x1bPq#0\x1b",
            b"\xe6\x97",
            b"\x1b[0m\xe6",
            b"\xf0\x9f\xa6",
        ];
        for bytes in inside {
            assert!(!ends_in_ground(true, bytes), "{bytes:?}");
        }
        // Plain bytes after a sequence cut short may be its parameters: not known to end it.
        assert!(!ends_in_ground(false, b"31m"));
        // A sequence that completes in these bytes leaves it between sequences again.
        assert!(ends_in_ground(false, b"\x1b[0mx"));
    }

    fn screen(feed: &[u8]) -> Terminal {
        let mut t = Terminal::new(3, 10);
        t.feed(feed, &mut ());
        t
    }

    #[test]
    fn only_printable_ascii_within_the_row_over_narrow_cells_is_in_place() {
        assert!(in_place(&screen(b"$ "), b"x"));
        assert!(in_place(&screen(b""), b"123456789"));
        // Reaching the last column, wrapping, or nothing at all.
        assert!(!in_place(&screen(b""), b"1234567890"));
        assert!(!in_place(&screen(b"12345678"), b"ab"));
        assert!(!in_place(&screen(b""), b""));
        // Controls, escapes, anything but ASCII.
        for bytes in [
            &b"a\r"[..],
            b"\n",
            b"\x08",
            b"\x1b",
            b"\x07",
            "é".as_bytes(),
        ] {
            assert!(!in_place(&screen(b""), bytes), "{bytes:?}");
        }
        // Over a wide character (or its second half).
        assert!(!in_place(&screen("日\r".as_bytes()), b"x"));
        assert!(!in_place(&screen("日\r\x1b[C".as_bytes()), b"x"));
        assert!(in_place(&screen("日\r\x1b[2C".as_bytes()), b"x"));
        // In insert mode, which a client is never drawn.
        assert!(!in_place(&screen(b"\x1b[4h"), b"x"));
    }
}
