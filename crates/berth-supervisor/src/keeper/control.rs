//! The keeper's control socket: one JSON line in, one JSON line out.
//!
//! `status`, `stop` and `kill` are answered with a [`Response`]; a terminal agent's keeper also
//! answers `screen`, `input`, `resize` and `attach`, with a [`TerminalAnswer`] (any other keeper
//! refuses them with `not_a_terminal`). After `attached`, the connection carries
//! [`berth_proto::Frame`]s both ways (`super::attach`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use berth_proto::TerminalScreen;
use serde::de::DeserializeOwned;
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
    /// The terminal's screen, with the newest `scrollback` lines of scrollback.
    Screen {
        #[serde(default)]
        scrollback: usize,
    },
    /// Types `bytes` into the terminal (at most `berth_core::terminal::MAX_INPUT_BYTES`).
    Input { bytes: Vec<u8> },
    /// Resizes the terminal; the program gets SIGWINCH.
    Resize { rows: u32, cols: u32 },
    /// Attaches a client: the terminal takes its size (unless it is read-only), then frames.
    Attach {
        #[serde(default)]
        read_only: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rows: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cols: Option<u32>,
    },
}

/// The answer to `screen`, `input` and `resize`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum TerminalAnswer {
    Screen(TerminalScreen),
    /// The input was written to the terminal.
    Typed {
        bytes: usize,
    },
    Resized {
        rows: u16,
        cols: u16,
    },
    /// The client is attached; frames follow.
    Attached,
    /// Nothing was done (or, for input the program stopped taking, only part: the message says
    /// how much).
    Refused {
        reason: Refusal,
        message: String,
    },
}

/// Why a terminal request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// This keeper's process does not run under a terminal.
    NotATerminal,
    /// The program has exited.
    Exited,
    /// The size or input is not valid; nothing was done.
    Invalid,
    /// The program did not take the input in time.
    Stuck,
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

/// Sends `status`, `stop` or `kill` and waits (bounded by `timeout`) for the answer.
pub fn request(socket: &Path, req: &Request, timeout: Duration) -> Result<Response, ControlError> {
    ask(socket, req, timeout)
}

/// Sends one request and waits (bounded by `timeout`) for an answer of type `T`.
pub fn ask<T: DeserializeOwned>(
    socket: &Path,
    req: &Request,
    timeout: Duration,
) -> Result<T, ControlError> {
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

    #[test]
    fn terminal_requests_and_answers_on_the_wire() {
        let table: &[(&str, Request)] = &[
            (r#"{"op":"screen"}"#, Request::Screen { scrollback: 0 }),
            (
                r#"{"op":"screen","scrollback":5}"#,
                Request::Screen { scrollback: 5 },
            ),
            (
                r#"{"op":"input","bytes":[108,115,13]}"#,
                Request::Input {
                    bytes: b"ls\r".to_vec(),
                },
            ),
            (
                r#"{"op":"resize","rows":40,"cols":120}"#,
                Request::Resize {
                    rows: 40,
                    cols: 120,
                },
            ),
            (
                r#"{"op":"attach"}"#,
                Request::Attach {
                    read_only: false,
                    rows: None,
                    cols: None,
                },
            ),
            (
                r#"{"op":"attach","read_only":true,"rows":50,"cols":200}"#,
                Request::Attach {
                    read_only: true,
                    rows: Some(50),
                    cols: Some(200),
                },
            ),
        ];
        for (wire, req) in table {
            assert_eq!(
                &serde_json::from_str::<Request>(wire).unwrap(),
                req,
                "{wire}"
            );
        }
        let refused = TerminalAnswer::Refused {
            reason: Refusal::NotATerminal,
            message: "m".into(),
        };
        assert_eq!(
            serde_json::to_string(&refused).unwrap(),
            r#"{"answer":"refused","reason":"not_a_terminal","message":"m"}"#
        );
        assert_eq!(
            serde_json::to_string(&TerminalAnswer::Typed { bytes: 3 }).unwrap(),
            r#"{"answer":"typed","bytes":3}"#
        );
    }
}
