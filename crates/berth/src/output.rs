//! Printing results: for a person by default, exact JSON with `--json`.

use std::io::Write;

use serde::Serialize;

/// Writes one line to standard output. A reader that went away (`berth … | head -1`) is not
/// an error worth more than silence.
fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// Prints `value` as one line of JSON.
pub fn json<T: Serialize>(value: &T) {
    match serde_json::to_string(value) {
        Ok(s) => line(&s),
        Err(e) => eprintln!("error: cannot encode the result as JSON: {e}"),
    }
}

/// Prints a result: `human` renders it for a person, `--json` prints the value itself.
pub fn emit<T: Serialize>(json_mode: bool, value: &T, human: impl FnOnce(&T) -> String) {
    if json_mode {
        json(value);
    } else {
        let text = human(value);
        if !text.is_empty() {
            line(text.trim_end());
        }
    }
}

/// `1h 2m`, `3m 4s`, `5.2s`, `12ms`.
pub fn duration_ms(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..=59 => format!("{}.{}s", s, (ms % 1000) / 100),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

/// `512 B`, `1.5 KiB`, `3.2 MiB`, `1.1 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A millisecond timestamp for a person: `2026-11-22 08:15:02.123Z`.
pub fn time_ms(ms: i64) -> String {
    berth_core::time::utc(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_pick_a_readable_unit() {
        assert_eq!(duration_ms(12), "12ms");
        assert_eq!(duration_ms(5_250), "5.2s");
        assert_eq!(duration_ms(184_000), "3m 4s");
        assert_eq!(duration_ms(3_720_000), "1h 2m");
    }

    #[test]
    fn sizes_pick_a_readable_unit() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
        assert_eq!(bytes(1 << 40), "1.0 TiB");
        assert_eq!(bytes(u64::MAX), "16777216.0 TiB");
    }
}
