//! Agents' webhooks over the API: `berth hook add | list | rm`, and the deliveries senders
//! post to `/hooks/<agent>/<hook>` (signed; no bearer token).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use berth_core::hook::{DELIVERY_HEADERS, MAX_BODY_BYTES, SIGNATURE_HEADER};
use berth_core::inbox::MessageError;
use berth_proto::{ErrorCode, HookAdd, HookInfo, HookList, HookTarget, InboxSent};
use berth_store::HookRecord;
use hyper::{HeaderMap, StatusCode};

use super::agents::{find, project};
use super::inbox::item;
use super::ready::services;
use super::{ApiFailure, ApiJson};
use crate::hooks::{AddError, DeliverError};
use crate::inbox::SendError;
use crate::state::Shared;

fn info(h: HookRecord, with_secret: bool) -> HookInfo {
    HookInfo {
        path: format!("/hooks/{}/{}", h.agent, h.name),
        agent: h.agent,
        hook: h.name,
        secret: with_secret.then_some(h.secret),
        template: h.template,
        created_ms: h.created_ms,
    }
}

fn db(e: impl std::fmt::Display) -> ApiFailure {
    ApiFailure::internal(e.to_string())
}

pub async fn add(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<HookAdd>,
) -> Result<(StatusCode, Json<HookInfo>), ApiFailure> {
    let svc = services(&shared)?;
    let rec = find(&svc.store, &req.repo, &req.name)?;
    let name = req
        .hook
        .as_deref()
        .unwrap_or(berth_core::hook::DEFAULT_NAME);
    match svc.hooks.add(&rec, name, req.template.as_deref()) {
        Ok(h) => Ok((StatusCode::CREATED, Json(info(h, true)))),
        Err(e @ (AddError::Name(_) | AddError::Template(_))) => Err(ApiFailure::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidInput,
            e.to_string(),
            Some(
                "a hook's name is like an agent's (letters, digits, - and _); a template's fields are written {{.field.inner}}",
            ),
        )),
        Err(e @ AddError::Undeliverable(_)) => Err(ApiFailure::new(
            StatusCode::CONFLICT,
            ErrorCode::NotDeliverable,
            format!("{e}; no hook was added"),
            Some(
                "a hook sends messages: make an agent that takes them with `berth agent new NAME --turn CMD` or `--tty`",
            ),
        )),
        Err(e @ AddError::Exists { .. }) => Err(ApiFailure::new(
            StatusCode::CONFLICT,
            ErrorCode::HookExists,
            e.to_string(),
            Some("choose another --name, or `berth hook rm` the old one first"),
        )),
        Err(e) => Err(db(e)),
    }
}

pub async fn list(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<berth_proto::AgentFilter>,
) -> Result<Json<HookList>, ApiFailure> {
    let svc = services(&shared)?;
    let project_id = match &req.name {
        Some(name) => find(&svc.store, &req.repo, name)?.project_id,
        None => project(&svc.store, &req.repo)?.1,
    };
    let hooks = svc
        .store
        .hooks(project_id, req.name.as_deref())
        .map_err(db)?;
    Ok(Json(HookList {
        hooks: hooks.into_iter().map(|h| info(h, false)).collect(),
    }))
}

pub async fn remove(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<HookTarget>,
) -> Result<Json<HookInfo>, ApiFailure> {
    let svc = services(&shared)?;
    let rec = find(&svc.store, &req.repo, &req.name)?;
    if let Some(h) = svc.hooks.remove(&rec, &req.hook).map_err(db)? {
        Ok(Json(info(h, false)))
    } else {
        Err(ApiFailure::new(
            StatusCode::NOT_FOUND,
            ErrorCode::HookNotFound,
            format!("{} has no hook named {}", req.name, req.hook),
            Some("`berth hook list` shows the hooks"),
        ))
    }
}

/// `POST /hooks/<agent>/<hook>`: 202 with the item queued; refused with nothing queued: 401
/// unsigned, badly signed or over 1 MiB (a body that is not read cannot be verified), 409
/// `duplicate_delivery` for a delivery id queued before.
pub async fn deliver(
    State(shared): State<Arc<Shared>>,
    Path((agent, hook)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<InboxSent>), ApiFailure> {
    let svc = services(&shared)?;
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiFailure::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                format!(
                    "the body is over {MAX_BODY_BYTES} bytes, so its signature was not checked; \
                     nothing was queued"
                ),
                Some("send a smaller payload (a hook reads at most 1 MiB)"),
            )
        })?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let delivery = DELIVERY_HEADERS.iter().find_map(|h| header(h));
    let delivered = svc
        .hooks
        .deliver(&agent, &hook, header(SIGNATURE_HEADER), delivery, &body);
    match delivered {
        Ok((rec, true)) => Ok((
            StatusCode::ACCEPTED,
            Json(InboxSent {
                item: item(rec),
                duplicate: false,
            }),
        )),
        Ok((rec, false)) => Err(ApiFailure::new(
            StatusCode::CONFLICT,
            ErrorCode::DuplicateDelivery,
            format!(
                "this delivery was queued before, as item {}; nothing was queued again",
                rec.id
            ),
            Some("`berth inbox NAME` shows the item; a new event comes with a new delivery id"),
        )),
        Err(e @ (DeliverError::Unsigned | DeliverError::BadSignature)) => Err(ApiFailure::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            e.to_string(),
            Some(
                "sign the body with the hook's secret: X-Hub-Signature-256: sha256=<HMAC-SHA256 hex>",
            ),
        )),
        Err(e @ DeliverError::Gone) => Err(ApiFailure::new(
            StatusCode::NOT_FOUND,
            ErrorCode::AgentNotFound,
            e.to_string(),
            None,
        )),
        Err(e @ DeliverError::Body(_)) => Err(ApiFailure::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidMessage,
            e.to_string(),
            Some("a hook with a template takes JSON; one without takes UTF-8 text"),
        )),
        Err(DeliverError::Send(SendError::Invalid(e @ MessageError::TooLarge { .. }))) => {
            Err(ApiFailure::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::InvalidMessage,
                format!("{e}; nothing was queued"),
                Some(
                    "give the hook a template (`berth hook add NAME --template '{{.field}}'`) that makes a shorter message",
                ),
            ))
        }
        Err(DeliverError::Send(SendError::Invalid(e))) => Err(ApiFailure::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidMessage,
            format!("{e}; nothing was queued"),
            Some("send a non-empty payload without NUL bytes"),
        )),
        Err(DeliverError::Send(SendError::Undeliverable(e))) => Err(ApiFailure::new(
            StatusCode::CONFLICT,
            ErrorCode::NotDeliverable,
            format!("{e}; nothing was queued"),
            None,
        )),
        Err(e) => Err(db(e)),
    }
}
