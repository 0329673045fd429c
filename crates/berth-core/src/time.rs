//! Rendering timestamps (milliseconds since the Unix epoch) in UTC or in a given time zone,
//! without a clock or a locale (`jiff`).

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// `2026-11-22 08:15:02.123Z`.
pub fn utc(ms: i64) -> String {
    shown(ms, "%Y-%m-%d %H:%M:%S%.3fZ")
}

/// `20261122-081502`: sortable, and safe in file and ref names.
pub fn compact_utc(ms: i64) -> String {
    shown(ms, "%Y%m%d-%H%M%S")
}

/// `2026-12-24 09:00:00 CET`: the wall-clock time in `zone`, with the zone's abbreviation.
pub fn local(ms: i64, zone: &TimeZone) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(t) => t
            .to_zoned(zone.clone())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        Err(_) => out_of_range(ms),
    }
}

fn shown(ms: i64, format: &str) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime(format).to_string(),
        Err(_) => out_of_range(ms),
    }
}

/// A time beyond the years -9999..=9999, as it was given.
fn out_of_range(ms: i64) -> String {
    format!("{ms}ms after 1970")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_known_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000Z");
        assert_eq!(utc(1_795_305_600_123), "2026-11-22 00:00:00.123Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00.000Z");
        assert_eq!(utc(-1), "1969-12-31 23:59:59.999Z");
        assert_eq!(compact_utc(1_795_397_382_762), "20261123-012942");
    }

    #[test]
    fn renders_local_time_with_its_zone() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(local(1_798_099_200_000, &berlin), "2026-12-24 09:00:00 CET");
        assert_eq!(
            local(1_782_284_400_000, &berlin),
            "2026-06-24 09:00:00 CEST"
        );
    }

    #[test]
    fn never_panics_at_the_extremes() {
        for ms in [i64::MIN, i64::MIN / 2, i64::MAX / 2, i64::MAX, 0, 1] {
            let _ = utc(ms);
            let _ = compact_utc(ms);
            let _ = local(ms, &TimeZone::UTC);
        }
    }
}
