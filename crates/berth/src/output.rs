//! Printing results: for a person by default, exact JSON with `--json`.

use serde::Serialize;

/// Prints `value` as one line of JSON.
pub fn json<T: Serialize>(value: &T) {
    match serde_json::to_string(value) {
        Ok(s) => println!("{s}"),
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
            println!("{}", text.trim_end());
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

/// Local-independent UTC time for a millisecond timestamp: `2026-11-22 08:15:02.123Z`.
pub fn time_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_in_utc() {
        assert_eq!(time_ms(0), "1970-01-01 00:00:00.000Z");
        assert_eq!(time_ms(1_795_305_600_123), "2026-11-22 00:00:00.123Z");
        assert_eq!(time_ms(951_782_400_000), "2000-02-29 00:00:00.000Z");
    }

    #[test]
    fn durations_pick_a_readable_unit() {
        assert_eq!(duration_ms(12), "12ms");
        assert_eq!(duration_ms(5_250), "5.2s");
        assert_eq!(duration_ms(184_000), "3m 4s");
        assert_eq!(duration_ms(3_720_000), "1h 2m");
    }
}
