//! Agents' inboxes delivered: one worker per agent takes its items one at a time, in order
//! (`now` first, then oldest), and delivers each as a *turn*.
//!
//! - A **turn agent** (`--turn CMD`): each attempt runs CMD in the agent's workspace under a
//!   keeper of its own (`$BERTH_HOME/agents/<project>/<name>/turns/<turn>/`), with the message on
//!   stdin and in `BERTH_MESSAGE_FILE`, so the turn lives on whatever happens to the daemon.
//!   Exit 0 → done; otherwise (or after the turn timeout, when it is stopped like any process)
//!   another attempt follows `berth_core::inbox::after_turn`, then the item fails.
//! - A **terminal agent** (`--tty`): the message is typed into its terminal, followed by Return,
//!   once its screen has been quiet for `berth_core::inbox::SETTLE`.
//!
//! Every turn is recorded before it starts (with its item moved to `delivering`, in one
//! transaction) and completed when it ends (with its item's final state, in one transaction).
//! On daemon start, [`Inbox::recover`] wakes every agent with open items; an item found
//! `delivering` goes through `berth_core::inbox::recover`: a turn whose keeper still runs is
//! watched to its end, one that ended meanwhile is collected, one whose keeper vanished is
//! `interrupted` and retried. Failpoints mark the moments a crash matters: `inbox.turn.recorded`
//! (the turn recorded, nothing started), `inbox.turn.started` (its keeper started),
//! `inbox.turn.ended` (it ended, not yet recorded); for a terminal agent also `inbox.type.settled`
//! (its screen settled, nothing typed) and `inbox.type.typed` (typed, not yet recorded). One worker per agent, and a turn is only ever started after the
//! previous one is recorded as ended: never two turns of one agent at once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_core::inbox::{
    self, AfterTurn, ItemEvent, ItemState, MessageError, Mode, Priority, Recovery, RetryPolicy,
    Seen, TurnStatus, Undeliverable,
};
use berth_store::{
    AgentRecord, ItemRecord, NewItem, NewTurn, Store, StoreError, Tell, TurnEnd, TurnRecord,
};
use berth_supervisor::keeper::control::{self, Request};
use berth_supervisor::keeper::read_state;
use berth_supervisor::keeper::spec::{KeeperDir, KeeperSpec};
use tokio::sync::Notify;

use crate::agents::Supervisor;
use crate::clock::now_ms;
use crate::failpoints;
use crate::far_turns::{self, FarTurn};
use crate::keepers::{self, Look, spawn_keeper};
use crate::recorder::Recorder;
use crate::terminals;

/// How often a running turn's keeper is looked at: often at first (most turns of a busy inbox
/// are short), then less.
const WATCH_FIRST: Duration = Duration::from_millis(5);
const WATCH_EVERY: Duration = Duration::from_millis(25);
/// How often a turn of an agent elsewhere is looked at (each look a round trip there).
const WATCH_FAR: Duration = Duration::from_millis(50);
/// For how long after its start a turn is looked at every [`WATCH_FIRST`].
const WATCH_CLOSELY: i64 = 250;
/// How often a terminal's screen is looked at while waiting for it to settle.
const SCREEN_EVERY: Duration = Duration::from_millis(100);
/// A keeper that has not written its state this long after its spec never started.
const KEEPER_START: Duration = Duration::from_secs(10);
/// The `message` source: `berth send`.
pub const SOURCE_MESSAGE: &str = "message";

type Key = (i64, String);

