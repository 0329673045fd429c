//! One pairing's controller: its thread, its state, the journal, and everything that reaches it
//! (requests, sync reports, git changes). See the module docs of `pairing`.

use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_core::pairing::{
    Action, Activity, Blocker, Cause, Failure, Input, Intent, Notice, Outcome, Refusal,
    RollbackCause, Side, State, agent_branch, next, recover,
};
use berth_git::Git;
use berth_git::workspace;
use berth_proto::{PairConflict, PairFlushed, PairLatency, PairNotice, PairStatus, PairStopped};
use berth_store::{AgentRecord, PairingRecord, Store};
use tokio::sync::oneshot;

use super::gitwatch::GitWatch;
use super::link::{Link, LinkEvent, Roots};
use super::observe::{self, Repos};
use super::{Handle, PairError};
use crate::state::Shared;

/// A request to the controller.
#[derive(Debug)]
pub enum Request {
    Start {
        agent: String,
        no_stash: bool,
        reply: oneshot::Sender<Result<PairStatus, PairError>>,
    },
    Stop {
        reply: oneshot::Sender<Result<PairStopped, PairError>>,
    },
    Flush {
        reply: oneshot::Sender<Result<PairFlushed, PairError>>,
    },
    Park {
        reply: oneshot::Sender<()>,
    },
}

/// What reaches the controller.
#[derive(Debug)]
pub enum Msg {
    Request(Request),
    Link(LinkEvent),
    /// Something changed in a git dir of either side.
    Git,
}

/// How soon after a change in a git dir both sides are looked at.
const GIT_SETTLE: Duration = Duration::from_millis(15);
/// How often both sides are looked at anyway: while paused (a workspace coming back shows in
/// no git dir), and while active as a safety net.
const CHECK_PAUSED: Duration = Duration::from_secs(2);
const CHECK_ACTIVE: Duration = Duration::from_secs(10);
/// How many recent round times the latency figures are taken from.
const LATENCY_SAMPLES: usize = 200;

pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Causes that git shows (and [`observe::notices`] re-checks); while one is held, the link
/// applies nothing. The others come from the link itself, which keeps retrying.
fn held_by_git(c: Cause) -> bool {
    !matches!(
        c,
        Cause::Root(_) | Cause::Watch(_) | Cause::Write(_) | Cause::Unexpected
    )
}

/// The status of an open pairing found at daemon start, until its controller has looked.
fn recovering_status(rec: &PairingRecord) -> PairStatus {
    let state = serde_json::from_str::<State>(&rec.state).unwrap_or(State::starting(false));
    PairStatus {
        state: state.name().into(),
        describe: format!("{} (recovering)", state.describe()),
        step: state.step().map(|s| s.qualified_name()),
        pairing: Some(rec.id.clone()),
        agent: Some(rec.agent.clone()),
        branch: Some(agent_branch(&rec.agent)),
        snapshot: rec.snapshot.clone(),
        ..PairStatus::off(&rec.project_root)
    }
}

/// Running figures for `pair status`.
#[derive(Debug, Default)]
pub(super) struct Figures {
    pub to_user: u64,
    pub to_agent: u64,
    pub commits_to_user: u64,
    pub commits_to_agent: u64,
    pub last_sync_ms: Option<i64>,
    pub rounds: VecDeque<f64>,
}

impl Figures {
    fn latency(&self) -> Option<PairLatency> {
        if self.rounds.is_empty() {
            return None;
        }
        let mut v: Vec<f64> = self.rounds.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Some(PairLatency {
            samples: v.len() as u64,
            p50_ms: at(0.5),
            p99_ms: at(0.99),
        })
    }
}

/// One pairing's controller.
pub(super) struct Controller {
    pub shared: Arc<Shared>,
    pub store: Store,
    /// The checkout's top level.
    pub root: String,
    pub rec: PairingRecord,
    pub state: State,
    /// The agent's definition (`None`: not defined in this project).
    pub agent: Option<AgentRecord>,
    pub repos: Repos,
    pub link: Option<Link>,
    gitwatch: Option<GitWatch>,
    /// Whether the link is held.
    held: bool,
    pub no_stash: bool,
    /// The agent a switch goes to.
    pub switch_to: Option<String>,
    pub figures: Figures,
    pub conflicts: Vec<PairConflict>,
    status: Arc<Mutex<PairStatus>>,
    pub tx: Sender<Msg>,
    /// What the last request's transitions ended with.
    refused: Option<Refusal>,
    finished: Option<Outcome>,
    git_due: Option<Instant>,
    next_check: Instant,
    /// Set by the front door when it passes a start or stop on; cleared once answered.
    in_flight: InFlight,
}

/// A controller for a checkout that is not paired yet; its first request is a start.
pub fn spawn_new(shared: Arc<Shared>, root: String) -> Handle {
    spawn(shared, root, None)
}

/// A controller for an open pairing found in the store at daemon start.
pub fn spawn_recovered(shared: Arc<Shared>, rec: PairingRecord) -> Handle {
    let root = rec.project_root.clone();
    spawn(shared, root, Some(rec))
}

/// The transition a start or stop the controller has accepted is carrying out (until it
/// answers): `starting with fixer`, `stopping with fixer`.
type InFlight = Arc<Mutex<Option<String>>>;

