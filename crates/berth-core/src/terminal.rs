//! Terminal agents (`--tty`, `tty = true`): the size of their pseudo-terminal, what may be typed
//! into one, how much scrollback their keeper keeps, and the key that detaches `berth attach`.
//!
//! Both the daemon (before it asks the keeper anything) and the keeper (before it touches the
//! terminal) check with these functions, so a bad size or input is refused before any side
//! effect, and the same way everywhere.

/// `TERM` of every terminal agent (unless its environment sets another).
pub const TERM: &str = "xterm-256color";
/// Lines of scrollback a keeper keeps above the screen unless configured.
pub const DEFAULT_SCROLLBACK: usize = 10_000;
/// The most lines of scrollback one may ask for (kept as text: some 10 MB of 80-column lines).
pub const MAX_SCROLLBACK: u32 = 100_000;
/// The most bytes one input request may type.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;
/// The largest terminal, either way.
pub const MAX_SIDE: u16 = 1000;

/// A terminal's size, both sides between 1 and [`MAX_SIDE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub rows: u16,
    pub cols: u16,
}

impl Size {
    /// 80×24 until a client says otherwise.
    pub const DEFAULT: Size = Size { rows: 24, cols: 80 };

    /// Checks a requested size.
    pub fn new(rows: u32, cols: u32) -> Result<Size, SizeError> {
        let side = |n: u32| u16::try_from(n).ok().filter(|n| (1..=MAX_SIDE).contains(n));
        match (side(rows), side(cols)) {
            (Some(rows), Some(cols)) => Ok(Size { rows, cols }),
            _ => Err(SizeError { rows, cols }),
        }
    }
}

/// A size no terminal can have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a terminal of {rows} rows and {cols} columns is not possible: both must be between 1 and \
     {MAX_SIDE}"
)]
pub struct SizeError {
    pub rows: u32,
    pub cols: u32,
}

/// Checks a configured scrollback (lines kept above the screen).
pub fn check_scrollback(lines: u32) -> Result<u32, ScrollbackError> {
    if lines > MAX_SCROLLBACK {
        return Err(ScrollbackError { lines });
    }
    Ok(lines)
}

/// More scrollback than a keeper keeps.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{lines} lines of scrollback are more than a keeper keeps (at most {MAX_SCROLLBACK})")]
pub struct ScrollbackError {
    pub lines: u32,
}

/// Input that is not typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("there is nothing to type: give text, `-` to read it from stdin, or --enter")]
    Empty,
    #[error("{bytes} bytes are more than one input may type ({MAX_INPUT_BYTES}); send it in parts")]
    TooLarge { bytes: usize },
}

/// The bytes typed for `text`, followed by Return (`\r`, what a terminal's Enter key sends)
/// when `enter`.
pub fn keystrokes(text: &str, enter: bool) -> Result<Vec<u8>, InputError> {
    let mut bytes = text.as_bytes().to_vec();
    if enter {
        bytes.push(b'\r');
    }
    check_input(&bytes)?;
    Ok(bytes)
}

/// Whether `bytes` may be typed in one request.
pub fn check_input(bytes: &[u8]) -> Result<(), InputError> {
    match bytes.len() {
        0 => Err(InputError::Empty),
        n if n > MAX_INPUT_BYTES => Err(InputError::TooLarge { bytes: n }),
        _ => Ok(()),
    }
}

/// The key that ends `berth attach` without touching the program: a control character, or none
/// (`--detach-key none`: only closing the terminal detaches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetachKey(pub Option<u8>);

impl DetachKey {
    /// `Ctrl-\`, as dtach and abduco use: no shell or editor binds it to anything a person
    /// types often (its usual meaning, SIGQUIT, is not what one sends an agent).
    pub const DEFAULT: DetachKey = DetachKey(Some(0x1c));

    /// Reads `ctrl-X` (X a letter or one of `@ \\ ] ^ _`, any case; `C-X` and `^X` too) or
    /// `none`. `ctrl-[` (Escape, the start of every arrow key) and `ctrl-m` (Return) would
    /// detach at the first arrow or Enter, so they are refused.
    pub fn parse(text: &str) -> Result<DetachKey, DetachKeyError> {
        let bad = |why: &str| DetachKeyError {
            given: text.to_string(),
            why: why.to_string(),
        };
        let lower = text.trim().to_ascii_lowercase();
        if lower == "none" {
            return Ok(DetachKey(None));
        }
        let key = ["ctrl-", "ctrl+", "c-", "^"]
            .iter()
            .find_map(|p| lower.strip_prefix(p))
            .ok_or_else(|| bad("it is not ctrl-KEY"))?;
        let &[k] = key.as_bytes() else {
            return Err(bad("it is not ctrl- and one key"));
        };
        let code = match k {
            b'a'..=b'z' => k - b'a' + 1,
            b'@' => 0,
            b'\\' => 0x1c,
            b']' => 0x1d,
            b'^' => 0x1e,
            b'_' => 0x1f,
            b'[' => return Err(bad("ctrl-[ is Escape, which every arrow key starts with")),
            _ => return Err(bad("only a letter or one of @ \\ ] ^ _ can follow ctrl-")),
        };
        if code == b'\r' {
            return Err(bad("ctrl-m is Return"));
        }
        Ok(DetachKey(Some(code)))
    }

