//! Snapshots of uncommitted work over the API (`berth stash`).
//!
//! git runs on blocking threads, one snapshot operation at a time per daemon, so two restores
//! can never interleave in one repository. The routes are outside the request timeout: a git
//! command cannot be cancelled halfway, so answering "timeout" while it goes on would mislead.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use berth_git::Git;
use berth_git::snapshot::{self, CaptureOptions, Snapshot, SnapshotError};
use berth_proto::{
    ErrorCode, FileChange, RestoreResult, SnapshotDetail, SnapshotInfo, SnapshotList, StashRepo,
    StashSave, StashTarget,
};
use berth_store::SnapshotState;
use hyper::StatusCode;

use super::ready::services;
use super::repo::repository;
use super::{ApiFailure, ApiJson};
use crate::clock::now_ms;
use crate::git_lock::GitLock;
use crate::state::Shared;

fn failure(e: SnapshotError) -> ApiFailure {
    use SnapshotError as E;
    let (status, code, hint) = match &e {
        E::BadId(_) => (
            StatusCode::BAD_REQUEST,
            ErrorCode::BadId,
            Some("`berth stash list` shows the ids of this repository's snapshots"),
        ),
        E::NulInMessage => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest, None),
        E::NotFound(_) | E::NotASnapshot(_) => (
            StatusCode::NOT_FOUND,
            ErrorCode::SnapshotNotFound,
            Some("`berth stash list` shows them"),
        ),
        E::Unmerged(_) => (StatusCode::CONFLICT, ErrorCode::Unmerged, None),
        E::OperationInProgress { .. } => {
            (StatusCode::CONFLICT, ErrorCode::OperationInProgress, None)
        }
        E::Dirty(_) => (StatusCode::CONFLICT, ErrorCode::DirtyTree, None),
        E::BranchMissing { .. } | E::UnbornBranchNowExists { .. } => {
            (StatusCode::CONFLICT, ErrorCode::BranchMissing, None)
        }
        E::BranchMovedConflict { .. } => (StatusCode::CONFLICT, ErrorCode::BranchMoved, None),
        E::WouldOverwrite(_) => (StatusCode::CONFLICT, ErrorCode::WouldOverwrite, None),
        E::Ref(_) => (
            StatusCode::CONFLICT,
            ErrorCode::GitFailed,
            Some("the snapshot ref changed meanwhile; look again"),
        ),
        E::Git(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::GitFailed,
            None,
        ),
    };
    ApiFailure::new(status, code, e.to_string(), hint)
}

fn info(repo: &Git, s: &Snapshot, recorded: bool) -> SnapshotInfo {
    s.info(&repo.dir().display().to_string(), recorded)
}

/// Runs `f` on a blocking thread while holding the daemon's git lock.
async fn with_git<T: Send + 'static>(
    git: &GitLock,
    f: impl FnOnce() -> Result<T, ApiFailure> + Send + 'static,
) -> Result<T, ApiFailure> {
    let _one_at_a_time = git.lock().await;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiFailure::internal(format!("the git task failed: {e}")))?
}

fn db_failure(e: berth_store::StoreError) -> ApiFailure {
    ApiFailure::internal(e.to_string())
}

pub async fn save(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<StashSave>,
) -> Result<(StatusCode, Json<SnapshotInfo>), ApiFailure> {
    let svc = services(&shared)?;
    let store = &svc.store;
    let repo = repository(&req.repo)?;
    let now = now_ms();
    let opts = CaptureOptions {
        id: crate::ids::new_id(now),
        time_ms: now,
        reason: "berth stash save".into(),
        message: req.message,
        pairing: None,
    };
    let taken = {
        let repo = repo.clone();
        with_git(&svc.git, move || {
            snapshot::capture(&repo, opts).map_err(failure)
        })
        .await?
    };
    let info = info(&repo, &taken, true);
    store.record_snapshot(&info).map_err(db_failure)?;
    svc.events.record_about(
        "stash.saved",
        &info.meta.id,
        serde_json::json!({ "repo": info.repo, "branch": info.meta.branch, "warnings": info.warnings }),
    );
    Ok((StatusCode::CREATED, Json(info)))
}

