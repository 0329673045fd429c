//! The control API: routes, errors, authentication, event streaming.
//!
//! | method | path | |
//! | --- | --- | --- |
//! | GET | `/handshake` | product, protocol version, capabilities, phase (frozen forever) |
//! | GET | `/v1/status` | the daemon's status and activity |
//! | POST | `/v1/daemon/shutdown` | graceful shutdown (`ShutdownRequest`) |
//! | GET | `/v1/events?since=SEQ` | Server-Sent Events, replay then live; `Last-Event-ID` resumes |
//! | GET | `/v1/events/log?since=SEQ&limit=N` | a page of the event log as JSON |
//! | POST | `/v1/agents/new`, `list`, `show`, `start`, `stop`, `rm` | agents (`berth agent`) |
//! | POST | `/v1/agents/screen`, `input` | a terminal agent's screen; typing into it |
//! | GET | `/v1/agents/attach?repo=…&name=…` | a terminal agent's terminal over a WebSocket |
//! | GET | `/v1/agents/attach/handover?…` | the same, its keeper stream handed to the client (Unix socket) |
//! | GET | `/v1/agents/logs?repo=…&name=…` | an agent's output log as Server-Sent Events, live |
//! | GET | `/v1/overview` | the daemon, every project's agents and services, each pairing |
//! | POST | `/v1/console/open`, `logout-all` | a console login link; revoke sessions (Unix socket) |
//! | GET | `/v1/console/session`; POST `/v1/console/logout` | the page's session (TCP) |
//! | GET | `/`, `/assets/…`, `/login?code=…` | the web console (TCP listeners only) |
//! | POST | `/v1/inbox/send`, `list`, `cancel`, `counts` | agents' inboxes (`berth send`, `berth inbox`) |
//! | POST | `/v1/turns/list`, `show` | turns: every delivery attempt (`berth turns`) |
//! | POST | `/v1/timers/add`, `list`, `rm` | agents' timers (`berth timer`) |
//! | POST | `/v1/hooks/add`, `list`, `rm` | agents' webhooks (`berth hook`) |
//! | POST | `/hooks/<agent>/<hook>` | a webhook delivery: signed, no bearer token |
//! | POST | `/v1/up`, `/v1/down` | `berth.toml` in dependency order |
//! | POST | `/v1/stash/save`, `list`, `show`, `restore`, `drop` | snapshots (`berth stash`) |
//! | POST | `/v1/pair/start`, `status`, `flush`, `stop` | pairing (`berth pair`) |
//! | POST | `/v1/pair/leftovers` | berth's lines left in `info/exclude` (`berth doctor`) |
//! | POST | `/v1/pair/conflict` | a kept conflict and how it differs from the file now |
//!
//! The Unix socket is the local user's (its peer uid is checked). On a TCP listener every
//! request passes [`auth::guard`]: a bearer token, or a console session with its `Host`,
//! `Origin` and CSRF checks.

mod agents;
mod attach;
mod auth;
mod compose;
mod console;
mod error;
mod events;
mod handover;
mod hooks;
mod inbox;
mod logs;
mod overview;
mod pair;
mod ready;
mod repo;
mod stash;
mod timers;
mod turns;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_core::lifecycle::Input;
use berth_proto::{DaemonStatus, ErrorCode, Handshake, ShutdownRequest};
use hyper::StatusCode;

pub use error::{ApiFailure, ApiJson, ApiQuery};

use crate::state::Shared;

