//! Typed client for berth's control API.
//!
//! One HTTP/1.1 connection per call by default ([`Client`]): connecting to a Unix socket costs
//! microseconds, and a fresh connection per command keeps the CLI stateless. [`Connection`]
//! keeps one connection open for callers that make many requests (benchmarks, the events
//! follower). [`EventStream`] reads Server-Sent Events; a follower that loses the connection
//! resumes with `Last-Event-ID` (see `berth events --follow`). [`Client::attach`] opens a
//! terminal agent's WebSocket; [`Client::handover`] takes its keeper stream over instead (the
//! daemon's Unix socket only), so keys and output pass between the client and the keeper
//! with no daemon in between.

mod attach;
mod error;
mod handover;
mod sse;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use berth_proto::{DaemonStatus, ErrorBody, Event, Handshake, ShutdownRequest};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};

pub use attach::AttachStream;
pub use error::ClientError;
pub use handover::HandedOver;
pub use sse::{EventStream, StreamItem};

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp {
        addr: SocketAddr,
        token: Option<String>,
    },
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "{}", p.display()),
            Endpoint::Tcp { addr, .. } => write!(f, "http://{addr}"),
        }
    }
}

/// A raw response, for callers that inspect status and body themselves.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

/// A page of the event log (`GET /v1/events/log`).
#[derive(Debug, Clone, Deserialize)]
pub struct EventPage {
    pub events: Vec<Event>,
    pub last_seq: u64,
    pub first_seq: Option<u64>,
}

/// The default bound on connecting plus one request/response exchange.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for one endpoint.
#[derive(Debug, Clone)]
pub struct Client {
    endpoint: Endpoint,
    timeout: Duration,
}

impl Client {
    pub fn new(endpoint: Endpoint) -> Client {
        Client {
            endpoint,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn unix(path: impl Into<PathBuf>) -> Client {
        Client::new(Endpoint::Unix(path.into()))
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Opens a connection that can carry many requests.
    pub async fn connect(&self) -> Result<Connection, ClientError> {
        let fut = open(&self.endpoint);
        let sender = tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| ClientError::Timeout {
                what: format!("connecting to {}", self.endpoint),
            })??;
        Ok(Connection {
            sender,
            endpoint: self.endpoint.clone(),
            timeout: self.timeout,
        })
    }

    /// Sends one request on a fresh connection.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response, ClientError> {
        self.connect().await?.request(method, path, body).await
    }

    pub async fn handshake(&self) -> Result<Handshake, ClientError> {
        self.connect().await?.handshake().await
    }

    pub async fn status(&self) -> Result<DaemonStatus, ClientError> {
        self.connect().await?.get_json("/v1/status").await
    }

    /// Asks the daemon to shut down; with `all`, it first stops every agent and service.
    pub async fn shutdown(&self, reason: &str, all: bool) -> Result<(), ClientError> {
        let req = ShutdownRequest {
            reason: Some(reason.to_string()),
            all,
        };
        let body = serde_json::to_vec(&req).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let resp = self
            .request(Method::POST, "/v1/daemon/shutdown", Some(body))
            .await?;
        expect_success(&resp)
    }

    /// POST a JSON body and decode the JSON answer; a non-2xx answer becomes [`ClientError::Api`].
    pub async fn post_json<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let resp = self.request(Method::POST, path, Some(body)).await?;
        expect_success(&resp)?;
        serde_json::from_slice(&resp.body).map_err(|e| {
            ClientError::Protocol(format!("the answer to {path} is not what berth sends: {e}"))
        })
    }

    pub async fn events_page(&self, since: u64, limit: usize) -> Result<EventPage, ClientError> {
        let path = format!("/v1/events/log?since={since}&limit={limit}");
        self.connect().await?.get_json(&path).await
    }

    /// Subscribes to the event stream, starting after `since`.
    pub async fn subscribe(&self, since: u64) -> Result<EventStream, ClientError> {
        let mut conn = self.connect().await?;
        let req = conn
            .builder(Method::GET, &format!("/v1/events?since={since}"))
            .header(ACCEPT, "text/event-stream")
            .header("last-event-id", since.to_string())
            .body(Full::new(Bytes::new()))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let resp = conn
            .open(req, "subscribing to events", StatusCode::is_success)
            .await?;
        Ok(EventStream::new(resp.into_body()))
    }
}

