//! Structured error responses, and the body and query extractors that reject with them.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use berth_proto::{ApiError, ErrorBody, ErrorCode};
use hyper::StatusCode;
use serde::de::DeserializeOwned;

/// An error response: `{"error": {"code", "message", "hint"}}` with an HTTP status.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub error: ApiError,
}

impl ApiFailure {
    pub fn new(
        status: StatusCode,
        code: ErrorCode,
        message: impl Into<String>,
        hint: Option<&str>,
    ) -> ApiFailure {
        ApiFailure {
            status,
            error: ApiError {
                code,
                message: message.into(),
                hint: hint.map(str::to_string),
            },
        }
    }

    pub fn internal(message: impl Into<String>) -> ApiFailure {
        ApiFailure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            message,
            Some("see `berth daemon logs`"),
        )
    }

    /// A git command failed (500 `git_failed`); the message is git's.
    pub fn git_failed(message: impl Into<String>) -> ApiFailure {
        ApiFailure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::GitFailed,
            message,
            None,
        )
    }

    /// The daemon is not ready for this request in its current phase.
    pub fn unavailable(code: ErrorCode) -> ApiFailure {
        let (message, hint) = match code {
            ErrorCode::Stopping => (
                "the daemon is shutting down",
                "start it again when it is gone",
            ),
            _ => ("the daemon is still starting", "retry in a moment"),
        };
        ApiFailure::new(StatusCode::SERVICE_UNAVAILABLE, code, message, Some(hint))
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        (self.status, axum::Json(ErrorBody { error: self.error })).into_response()
    }
}

/// Like `axum::Json`, but every rejection is an [`ApiFailure`] with a stable code:
/// `body_too_large` (413) past the body limit, `malformed_json` (400) otherwise.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiFailure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(from_rejection(rejection)),
        }
    }
}

fn from_rejection(rejection: JsonRejection) -> ApiFailure {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiFailure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BodyTooLarge,
            format!(
                "the request body exceeds {} bytes",
                berth_proto::MAX_BODY_BYTES
            ),
            Some("send a smaller body"),
        );
    }
    let hint = match rejection {
        JsonRejection::MissingJsonContentType(_) => "send `Content-Type: application/json`",
        _ => "send a JSON object as documented in docs/api.md",
    };
    ApiFailure::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::MalformedJson,
        rejection.body_text(),
        Some(hint),
    )
}

/// Like `axum::extract::Query`, but a query string that does not parse is a `bad_request` (400)
/// in the error envelope, not axum's plain-text rejection.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(rejection) => Err(bad_query(rejection)),
        }
    }
}

fn bad_query(rejection: QueryRejection) -> ApiFailure {
    ApiFailure::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::BadRequest,
        rejection.body_text(),
        Some("see the endpoint's query parameters in docs/api.md"),
    )
}
