//! The one error type of the command line, and its exit codes.
//!
//! | exit | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | the operation failed |
//! | 2 | usage error: bad arguments or configuration (also from the daemon: `ErrorCode::is_usage`) |
//! | 3 | the daemon is not running |
//! | 4 | refused for safety (a foreign socket, an incompatible daemon, a blocker) |

use serde::Serialize;

/// Exit-code class of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Failed,
    Usage,
    NotRunning,
    Refused,
}

impl Kind {
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Failed => 1,
            Kind::Usage => 2,
            Kind::NotRunning => 3,
            Kind::Refused => 4,
        }
    }
}

/// A failed command: what happened, what to do, and which exit code it means.
#[derive(Debug, Clone, Serialize)]
pub struct CliError {
    #[serde(skip)]
    pub kind: Kind,
    /// Stable machine-readable code.
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Further lines (a log tail, differing fields).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl CliError {
    pub fn new(kind: Kind, code: &str, message: impl Into<String>) -> CliError {
        CliError {
            kind,
            code: code.to_string(),
            message: message.into(),
            hint: None,
            details: Vec::new(),
        }
    }

    pub fn failed(code: &str, message: impl Into<String>) -> CliError {
        CliError::new(Kind::Failed, code, message)
    }

    pub fn hint(mut self, hint: impl Into<String>) -> CliError {
        self.hint = Some(hint.into());
        self
    }

    pub fn details(mut self, details: Vec<String>) -> CliError {
        self.details = details;
        self
    }

    /// Prints the error for a person (stderr) or as JSON (stdout).
    pub fn report(&self, json: bool) {
        if json {
            let body = serde_json::json!({ "error": self });
            println!("{body}");
            return;
        }
        eprintln!("error: {}", self.message);
        for d in &self.details {
            eprintln!("  {d}");
        }
        if let Some(h) = &self.hint {
            eprintln!("hint: {h}");
        }
    }
}

impl From<berth_client::ClientError> for CliError {
    fn from(e: berth_client::ClientError) -> CliError {
        use berth_client::ClientError as E;
        match &e {
            E::NotRunning { .. } => CliError::new(Kind::NotRunning, "not_running", e.to_string()),
            E::Api { error, .. } => {
                let kind = if error.code.is_refusal() {
                    Kind::Refused
                } else if error.code.is_usage() {
                    Kind::Usage
                } else {
                    Kind::Failed
                };
                let mut err = CliError::new(kind, error.code.as_str(), error.message.clone());
                err.hint = error.hint.clone();
                err
            }
            E::NotBerth { .. } => CliError::new(Kind::Refused, "foreign", e.to_string()),
            _ => CliError::failed("daemon_unreachable", e.to_string())
                .hint("check `berth daemon status` and `berth daemon logs`"),
        }
    }
}

impl From<berth_control::ControlError> for CliError {
    fn from(e: berth_control::ControlError) -> CliError {
        if let berth_control::ControlError::Client(c) = e {
            return c.into();
        }
        let kind = if e.is_refusal() {
            Kind::Refused
        } else {
            Kind::Failed
        };
        let mut err = CliError::new(kind, e.code(), e.to_string()).details(e.details());
        err.hint = e.hint();
        err
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> CliError {
        CliError::failed("io", e.to_string())
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;
