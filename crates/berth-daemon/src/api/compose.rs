//! `berth up` / `berth down` over the API.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use berth_proto::{ComposeRequest, DownReport, ErrorCode, UpReport};
use hyper::StatusCode;

use super::ready::services;
use super::repo::repository;
use super::{ApiFailure, ApiJson};
use crate::compose::{self, ComposeError};
use crate::state::Shared;

/// Where a missing or unreadable `berth.toml` sends the user.
const FORMAT_HINT: &str = "write berth.toml at the repository root, e.g. `[service.web]` with \
     `command = \"npm run dev\"`; its format is under `berth up` in docs/cli.md";

fn failure(e: ComposeError) -> ApiFailure {
    let (status, code, hint) = match &e {
        ComposeError::NoFile(_) | ComposeError::Unreadable { .. } => (
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidConfig,
            Some(FORMAT_HINT),
        ),
        ComposeError::Config(_) | ComposeError::Deps(_) => {
            (StatusCode::BAD_REQUEST, ErrorCode::InvalidConfig, None)
        }
        ComposeError::Define { .. } => (StatusCode::CONFLICT, ErrorCode::StartFailed, None),
        ComposeError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, None),
    };
    ApiFailure::new(status, code, e.to_string(), hint)
}

/// Answers with the report also when processes failed: it lists every failure.
pub async fn up(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<ComposeRequest>,
) -> Result<Json<UpReport>, ApiFailure> {
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
) -> Result<Json<DownReport>, ApiFailure> {
    let root = repository(&req.repo)?;
    let timeout = Duration::from_millis(req.timeout_ms);
    compose::down(services(&shared)?, &root, &req.names, timeout)
        .await
        .map(Json)
        .map_err(failure)
}
