//! A terminal agent's keeper stream handed over by the daemon (`berth_proto::attach` says how):
//! the client then speaks the keeper's frames itself, with no daemon in between.

use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use berth_proto::{AttachQuery, HANDOVER_PATH, HANDOVER_PROTOCOL, Handover};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONNECTION, UPGRADE};
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use nix::errno::Errno;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

use crate::{Client, ClientError, Endpoint};

/// An attached keeper stream of the client's own.
#[derive(Debug)]
pub struct HandedOver {
    /// The attached stream (blocking): `berth_proto::Frame`s both ways.
    pub keeper: UnixStream,
    /// What the daemon had read of the stream before: it comes before anything read from it.
    pub unread: Vec<u8>,
    /// What the end of the stream without an `exit` event means, in words.
    pub gone: String,
    /// The connection to the daemon (blocking): it carries at most one
    /// `berth_proto::HandoverNotice` line, and ends when the daemon goes.
    pub daemon: UnixStream,
}

impl Client {
    /// Attaches to a terminal agent and takes its keeper stream over. Every refusal is a
    /// [`ClientError::Api`], as for [`Client::attach`]; only on the daemon's Unix socket.
    pub async fn handover(&self, query: &AttachQuery) -> Result<HandedOver, ClientError> {
        if !matches!(self.endpoint(), Endpoint::Unix(_)) {
            return Err(ClientError::Protocol(
                "a keeper stream is only handed over on the daemon's Unix socket".into(),
            ));
        }
        let mut conn = self.connect().await?;
        let query =
            serde_urlencoded::to_string(query).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let req = conn
            .builder(Method::GET, &format!("{HANDOVER_PATH}?{query}"))
            .header(CONNECTION, "upgrade")
            .header(UPGRADE, HANDOVER_PROTOCOL)
            .body(Full::new(Bytes::new()))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let resp = conn
            .open(req, "attaching", |s| *s == StatusCode::SWITCHING_PROTOCOLS)
            .await?;
        let upgraded = hyper::upgrade::on(resp).await.map_err(ClientError::http)?;
        let parts = upgraded
            .downcast::<TokioIo<tokio::net::UnixStream>>()
            .map_err(|_| ClientError::Protocol("the upgraded connection is not a socket".into()))?;
        if !parts.read_buf.is_empty() {
            return Err(ClientError::Protocol(
                "the daemon sent its handover before it was asked".into(),
            ));
        }
        let daemon = parts
            .io
            .into_inner()
            .into_std()
            .and_then(|s| s.set_nonblocking(false).map(|()| s))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let within = self.timeout;
        tokio::task::spawn_blocking(move || receive(daemon, within))
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?
            .map_err(|e| ClientError::Protocol(format!("the handover failed: {e}")))
    }
}

/// Says it is ready, then takes the descriptor and the [`Handover`] line with the bytes after it.
fn receive(mut daemon: UnixStream, within: Duration) -> std::io::Result<HandedOver> {
    daemon.set_read_timeout(Some(within))?;
    daemon.write_all(b"\n")?;
    let (mut got, keeper) = receive_fd(&daemon)?;
    let keeper = keeper.ok_or_else(|| std::io::Error::other("no descriptor came with it"))?;
    // The rest, read no further than it goes: whatever follows is the daemon's notice.
    let line_end = loop {
        if let Some(at) = got.iter().position(|b| *b == b'\n') {
            break at;
        }
        let mut byte = [0u8; 1];
        match daemon.read(&mut byte)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            _ => got.push(byte[0]),
        }
    };
    let head: Handover = serde_json::from_slice(&got[..line_end])
        .map_err(|e| std::io::Error::other(format!("not a handover line: {e}")))?;
    let mut unread = got.split_off(line_end + 1);
    if unread.len() > head.unread {
        return Err(std::io::Error::other("more came than the handover said"));
    }
    let mut rest = vec![0u8; head.unread - unread.len()];
    daemon.read_exact(&mut rest)?;
    unread.extend_from_slice(&rest);
    daemon.set_read_timeout(None)?;
    let keeper = UnixStream::from(keeper);
    keeper.set_nonblocking(false)?;
    Ok(HandedOver {
        keeper,
        unread,
        gone: head.gone,
        daemon,
    })
}

/// The first bytes on `conn` and the descriptor that came with them (the first, if several).
fn receive_fd(conn: &UnixStream) -> std::io::Result<(Vec<u8>, Option<OwnedFd>)> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = match recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => msg,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let n = msg.bytes;
        let mut fds = Vec::new();
        for cmsg in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(received) = cmsg {
                // SAFETY: each descriptor was just received with SCM_RIGHTS: open, and ours
                // alone, so owning it is right (extra ones are closed when dropped).
                fds.extend(
                    received
                        .into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let first = fds.into_iter().next();
        return Ok((buf[..n].to_vec(), first));
    }
}
