//! Accept loops for the Unix socket and the optional TCP listener.
//!
//! Hand-written rather than `axum::serve` so that (1) the peer uid of every Unix connection is
//! checked before anything is read from it, (2) header reads are bounded in time, and (3) all
//! connections can be drained, with a bound, at shutdown.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

use crate::state::Shared;

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Either listener.
pub enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

/// Accepts connections until `stop` turns true, then drains the open ones for at most `drain`.
pub async fn run(
    listener: Listener,
    router: Router,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    drain: Duration,
) {
    let graceful = GracefulShutdown::new();
    let my_uid = nix::unistd::geteuid().as_raw();
    loop {
        tokio::select! {
            () = async { let _ = stop.wait_for(|s| *s).await; } => break,
            accepted = accept(&listener) => match accepted {
                Ok(Conn::Unix(stream)) => {
                    match stream.peer_cred() {
                        Ok(cred) if cred.uid() == my_uid => {}
                        Ok(cred) => {
                            tracing::warn!(uid = cred.uid(), "refused a connection from another user");
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!("refused a connection whose peer is unknown: {e}");
                            continue;
                        }
                    }
                    serve_connection(stream, &router, &shared, &graceful);
                }
                Ok(Conn::Tcp(stream)) => {
                    let _ = stream.set_nodelay(true);
                    serve_connection(stream, &router, &shared, &graceful);
                }
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "some connections were still open after {} ms; closing them",
            drain.as_millis()
        );
    }
}

enum Conn {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

async fn accept(listener: &Listener) -> std::io::Result<Conn> {
    match listener {
        Listener::Unix(l) => l.accept().await.map(|(s, _)| Conn::Unix(s)),
        Listener::Tcp(l) => l.accept().await.map(|(s, _)| Conn::Tcp(s)),
    }
}

fn serve_connection<S>(
    stream: S,
    router: &Router,
    shared: &Arc<Shared>,
    graceful: &GracefulShutdown,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(router.clone());
    let watcher = graceful.watcher();
    let shared = shared.clone();
    shared.open_connections.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT);
        // With upgrades: `GET /v1/agents/attach` becomes a WebSocket, which then lives on
        // outside the connection (a shutdown's drain does not wait for it).
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        if let Err(e) = watcher.watch(conn).await {
            tracing::debug!("connection ended with an error: {e}");
        }
        shared.open_connections.fetch_sub(1, Ordering::Relaxed);
    });
}
