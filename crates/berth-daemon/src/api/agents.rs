//! Agents over the API (`berth agent ...`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use berth_core::restart::RestartPolicy;
use berth_git::workspace::{self, WorkspaceError};
use berth_proto::{
    AgentInfo, AgentInput, AgentList, AgentNew, AgentRemove, AgentRemoved, AgentScreenRequest,
    AgentTarget, AgentTyped, ErrorCode, TerminalScreen,
};
use berth_store::{AgentRecord, Store};
use hyper::StatusCode;

use super::ready::services;
use super::repo::repository;
use super::{ApiFailure, ApiJson};
use crate::agents::{self, AgentError};
use crate::clock::now_ms;
use crate::state::Shared;
use crate::terminals::{self, TerminalError};
use crate::workspaces::{self, CreateError};

fn invalid(message: impl Into<String>) -> ApiFailure {
    ApiFailure::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidAgent,
        message,
        None,
    )
}

fn db(e: berth_store::StoreError) -> ApiFailure {
    ApiFailure::internal(e.to_string())
}

fn agent_failure(e: AgentError) -> ApiFailure {
    match e {
        AgentError::NoCommand(_) => invalid(e.to_string()),
        AgentError::Elsewhere { .. } => unreachable_failure(e.to_string(), "nothing was changed"),
        _ => ApiFailure::internal(e.to_string()),
    }
}

/// An agent elsewhere that could not be reached, or whose far side failed; `what` says what
/// became of the request.
fn unreachable_failure(message: String, what: &str) -> ApiFailure {
    ApiFailure::new(
        StatusCode::BAD_GATEWAY,
        ErrorCode::AgentUnreachable,
        message,
        Some(&format!(
            "{what}; check that the place is reachable (`ssh HOST true`, `docker ps`) and try again"
        )),
    )
}

pub(super) fn terminal_failure(e: TerminalError) -> ApiFailure {
    let message = e.to_string();
    match e {
        TerminalError::NotATerminal(_) => ApiFailure::new(
            StatusCode::CONFLICT,
            ErrorCode::NotATerminal,
            message,
            Some(
                "only an agent created with `berth agent new NAME --tty` (or `tty = true` in berth.toml) has a terminal",
            ),
        ),
        TerminalError::NotRunning { name, .. } => ApiFailure::new(
            StatusCode::CONFLICT,
            ErrorCode::AgentNotRunning,
            message,
            Some(&format!("start it with `berth agent start {name}`")),
        ),
        TerminalError::Invalid(_) => ApiFailure::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidInput,
            message,
            None,
        ),
        TerminalError::Stuck { name, .. } => ApiFailure::new(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::Timeout,
            message,
            Some(&format!(
                "the program is busy or not reading; see `berth agent screen {name}`"
            )),
        ),
        TerminalError::Keeper { .. } => ApiFailure::internal(message),
        TerminalError::Unreachable { .. } => {
            unreachable_failure(message, "the program goes on running there")
        }
    }
}

/// The project of `repo`, registered on first use.
pub(super) fn project(store: &Store, repo: &str) -> Result<(berth_git::Git, i64), ApiFailure> {
    let git = repository(repo)?;
    let id = store
        .project_id(&git.dir().display().to_string(), now_ms())
        .map_err(db)?;
    Ok((git, id))
}

pub(super) fn find(store: &Store, repo: &str, name: &str) -> Result<AgentRecord, ApiFailure> {
    let (_, id) = project(store, repo)?;
    store.agent(id, name).map_err(db)?.ok_or_else(|| {
        ApiFailure::new(
            StatusCode::NOT_FOUND,
            ErrorCode::AgentNotFound,
            format!("no agent {name} in this project"),
            Some("`berth agent list` shows them"),
        )
    })
}

