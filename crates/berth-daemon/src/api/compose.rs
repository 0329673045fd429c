//! `berth up` / `berth down` over the API.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use berth_proto::ErrorCode;
use hyper::StatusCode;
use serde::Deserialize;

use super::ready::services;
use super::repo::repository;
use super::{ApiFailure, ApiJson};
use crate::compose::{self, ComposeError, Report};
use crate::state::Shared;

/// Body of `POST /v1/up` and `POST /v1/down`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComposeRequest {
    pub repo: String,
    /// Only these (and what they depend on); empty: everything.
    #[serde(default)]
    pub names: Vec<String>,
    pub timeout_ms: u64,
}

fn failure(e: ComposeError) -> ApiFailure {
    let (status, code) = match &e {
        ComposeError::NoFile(_) | ComposeError::Config(_) | ComposeError::Deps(_) => {
            (StatusCode::BAD_REQUEST, ErrorCode::InvalidConfig)
        }
        ComposeError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, ErrorCode::Timeout),
        ComposeError::Ended { .. } | ComposeError::Start { .. } | ComposeError::Define { .. } => {
            (StatusCode::CONFLICT, ErrorCode::StartFailed)
        }
        ComposeError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
    };
    ApiFailure::new(status, code, e.to_string(), None)
}

pub async fn up(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<ComposeRequest>,
) -> Result<Json<Report>, ApiFailure> {
    let root = repository(&req.repo)?;
    let timeout = Duration::from_millis(req.timeout_ms);
    compose::up(services(&shared)?, &root, &req.names, timeout)
        .await
        .map(Json)
        .map_err(failure)
}

pub async fn down(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<ComposeRequest>,
) -> Result<Json<Report>, ApiFailure> {
    let root = repository(&req.repo)?;
    let timeout = Duration::from_millis(req.timeout_ms);
    compose::down(services(&shared)?, &root, &req.names, timeout)
        .await
        .map(Json)
        .map_err(failure)
}