/// One open connection; requests on it are sent one after another.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    endpoint: Endpoint,
    timeout: Duration,
}

impl Connection {
    /// Sends a request whose answer is a stream: the response once its head arrived, unless
    /// its status is not `expected` (then the daemon's error). `what` names it for a timeout.
    async fn open(
        &mut self,
        req: Request<Full<Bytes>>,
        what: &str,
        expected: impl Fn(&StatusCode) -> bool,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let resp = tokio::time::timeout(self.timeout, self.sender.send_request(req))
            .await
            .map_err(|_| ClientError::Timeout { what: what.into() })?
            .map_err(ClientError::http)?;
        if !expected(&resp.status()) {
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(ClientError::http)?
                .to_bytes();
            return Err(api_error(status, &body));
        }
        Ok(resp)
    }

    fn builder(&self, method: Method, path: &str) -> hyper::http::request::Builder {
        let host = match &self.endpoint {
            Endpoint::Unix(_) => "berth".to_string(),
            Endpoint::Tcp { addr, .. } => addr.to_string(),
        };
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, host);
        if let Endpoint::Tcp { token: Some(t), .. } = &self.endpoint {
            b = b.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        b
    }

    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response, ClientError> {
        let mut b = self.builder(method, path);
        if body.is_some() {
            b = b.header(CONTENT_TYPE, "application/json");
        }
        let req = b
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let exchange = async {
            self.sender.ready().await.map_err(ClientError::http)?;
            let resp = self
                .sender
                .send_request(req)
                .await
                .map_err(ClientError::http)?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.map_err(ClientError::http)?.to_bytes();
            Ok::<_, ClientError>(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout {
                what: format!("waiting for {path}"),
            })?
    }

    /// GET and decode JSON; a non-2xx answer becomes [`ClientError::Api`].
    pub async fn get_json<T: DeserializeOwned>(&mut self, path: &str) -> Result<T, ClientError> {
        let resp = self.request(Method::GET, path, None).await?;
        expect_success(&resp)?;
        serde_json::from_slice(&resp.body).map_err(|e| {
            ClientError::Protocol(format!("the answer to {path} is not what berth sends: {e}"))
        })
    }

    /// The handshake; anything that is not a berth handshake is [`ClientError::NotBerth`].
    pub async fn handshake(&mut self) -> Result<Handshake, ClientError> {
        let resp = self
            .request(Method::GET, berth_proto::HANDSHAKE_PATH, None)
            .await?;
        if resp.status == StatusCode::UNAUTHORIZED {
            return Err(api_error(resp.status, &resp.body));
        }
        match serde_json::from_slice::<Handshake>(&resp.body) {
            Ok(h) if resp.status.is_success() && h.product == berth_proto::PRODUCT => Ok(h),
            _ => Err(ClientError::NotBerth {
                detail: format!(
                    "HTTP {} with {} bytes that are not a berth handshake",
                    resp.status.as_u16(),
                    resp.body.len()
                ),
            }),
        }
    }
}

fn expect_success(resp: &Response) -> Result<(), ClientError> {
    if resp.status.is_success() {
        Ok(())
    } else {
        Err(api_error(resp.status, &resp.body))
    }
}

fn api_error(status: StatusCode, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => ClientError::Api {
            status: status.as_u16(),
            error: b.error,
        },
        Err(_) => ClientError::Protocol(format!(
            "HTTP {} without a berth error body: {}",
            status.as_u16(),
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )),
    }
}

async fn open(endpoint: &Endpoint) -> Result<SendRequest<Full<Bytes>>, ClientError> {
    match endpoint {
        Endpoint::Unix(path) => {
            let stream = tokio::net::UnixStream::connect(path)
                .await
                .map_err(|source| ClientError::connect(endpoint, source))?;
            handshake_http(stream).await
        }
        Endpoint::Tcp { addr, .. } => {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|source| ClientError::connect(endpoint, source))?;
            let _ = stream.set_nodelay(true);
            handshake_http(stream).await
        }
    }
}

async fn handshake_http<S>(stream: S) -> Result<SendRequest<Full<Bytes>>, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(ClientError::http)?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok(sender)
}
