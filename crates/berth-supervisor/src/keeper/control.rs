//! The keeper's control socket: one JSON line in, one JSON line out.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::spec::KeeperState;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The current state.
    Status,
    /// Stop the child and every descendant; answer once none remains. `grace_ms` shortens the
    /// grace period between the stop signal and SIGKILL (never lengthens it); absent: the
    /// spec's.
    Stop {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grace_ms: Option<u64>,
    },
    /// Like `Stop`, without the grace period: SIGKILL at once.
    Kill,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub state: KeeperState,
    /// For `stop`: SIGKILL was needed after the grace period.
    #[serde(default)]
    pub killed: bool,
    /// For `stop`: how long it took.
    #[serde(default)]
    pub stop_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot reach the keeper at {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the keeper at {path} answered something unexpected: {detail}")]
    Protocol { path: String, detail: String },
}

/// Sends one request and waits (bounded by `timeout`) for the answer.
pub fn request(socket: &Path, req: &Request, timeout: Duration) -> Result<Response, ControlError> {
    let path = socket.display().to_string();
    let io = |source| ControlError::Io {
        path: path.clone(),
        source,
    };
    let mut stream = UnixStream::connect(socket).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    let mut line = serde_json::to_string(req).map_err(|e| ControlError::Protocol {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io)?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).map_err(io)?;
    serde_json::from_str(&answer).map_err(|e| ControlError::Protocol {
        path,
        detail: format!("{e}: {answer:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_reads_and_writes_the_same_as_before_a_grace_could_be_given() {
        let plain: Request = serde_json::from_str(r#"{"op":"stop"}"#).unwrap();
        assert_eq!(plain, Request::Stop { grace_ms: None });
        assert_eq!(
            serde_json::to_string(&Request::Stop { grace_ms: None }).unwrap(),
            r#"{"op":"stop"}"#
        );
        let short: Request = serde_json::from_str(r#"{"op":"stop","grace_ms":250}"#).unwrap();
        assert_eq!(
            short,
            Request::Stop {
                grace_ms: Some(250)
            }
        );
    }
}
