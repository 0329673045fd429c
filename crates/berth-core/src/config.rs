//! The daemon's serve configuration and its effective-config fingerprint.
//!
//! The fingerprint is a hash over every setting that changes the daemon's behaviour — addresses,
//! paths, the auth mode, *whether* a token is set (never the token itself). `berth daemon start`
//! computes the fingerprint it would serve with and compares it with the running daemon's; on a
//! mismatch it refuses and shows [`diff`] field by field.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::home::Home;

/// Default cap of one daemon log file before rotation.
pub const DEFAULT_LOG_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Default number of rotated daemon logs kept besides the current one.
pub const DEFAULT_LOG_KEEP: u32 = 3;
/// Default number of events the log retains.
pub const DEFAULT_EVENT_RETENTION: u64 = 100_000;

/// Everything `berth serve` is configured with, minus secrets. Recorded in the daemon's metadata
/// so `berth daemon restart` can reuse it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServeConfig {
    pub home: PathBuf,
    /// Optional TCP listener; always requires a token.
    pub listen: Option<SocketAddr>,
    /// The listener may be on an address other than loopback (`--listen-public`).
    #[serde(default)]
    pub listen_public: bool,
    /// Where the token comes from, if one is set.
    pub token_source: Option<TokenSource>,
    pub log_max_bytes: u64,
    pub log_keep: u32,
    pub event_retention: u64,
}

/// Where the TCP bearer token was read from. The token itself is never recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// The `BERTH_TOKEN` environment variable.
    Env,
    /// A file holding the token.
    File(PathBuf),
}

/// A rule the configuration breaks, found before anything starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "a TCP listener ({0}) requires a bearer token, but none is set; \
         pass --token-file FILE or set BERTH_TOKEN"
    )]
    ListenWithoutToken(SocketAddr),
    #[error(
        "--listen {0} would serve berth's API to the network over plain HTTP, unencrypted (the \
         token included); listen on 127.0.0.1 and reach it through an ssh tunnel \
         (`ssh -L {port}:127.0.0.1:{port} HOST`), or pass --listen-public if you mean it",
        port = .0.port()
    )]
    PublicListen(SocketAddr),
    #[error("--log-max-bytes must be at least 4096 (got {0})")]
    LogTooSmall(u64),
}

impl ServeConfig {
    /// A configuration with defaults for everything but the home.
    pub fn new(home: impl Into<PathBuf>) -> Self {
        ServeConfig {
            home: home.into(),
            listen: None,
            listen_public: false,
            token_source: None,
            log_max_bytes: DEFAULT_LOG_MAX_BYTES,
            log_keep: DEFAULT_LOG_KEEP,
            event_retention: DEFAULT_EVENT_RETENTION,
        }
    }

    pub fn layout(&self) -> Home {
        Home::new(&self.home)
    }

    /// Checks the rules a configuration must satisfy before a daemon may use it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let (Some(addr), None) = (self.listen, &self.token_source) {
            return Err(ConfigError::ListenWithoutToken(addr));
        }
        if let Some(addr) = self.listen
            && !addr.ip().is_loopback()
            && !self.listen_public
        {
            return Err(ConfigError::PublicListen(addr));
        }
        if self.log_max_bytes < 4096 {
            return Err(ConfigError::LogTooSmall(self.log_max_bytes));
        }
        Ok(())
    }

    /// What to tell a person about an allowed but risky configuration: a listener reachable
    /// from the network speaks plain HTTP.
    pub fn warning(&self) -> Option<String> {
        let addr = self.listen.filter(|a| !a.ip().is_loopback())?;
        Some(format!(
            "the API on {addr} is plain HTTP: everything sent to it, the bearer token included, \
             crosses the network unencrypted; prefer --listen 127.0.0.1:{port} and an ssh tunnel \
             (`ssh -L {port}:127.0.0.1:{port} HOST`)",
            port = addr.port()
        ))
    }

    /// The fields the fingerprint covers, by name.
    pub fn effective(&self, protocol: u32) -> EffectiveConfig {
        let home = self.layout();
        let mut fields = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            fields.insert(k.to_string(), v);
        };
        put("protocol", protocol.to_string());
        put("home", self.home.display().to_string());
        put("socket", home.socket().display().to_string());
        put("store", home.database().display().to_string());
        put(
            "listen",
            self.listen
                .map_or_else(|| "none".to_string(), |a| a.to_string()),
        );
        put(
            "auth",
            if self.listen.is_some() {
                "peer-uid+bearer-token"
            } else {
                "peer-uid"
            }
            .to_string(),
        );
        put(
            "token",
            match &self.token_source {
                None => "unset".to_string(),
                Some(TokenSource::Env) => "set (BERTH_TOKEN)".to_string(),
                Some(TokenSource::File(p)) => format!("set (file {})", p.display()),
            },
        );
        put("log_max_bytes", self.log_max_bytes.to_string());
        put("log_keep", self.log_keep.to_string());
        put("event_retention", self.event_retention.to_string());
        EffectiveConfig { fields }
    }
}

/// Named configuration fields with a stable fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EffectiveConfig {
    pub fields: BTreeMap<String, String>,
}