pub async fn new(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<AgentNew>,
) -> Result<(StatusCode, Json<AgentInfo>), ApiFailure> {
    let svc = services(&shared)?;
    let store = &svc.store;
    // Every check before any side effect.
    berth_core::names::validate(&req.name).map_err(|e| invalid(e.to_string()))?;
    let restart: RestartPolicy = match &req.restart {
        Some(r) => r
            .parse()
            .map_err(|e: berth_core::restart::PolicyError| invalid(e.to_string()))?,
        None => RestartPolicy::No,
    };
    let ready = match req.ready.as_deref() {
        Some(r) => berth_core::probe::parse_cli(r)
            .map_err(|e| invalid(e.to_string()))?
            .map(|p| serde_json::to_string(&p))
            .transpose()
            .map_err(|e| ApiFailure::internal(e.to_string()))?,
        None => None,
    };
    if let Some(command) = &req.command {
        berth_core::command::check(command).map_err(|e| invalid(e.to_string()))?;
    }
    for (name, value) in &req.env {
        berth_core::command::check_env(name, value).map_err(|e| invalid(e.to_string()))?;
    }
    if req.start && req.command.is_none() {
        return Err(invalid("--start needs a command (--cmd)"));
    }
    if let Some(turn) = &req.turn {
        berth_core::command::check(turn).map_err(|e| invalid(format!("--turn: {e}")))?;
        if req.tty {
            return Err(invalid(
                "a terminal agent (--tty) is sent messages by typing into it; leave out --turn",
            ));
        }
    }
    match req.turn_timeout_ms {
        Some(_) if req.turn.is_none() => {
            return Err(invalid("--turn-timeout needs a turn command (--turn)"));
        }
        Some(0) => return Err(invalid("--turn-timeout must be longer than 0")),
        _ => {}
    }
    if let Some(lines) = req.scrollback {
        if !req.tty {
            return Err(invalid("only a terminal agent (--tty) has scrollback"));
        }
        berth_core::terminal::check_scrollback(lines).map_err(|e| invalid(e.to_string()))?;
    }
    if req.on.is_some() && req.ready.as_deref().is_some_and(|r| r.trim() == "notify") {
        return Err(invalid(
            "an agent elsewhere (--on) cannot be probed by notify (its socket would be here); \
             use tcp:, http:, exec: or log:",
        ));
    }
    let (git, project_id) = project(store, &req.repo)?;
    if store.agent(project_id, &req.name).map_err(db)?.is_some() {
        return Err(ApiFailure::new(
            StatusCode::CONFLICT,
            ErrorCode::AgentExists,
            format!("this project already has an agent named {}", req.name),
            Some("choose another name, or `berth agent rm` the old one"),
        ));
    }
    let ws_path = svc.home.workspace(project_id, &req.name);
    let base = req.base.as_deref().unwrap_or("HEAD");
    if let Some(on) = &req.on {
        return new_elsewhere(svc, &req, git, project_id, on, base, restart, ready).await;
    }
    let created = workspaces::create(&svc.git, &git, &ws_path, &req.name, base).await;
    let base_oid = created.map_err(create_failure)?;
    let rec = AgentRecord {
        kind: "agent".into(),
        stop_signal: "SIGTERM".into(),
        stop_grace_ms: agents::STOP_GRACE.as_millis() as u64,
        project_id,
        project_root: git.dir().display().to_string(),
        name: req.name.clone(),
        command: req.command.clone(),
        base: base_oid,
        restart: restart.as_str().to_string(),
        env: req.env.clone(),
        ready,
        liveness: None,
        workspace: ws_path.display().to_string(),
        desired_running: req.start,
        created_ms: now_ms(),
        tty: req.tty,
        scrollback: req.scrollback,
        turn: req.turn.clone(),
        turn_timeout_ms: req.turn_timeout_ms,
        remote: None,
    };
    created_agent(svc, rec, req.start).await
}

/// The API's failure for a workspace that could not be made.
fn create_failure(e: CreateError) -> ApiFailure {
    match e {
        e @ (CreateError::NoKeepAlive | CreateError::Interrupted(_)) => {
            ApiFailure::internal(e.to_string())
        }
        CreateError::Workspace(
            e @ (WorkspaceError::BadBase(_) | WorkspaceError::PathExists(_)),
        ) => invalid(e.to_string()),
        CreateError::Workspace(
            e @ (WorkspaceError::BranchExists { .. } | WorkspaceError::AgentExists(_)),
        ) => ApiFailure::new(
            StatusCode::CONFLICT,
            ErrorCode::AgentExists,
            e.to_string(),
            None,
        ),
        e => ApiFailure::git_failed(e.to_string()),
    }
}

