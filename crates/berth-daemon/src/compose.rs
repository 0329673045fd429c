//! `berth up` / `berth down`: what `berth.toml` declares, in dependency order.
//!
//! `up` defines every process of the plan (an agent gets its workspace the first time; a
//! service runs in the repository itself), then starts level by level — concurrently within a
//! level — and before the next level waits until each process reached what its dependents ask
//! for (`started`, `ready` or `completed`; `ready` when nobody asks). `down` stops in the
//! reverse order, concurrently within a level. Each has one overall timeout: whatever has not
//! made it by then is stopped (`up`) or killed (`down`) and named.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_core::agent_state::AgentState;
use berth_core::deps;
use berth_core::project::{self, Condition, Kind, ProcessSpec, ProjectFile};
use berth_git::Git;
use berth_store::AgentRecord;
use futures_util::future::join_all;

use crate::services::Services;

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("there is no berth.toml in {0}; declare your agents and services there")]
    NoFile(String),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Deps(#[from] deps::DepsError),
    #[error("cannot prepare {name}: {detail}")]
    Define { name: String, detail: String },
    #[error("cannot start {name}: {detail}")]
    Start { name: String, detail: String },
    #[error("{name} ended (exit {}) before it was {wanted}; see `berth agent logs {name}`", .code.map_or("by a signal".to_string(), |c| c.to_string()))]
    Ended {
        name: String,
        code: Option<i32>,
        wanted: &'static str,
    },
    #[error("not {wanted} within the timeout, so stopped: {}", .names.join(", "))]
    Timeout {
        names: Vec<String>,
        wanted: &'static str,
    },
    #[error("{0}")]
    Store(#[from] berth_store::StoreError),
}

/// What `up` or `down` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// In the order they were acted on.
    pub levels: Vec<Vec<String>>,
    /// `down`: processes killed after the timeout.
    pub killed: Vec<String>,
    pub took_ms: u64,
}

fn rank(c: Condition) -> u8 {
    match c {
        Condition::Started => 0,
        Condition::Ready => 1,
        Condition::Completed => 2,
    }
}

