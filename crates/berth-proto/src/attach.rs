//! Attaching to a terminal agent: `GET /v1/agents/attach` upgraded to a WebSocket, and the
//! framed stream between the daemon and the agent's keeper that it is relayed over.
//!
//! Both carry the same four kinds of message:
//!
//! | kind | direction | WebSocket message | what |
//! | --- | --- | --- | --- |
//! | output | to the client | binary | bytes that bring the client's terminal to what the program's shows |
//! | event | to the client | text, an [`AttachEvent`] | `attached` first, `exit` when the program ended |
//! | input | from the client | binary | keys, typed as they are (at most `berth_core::terminal::MAX_INPUT_BYTES` a message) |
//! | control | from the client | text, an [`AttachControl`] | the client's window size |
//!
//! Between the daemon and the keeper each is a [`Frame`]: one kind byte, the payload's length
//! as four bytes (big-endian), the payload; at most [`MAX_FRAME_BYTES`] of payload.
//!
//! A client on the daemon's Unix socket (`berth attach`) may instead ask for the keeper's
//! stream itself: [`HANDOVER_PATH`], upgraded to [`HANDOVER_PROTOCOL`]. The daemon checks and
//! attaches exactly as for the WebSocket, then passes the attached connection's descriptor to
//! the client (`SCM_RIGHTS`), so keys and output no longer pass through the daemon:
//!
//! 1. after the `101` the client sends one byte (any), so nothing the daemon sends next can be
//!    read as part of the HTTP answer (a descriptor read by a plain `read` would be lost);
//! 2. the daemon sends a [`Handover`] line with the descriptor attached, then the
//!    [`Handover::unread`] bytes of the keeper's stream it had already read;
//! 3. the client speaks [`Frame`]s on the descriptor; the daemon's connection stays open and
//!    carries nothing but, at most, one [`HandoverNotice`] line before it closes. Its end
//!    without a notice means the daemon went away.
//!
//! A client on the keeper's own stream may then lend the keeper its terminal, as tmux's client
//! gives its terminal to the server, so a key and its echo pass through no process but the
//! keeper: when [`AttachEvent::Attached`] says the keeper `takes_terminal`, the client sends
//! [`AttachControl::Lend`] with a descriptor of its terminal attached (`SCM_RIGHTS`) and draws
//! nothing more itself. The keeper answers [`AttachEvent::Lent`]: taken, it reads the keys
//! there (it ends the attach at the detach key with [`AttachEvent::Detached`]) and draws the
//! screen there; not taken (no descriptor came: the stream is relayed, or it is not a
//! terminal), it goes on with output frames. Either way the whole screen is drawn anew after
//! the answer. The keeper lets go of the terminal before it closes the stream, so a client
//! that shuts down its side and waits for the end may put its terminal back safely.

use serde::{Deserialize, Serialize};

/// The most payload one frame may carry.
pub const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;

/// Where a client on the daemon's Unix socket asks for an attached keeper stream of its own
/// (same query as `GET /v1/agents/attach`).
pub const HANDOVER_PATH: &str = "/v1/agents/attach/handover";
/// The `Upgrade` protocol of a handover.
pub const HANDOVER_PROTOCOL: &str = "berth-keeper";

/// The line the daemon sends with the attached connection's descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handover {
    /// What the end of the keeper's stream without an `exit` event means, in words.
    pub gone: String,
    /// How many bytes of the keeper's stream follow this line on the daemon's connection
    /// (what the daemon read of it before handing it over): they come before anything read
    /// from the descriptor.
    pub unread: usize,
}

/// What the daemon may still say on a connection it handed a keeper stream over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum HandoverNotice {
    /// The daemon is stopping: the attach ends as it would over the WebSocket.
    Stopping,
}

/// The query of `GET /v1/agents/attach`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachQuery {
    pub repo: String,
    pub name: String,
    /// Watch only: keys and window sizes from this client are not taken.
    #[serde(default)]
    pub read_only: bool,
    /// The client's window, if it has one: the terminal takes this size on attach.
    #[serde(default)]
    pub rows: Option<u32>,
    #[serde(default)]
    pub cols: Option<u32>,
}

/// A message from the client that is not keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AttachControl {
    /// The client's window has this size now; the program gets SIGWINCH.
    Resize { rows: u32, cols: u32 },
    /// The client's terminal comes with this frame (`SCM_RIGHTS`): the keeper is to read the
    /// keys and draw the screen there, and end the attach at `detach_key` (a byte; `None`:
    /// only when the terminal closes).
    Lend { detach_key: Option<u8> },
}

/// A message to the client that is not output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AttachEvent {
    /// The first message: the terminal's size, and whether this client may type.
    Attached {
        rows: u16,
        cols: u16,
        read_only: bool,
        /// The keeper can take a terminal the client lends it ([`AttachControl::Lend`]);
        /// keepers from before this say nothing, which is `false`.
        #[serde(default)]
        takes_terminal: bool,
    },
    /// The answer to [`AttachControl::Lend`]: whether the keeper took the terminal.
    Lent { taken: bool },
    /// The detach key was typed on the terminal the keeper was lent, or that terminal closed:
    /// the keeper has let go of it, and nothing more follows.
    Detached,
    /// The program ended (and everything it started); nothing more follows.
    Exit {
        code: Option<i32>,
        signal: Option<i32>,
    },
}

/// One message of the stream between the daemon and a keeper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Output(Vec<u8>),
    Event(AttachEvent),
    Input(Vec<u8>),
    Control(AttachControl),
}

