//! `GET /v1/agents/attach?repo=…&name=…[&read_only=true][&rows=R&cols=C]`: a terminal agent's
//! terminal over a WebSocket (`berth attach`, the web console).
//!
//! Everything that can be refused is refused before the upgrade, as a JSON error like every
//! other route's. After it, the daemon relays between the client's messages and the keeper's
//! frames (`berth_proto::attach`): output and events to the client, keys and window sizes to
//! the keeper, each checked first. A message a client may not send closes the connection with
//! a close frame that says why (1008 policy, 1009 too big); the program is not touched. The
//! connection closes 1000 when the program exited, 1001 when the daemon stops, 1011 when the
//! keeper went away.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use berth_core::daemon_state::LivePhase;
use berth_core::terminal::{InputError, Size, check_input};
use berth_proto::{AttachControl, AttachEvent, AttachQuery, ErrorCode, Frame};
use hyper::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::agents::{find, terminal_failure};
use super::ready::services;
use super::{ApiFailure, ApiQuery};
use crate::state::Shared;
use crate::terminals::{self, Attached};

/// How much one read of a client's connection takes at most: keys and window sizes are small,
/// and `tungstenite` zeroes that much of its buffer before every read (128 KiB by default).
const READ_BUFFER: usize = 4 * 1024;

/// Close codes (RFC 6455 §7.4.1).
const NORMAL: u16 = 1000;
const GOING_AWAY: u16 = 1001;
const POLICY: u16 = 1008;
const TOO_BIG: u16 = 1009;
const KEEPER_GONE: u16 = 1011;

pub async fn attach(
    State(shared): State<Arc<Shared>>,
    ApiQuery(q): ApiQuery<AttachQuery>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiFailure> {
    let upgrade = upgrade.map_err(|e| {
        ApiFailure::new(
            StatusCode::UPGRADE_REQUIRED,
            ErrorCode::BadRequest,
            format!("attaching needs a WebSocket: {}", e.body_text()),
            Some("connect with a WebSocket client (`berth attach NAME` is one)"),
        )
    })?;
    let (attached, gone) = open(&shared, &q).await?;
    let phase = shared.watch_phase();
    let read_only = q.read_only;
    Ok(upgrade
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |ws| async move {
            relay(ws, attached, read_only, gone, phase).await;
        }))
}

/// Checks the query and the agent, and attaches to its keeper: the attached stream, and what
/// its end means (for an agent elsewhere, most likely that the connection to its place broke:
/// the keeper there, and the program, go on). Shared with the handover (`handover.rs`).
pub(super) async fn open(
    shared: &Arc<Shared>,
    q: &AttachQuery,
) -> Result<(Attached, &'static str), ApiFailure> {
    let size = match (q.rows, q.cols) {
        (Some(rows), Some(cols)) => {
            Size::new(rows, cols).map_err(|e| invalid(e.to_string()))?;
            Some((rows, cols))
        }
        (None, None) => None,
        _ => return Err(invalid("give rows and cols together".into())),
    };
    let svc = services(shared)?;
    let rec = find(&svc.store, &q.repo, &q.name)?;
    let attached = terminals::attach(&svc.agents, &rec, q.read_only, size)
        .await
        .map_err(terminal_failure)?;
    let gone = if rec.remote.is_some() {
        "the connection to where the agent runs broke; the program goes on there: attach again"
    } else {
        "the agent's keeper went away"
    };
    Ok((attached, gone))
}

fn invalid(message: String) -> ApiFailure {
    ApiFailure::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidInput,
        message,
        None,
    )
}

/// A close frame; its reason cut to the 123 bytes a close frame can carry.
fn close(code: u16, reason: impl Into<String>) -> Option<CloseFrame> {
    let mut reason = reason.into();
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason.truncate(end);
    Some(CloseFrame {
        code,
        reason: reason.into(),
    })
}