/// How long a non-streaming request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The router for the Unix socket (`tcp` is `None`), or for the TCP listener at `tcp`: that one
/// also serves the console and checks every request ([`auth::guard`]).
pub fn router(shared: Arc<Shared>, tcp: Option<SocketAddr>) -> Router {
    let bounded = Router::new()
        .route(berth_proto::HANDSHAKE_PATH, get(handshake))
        .route("/v1/status", get(status))
        .route("/v1/daemon/shutdown", post(shutdown))
        .route("/v1/events/log", get(events::log))
        .route("/v1/overview", get(overview::overview))
        .layer(middleware::from_fn(timeout));
    let router = bounded
        .route("/v1/events", get(events::stream))
        .route("/v1/agents/new", post(agents::new))
        .route("/v1/agents/list", post(agents::list))
        .route("/v1/agents/show", post(agents::show))
        .route("/v1/agents/start", post(agents::start))
        .route("/v1/agents/stop", post(agents::stop))
        .route("/v1/agents/rm", post(agents::rm))
        .route("/v1/agents/screen", post(agents::screen))
        .route("/v1/agents/input", post(agents::input))
        .route("/v1/agents/attach", get(attach::attach))
        .route("/v1/agents/logs", get(logs::stream))
        .route("/v1/inbox/send", post(inbox::send))
        .route("/v1/inbox/list", post(inbox::list))
        .route("/v1/inbox/cancel", post(inbox::cancel))
        .route("/v1/inbox/counts", post(inbox::counts))
        .route("/v1/turns/list", post(turns::list))
        .route("/v1/turns/show", post(turns::show))
        .route("/v1/timers/add", post(timers::add))
        .route("/v1/timers/list", post(timers::list))
        .route("/v1/timers/rm", post(timers::remove))
        .route("/v1/hooks/add", post(hooks::add))
        .route("/v1/hooks/list", post(hooks::list))
        .route("/v1/hooks/rm", post(hooks::remove))
        .route("/v1/up", post(compose::up))
        .route("/v1/down", post(compose::down))
        .route("/v1/stash/save", post(stash::save))
        .route("/v1/stash/list", post(stash::list))
        .route("/v1/stash/show", post(stash::show))
        .route("/v1/stash/restore", post(stash::restore))
        .route("/v1/stash/drop", post(stash::drop))
        .route("/v1/pair/start", post(pair::start))
        .route("/v1/pair/status", post(pair::status))
        .route("/v1/pair/flush", post(pair::flush))
        .route("/v1/pair/stop", post(pair::stop))
        .route("/v1/pair/leftovers", post(pair::leftovers))
        .route("/v1/pair/conflict", post(pair::conflict));
    let router = match tcp {
        None => router
            .route(berth_proto::HANDOVER_PATH, get(handover::handover))
            .route("/v1/console/open", post(console::open))
            .route("/v1/console/logout-all", post(console::logout_all)),
        Some(_) => router
            .route("/", get(crate::console::assets::index))
            .route("/assets/{*file}", get(crate::console::assets::asset))
            .route("/login", get(console::login))
            .route("/v1/console/session", get(console::session))
            .route("/v1/console/logout", post(console::logout)),
    };
    let router = router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(berth_proto::MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            count_request,
        ));
    let router = match tcp {
        Some(listener) => router.layer(middleware::from_fn_with_state(
            auth::Gate {
                shared: shared.clone(),
                listener,
            },
            auth::guard,
        )),
        None => router,
    };
    // Webhooks carry a signature, not the bearer token: outside the token's layer.
    let router = router.route("/hooks/{agent}/{hook}", post(hooks::deliver));
    router.with_state(shared)
}

async fn handshake(State(shared): State<Arc<Shared>>) -> Json<Handshake> {
    Json(shared.handshake())
}

async fn status(State(shared): State<Arc<Shared>>) -> Json<DaemonStatus> {
    Json(shared.status())
}

async fn shutdown(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<ShutdownRequest>,
) -> Result<StatusCode, ApiFailure> {
    let reason = req
        .reason
        .unwrap_or_else(|| "requested over the API".to_string());
    tracing::info!(%reason, all = req.all, "shutdown requested");
    if req.all
        && let Some(services) = shared.services()
    {
        services.agents.stop_all().await;
    }
    shared
        .advance(Input::ShutdownRequested)
        .map_err(|e| ApiFailure::internal(e.to_string()))?;
    Ok(StatusCode::ACCEPTED)
}

async fn not_found() -> ApiFailure {
    ApiFailure::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such endpoint",
        Some("see the endpoint table in docs/api.md"),
    )
}

async fn method_not_allowed() -> ApiFailure {
    ApiFailure::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "this endpoint does not accept that method",
        None,
    )
}

async fn count_request(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    next.run(req).await
}

async fn timeout(req: Request, next: Next) -> Result<Response, ApiFailure> {
    tokio::time::timeout(REQUEST_TIMEOUT, next.run(req))
        .await
        .map_err(|_| {
            ApiFailure::new(
                StatusCode::GATEWAY_TIMEOUT,
                ErrorCode::Timeout,
                format!(
                    "the request took longer than {} s",
                    REQUEST_TIMEOUT.as_secs()
                ),
                None,
            )
        })
}
