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
        .and_then(bearer);
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

/// The credentials of a `Bearer` authorization; the scheme is case-insensitive (RFC 9110 §11.1).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim_start_matches(' '))
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn the_scheme_is_case_insensitive_and_the_token_is_not() {
        for value in ["Bearer Tok", "bearer Tok", "BEARER Tok", "bEaReR  Tok"] {
            assert_eq!(bearer(value), Some("Tok"), "{value}");
        }
        for value in ["Basic Tok", "Bearer", "BearerTok", "Bearers Tok", ""] {
            assert_eq!(bearer(value), None, "{value}");
        }
    }
}