/// Relays until one side ends; then closes the client's side with the reason.
async fn relay(
    mut ws: WebSocket,
    attached: Attached,
    read_only: bool,
    gone: &'static str,
    mut phase: watch::Receiver<LivePhase>,
) {
    let Attached {
        mut from_keeper,
        mut to_keeper,
    } = attached;
    let mut buf = Vec::with_capacity(64 * 1024);
    let end = loop {
        tokio::select! {
            read = from_keeper.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => break close(KEEPER_GONE, gone),
                Ok(_) => match to_client(&mut ws, &mut buf).await {
                    Ok(None) => {}
                    Ok(Some(end)) => break end,
                    Err(()) => break None,
                },
            },
            msg = ws.recv() => {
                let frame = match msg {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break None,
                    Some(Ok(msg)) => match from_client(msg) {
                        Ok(Some(frame)) => frame,
                        Ok(None) => continue,
                        Err(end) => break end,
                    },
                };
                // A read-only client's keys and sizes go nowhere.
                if read_only {
                    continue;
                }
                let mut wire = Vec::new();
                frame.encode(&mut wire);
                if to_keeper.write_all(&wire).await.is_err() {
                    break close(KEEPER_GONE, gone);
                }
            }
            () = async { let _ = phase.wait_for(|p| *p == LivePhase::Stopping).await; } => {
                break close(GOING_AWAY, "the daemon is stopping; the program goes on running");
            }
        }
    };
    if end.is_some() {
        let _ = ws.send(Message::Close(end)).await;
    }
}

/// Sends the client every whole frame in `buf`. `Some(close)` once the program exited or the
/// keeper sent what it may not; `Err` when the client is gone.
async fn to_client(
    ws: &mut WebSocket,
    buf: &mut Vec<u8>,
) -> Result<Option<Option<CloseFrame>>, ()> {
    loop {
        let (frame, used) = match Frame::decode(buf) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(None),
            Err(e) => return Ok(Some(close(KEEPER_GONE, format!("the keeper sent {e}")))),
        };
        buf.drain(..used);
        let (msg, exited) = match frame {
            Frame::Output(bytes) => (Message::Binary(bytes.into()), false),
            Frame::Event(event) => {
                let exited = matches!(event, AttachEvent::Exit { .. });
                let json = serde_json::to_string(&event).unwrap_or_default();
                (Message::Text(json.into()), exited)
            }
            Frame::Input(_) | Frame::Control(_) => {
                return Ok(Some(close(KEEPER_GONE, "the keeper sent a client's frame")));
            }
        };
        ws.send(msg).await.map_err(|_| ())?;
        if exited {
            return Ok(Some(close(NORMAL, "the program exited")));
        }
    }
}

/// The keeper's frame for a client's message, checked (`None`: nothing to pass on); or the
/// close that refuses it.
fn from_client(msg: Message) -> Result<Option<Frame>, Option<CloseFrame>> {
    match msg {
        Message::Binary(keys) => match check_input(&keys) {
            Ok(()) => Ok(Some(Frame::Input(keys.to_vec()))),
            Err(InputError::Empty) => Ok(None),
            Err(e) => Err(close(TOO_BIG, e.to_string())),
        },
        Message::Text(text) => {
            let control: AttachControl = serde_json::from_str(text.as_str()).map_err(|e| {
                close(
                    POLICY,
                    format!(
                        "not an attach message ({e}); keys go in binary messages, sizes as \
                         {{\"resize\":{{\"rows\":R,\"cols\":C}}}}"
                    ),
                )
            })?;
            match control {
                AttachControl::Resize { rows, cols } => {
                    Size::new(rows, cols).map_err(|e| close(POLICY, e.to_string()))?;
                    Ok(Some(Frame::Control(control)))
                }
                AttachControl::Lend { .. } => Err(close(
                    POLICY,
                    "a terminal cannot be lent over a WebSocket; only `berth attach` on the \
                     daemon's Unix socket lends its own",
                )),
            }
        }
        // The WebSocket layer answers pings itself; a close is seen by the caller.
        Message::Ping(_) | Message::Pong(_) | Message::Close(_) => Ok(None),
    }
}