pub async fn list(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<StashRepo>,
) -> Result<Json<SnapshotList>, ApiFailure> {
    let svc = services(&shared)?;
    let store = &svc.store;
    let repo = repository(&req.repo)?;
    let found = {
        let repo = repo.clone();
        with_git(&svc.git, move || snapshot::list(&repo).map_err(failure)).await?
    };
    let top = repo.dir().display().to_string();
    let recorded = store.snapshots(&top).map_err(db_failure)?;
    let mut snapshots = Vec::new();
    for s in &found {
        let known = recorded.iter().any(|(r, _)| r.meta.id == s.meta.id);
        let i = info(&repo, s, known);
        if !known {
            // The database lost track of it (or it was made elsewhere): record it again.
            store.record_snapshot(&i).map_err(db_failure)?;
        }
        snapshots.push(i);
    }
    let missing = recorded
        .iter()
        .filter(|(r, state)| {
            *state == SnapshotState::Kept && !found.iter().any(|s| s.meta.id == r.meta.id)
        })
        .map(|(r, _)| r.meta.id.clone())
        .collect();
    Ok(Json(SnapshotList { snapshots, missing }))
}

fn changes(v: Vec<(char, Vec<u8>)>) -> Vec<FileChange> {
    v.into_iter()
        .map(|(s, p)| FileChange {
            status: s.to_string(),
            path: String::from_utf8_lossy(&p).into_owned(),
        })
        .collect()
}

pub async fn show(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<StashTarget>,
) -> Result<Json<SnapshotDetail>, ApiFailure> {
    let svc = services(&shared)?;
    let store = &svc.store;
    let repo = repository(&req.repo)?;
    let (snap, staged, unstaged) = {
        let repo = repo.clone();
        with_git(&svc.git, move || {
            let snap = snapshot::read(&repo, &req.id).map_err(failure)?;
            let (staged, unstaged) = snapshot::changes(&repo, &snap).map_err(failure)?;
            Ok((snap, staged, unstaged))
        })
        .await?
    };
    let top = repo.dir().display().to_string();
    let recorded = store
        .snapshot(&top, &snap.meta.id)
        .map_err(db_failure)?
        .is_some();
    Ok(Json(SnapshotDetail {
        snapshot: info(&repo, &snap, recorded),
        staged: changes(staged),
        unstaged: changes(unstaged),
    }))
}

pub async fn restore(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<StashTarget>,
) -> Result<Json<RestoreResult>, ApiFailure> {
    let svc = services(&shared)?;
    let store = &svc.store;
    let repo = repository(&req.repo)?;
    let report = {
        let repo = repo.clone();
        with_git(&svc.git, move || {
            snapshot::restore(&repo, &req.id).map_err(failure)
        })
        .await?
    };
    let top = repo.dir().display().to_string();
    let known = store
        .end_snapshot(
            &top,
            &report.snapshot.meta.id,
            SnapshotState::Restored,
            now_ms(),
        )
        .map_err(db_failure)?;
    let snapshot = info(&repo, &report.snapshot, known);
    svc.events.record_about(
        "stash.restored",
        &snapshot.meta.id,
        serde_json::json!({ "repo": top, "branch": report.branch, "onto_moved_branch": report.onto_moved_branch }),
    );
    Ok(Json(RestoreResult {
        snapshot,
        branch: report.branch,
        onto_moved_branch: report.onto_moved_branch,
    }))
}

pub async fn drop(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<StashTarget>,
) -> Result<Json<SnapshotInfo>, ApiFailure> {
    let svc = services(&shared)?;
    let store = &svc.store;
    let repo = repository(&req.repo)?;
    let dropped = {
        let repo = repo.clone();
        with_git(&svc.git, move || {
            snapshot::drop_snapshot(&repo, &req.id).map_err(failure)
        })
        .await?
    };
    let top = repo.dir().display().to_string();
    let known = store
        .end_snapshot(&top, &dropped.meta.id, SnapshotState::Dropped, now_ms())
        .map_err(db_failure)?;
    let i = info(&repo, &dropped, known);
    svc.events.record_about(
        "stash.dropped",
        &i.meta.id,
        serde_json::json!({ "repo": top, "commit": i.commit }),
    );
    Ok(Json(i))
}
