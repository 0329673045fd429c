//! One line of an agent's output log, as its keeper records it: `<time> <stream>| <text>`
//! (`stream` is `out`, `err` or `keeper`). The keeper writes lines this way; readiness probes
//! and `berth agent logs` read the text back out of them.

/// The record for `text` written to `stream` at `time_ms` (milliseconds since the epoch),
/// newline included.
pub fn record(time_ms: i64, stream: &str, text: &str) -> String {
    format!("{} {stream}| {text}\n", crate::time::utc(time_ms))
}

/// A record split into its prefix (time and stream, separator included) and the text the
/// program wrote; a line that is not a record is all text.
pub fn split(line: &str) -> (&str, &str) {
    match line.find("| ") {
        Some(i) => line.split_at(i + 2),
        None => ("", line),
    }
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
    }
}
