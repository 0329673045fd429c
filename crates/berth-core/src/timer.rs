//! Timers: an agent's schedule of messages to itself, and when it fires next — plain functions
//! of a clock reading, so every case (missed fires, daylight-saving gaps and folds) is tested
//! with the clock the test chooses.
//!
//! A timer is one of
//! - `every D` (`30m`, `1h`): a fixed interval of real time from the moment it was made — it
//!   fires at `anchor + k·D`, whatever the wall clock does;
//! - `cron "M H DOM MON DOW"` (five fields, `croner`'s syntax): wall-clock times in the timer's
//!   zone. A time skipped by a spring-forward change fires once, right after the gap (a job at
//!   fixed times) or not at all (one with `*` or a step in minute or hour, which runs on at its
//!   next time); a time repeated by a fall-back change fires once, the first time, for a job at
//!   fixed times, and in both halves for an interval job (every 30 minutes stays every 30 real
//!   minutes) — the Open Cron Pattern Specification's rules, as `croner` implements them;
//! - `at DATE-TIME` (`2026-12-24T09:00`): once, at that wall-clock time in the timer's zone (a
//!   time in a gap is moved forward by the gap's length, a repeated one is the earlier).
//!
//! The daemon stores the next fire ([`Timer::next_after`]) and fires when the clock passes it
//! ([`Timer::due`]): a timer whose fires were missed (the daemon was down) fires once, for the
//! most recent missed time, and then goes on from the present — never once per missed period.
//! Each fire has an idempotency key ([`fire_key`]) so that it is queued once, even when the
//! daemon dies between queuing it and moving the timer on.

use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// The shortest interval an `every` timer may have.
pub const MIN_EVERY: Duration = Duration::from_secs(1);

/// Why a timer cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimerError {
    #[error("invalid interval {0:?}: use e.g. 30s, 30m or 2h (at least 1s)")]
    Every(String),
    #[error("invalid cron expression {text:?}: {why}")]
    Cron { text: String, why: String },
    #[error("invalid time {0:?}: use a local date and time like 2026-12-24T09:00")]
    At(String),
    #[error("unknown time zone {0:?}: use a name like Europe/Berlin or UTC")]
    Zone(String),
    #[error("{0} is in the past")]
    Past(String),
    #[error("the cron expression {0:?} never matches a time")]
    Never(String),
    #[error("a timer is one of --every, --cron or --at")]
    Kind,
}

/// What a timer follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Every(Duration),
    Cron(Box<croner::Cron>),
    At(DateTime),
}

impl Schedule {
    /// A schedule from its kind (`every`, `cron`, `at`) and its text, as stored and as typed.
    pub fn parse(kind: &str, text: &str) -> Result<Schedule, TimerError> {
        match kind {
            "every" => {
                let d = crate::duration::parse(text)
                    .ok()
                    .filter(|d| *d >= MIN_EVERY)
                    .ok_or_else(|| TimerError::Every(text.to_string()))?;
                Ok(Schedule::Every(d))
            }
            "cron" => {
                let parser = croner::parser::CronParser::builder()
                    .seconds(croner::parser::Seconds::Disallowed)
                    .year(croner::parser::Year::Disallowed)
                    .build();
                let cron = parser.parse(text).map_err(|e| TimerError::Cron {
                    text: text.to_string(),
                    why: e.to_string(),
                })?;
                Ok(Schedule::Cron(Box::new(cron)))
            }
            "at" => DateTime::from_str(text.trim())
                .map(Schedule::At)
                .map_err(|_| TimerError::At(text.to_string())),
            _ => Err(TimerError::Kind),
        }
    }

    /// `every`, `cron` or `at`.
    pub fn kind(&self) -> &'static str {
        match self {
            Schedule::Every(_) => "every",
            Schedule::Cron(_) => "cron",
            Schedule::At(_) => "at",
        }
    }

    /// The text [`Schedule::parse`] reads back.
    pub fn text(&self) -> String {
        match self {
            Schedule::Every(d) => crate::duration::show(*d),
            Schedule::Cron(c) => c.as_str().to_string(),
            Schedule::At(dt) => dt.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
        }
    }
}

/// The time zone a timer's wall-clock times are in, by its IANA name.
pub fn zone(name: &str) -> Result<TimeZone, TimerError> {
    TimeZone::get(name).map_err(|_| TimerError::Zone(name.to_string()))
}