fn spawn(shared: Arc<Shared>, root: String, rec: Option<PairingRecord>) -> Handle {
    let (tx, rx) = mpsc::channel();
    let (front_tx, front_rx) = mpsc::channel();
    // A recovered pairing shows what it was doing from the first moment, not `off`.
    let first = match &rec {
        Some(rec) => recovering_status(rec),
        None => PairStatus::off(&root),
    };
    let status = Arc::new(Mutex::new(first));
    let in_flight: InFlight = Arc::default();
    let handle = Handle {
        tx: front_tx,
        status: status.clone(),
    };
    let front = {
        let (tx, status, in_flight) = (tx.clone(), status.clone(), in_flight.clone());
        std::thread::Builder::new()
            .name(format!("pairing front {root}"))
            .spawn(move || run_front(&front_rx, &tx, &status, &in_flight))
    };
    if let Err(e) = front {
        tracing::error!("cannot start a pairing controller: {e}");
        return handle;
    }
    let name = format!("pairing {root}");
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        let Some(store) = shared.store.get().cloned() else {
            return;
        };
        let mut c = Controller::new(shared.clone(), store, root.clone(), status.clone(), tx);
        c.in_flight = in_flight;
        if let Some(rec) = rec {
            c.recover(rec);
        }
        c.run(&rx);
        shared.pairings.remove(&root, &status);
        // Answer whatever arrived meanwhile: the pairing is over.
        while let Ok(Msg::Request(r)) = rx.try_recv() {
            c.answer_ended(r);
        }
    });
    if let Err(e) = spawned {
        tracing::error!("cannot start a pairing controller: {e}");
    }
    handle
}

