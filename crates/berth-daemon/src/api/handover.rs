//! `GET /v1/agents/attach/handover?…` (the daemon's Unix socket only), upgraded to
//! `berth-keeper`: the attach of `attach.rs`, handed to the client instead of relayed
//! (`berth_proto::attach` says how, step by step).
//!
//! Everything that can be refused is refused before the upgrade, as a JSON error, by the same
//! code as the WebSocket's (`attach::open`): the daemon resolves the agent, checks it, and
//! sends its keeper the `attach` request with the client's read-only flag and size, so the
//! keeper enforces them on the stream whoever holds it. Then the attached connection's
//! descriptor goes to the client with `SCM_RIGHTS`, and a key and its echo pass between the
//! client and the keeper with no daemon in between. For an agent elsewhere the descriptor is
//! the daemon's end of its relay there (`keeper_socket.rs`), which the daemon keeps copying.
//!
//! The daemon keeps the client's connection open and says nothing on it, so the client can
//! tell a daemon that went away (the connection ends) from one that stops (a
//! [`HandoverNotice::Stopping`] line first), as it could over the WebSocket.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use berth_core::daemon_state::LivePhase;
use berth_proto::{AttachQuery, ErrorCode, HANDOVER_PROTOCOL, Handover, HandoverNotice};
use hyper::StatusCode;
use hyper::header::{CONNECTION, UPGRADE};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::UnixStream;
use tokio::sync::watch;

use super::attach::open;
use super::{ApiFailure, ApiQuery};
use crate::state::Shared;
use crate::terminals::Attached;

/// How long the client may take to say it read the answer.
const READY_WITHIN: Duration = Duration::from_secs(10);

pub async fn handover(
    State(shared): State<Arc<Shared>>,
    ApiQuery(q): ApiQuery<AttachQuery>,
    mut req: Request,
) -> Result<Response, ApiFailure> {
    let asked = req.headers().get(UPGRADE).is_some_and(|v| {
        v.as_bytes()
            .eq_ignore_ascii_case(HANDOVER_PROTOCOL.as_bytes())
    });
    let on_upgrade = req.extensions_mut().remove::<OnUpgrade>();
    let (true, Some(on_upgrade)) = (asked, on_upgrade) else {
        return Err(ApiFailure::new(
            StatusCode::UPGRADE_REQUIRED,
            ErrorCode::BadRequest,
            format!("a handover needs `Connection: upgrade` and `Upgrade: {HANDOVER_PROTOCOL}`"),
            Some("`berth attach NAME` asks for one; other clients attach with a WebSocket"),
        ));
    };
    let (attached, gone) = open(&shared, &q).await?;
    let phase = shared.watch_phase();
    tokio::spawn(async move {
        let done = match on_upgrade.await {
            Ok(upgraded) => hand_over(upgraded, attached, gone, phase).await,
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = done {
            tracing::debug!("a keeper stream was not handed over: {e}");
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(CONNECTION, "upgrade")
        .header(UPGRADE, HANDOVER_PROTOCOL)
        .body(Body::empty())
        .map_err(|e| {
            ApiFailure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                e.to_string(),
                None,
            )
        })
}

/// Hands the attached stream to the client on `upgraded`, then watches the connection until
/// the client leaves or the daemon stops.
async fn hand_over(
    upgraded: Upgraded,
    attached: Attached,
    gone: &str,
    mut phase: watch::Receiver<LivePhase>,
) -> Result<(), String> {
    let parts = hyper_util::server::conn::auto::upgrade::downcast::<TokioIo<UnixStream>>(upgraded)
        .map_err(|_| "the connection is not the Unix socket's".to_string())?;
    let mut conn = parts.io.into_inner();
    if parts.read_buf.is_empty() {
        let mut ready = [0u8; 1];
        match tokio::time::timeout(READY_WITHIN, conn.read(&mut ready)).await {
            Ok(Ok(1)) => {}
            _ => return Err("the client did not say it was ready".into()),
        }
    }
    let Attached {
        from_keeper,
        to_keeper,
    } = attached;
    let unread = from_keeper.buffer().to_vec();
    let keeper = from_keeper
        .into_inner()
        .reunite(to_keeper)
        .map_err(|e| e.to_string())?
        .into_std()
        .map_err(|e| e.to_string())?;
    let head = Handover {
        gone: gone.to_string(),
        unread: unread.len(),
    };
    let mut wire = serde_json::to_vec(&head).map_err(|e| e.to_string())?;
    wire.push(b'\n');
    wire.extend_from_slice(&unread);
    let sent = conn
        .async_io(Interest::WRITABLE, || {
            let iov = [std::io::IoSlice::new(&wire)];
            let fds = [keeper.as_fd().as_raw_fd()];
            let cmsg = [ControlMessage::ScmRights(&fds)];
            sendmsg::<()>(conn.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)
                .map_err(std::io::Error::from)
        })
        .await
        .map_err(|e| e.to_string())?;
    // The descriptor went with the first byte; the rest is plain.
    conn.write_all(&wire[sent..])
        .await
        .map_err(|e| e.to_string())?;
    // The client holds the stream now; the daemon's copy goes.
    drop(keeper);
    let mut byte = [0u8; 1];
    tokio::select! {
        // The client left (it sends nothing after its ready byte).
        _ = conn.read(&mut byte) => {}
        () = async { let _ = phase.wait_for(|p| *p == LivePhase::Stopping).await; } => {
            let mut notice = serde_json::to_vec(&HandoverNotice::Stopping).map_err(|e| e.to_string())?;
            notice.push(b'\n');
            let _ = conn.write_all(&notice).await;
        }
    }
    Ok(())
}
