//! The web console's rules, as plain data and pure functions: one-time login codes, session
//! lifetimes, and the checks every request over a TCP listener passes (the `Host` header
//! against DNS rebinding, the `Origin` against cross-site requests, the session cookie).
//!
//! The daemon keeps codes in memory and sessions in its store; what is stored of either is a
//! digest, never the secret the browser holds.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// How long a login code printed by `berth web` may be used (once).
pub const LOGIN_CODE_TTL_MS: i64 = 60_000;
/// How long a session lasts after its login.
pub const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "berth_session";
/// The header a browser session sends its CSRF token in on every state-changing request.
pub const CSRF_HEADER: &str = "x-berth-csrf";
/// The most login codes outstanding at once; the oldest go first.
const MAX_CODES: usize = 64;

/// Why a login code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefused {
    #[error("this login link is unknown or was already used")]
    Unknown,
    #[error("this login link expired (links are valid for 60 s)")]
    Expired,
}

/// Login codes not yet used, by digest, with the time each stops being valid.
#[derive(Debug, Default, Clone)]
pub struct LoginCodes {
    codes: HashMap<String, i64>,
}

impl LoginCodes {
    /// Records a new code (its digest) made at `now_ms`.
    pub fn issue(&mut self, digest: String, now_ms: i64) {
        self.codes.retain(|_, expires| *expires > now_ms);
        while self.codes.len() >= MAX_CODES {
            let oldest = self
                .codes
                .iter()
                .min_by_key(|(_, expires)| **expires)
                .map(|(d, _)| d.clone());
            match oldest {
                Some(d) => self.codes.remove(&d),
                None => break,
            };
        }
        self.codes.insert(digest, now_ms + LOGIN_CODE_TTL_MS);
    }

    /// Uses a code: whatever the answer, it can never be used again.
    pub fn redeem(&mut self, digest: &str, now_ms: i64) -> Result<(), LoginRefused> {
        match self.codes.remove(digest) {
            None => Err(LoginRefused::Unknown),
            Some(expires) if now_ms >= expires => Err(LoginRefused::Expired),
            Some(_) => Ok(()),
        }
    }

    /// How many codes are outstanding (expired ones included until the next issue).
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
}

/// Whether a request's `Host` names this listener: the port must be the listener's, and the name
/// one that can only mean this machine (`localhost`, a loopback address) or the listener's own
/// address. A page served under another name (DNS rebinding) is refused.
pub fn host_allowed(host: Option<&str>, listener: SocketAddr) -> bool {
    let Some((name, port)) = host.and_then(split_host) else {
        return false;
    };
    if port != listener.port() {
        return false;
    }
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match name.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback() || ip == listener.ip(),
        Err(_) => false,
    }
}

/// `name:port` (with `[v6]:port`) split; `None` without an explicit port.
fn split_host(host: &str) -> Option<(&str, u16)> {
    let host = host.trim();
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => {
            let (name, after) = rest.split_once(']')?;
            (name, after.strip_prefix(':')?)
        }
        None => host.rsplit_once(':')?,
    };
    if name.is_empty() || name.contains(':') && !host.starts_with('[') {
        return None;
    }
    Some((name, port.parse().ok()?))
}

/// Whether a state-changing request comes from the console's own pages: its `Origin` must be
/// exactly `http://<host>` (the `Host` it was sent to, already checked), and `Sec-Fetch-Site`,
/// when the browser sends it, must say `same-origin`. A request without `Origin` is refused:
/// every browser sends it on such requests, so its absence means it is not from the console.
pub fn origin_allowed(origin: Option<&str>, sec_fetch_site: Option<&str>, host: &str) -> bool {
    if sec_fetch_site.is_some_and(|s| !s.eq_ignore_ascii_case("same-origin")) {
        return false;
    }
    origin.is_some_and(|o| o == format!("http://{host}"))
}

/// The value of the session cookie in a `Cookie` header, if any.
pub fn session_from_cookies(cookie_header: &str) -> Option<&str> {
    cookie_header.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == SESSION_COOKIE && !value.is_empty()).then_some(value)
    })
}