/// One field whose value differs between two configurations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDiff {
    pub field: String,
    /// Value in the configuration asked for now (`None`: field absent).
    pub wanted: Option<String>,
    /// Value the running daemon uses.
    pub running: Option<String>,
}

impl EffectiveConfig {
    /// Hex blake3 over the fields in name order; 16 hex digits are plenty to tell configs apart.
    pub fn fingerprint(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        for (k, v) in &self.fields {
            hasher.update(k.as_bytes());
            hasher.update(b"\0");
            hasher.update(v.as_bytes());
            hasher.update(b"\n");
        }
        hasher.finalize().to_hex()[..16].to_string()
    }
}

/// Field-by-field difference, in field-name order. Empty when the configurations agree.
pub fn diff(
    wanted: &BTreeMap<String, String>,
    running: &BTreeMap<String, String>,
) -> Vec<FieldDiff> {
    let names: std::collections::BTreeSet<&String> = wanted.keys().chain(running.keys()).collect();
    names
        .into_iter()
        .filter(|k| wanted.get(*k) != running.get(*k))
        .map(|k| FieldDiff {
            field: k.clone(),
            wanted: wanted.get(k).cloned(),
            running: running.get(k).cloned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listening(token: Option<TokenSource>) -> ServeConfig {
        ServeConfig {
            listen: Some("127.0.0.1:7878".parse().unwrap()),
            token_source: token,
            ..ServeConfig::new("/h")
        }
    }

    #[test]
    fn listen_requires_a_token() {
        assert_eq!(
            listening(None).validate(),
            Err(ConfigError::ListenWithoutToken(
                "127.0.0.1:7878".parse().unwrap()
            ))
        );
        assert_eq!(listening(Some(TokenSource::Env)).validate(), Ok(()));
        assert_eq!(ServeConfig::new("/h").validate(), Ok(()));
    }

    #[test]
    fn only_loopback_unless_public_is_asked_for_and_then_a_warning() {
        let on = |addr: &str, public: bool| ServeConfig {
            listen: Some(addr.parse().unwrap()),
            listen_public: public,
            ..listening(Some(TokenSource::Env))
        };
        for addr in ["127.0.0.1:7878", "127.1.2.3:7878", "[::1]:7878"] {
            assert_eq!(on(addr, false).validate(), Ok(()), "{addr}");
            assert_eq!(on(addr, false).warning(), None, "{addr}");
        }
        for addr in ["0.0.0.0:7878", "192.168.1.5:7878", "[::]:7878"] {
            let refused = on(addr, false).validate().unwrap_err();
            assert_eq!(refused, ConfigError::PublicListen(addr.parse().unwrap()));
            assert!(refused.to_string().contains("--listen-public"), "{refused}");
            assert!(refused.to_string().contains("ssh -L 7878:127.0.0.1:7878"));
            assert_eq!(on(addr, true).validate(), Ok(()), "{addr}");
            let warning = on(addr, true).warning().unwrap();
            assert!(warning.contains("unencrypted") && warning.contains("ssh"));
        }
    }

    #[test]
    fn tiny_log_cap_is_rejected() {
        let c = ServeConfig {
            log_max_bytes: 100,
            ..ServeConfig::new("/h")
        };
        assert_eq!(c.validate(), Err(ConfigError::LogTooSmall(100)));
    }

    #[test]
    fn fingerprint_is_stable_and_sensitive_to_every_field() {
        let base = ServeConfig::new("/h");
        assert_eq!(
            base.effective(1).fingerprint(),
            base.effective(1).fingerprint()
        );
        let variants = [
            ServeConfig::new("/other"),
            listening(Some(TokenSource::Env)),
            ServeConfig {
                log_max_bytes: 5000,
                ..base.clone()
            },
            ServeConfig {
                log_keep: 9,
                ..base.clone()
            },
            ServeConfig {
                event_retention: 7,
                ..base.clone()
            },
        ];
        for v in variants {
            assert_ne!(
                v.effective(1).fingerprint(),
                base.effective(1).fingerprint(),
                "{v:?}"
            );
        }
        assert_ne!(
            base.effective(2).fingerprint(),
            base.effective(1).fingerprint()
        );
    }

    #[test]
    fn the_token_value_never_enters_the_config() {
        let a = listening(Some(TokenSource::File("/t".into()))).effective(1);
        assert_eq!(a.fields["token"], "set (file /t)");
        assert_eq!(a.fields["auth"], "peer-uid+bearer-token");
    }

    #[test]
    fn diff_names_each_differing_field() {
        let a = ServeConfig::new("/h").effective(1).fields;
        let b = listening(Some(TokenSource::Env)).effective(1).fields;
        let d = diff(&a, &b);
        let names: Vec<&str> = d.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["auth", "listen", "token"]);
        assert_eq!(d[1].wanted.as_deref(), Some("none"));
        assert_eq!(d[1].running.as_deref(), Some("127.0.0.1:7878"));
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn diff_reports_fields_missing_on_one_side() {
        let a = ServeConfig::new("/h").effective(1).fields;
        let mut b = a.clone();
        b.remove("log_keep");
        b.insert("future".into(), "x".into());
        let d = diff(&a, &b);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].field, "future");
        assert_eq!(d[0].wanted, None);
        assert_eq!(d[1].field, "log_keep");
        assert_eq!(d[1].running, None);
    }
}