/// The controller's front door: the controller's thread is busy for as long as a start or a
/// stop runs, so a start that arrives meanwhile is answered here, at once, with
/// `pairing_busy` naming the transition in progress (rather than queued and carried out after
/// it, e.g. as a switch nobody asked for any more). Everything else goes through in order.
fn run_front(
    rx: &Receiver<Msg>,
    tx: &Sender<Msg>,
    status: &Mutex<PairStatus>,
    in_flight: &InFlight,
) {
    while let Ok(msg) = rx.recv() {
        let msg = match msg {
            Msg::Request(Request::Start {
                agent,
                no_stash,
                reply,
            }) => {
                if let Some(transition) = busy_with(status, in_flight) {
                    let blocker = Blocker::PairingBusy { transition };
                    let _ = reply.send(Err(PairError::Blocked(Blocker::report([&blocker]))));
                    continue;
                }
                set_in_flight(in_flight, Some(format!("starting with {agent}")));
                Msg::Request(Request::Start {
                    agent,
                    no_stash,
                    reply,
                })
            }
            Msg::Request(Request::Stop { reply }) => {
                let agent = lock(status).agent.clone().unwrap_or_default();
                set_in_flight(in_flight, Some(format!("stopping with {agent}")));
                Msg::Request(Request::Stop { reply })
            }
            other => other,
        };
        if tx.send(msg).is_err() {
            return; // the controller ended; the request's reply is dropped (asked again)
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn set_in_flight(in_flight: &InFlight, what: Option<String>) {
    *lock(in_flight) = what;
}

/// The transition in progress, if one is: what the status shows (a start or stop step, a
/// rollback, also during recovery), else a start or stop accepted but not answered yet.
fn busy_with(status: &Mutex<PairStatus>, in_flight: &InFlight) -> Option<String> {
    {
        let s = lock(status);
        if matches!(s.state.as_str(), "starting" | "stopping" | "rolling_back") {
            let agent = s.agent.clone().unwrap_or_default();
            return Some(format!("{} with {agent}", s.describe));
        }
    }
    lock(in_flight).clone()
}

impl Controller {
    fn new(
        shared: Arc<Shared>,
        store: Store,
        root: String,
        status: Arc<Mutex<PairStatus>>,
        tx: Sender<Msg>,
    ) -> Controller {
        let rec = PairingRecord {
            id: String::new(),
            project_root: root.clone(),
            agent: String::new(),
            state: String::new(),
            original_branch: None,
            original_head: None,
            mirror_before: None,
            snapshot: None,
            created_ms: 0,
            updated_ms: 0,
            ended_ms: None,
        };
        Controller {
            repos: Repos {
                user: Git::new(&root),
                agent: Git::new("/nonexistent"),
                workspace: PathBuf::new(),
                name: String::new(),
            },
            shared,
            store,
            root,
            rec,
            state: State::Off,
            agent: None,
            link: None,
            gitwatch: None,
            held: false,
            no_stash: false,
            switch_to: None,
            figures: Figures::default(),
            conflicts: vec![],
            status,
            tx,
            refused: None,
            finished: None,
            git_due: None,
            next_check: Instant::now() + CHECK_ACTIVE,
            in_flight: Arc::default(),
        }
    }

    /// Points the controller at agent `name` (its record, its workspace).
    pub fn set_agent(&mut self, name: &str) {
        let pid = self.store.project_id(&self.root, now_ms()).ok();
        let rec = pid
            .and_then(|pid| self.store.agent(pid, name).ok().flatten())
            .filter(|a| a.kind == "agent");
        let workspace = rec
            .as_ref()
            .map(|a| PathBuf::from(&a.workspace))
            .unwrap_or_default();
        self.repos = Repos {
            user: Git::new(&self.root),
            agent: Git::new(&workspace),
            workspace,
            name: name.to_string(),
        };
        self.agent = rec;
    }

    /// Both roots and their git dirs (fails when a side is not a repository now).
    pub fn roots(&self) -> Result<Roots, String> {
        let dir = |g: &Git| berth_git::pairing::git_dir(g).map_err(|e| e.to_string());
        Ok(Roots {
            user: PathBuf::from(&self.root),
            user_git_dir: dir(&self.repos.user)?,
            agent: self.repos.workspace.clone(),
            agent_git_dir: dir(&self.repos.agent)?,
            branch_ref: self.repos.branch_ref(),
        })
    }

    /// Serves until the pairing is over (or parked). A fresh controller waits for its first
    /// request; a recovered one that ended up `off` (a start rolled back) has nothing to do.
    fn run(&mut self, rx: &Receiver<Msg>) {
        if matches!(self.state, State::Off) && !self.rec.id.is_empty() {
            return;
        }
        loop {
            let now = Instant::now();
            let due = self.git_due.unwrap_or(self.next_check).min(self.next_check);
            match rx.recv_timeout(due.saturating_duration_since(now)) {
                Ok(Msg::Request(Request::Park { reply })) => {
                    self.park();
                    let _ = reply.send(());
                    return;
                }
                Ok(Msg::Request(r)) => {
                    self.on_request(r);
                    if matches!(self.state, State::Off) {
                        return; // stopped, rolled back, or refused before it began
                    }
                }
                Ok(Msg::Link(ev)) => self.on_link(ev),
                Ok(Msg::Git) => {
                    self.git_due.get_or_insert(Instant::now() + GIT_SETTLE);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            if self.git_due.is_some_and(|d| now >= d) || now >= self.next_check {
                self.git_due = None;
                self.check_git();
            }
        }
    }

    // -- the state machine ----------------------------------------------------------------

    /// Feeds `input` and everything it leads to (step reports) through the state machine,
    /// journaling each new state before acting on it.
    pub fn feed(&mut self, input: Input) {
        let mut queue = VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            let t = match next(&self.state, &input) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(pairing = self.rec.id, "{e}");
                    continue;
                }
            };
            let seq = self.enter(t.state);
            for action in t.actions {
                queue.extend(self.act(action));
            }
            if let Some(seq) = seq
                && let Err(e) = self.store.mark_intent_done(seq, now_ms())
            {
                tracing::error!("cannot mark a pairing intent done: {e}");
            }
        }
        self.sync_hold();
        self.publish();
    }

    /// Enters `state`: journaled (unless only the activity changed) and recorded.
    fn enter(&mut self, state: State) -> Option<u64> {
        let only_activity = matches!(
            (&self.state, &state),
            (State::Active { .. }, State::Active { .. })
        );
        self.state = state;
        if only_activity || self.rec.id.is_empty() {
            self.publish();
            return None;
        }
        let json = serde_json::to_string(&self.state).unwrap_or_default();
        self.rec.state = json.clone();
        self.rec.updated_ms = now_ms();
        let intent = intent_json(
            &Intent {
                state: self.state.clone(),
            },
            self.switch_to.as_deref(),
        );
        let seq = match self.store.append_intent(&self.rec.id, &intent, now_ms()) {
            Ok(seq) => Some(seq),
            Err(e) => {
                tracing::error!("cannot journal a pairing intent: {e}");
                None
            }
        };
        if let Err(e) = self.store.set_pairing_state(&self.rec.id, &json, now_ms()) {
            tracing::error!("cannot record a pairing state: {e}");
        }
        self.event(
            "pair.state",
            serde_json::json!({
                "state": self.state.name(),
                "describe": self.state.describe(),
                "step": self.state.step().map(|s| s.qualified_name()),
                "notices": self.notices().iter().map(|n| n.code()).collect::<Vec<_>>(),
            }),
        );
        self.publish();
        seq
    }

    /// Carries out one action; what it found out (a step's report, re-validated notices)
    /// comes back as the next inputs.
    fn act(&mut self, action: Action) -> Vec<Input> {
        match action {
            Action::Run { step } => {
                self.publish();
                let report = match self.run_step(step) {
                    Ok(()) => Input::StepDone(step),
                    Err(failure) => Input::StepFailed(step, failure),
                };
                // Steps scan whole trees: what they freed goes back.
                crate::memory::give_back();
                return vec![report];
            }
            Action::PauseSync => {} // `sync_hold` decides from the notices
            Action::ResumeSync | Action::FullReconcile => match &self.link {
                Some(link) => {
                    link.release();
                    self.held = false;
                }
                None => self.start_link(),
            },
            Action::Revalidate => {
                self.start_link();
                return self.revalidate();
            }
            Action::StopWatching => self.stop_link(),
            Action::Handover => self.hand_over(),
            Action::Refuse { refusal } => self.refused = Some(refusal),
            Action::Finish { outcome } => self.finish(outcome),
        }
        vec![]
    }

    /// Holds or releases the link so that it applies nothing while a git-shown cause is held.
    fn sync_hold(&mut self) {
        let want = match &self.state {
            State::Paused { notices } => notices.iter().any(|n| held_by_git(n.cause())),
            _ => false,
        };
        if let Some(link) = &self.link
            && want != self.held
        {
            if want {
                link.hold();
            } else {
                link.release();
            }
            self.held = want;
        }
    }

    pub fn notices(&self) -> Vec<Notice> {
        match &self.state {
            State::Paused { notices } => notices.iter().cloned().collect(),
            _ => vec![],
        }
    }

    /// Looks at both sides' git state: raises what is found, clears what is gone; while
    /// active, carries commits.
    fn check_git(&mut self) {
        self.next_check = Instant::now()
            + match self.state {
                State::Paused { .. } => CHECK_PAUSED,
                _ => CHECK_ACTIVE,
            };
        if !matches!(self.state, State::Active { .. } | State::Paused { .. }) {
            return;
        }
        let found = {
            let _git = self.shared.git_lock.blocking_lock();
            observe::notices(&self.repos)
        };
        let found = match found {
            Ok(found) => found,
            Err(e) => {
                self.feed(Input::Raise(Notice::UnexpectedError {
                    message: format!("cannot read git's state: {e}"),
                }));
                return;
            }
        };
        self.apply_found(&found, false);
        if matches!(self.state, State::Active { .. }) {
            self.carry_commits();
        }
        self.restart_link();
    }

    /// A link that ended by itself (it could not watch a tree that was moved away for a
    /// while) is started again once both sides are repositories again; its first full round
    /// clears the notice its end raised. Without this the pairing stayed paused for good.
    fn restart_link(&mut self) {
        if self.link.is_some()
            || !matches!(self.state, State::Active { .. } | State::Paused { .. })
            || !self.repos.workspace_exists()
        {
            return;
        }
        tracing::info!(pairing = self.rec.id, "starting syncing again");
        self.start_link();
        self.sync_hold();
    }

    /// Raises every notice in `found` that is not held yet; clears every git-shown cause that
    /// is held but not found (and, when `revalidating`, every other cause too).
    fn apply_found(&mut self, found: &[Notice], revalidating: bool) {
        let held = self.notices();
        for n in found {
            if !held.contains(n) {
                self.feed(Input::Raise(n.clone()));
            }
        }
        let found_causes: BTreeSet<Cause> = found.iter().map(Notice::cause).collect();
        let gone: BTreeSet<Cause> = held
            .iter()
            .map(Notice::cause)
            .filter(|c| !found_causes.contains(c) && (revalidating || held_by_git(*c)))
            .filter(|c| *c != Cause::Revalidating)
            .collect();
        for c in gone {
            self.feed(Input::Clear(c));
        }
    }

    /// After a restart: everything is checked again; the inputs raise what is found and clear
    /// every cause that is gone, `revalidating` last.
    fn revalidate(&mut self) -> Vec<Input> {
        let found = {
            let _git = self.shared.git_lock.blocking_lock();
            observe::notices(&self.repos)
        };
        let found = match found {
            Ok(found) => found,
            Err(e) => vec![Notice::UnexpectedError {
                message: format!("cannot read git's state: {e}"),
            }],
        };
        let held = self.notices();
        let found_causes: BTreeSet<Cause> = found.iter().map(Notice::cause).collect();
        let mut inputs: Vec<Input> = found
            .iter()
            .filter(|n| !held.contains(n))
            .map(|n| Input::Raise(n.clone()))
            .collect();
        inputs.extend(
            held.iter()
                .map(Notice::cause)
                .filter(|c| !found_causes.contains(c) && *c != Cause::Revalidating)
                .map(Input::Clear),
        );
        inputs.push(Input::Clear(Cause::Revalidating));
        inputs
    }

    fn carry_commits(&mut self) {
        let carried = {
            let _git = self.shared.git_lock.blocking_lock();
            observe::carry_commits(&self.repos)
        };
        match carried {
            Ok(c) if c.to_user > 0 || c.to_agent > 0 => {
                self.figures.commits_to_user += c.to_user;
                self.figures.commits_to_agent += c.to_agent;
                self.event(
                    "pair.commits",
                    serde_json::json!({ "to_user": c.to_user, "to_agent": c.to_agent }),
                );
                self.publish();
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(pairing = self.rec.id, "carrying commits: {e}");
                self.feed(Input::Raise(Notice::UnexpectedError {
                    message: format!("cannot carry commits between the two branches: {e}"),
                }));
            }
        }
    }

    // -- the link and the git watch -------------------------------------------------------

    pub fn start_link(&mut self) {
        if self.link.is_some() {
            return;
        }
        let roots = match self.roots() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(pairing = self.rec.id, "cannot start syncing yet: {e}");
                return;
            }
        };
        let tx = self.tx.clone();
        match Link::start(
            self.store.clone(),
            self.rec.id.clone(),
            roots.clone(),
            Arc::new(move |ev| {
                let _ = tx.send(Msg::Link(ev));
            }),
        ) {
            Ok(link) => {
                self.link = Some(link);
                self.held = false;
            }
            Err(e) => tracing::error!(pairing = self.rec.id, "cannot start syncing: {e}"),
        }
        if self.gitwatch.is_none() {
            let tx = self.tx.clone();
            match GitWatch::start(&roots, move || {
                let _ = tx.send(Msg::Git);
            }) {
                Ok(w) => self.gitwatch = Some(w),
                Err(e) => tracing::warn!(pairing = self.rec.id, "cannot watch git: {e}"),
            }
        }
    }

    pub fn stop_link(&mut self) {
        if let Some(link) = self.link.take() {
            link.stop();
            crate::memory::give_back();
        }
        self.gitwatch = None;
        self.held = false;
    }

    /// A round went through: watching works and no error is left.
    fn clear_link_troubles(&mut self) {
        for c in [
            Cause::Watch(Side::User),
            Cause::Watch(Side::Agent),
            Cause::Unexpected,
        ] {
            if self.notices().iter().any(|n| n.cause() == c) {
                self.feed(Input::Clear(c));
            }
        }
    }

    fn on_link(&mut self, ev: LinkEvent) {
        match ev {
            LinkEvent::Ready => {
                // A first round that went through: what stopped the last link is gone.
                self.clear_link_troubles();
                self.publish();
            }
            LinkEvent::Synced {
                to_user,
                to_agent,
                conflicts: _,
                took,
                warnings,
            } => {
                self.figures.to_user += to_user;
                self.figures.to_agent += to_agent;
                self.figures.last_sync_ms = Some(now_ms());
                if to_user + to_agent > 0 {
                    self.figures.rounds.push_back(took.as_secs_f64() * 1000.0);
                    while self.figures.rounds.len() > LATENCY_SAMPLES {
                        self.figures.rounds.pop_front();
                    }
                }
                for w in warnings {
                    self.event("pair.warning", serde_json::json!({ "warning": w }));
                }
                self.clear_link_troubles();
                self.feed(Input::Activity(Activity::Idle));
            }
            LinkEvent::Paused(notice) => self.feed(Input::Raise(notice)),
            LinkEvent::Resumed => {
                for side in [Side::User, Side::Agent] {
                    self.feed(Input::Clear(Cause::Write(side)));
                    self.feed(Input::Clear(Cause::Root(side)));
                }
            }
            LinkEvent::Failed(error) => {
                self.feed(Input::Raise(Notice::UnexpectedError { message: error }))
            }
            LinkEvent::Stalled(side) => self.feed(Input::Raise(Notice::WatchStalled { side })),
            LinkEvent::Held(why) => {
                // The gate shut before the controller saw why: look now. If git shows nothing
                // (a branch switched there and back), let the link go on.
                self.held = true;
                self.check_git();
                let git_cause = self.notices().iter().any(|n| held_by_git(n.cause()));
                if !git_cause && let Some(link) = &self.link {
                    tracing::info!(pairing = self.rec.id, "gate shut ({why}); nothing found");
                    link.release();
                    self.held = false;
                }
            }
            LinkEvent::Kept { refname, path } => {
                self.event(
                    "pair.conflict_kept",
                    serde_json::json!({ "ref": refname, "path": path }),
                );
                self.conflicts.push(PairConflict {
                    refname,
                    path,
                    time_ms: now_ms(),
                });
                self.publish();
            }
            LinkEvent::Ended(Err(e)) => {
                if let Some(link) = self.link.take() {
                    link.stop(); // joins the thread that just ended
                }
                self.held = false;
                self.feed(Input::Raise(Notice::UnexpectedError { message: e }));
                // Try again soon (see `restart_link`).
                self.next_check = self.next_check.min(Instant::now() + CHECK_PAUSED);
            }
            LinkEvent::Ended(Ok(())) => {}
        }
    }

    // -- requests ---------------------------------------------------------------------------

    fn on_request(&mut self, r: Request) {
        self.refused = None;
        self.finished = None;
        match r {
            Request::Start {
                agent,
                no_stash,
                reply,
            } => {
                let answer = self.on_start(&agent, no_stash);
                self.publish();
                set_in_flight(&self.in_flight, None);
                let _ = reply.send(answer);
            }
            Request::Stop { reply } => {
                let answer = self.on_stop();
                self.publish();
                set_in_flight(&self.in_flight, None);
                let _ = reply.send(answer);
            }
            Request::Flush { reply } => {
                let answer = self.on_flush();
                let _ = reply.send(answer);
            }
            Request::Park { reply } => {
                self.park();
                let _ = reply.send(());
            }
        }
    }

    fn on_start(&mut self, agent: &str, no_stash: bool) -> Result<PairStatus, PairError> {
        if matches!(self.state, State::Off) {
            self.no_stash = no_stash;
            self.set_agent(agent);
            self.open_record(agent)?;
            self.feed(Input::StartRequested);
        } else if self.repos.name == agent {
            self.feed(Input::StartRequested); // refused: already paired (or busy)
        } else {
            if matches!(self.state, State::Active { .. }) {
                // Read-only: the other agent's blockers, before anything changes.
                let other = self.facts_for(agent, no_stash)?;
                let blockers = berth_core::pairing::blockers(&other);
                let blockers: Vec<Blocker> = blockers
                    .into_iter()
                    .filter(|b| !matches!(b, Blocker::DirtyNoStash { .. }))
                    .collect();
                if !blockers.is_empty() {
                    return Err(PairError::Blocked(Blocker::report(&blockers)));
                }
            }
            self.switch_to = Some(agent.to_string());
            self.no_stash = no_stash;
            self.feed(Input::SwitchRequested);
        }
        if let Some(refusal) = self.refused.take() {
            // A refused switch goes nowhere (and must not be journaled as one later).
            if !matches!(self.state, State::Stopping { .. }) {
                self.switch_to = None;
            }
            return Err(PairError::Refused(refusal));
        }
        match self.finished.take() {
            Some(Outcome::RolledBack {
                cause:
                    RollbackCause::Failed {
                        failure: Failure::Blocked { blockers },
                        ..
                    },
            }) => Err(PairError::Blocked(Blocker::report(&blockers))),
            Some(outcome) => Err(PairError::Failed(outcome_message(&outcome, &self.rec))),
            None => Ok(self.status()),
        }
    }

    /// The facts of a start with `agent` (read-only).
    fn facts_for(
        &self,
        agent: &str,
        no_stash: bool,
    ) -> Result<berth_core::pairing::Facts, PairError> {
        let pid = self.store.project_id(&self.root, now_ms()).ok();
        let rec = pid
            .and_then(|pid| self.store.agent(pid, agent).ok().flatten())
            .filter(|a| a.kind == "agent");
        let repos = rec.as_ref().map(|a| Repos {
            user: Git::new(&self.root),
            agent: Git::new(&a.workspace),
            workspace: PathBuf::from(&a.workspace),
            name: agent.to_string(),
        });
        let _git = self.shared.git_lock.blocking_lock();
        observe::facts(&self.repos.user, agent, repos.as_ref(), no_stash, None)
            .map_err(|e| PairError::Failed(format!("cannot read git's state: {e}")))
    }

    /// Creates the pairing's record: what the checkout is on now, where the project's copy of
    /// the agent's branch is (so a rollback can put both back).
    fn open_record(&mut self, agent: &str) -> Result<(), PairError> {
        let fail = |e: String| PairError::Failed(format!("cannot start pairing: {e}"));
        let (head, mirror) = {
            let _git = self.shared.git_lock.blocking_lock();
            let head = berth_git::head::head(&self.repos.user).map_err(|e| fail(e.to_string()))?;
            let mirror = berth_git::refs::resolve(&self.repos.user, &workspace::branch_ref(agent))
                .map_err(|e| fail(e.to_string()))?;
            (head, mirror)
        };
        let now = now_ms();
        let starting = State::starting(false);
        self.rec = PairingRecord {
            id: crate::ids::new_id(now),
            project_root: self.root.clone(),
            agent: agent.to_string(),
            state: serde_json::to_string(&starting).unwrap_or_default(),
            original_branch: head.branch().map(str::to_string),
            original_head: head.oid().map(str::to_string),
            mirror_before: mirror,
            snapshot: None,
            created_ms: now,
            updated_ms: now,
            ended_ms: None,
        };
        match self.store.create_pairing(&self.rec) {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.rec.id.clear();
                Err(PairError::Refused(Refusal::Busy))
            }
            Err(e) => {
                self.rec.id.clear();
                Err(fail(e.to_string()))
            }
        }
    }

    /// A switch: the old pairing ends, a new one with the other agent takes over its snapshot
    /// and original branch.
    fn hand_over(&mut self) {
        let Some(agent) = self.switch_to.take() else {
            return;
        };
        self.stop_link();
        let old = self.rec.clone();
        let mirror = {
            let _git = self.shared.git_lock.blocking_lock();
            berth_git::refs::resolve(&self.repos.user, &workspace::branch_ref(&agent))
                .ok()
                .flatten()
        };
        let now = now_ms();
        let new = PairingRecord {
            id: crate::ids::new_id(now),
            agent: agent.clone(),
            state: serde_json::to_string(&self.state).unwrap_or_default(),
            mirror_before: mirror,
            created_ms: now,
            updated_ms: now,
            ended_ms: None,
            ..old.clone()
        };
        let off = serde_json::to_string(&State::Off).unwrap_or_default();
        match self.store.hand_over_pairing(&old.id, &off, &new) {
            Ok(true) => {}
            Ok(false) => tracing::error!("cannot hand pairing {} over: it is not open", old.id),
            Err(e) => tracing::error!("cannot hand pairing {} over: {e}", old.id),
        }
        self.event(
            "pair.switched",
            serde_json::json!({ "from": old.agent, "to": agent, "new_pairing": new.id }),
        );
        self.rec = new;
        self.set_agent(&agent);
        self.figures = Figures::default();
        self.conflicts.clear();
    }

    fn on_stop(&mut self) -> Result<PairStopped, PairError> {
        if matches!(self.state, State::Off) {
            return Err(PairError::NotPaired);
        }
        let rec = self.rec.clone();
        self.feed(Input::StopRequested);
        if let Some(refusal) = self.refused.take() {
            return Err(PairError::Refused(refusal));
        }
        match self.finished.take() {
            Some(outcome) => Ok(PairStopped {
                pairing: rec.id.clone(),
                agent: rec.agent.clone(),
                outcome: outcome_name(&outcome).into(),
                restored: outcome.restored(),
                snapshot: (!outcome.restored())
                    .then(|| self.rec.snapshot.clone())
                    .flatten(),
                message: outcome_message(&outcome, &self.rec),
            }),
            // A stop during a start is honoured when the step in progress ends; a stop whose
            // final sync failed left the pairing paused.
            None => Err(PairError::Paused(format!(
                "pairing is {} — {}",
                self.state.describe(),
                self.notices()
                    .iter()
                    .map(Notice::message)
                    .collect::<Vec<_>>()
                    .join("; ")
            ))),
        }
    }

    fn on_flush(&mut self) -> Result<PairFlushed, PairError> {
        match &self.state {
            State::Active { .. } => {}
            State::Paused { notices } => {
                return Err(PairError::Paused(
                    notices
                        .iter()
                        .map(Notice::message)
                        .collect::<Vec<_>>()
                        .join("\n"),
                ));
            }
            State::Off => return Err(PairError::NotPaired),
            _ => return Err(PairError::Refused(Refusal::Busy)),
        }
        let started = Instant::now();
        let Some(link) = &self.link else {
            return Err(PairError::Failed("syncing is not running".into()));
        };
        let stats = link.flush().map_err(PairError::Paused)?;
        self.carry_commits();
        Ok(PairFlushed {
            to_user: stats.to_alpha as u64,
            to_agent: stats.to_beta as u64,
            conflicts: stats.conflicts as u64,
            took_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// A graceful daemon shutdown: a last flush while active, then the link stops. The journal
    /// stays: the next daemon start resumes (re-validating first).
    fn park(&mut self) {
        if let (State::Active { .. }, Some(link)) = (&self.state, &self.link)
            && let Err(e) = link.flush()
        {
            tracing::warn!(pairing = self.rec.id, "last flush before parking: {e}");
        }
        self.stop_link();
        self.event(
            "pair.parked",
            serde_json::json!({ "state": self.state.name() }),
        );
    }

    fn answer_ended(&self, r: Request) {
        match r {
            // Unanswered: the caller asks a new controller (`pairing::start`).
            Request::Start { reply, .. } => drop(reply),
            Request::Stop { reply } => {
                let _ = reply.send(Err(PairError::NotPaired));
            }
            Request::Flush { reply } => {
                let _ = reply.send(Err(PairError::NotPaired));
            }
            Request::Park { reply } => {
                let _ = reply.send(());
            }
        }
    }

    /// The pairing is over: its record ends, its ancestor goes.
    fn finish(&mut self, outcome: Outcome) {
        self.stop_link();
        let state = serde_json::to_string(&State::Off).unwrap_or_default();
        if let Err(e) = self.store.end_pairing(&self.rec.id, &state, now_ms()) {
            tracing::error!("cannot end pairing {}: {e}", self.rec.id);
        }
        if let Err(e) = self
            .store
            .drop_ancestor(&super::link::ancestor_key(&self.rec.id))
        {
            tracing::warn!("cannot drop pairing {}'s ancestor: {e}", self.rec.id);
        }
        self.event(
            "pair.finished",
            serde_json::json!({
                "outcome": outcome_name(&outcome),
                "restored": outcome.restored(),
                "snapshot": self.rec.snapshot,
                "message": outcome_message(&outcome, &self.rec),
            }),
        );
        self.finished = Some(outcome);
    }

    // -- recovery -----------------------------------------------------------------------------

    fn recover(&mut self, rec: PairingRecord) {
        self.rec = rec.clone();
        self.set_agent(&rec.agent);
        let last = self.store.last_intent(&rec.id).ok().flatten();
        let (intent, done) = match last.as_ref().and_then(|l| {
            serde_json::from_str::<Intent>(&l.intent)
                .ok()
                .map(|i| (i, l.done()))
        }) {
            Some(found) => found,
            None => match serde_json::from_str::<State>(&rec.state) {
                Ok(state) => (Intent { state }, false),
                Err(_) => (
                    Intent {
                        state: State::starting(false),
                    },
                    false,
                ),
            },
        };
        // A switch's target lives only in its intents: the handover after a recovered stop
        // needs it.
        self.switch_to = last.as_ref().and_then(|l| switch_target(&l.intent));
        tracing::info!(
            pairing = rec.id,
            state = intent.state.describe(),
            done,
            switch_to = self.switch_to,
            "recovering a pairing"
        );
        self.state = intent.state.clone();
        self.conflicts = self.kept_conflicts();
        self.event(
            "pair.recovering",
            serde_json::json!({ "state": intent.state.describe(), "done": done }),
        );
        let t = recover(&intent, done);
        let seq = self.enter(t.state);
        let mut reports = Vec::new();
        for action in t.actions {
            reports.extend(self.act(action));
        }
        if let Some(seq) = seq {
            let _ = self.store.mark_intent_done(seq, now_ms());
        }
        for r in reports {
            self.feed(r);
        }
        self.sync_hold();
        self.publish();
    }

    /// The conflicts this pairing kept so far (from the workspace's refs).
    fn kept_conflicts(&self) -> Vec<PairConflict> {
        let prefix = format!("refs/berth/conflicts/{}/", self.rec.id);
        let listed = self.repos.agent.query(&[
            "for-each-ref",
            "--sort=creatordate",
            "--format=%(refname)%00%(creatordate:unix)%00%(subject)",
            &prefix,
        ]);
        listed
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut parts = l.split('\0');
                let (refname, time, subject) = (parts.next()?, parts.next()?, parts.next()?);
                Some(PairConflict {
                    refname: refname.to_string(),
                    path: kept_path(subject).unwrap_or(subject).to_string(),
                    time_ms: time.parse::<i64>().unwrap_or(0) * 1000,
                })
            })
            .collect()
    }

    // -- surfaces -----------------------------------------------------------------------------

    fn status(&self) -> PairStatus {
        if matches!(self.state, State::Off) {
            return PairStatus::off(&self.root);
        }
        PairStatus {
            repo: self.root.clone(),
            state: self.state.name().into(),
            describe: self.state.describe(),
            step: self.state.step().map(|s| s.qualified_name()),
            pairing: Some(self.rec.id.clone()),
            agent: Some(self.rec.agent.clone()),
            branch: Some(agent_branch(&self.rec.agent)),
            agent_workspace: Some(self.repos.workspace.display().to_string()),
            original_branch: self
                .rec
                .original_branch
                .as_deref()
                .map(|b| b.strip_prefix("refs/heads/").unwrap_or(b).to_string()),
            snapshot: self.rec.snapshot.clone(),
            notices: self
                .notices()
                .iter()
                .map(|n| PairNotice {
                    code: n.code().into(),
                    side: notice_side(n).map(|s| match s {
                        Side::User => "user".into(),
                        Side::Agent => "agent".into(),
                    }),
                    message: n.message(),
                })
                .collect(),
            conflicts: self.conflicts.clone(),
            last_sync_ms: self.figures.last_sync_ms,
            latency: self.figures.latency(),
            to_user: self.figures.to_user,
            to_agent: self.figures.to_agent,
            commits_to_user: self.figures.commits_to_user,
            commits_to_agent: self.figures.commits_to_agent,
        }
    }

    pub fn publish(&self) {
        let s = self.status();
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = s;
    }

    pub fn event(&self, kind: &str, mut data: serde_json::Value) {
        if let Some(obj) = data.as_object_mut() {
            obj.insert("pairing".into(), self.rec.id.clone().into());
            obj.insert("repo".into(), self.root.clone().into());
        }
        self.shared.record_about(kind, &self.rec.agent, data);
    }
}

