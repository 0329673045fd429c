//! Agents under supervision: starting them under keepers, stopping them, watching for exits
//! (restart policy), and re-adopting them when the daemon starts.
//!
//! The daemon never owns an agent's process: its keeper does (`berth_supervisor::keeper`). The
//! daemon writes the keeper's spec, starts it detached, and afterwards only reads its
//! `state.json` and talks to its socket — so the daemon can crash, stop or be upgraded and the
//! agent runs on. On start, [`Supervisor::adopt_all`] trusts a keeper only if its pid *and* start time match
//! what the keeper recorded; anything that should run but vanished is `lost`.
//!
//! An agent elsewhere (`--on`, [`remote`]) has its keeper over there: the same steps go through
//! a link to the far side instead of the keeper's files and socket here.

mod remote;

pub use remote::{Link, LinkError, Removal, place};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_core::agent_state::{self, AgentState, Event, Unreachability};
use berth_core::home::Home;
use berth_core::probe::{NotReady, ProbeSpec, ProbeTracker, Verdict};
use berth_core::restart::{Backoff, Decision, Exit, RestartPolicy, Tracker};
use berth_core::terminal::Size;
use berth_proto::AgentInfo;
use berth_store::{AgentRecord, Store};
use berth_supervisor::keeper::control::{self, Request};
use berth_supervisor::keeper::read_state;
use berth_supervisor::keeper::spec::{KeeperDir, KeeperSpec, TerminalSpec};
use berth_supervisor::probe::{self, Target};

use crate::git_lock::GitLock;
use crate::keepers::{Look, look, reported, spawn_keeper};
use crate::mirror::mirror_later;
use crate::recorder::Recorder;

/// How often a running agent's keeper is looked at (SPEC §7: no periodic work more often than
/// once a second).
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// Default grace period between the stop signal and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

type Key = (i64, String);

#[derive(Debug)]
struct Runtime {
    state: AgentState,
    tracker: Tracker,
    exit_code: Option<i32>,
    /// This run's readiness probe gave up (berth stops the process then).
    not_ready: Option<NotReady>,
    /// This run's readiness probe has not passed yet (nor given up).
    probing: bool,
    /// How often the restart policy started it again since this daemon run began.
    restarts: u32,
    /// An agent elsewhere: its process there, as last seen.
    far_pid: Option<u32>,
    /// An agent elsewhere that cannot be reached: why, in words.
    unreachable: Option<String>,
    /// An agent elsewhere this daemon has not reached yet since it started (re-attaching).
    adopting: bool,
}

/// The daemon's view of every agent it knows, and what starts, stops and watches them. A cheap
/// handle: clones share one view (the tasks that watch an agent hold one).
#[derive(Debug, Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    runtimes: Mutex<HashMap<Key, Runtime>>,
    /// Where keepers keep their files: `$BERTH_HOME/agents`.
    keepers: PathBuf,
    store: Store,
    events: Recorder,
    /// For mirroring an agent's commits after it stopped.
    git: GitLock,
    /// The links to agents elsewhere.
    links: Mutex<HashMap<Key, remote::Link>>,
}

/// Why an agent operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent {0} has no command; create it with --cmd to be able to start it")]
    NoCommand(String),
    #[error("cannot start the keeper of {name}: {detail}")]
    Keeper { name: String, detail: String },
    #[error("cannot stop {name}: {detail}")]
    Stop { name: String, detail: String },
    /// An agent elsewhere could not be reached, or its far side failed.
    #[error("agent {name} on {on}: {detail}")]
    Elsewhere {
        name: String,
        on: String,
        detail: String,
    },
}

/// Milliseconds since the epoch, as the restart tracker counts them.
fn now_ms() -> u64 {
    u64::try_from(crate::clock::now_ms()).unwrap_or(0)
}

fn key(rec: &AgentRecord) -> Key {
    (rec.project_id, rec.name.clone())
}

/// The readiness probe a definition records.
fn probe_of(rec: &AgentRecord) -> Result<Option<ProbeSpec>, serde_json::Error> {
    rec.ready.as_deref().map(serde_json::from_str).transpose()
}

fn policy(rec: &AgentRecord) -> RestartPolicy {
    rec.restart.parse().unwrap_or_default()
}

impl Supervisor {
    pub fn new(home: &Home, store: Store, events: Recorder, git: GitLock) -> Supervisor {
        Supervisor {
            inner: Arc::new(Inner {
                runtimes: Mutex::default(),
                keepers: home.agents_dir(),
                store,
                events,
                git,
                links: Mutex::default(),
            }),
        }
    }