fn load(root: &Path) -> Result<ProjectFile, ComposeError> {
    let path = root.join("berth.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|_| ComposeError::NoFile(root.display().to_string()))?;
    project::parse(&text).map_err(|e| ComposeError::Config(e.to_string()))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Records (and for a new agent, creates the workspace of) one declared process.
async fn define(
    svc: &Services,
    root: &Git,
    project_id: i64,
    spec: &ProcessSpec,
) -> Result<AgentRecord, ComposeError> {
    let store = &svc.store;
    let err = |detail: String| ComposeError::Define {
        name: spec.name.clone(),
        detail,
    };
    let existing = store.agent(project_id, &spec.name)?;
    let (workspace, base) = match (&existing, spec.kind) {
        (Some(e), _) => (e.workspace.clone(), e.base.clone()),
        (None, Kind::Service) => {
            let dir = root.dir().join(spec.cwd.clone().unwrap_or_default());
            (dir.display().to_string(), String::new())
        }
        (None, Kind::Agent) => {
            let ws = svc
                .home
                .root()
                .join("workspaces")
                .join(project_id.to_string())
                .join(&spec.name);
            let (git, name, base) = (
                root.clone(),
                spec.name.clone(),
                spec.base.clone().unwrap_or_else(|| "HEAD".into()),
            );
            let ws2 = ws.clone();
            let _one_at_a_time = svc.git.lock().await;
            let oid = tokio::task::spawn_blocking(move || -> Result<Option<String>, String> {
                berth_git::workspace::create(&git, &ws2, &name, &base)
                    .map_err(|e| e.to_string())?;
                berth_git::refs::resolve(&git, &berth_git::workspace::keep_alive_ref(&name))
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| err(e.to_string()))?
            .map_err(err)?;
            (ws.display().to_string(), oid.unwrap_or_default())
        }
    };
    let rec = AgentRecord {
        kind: spec.kind.as_str().to_string(),
        project_id,
        project_root: root.dir().display().to_string(),
        name: spec.name.clone(),
        command: Some(spec.command.clone()),
        base,
        restart: spec.restart.as_str().to_string(),
        env: spec.env.clone(),
        ready: spec
            .ready
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| err(e.to_string()))?,
        liveness: spec
            .liveness
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| err(e.to_string()))?,
        stop_signal: spec.stop_signal.clone(),
        stop_grace_ms: u64::try_from(spec.stop_grace.as_millis()).unwrap_or(u64::MAX),
        workspace,
        desired_running: existing.as_ref().is_some_and(|e| e.desired_running),
        created_ms: existing.as_ref().map_or_else(now_ms, |e| e.created_ms),
    };
    store.put_agent(&rec)?;
    Ok(rec)
}

/// Whether `rec` reached `wanted`; `Err` when it can no longer get there.
fn reached(svc: &Services, rec: &AgentRecord, wanted: Condition) -> Result<bool, ComposeError> {
    let state = svc.agents.state_of(rec);
    let ended = |code| ComposeError::Ended {
        name: rec.name.clone(),
        code,
        wanted: wanted.as_str(),
    };
    match (wanted, state) {
        (Condition::Started, s) => Ok(s.has_process() || matches!(s, AgentState::Exited { .. })),
        (Condition::Ready, AgentState::Running) => Ok(true),
        (Condition::Completed, AgentState::Exited { code: Some(0) }) => Ok(true),
        (Condition::Ready, AgentState::Exited { code }) => Err(ended(code)),
        (Condition::Completed, AgentState::Exited { code }) => Err(ended(code)),
        (_, AgentState::Failed | AgentState::Lost | AgentState::Stopped) => Err(ended(None)),
        _ => Ok(false),
    }
}

pub async fn up(
    svc: &Services,
    root: &Git,
    names: &[String],
    timeout: Duration,
) -> Result<Report, ComposeError> {
    let began = Instant::now();
    let file = load(root.dir())?;
    let plan = deps::plan(&file, names)?;
    let mut wanted: HashMap<String, Condition> = HashMap::new();
    for spec in file.all() {
        for d in &spec.depends_on {
            let w = wanted.entry(d.name.clone()).or_insert(d.condition);
            if rank(d.condition) > rank(*w) {
                *w = d.condition;
            }
        }
    }
    let store = &svc.store;
    let project_id = store.project_id(&root.dir().display().to_string(), now_ms())?;
    // Every working directory must exist before anything is defined or started.
    for name in plan.names() {
        if let Some(cwd) = file.get(name).and_then(|s| s.cwd.as_ref()) {
            let dir = root.dir().join(cwd);
            if !dir.is_dir() {
                return Err(ComposeError::Config(format!(
                    "the working directory of {name}, {}, does not exist",
                    dir.display()
                )));
            }
        }
    }
    let mut records = HashMap::new();
    for name in plan.names() {
        if let Some(spec) = file.get(name) {
            records.insert(name.to_string(), define(svc, root, project_id, spec).await?);
        }
    }
    let deadline = began + timeout;
    for level in &plan.levels {
        let recs: Vec<&AgentRecord> = level.iter().filter_map(|n| records.get(n)).collect();
        let started = join_all(recs.iter().map(|r| svc.agents.start(r))).await;
        for (r, result) in recs.iter().zip(started) {
            result.map_err(|e| ComposeError::Start {
                name: r.name.clone(),
                detail: e.to_string(),
            })?;
            store.set_desired(project_id, &r.name, true)?;
        }
        loop {
            let mut waiting = Vec::new();
            for r in &recs {
                let w = wanted.get(&r.name).copied().unwrap_or(Condition::Ready);
                if !reached(svc, r, w)? {
                    waiting.push((*r, w));
                }
            }
            if waiting.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                let wanted = waiting[0].1.as_str();
                for (r, _) in &waiting {
                    let _ = svc.agents.stop(r).await;
                }
                return Err(ComposeError::Timeout {
                    names: waiting.iter().map(|(r, _)| r.name.clone()).collect(),
                    wanted,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(Report {
        levels: plan.levels.clone(),
        killed: Vec::new(),
        took_ms: began.elapsed().as_millis() as u64,
    })
}

pub async fn down(
    svc: &Services,
    root: &Git,
    names: &[String],
    timeout: Duration,
) -> Result<Report, ComposeError> {
    let began = Instant::now();
    let file = load(root.dir())?;
    let levels = deps::dependents_first(&deps::plan(&file, names)?);
    let store = &svc.store;
    let project_id = store.project_id(&root.dir().display().to_string(), now_ms())?;
    let mut records = Vec::new();
    for level in &levels {
        let mut recs = Vec::new();
        for n in level {
            if let Some(r) = store.agent(project_id, n)? {
                store.set_desired(project_id, n, false)?;
                recs.push(r);
            }
        }
        records.push(recs);
    }
    let stopping = async {
        for recs in &records {
            join_all(recs.iter().map(|r| svc.agents.stop(r))).await;
        }
    };
    let mut killed = Vec::new();
    if tokio::time::timeout(timeout, stopping).await.is_err() {
        for r in records.iter().flatten() {
            if svc.agents.state_of(r).has_process() {
                let _ = svc.agents.kill(r).await;
                killed.push(r.name.clone());
            }
        }
    }
    Ok(Report {
        levels,
        killed,
        took_ms: began.elapsed().as_millis() as u64,
    })
}
