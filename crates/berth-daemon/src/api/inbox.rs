//! Agents' inboxes over the API (`berth send`, `berth inbox`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use berth_core::inbox::Priority;
use berth_proto::{
    ById, ErrorCode, InboxCount, InboxCounts, InboxItem, InboxList, InboxSend, InboxSent, StashRepo,
};
use berth_store::ItemRecord;
use hyper::StatusCode;

use super::agents::{find, project};
use super::ready::services;
use super::{ApiFailure, ApiJson};
use crate::inbox::{CancelError, SOURCE_MESSAGE, SendError};
use crate::state::Shared;

/// How many finished items `inbox list` shows besides the open ones.
const FINISHED_SHOWN: usize = 50;

pub(super) fn item(r: ItemRecord) -> InboxItem {
    InboxItem {
        id: r.id,
        agent: r.agent,
        text: r.text,
        source: r.source,
        priority: Priority::from_rank(r.priority).as_str().to_string(),
        key: r.key,
        state: r.state,
        attempts: r.attempts,
        created_ms: r.created_ms,
        updated_ms: r.updated_ms,
    }
}

fn invalid(message: impl Into<String>, hint: &str) -> ApiFailure {
    ApiFailure::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidMessage,
        message,
        Some(hint),
    )
}

pub async fn send(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<InboxSend>,
) -> Result<(StatusCode, Json<InboxSent>), ApiFailure> {
    let svc = services(&shared)?;
    let priority: Priority = match req.priority.as_deref() {
        Some(p) => p.parse().map_err(|e: String| {
            invalid(
                format!("{e}; nothing was queued"),
                "use --priority now or --priority normal",
            )
        })?,
        None => Priority::Normal,
    };
    let rec = find(&svc.store, &req.repo, &req.name)?;
    let sent = svc.inbox.send(
        &rec,
        &req.text,
        req.key.as_deref(),
        priority,
        SOURCE_MESSAGE,
    );
    match sent {
        Ok((rec, new)) => Ok((
            if new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            Json(InboxSent {
                item: item(rec),
                duplicate: !new,
            }),
        )),
        Err(e @ SendError::Undeliverable(_)) => Err(ApiFailure::new(
            StatusCode::CONFLICT,
            ErrorCode::NotDeliverable,
            format!("{e}; nothing was queued"),
            Some(
                "create an agent that takes messages: `berth agent new NAME --turn CMD` (a run of CMD per message) or `--tty` (typed into its terminal)",
            ),
        )),
        Err(e @ SendError::Invalid(_)) => Err(invalid(
            e.to_string(),
            "send non-empty text without NUL bytes (a file with --file, or - for stdin)",
        )),
        Err(SendError::Store(e)) => Err(ApiFailure::internal(e.to_string())),
    }
}

pub async fn list(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<berth_proto::AgentTarget>,
) -> Result<Json<InboxList>, ApiFailure> {
    let svc = services(&shared)?;
    let rec = find(&svc.store, &req.repo, &req.name)?;
    let items = svc
        .store
        .inbox_items(rec.project_id, &rec.name, FINISHED_SHOWN)
        .map_err(|e| ApiFailure::internal(e.to_string()))?;
    Ok(Json(InboxList {
        items: items.into_iter().map(item).collect(),
    }))
}

pub async fn cancel(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<ById>,
) -> Result<Json<InboxItem>, ApiFailure> {
    let svc = services(&shared)?;
    match svc.inbox.cancel(req.id) {
        Ok(rec) => Ok(Json(item(rec))),
        Err(e @ CancelError::NotFound(_)) => Err(ApiFailure::new(
            StatusCode::NOT_FOUND,
            ErrorCode::ItemNotFound,
            e.to_string(),
            Some("`berth inbox NAME` lists an agent's items with their ids"),
        )),
        Err(e @ CancelError::NotQueued { .. }) => Err(ApiFailure::new(
            StatusCode::CONFLICT,
            ErrorCode::NotCancellable,
            e.to_string(),
            Some("a delivery that started runs to its end; `berth turns NAME` shows it"),
        )),
        Err(CancelError::Store(e)) => Err(ApiFailure::internal(e.to_string())),
    }
}

pub async fn counts(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<StashRepo>,
) -> Result<Json<InboxCounts>, ApiFailure> {
    let svc = services(&shared)?;
    let (_, project_id) = project(&svc.store, &req.repo)?;
    let rows = svc
        .store
        .inbox_counts(project_id)
        .map_err(|e| ApiFailure::internal(e.to_string()))?;
    let mut agents: Vec<InboxCount> = Vec::new();
    for (agent, state, n) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        if agents.last().is_none_or(|c| c.agent != agent) {
            agents.push(InboxCount {
                agent,
                ..InboxCount::default()
            });
        }
        if let Some(c) = agents.last_mut() {
            match state.as_str() {
                "queued" => c.queued = n,
                "delivering" => c.delivering = n,
                "done" => c.done = n,
                "failed" => c.failed = n,
                _ => c.cancelled += n,
            }
        }
    }
    Ok(Json(InboxCounts { agents }))
}
