//! Attaching to a terminal agent: `GET /v1/agents/attach` upgraded to a WebSocket on a
//! connection of its own.

use berth_proto::AttachQuery;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::upgrade::Upgraded;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::{Client, ClientError};

/// An attached terminal: binary messages are output (to the client) and keys (from it); text
/// messages are `berth_proto::AttachEvent`s and `berth_proto::AttachControl`s.
pub type AttachStream = WebSocketStream<TokioIo<Upgraded>>;

/// How much one read of the connection takes at most. `tungstenite` zeroes that much of its
/// buffer before every read (128 KiB by default, some µs each time, twice a keystroke's echo);
/// a picture larger than this is read in several.
const READ_BUFFER: usize = 16 * 1024;

impl Client {
    /// Attaches to a terminal agent. Every refusal (unknown agent, not a terminal, not
    /// running) is a [`ClientError::Api`], as for any request.
    pub async fn attach(&self, query: &AttachQuery) -> Result<AttachStream, ClientError> {
        let mut conn = self.connect().await?;
        let query =
            serde_urlencoded::to_string(query).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let key = generate_key();
        let req = conn
            .builder(Method::GET, &format!("/v1/agents/attach?{query}"))
            .header(CONNECTION, "upgrade")
            .header(UPGRADE, "websocket")
            .header(SEC_WEBSOCKET_VERSION, "13")
            .header(SEC_WEBSOCKET_KEY, &key)
            .body(Full::new(Bytes::new()))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let resp = conn
            .open(req, "attaching", |s| *s == StatusCode::SWITCHING_PROTOCOLS)
            .await?;
        let accepted = resp.headers().get(SEC_WEBSOCKET_ACCEPT);
        if accepted.map(|v| v.as_bytes()) != Some(derive_accept_key(key.as_bytes()).as_bytes()) {
            return Err(ClientError::Protocol(
                "the daemon's WebSocket handshake does not answer ours".into(),
            ));
        }
        let upgraded = hyper::upgrade::on(resp).await.map_err(ClientError::http)?;
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let io = TokioIo::new(upgraded);
        Ok(WebSocketStream::from_raw_socket(io, Role::Client, Some(config)).await)
    }
}
