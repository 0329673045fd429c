//! Pairing over the API (`berth pair`). A start or stop answers when it has finished, so these
//! routes are outside the request timeout (a git step cannot be cancelled halfway).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use berth_proto::{
    ErrorCode, PairConflictDiff, PairConflictRequest, PairFlushed, PairLeftovers,
    PairLeftoversRequest, PairRepo, PairStart, PairStatus, PairStopped,
};
use hyper::StatusCode;

use super::ready::services;
use super::repo::repository;
use super::{ApiFailure, ApiJson};
use crate::pairing::{PairingError, Pairings};
use crate::state::Shared;

fn failure(e: PairingError) -> ApiFailure {
    let (status, code, hint) = match &e {
        PairingError::Blocked(_) => (
            StatusCode::CONFLICT,
            ErrorCode::PairingBlocked,
            Some("fix each line above, then run `berth pair` again"),
        ),
        PairingError::Refused(_) => (StatusCode::CONFLICT, ErrorCode::PairingRefused, None),
        PairingError::NotPaired => (StatusCode::NOT_FOUND, ErrorCode::NotPaired, None),
        PairingError::Paused(_) => (
            StatusCode::CONFLICT,
            ErrorCode::PairingPaused,
            Some("`berth pair status` lists what pairing waits for"),
        ),
        PairingError::FlushTimedOut(_) => (StatusCode::GATEWAY_TIMEOUT, ErrorCode::Timeout, None),
        PairingError::NotSyncing | PairingError::LoopEnded => (
            StatusCode::CONFLICT,
            ErrorCode::PairingPaused,
            Some("`berth pair status` says why; `berth daemon logs` has the details"),
        ),
        // A step failed, or pairing could not read or record what it needs: the message
        // says what and what is left.
        _ => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, None),
    };
    ApiFailure::new(status, code, e.to_string(), hint)
}

/// The run's pairings and the checkout's top level, once the store is open.
fn target<'a>(shared: &'a Shared, repo: &str) -> Result<(&'a Pairings, String), ApiFailure> {
    let pairings = &services(shared)?.pairings;
    Ok((pairings, repository(repo)?.dir().display().to_string()))
}

pub async fn start(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<PairStart>,
) -> Result<Json<PairStatus>, ApiFailure> {
    let (pairings, root) = target(&shared, &req.repo)?;
    berth_core::names::validate(&req.agent).map_err(|e| {
        ApiFailure::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidAgent,
            e.to_string(),
            Some("`berth agent list` shows the agents of this project"),
        )
    })?;
    pairings
        .start(&root, &req.agent, req.no_stash)
        .await
        .map(Json)
        .map_err(failure)
}

pub async fn status(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<PairRepo>,
) -> Result<Json<PairStatus>, ApiFailure> {
    let (pairings, root) = target(&shared, &req.repo)?;
    Ok(Json(pairings.status(&root)))
}

pub async fn flush(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<PairRepo>,
) -> Result<Json<PairFlushed>, ApiFailure> {
    let (pairings, root) = target(&shared, &req.repo)?;
    pairings.flush(&root).await.map(Json).map_err(failure)
}

pub async fn stop(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<PairRepo>,
) -> Result<Json<PairStopped>, ApiFailure> {
    let (pairings, root) = target(&shared, &req.repo)?;
    pairings.stop(&root).await.map(Json).map_err(failure)
}

/// A kept conflict of the open pairing and how it differs from the file now (the web console's
/// pairing page). Only refs `pair status` lists are read.
pub async fn conflict(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<PairConflictRequest>,
) -> Result<Json<PairConflictDiff>, ApiFailure> {
    let (pairings, root) = target(&shared, &req.repo)?;
    let status = pairings.status(&root);
    let found = status
        .conflicts
        .iter()
        .find(|c| c.refname == req.refname)
        .zip(status.agent_workspace.as_deref());
    let Some((kept, workspace)) = found else {
        return Err(ApiFailure::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("the pairing of {root} kept no conflict {}", req.refname),
            Some("`berth pair status` lists the kept conflicts"),
        ));
    };
    let (refname, path) = (kept.refname.clone(), kept.path.clone());
    let ws = berth_git::Git::new(workspace);
    let (r, p) = (refname.clone(), path.clone());
    let diff = tokio::task::spawn_blocking(move || berth_git::pairing::conflict_diff(&ws, &r, &p))
        .await
        .map_err(|e| ApiFailure::internal(format!("the diff ended early: {e}")))?
        .map_err(|e| ApiFailure::git_failed(e.to_string()))?;
    Ok(Json(PairConflictDiff {
        refname,
        path,
        diff,
    }))
}

/// berth's lines left in `info/exclude` where no pairing is open (`berth doctor [--fix]`).
pub async fn leftovers(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<PairLeftoversRequest>,
) -> Result<Json<PairLeftovers>, ApiFailure> {
    let pairings = services(&shared)?.pairings.clone();
    tokio::task::spawn_blocking(move || pairings.leftovers(req.fix))
        .await
        .map_err(|e| ApiFailure::internal(format!("the leftover check ended early: {e}")))?
        .map(Json)
        .map_err(failure)
}