/// An agent elsewhere: its branch made here, a bundle of it copied there and cloned into its
/// workspace. A failure there takes back the branch made here.
#[allow(clippy::too_many_arguments)]
async fn new_elsewhere(
    svc: &crate::services::Services,
    req: &AgentNew,
    git: berth_git::Git,
    project_id: i64,
    on: &str,
    base: &str,
    restart: RestartPolicy,
    ready: Option<String>,
) -> Result<(StatusCode, Json<AgentInfo>), ApiFailure> {
    let mut rec = AgentRecord {
        kind: "agent".into(),
        stop_signal: "SIGTERM".into(),
        stop_grace_ms: agents::STOP_GRACE.as_millis() as u64,
        project_id,
        project_root: git.dir().display().to_string(),
        name: req.name.clone(),
        command: req.command.clone(),
        base: String::new(),
        restart: restart.as_str().to_string(),
        env: req.env.clone(),
        ready,
        liveness: None,
        workspace: String::new(),
        desired_running: req.start,
        created_ms: now_ms(),
        tty: req.tty,
        scrollback: req.scrollback,
        turn: req.turn.clone(),
        turn_timeout_ms: req.turn_timeout_ms,
        remote: Some(on.to_string()),
    };
    let target =
        agents::place(on, &rec.project_root, &rec.name).map_err(|e| invalid(e.to_string()))?;
    rec.workspace = format!("{}/workspace on {on}", target.dir());
    let dir = svc.agents.keeper_dir(&rec);
    std::fs::create_dir_all(dir.path()).map_err(|e| ApiFailure::internal(e.to_string()))?;
    let bundle = dir.path().join("workspace.bundle");
    let made = {
        let _one_at_a_time = svc.git.lock().await;
        let (project, name, base, bundle) = (
            git.clone(),
            rec.name.clone(),
            base.to_string(),
            bundle.clone(),
        );
        tokio::task::spawn_blocking(move || {
            workspace::create_elsewhere(&project, &name, &base, &bundle)
        })
        .await
        .map_err(|e| ApiFailure::internal(e.to_string()))?
    };
    rec.base = made.map_err(|e| create_failure(CreateError::Workspace(e)))?;
    let copied = svc.agents.create_remote(&rec, &bundle).await;
    let _ = std::fs::remove_file(&bundle);
    if let Err(e) = copied {
        let _one_at_a_time = svc.git.lock().await;
        let (project, name) = (git.clone(), rec.name.clone());
        let _ = tokio::task::spawn_blocking(move || workspace::forget(&project, &name, true)).await;
        return Err(unreachable_failure(
            e.to_string(),
            "the agent was not created",
        ));
    }
    created_agent(svc, rec, req.start).await
}

/// Records a new agent and starts it if asked.
async fn created_agent(
    svc: &crate::services::Services,
    rec: AgentRecord,
    start: bool,
) -> Result<(StatusCode, Json<AgentInfo>), ApiFailure> {
    let store = &svc.store;
    store.put_agent(&rec).map_err(db)?;
    svc.events.record_about(
        "agent.created",
        &rec.name,
        serde_json::json!({ "project": rec.project_root, "base": rec.base }),
    );
    if start {
        svc.agents.start(&rec).await.map_err(agent_failure)?;
    }
    Ok((StatusCode::CREATED, Json(svc.agents.info(&rec))))
}

pub async fn list(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<berth_proto::StashRepo>,
) -> Result<Json<AgentList>, ApiFailure> {
    let svc = services(&shared)?;
    let store = &svc.store;
    let (_, id) = project(store, &req.repo)?;
    let agents = store.agents(Some(id)).map_err(db)?;
    Ok(Json(AgentList {
        agents: agents.iter().map(|a| svc.agents.info(a)).collect(),
    }))
}

pub async fn show(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<AgentTarget>,
) -> Result<Json<AgentInfo>, ApiFailure> {
    let svc = services(&shared)?;
    let rec = find(&svc.store, &req.repo, &req.name)?;
    Ok(Json(svc.agents.info(&rec)))
}

