//! `GET /v1/overview`: the daemon, every project with its agents and services, and each
//! project's pairing — what the console's first page shows, in one answer.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use berth_proto::{ConsoleOverview, ConsoleProject};

use super::ApiFailure;
use super::ready::services;
use crate::state::Shared;

pub async fn overview(
    State(shared): State<Arc<Shared>>,
) -> Result<Json<ConsoleOverview>, ApiFailure> {
    let svc = services(&shared)?.clone();
    let projects = tokio::task::spawn_blocking(move || -> Result<_, ApiFailure> {
        let db = |e: berth_store::StoreError| ApiFailure::internal(e.to_string());
        let roots = svc.store.project_roots().map_err(db)?;
        let agents = svc.store.agents(None).map_err(db)?;
        Ok(roots
            .into_iter()
            .map(|root| ConsoleProject {
                agents: agents
                    .iter()
                    .filter(|a| a.project_root == root)
                    .map(|a| svc.agents.info(a))
                    .collect(),
                pairing: svc.pairings.status(&root),
                root,
            })
            .collect())
    })
    .await
    .map_err(|e| ApiFailure::internal(format!("reading the overview failed: {e}")))??;
    Ok(Json(ConsoleOverview {
        daemon: shared.status(),
        projects,
    }))
}