const OUTPUT: u8 = 1;
const EVENT: u8 = 2;
const INPUT: u8 = 3;
const CONTROL: u8 = 4;
const HEADER: usize = 5;

/// A stream that does not hold frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    UnknownKind(u8),
    TooLarge(usize),
    BadMessage(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::UnknownKind(k) => write!(f, "a frame of unknown kind {k}"),
            FrameError::TooLarge(n) => write!(
                f,
                "a frame of {n} bytes, more than the {MAX_FRAME_BYTES} one may carry"
            ),
            FrameError::BadMessage(e) => write!(f, "a frame that does not hold its message: {e}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl Frame {
    /// Appends the frame to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (kind, json);
        let payload: &[u8] = match self {
            Frame::Output(b) => {
                kind = OUTPUT;
                b
            }
            Frame::Input(b) => {
                kind = INPUT;
                b
            }
            Frame::Event(e) => {
                kind = EVENT;
                json = serde_json::to_vec(e).unwrap_or_default();
                &json
            }
            Frame::Control(c) => {
                kind = CONTROL;
                json = serde_json::to_vec(c).unwrap_or_default();
                &json
            }
        };
        out.push(kind);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
    }

    /// The first frame in `buf` and how many bytes it took, or `None` when `buf` does not hold
    /// a whole frame yet.
    pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
        let Some(header) = buf.get(..HEADER) else {
            return Ok(None);
        };
        let kind = header[0];
        if !(OUTPUT..=CONTROL).contains(&kind) {
            return Err(FrameError::UnknownKind(kind));
        }
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        if len > MAX_FRAME_BYTES {
            return Err(FrameError::TooLarge(len));
        }
        let Some(payload) = buf.get(HEADER..HEADER + len) else {
            return Ok(None);
        };
        let bad = |e: serde_json::Error| FrameError::BadMessage(e.to_string());
        let frame = match kind {
            OUTPUT => Frame::Output(payload.to_vec()),
            INPUT => Frame::Input(payload.to_vec()),
            EVENT => Frame::Event(serde_json::from_slice(payload).map_err(bad)?),
            _ => Frame::Control(serde_json::from_slice(payload).map_err(bad)?),
        };
        Ok(Some((frame, HEADER + len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Frame> {
        vec![
            Frame::Output(b"\x1b[2J hello".to_vec()),
            Frame::Output(Vec::new()),
            Frame::Input(vec![0xff, 0x00, b'\r']),
            Frame::Event(AttachEvent::Attached {
                rows: 24,
                cols: 80,
                read_only: true,
                takes_terminal: true,
            }),
            Frame::Event(AttachEvent::Lent { taken: false }),
            Frame::Event(AttachEvent::Detached),
            Frame::Control(AttachControl::Lend {
                detach_key: Some(0x1c),
            }),
            Frame::Event(AttachEvent::Exit {
                code: Some(3),
                signal: None,
            }),
            Frame::Control(AttachControl::Resize {
                rows: 40,
                cols: 120,
            }),
        ]
    }

    #[test]
    fn frames_read_back_whole_and_only_when_whole() {
        let mut wire = Vec::new();
        for f in all() {
            f.encode(&mut wire);
        }
        // Fed one byte at a time, every frame comes out once, in order.
        let mut got = Vec::new();
        let mut buf = Vec::new();
        for b in wire {
            buf.push(b);
            while let Some((f, used)) = Frame::decode(&buf).unwrap() {
                buf.drain(..used);
                got.push(f);
            }
        }
        assert!(buf.is_empty());
        assert_eq!(got, all());
    }

    #[test]
    fn garbage_is_an_error_not_a_wait_or_a_panic() {
        assert_eq!(
            Frame::decode(b"\x09\0\0\0\0"),
            Err(FrameError::UnknownKind(9))
        );
        let huge = [OUTPUT, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(Frame::decode(&huge), Err(FrameError::TooLarge(_))));
        let mut bad = Vec::new();
        bad.push(CONTROL);
        bad.extend_from_slice(&3u32.to_be_bytes());
        bad.extend_from_slice(b"{x}");
        assert!(matches!(
            Frame::decode(&bad),
            Err(FrameError::BadMessage(_))
        ));
    }

    #[test]
    fn messages_on_the_wire() {
        assert_eq!(
            serde_json::to_string(&AttachControl::Resize {
                rows: 40,
                cols: 120
            })
            .unwrap(),
            r#"{"resize":{"rows":40,"cols":120}}"#
        );
        assert_eq!(
            serde_json::to_string(&AttachEvent::Exit {
                code: Some(0),
                signal: None
            })
            .unwrap(),
            r#"{"event":"exit","code":0,"signal":null}"#
        );
        assert_eq!(
            serde_json::to_string(&AttachControl::Lend { detach_key: None }).unwrap(),
            r#"{"lend":{"detach_key":null}}"#
        );
        // A keeper from before lending says nothing of it: it takes no terminal.
        assert_eq!(
            serde_json::from_str::<AttachEvent>(
                r#"{"event":"attached","rows":2,"cols":3,"read_only":false}"#
            )
            .unwrap(),
            AttachEvent::Attached {
                rows: 2,
                cols: 3,
                read_only: false,
                takes_terminal: false
            }
        );
        assert!(serde_json::from_str::<AttachControl>(r#"{"resize":{"rows":1}}"#).is_err());
        assert!(serde_json::from_str::<AttachControl>(r#"{"paste":"x"}"#).is_err());
    }
}