    /// Where an agent's keeper keeps its files.
    pub fn keeper_dir(&self, rec: &AgentRecord) -> KeeperDir {
        KeeperDir(
            self.inner
                .keepers
                .join(rec.project_id.to_string())
                .join(&rec.name),
        )
    }

    fn with<T>(&self, k: &Key, f: impl FnOnce(&mut Runtime) -> T) -> T {
        let mut map = self
            .inner
            .runtimes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let rt = map.entry(k.clone()).or_insert(Runtime {
            state: AgentState::Stopped,
            tracker: Tracker::default(),
            exit_code: None,
            not_ready: None,
            probing: false,
            restarts: 0,
            far_pid: None,
            unreachable: None,
            adopting: false,
        });
        f(rt)
    }

    fn state(&self, k: &Key) -> AgentState {
        self.with(k, |rt| rt.state)
    }

    /// Feeds the state machine; an impossible event is logged and ignored.
    fn apply(&self, k: &Key, event: Event) -> AgentState {
        self.with(k, |rt| {
            match agent_state::next(rt.state, event) {
                Ok(s) => rt.state = s,
                Err(e) => tracing::warn!(agent = %k.1, "{e}"),
            }
            rt.state
        })
    }

    /// Where an agent is now.
    pub fn state_of(&self, rec: &AgentRecord) -> AgentState {
        self.state(&key(rec))
    }

    /// Whether this run's readiness probe gave up, and which.
    pub fn not_ready(&self, rec: &AgentRecord) -> Option<NotReady> {
        self.with(&key(rec), |rt| rt.not_ready.clone())
    }

    /// The agent as the API shows it.
    pub fn info(&self, rec: &AgentRecord) -> AgentInfo {
        let k = key(rec);
        let (state, exit_code, far_pid, unreachable, restarts) = self.with(&k, |rt| {
            (
                rt.state,
                rt.exit_code,
                rt.far_pid,
                rt.unreachable.clone(),
                rt.restarts,
            )
        });
        let keeper = (rec.remote.is_none() && state.has_process())
            .then(|| read_state(&self.keeper_dir(rec)))
            .flatten();
        let pid = match &rec.remote {
            Some(_) => state.has_process().then_some(far_pid).flatten(),
            None => keeper.as_ref().and_then(|s| s.child.map(|c| c.pid)),
        };
        let unreachable = match state {
            AgentState::Unreachable { cause } => Some(format!(
                "{}: {}",
                cause.name(),
                unreachable.unwrap_or_default()
            )),
            _ => None,
        };
        AgentInfo {
            kind: rec.kind.clone(),
            name: rec.name.clone(),
            project: rec.project_root.clone(),
            command: rec.command.clone(),
            branch: (rec.kind == "agent").then(|| berth_git::workspace::branch(&rec.name)),
            base: rec.base.clone(),
            workspace: rec.workspace.clone(),
            restart: rec.restart.clone(),
            ready: probe_of(rec).ok().flatten().map(|p| p.check.to_string()),
            state: state.name().to_string(),
            pid,
            started_ms: keeper.map(|s| s.started_ms),
            restarts,
            exit_code,
            log: self.keeper_dir(rec).output().display().to_string(),
            tty: rec.tty,
            scrollback: rec.tty.then(|| {
                rec.scrollback
                    .unwrap_or(berth_core::terminal::DEFAULT_SCROLLBACK as u32)
            }),
            turn: rec.turn.clone(),
            on: rec.remote.clone(),
            unreachable,
        }
    }

    /// Checks a running process with its liveness probe; when it fails `threshold` times in a row,
    /// kills it (as a crash, not a stop), so the watcher applies the restart policy.
    async fn keep_alive(self, rec: AgentRecord, probe: ProbeSpec) {
        let k = key(&rec);
        let dir = self.keeper_dir(&rec);
        let Ok(mut target) = Target::new(
            &probe.check,
            PathBuf::from(&rec.workspace),
            dir.output(),
            None,
        ) else {
            return;
        };
        let mut tracker = ProbeTracker::new(&probe);
        loop {
            tokio::time::sleep(probe.interval.max(Duration::from_secs(1))).await;
            match self.state(&k) {
                AgentState::Running => {}
                AgentState::Starting => continue,
                _ => return,
            }
            let ok = probe::attempt(&probe.check, &mut target, probe.timeout).await;
            if tracker.record(ok) == Verdict::Failing {
                self.inner.events.record_about(
                    "agent.unhealthy",
                    &rec.name,
                    serde_json::json!({ "probe": probe.check.to_string() }),
                );
                let socket = dir.socket();
                let _ = tokio::task::spawn_blocking(move || {
                    control::request(&socket, &Request::Kill, Duration::from_secs(10))
                })
                .await;
                return;
            }
        }
    }