    /// How a person types it (`ctrl-\\`), for messages.
    pub fn name(self) -> String {
        match self.0 {
            None => "none".to_string(),
            Some(0) => "ctrl-@".to_string(),
            Some(c @ 1..=26) => format!("ctrl-{}", char::from(b'a' + c - 1)),
            Some(c) => format!("ctrl-{}", char::from(c + 0x40)),
        }
    }

    /// Where in `keys` the detach key is, if it is there.
    pub fn find(self, keys: &[u8]) -> Option<usize> {
        let k = self.0?;
        keys.iter().position(|b| *b == k)
    }
}

/// A detach key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot use `{given}` as the detach key: {why}; give ctrl-LETTER, ctrl-\\, ctrl-], ctrl-^, \
     ctrl-_, ctrl-@ or none"
)]
pub struct DetachKeyError {
    pub given: String,
    pub why: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrollback_is_bounded() {
        assert_eq!(check_scrollback(0), Ok(0));
        assert_eq!(check_scrollback(MAX_SCROLLBACK), Ok(MAX_SCROLLBACK));
        let e = check_scrollback(MAX_SCROLLBACK + 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 100000"), "{e}");
    }

    #[test]
    fn detach_keys() {
        let table: &[(&str, Option<Option<u8>>)] = &[
            ("ctrl-\\", Some(Some(0x1c))),
            ("ctrl-]", Some(Some(0x1d))),
            ("Ctrl-A", Some(Some(0x01))),
            ("ctrl-z", Some(Some(0x1a))),
            ("C-q", Some(Some(0x11))),
            ("^]", Some(Some(0x1d))),
            ("ctrl+_", Some(Some(0x1f))),
            ("ctrl-^", Some(Some(0x1e))),
            ("ctrl-@", Some(Some(0x00))),
            ("none", Some(None)),
            (" NONE ", Some(None)),
            ("ctrl-[", None),
            ("ctrl-m", None),
            ("ctrl-", None),
            ("ctrl-ab", None),
            ("ctrl-1", None),
            ("alt-x", None),
            ("x", None),
            ("", None),
            ("ctrl-é", None),
        ];
        for (text, want) in table {
            let got = DetachKey::parse(text).ok().map(|k| k.0);
            assert_eq!(got, *want, "{text:?}");
        }
        assert_eq!(DetachKey::parse("ctrl-\\"), Ok(DetachKey::DEFAULT));
        let e = DetachKey::parse("ctrl-[").unwrap_err().to_string();
        assert!(
            e.contains("Escape") && e.contains("give ctrl-LETTER"),
            "{e}"
        );
    }

    #[test]
    fn detach_key_names_read_back() {
        for text in [
            "ctrl-\\", "ctrl-]", "ctrl-a", "ctrl-z", "ctrl-@", "ctrl-^", "ctrl-_", "none",
        ] {
            let key = DetachKey::parse(text).unwrap();
            assert_eq!(key.name(), text);
            assert_eq!(DetachKey::parse(&key.name()), Ok(key));
        }
    }

    #[test]
    fn the_detach_key_is_found_among_keys() {
        let k = DetachKey::DEFAULT;
        assert_eq!(k.find(b"abc\x1cdef"), Some(3));
        assert_eq!(k.find(b"abc"), None);
        assert_eq!(DetachKey(None).find(b"\x1c"), None);
    }

    type SizeCase = (u32, u32, Option<(u16, u16)>);
    type InputCase<'a> = (&'a str, bool, Result<&'a [u8], InputError>);

    #[test]
    fn sizes() {
        let table: &[SizeCase] = &[
            (24, 80, Some((24, 80))),
            (1, 1, Some((1, 1))),
            (1000, 1000, Some((1000, 1000))),
            (0, 80, None),
            (24, 0, None),
            (1001, 80, None),
            (24, 1001, None),
            (70_000, 80, None),
            (u32::MAX, u32::MAX, None),
        ];
        for &(rows, cols, want) in table {
            let got = Size::new(rows, cols).ok().map(|s| (s.rows, s.cols));
            assert_eq!(got, want, "{rows}x{cols}");
        }
        assert_eq!(Size::new(24, 80), Ok(Size::DEFAULT));
        let e = Size::new(0, 80).unwrap_err().to_string();
        assert!(
            e.contains("0 rows") && e.contains("between 1 and 1000"),
            "{e}"
        );
    }

    #[test]
    fn keystrokes_with_and_without_enter() {
        let big = "x".repeat(MAX_INPUT_BYTES);
        let table: &[InputCase] = &[
            ("ls", false, Ok(b"ls")),
            ("ls", true, Ok(b"ls\r")),
            ("", true, Ok(b"\r")),
            ("", false, Err(InputError::Empty)),
            ("\u{3}", false, Ok(b"\x03")),
            (&big, false, Ok(big.as_bytes())),
            (
                &big,
                true,
                Err(InputError::TooLarge {
                    bytes: MAX_INPUT_BYTES + 1,
                }),
            ),
        ];
        for (text, enter, want) in table {
            let got = keystrokes(text, *enter);
            assert_eq!(
                got.as_deref().map_err(Clone::clone),
                want.clone(),
                "{:?} {enter}",
                &text[..text.len().min(8)]
            );
        }
    }
}
