//! Readiness and liveness probes: what a probe checks, how often, and when it counts as failed.
//!
//! A probe is one check ([`ProbeCheck`]) plus its timing ([`ProbeSpec`]):
//!
//! - `exec`: a command exits 0; `http`: a GET returns 2xx; `tcp`: a connection succeeds;
//!   `log`: a regular expression matches a line of output; `notify`: the process writes
//!   `READY=1` to `$BERTH_NOTIFY_SOCKET`. No probe at all means "ready when started".
//! - Attempts run every `interval`, each bounded by `timeout`; `threshold` consecutive failures
//!   count as failed; a readiness probe gives up after `deadline` overall.
//!
//! Probes are written two ways, both parsed here:
//!
//! - in `berth.toml`, as an inline table: `ready = { tcp = "127.0.0.1:5432", timeout = "60s" }`
//!   (see [`ProbeSpec`]'s serde form);
//! - on the command line, `berth agent new --ready tcp:127.0.0.1:5432` (see [`parse_cli`]).
//!
//! Nothing is executed here: the edge runs the attempts and feeds their outcomes to a
//! [`ProbeTracker`], which answers with a [`Verdict`]. The `log` pattern is only checked for
//! being non-empty; compiling the regular expression happens at the edge.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::command::{self, CommandError};
use crate::duration::{self, DurationError};

/// Time between two attempts, unless configured.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(500);
/// Bound on one attempt, unless configured.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Consecutive failures that count as failed, unless configured.
pub const DEFAULT_THRESHOLD: u32 = 3;
/// How long a readiness probe may take overall before berth gives up, unless configured.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

/// What one attempt checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeCheck {
    /// The command (run by a shell at the edge) exits 0.
    Exec { command: String },
    /// A GET of this `http://` URL returns a 2xx status.
    Http { url: String },
    /// A TCP connection to `HOST:PORT` succeeds.
    Tcp { address: String },
    /// This regular expression matches a line of the process's output.
    Log { pattern: String },
    /// The process writes `READY=1` to `$BERTH_NOTIFY_SOCKET`.
    Notify,
}

impl ProbeCheck {
    /// The kind as written in `berth.toml` and on the command line.
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeCheck::Exec { .. } => "exec",
            ProbeCheck::Http { .. } => "http",
            ProbeCheck::Tcp { .. } => "tcp",
            ProbeCheck::Log { .. } => "log",
            ProbeCheck::Notify => "notify",
        }
    }
}

impl fmt::Display for ProbeCheck {
    /// The command-line form ([`parse_cli`] reads it back).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeCheck::Exec { command } => write!(f, "exec:{command}"),
            ProbeCheck::Http { url } => write!(f, "http:{url}"),
            ProbeCheck::Tcp { address } => write!(f, "tcp:{address}"),
            ProbeCheck::Log { pattern } => write!(f, "log:{pattern}"),
            ProbeCheck::Notify => f.write_str("notify"),
        }
    }
}

/// A readiness probe that did not pass within its deadline: berth gives up on the process and
/// stops it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    pub check: ProbeCheck,
    /// The deadline that passed ([`ProbeSpec::deadline`]).
    pub after: Duration,
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "its readiness probe {} timed out: it did not pass within {}",
            self.check,
            duration::show(self.after)
        )
    }
}

/// A validated probe.
///
/// # The `berth.toml` form
///
/// An inline table (or a `[agent.NAME.ready]` table) with exactly one of `exec`, `http`, `tcp`,
/// `log` (strings) or `notify = true`, and optionally:
///
/// - `interval` (duration string, default `500ms`): time between attempts;
/// - `timeout` (duration string, default `60s`): the **overall** readiness deadline, i.e.
///   [`ProbeSpec::deadline`] — the spec's `ready = { http = "…", timeout = "60s" }` is a web
///   server allowed a minute to boot;
/// - `attempt_timeout` (duration string, default `5s`): the bound on **one** attempt, i.e.
///   [`ProbeSpec::timeout`];
/// - `threshold` (integer ≥ 1, default 3): consecutive failures that count as failed.
///
/// Any other key is an error. Durations are parsed with [`crate::duration::parse`]. The command
/// line ([`parse_cli`]) uses the same defaults. For liveness probes the deadline is not used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawProbe", into = "RawProbe")]
pub struct ProbeSpec {
    pub check: ProbeCheck,
    /// Time between two attempts.
    pub interval: Duration,
    /// Bound on one attempt (`attempt_timeout` in `berth.toml`).
    pub timeout: Duration,
    /// Consecutive failures that count as failed (≥ 1).
    pub threshold: u32,
    /// Readiness only: give up after this long overall (`timeout` in `berth.toml`).
    pub deadline: Option<Duration>,
}

