//! What can go wrong talking to the daemon.

use berth_proto::ApiError;

use crate::Endpoint;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens at the endpoint (no socket file, or connection refused).
    #[error("no berth daemon is listening at {endpoint}; start one with `berth daemon start`")]
    NotRunning { endpoint: String },
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        endpoint: String,
        source: std::io::Error,
    },
    #[error("timed out {what}")]
    Timeout { what: String },
    /// The peer does not speak HTTP the way berth does.
    #[error("the daemon's answer could not be understood: {0}")]
    Protocol(String),
    /// The peer answered, but not as berth.
    #[error("the program on the socket is not berth ({detail})")]
    NotBerth { detail: String },
    /// The daemon answered with a structured error.
    #[error("{} ({}){}", error.message, error.code.as_str(), error.hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default())]
    Api { status: u16, error: ApiError },
}

impl ClientError {
    pub(crate) fn connect(endpoint: &Endpoint, source: std::io::Error) -> ClientError {
        use std::io::ErrorKind::{ConnectionRefused, NotFound};
        match source.kind() {
            NotFound | ConnectionRefused => ClientError::NotRunning {
                endpoint: endpoint.to_string(),
            },
            _ => ClientError::Connect {
                endpoint: endpoint.to_string(),
                source,
            },
        }
    }

    pub(crate) fn http(e: hyper::Error) -> ClientError {
        ClientError::Protocol(e.to_string())
    }
}
