//! `berth up` / `berth down`: what `berth.toml` declares, in dependency order.
//!
//! `up` defines every process of the plan (an agent gets its workspace the first time; a
//! service runs in the repository itself), then starts level by level — concurrently within a
//! level — and before the next level waits until each process reached what its dependents ask
//! for (`started`, `ready` or `completed`; `ready` when nobody asks). A process that fails
//! does not stop the others: what depends on it is skipped (`berth_core::deps::blocked_by`),
//! everything else goes on, and the report lists every failure together (what happened, which
//! probe, the last lines of its output) and what is left running. When the overall timeout
//! passes, whatever is still on its way is stopped and counted as failed, and nothing more is
//! started.
//!
//! `down` stops in the reverse order, concurrently within a level. Every process is sent its
//! stop signal first; the overall timeout only shortens each grace period
//! (`berth_core::deps::grace_within`), and the report names what had to be killed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use berth_core::compose::{Progress, Shortfall, progress};
use berth_core::deps::{self, Outcome};
use berth_core::project::{self, Condition, Kind, ProcessSpec, ProjectFile};
use berth_git::Git;
use berth_proto::{DownFailure, DownKilled, DownReport, UpFailure, UpReport, UpSkipped};
use berth_store::AgentRecord;
use futures_util::future::join_all;

use crate::clock::now_ms;
use crate::services::Services;
use crate::workspaces;

/// How often `up` looks at what it waits for.
const POLL: Duration = Duration::from_millis(50);
/// Lines of output shown with a failure.
const OUTPUT_LINES: usize = 10;

/// Why `up` or `down` could not even begin (nothing was started or stopped).
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("there is no berth.toml in {0}; declare your agents and services there")]
    NoFile(String),
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Deps(#[from] deps::DepsError),
    #[error("cannot prepare {name}: {detail}")]
    Define { name: String, detail: String },
    #[error("{0}")]
    Store(#[from] berth_store::StoreError),
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
    let text = std::fs::read_to_string(&path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => ComposeError::NoFile(root.display().to_string()),
        _ => ComposeError::Unreadable {
            path: path.display().to_string(),
            source,
        },
    })?;
    project::parse(&text).map_err(|e| ComposeError::Config(e.to_string()))
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
            let ws = svc.home.workspace(project_id, &spec.name);
            let base = spec.base.as_deref().unwrap_or("HEAD");
            let oid = workspaces::create(&svc.git, root, &ws, &spec.name, base)
                .await
                .map_err(|e| err(e.to_string()))?;
            (ws.display().to_string(), oid)
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
        tty: spec.tty,
        scrollback: spec.scrollback,
        turn: spec.turn.clone(),
        turn_timeout_ms: spec
            .turn_timeout
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        remote: None,
    };
    store.put_agent(&rec)?;
    Ok(rec)
}

/// The condition each process must reach: the strongest any dependent asks for, `ready` when
/// nobody depends on it.
fn wanted_of(file: &ProjectFile) -> HashMap<String, Condition> {
    let mut wanted: HashMap<String, Condition> = HashMap::new();
    for spec in file.all() {
        for d in &spec.depends_on {
            let w = wanted.entry(d.name.clone()).or_insert(d.condition);
            if rank(d.condition) > rank(*w) {
                *w = d.condition;
            }
        }
    }
    wanted
}

/// How the processes of one `up` turned out so far.
#[derive(Default)]
struct Tally {
    outcomes: BTreeMap<String, Outcome>,
    failed: Vec<UpFailure>,
    skipped: Vec<UpSkipped>,
}

impl Tally {
    fn reached(&mut self, rec: &AgentRecord) {
        self.outcomes.insert(rec.name.clone(), Outcome::Reached);
    }

    fn skip(&mut self, name: &str, because: Vec<String>) {
        self.skipped.push(UpSkipped {
            name: name.to_string(),
            because: because.clone(),
        });
        self.outcomes
            .insert(name.to_string(), Outcome::Skipped { because });
    }

    /// Records a failure with what a person needs to act on it. Nothing of the process runs
    /// any more (it ended, or berth stopped it), so it is no longer wanted running either.
    fn fail(&mut self, svc: &Services, rec: &AgentRecord, why: &Shortfall) {
        let info = svc.agents.info(rec);
        if let Err(e) = svc.store.set_desired(rec.project_id, &rec.name, false) {
            tracing::error!(agent = %rec.name, "{e}");
        }
        self.failed.push(UpFailure {
            name: rec.name.clone(),
            kind: rec.kind.clone(),
            reason: why.to_string(),
            probe: info.ready,
            exit_code: info.exit_code,
            output: berth_control::logs::tail(Path::new(&info.log), OUTPUT_LINES)
                .iter()
                .map(|l| berth_core::output_line::shown(l))
                .collect(),
            log: info.log,
        });
        self.outcomes.insert(rec.name.clone(), Outcome::Failed);
    }
}