/// A timer: its schedule, its zone, and the moment it was made (an `every` timer's anchor).
#[derive(Debug, Clone)]
pub struct Timer {
    pub schedule: Schedule,
    pub zone: TimeZone,
    pub anchor_ms: i64,
}

/// A fire: the time it was due, and the timer's next one (`None`: it never fires again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fire {
    pub scheduled_ms: i64,
    pub next_ms: Option<i64>,
}

impl Timer {
    /// The first fire strictly after `after_ms`, or `None` if there is none.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        match &self.schedule {
            Schedule::Every(d) => {
                let period = i64::try_from(d.as_millis()).ok()?.max(1);
                let k = if after_ms < self.anchor_ms {
                    1
                } else {
                    (after_ms - self.anchor_ms)
                        .div_euclid(period)
                        .checked_add(1)?
                };
                self.anchor_ms.checked_add(k.checked_mul(period)?)
            }
            Schedule::Cron(cron) => {
                let mut from = Timestamp::from_millisecond(after_ms)
                    .ok()?
                    .to_zoned(self.zone.clone());
                // croner counts in whole seconds: a start within a second could be answered
                // with that very second.
                loop {
                    let next = cron.find_next_occurrence(&from, false).ok()?;
                    let ms = next.timestamp().as_millisecond();
                    if ms > after_ms {
                        return Some(ms);
                    }
                    from = next;
                }
            }
            Schedule::At(dt) => {
                let ms = dt
                    .to_zoned(self.zone.clone())
                    .ok()?
                    .timestamp()
                    .as_millisecond();
                (ms > after_ms).then_some(ms)
            }
        }
    }

    /// The first fire of a timer made at `now_ms`: an error for an `at` in the past or a cron
    /// expression that never matches.
    pub fn first(&self, now_ms: i64) -> Result<i64, TimerError> {
        self.next_after(now_ms).ok_or_else(|| match &self.schedule {
            Schedule::At(_) => TimerError::Past(self.schedule.text()),
            _ => TimerError::Never(self.schedule.text()),
        })
    }

    /// Whether the timer, whose next fire is `next_ms`, fires at `now_ms`: once, however many
    /// times it was due since (the daemon was down), and then next after `now_ms`.
    pub fn due(&self, next_ms: i64, now_ms: i64) -> Option<Fire> {
        (now_ms >= next_ms).then(|| Fire {
            scheduled_ms: next_ms,
            next_ms: self.next_after(now_ms),
        })
    }
}