    /// Starts the agent under a new keeper (no-op if it already runs).
    pub async fn start(&self, rec: &AgentRecord) -> Result<(), AgentError> {
        let k = key(rec);
        if self.state(&k).has_process() {
            return Ok(());
        }
        let command = rec
            .command
            .clone()
            .ok_or_else(|| AgentError::NoCommand(rec.name.clone()))?;
        let dir = self.keeper_dir(rec);
        let fail = |detail: String| AgentError::Keeper {
            name: rec.name.clone(),
            detail,
        };
        std::fs::create_dir_all(dir.path()).map_err(|e| fail(e.to_string()))?;
        let mut env = rec.env.clone();
        env.insert("BERTH_AGENT".into(), rec.name.clone());
        env.insert("BERTH_WORKSPACE".into(), rec.workspace.clone());
        if rec.remote.is_some() {
            // Its working directory and BERTH_WORKSPACE are set over there.
            let spec = keeper_spec(rec, command, env);
            return self.start_remote(rec, spec).await;
        }
        // The notify socket exists before the agent does, so `READY=1` can never be missed.
        let notify_path = dir.path().join("notify.sock");
        let _ = std::fs::remove_file(&notify_path);
        let notify =
            tokio::net::UnixDatagram::bind(&notify_path).map_err(|e| fail(e.to_string()))?;
        env.insert(
            "BERTH_NOTIFY_SOCKET".into(),
            notify_path.display().to_string(),
        );
        let probe =
            probe_of(rec).map_err(|e| fail(format!("its readiness probe is unreadable: {e}")))?;
        let target = match &probe {
            Some(p) => Some(
                Target::new(
                    &p.check,
                    PathBuf::from(&rec.workspace),
                    dir.output(),
                    Some(notify),
                )
                .map_err(fail)?,
            ),
            None => None,
        };
        let spec = keeper_spec(rec, command, env);
        let bytes = serde_json::to_vec_pretty(&spec).map_err(|e| fail(e.to_string()))?;
        berth_control::files::write_atomically(&dir.spec(), &bytes)
            .map_err(|e| fail(e.to_string()))?;
        let _ = std::fs::remove_file(dir.state());
        let exited = spawn_keeper(&dir).map_err(|e| fail(e.to_string()))?;
        // The keeper writes state.json once the child runs.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match reported(&dir, &exited) {
                Some(Ok(_)) => break,
                Some(Err(said)) => return Err(fail(said)),
                None => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(fail(
                    "it did not report within 10 s; see its output.log".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let started = now_ms();
        self.apply(&k, Event::Start);
        self.with(&k, |rt| rt.not_ready = None);
        self.inner.events.record_about(
            "agent.started",
            &rec.name,
            serde_json::json!({ "project": rec.project_root }),
        );
        match (probe, target) {
            (Some(probe), Some(target)) => {
                let prober = remote::Prober::Here(target);
                tokio::spawn(self.clone().await_ready(rec.clone(), probe, prober));
            }
            _ => {
                self.apply(&k, Event::Ready);
            }
        }
        if let Some(liveness) = rec
            .liveness
            .as_deref()
            .and_then(|l| serde_json::from_str(l).ok())
        {
            tokio::spawn(self.clone().keep_alive(rec.clone(), liveness));
        }
        tokio::spawn(self.clone().watch(rec.clone(), started));
        Ok(())
    }

    /// Runs the readiness probe until it passes (→ `running`) or its deadline passes (the agent is
    /// stopped and `failed`).
    async fn await_ready(self, rec: AgentRecord, probe: ProbeSpec, mut prober: remote::Prober) {
        let k = key(&rec);
        let began = tokio::time::Instant::now();
        let deadline = probe
            .deadline
            .unwrap_or(berth_core::probe::DEFAULT_DEADLINE);
        let mut tracker = ProbeTracker::new(&probe);
        self.with(&k, |rt| rt.probing = true);
        loop {
            match self.state(&k) {
                AgentState::Starting => {}
                // An agent elsewhere out of reach: probed again once it is back (`starting`).
                AgentState::Unreachable { .. } => {
                    tokio::time::sleep(probe.interval).await;
                    continue;
                }
                _ => {
                    self.with(&k, |rt| rt.probing = false);
                    return; // stopped or exited meanwhile
                }
            }
            let ok = prober.attempt(&probe).await;
            if tracker.record(ok) == Verdict::Passing {
                self.with(&k, |rt| rt.probing = false);
                self.apply(&k, Event::Ready);
                self.inner.events.record_about(
                    "agent.ready",
                    &rec.name,
                    serde_json::json!({ "probe": probe.check.to_string() }),
                );
                return;
            }
            if began.elapsed() >= deadline {
                let not_ready = NotReady {
                    check: probe.check.clone(),
                    after: deadline,
                };
                self.inner.events.record_about(
                    "agent.not_ready",
                    &rec.name,
                    serde_json::json!({ "reason": not_ready.to_string() }),
                );
                self.with(&k, |rt| {
                    rt.not_ready = Some(not_ready);
                    rt.probing = false;
                });
                if let Err(e) = self.stop(&rec).await {
                    tracing::error!(agent = %rec.name, "{e}");
                }
                self.with(&k, |rt| rt.state = AgentState::Failed);
                return;
            }
            tokio::time::sleep(probe.interval).await;
        }
    }

    /// Follows a running agent until it ends, then applies the restart policy.
    async fn watch(self, rec: AgentRecord, started_ms: u64) {
        let k = key(&rec);
        let dir = self.keeper_dir(&rec);
        loop {
            tokio::time::sleep(WATCH_EVERY).await;
            if self.state(&k) == AgentState::Stopping {
                return; // `stop` owns it now
            }
            let st = match look(&dir) {
                None | Some(Look::Alive(_)) => continue,
                Some(Look::Done(st)) => st,
                Some(Look::Vanished) => {
                    self.apply(&k, Event::Vanished);
                    self.inner
                        .events
                        .record_about("agent.lost", &rec.name, serde_json::json!({}));
                    return;
                }
            };
            let code = st.exit.and_then(|e| e.code);
            let exit = if st.exit.is_some_and(|e| e.success()) {
                Exit::Success
            } else {
                Exit::Failure
            };
            mirror_later(&self.inner.git, &self.inner.events, &rec);
            self.on_exit(&rec, code, exit, started_ms).await;
            return;
        }
    }

    /// An agent ended by itself: the restart policy decides, and a restart due is carried out.
    async fn on_exit(&self, rec: &AgentRecord, code: Option<i32>, exit: Exit, started_ms: u64) {
        let k = key(rec);
        let now = now_ms();
        let decision = self.with(&k, |rt| {
            rt.exit_code = code;
            rt.tracker
                .on_exit(policy(rec), &Backoff::default(), exit, started_ms, now)
        });
        self.apply(&k, Event::Exited { code, decision });
        self.inner.events.record_about(
            "agent.exited",
            &rec.name,
            serde_json::json!({ "code": code, "decision": decision }),
        );
        if let Decision::Restart { at_ms, .. } = decision {
            tokio::time::sleep(Duration::from_millis(at_ms.saturating_sub(now_ms()))).await;
            if matches!(self.state(&k), AgentState::Backoff { .. }) {
                self.with(&k, |rt| {
                    rt.state = AgentState::Stopped;
                    rt.restarts += 1;
                });
                if let Err(e) = self.clone().start_again(rec.clone()).await {
                    tracing::error!(agent = %rec.name, "restart failed: {e}");
                }
            }
        }
    }

    /// `start` behind a box: `start` spawns `watch`, which restarts through here, and the box keeps
    /// that cycle out of the futures' types.
    fn start_again(
        self,
        rec: AgentRecord,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), AgentError>> + Send>> {
        Box::pin(async move { self.start(&rec).await })
    }

    /// Stops the agent and every descendant; returns once none remains.
    pub async fn stop(&self, rec: &AgentRecord) -> Result<(), AgentError> {
        self.end(rec, Request::Stop { grace_ms: None })
            .await
            .map(|_killed| ())
    }

    /// Like [`Supervisor::stop`], with the grace period between the stop signal and SIGKILL
    /// shortened to at most `grace` (`berth down` fitting its overall timeout). Returns whether
    /// SIGKILL was needed.
    pub async fn stop_within(
        &self,
        rec: &AgentRecord,
        grace: Duration,
    ) -> Result<bool, AgentError> {
        let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        self.end(
            rec,
            Request::Stop {
                grace_ms: Some(grace_ms),
            },
        )
        .await
    }

    /// Carries out a stop; returns whether SIGKILL was needed.
    async fn end(&self, rec: &AgentRecord, how: Request) -> Result<bool, AgentError> {
        let k = key(rec);
        let before = self.state(&k);
        self.apply(&k, Event::Stop);
        if !before.has_process() {
            return Ok(false);
        }
        if rec.remote.is_some() {
            let grace_ms = match how {
                Request::Stop { grace_ms } => grace_ms,
                _ => None,
            };
            return self.end_remote(rec, grace_ms).await;
        }
        let socket = self.keeper_dir(rec).socket();
        let timeout = Duration::from_millis(rec.stop_grace_ms) + Duration::from_secs(10);
        let answer = tokio::task::spawn_blocking(move || control::request(&socket, &how, timeout))
            .await
            .map_err(|e| AgentError::Stop {
                name: rec.name.clone(),
                detail: e.to_string(),
            })?;
        let killed = match answer {
            Ok(resp) => {
                self.with(&k, |rt| rt.exit_code = resp.state.exit.and_then(|e| e.code));
                resp.killed
            }
            // The keeper is already gone (it finished between our look and the request).
            Err(control::ControlError::Io { .. }) => false,
            Err(e) => {
                return Err(AgentError::Stop {
                    name: rec.name.clone(),
                    detail: e.to_string(),
                });
            }
        };
        self.apply(&k, Event::Gone);
        self.inner
            .events
            .record_about("agent.stopped", &rec.name, serde_json::json!({}));
        mirror_later(&self.inner.git, &self.inner.events, rec);
        Ok(killed)
    }

    /// Stops every agent and service of every project, concurrently (`berth daemon stop --all`).
    pub async fn stop_all(&self) {
        let store = &self.inner.store;
        let all = match store.agents(None) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!("cannot list agents to stop: {e}");
                return;
            }
        };
        let running: Vec<&AgentRecord> = all
            .iter()
            .filter(|r| self.state_of(r).has_process())
            .collect();
        for r in &running {
            if let Err(e) = store.set_desired(r.project_id, &r.name, false) {
                tracing::error!(agent = %r.name, "{e}");
            }
        }
        for (r, result) in running
            .iter()
            .zip(futures_util::future::join_all(running.iter().map(|r| self.stop(r))).await)
        {
            if let Err(e) = result {
                tracing::error!(agent = %r.name, "{e}");
            }
        }
    }

