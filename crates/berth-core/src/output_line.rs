//! One line of an agent's output log, as its keeper records it: `<time> <stream>| <text>`
//! (`stream` is `out`, `err` or `keeper`). The keeper writes lines this way; readiness probes
//! and `berth agent logs` read the text back out of them.

/// The record for `text` written to `stream` at `time_ms` (milliseconds since the epoch),
/// newline included.
pub fn record(time_ms: i64, stream: &str, text: &str) -> String {
    format!("{}{text}\n", prefix(time_ms, stream))
}

/// What comes before the text of a record written to `stream` at `time_ms`: the same for
/// every line read at one moment.
pub fn prefix(time_ms: i64, stream: &str) -> String {
    format!("{} {stream}| ", crate::time::utc(time_ms))
}

/// A record split into its prefix (time and stream, separator included) and the text the
/// program wrote; a line that is not a record is all text.
pub fn split(line: &str) -> (&str, &str) {
    match line.find("| ") {
        Some(i) => line.split_at(i + 2),
        None => ("", line),
    }
}

/// The text of a record as a terminal shows it (`crate::plain_text`): what probes match.
pub fn shown_text(line: &str) -> String {
    crate::plain_text::plain(split(line).1)
}

/// A whole record with its text as a terminal shows it: what a person is shown.
pub fn shown(line: &str) -> String {
    format!("{}{}", split(line).0, shown_text(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_splits_back_into_its_prefix_and_text() {
        let r = record(1_795_397_382_762, "out", "hello | world");
        assert_eq!(r, "2026-11-23 01:29:42.762Z out| hello | world\n");
        assert_eq!(
            split(r.trim_end()),
            ("2026-11-23 01:29:42.762Z out| ", "hello | world")
        );
        assert_eq!(split("no prefix here"), ("", "no prefix here"));
        let coloured = record(0, "out", "\u{1b}[31mred\u{1b}[0m 50%\r100%");
        assert_eq!(shown_text(coloured.trim_end()), "100%50%");
        assert_eq!(
            shown(coloured.trim_end()),
            "1970-01-01 00:00:00.000Z out| 100%50%"
        );
    }
}
