//! Pairing's settings that are decided here rather than read as they are: the time limit of a
//! stop's final sync (`git config berth.stopTimeout`).

use std::time::Duration;

use crate::duration::{self, DurationError};

/// How long a stop's final sync may take unless `berth.stopTimeout` says otherwise.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The final sync's time limit from the checkout's `berth.stopTimeout` (`None`: not set): the
/// default, or the duration it gives (`250ms`, `30s`, `2m`, or seconds). Zero is refused: a
/// stop could never sync.
pub fn stop_timeout(setting: Option<&str>) -> Result<Duration, DurationError> {
    let Some(text) = setting else {
        return Ok(STOP_TIMEOUT);
    };
    match duration::parse(text)? {
        d if d.is_zero() => Err(DurationError(text.to_string())),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_stop_timeout_setting() {
        let ok = |ms: u64| Ok(Duration::from_millis(ms));
        let bad = |t: &str| Err(DurationError(t.to_string()));
        let table: [(Option<&str>, Result<Duration, DurationError>); 8] = [
            (None, ok(15_000)),
            (Some("30s"), ok(30_000)),
            (Some("1500ms"), ok(1_500)),
            (Some("2m"), ok(120_000)),
            (Some("20"), ok(20_000)),
            (Some("0"), bad("0")),
            (Some("0ms"), bad("0ms")),
            (Some("soon"), bad("soon")),
        ];
        for (setting, want) in table {
            assert_eq!(stop_timeout(setting), want, "{setting:?}");
        }
    }
}
