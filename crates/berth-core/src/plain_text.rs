//! A line of a terminal program's output as a person reads it on the screen: escape sequences
//! (colours, cursor movement, titles) removed, carriage returns and backspaces applied, other
//! control characters dropped. `berth agent logs` shows lines this way unless `--raw`.

/// The visible text of one line of output.
pub fn plain(line: &str) -> String {
    let mut out: Vec<char> = Vec::with_capacity(line.len());
    let mut col: usize = 0;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape(&mut chars),
            '\r' => col = 0,
            '\u{8}' => col = col.saturating_sub(1),
            '\t' => put(&mut out, &mut col, '\t'),
            c if c.is_control() => {}
            c => put(&mut out, &mut col, c),
        }
    }
    out.into_iter().collect()
}

/// Writes `c` at column `col` (over what is there, as a terminal does) and moves on.
fn put(out: &mut Vec<char>, col: &mut usize, c: char) {
    if *col < out.len() {
        out[*col] = c;
    } else {
        out.push(c);
    }
    *col += 1;
}

/// Skips one escape sequence; the ESC itself is already read.
fn skip_escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match chars.next() {
        // CSI: parameters and intermediates up to a final byte in `@`..=`~`.
        Some('[') => {
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
        // OSC, DCS, SOS, PM, APC: up to BEL or the string terminator ESC `\`.
        Some(']' | 'P' | 'X' | '^' | '_') => {
            while let Some(c) = chars.next() {
                if c == '\u{7}' {
                    break;
                }
                if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                    chars.next();
                    break;
                }
            }
        }
        // nF (e.g. `ESC ( B`): intermediates, then one final character.
        Some(' '..='/') => {
            while chars.next_if(|c| (' '..='/').contains(c)).is_some() {}
            chars.next();
        }
        // Any other two-character escape (`ESC =`, `ESC 7`, `ESC M`…), or a lone ESC at the end.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::plain;

    #[test]
    fn what_a_terminal_would_show() {
        let cases: &[(&str, &str)] = &[
            ("plain text", "plain text"),
            (
                "\u{1b}[31mred\u{1b}[0m and \u{1b}[1;32mbold green\u{1b}[m",
                "red and bold green",
            ),
            ("\u{1b}[38;5;208morange\u{1b}[39m", "orange"),
            ("\u{1b}[2J\u{1b}[5;10Hhello", "hello"),
            ("\u{1b}[?25l\u{1b}[?1049hfull screen", "full screen"),
            ("\u{1b}]0;a title\u{7}after", "after"),
            ("\u{1b}]2;title\u{1b}\\after", "after"),
            ("\u{1b}(Bcharset", "charset"),
            ("\u{1b}=\u{1b}>keypad", "keypad"),
            ("50%\r100%", "100%"),
            ("abcdef\rXY", "XYcdef"),
            ("ab\u{8}c", "ac"),
            ("tab\there", "tab\there"),
            ("bell\u{7} and nul\u{0}", "bell and nul"),
            ("ünïcödé \u{1b}[4mtext\u{1b}[24m", "ünïcödé text"),
            ("cut short \u{1b}[3", "cut short "),
            ("lone escape at the end\u{1b}", "lone escape at the end"),
            ("", ""),
        ];
        for (raw, shown) in cases {
            assert_eq!(plain(raw), *shown, "{raw:?}");
        }
    }
}
