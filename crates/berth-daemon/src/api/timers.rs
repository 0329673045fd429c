//! Agents' timers over the API (`berth timer`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use berth_proto::{AgentFilter, ById, ErrorCode, TimerAdd, TimerInfo, TimerList};
use berth_store::TimerRecord;
use hyper::StatusCode;

use super::agents::{find, project};
use super::ready::services;
use super::{ApiFailure, ApiJson};
use crate::state::Shared;
use crate::timers::{AddError, local_zone};

fn info(t: TimerRecord) -> TimerInfo {
    TimerInfo {
        id: t.id,
        agent: t.agent,
        kind: t.kind,
        spec: t.spec,
        zone: t.zone,
        message: t.message,
        next_ms: t.next_ms,
        fired: t.fired,
        last_fired_ms: t.last_fired_ms,
        created_ms: t.created_ms,
    }
}

fn invalid(message: impl Into<String>) -> ApiFailure {
    ApiFailure::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidTimer,
        message,
        Some(
            "e.g. --every 30m, --cron \"0 9 * * 1-5\" or --at 2026-12-24T09:00 (local time; --tz Europe/Berlin for another zone)",
        ),
    )
}

pub async fn add(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<TimerAdd>,
) -> Result<(StatusCode, Json<TimerInfo>), ApiFailure> {
    let svc = services(&shared)?;
    let (kind, spec) = match (&req.every, &req.cron, &req.at) {
        (Some(e), None, None) => ("every", e),
        (None, Some(c), None) => ("cron", c),
        (None, None, Some(a)) => ("at", a),
        _ => {
            return Err(invalid(
                "a timer is one of every, cron or at; no timer was added",
            ));
        }
    };
    let rec = find(&svc.store, &req.repo, &req.name)?;
    let zone = req.zone.clone().unwrap_or_else(local_zone);
    match svc.timers.add(&rec, kind, spec, &zone, &req.message) {
        Ok(t) => Ok((StatusCode::CREATED, Json(info(t)))),
        Err(e @ AddError::Invalid(_)) => Err(invalid(e.to_string())),
        Err(e @ AddError::Message(_)) => Err(ApiFailure::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidMessage,
            e.to_string(),
            Some("give --message non-empty text without NUL bytes"),
        )),
        Err(e @ AddError::Undeliverable(_)) => Err(ApiFailure::new(
            StatusCode::CONFLICT,
            ErrorCode::NotDeliverable,
            format!("{e}; no timer was added"),
            Some(
                "a timer sends messages: make an agent that takes them with `berth agent new NAME --turn CMD` or `--tty`",
            ),
        )),
        Err(AddError::Store(e)) => Err(ApiFailure::internal(e.to_string())),
    }
}

pub async fn list(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<AgentFilter>,
) -> Result<Json<TimerList>, ApiFailure> {
    let svc = services(&shared)?;
    let project_id = match &req.name {
        Some(name) => find(&svc.store, &req.repo, name)?.project_id,
        None => project(&svc.store, &req.repo)?.1,
    };
    let timers = svc
        .store
        .timers(project_id, req.name.as_deref())
        .map_err(|e| ApiFailure::internal(e.to_string()))?;
    Ok(Json(TimerList {
        timers: timers.into_iter().map(info).collect(),
    }))
}

pub async fn remove(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<ById>,
) -> Result<Json<TimerInfo>, ApiFailure> {
    let svc = services(&shared)?;
    match svc.timers.remove(req.id) {
        Ok(Some(t)) => Ok(Json(info(t))),
        Ok(None) => Err(ApiFailure::new(
            StatusCode::NOT_FOUND,
            ErrorCode::TimerNotFound,
            format!("no timer {}", req.id),
            Some("`berth timer list` shows the timers with their ids"),
        )),
        Err(e) => Err(ApiFailure::internal(e.to_string())),
    }
}