/// The `Set-Cookie` value that opens a session in the browser.
pub fn session_cookie(secret: &str) -> String {
    format!(
        "{SESSION_COOKIE}={secret}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_TTL_MS / 1000
    )
}

/// The `Set-Cookie` value that removes it.
pub fn cleared_cookie() -> String {
    format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_code_is_good_once_and_only_within_its_minute() {
        let mut codes = LoginCodes::default();
        codes.issue("a".into(), 1_000);
        assert_eq!(codes.redeem("a", 1_000 + LOGIN_CODE_TTL_MS - 1), Ok(()));
        assert_eq!(codes.redeem("a", 2_000), Err(LoginRefused::Unknown));

        codes.issue("b".into(), 1_000);
        assert_eq!(
            codes.redeem("b", 1_000 + LOGIN_CODE_TTL_MS),
            Err(LoginRefused::Expired)
        );
        // A late try used it up too.
        assert_eq!(codes.redeem("b", 1_001), Err(LoginRefused::Unknown));
        assert_eq!(codes.redeem("never", 1_001), Err(LoginRefused::Unknown));
    }

    #[test]
    fn issuing_forgets_expired_codes_and_keeps_at_most_the_newest_64() {
        let mut codes = LoginCodes::default();
        codes.issue("old".into(), 0);
        codes.issue("new".into(), LOGIN_CODE_TTL_MS);
        assert_eq!(codes.len(), 1);
        for i in 0..100 {
            codes.issue(format!("c{i}"), LOGIN_CODE_TTL_MS + i);
        }
        assert_eq!(codes.len(), MAX_CODES);
        assert_eq!(
            codes.redeem("c0", LOGIN_CODE_TTL_MS + 100),
            Err(LoginRefused::Unknown)
        );
        assert_eq!(codes.redeem("c99", LOGIN_CODE_TTL_MS + 100), Ok(()));
    }

    #[test]
    fn the_host_must_name_this_machine_and_this_port() {
        let l = addr("127.0.0.1:8123");
        for ok in [
            "127.0.0.1:8123",
            "localhost:8123",
            "LocalHost:8123",
            "[::1]:8123",
            "127.0.0.2:8123",
        ] {
            assert!(host_allowed(Some(ok), l), "{ok}");
        }
        for bad in [
            "evil.example:8123",
            "127.0.0.1:8124",
            "127.0.0.1",
            "localhost",
            "192.168.1.4:8123",
            "[::1]",
            "::1:8123",
            ":8123",
            "",
            "127.0.0.1:port",
        ] {
            assert!(!host_allowed(Some(bad), l), "{bad}");
        }
        assert!(!host_allowed(None, l));
        // A listener on a specific address also answers to that address.
        assert!(host_allowed(Some("10.0.0.5:9000"), addr("10.0.0.5:9000")));
    }

    #[test]
    fn only_the_consoles_own_origin_may_change_anything() {
        let host = "127.0.0.1:8123";
        assert!(origin_allowed(Some("http://127.0.0.1:8123"), None, host));
        assert!(origin_allowed(
            Some("http://127.0.0.1:8123"),
            Some("same-origin"),
            host
        ));
        assert!(!origin_allowed(
            Some("http://127.0.0.1:8123"),
            Some("cross-site"),
            host
        ));
        assert!(!origin_allowed(Some("http://evil.example"), None, host));
        assert!(!origin_allowed(Some("http://localhost:8123"), None, host));
        assert!(!origin_allowed(Some("null"), None, host));
        assert!(!origin_allowed(None, None, host));
        assert!(!origin_allowed(None, Some("same-origin"), host));
    }

    #[test]
    fn the_session_cookie_is_found_among_others_and_set_strictly() {
        assert_eq!(
            session_from_cookies("a=1; berth_session=s3cr3t; b=2"),
            Some("s3cr3t")
        );
        assert_eq!(session_from_cookies("berth_session="), None);
        assert_eq!(session_from_cookies("other_berth_session=x"), None);
        assert_eq!(session_from_cookies(""), None);
        let set = session_cookie("abc");
        for part in ["berth_session=abc", "HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(set.contains(part), "{set}");
        }
        assert!(cleared_cookie().contains("Max-Age=0"));
    }
}