pub async fn start(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<AgentTarget>,
) -> Result<Json<AgentInfo>, ApiFailure> {
    let svc = services(&shared)?;
    let store = &svc.store;
    let rec = find(store, &req.repo, &req.name)?;
    svc.agents.start(&rec).await.map_err(agent_failure)?;
    store
        .set_desired(rec.project_id, &rec.name, true)
        .map_err(db)?;
    Ok(Json(svc.agents.info(&rec)))
}

pub async fn stop(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<AgentTarget>,
) -> Result<Json<AgentInfo>, ApiFailure> {
    let svc = services(&shared)?;
    let store = &svc.store;
    let rec = find(store, &req.repo, &req.name)?;
    store
        .set_desired(rec.project_id, &rec.name, false)
        .map_err(db)?;
    svc.agents.stop(&rec).await.map_err(agent_failure)?;
    Ok(Json(svc.agents.info(&rec)))
}

pub async fn screen(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<AgentScreenRequest>,
) -> Result<Json<TerminalScreen>, ApiFailure> {
    let svc = services(&shared)?;
    let rec = find(&svc.store, &req.repo, &req.name)?;
    terminals::screen(&svc.agents, &rec, req.scrollback)
        .await
        .map(Json)
        .map_err(terminal_failure)
}

pub async fn input(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<AgentInput>,
) -> Result<Json<AgentTyped>, ApiFailure> {
    let svc = services(&shared)?;
    let bytes = berth_core::terminal::keystrokes(&req.text, req.enter).map_err(|e| {
        ApiFailure::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidInput,
            format!("{e}; nothing was typed"),
            None,
        )
    })?;
    let rec = find(&svc.store, &req.repo, &req.name)?;
    let bytes = terminals::type_in(&svc.agents, &rec, bytes)
        .await
        .map_err(terminal_failure)?;
    Ok(Json(AgentTyped {
        name: rec.name,
        bytes,
    }))
}

/// An agent elsewhere removed: there (after its commits, and with `force` a snapshot, were
/// brought here), then its refs here.
async fn remove_elsewhere(
    svc: &crate::services::Services,
    rec: &AgentRecord,
    force: bool,
    delete_branch: bool,
) -> Result<Removal, ApiFailure> {
    let removed = svc
        .agents
        .remove_remote(rec, force, delete_branch)
        .await
        .map_err(|e| unreachable_failure(e.to_string(), "nothing was removed"))?;
    match removed {
        agents::Removal::Refused { dirty, commits } => {
            Ok(Removal::Refused(berth_git::workspace::Unsaved {
                dirty,
                commits,
            }))
        }
        agents::Removal::Done(snapshot) => {
            forget_refs(svc, rec, delete_branch).await?;
            Ok(Removal::Done(snapshot))
        }
    }
}

/// The project's side of an agent elsewhere removed ([`workspace::forget`]), under the git lock.
async fn forget_refs(
    svc: &crate::services::Services,
    rec: &AgentRecord,
    delete_branch: bool,
) -> Result<(), ApiFailure> {
    let _one_at_a_time = svc.git.lock().await;
    let (project, name) = (berth_git::Git::new(&rec.project_root), rec.name.clone());
    tokio::task::spawn_blocking(move || workspace::forget(&project, &name, delete_branch))
        .await
        .map_err(|e| ApiFailure::internal(e.to_string()))?
        .map_err(|e| ApiFailure::git_failed(e.to_string()))
}

/// What `rm` decided, on the blocking thread.
enum Removal {
    Refused(berth_git::workspace::Unsaved),
    Done(Option<String>),
}

