//! Human durations as berth accepts them on the command line and in `berth.toml`:
//! `250ms`, `10s`, `2m`, `1h`, `1h30m`, or a bare number of seconds (`1.5`), read with `jiff`.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: use e.g. 250ms, 10s, 2m, 1h or a number of seconds")]
pub struct DurationError(pub String);

pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    let err = || DurationError(text.to_string());
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // A bare number of seconds.
        let secs: f64 = t.parse().map_err(|_| err())?;
        return Duration::try_from_secs_f64(secs).map_err(|_| err());
    }
    // Units as `jiff`'s friendly format reads them (`250ms`, `10s`, `2m`, `1h`, `1h30m`),
    // hours at most: a day is not always 24 hours.
    let d: jiff::SignedDuration = t.parse().map_err(|_| err())?;
    let d = Duration::try_from(d).map_err(|_| err())?;
    if d > Duration::from_secs(1_000_000_000) || t.contains(['d', 'w', 'y']) || t.contains("mo") {
        return Err(err());
    }
    Ok(d)
}

/// The shortest form [`parse`] reads back, to the millisecond: `250ms`, `10s`, `1.5s`, `2m`,
/// `1h`.
pub fn show(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".to_string(),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        1..=999 => format!("{ms}ms"),
        _ => format!("{}s", ms as f64 / 1000.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_shortest_form_that_reads_back() {
        for (ms, shown) in [
            (0, "0s"),
            (250, "250ms"),
            (1000, "1s"),
            (1500, "1.5s"),
            (61_250, "61.25s"),
            (120_000, "2m"),
            (5_400_000, "90m"),
            (3_600_000, "1h"),
        ] {
            let d = Duration::from_millis(ms);
            assert_eq!(show(d), shown);
            assert_eq!(parse(shown).unwrap(), d, "{shown} reads back");
        }
        assert_eq!(
            show(Duration::from_micros(1_500)),
            "1ms",
            "to the millisecond"
        );
    }

    #[test]
    fn accepts_every_unit() {
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse(" 1.5 ").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
    }

    #[test]
    fn rejects_nonsense_without_panicking() {
        for bad in [
            "",
            "s",
            "-1s",
            "1d",
            "2w",
            "1y",
            "1mo",
            "NaN",
            "inf",
            "1e300",
            "1e3",
            "ten",
            ".",
            "1..2",
            "99999999999999h",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
