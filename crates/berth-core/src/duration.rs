//! Human durations as berth accepts them on the command line and in `berth.toml`:
//! `250ms`, `10s`, `2m`, `1h`, or a bare number of seconds (`1.5`).

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: use e.g. 250ms, 10s, 2m, 1h or a number of seconds")]
pub struct DurationError(pub String);

pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    let err = || DurationError(text.to_string());
    let (number, unit_secs) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = number.trim().parse().map_err(|_| err())?;
    let secs = value * unit_secs;
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(secs))
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
    }

    #[test]
    fn rejects_nonsense_without_panicking() {
        for bad in ["", "s", "-1s", "1d", "NaN", "inf", "1e300", "ten"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
