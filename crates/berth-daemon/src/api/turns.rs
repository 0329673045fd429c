//! Turns over the API (`berth turns`): every attempt to deliver an inbox item.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use berth_proto::{AgentTarget, ById, ErrorCode, TurnInfo, TurnList};
use berth_store::TurnRecord;
use hyper::StatusCode;

use super::agents::find;
use super::ready::services;
use super::{ApiFailure, ApiJson};
use crate::state::Shared;

/// How many of an agent's newest turns `turns list` shows.
const SHOWN: usize = 200;

fn info(t: TurnRecord, with_output: bool) -> TurnInfo {
    TurnInfo {
        id: t.id,
        item: t.item_id,
        agent: t.agent,
        attempt: t.attempt,
        trigger: t.trigger,
        mode: t.mode,
        status: t.status,
        started_ms: t.started_ms,
        ended_ms: t.ended_ms,
        duration_ms: t.ended_ms.map(|e| e.saturating_sub(t.started_ms)),
        exit_code: t.exit_code,
        error: t.error,
        output: if with_output { t.output } else { String::new() },
        commit_before: t.commit_before,
        commit_after: t.commit_after,
    }
}

pub async fn list(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<AgentTarget>,
) -> Result<Json<TurnList>, ApiFailure> {
    let svc = services(&shared)?;
    let rec = find(&svc.store, &req.repo, &req.name)?;
    let turns = svc
        .store
        .turns(rec.project_id, &rec.name, SHOWN)
        .map_err(|e| ApiFailure::internal(e.to_string()))?;
    Ok(Json(TurnList {
        turns: turns.into_iter().map(|t| info(t, false)).collect(),
    }))
}

pub async fn show(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<ById>,
) -> Result<Json<TurnInfo>, ApiFailure> {
    let svc = services(&shared)?;
    let turn = svc
        .store
        .turn(req.id)
        .map_err(|e| ApiFailure::internal(e.to_string()))?
        .ok_or_else(|| {
            ApiFailure::new(
                StatusCode::NOT_FOUND,
                ErrorCode::TurnNotFound,
                format!("no turn {}", req.id),
                Some("`berth turns NAME` lists an agent's turns with their ids"),
            )
        })?;
    Ok(Json(info(turn, true)))
}