pub async fn up(
    svc: &Services,
    root: &Git,
    names: &[String],
    timeout: Duration,
) -> Result<UpReport, ComposeError> {
    let began = Instant::now();
    let file = load(root.dir())?;
    let plan = deps::plan(&file, names)?;
    let wanted = wanted_of(&file);
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
    let mut tally = Tally::default();
    for level in &plan.levels {
        let mut starting = Vec::new();
        for name in level {
            let Some(rec) = records.get(name) else {
                continue;
            };
            let because = deps::blocked_by(&file, name, &tally.outcomes);
            if !because.is_empty() || Instant::now() >= deadline {
                tally.skip(name, because);
            } else {
                starting.push(rec);
            }
        }
        let started = join_all(starting.iter().map(|r| svc.agents.start(r))).await;
        let mut waiting = Vec::new();
        for (rec, result) in starting.into_iter().zip(started) {
            match result {
                Ok(()) => {
                    store.set_desired(project_id, &rec.name, true)?;
                    let w = wanted.get(&rec.name).copied().unwrap_or(Condition::Ready);
                    waiting.push((rec, w));
                }
                Err(e) => tally.fail(
                    svc,
                    rec,
                    &Shortfall::NotStarted {
                        detail: e.to_string(),
                    },
                ),
            }
        }
        while !waiting.is_empty() {
            let mut still = Vec::new();
            for (rec, w) in waiting {
                let state = svc.agents.state_of(rec);
                match progress(w, state, svc.agents.not_ready(rec).as_ref()) {
                    Progress::Reached => tally.reached(rec),
                    Progress::Failed(why) => tally.fail(svc, rec, &why),
                    Progress::Waiting => still.push((rec, w)),
                }
            }
            waiting = still;
            if waiting.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                let stops = join_all(waiting.iter().map(|(r, _)| svc.agents.stop(r))).await;
                for ((rec, w), stopped) in waiting.drain(..).zip(stops) {
                    if let Err(e) = stopped {
                        tracing::error!(agent = %rec.name, "{e}");
                    }
                    let why = Shortfall::OutOfTime {
                        wanted: w,
                        after: timeout,
                    };
                    tally.fail(svc, rec, &why);
                }
                break;
            }
            tokio::time::sleep(POLL).await;
        }
    }
    let running = plan
        .names()
        .filter(|n| {
            records
                .get(*n)
                .is_some_and(|r| svc.agents.state_of(r).has_process())
        })
        .map(str::to_string)
        .collect();
    Ok(UpReport {
        levels: plan.levels.clone(),
        failed: tally.failed,
        skipped: tally.skipped,
        running,
        took_ms: millis(began.elapsed()),
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub async fn down(
    svc: &Services,
    root: &Git,
    names: &[String],
    timeout: Duration,
) -> Result<DownReport, ComposeError> {
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
    let deadline = began + timeout;
    let (mut killed, mut failed) = (Vec::new(), Vec::new());
    for (i, recs) in records.iter().enumerate() {
        // The levels that still have something to stop share what is left of the timeout.
        let levels_left = records[i..]
            .iter()
            .filter(|l| l.iter().any(|r| svc.agents.state_of(r).has_process()))
            .count();
        let remaining = deadline.saturating_duration_since(Instant::now());
        let graces: Vec<Duration> = recs
            .iter()
            .map(|r| {
                let own = Duration::from_millis(r.stop_grace_ms);
                deps::grace_within(own, remaining, levels_left)
            })
            .collect();
        let stops = recs
            .iter()
            .zip(&graces)
            .map(|(r, grace)| svc.agents.stop_within(r, *grace));
        for ((rec, grace), result) in recs.iter().zip(&graces).zip(join_all(stops).await) {
            match result {
                Ok(false) => {}
                Ok(true) => killed.push(DownKilled {
                    name: rec.name.clone(),
                    grace_ms: millis(*grace),
                }),
                Err(e) => failed.push(DownFailure {
                    name: rec.name.clone(),
                    error: e.to_string(),
                }),
            }
        }
    }
    Ok(DownReport {
        levels,
        killed,
        failed,
        took_ms: millis(began.elapsed()),
    })
}