    /// On daemon start: finds every agent that should run and re-adopts its keeper, or marks it
    /// `lost` (or `exited`, if its keeper finished while nobody watched).
    pub fn adopt_all(&self) {
        let store = &self.inner.store;
        let agents = match store.agents(None) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!("cannot list agents to re-adopt: {e}");
                return;
            }
        };
        for rec in agents.into_iter().filter(|a| a.desired_running) {
            let k = key(&rec);
            if rec.remote.is_some() {
                // Its keeper is over there: unreachable until the first look gets through
                // (then `running` again, or what became of it meanwhile).
                self.with(&k, |rt| {
                    rt.state = AgentState::Unreachable {
                        cause: Unreachability::CannotConnect,
                    };
                    rt.unreachable = Some("not reached yet since the daemon started".into());
                    rt.adopting = true;
                });
                tokio::spawn(self.clone().watch_remote(rec, now_ms()));
                continue;
            }
            match look(&self.keeper_dir(&rec)) {
                Some(Look::Alive(st)) => {
                    self.with(&k, |rt| rt.state = AgentState::Running);
                    self.inner.events.record_about(
                        "agent.adopted",
                        &rec.name,
                        serde_json::json!({ "keeper": st.keeper.pid }),
                    );
                    let started = u64::try_from(st.started_ms).unwrap_or(0);
                    tokio::spawn(self.clone().watch(rec, started));
                }
                Some(Look::Done(st)) => {
                    let code = st.exit.and_then(|e| e.code);
                    self.with(&k, |rt| {
                        rt.state = AgentState::Exited { code };
                        rt.exit_code = code;
                    });
                }
                _ => {
                    self.with(&k, |rt| rt.state = AgentState::Lost);
                    self.inner
                        .events
                        .record_about("agent.lost", &rec.name, serde_json::json!({}));
                }
            }
        }
    }
}

/// The keeper's spec for `rec` running `command` with `env`, in its workspace.
fn keeper_spec(
    rec: &AgentRecord,
    command: String,
    env: std::collections::BTreeMap<String, String>,
) -> KeeperSpec {
    KeeperSpec {
        name: rec.name.clone(),
        command,
        cwd: PathBuf::from(&rec.workspace),
        env,
        stop_signal: rec.stop_signal.clone(),
        stop_grace_ms: rec.stop_grace_ms,
        log_max_bytes: 10 * 1024 * 1024,
        log_keep: 3,
        terminal: rec.tty.then_some(TerminalSpec {
            rows: Size::DEFAULT.rows,
            cols: Size::DEFAULT.cols,
            scrollback: rec
                .scrollback
                .map_or(berth_core::terminal::DEFAULT_SCROLLBACK, |n| n as usize),
        }),
        stdin: None,
    }
}