/// Why a message was not queued.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Undeliverable(#[from] Undeliverable),
    #[error("{0}; nothing was queued")]
    Invalid(#[from] MessageError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an item was not cancelled.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("no inbox item {0}")]
    NotFound(i64),
    #[error("item {id} is {state}, not queued: only a queued item can be cancelled")]
    NotQueued { id: i64, state: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The daemon's inboxes: sending, cancelling, and the workers that deliver. A cheap handle.
#[derive(Debug, Clone)]
pub struct Inbox {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    events: Recorder,
    agents: Supervisor,
    policy: RetryPolicy,
    /// One worker per agent with work, and what wakes it.
    workers: Mutex<HashMap<Key, Arc<Notify>>>,
}

/// How a turn's process ended, as the worker saw it.
#[derive(Debug)]
struct Ended {
    status: TurnStatus,
    exit_code: Option<i32>,
    error: Option<String>,
}

impl Inbox {
    pub fn new(store: Store, events: Recorder, agents: Supervisor) -> Inbox {
        Inbox {
            inner: Arc::new(Inner {
                store,
                events,
                agents,
                policy: RetryPolicy::default(),
                workers: Mutex::default(),
            }),
        }
    }

    /// Queues `text` for the agent, from `source` (checked first: nothing is queued for an agent that takes no
    /// messages, nor a message it cannot be given). With a `key` this agent has seen, nothing
    /// is queued and the item that key made is returned; the flag says whether the item is new.
    pub fn send(
        &self,
        rec: &AgentRecord,
        text: &str,
        key: Option<&str>,
        priority: Priority,
        source: &str,
    ) -> Result<(ItemRecord, bool), SendError> {
        let mode = inbox::mode(&rec.name, rec.turn.is_some(), rec.tty)?;
        inbox::check_message(text, key, mode)?;
        let (item, new) = self.inner.store.inbox_send(
            &NewItem {
                project_id: rec.project_id,
                agent: &rec.name,
                text,
                source,
                priority: priority.rank(),
                key,
                now_ms: now_ms(),
            },
            queued_event,
        )?;
        if new {
            self.queued(&item);
        }
        Ok((item, new))
    }

    /// A new item was stored (by a send, a timer or a webhook) with the event
    /// [`queued_event`] made of it: wakes its agent's worker.
    pub(crate) fn queued(&self, item: &ItemRecord) {
        self.wake(item.project_id, &item.agent);
    }

    /// Cancels a queued item.
    pub fn cancel(&self, id: i64) -> Result<ItemRecord, CancelError> {
        let store = &self.inner.store;
        let item = store.inbox_item(id)?.ok_or(CancelError::NotFound(id))?;
        let state: ItemState = item.state.parse().unwrap_or(ItemState::Failed);
        let not_queued = |state: String| CancelError::NotQueued { id, state };
        let to =
            inbox::next(state, ItemEvent::Cancel).map_err(|_| not_queued(item.state.clone()))?;
        match store.inbox_move(id, state.as_str(), to.as_str(), now_ms())? {
            Some((item, true)) => {
                self.inner.events.record_about(
                    "inbox.cancelled",
                    &item.agent,
                    serde_json::json!({ "item": id }),
                );
                Ok(item)
            }
            // Its delivery started in between.
            Some((item, false)) => Err(not_queued(item.state)),
            None => Err(CancelError::NotFound(id)),
        }
    }

    /// On daemon start: a worker for every agent with items queued or delivering.
    pub fn recover(&self) {
        match self.inner.store.inbox_busy_agents() {
            Ok(busy) => {
                for (project_id, agent) in busy {
                    self.wake(project_id, &agent);
                }
            }
            Err(e) => tracing::error!("cannot list inboxes to deliver: {e}"),
        }
    }

    /// Wakes the agent's worker, starting it if it has none.
    fn wake(&self, project_id: i64, agent: &str) {
        let key = (project_id, agent.to_string());
        let mut workers = self.inner.workers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(notify) = workers.get(&key) {
            notify.notify_one();
            return;
        }
        let notify = Arc::new(Notify::new());
        workers.insert(key.clone(), notify.clone());
        tokio::spawn(self.clone().work(key, notify));
    }

    /// An agent's worker: delivers its items one at a time for as long as the agent exists.
    async fn work(self, key: Key, notify: Arc<Notify>) {
        let store = &self.inner.store;
        loop {
            let rec = match store.agent(key.0, &key.1) {
                Ok(Some(rec)) => rec,
                Ok(None) => {
                    if self.forget(&key) {
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::error!(agent = %key.1, "cannot read the agent to deliver to: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            match store.inbox_next(key.0, &key.1) {
                Ok(Some(item)) => {
                    if let Some(wait) = self.deliver(&rec, item).await {
                        tokio::time::sleep(wait).await;
                    }
                }
                Ok(None) => notify.notified().await,
                Err(e) => {
                    tracing::error!(agent = %key.1, "cannot read the inbox: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// The agent is gone: what it had queued is cancelled, and its worker ends (`true`). Under
    /// the workers' lock, so a send cannot slip in between; `false` when an agent of that name
    /// was made again meanwhile (its items are its own: the worker goes on).
    fn forget(&self, key: &Key) -> bool {
        let mut workers = self.inner.workers.lock().unwrap_or_else(|p| p.into_inner());
        if !matches!(self.inner.store.agent(key.0, &key.1), Ok(None)) {
            return false;
        }
        match self.inner.store.inbox_cancel_all(key.0, &key.1, now_ms()) {
            Ok(ids) => {
                for id in ids {
                    self.inner.events.record_about(
                        "inbox.cancelled",
                        &key.1,
                        serde_json::json!({ "item": id, "reason": "the agent was removed" }),
                    );
                }
            }
            Err(e) => tracing::error!(agent = %key.1, "cannot cancel a removed agent's inbox: {e}"),
        }
        workers.remove(key);
        true
    }

    /// Takes one step of the item's delivery: starts (or recovers) a turn and records how it
    /// ended. Returns how long to wait before the next attempt, if one follows.
    async fn deliver(&self, rec: &AgentRecord, item: ItemRecord) -> Option<Duration> {
        let mode = match inbox::mode(&rec.name, rec.turn.is_some(), rec.tty) {
            Ok(mode) => mode,
            // Its definition changed since the item was queued (`berth up`).
            Err(e) => return self.refuse(rec, &item, &e.to_string()),
        };
        let last = if item.state == ItemState::Delivering.as_str() {
            match self.inner.store.last_turn(item.id) {
                Ok(last) => last,
                Err(e) => {
                    tracing::error!(agent = %rec.name, "cannot read the last turn: {e}");
                    return Some(Duration::from_secs(1));
                }
            }
        } else {
            None
        };
        let seen = match &last {
            Some(t) if t.status == TurnStatus::Running.as_str() && mode == Mode::Turn => {
                Some(match self.far_turn(rec, t.id) {
                    Some(Ok(far)) => far.recovered().await,
                    // Its link cannot even be made: watched, never started twice.
                    Some(Err(_)) => Seen::Alive,
                    None => self.seen(&self.turn_dir(rec, t.id)).await,
                })
            }
            _ => None,
        };
        let status = |t: &TurnRecord| t.status.parse().unwrap_or(TurnStatus::Interrupted);
        let recovery = inbox::recover(
            mode,
            last.as_ref()
                .map(|t| (status(t), seen.unwrap_or(Seen::Gone))),
        );
        let ended = match (recovery, last) {
            (Recovery::Start | Recovery::NextAttempt, _) | (_, None) => {
                let Some((turn, ended)) = self.run(rec, &item, mode).await else {
                    return None; // cancelled meanwhile, or not recorded (logged)
                };
                (turn, ended)
            }
            (Recovery::Adopt, Some(turn)) => {
                self.inner.events.record_about(
                    "turn.adopted",
                    &rec.name,
                    serde_json::json!({ "turn": turn.id, "item": item.id }),
                );
                let dir = self.turn_dir(rec, turn.id);
                let far = self.far_turn(rec, turn.id).and_then(Result::ok);
                let ended = self
                    .watch(rec, &dir, turn.started_ms, None, far.as_ref())
                    .await;
                (turn, ended)
            }
            (Recovery::Collect, Some(turn)) => {
                let code = match seen {
                    Some(Seen::Exited { code }) => code,
                    _ => None,
                };
                let ended = Ended {
                    status: inbox::status_of(Seen::Exited { code }, false),
                    exit_code: code,
                    error: None,
                };
                (turn, ended)
            }
            (Recovery::Interrupt | Recovery::Retype, Some(turn)) => {
                let ended = Ended {
                    status: TurnStatus::Interrupted,
                    exit_code: None,
                    error: Some("the daemon stopped during this turn and its process was gone when it started again".into()),
                };
                (turn, ended)
            }
        };
        self.finish(rec, &item, ended.0, ended.1).await
    }

    /// An item the agent cannot take any more fails, with one turn saying why.
    fn refuse(&self, rec: &AgentRecord, item: &ItemRecord, why: &str) -> Option<Duration> {
        let begun = self.inner.store.begin_turn(&NewTurn {
            item_id: item.id,
            trigger: &item.source,
            mode: "none",
            started_ms: now_ms(),
            commit_before: None,
        });
        match begun {
            Ok(Some(turn)) => {
                let end = TurnEnd {
                    status: TurnStatus::Failed.as_str(),
                    ended_ms: now_ms(),
                    exit_code: None,
                    error: Some(why),
                    output: "",
                    commit_after: None,
                    item_state: Some(ItemState::Failed.as_str()),
                };
                if let Err(e) = self.inner.store.end_turn(turn.id, &end) {
                    tracing::error!(agent = %rec.name, "cannot record a turn: {e}");
                    return Some(Duration::from_secs(1));
                }
                self.inner.events.record_about(
                    "inbox.failed",
                    &rec.name,
                    serde_json::json!({ "item": item.id, "error": why }),
                );
                None
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!(agent = %rec.name, "cannot record a turn: {e}");
                Some(Duration::from_secs(1))
            }
        }
    }

    /// Where a turn's keeper keeps its files.
    fn turn_dir(&self, rec: &AgentRecord, turn: i64) -> KeeperDir {
        KeeperDir(
            self.inner
                .agents
                .keeper_dir(rec)
                .path()
                .join("turns")
                .join(turn.to_string()),
        )
    }

    /// Turn `turn`'s keeper there, for an agent elsewhere (`None`: a local agent).
    fn far_turn(&self, rec: &AgentRecord, turn: i64) -> Option<Result<FarTurn, String>> {
        rec.remote
            .is_some()
            .then(|| FarTurn::of(&self.inner.agents, rec, turn))
    }

    /// What a turn's keeper files show (waiting for a keeper that was started a moment ago and
    /// has not said anything yet).
    async fn seen(&self, dir: &KeeperDir) -> Seen {
        loop {
            match look(dir) {
                Some(seen) => return seen,
                None => {
                    let young = std::fs::metadata(dir.spec())
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age < KEEPER_START);
                    if !young {
                        return Seen::Gone;
                    }
                    tokio::time::sleep(WATCH_EVERY).await;
                }
            }
        }
    }

    /// Records a new turn and carries it out; `None` when the item was cancelled meanwhile or
    /// the turn could not be recorded.
    async fn run(
        &self,
        rec: &AgentRecord,
        item: &ItemRecord,
        mode: Mode,
    ) -> Option<(TurnRecord, Ended)> {
        let before = branch_tip(&self.inner.agents, rec).await;
        let begun = self.inner.store.begin_turn(&NewTurn {
            item_id: item.id,
            trigger: &item.source,
            mode: mode_name(mode),
            started_ms: now_ms(),
            commit_before: before.as_deref(),
        });
        let turn = match begun {
            Ok(Some(turn)) => turn,
            Ok(None) => return None,
            Err(e) => {
                tracing::error!(agent = %rec.name, "cannot record a turn: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                return None;
            }
        };
        failpoints::hit("inbox.turn.recorded").await;
        if turn.attempt == 1 {
            self.inner.events.record_about(
                "inbox.delivering",
                &rec.name,
                serde_json::json!({ "item": item.id }),
            );
        }
        self.inner.events.record_about(
            "turn.started",
            &rec.name,
            serde_json::json!({ "turn": turn.id, "item": item.id, "attempt": turn.attempt, "mode": mode_name(mode) }),
        );
        let ended = match mode {
            Mode::Turn => self.run_command(rec, item, &turn).await,
            Mode::Type => self.type_message(rec, item).await,
        };
        Some((turn, ended))
    }

    /// Runs the turn command under a keeper of its own and watches it to its end.
    async fn run_command(&self, rec: &AgentRecord, item: &ItemRecord, turn: &TurnRecord) -> Ended {
        let dir = self.turn_dir(rec, turn.id);
        let failed = |error: String| Ended {
            status: TurnStatus::Failed,
            exit_code: None,
            error: Some(error),
        };
        let Some(command) = rec.turn.clone() else {
            return failed(format!("agent {} has no turn command", rec.name));
        };
        let message = dir.path().join("message");
        let prepared =
            std::fs::create_dir_all(dir.path()).and_then(|()| std::fs::write(&message, &item.text));
        if let Err(e) = prepared {
            return failed(format!("cannot write the message for the turn: {e}"));
        }
        let mut env = rec.env.clone();
        for (k, v) in [
            ("BERTH_AGENT", rec.name.clone()),
            ("BERTH_WORKSPACE", rec.workspace.clone()),
            ("BERTH_MESSAGE_FILE", message.display().to_string()),
            ("BERTH_MESSAGE_ID", item.id.to_string()),
            ("BERTH_MESSAGE_SOURCE", item.source.clone()),
            ("BERTH_ATTEMPT", turn.attempt.to_string()),
            ("BERTH_TURN", turn.id.to_string()),
        ] {
            env.insert(k.to_string(), v);
        }
        let spec = KeeperSpec {
            name: format!("{}-turn-{}", rec.name, turn.id),
            command,
            cwd: PathBuf::from(&rec.workspace),
            env,
            stop_signal: rec.stop_signal.clone(),
            stop_grace_ms: rec.stop_grace_ms,
            log_max_bytes: 10 * 1024 * 1024,
            log_keep: 1,
            terminal: None,
            stdin: Some(message),
        };
        match self.far_turn(rec, turn.id) {
            Some(Ok(far)) => {
                if let Err(e) = far.start(spec, item.text.clone().into_bytes()).await {
                    return failed(e);
                }
                failpoints::hit("inbox.turn.started").await;
                return self
                    .watch(rec, &dir, turn.started_ms, None, Some(&far))
                    .await;
            }
            Some(Err(e)) => return failed(e),
            None => {}
        }
        let written = serde_json::to_vec_pretty(&spec)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                berth_control::files::write_atomically(&dir.spec(), &bytes)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            return failed(format!("cannot write the turn's keeper spec: {e}"));
        }
        let exited = match spawn_keeper(&dir) {
            Ok(rx) => rx,
            Err(e) => return failed(format!("cannot start the turn's keeper: {e}")),
        };
        failpoints::hit("inbox.turn.started").await;
        self.watch(rec, &dir, turn.started_ms, Some(exited), None)
            .await
    }

    /// Follows a turn's keeper until the turn ends, stopping it when the timeout passes.
    /// `exited` (for a keeper this run started) says when the keeper process ended; `far`: the
    /// turn runs there, and is looked at and stopped over the agent's link.
    async fn watch(
        &self,
        rec: &AgentRecord,
        dir: &KeeperDir,
        started_ms: i64,
        exited: Option<std::sync::mpsc::Receiver<std::process::ExitStatus>>,
        far: Option<&FarTurn>,
    ) -> Ended {
        let timeout = rec
            .turn_timeout_ms
            .map_or(inbox::DEFAULT_TURN_TIMEOUT, Duration::from_millis);
        let deadline =
            started_ms.saturating_add(i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX));
        let mut timed_out = false;
        loop {
            let here = match far {
                Some(far) => Err(far.seen().await),
                None => Ok(look(dir)),
            };
            let seen = match here {
                Err(there) => there,
                Ok(Some(Seen::Alive)) => None,
                Ok(Some(seen)) => Some(seen),
                Ok(None) => {
                    let gone = match &exited {
                        Some(rx) => rx.try_recv().is_ok(),
                        None => matches!(self.seen(dir).await, Seen::Gone),
                    };
                    if gone && read_state(dir).is_none() {
                        let said = std::fs::read_to_string(dir.path().join("keeper.err"))
                            .unwrap_or_default();
                        return Ended {
                            status: TurnStatus::Failed,
                            exit_code: None,
                            error: Some(format!(
                                "the turn could not start: {}",
                                said.trim().trim_start_matches("error: ")
                            )),
                        };
                    }
                    None
                }
            };
            if let Some(seen) = seen {
                let code = match seen {
                    Seen::Exited { code } => code,
                    _ => None,
                };
                let status = inbox::status_of(seen, timed_out);
                let error = match status {
                    TurnStatus::TimedOut => Some(format!(
                        "stopped after the turn timeout ({})",
                        berth_core::duration::show(timeout)
                    )),
                    TurnStatus::Interrupted => Some("the turn's keeper vanished".to_string()),
                    _ => None,
                };
                return Ended {
                    status,
                    exit_code: code,
                    error,
                };
            }
            if !timed_out && now_ms() >= deadline {
                timed_out = true;
                self.inner.events.record_about(
                    "turn.timed_out",
                    &rec.name,
                    serde_json::json!({ "timeout_ms": timeout.as_millis() as u64 }),
                );
                if let Some(far) = far {
                    if let Err(e) = far.stop().await {
                        tracing::warn!(agent = %rec.name, "stopping a turn that timed out: {e}");
                    }
                } else {
                    let socket = dir.socket();
                    let asked = tokio::task::spawn_blocking(move || {
                        control::request(
                            &socket,
                            &Request::Stop { grace_ms: None },
                            Duration::from_secs(60),
                        )
                    })
                    .await;
                    if let Ok(Err(e)) = asked {
                        tracing::warn!(agent = %rec.name, "stopping a turn that timed out: {e}");
                    }
                }
            }
            let closely = now_ms().saturating_sub(started_ms) < WATCH_CLOSELY;
            let wait = match far {
                // Each look there is a round trip over the link.
                Some(_) => WATCH_FAR,
                None if closely => WATCH_FIRST,
                None => WATCH_EVERY,
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Types the message into the agent's terminal once its screen has been quiet for
    /// [`inbox::SETTLE`], followed by Return.
    async fn type_message(&self, rec: &AgentRecord, item: &ItemRecord) -> Ended {
        let failed = |status: TurnStatus, error: String| Ended {
            status,
            exit_code: None,
            error: Some(error),
        };
        let agents = &self.inner.agents;
        let timeout = rec
            .turn_timeout_ms
            .map_or(inbox::DEFAULT_TURN_TIMEOUT, Duration::from_millis);
        let began = now_ms();
        let mut last = None;
        let mut changed = began;
        loop {
            let screen = match terminals::screen(agents, rec, 0).await {
                Ok(s) => s,
                Err(e) => return failed(TurnStatus::Failed, e.to_string()),
            };
            let now = now_ms();
            let picture = (screen.rows, screen.cursor);
            if last.as_ref() != Some(&picture) {
                last = Some(picture);
                changed = now;
            } else if inbox::settled(changed, now, inbox::SETTLE) {
                break;
            }
            if now.saturating_sub(began) >= i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX) {
                return failed(
                    TurnStatus::TimedOut,
                    format!(
                        "its screen did not stay quiet for {} within the turn timeout ({})",
                        berth_core::duration::show(inbox::SETTLE),
                        berth_core::duration::show(timeout)
                    ),
                );
            }
            tokio::time::sleep(SCREEN_EVERY).await;
        }
        failpoints::hit("inbox.type.settled").await;
        let bytes = match berth_core::terminal::keystrokes(&item.text, true) {
            Ok(b) => b,
            Err(e) => return failed(TurnStatus::Failed, e.to_string()),
        };
        let typed = terminals::type_in(agents, rec, bytes).await;
        failpoints::hit("inbox.type.typed").await;
        match typed {
            Ok(_) => Ended {
                status: TurnStatus::Done,
                exit_code: None,
                error: None,
            },
            Err(e) => failed(TurnStatus::Failed, e.to_string()),
        }
    }

    /// Records how a turn ended, and what follows for its item; returns the wait before the
    /// next attempt, if one follows.
    async fn finish(
        &self,
        rec: &AgentRecord,
        item: &ItemRecord,
        turn: TurnRecord,
        ended: Ended,
    ) -> Option<Duration> {
        failpoints::hit("inbox.turn.ended").await;
        let dir = self.turn_dir(rec, turn.id);
        if let Some(Ok(far)) = self.far_turn(rec, turn.id)
            && let Err(e) = far.end(&dir.output()).await
        {
            tracing::warn!(agent = %rec.name, "cannot bring turn {}'s output here: {e}", turn.id);
        }
        let output = output_slice(&dir.output());
        let after_tip = branch_tip(&self.inner.agents, rec).await;
        let next = inbox::after_turn(ended.status, turn.attempt, &self.inner.policy);
        let item_state = match next {
            AfterTurn::Done => Some(ItemState::Done),
            AfterTurn::Failed => Some(ItemState::Failed),
            AfterTurn::Retry(_) | AfterTurn::Wait => None,
        };
        let ended_ms = now_ms();
        let end = TurnEnd {
            status: ended.status.as_str(),
            ended_ms,
            exit_code: ended.exit_code,
            error: ended.error.as_deref(),
            output: &output,
            commit_after: after_tip.as_deref(),
            item_state: item_state.map(ItemState::as_str),
        };
        if let Err(e) = self.inner.store.end_turn(turn.id, &end) {
            tracing::error!(agent = %rec.name, "cannot record the end of turn {}: {e}", turn.id);
            return Some(Duration::from_secs(1));
        }
        let _ = std::fs::remove_dir_all(dir.path());
        // An agent elsewhere's commits come here only through a mirror: one per turn that
        // made any.
        if rec.remote.is_some() && after_tip.is_some() && after_tip != turn.commit_before {
            self.inner.agents.mirror_remote_later(rec);
        }
        self.inner.events.record_about(
            "turn.ended",
            &rec.name,
            serde_json::json!({
                "turn": turn.id,
                "item": item.id,
                "attempt": turn.attempt,
                "status": ended.status.as_str(),
                "exit_code": ended.exit_code,
                "duration_ms": ended_ms.saturating_sub(turn.started_ms),
            }),
        );
        match next {
            AfterTurn::Done | AfterTurn::Failed => {
                let kind = if next == AfterTurn::Done {
                    "inbox.done"
                } else {
                    "inbox.failed"
                };
                self.inner.events.record_about(
                    kind,
                    &rec.name,
                    serde_json::json!({ "item": item.id, "attempts": turn.attempt }),
                );
                None
            }
            AfterTurn::Retry(wait) => Some(wait),
            AfterTurn::Wait => None,
        }
    }
}

/// What a turn's keeper files show; `None` before the keeper wrote any.
fn look(dir: &KeeperDir) -> Option<Seen> {
    Some(match keepers::look(dir)? {
        Look::Alive(_) => Seen::Alive,
        Look::Done(st) => Seen::Exited {
            code: st.exit.and_then(|e| e.code),
        },
        Look::Vanished => Seen::Gone,
    })
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Turn => "turn",
        Mode::Type => "type",
    }
}

/// The commit the agent's branch points at in its workspace.
fn branch_tip_now(rec: &AgentRecord) -> Option<String> {
    let refname = format!("refs/heads/{}", berth_git::workspace::branch(&rec.name));
    berth_git::refs::resolve(&berth_git::Git::new(&rec.workspace), &refname)
        .ok()
        .flatten()
}

async fn branch_tip(agents: &Supervisor, rec: &AgentRecord) -> Option<String> {
    if rec.remote.is_some() {
        return far_turns::tip(agents, rec).await;
    }
    let rec = rec.clone();
    tokio::task::spawn_blocking(move || branch_tip_now(&rec))
        .await
        .ok()
        .flatten()
}

/// The end of a turn's output log, at most [`inbox::OUTPUT_SLICE_BYTES`], each line's text as
/// a terminal shows it.
fn output_slice(log: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(log) else {
        return String::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    // Records carry a prefix the slice leaves out; read a little more than the bound.
    let start = len.saturating_sub(2 * inbox::OUTPUT_SLICE_BYTES as u64);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // cut in the middle
    }
    let mut shown: Vec<String> = lines
        .iter()
        .filter(|l| !berth_core::output_line::split(l).0.ends_with("keeper| "))
        .map(|l| berth_core::output_line::shown_text(l))
        .collect();
    let mut total: usize = shown.iter().map(|l| l.len() + 1).sum();
    while total > inbox::OUTPUT_SLICE_BYTES && !shown.is_empty() {
        total -= shown.remove(0).len() + 1;
    }
    shown.join("\n")
}

/// The event that tells of a new item, stored with it.
pub(crate) fn queued_event(item: &ItemRecord) -> Tell {
    let priority = Priority::from_rank(item.priority);
    Tell {
        kind: "inbox.queued",
        subject: item.agent.clone(),
        data: serde_json::json!({ "item": item.id, "priority": priority.as_str(), "source": item.source }),
    }
}
