//! Output that a client can be sent as the program wrote it, instead of as a difference of two
//! screens: a key's echo. Comparing a client's screen with the keeper's costs a walk over every
//! cell (a third of the keeper's time per key); sending the echo as it is costs nothing.
//!
//! That is only right when every terminal does the same with the bytes as the keeper's
//! emulator did. [`in_place`] says so for printable ASCII written within the cursor's row, over
//! cells without wide characters, ending before the row's last column: each byte then becomes
//! the cell under the cursor, in the current colours, and the cursor moves one to the right —
//! nothing wraps, scrolls or depends on a mode a difference does not carry (a scroll region,
//! auto-wrap, insert mode). And only when the emulator's parser is between sequences before the
//! bytes, with no character cut in two (printable bytes inside an escape sequence are its
//! parameters): the emulator knows (`Terminal::between_sequences`).

use super::vt::Terminal;

/// Whether `bytes`, written now, only put printable ASCII in the cursor's row of `term`, over
/// cells without wide characters, ending before its last column, and not in insert mode —
/// the parser being between sequences.
pub fn in_place(term: &Terminal, bytes: &[u8]) -> bool {
    let Ok(n) = u16::try_from(bytes.len()) else {
        return false;
    };
    n > 0
        && term.between_sequences()
        && bytes.iter().all(|b| (0x20..0x7f).contains(b))
        && term.prints_in_place(n)
}

#[cfg(test)]
mod tests {
    use super::*;

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