pub async fn rm(
    State(shared): State<Arc<Shared>>,
    ApiJson(req): ApiJson<AgentRemove>,
) -> Result<Json<AgentRemoved>, ApiFailure> {
    let svc = services(&shared)?;
    let store = &svc.store;
    let rec = find(store, &req.repo, &req.name)?;
    if req.forget {
        return forget_elsewhere(svc, rec).await.map(Json);
    }
    svc.agents.stop(&rec).await.map_err(agent_failure)?;
    store
        .set_desired(rec.project_id, &rec.name, false)
        .map_err(db)?;
    let outcome = if rec.remote.is_some() {
        remove_elsewhere(svc, &rec, req.force, req.delete_branch).await?
    } else {
        let rec = rec.clone();
        let (force, delete_branch) = (req.force, req.delete_branch);
        let _one_at_a_time = svc.git.lock().await;
        tokio::task::spawn_blocking(move || -> Result<Removal, String> {
            let project = berth_git::Git::new(&rec.project_root);
            let ws_path = std::path::PathBuf::from(&rec.workspace);
            let mut snapshot = None;
            if ws_path.exists() {
                let ws = berth_git::Git::new(&ws_path);
                let unsaved = workspace::unsaved(&project, &ws, &rec.name, delete_branch)
                    .map_err(|e| e.to_string())?;
                if !unsaved.is_empty() {
                    if !force {
                        return Ok(Removal::Refused(unsaved));
                    }
                    let now = now_ms();
                    let id = format!("{}-rm-{}", berth_core::time::compact_utc(now), rec.name);
                    let opts = berth_git::snapshot::CaptureOptions {
                        id: id.clone(),
                        time_ms: now,
                        reason: format!("berth agent rm --force {}", rec.name),
                        message: None,
                        pairing: None,
                    };
                    berth_git::snapshot::capture(&ws, opts).map_err(|e| e.to_string())?;
                    workspace::adopt_snapshot(&project, &ws, &id).map_err(|e| e.to_string())?;
                    snapshot = Some(id);
                }
            }
            workspace::remove(&project, &ws_path, &rec.name, delete_branch)
                .map_err(|e| e.to_string())?;
            Ok(Removal::Done(snapshot))
        })
        .await
        .map_err(|e| ApiFailure::internal(e.to_string()))?
        .map_err(ApiFailure::git_failed)?
    };
    let snapshot = match outcome {
        Removal::Refused(u) => {
            let mut why = Vec::new();
            if !u.dirty.is_empty() {
                why.push(format!(
                    "uncommitted changes ({})",
                    u.dirty
                        .iter()
                        .take(5)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if u.commits {
                why.push("commits on no branch of the project".to_string());
            }
            return Err(ApiFailure::new(
                StatusCode::CONFLICT,
                ErrorCode::UnsavedWork,
                format!(
                    "agent {} has {}; nothing was removed",
                    rec.name,
                    why.join(" and ")
                ),
                Some(
                    "commit or discard them in its workspace, or pass --force to save them as a snapshot first",
                ),
            ));
        }
        Removal::Done(s) => s,
    };
    if let Some(id) = &snapshot {
        svc.events.record_about(
            "stash.saved",
            id,
            serde_json::json!({ "repo": rec.project_root, "agent": rec.name }),
        );
    }
    store.remove_agent(rec.project_id, &rec.name).map_err(db)?;
    let _ = std::fs::remove_dir_all(svc.agents.keeper_dir(&rec).path());
    if rec.remote.is_none() {
        crate::pairing::forget_kept_digests(store, std::path::Path::new(&rec.workspace));
    }
    svc.events.record_about(
        "agent.removed",
        &rec.name,
        serde_json::json!({ "snapshot": snapshot }),
    );
    Ok(Json(AgentRemoved {
        name: rec.name,
        snapshot,
        branch_kept: !req.delete_branch,
        left_there: None,
    }))
}

/// `rm --forget`: an agent elsewhere forgotten here without reaching it; its branch and
/// everything there stay.
async fn forget_elsewhere(
    svc: &crate::services::Services,
    rec: AgentRecord,
) -> Result<AgentRemoved, ApiFailure> {
    if rec.remote.is_none() {
        return Err(invalid(format!(
            "agent {0} runs on this machine: --forget is for an agent elsewhere whose host is \
             gone; remove it with `berth agent rm {0}`",
            rec.name
        )));
    }
    let left = svc.agents.forget_remote(&rec);
    forget_refs(svc, &rec, false).await?;
    svc.store
        .remove_agent(rec.project_id, &rec.name)
        .map_err(db)?;
    let _ = std::fs::remove_dir_all(svc.agents.keeper_dir(&rec).path());
    svc.events.record_about(
        "agent.forgotten",
        &rec.name,
        serde_json::json!({ "on": rec.remote, "left": left }),
    );
    Ok(AgentRemoved {
        name: rec.name,
        snapshot: None,
        branch_kept: true,
        left_there: Some(left),
    })
}
