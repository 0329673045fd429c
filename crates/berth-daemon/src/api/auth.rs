//! Bearer-token check for the TCP listener: every request, loopback included.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_proto::ErrorCode;
use hyper::StatusCode;
use hyper::header::{AUTHORIZATION, WWW_AUTHENTICATE};

use super::ApiFailure;
use crate::state::Shared;

pub async fn require_token(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ok = match (&shared.token, presented) {
        (Some(token), Some(p)) => token.matches(p),
        _ => false,
    };
    if ok {
        return next.run(req).await;
    }
    let message = if presented.is_some() {
        "the bearer token is wrong"
    } else {
        "the TCP listener requires `Authorization: Bearer <token>`"
    };
    let mut resp = ApiFailure::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
        message,
        Some("use the token from the daemon's --token-file or BERTH_TOKEN"),
    )
    .into_response();
    resp.headers_mut().insert(
        WWW_AUTHENTICATE,
        hyper::header::HeaderValue::from_static("Bearer"),
    );
    resp
}