impl ProbeSpec {
    /// A probe with the default timing.
    pub fn new(check: ProbeCheck) -> Self {
        ProbeSpec {
            check,
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_ATTEMPT_TIMEOUT,
            threshold: DEFAULT_THRESHOLD,
            deadline: Some(DEFAULT_DEADLINE),
        }
    }

    /// Checks every field; [`parse_cli`] and the `berth.toml` form only return validated specs.
    pub fn validate(&self) -> Result<(), ProbeError> {
        validate_check(&self.check)?;
        if self.threshold == 0 {
            return Err(ProbeError::Threshold(0));
        }
        if self.interval.is_zero() {
            return Err(ProbeError::Zero { field: "interval" });
        }
        if self.timeout.is_zero() {
            return Err(ProbeError::Zero {
                field: "attempt_timeout",
            });
        }
        if self.deadline.is_some_and(|d| d.is_zero()) {
            return Err(ProbeError::Zero { field: "timeout" });
        }
        Ok(())
    }
}

/// Why a probe is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// None or several of the kinds were given (listed in `given`).
    #[error("a probe needs exactly one of exec, http, tcp, log, notify{}", given_suffix(.given))]
    NotExactlyOne { given: Vec<&'static str> },
    /// The command-line form names no known kind.
    #[error(
        "unknown probe {0:?}: use none, notify, exec:COMMAND, http:URL, tcp:HOST:PORT or log:REGEX"
    )]
    UnknownKind(String),
    /// An `https://` URL: not supported yet.
    #[error("https is not supported yet in http probes ({0:?}); use an http:// URL")]
    Https(String),
    /// The URL does not start with `http://` (or has no host).
    #[error("http probe URL {0:?} must start with http:// and name a host")]
    NotHttp(String),
    /// The tcp address is not `HOST:PORT`.
    #[error("tcp probe address {address:?} must be HOST:PORT with a numeric port: {reason}")]
    BadAddress {
        address: String,
        reason: &'static str,
    },
    #[error("a log probe needs a non-empty pattern")]
    EmptyPattern,
    #[error("an exec probe needs a command that can run: {0}")]
    Command(CommandError),
    #[error("threshold must be between 1 and {max} (got {0})", max = u32::MAX)]
    Threshold(i64),
    /// A duration that must be positive is zero.
    #[error("{field} must be greater than zero")]
    Zero { field: &'static str },
    #[error("{field}: {error}")]
    Duration {
        field: &'static str,
        error: DurationError,
    },
}

fn given_suffix(given: &[&'static str]) -> String {
    if given.is_empty() {
        String::new()
    } else {
        format!(" (got {})", given.join(", "))
    }
}

fn validate_check(check: &ProbeCheck) -> Result<(), ProbeError> {
    match check {
        ProbeCheck::Exec { command } => {
            command::check(command).map_err(ProbeError::Command)?;
        }
        ProbeCheck::Http { url } => validate_url(url)?,
        ProbeCheck::Tcp { address } => validate_address(address)?,
        ProbeCheck::Log { pattern } => {
            if pattern.is_empty() {
                return Err(ProbeError::EmptyPattern);
            }
        }
        ProbeCheck::Notify => {}
    }
    Ok(())
}

fn validate_url(url: &str) -> Result<(), ProbeError> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Err(ProbeError::Https(url.to_string()));
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(ProbeError::NotHttp(url.to_string()));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ProbeError::NotHttp(url.to_string()));
    }
    Ok(())
}

fn validate_address(address: &str) -> Result<(), ProbeError> {
    let bad = |reason| {
        Err(ProbeError::BadAddress {
            address: address.to_string(),
            reason,
        })
    };
    let Some((host, port)) = address.rsplit_once(':') else {
        return bad("there is no ':PORT'");
    };
    if host.is_empty() {
        return bad("the host is empty");
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("the host contains whitespace");
    }
    // IPv6 literals are bracketed: [::1]:5432.
    let bracketed = host.starts_with('[') && host.ends_with(']') && host.len() > 2;
    if host.contains(':') && !bracketed {
        return bad("an IPv6 host must be in brackets, e.g. [::1]:5432");
    }
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return bad("the port is not a number");
    }
    match port.parse::<u16>() {
        Ok(0) => bad("the port is 0"),
        Ok(_) => Ok(()),
        Err(_) => bad("the port is greater than 65535"),
    }
}