fn notice_side(n: &Notice) -> Option<Side> {
    match n.cause() {
        Cause::Operation(s) | Cause::Root(s) | Cause::Watch(s) | Cause::Write(s) => Some(s),
        Cause::UserBranch => Some(Side::User),
        Cause::AgentBranch | Cause::AgentWorkspace | Cause::AgentBranchGone => Some(Side::Agent),
        Cause::Diverged | Cause::Unexpected | Cause::Revalidating => None,
    }
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Stopped => "stopped",
        Outcome::LeftAsIs => "left_as_is",
        Outcome::RolledBack { .. } => "rolled_back",
        Outcome::StopIncomplete { .. } => "stop_incomplete",
        Outcome::RollbackIncomplete { .. } => "rollback_incomplete",
    }
}

/// What happened, for the user, naming what is left where.
fn outcome_message(o: &Outcome, rec: &PairingRecord) -> String {
    let original = rec
        .original_branch
        .as_deref()
        .map(|b| b.strip_prefix("refs/heads/").unwrap_or(b).to_string())
        .unwrap_or_else(|| "your detached HEAD".into());
    let kept = |what: &str| match &rec.snapshot {
        Some(id) => format!(
            "{what}; your uncommitted work from before pairing is kept in snapshot {id} \
             (`berth stash restore {id}` once the checkout is clean)"
        ),
        None => what.to_string(),
    };
    match o {
        Outcome::Stopped => format!(
            "stopped pairing with {}: your checkout is back on {original}{}",
            rec.agent,
            if rec.snapshot.is_some() {
                " with your uncommitted work restored"
            } else {
                ""
            }
        ),
        Outcome::LeftAsIs => kept(&format!(
            "stopped pairing with {} while paused: nothing was changed — your checkout is as it \
             is now, not back on {original}",
            rec.agent
        )),
        Outcome::RolledBack { cause } => match cause {
            RollbackCause::Failed { step, failure } => format!(
                "pairing with {} did not start: {} failed: {} — everything was put back as it was",
                rec.agent,
                step.name(),
                failure.message()
            ),
            RollbackCause::StopRequested => format!(
                "pairing with {} was stopped while starting; everything was put back as it was",
                rec.agent
            ),
            RollbackCause::Crashed { step } => format!(
                "the daemon stopped during {} of pairing with {}; everything was put back as it was",
                step.name(),
                rec.agent
            ),
        },
        Outcome::StopIncomplete { step, failure } => kept(&format!(
            "stopping the pairing with {} stopped at {}: {} — the rest was not attempted",
            rec.agent,
            step.name(),
            failure.message()
        )),
        Outcome::RollbackIncomplete { undo, failure } => kept(&format!(
            "undoing the start of pairing with {} stopped at {}: {} — the rest was not attempted",
            rec.agent,
            undo.name(),
            failure.message()
        )),
    }
}

/// An intent as journaled: the state, and while a switch runs, the agent it goes to (an
/// extra field the core's `Intent` ignores when read back).
fn intent_json(intent: &Intent, switch_to: Option<&str>) -> String {
    let mut v = serde_json::to_value(intent).unwrap_or_default();
    if let (Some(agent), Some(obj)) = (switch_to, v.as_object_mut()) {
        obj.insert("switch_to".into(), agent.into());
    }
    v.to_string()
}

/// The agent a journaled intent's switch goes to.
fn switch_target(intent: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(intent).ok()?;
    v.get("switch_to")?.as_str().map(str::to_string)
}

/// A step's failure from an error message.
pub(super) fn unexpected(message: impl Into<String>) -> Failure {
    Failure::Notice {
        notice: Notice::UnexpectedError {
            message: message.into(),
        },
    }
}

/// The path a kept conflict's commit subject names.
fn kept_path(subject: &str) -> Option<&str> {
    subject
        .strip_prefix("berth: kept the agent's version of ")?
        .strip_suffix(" (conflict)")
}
