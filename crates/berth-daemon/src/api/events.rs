//! The event log over HTTP: a JSON page, and a Server-Sent Events stream that never skips.
//!
//! The stream subscribes to the live broadcast *before* replaying from the store, then replays
//! everything after `since` (or `Last-Event-ID`), then forwards live events. It tracks the last
//! sequence number it sent: a live event it already replayed is dropped; a gap — because the
//! broadcast lagged or the client read slowly and the bounded channel filled — is filled from the
//! store. So each event reaches the client exactly once and in order, however slow it is.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use berth_core::daemon_state::LivePhase;
use berth_proto::{ErrorCode, Event};
use berth_store::Store;
use futures_util::Stream;
use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::ready::services;
use super::{ApiFailure, ApiQuery};
use crate::state::Shared;

/// Largest page `/v1/events/log` returns.
pub const MAX_PAGE: usize = 1000;
const REPLAY_BATCH: usize = 512;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    #[serde(default)]
    since: u64,
    limit: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// Sequence number of the newest event in the log.
    pub last_seq: u64,
    /// Oldest retained sequence number; older events were removed by retention.
    pub first_seq: Option<u64>,
}

fn store_failure(e: impl std::fmt::Display) -> ApiFailure {
    ApiFailure::internal(format!("reading the event log failed: {e}"))
}

async fn read_since(store: &Store, since: u64, limit: usize) -> Result<Vec<Event>, ApiFailure> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.events_since(since, limit))
        .await
        .map_err(store_failure)?
        .map_err(store_failure)
}

pub async fn log(
    State(shared): State<Arc<Shared>>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Json<EventPage>, ApiFailure> {
    let store = services(&shared)?.store.clone();
    let limit = q.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let events = read_since(&store, q.since, limit).await?;
    let last_seq = store.last_seq().map_err(store_failure)?;
    let first_seq = store.first_seq().map_err(store_failure)?;
    Ok(Json(EventPage {
        events,
        last_seq,
        first_seq,
    }))
}

fn resume_point(q: &EventsQuery, headers: &HeaderMap) -> Result<u64, ApiFailure> {
    match headers.get("last-event-id") {
        None => Ok(q.since),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                ApiFailure::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadRequest,
                    "Last-Event-ID must be an event sequence number",
                    None,
                )
            }),
    }
}

pub async fn stream(
    State(shared): State<Arc<Shared>>,
    ApiQuery(q): ApiQuery<EventsQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiFailure> {
    let since = resume_point(&q, &headers)?;
    let store = services(&shared)?.store.clone();
    let live = store.subscribe();
    let (tx, rx) = mpsc::channel(64);
    shared.subscribers.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        let mut feed = Feed {
            store,
            tx,
            last: since,
        };
        if let Err(e) = feed.run(live, shared.watch_phase()).await {
            tracing::warn!("event stream ended: {e}");
        }
        shared.subscribers.fetch_sub(1, Ordering::Relaxed);
    });
    let stream = tokio_stream::StreamExt::map(ReceiverStream::new(rx), Ok);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Why a feed stopped.
#[derive(Debug, thiserror::Error)]
enum FeedEnd {
    #[error("the client went away")]
    ClientGone,
    #[error("{0}")]
    Store(String),
}

struct Feed {
    store: Store,
    tx: mpsc::Sender<SseEvent>,
    /// Sequence number of the last event sent (or the resume point).
    last: u64,
}

impl Feed {
    async fn run(
        &mut self,
        mut live: broadcast::Receiver<Event>,
        mut phase: tokio::sync::watch::Receiver<LivePhase>,
    ) -> Result<(), FeedEnd> {
        self.announce_gap().await?;
        self.catch_up().await?;
        let client = self.tx.clone();
        loop {
            tokio::select! {
                () = async { let _ = phase.wait_for(|p| *p == LivePhase::Stopping).await; } => {
                    return Ok(());
                }
                received = live.recv() => match received {
                    Ok(ev) if ev.seq <= self.last => {}
                    Ok(ev) if ev.seq == self.last + 1 => self.send(ev).await?,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up().await?,
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
                () = client.closed() => return Err(FeedEnd::ClientGone),
            }
        }
    }

    /// Tells the client when events it asks for were already removed by retention.
    async fn announce_gap(&mut self) -> Result<(), FeedEnd> {
        let first = self
            .store
            .first_seq()
            .map_err(|e| FeedEnd::Store(e.to_string()))?;
        if let Some(first) = first.filter(|f| *f > self.last + 1) {
            let data = serde_json::json!({ "from": self.last + 1, "to": first - 1 }).to_string();
            let ev = SseEvent::default().event("gap").data(data);
            self.tx.send(ev).await.map_err(|_| FeedEnd::ClientGone)?;
        }
        Ok(())
    }

    /// Sends everything after `last` that the store holds.
    async fn catch_up(&mut self) -> Result<(), FeedEnd> {
        loop {
            let batch = read_since(&self.store, self.last, REPLAY_BATCH)
                .await
                .map_err(|e| FeedEnd::Store(e.error.message))?;
            let done = batch.len() < REPLAY_BATCH;
            for ev in batch {
                self.send(ev).await?;
            }
            if done {
                return Ok(());
            }
        }
    }

    async fn send(&mut self, ev: Event) -> Result<(), FeedEnd> {
        let seq = ev.seq;
        let data = serde_json::to_string(&ev).map_err(|e| FeedEnd::Store(e.to_string()))?;
        let sse = SseEvent::default().id(seq.to_string()).data(data);
        self.tx.send(sse).await.map_err(|_| FeedEnd::ClientGone)?;
        self.last = seq;
        Ok(())
    }
}