/// Parses the command-line form of `berth agent new --ready PROBE`:
/// `tcp:127.0.0.1:5432`, `http:http://host/x`, `exec:CMD ARGS`, `log:REGEX`, `notify`, or
/// `none` (no probe: ready when started, `Ok(None)`). The timing is the default one
/// ([`ProbeSpec::new`]).
pub fn parse_cli(s: &str) -> Result<Option<ProbeSpec>, ProbeError> {
    let s = s.trim();
    let (kind, value) = match s.split_once(':') {
        Some((kind, value)) => (kind, Some(value)),
        None => (s, None),
    };
    let check = match (kind, value) {
        ("none", None) => return Ok(None),
        ("notify", None) => ProbeCheck::Notify,
        ("exec", v) => ProbeCheck::Exec {
            command: v.unwrap_or("").trim().to_string(),
        },
        ("http", v) => ProbeCheck::Http {
            url: v.unwrap_or("").trim().to_string(),
        },
        ("tcp", v) => ProbeCheck::Tcp {
            address: v.unwrap_or("").trim().to_string(),
        },
        ("log", v) => ProbeCheck::Log {
            pattern: v.unwrap_or("").to_string(),
        },
        _ => return Err(ProbeError::UnknownKind(s.to_string())),
    };
    let spec = ProbeSpec::new(check);
    spec.validate()?;
    Ok(Some(spec))
}

/// The `berth.toml` form, before validation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProbe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exec: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    http: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tcp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    log: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    notify: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    /// The overall readiness deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout: Option<String>,
    /// The bound on one attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attempt_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    threshold: Option<i64>,
}

fn duration_field(
    field: &'static str,
    text: Option<&str>,
    default: Duration,
) -> Result<Duration, ProbeError> {
    let d = match text {
        None => default,
        Some(t) => duration::parse(t).map_err(|error| ProbeError::Duration { field, error })?,
    };
    if d.is_zero() {
        return Err(ProbeError::Zero { field });
    }
    Ok(d)
}

impl TryFrom<RawProbe> for ProbeSpec {
    type Error = ProbeError;

    fn try_from(raw: RawProbe) -> Result<Self, ProbeError> {
        let mut given = Vec::new();
        let mut check = None;
        if let Some(command) = raw.exec {
            given.push("exec");
            check = Some(ProbeCheck::Exec { command });
        }
        if let Some(url) = raw.http {
            given.push("http");
            check = Some(ProbeCheck::Http { url });
        }
        if let Some(address) = raw.tcp {
            given.push("tcp");
            check = Some(ProbeCheck::Tcp { address });
        }
        if let Some(pattern) = raw.log {
            given.push("log");
            check = Some(ProbeCheck::Log { pattern });
        }
        if raw.notify == Some(true) {
            given.push("notify");
            check = Some(ProbeCheck::Notify);
        }
        let check = match check {
            Some(check) if given.len() == 1 => check,
            _ => return Err(ProbeError::NotExactlyOne { given }),
        };
        validate_check(&check)?;
        let interval = duration_field("interval", raw.interval.as_deref(), DEFAULT_INTERVAL)?;
        let timeout = duration_field(
            "attempt_timeout",
            raw.attempt_timeout.as_deref(),
            DEFAULT_ATTEMPT_TIMEOUT,
        )?;
        let deadline = duration_field("timeout", raw.timeout.as_deref(), DEFAULT_DEADLINE)?;
        let threshold = match raw.threshold {
            None => DEFAULT_THRESHOLD,
            Some(t) => match u32::try_from(t) {
                Ok(t) if t >= 1 => t,
                _ => return Err(ProbeError::Threshold(t)),
            },
        };
        Ok(ProbeSpec {
            check,
            interval,
            timeout,
            threshold,
            deadline: Some(deadline),
        })
    }
}

/// A duration as [`crate::duration::parse`] reads it back exactly.
fn format_duration(d: Duration) -> String {
    if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}", d.as_secs_f64())
    }
}

impl From<ProbeSpec> for RawProbe {
    fn from(spec: ProbeSpec) -> Self {
        let mut raw = RawProbe {
            interval: Some(format_duration(spec.interval)),
            timeout: spec.deadline.map(format_duration),
            attempt_timeout: Some(format_duration(spec.timeout)),
            threshold: Some(i64::from(spec.threshold)),
            ..RawProbe::default()
        };
        match spec.check {
            ProbeCheck::Exec { command } => raw.exec = Some(command),
            ProbeCheck::Http { url } => raw.http = Some(url),
            ProbeCheck::Tcp { address } => raw.tcp = Some(address),
            ProbeCheck::Log { pattern } => raw.log = Some(pattern),
            ProbeCheck::Notify => raw.notify = Some(true),
        }
        raw
    }
}

