//! The console's routes: the login link (`berth web`), the exchange of its code for a session
//! cookie, the session's CSRF token for the page, and logging out.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use berth_core::console::{self, LOGIN_CODE_TTL_MS};
use berth_proto::{ConsoleOpened, ConsoleSessionInfo, ErrorCode, LoggedOut};
use berth_store::ConsoleSession;
use hyper::StatusCode;

use super::ApiFailure;
use super::ready::services;
use crate::clock::now_ms;
use crate::state::Shared;

fn store_failure(e: impl std::fmt::Display) -> ApiFailure {
    ApiFailure::internal(format!("the console's store failed: {e}"))
}

/// `POST /v1/console/open` (Unix socket only): makes sure the console is served and answers a
/// one-time login link.
pub async fn open(State(shared): State<Arc<Shared>>) -> Result<Json<ConsoleOpened>, ApiFailure> {
    let store = services(&shared)?.store.clone();
    let remembered = store.console_port().map_err(store_failure)?.unwrap_or(0);
    let listener = &shared.console.listener;
    let addr = match listener.ensure(&shared, remembered).await {
        Ok(addr) => addr,
        // The remembered port is taken by now: any free one.
        Err(e) if remembered != 0 => {
            tracing::warn!(
                "cannot listen on 127.0.0.1:{remembered} again ({e}); choosing a free port"
            );
            listener.ensure(&shared, 0).await.map_err(bind_failure)?
        }
        Err(e) => return Err(bind_failure(e)),
    };
    if shared.tcp.is_none() {
        store.set_console_port(addr.port()).map_err(store_failure)?;
        if let Err(e) = shared.metadata().write(&shared.home()) {
            tracing::error!("cannot write metadata: {e}");
        }
    }
    let now = now_ms();
    let code = shared
        .console
        .new_code(now)
        .map_err(|e| ApiFailure::internal(e.to_string()))?;
    let mut origin = addr;
    if origin.ip().is_unspecified() {
        origin.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Ok(Json(ConsoleOpened {
        url: format!("http://{origin}/login?code={code}"),
        listener: addr.to_string(),
        expires_ms: now + LOGIN_CODE_TTL_MS,
    }))
}

fn bind_failure(e: std::io::Error) -> ApiFailure {
    ApiFailure::internal(format!("cannot listen on 127.0.0.1 for the console: {e}"))
}

/// `POST /v1/console/logout-all` (Unix socket only): ends every browser session.
pub async fn logout_all(State(shared): State<Arc<Shared>>) -> Result<Json<LoggedOut>, ApiFailure> {
    let store = services(&shared)?.store.clone();
    let revoked = store
        .remove_console_sessions(now_ms())
        .map_err(store_failure)?;
    Ok(Json(LoggedOut { revoked }))
}

/// `GET /login?code=…`: a good code opens a session (cookie) and leads to the console without
/// the code in the address; any other answer is a page saying what to do.
pub async fn login(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let code = query
        .as_deref()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "code").map(|(_, v)| v));
    let Some(code) = code else {
        return refusal("This address has no login code.");
    };
    let store = match services(&shared) {
        Ok(s) => s.store.clone(),
        Err(failure) => return failure.into_response(),
    };
    match shared.console.login(&store, &code, now_ms()) {
        Ok((secret, _)) => {
            let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
            match HeaderValue::from_str(&console::session_cookie(&secret)) {
                Ok(cookie) => {
                    resp.headers_mut().insert(header::SET_COOKIE, cookie);
                }
                Err(e) => return ApiFailure::internal(e.to_string()).into_response(),
            }
            no_store(resp)
        }
        Err(crate::console::ConsoleError::Refused(why)) => refusal(&format!("{}.", capital(why))),
        Err(e) => ApiFailure::internal(e.to_string()).into_response(),
    }
}

fn capital(why: impl std::fmt::Display) -> String {
    let s = why.to_string();
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A login refused: 401 and a page that says why and what to do.
fn refusal(why: &str) -> Response {
    let page = format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>berth: not logged in\
         </title><main><h1>Not logged in</h1><p>{why}</p><p>Run <code>berth web</code> in a \
         terminal and open the link it prints; each link works once, for 60 seconds.</p></main>\
         </html>"
    );
    no_store((StatusCode::UNAUTHORIZED, Html(page)).into_response())
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// `GET /v1/console/session`: the page's own session (its CSRF token).
pub async fn session(
    session: Option<Extension<ConsoleSession>>,
) -> Result<Json<ConsoleSessionInfo>, ApiFailure> {
    let Extension(session) = session.ok_or_else(no_session)?;
    Ok(Json(ConsoleSessionInfo {
        csrf: session.csrf,
        expires_ms: session.expires_ms,
    }))
}

/// `POST /v1/console/logout`: ends the page's own session.
pub async fn logout(
    State(shared): State<Arc<Shared>>,
    session: Option<Extension<ConsoleSession>>,
) -> Result<Response, ApiFailure> {
    let Extension(session) = session.ok_or_else(no_session)?;
    let store = services(&shared)?.store.clone();
    store
        .remove_console_session(&session.digest)
        .map_err(store_failure)?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(cookie) = HeaderValue::from_str(&console::cleared_cookie()) {
        resp.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(resp)
}

fn no_session() -> ApiFailure {
    ApiFailure::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::BadRequest,
        "this request has no console session (it came over the Unix socket or with a bearer token)",
        Some("sessions belong to browsers: open the link `berth web` prints"),
    )
}
