//! The web console's state in a daemon run: the login codes `berth web` hands out (in memory:
//! a code outlives neither its minute nor the run), the browser sessions they open (in the
//! store, so a page survives a daemon restart), and the loopback listener that serves it all.
//!
//! A code and a session secret are 32 random bytes, shown as hex; only their BLAKE3 digests are
//! kept, so neither the store nor the memory of the run can give one back. The rules — how long
//! each lasts, which `Host` and `Origin` are accepted — are `berth_core::console`'s.

pub mod assets;
mod listener;

use std::sync::Mutex;

use berth_core::console::{LoginCodes, LoginRefused, SESSION_TTL_MS};
use berth_store::{ConsoleSession, Store, StoreError};

pub use listener::ConsoleListener;

/// Why a login or a session lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error(transparent)]
    Refused(#[from] LoginRefused),
    #[error("the system's random number generator failed: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The run's login codes and its listener.
#[derive(Debug)]
pub struct Console {
    codes: Mutex<LoginCodes>,
    pub listener: ConsoleListener,
}

/// 32 random bytes as 64 hex digits.
fn secret() -> Result<String, ConsoleError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ConsoleError::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// What is kept of a secret.
pub fn digest(secret: &str) -> String {
    blake3::hash(secret.as_bytes()).to_hex().to_string()
}

impl Console {
    pub fn new(listener: ConsoleListener) -> Console {
        Console {
            codes: Mutex::new(LoginCodes::default()),
            listener,
        }
    }

    /// A new login code, valid once for a minute from `now_ms`.
    pub fn new_code(&self, now_ms: i64) -> Result<String, ConsoleError> {
        let code = secret()?;
        self.codes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .issue(digest(&code), now_ms);
        Ok(code)
    }

    /// Exchanges a login code for a new session; answers the session's secret (the cookie).
    pub fn login(
        &self,
        store: &Store,
        code: &str,
        now_ms: i64,
    ) -> Result<(String, ConsoleSession), ConsoleError> {
        self.codes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .redeem(&digest(code), now_ms)?;
        let secret = secret()?;
        let session = ConsoleSession {
            digest: digest(&secret),
            csrf: self::secret()?,
            created_ms: now_ms,
            expires_ms: now_ms + SESSION_TTL_MS,
        };
        store.add_console_session(&session)?;
        Ok((secret, session))
    }
}

/// The session a cookie's secret opens, if it is valid at `now_ms`.
pub fn session(
    store: &Store,
    secret: &str,
    now_ms: i64,
) -> Result<Option<ConsoleSession>, StoreError> {
    store.console_session(&digest(secret), now_ms)
}