/// Where a probe stands after its latest attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The latest attempt succeeded.
    Passing,
    /// The latest attempts failed, but fewer than `threshold` in a row.
    Pending,
    /// `threshold` or more attempts in a row failed.
    Failing,
}

/// Counts consecutive failures of one probe. Pure: the edge runs the attempts and reports each
/// outcome; a success resets the count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTracker {
    threshold: u32,
    failures: u32,
}

impl ProbeTracker {
    pub fn new(spec: &ProbeSpec) -> Self {
        ProbeTracker {
            threshold: spec.threshold.max(1),
            failures: 0,
        }
    }

    /// Records one attempt and returns the verdict.
    pub fn record(&mut self, ok: bool) -> Verdict {
        if ok {
            self.failures = 0;
            return Verdict::Passing;
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures >= self.threshold {
            Verdict::Failing
        } else {
            Verdict::Pending
        }
    }

    /// Failures in a row so far.
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn toml_probe(text: &str) -> Result<ProbeSpec, String> {
        #[derive(Deserialize)]
        struct Doc {
            ready: ProbeSpec,
        }
        toml::from_str::<Doc>(&format!("ready = {text}\n"))
            .map(|d| d.ready)
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn the_toml_form_reads_every_field() {
        let spec = toml_probe(
            r#"{ tcp = "127.0.0.1:5432", interval = "1s", timeout = "60s", threshold = 3 }"#,
        )
        .unwrap();
        assert_eq!(
            spec,
            ProbeSpec {
                check: ProbeCheck::Tcp {
                    address: "127.0.0.1:5432".into()
                },
                interval: Duration::from_secs(1),
                timeout: DEFAULT_ATTEMPT_TIMEOUT,
                threshold: 3,
                deadline: Some(Duration::from_secs(60)),
            }
        );
        let spec = toml_probe(r#"{ http = "http://127.0.0.1:3000/health", timeout = "90s", attempt_timeout = "250ms", threshold = 1 }"#).unwrap();
        assert_eq!(
            spec.check,
            ProbeCheck::Http {
                url: "http://127.0.0.1:3000/health".into()
            }
        );
        assert_eq!(
            spec.deadline,
            Some(Duration::from_secs(90)),
            "timeout is the deadline"
        );
        assert_eq!(
            spec.timeout,
            Duration::from_millis(250),
            "attempt_timeout bounds one attempt"
        );
        assert_eq!(spec.threshold, 1);
        assert_eq!(spec.interval, DEFAULT_INTERVAL);
    }

    #[test]
    fn the_toml_form_has_the_documented_defaults_for_each_kind() {
        let cases = [
            (
                r#"{ exec = "pg_isready -q" }"#,
                ProbeCheck::Exec {
                    command: "pg_isready -q".into(),
                },
            ),
            (
                r#"{ http = "http://localhost/" }"#,
                ProbeCheck::Http {
                    url: "http://localhost/".into(),
                },
            ),
            (
                r#"{ tcp = "[::1]:80" }"#,
                ProbeCheck::Tcp {
                    address: "[::1]:80".into(),
                },
            ),
            (
                r#"{ log = "listening on" }"#,
                ProbeCheck::Log {
                    pattern: "listening on".into(),
                },
            ),
            ("{ notify = true }", ProbeCheck::Notify),
        ];
        for (text, check) in cases {
            assert_eq!(toml_probe(text), Ok(ProbeSpec::new(check)), "{text}");
        }
    }

    #[test]
    fn the_toml_form_rejects_invalid_probes_clearly() {
        let exactly_one = "a probe needs exactly one of exec, http, tcp, log, notify";
        let cases: &[(&str, &str)] = &[
            ("{}", exactly_one),
            (r#"{ interval = "1s" }"#, exactly_one),
            ("{ notify = false }", exactly_one),
            (
                r#"{ tcp = "a:1", http = "http://a/" }"#,
                "exactly one of exec, http, tcp, log, notify (got http, tcp)",
            ),
            (r#"{ tcp = "a:1", bogus = 1 }"#, "unknown field `bogus`"),
            (
                r#"{ tcp = "a:1", threshold = 0 }"#,
                "threshold must be between 1",
            ),
            (r#"{ tcp = "a:1", threshold = -2 }"#, "(got -2)"),
            (
                r#"{ tcp = "a:1", threshold = 5000000000 }"#,
                "(got 5000000000)",
            ),
            (
                r#"{ tcp = "a:1", interval = "0s" }"#,
                "interval must be greater than zero",
            ),
            (
                r#"{ tcp = "a:1", timeout = "0" }"#,
                "timeout must be greater than zero",
            ),
            (
                r#"{ tcp = "a:1", attempt_timeout = "0ms" }"#,
                "attempt_timeout must be greater than zero",
            ),
            (
                r#"{ tcp = "a:1", interval = "soon" }"#,
                "interval: invalid duration \"soon\"",
            ),
            (
                r#"{ tcp = "a:1", interval = 5 }"#,
                "invalid type: integer `5`",
            ),
            (r#"{ http = "https://a/" }"#, "https is not supported yet"),
            (r#"{ http = "ftp://a/" }"#, "must start with http://"),
            (r#"{ tcp = "localhost" }"#, "there is no ':PORT'"),
            (r#"{ log = "" }"#, "a log probe needs a non-empty pattern"),
            (
                r#"{ exec = "  " }"#,
                "an exec probe needs a command that can run: the command is empty",
            ),
        ];
        for (text, wanted) in cases {
            let err = toml_probe(text).unwrap_err();
            assert!(
                err.contains(wanted),
                "{text}: {err:?} should contain {wanted:?}"
            );
        }
    }

    #[test]
    fn the_serde_form_round_trips() {
        for text in [
            "tcp:127.0.0.1:5432",
            "http:http://a/b",
            "exec:true",
            "log:^ok$",
            "notify",
        ] {
            let mut spec = parse_cli(text).unwrap().unwrap();
            spec.interval = Duration::from_nanos(1_500_000_001);
            let json = serde_json::to_string(&spec).unwrap();
            assert_eq!(
                serde_json::from_str::<ProbeSpec>(&json).unwrap(),
                spec,
                "{json}"
            );
            let toml_text = toml::to_string(&spec).unwrap();
            assert_eq!(
                toml::from_str::<ProbeSpec>(&toml_text).unwrap(),
                spec,
                "{toml_text}"
            );
        }
    }

    #[test]
    fn parse_cli_reads_each_kind() {
        let cases = [
            (
                "tcp:127.0.0.1:5432",
                ProbeCheck::Tcp {
                    address: "127.0.0.1:5432".into(),
                },
            ),
            (
                "http:http://host/x",
                ProbeCheck::Http {
                    url: "http://host/x".into(),
                },
            ),
            (
                "exec:pg_isready -h /tmp",
                ProbeCheck::Exec {
                    command: "pg_isready -h /tmp".into(),
                },
            ),
            (
                "log:ready: (\\d+)",
                ProbeCheck::Log {
                    pattern: "ready: (\\d+)".into(),
                },
            ),
            (" notify ", ProbeCheck::Notify),
        ];
        for (text, check) in cases {
            let spec = parse_cli(text).unwrap().unwrap();
            assert_eq!(spec, ProbeSpec::new(check.clone()), "{text}");
            assert_eq!(spec.interval, Duration::from_millis(500));
            assert_eq!(spec.timeout, Duration::from_secs(5));
            assert_eq!(spec.threshold, 3);
            assert_eq!(spec.deadline, Some(Duration::from_secs(60)));
            assert_eq!(parse_cli(&check.to_string()).unwrap().unwrap().check, check);
        }
        assert_eq!(parse_cli("none"), Ok(None));
    }

    #[test]
    fn parse_cli_rejects_each_invalid_form() {
        use ProbeError::*;
        let bad = |address: &str, reason| BadAddress {
            address: address.into(),
            reason,
        };
        let cases = [
            ("", UnknownKind("".into())),
            ("ping:x", UnknownKind("ping:x".into())),
            ("notify:x", UnknownKind("notify:x".into())),
            ("none:x", UnknownKind("none:x".into())),
            ("TCP:a:1", UnknownKind("TCP:a:1".into())),
            ("exec:", Command(CommandError::Empty)),
            ("exec", Command(CommandError::Empty)),
            ("exec:a\0b", Command(CommandError::Nul)),
            ("log:", EmptyPattern),
            ("http:https://a/", Https("https://a/".into())),
            ("http:a/b", NotHttp("a/b".into())),
            ("http:http://", NotHttp("http://".into())),
            ("http:http:// a", NotHttp("http:// a".into())),
            ("tcp:", bad("", "there is no ':PORT'")),
            ("tcp:host", bad("host", "there is no ':PORT'")),
            ("tcp::80", bad(":80", "the host is empty")),
            ("tcp:host:", bad("host:", "the port is not a number")),
            (
                "tcp:host:http",
                bad("host:http", "the port is not a number"),
            ),
            ("tcp:host:-1", bad("host:-1", "the port is not a number")),
            (
                "tcp:host:65536",
                bad("host:65536", "the port is greater than 65535"),
            ),
            ("tcp:host:0", bad("host:0", "the port is 0")),
            (
                "tcp:::1:80",
                bad(
                    "::1:80",
                    "an IPv6 host must be in brackets, e.g. [::1]:5432",
                ),
            ),
            ("tcp:a b:80", bad("a b:80", "the host contains whitespace")),
        ];
        for (text, err) in cases {
            assert_eq!(parse_cli(text), Err(err), "{text:?}");
        }
        assert!(parse_cli("tcp:[::1]:5432").is_ok());
        assert!(parse_cli("tcp:localhost:65535").is_ok());
    }

    #[test]
    fn validate_catches_hand_built_specs() {
        let ok = ProbeSpec::new(ProbeCheck::Notify);
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(
            ProbeSpec {
                threshold: 0,
                ..ok.clone()
            }
            .validate(),
            Err(ProbeError::Threshold(0))
        );
        assert_eq!(
            ProbeSpec {
                interval: Duration::ZERO,
                ..ok.clone()
            }
            .validate(),
            Err(ProbeError::Zero { field: "interval" })
        );
        assert_eq!(
            ProbeSpec {
                timeout: Duration::ZERO,
                ..ok.clone()
            }
            .validate(),
            Err(ProbeError::Zero {
                field: "attempt_timeout"
            })
        );
        assert_eq!(
            ProbeSpec {
                deadline: Some(Duration::ZERO),
                ..ok.clone()
            }
            .validate(),
            Err(ProbeError::Zero { field: "timeout" })
        );
        assert_eq!(
            ProbeSpec {
                deadline: None,
                ..ok
            }
            .validate(),
            Ok(())
        );
    }

    fn tracker(threshold: u32) -> ProbeTracker {
        ProbeTracker::new(&ProbeSpec {
            threshold,
            ..ProbeSpec::new(ProbeCheck::Notify)
        })
    }

    #[test]
    fn threshold_one_fails_on_the_first_failure() {
        use Verdict::*;
        let mut t = tracker(1);
        let seen: Vec<_> = [false, true, false, false].map(|ok| t.record(ok)).into();
        assert_eq!(seen, [Failing, Passing, Failing, Failing]);
    }

    #[test]
    fn threshold_three_needs_three_failures_in_a_row_and_success_resets() {
        use Verdict::*;
        let mut t = tracker(3);
        let outcomes = [false, false, true, false, false, false, false, true, false];
        let seen: Vec<_> = outcomes.iter().map(|ok| t.record(*ok)).collect();
        assert_eq!(
            seen,
            [
                Pending, Pending, Passing, Pending, Pending, Failing, Failing, Passing, Pending
            ]
        );
        assert_eq!(t.consecutive_failures(), 1);
    }

    #[test]
    fn a_zero_threshold_behaves_like_one() {
        assert_eq!(tracker(0).record(false), Verdict::Failing);
    }

    proptest! {
        #[test]
        fn parse_cli_never_panics(s in ".*") {
            let _ = parse_cli(&s);
        }

        #[test]
        fn parse_cli_never_panics_on_probe_like_input(kind in "(tcp|http|exec|log|notify|none)", rest in ".{0,40}") {
            if let Ok(Some(spec)) = parse_cli(&format!("{kind}:{rest}")) {
                prop_assert_eq!(spec.validate(), Ok(()));
            }
        }

        #[test]
        fn the_tracker_fails_exactly_after_threshold_failures_in_a_row(
            threshold in 1u32..6,
            outcomes in proptest::collection::vec(any::<bool>(), 0..40),
        ) {
            let mut t = tracker(threshold);
            let mut run = 0;
            for ok in outcomes {
                run = if ok { 0 } else { run + 1 };
                let expected = if ok {
                    Verdict::Passing
                } else if run >= threshold {
                    Verdict::Failing
                } else {
                    Verdict::Pending
                };
                prop_assert_eq!(t.record(ok), expected);
            }
        }
    }
}
