//! Pairing over the API (`berth pair`). A start or stop answers when it has finished, so these
//! routes are outside the request timeout (a git step cannot be cancelled halfway).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use berth_proto::{ErrorCode, PairFlushed, PairRepo, PairStart, PairStatus, PairStopped};
use hyper::StatusCode;

use super::repo::repository;
use super::{ApiFailure, ApiJson};
use crate::pairing::{self, PairError};
use crate::state::Shared;

fn failure(e: PairError) -> ApiFailure {
    let (status, code, hint) = match &e {
        PairError::Blocked(_) => (
            StatusCode::CONFLICT,
            ErrorCode::PairingBlocked,
            Some("fix each line above, then run `berth pair` again"),
        ),
        PairError::Refused(_) => (StatusCode::CONFLICT, ErrorCode::PairingRefused, None),
        PairError::NotPaired => (StatusCode::NOT_FOUND, ErrorCode::NotPaired, None),
        PairError::Paused(_) => (
            StatusCode::CONFLICT,
            ErrorCode::PairingPaused,
            Some("`berth pair status` lists what pairing waits for"),
        ),
        PairError::Failed(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, None),
    };
    ApiFailure::new(status, code, e.to_string(), hint)
}

/// The checkout's top level, once the store is open.
fn root(shared: &Shared, repo: &str) -> Result<String, ApiFailure> {
    if shared.store.get().is_none() {
        return Err(ApiFailure::unavailable(ErrorCode::Starting));
    }
    Ok(repository(repo)?.dir().display().to_string())
}

pub async fn start(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<PairStart>,
) -> Result<Json<PairStatus>, ApiFailure> {
    let root = root(&shared, &req.repo)?;
    berth_core::names::validate(&req.agent).map_err(|e| {
        ApiFailure::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidAgent,
            e.to_string(),
            Some("`berth agent list` shows the agents of this project"),
        )
    })?;
    pairing::start(&shared, &root, &req.agent, req.no_stash)
        .await
        .map(Json)
        .map_err(failure)
}

pub async fn status(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<PairRepo>,
) -> Result<Json<PairStatus>, ApiFailure> {
    let root = root(&shared, &req.repo)?;
    Ok(Json(pairing::status(&shared, &root)))
}

pub async fn flush(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<PairRepo>,
) -> Result<Json<PairFlushed>, ApiFailure> {
    let root = root(&shared, &req.repo)?;
    pairing::flush(&shared, &root)
        .await
        .map(Json)
        .map_err(failure)
}

pub async fn stop(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<PairRepo>,
) -> Result<Json<PairStopped>, ApiFailure> {
    let root = root(&shared, &req.repo)?;
    pairing::stop(&shared, &root)
        .await
        .map(Json)
        .map_err(failure)
}