/// The idempotency key of a timer's fire: one item per timer and due time.
pub fn fire_key(timer_id: i64, scheduled_ms: i64) -> String {
    format!("timer:{timer_id}:{scheduled_ms}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(zone: &str, civil: &str) -> i64 {
        DateTime::from_str(civil)
            .unwrap()
            .to_zoned(TimeZone::get(zone).unwrap())
            .unwrap()
            .timestamp()
            .as_millisecond()
    }

    fn utc(text: &str) -> i64 {
        Timestamp::from_str(text).unwrap().as_millisecond()
    }

    fn timer(kind: &str, text: &str, zone: &str, anchor_ms: i64) -> Timer {
        Timer {
            schedule: Schedule::parse(kind, text).unwrap(),
            zone: super::zone(zone).unwrap(),
            anchor_ms,
        }
    }

    /// The fires after `from_ms`, `n` of them, each the next after the one before.
    fn fires(t: &Timer, from_ms: i64, n: usize) -> Vec<i64> {
        let mut out = Vec::new();
        let mut after = from_ms;
        for _ in 0..n {
            let Some(next) = t.next_after(after) else {
                break;
            };
            out.push(next);
            after = next;
        }
        out
    }

    #[test]
    fn every_fires_at_whole_periods_from_its_anchor() {
        let t = timer("every", "30m", "UTC", 1_000);
        let p = 30 * 60 * 1000;
        assert_eq!(t.next_after(1_000), Some(1_000 + p));
        assert_eq!(t.next_after(0), Some(1_000 + p), "before the anchor");
        assert_eq!(t.next_after(1_000 + p - 1), Some(1_000 + p));
        assert_eq!(
            t.next_after(1_000 + p),
            Some(1_000 + 2 * p),
            "strictly after"
        );
        assert_eq!(
            fires(&t, 1_000, 3),
            vec![1_000 + p, 1_000 + 2 * p, 1_000 + 3 * p]
        );
    }

    #[test]
    fn every_counts_real_time_across_a_clock_change() {
        // New York springs forward at 2026-03-08 02:00 EST.
        let anchor = at("America/New_York", "2026-03-08T01:00");
        let t = timer("every", "1h", "America/New_York", anchor);
        let got = fires(&t, anchor, 2);
        assert_eq!(got, vec![anchor + 3_600_000, anchor + 7_200_000]);
        assert_eq!(got[0], at("America/New_York", "2026-03-08T03:00"));
    }

    #[test]
    fn a_missed_period_fires_once_then_goes_on_from_now() {
        let t = timer("every", "10s", "UTC", 0);
        // Due at 10 s; the daemon comes back at 95 s.
        let fire = t.due(10_000, 95_000).unwrap();
        assert_eq!(
            fire,
            Fire {
                scheduled_ms: 10_000,
                next_ms: Some(100_000)
            }
        );
        assert_eq!(t.due(100_000, 99_999), None, "not yet");
        assert_eq!(
            t.due(100_000, 100_000).map(|f| f.next_ms),
            Some(Some(110_000)),
            "due exactly on time"
        );

        let c = timer("cron", "0 9 * * *", "Europe/Berlin", 0);
        let due = at("Europe/Berlin", "2026-06-01T09:00");
        let back = at("Europe/Berlin", "2026-06-05T12:00");
        let fire = c.due(due, back).unwrap();
        assert_eq!(fire.scheduled_ms, due);
        assert_eq!(
            fire.next_ms,
            Some(at("Europe/Berlin", "2026-06-06T09:00")),
            "four missed mornings fire once"
        );
    }

    #[test]
    fn cron_weekdays_keep_their_wall_clock_time_across_daylight_saving() {
        let t = timer("cron", "0 9 * * 1-5", "Europe/Berlin", 0);
        // Berlin springs forward on Sunday 2026-03-29.
        let got = fires(&t, at("Europe/Berlin", "2026-03-26T12:00"), 4);
        assert_eq!(
            got,
            vec![
                utc("2026-03-27T08:00:00Z"), // Friday, CET (+01)
                utc("2026-03-30T07:00:00Z"), // Monday, CEST (+02)
                utc("2026-03-31T07:00:00Z"),
                utc("2026-04-01T07:00:00Z"),
            ]
        );
        // And back on Sunday 2026-10-25.
        let got = fires(&t, at("Europe/Berlin", "2026-10-23T12:00"), 1);
        assert_eq!(got, vec![utc("2026-10-26T08:00:00Z")]);
    }

    #[test]
    fn a_fixed_cron_time_in_a_gap_fires_once_right_after_it() {
        // 2026-03-08 02:30 does not exist in New York (02:00 EST → 03:00 EDT).
        let t = timer("cron", "30 2 * * *", "America/New_York", 0);
        let got = fires(&t, at("America/New_York", "2026-03-07T12:00"), 3);
        assert_eq!(
            got,
            vec![
                utc("2026-03-08T07:00:00Z"), // 03:00 EDT, as the clock jumps over 02:30
                utc("2026-03-09T06:30:00Z"), // 02:30 EDT
                utc("2026-03-10T06:30:00Z"),
            ]
        );
    }

    #[test]
    fn a_fixed_cron_time_in_a_fold_fires_once() {
        // 2026-11-01 01:30 happens twice in New York (02:00 EDT → 01:00 EST).
        let t = timer("cron", "30 1 * * *", "America/New_York", 0);
        let got = fires(&t, at("America/New_York", "2026-10-31T12:00"), 2);
        assert_eq!(
            got,
            vec![utc("2026-11-01T05:30:00Z"), utc("2026-11-02T06:30:00Z")]
        );
    }

    #[test]
    fn an_interval_cron_runs_in_both_halves_of_a_fold() {
        let t = timer("cron", "*/30 * * * *", "America/New_York", 0);
        let got = fires(&t, utc("2026-11-01T04:45:00Z"), 5);
        assert_eq!(
            got,
            vec![
                utc("2026-11-01T05:00:00Z"), // 01:00 EDT
                utc("2026-11-01T05:30:00Z"), // 01:30 EDT
                utc("2026-11-01T06:00:00Z"), // 01:00 EST
                utc("2026-11-01T06:30:00Z"), // 01:30 EST
                utc("2026-11-01T07:00:00Z"), // 02:00 EST
            ]
        );
    }

    #[test]
    fn an_interval_cron_skips_the_gap() {
        let t = timer("cron", "*/30 * * * *", "America/New_York", 0);
        let got = fires(&t, utc("2026-03-08T06:45:00Z"), 3);
        assert_eq!(
            got,
            vec![
                utc("2026-03-08T07:00:00Z"), // 03:00 EDT (02:00 EST never was)
                utc("2026-03-08T07:30:00Z"),
                utc("2026-03-08T08:00:00Z"),
            ]
        );
    }

    #[test]
    fn cron_within_a_second_never_answers_the_same_time() {
        let t = timer("cron", "* * * * *", "UTC", 0);
        let start = utc("2026-01-01T00:00:00Z");
        assert_eq!(t.next_after(start), Some(start + 60_000));
        assert_eq!(t.next_after(start + 500), Some(start + 60_000));
        assert_eq!(t.next_after(start - 1), Some(start));
    }

    #[test]
    fn at_fires_once_at_its_local_time() {
        let t = timer("at", "2026-12-24T09:00", "Europe/Berlin", 0);
        let when = utc("2026-12-24T08:00:00Z");
        assert_eq!(t.next_after(when - 1), Some(when));
        assert_eq!(t.next_after(when), None, "once");
        assert_eq!(t.first(when - 1), Ok(when));
        assert!(matches!(t.first(when), Err(TimerError::Past(_))));
        assert_eq!(
            t.due(when, when + 5_000),
            Some(Fire {
                scheduled_ms: when,
                next_ms: None
            })
        );
    }

    #[test]
    fn at_in_a_gap_moves_forward_and_in_a_fold_is_the_earlier() {
        let gap = timer("at", "2026-03-08T02:30", "America/New_York", 0);
        assert_eq!(gap.next_after(0), Some(utc("2026-03-08T07:30:00Z"))); // 03:30 EDT
        let fold = timer("at", "2026-11-01T01:30", "America/New_York", 0);
        assert_eq!(fold.next_after(0), Some(utc("2026-11-01T05:30:00Z"))); // 01:30 EDT
    }

    #[test]
    fn schedules_read_back_their_text() {
        for (kind, text) in [
            ("every", "30m"),
            ("every", "1.5s"),
            ("cron", "0 9 * * 1-5"),
            ("at", "2026-12-24T09:00:00"),
        ] {
            let s = Schedule::parse(kind, text).unwrap();
            assert_eq!(s.kind(), kind);
            assert_eq!(s.text(), text);
            assert_eq!(Schedule::parse(kind, &s.text()).unwrap(), s);
        }
        assert_eq!(
            Schedule::parse("at", "2026-12-24T09:00").unwrap().text(),
            "2026-12-24T09:00:00"
        );
    }

    #[test]
    fn bad_schedules_and_zones_are_refused_without_panicking() {
        for (kind, text) in [
            ("every", "0s"),
            ("every", "500ms"),
            ("every", "soon"),
            ("every", ""),
            ("cron", "0 9 * *"),
            ("cron", "61 * * * *"),
            ("cron", "0 0 9 * * *"),
            ("cron", ""),
            ("at", "tomorrow"),
            ("at", "2026-02-30T09:00"),
            ("at", ""),
            ("weekly", "1"),
        ] {
            assert!(Schedule::parse(kind, text).is_err(), "{kind} {text:?}");
        }
        assert!(zone("Mars/Olympus").is_err());
        assert!(zone("").is_err());
        assert!(zone("UTC").is_ok());
        let never = timer("cron", "0 0 30 2 *", "UTC", 0);
        assert!(matches!(never.first(0), Err(TimerError::Never(_))));
    }

    #[test]
    fn fire_keys_name_the_timer_and_the_time() {
        assert_eq!(fire_key(7, 1_000), "timer:7:1000");
        assert_ne!(fire_key(7, 1_000), fire_key(7, 2_000));
        assert_ne!(fire_key(7, 1_000), fire_key(8, 1_000));
    }
}
