//! `GET /v1/agents/logs?repo=…&name=…[&tail=N]`: an agent's output log as Server-Sent Events,
//! as a person reads it (escape sequences removed), live.
//!
//! A new stream starts with a `reset` event, then the last `tail` lines (default 200), then
//! every line as it is written. Each batch's last event carries the place it ends in the log
//! (`INODE:OFFSET`) as its id, so a browser that reconnects (`Last-Event-ID`) resumes exactly
//! there, across one rotation of the log; when that place is gone, it gets a fresh `reset`.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use berth_control::logs::{Follower, Position};
use berth_core::daemon_state::LivePhase;
use berth_core::home::rotated_log;
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::agents::find;
use super::ready::services;
use super::{ApiFailure, ApiQuery};
use crate::state::Shared;

/// How often the log is looked at for new lines.
const POLL: Duration = Duration::from_millis(100);
/// The most lines of the past a stream starts with.
const MAX_TAIL: usize = 10_000;
const DEFAULT_TAIL: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    repo: String,
    name: String,
    tail: Option<usize>,
}

pub async fn stream(
    State(shared): State<Arc<Shared>>,
    ApiQuery(q): ApiQuery<LogsQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiFailure> {
    let svc = services(&shared)?;
    let rec = find(&svc.store, &q.repo, &q.name)?;
    let path = svc.agents.keeper_dir(&rec).output();
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<Position>().ok());
    let tail = q.tail.unwrap_or(DEFAULT_TAIL).min(MAX_TAIL);
    let (tx, rx) = mpsc::channel(64);
    let phase = shared.watch_phase();
    tokio::spawn(follow(path, resume, tail, tx, phase));
    let stream = tokio_stream::StreamExt::map(ReceiverStream::new(rx), Ok);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Where a fresh stream starts reading: the start of the rotated file when there is one (so a
/// log that just rotated still shows its last lines), else of the current file.
fn from_the_start(path: &std::path::Path) -> Option<Follower> {
    use std::os::unix::fs::MetadataExt;
    [rotated_log(path, 1), path.to_path_buf()]
        .iter()
        .find_map(|p| {
            let ino = std::fs::metadata(p).ok()?.ino();
            Follower::resume(path, Position { ino, offset: 0 })
        })
}

async fn follow(
    path: PathBuf,
    resume: Option<Position>,
    tail: usize,
    tx: mpsc::Sender<SseEvent>,
    mut phase: tokio::sync::watch::Receiver<LivePhase>,
) {
    // Reading the log is file I/O (a fresh stream reads up to two whole files): it runs on the
    // blocking pool, never on the async workers.
    let opened = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            let resumed = resume.and_then(|at| Follower::resume(&path, at));
            let fresh = resumed.is_none();
            let follower = match resumed {
                Some(f) => f,
                None => from_the_start(&path).unwrap_or_else(|| Follower::from_end(&path)),
            };
            (follower, fresh)
        })
        .await
    };
    let Ok((mut follower, fresh)) = opened else {
        return;
    };
    if fresh
        && tx
            .send(SseEvent::default().event("reset").data(""))
            .await
            .is_err()
    {
        return;
    }
    let mut first = fresh;
    loop {
        let polled = tokio::task::spawn_blocking(move || {
            let lines = follower.poll();
            let end = follower.position();
            (follower, lines, end)
        })
        .await;
        let Ok((back, lines, end)) = polled else {
            return;
        };
        follower = back;
        let lines = match lines {
            Ok(lines) => lines,
            Err(e) => {
                tracing::warn!(log = %path.display(), "cannot read the log: {e}");
                Vec::new()
            }
        };
        let skip = if first {
            lines.len().saturating_sub(tail)
        } else {
            0
        };
        first = false;
        let count = lines.len() - skip;
        for (i, line) in lines.into_iter().skip(skip).enumerate() {
            let mut ev = SseEvent::default()
                .event("line")
                .data(berth_core::output_line::shown(&line));
            if i + 1 == count
                && let Some(at) = end
            {
                ev = ev.id(at.to_string());
            }
            if tx.send(ev).await.is_err() {
                return;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = tx.closed() => return,
            _ = phase.wait_for(|p| *p == LivePhase::Stopping) => return,
        }
    }
}
