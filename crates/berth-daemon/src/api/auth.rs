//! Who may use a TCP listener, checked on every request, loopback included.
//!
//! - A request with `Authorization` is a program's: its bearer token must be the daemon's.
//! - Any other request is a browser's. Its `Host` must name this listener (no DNS rebinding).
//!   The page and its files and `/login` need nothing more; everything else needs a console
//!   session cookie, and a request that changes anything (any method but GET and HEAD, and a
//!   WebSocket upgrade) must also come from the console's own origin and, unless it is a
//!   WebSocket, carry the session's CSRF token.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_core::console::{self, CSRF_HEADER};
use berth_proto::ErrorCode;
use berth_store::ConsoleSession;
use hyper::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN, UPGRADE, WWW_AUTHENTICATE};
use hyper::{HeaderMap, Method, StatusCode};
use subtle::ConstantTimeEq;

use super::ApiFailure;
use super::ready::services;
use crate::clock::now_ms;
use crate::state::Shared;

/// The state of the check: the run, and the address of the listener it guards.
#[derive(Debug, Clone)]
pub struct Gate {
    pub shared: Arc<Shared>,
    pub listener: SocketAddr,
}

pub async fn guard(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    let headers = req.headers();
    if let Some(value) = headers.get(AUTHORIZATION) {
        let presented = value.to_str().ok().and_then(bearer);
        let ok = match (&gate.shared.token, presented) {
            (Some(token), Some(p)) => token.matches(p),
            _ => false,
        };
        if ok {
            return next.run(req).await;
        }
        return unauthorized("the bearer token is wrong");
    }
    let host = text(headers, HOST.as_str());
    if !console::host_allowed(host, gate.listener) {
        return forbidden(
            "the Host header does not name this listener, so the request is refused \
             (a page under another name must not reach berth)",
            "open the console with the link `berth web` prints",
        );
    }
    if is_public(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let Some(secret) = text(headers, COOKIE.as_str()).and_then(console::session_from_cookies)
    else {
        return unauthorized(
            "the TCP listener requires `Authorization: Bearer <token>` or a console session",
        );
    };
    let session = match find_session(&gate.shared, secret.to_string()).await {
        Ok(Some(session)) => session,
        Ok(None) => return unauthorized("the console session expired or was revoked"),
        Err(failure) => return failure.into_response(),
    };
    if changes_state(req.method(), headers) {
        let host = host.unwrap_or_default();
        let origin_ok = console::origin_allowed(
            text(headers, ORIGIN.as_str()),
            text(headers, "sec-fetch-site"),
            host,
        );
        if !origin_ok {
            return forbidden(
                "this request comes from another origin; only the console's own page may \
                 change anything",
                "use the console at the address `berth web` prints",
            );
        }
        let csrf_ok = is_websocket(headers)
            || text(headers, CSRF_HEADER)
                .is_some_and(|t| bool::from(t.as_bytes().ct_eq(session.csrf.as_bytes())));
        if !csrf_ok {
            return forbidden(
                "the request lacks the session's CSRF token",
                "reload the console page and try again",
            );
        }
    }
    req.extensions_mut().insert(session);
    next.run(req).await
}

/// The page, its files and the login route: served to anyone whose `Host` is right.
fn is_public(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && (path == "/" || path == "/login" || path.starts_with("/assets/"))
}

fn changes_state(method: &Method, headers: &HeaderMap) -> bool {
    !(method == Method::GET || method == Method::HEAD) || is_websocket(headers)
}

fn is_websocket(headers: &HeaderMap) -> bool {
    text(headers, UPGRADE.as_str()).is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
}

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn find_session(
    shared: &Arc<Shared>,
    secret: String,
) -> Result<Option<ConsoleSession>, ApiFailure> {
    let store = services(shared)?.store.clone();
    tokio::task::spawn_blocking(move || crate::console::session(&store, &secret, now_ms()))
        .await
        .map_err(|e| ApiFailure::internal(format!("checking the session failed: {e}")))?
        .map_err(|e| ApiFailure::internal(format!("checking the session failed: {e}")))
}

fn unauthorized(message: &str) -> Response {
    let mut resp = ApiFailure::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
        message,
        Some(
            "programs: use the token from the daemon's --token-file or BERTH_TOKEN; \
             browsers: run `berth web` and open the link it prints",
        ),
    )
    .into_response();
    resp.headers_mut().insert(
        WWW_AUTHENTICATE,
        hyper::header::HeaderValue::from_static("Bearer"),
    );
    resp
}

fn forbidden(message: &str, hint: &str) -> Response {
    ApiFailure::new(
        StatusCode::FORBIDDEN,
        ErrorCode::Forbidden,
        message,
        Some(hint),
    )
    .into_response()
}

/// The credentials of a `Bearer` authorization; the scheme is case-insensitive (RFC 9110 §11.1).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim_start_matches(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_is_case_insensitive_and_the_token_is_not() {
        for value in ["Bearer Tok", "bearer Tok", "BEARER Tok", "bEaReR  Tok"] {
            assert_eq!(bearer(value), Some("Tok"), "{value}");
        }
        for value in ["Basic Tok", "Bearer", "BearerTok", "Bearers Tok", ""] {
            assert_eq!(bearer(value), None, "{value}");
        }
    }

    #[test]
    fn only_the_page_its_files_and_login_are_public_and_only_to_read() {
        assert!(is_public(&Method::GET, "/"));
        assert!(is_public(&Method::GET, "/assets/app.js"));
        assert!(is_public(&Method::HEAD, "/login"));
        assert!(!is_public(&Method::POST, "/login"));
        assert!(!is_public(&Method::GET, "/v1/status"));
        assert!(!is_public(&Method::GET, "/handshake"));
        assert!(!is_public(&Method::GET, "/loginx"));
    }

    #[test]
    fn a_websocket_upgrade_changes_state_like_a_post() {
        let mut headers = HeaderMap::new();
        assert!(!changes_state(&Method::GET, &headers));
        assert!(changes_state(&Method::POST, &headers));
        assert!(changes_state(&Method::DELETE, &headers));
        headers.insert(UPGRADE, "WebSocket".parse().unwrap());
        assert!(changes_state(&Method::GET, &headers));
    }
}
