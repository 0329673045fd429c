//! Output that a client can be sent as the program wrote it, instead of as a difference of two
//! screens: a key's echo. Comparing a client's screen with the keeper's costs a walk over every
//! cell (a third of the keeper's time per key); sending the echo as it is costs nothing.
//!
//! That is only right when every terminal does the same with the bytes as the keeper's
//! emulator did. [`in_place`] says so for printable ASCII written within the cursor's row, over
//! cells without wide characters, ending before the row's last column: each byte then becomes
//! the cell under the cursor, in the current colours, and the cursor moves one to the right —
//! nothing wraps, scrolls or depends on a mode a difference does not carry (a scroll region,
//! auto-wrap). And only when the emulator's parser was between sequences before the bytes
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
    let tail = &bytes[bytes.len().saturating_sub(4)..];
    for (i, b) in tail.iter().enumerate().rev() {
        let needs = match b {
            0x00..=0x7f => return false,
            0x80..=0xbf => continue,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            _ => 4,
        };
        return tail.len() - i < needs;
    }
    false
}

const ESC: u8 = 0x1b;

/// Whether `bytes`, written when the parser is between sequences, only put printable ASCII in
/// the cursor's row of `screen`, over cells without wide characters, ending before its last
/// column.
pub fn in_place(screen: &vt100::Screen, bytes: &[u8]) -> bool {
    let (_, cols) = screen.size();
    let (row, col) = screen.cursor_position();
    let Ok(n) = u16::try_from(bytes.len()) else {
        return false;
    };
    n > 0
        && col.checked_add(n).is_some_and(|end| end < cols.get())
        && bytes.iter().all(|b| (0x20..0x7f).contains(b))
        && (col..col + n).all(|c| {
            screen
                .cell(row, c)
                .is_some_and(|cell| !cell.is_wide() && !cell.is_wide_continuation())
        })
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

    fn screen(feed: &[u8]) -> vt100::Parser {
        let mut p = vt100::Parser::new(
            std::num::NonZeroU16::new(3).unwrap(),
            std::num::NonZeroU16::new(10).unwrap(),
            0,
        );
        p.process(feed);
        p
    }

    #[test]
    fn only_printable_ascii_within_the_row_over_narrow_cells_is_in_place() {
        assert!(in_place(screen(b"$ ").screen(), b"x"));
        assert!(in_place(screen(b"").screen(), b"123456789"));
        // Reaching the last column, wrapping, or nothing at all.
        assert!(!in_place(screen(b"").screen(), b"1234567890"));
        assert!(!in_place(screen(b"12345678").screen(), b"ab"));
        assert!(!in_place(screen(b"").screen(), b""));
        // Controls, escapes, anything but ASCII.
        for bytes in [
            &b"a\r"[..],
            b"\n",
            b"\x08",
            b"\x1b",
            b"\x07",
            "é".as_bytes(),
        ] {
            assert!(!in_place(screen(b"").screen(), bytes), "{bytes:?}");
        }
        // Over a wide character (or its second half).
        assert!(!in_place(screen("日\r".as_bytes()).screen(), b"x"));
        assert!(!in_place(screen("日\r\x1b[C".as_bytes()).screen(), b"x"));
        assert!(in_place(screen("日\r\x1b[2C".as_bytes()).screen(), b"x"));
    }
}
