//! One pairing's controller: its thread, its state, the journal, and everything that reaches it
//! (requests, sync reports, git changes). See the module docs of `pairing`.

use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_core::pairing::{
    Action, Activity, Cause, Failure, Input, Intent, Notice, Outcome, Refusal, Side, State, next,
};
use berth_git::Git;
use berth_proto::{PairConflict, PairFlushed, PairStatus, PairStopped};
use berth_store::{AgentRecord, PairingRecord, Store};
use tokio::sync::oneshot;

use super::front::{InFlight, run_front};
use super::gitwatch::GitWatch;
use super::link::{Link, LinkEvent};
use super::observe::{self, Repos};
use super::recovery::intent_json;
use super::roots::{self, Roots};
use super::status::{Figures, recovering_status};
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
/// How long a branch move's index update is watched, and how often it is looked at meanwhile.
const INDEX_WATCH: Duration = Duration::from_secs(5);
const INDEX_RECHECK: Duration = Duration::from_secs(1);
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

/// The inputs that bring the notices `held` in line with what was `found`: every found notice
/// not held yet is raised; every held cause not found (of those `clears` covers; never
/// `revalidating`) is cleared.
fn notice_changes(held: &[Notice], found: &[Notice], clears: impl Fn(Cause) -> bool) -> Vec<Input> {
    let found_causes: BTreeSet<Cause> = found.iter().map(Notice::cause).collect();
    let gone: BTreeSet<Cause> = held
        .iter()
        .map(Notice::cause)
        .filter(|c| !found_causes.contains(c) && *c != Cause::Revalidating && clears(*c))
        .collect();
    found
        .iter()
        .filter(|n| !held.contains(n))
        .map(|n| Input::Raise(n.clone()))
        .chain(gone.into_iter().map(Input::Clear))
        .collect()
}

/// One pairing's controller.
pub(super) struct Controller {
    pub(super) shared: Arc<Shared>,
    pub(super) store: Store,
    /// The checkout's top level.
    pub(super) root: String,
    pub(super) rec: PairingRecord,
    pub(super) state: State,
    /// The agent's definition (`None`: not defined in this project).
    pub(super) agent: Option<AgentRecord>,
    pub(super) repos: Repos,
    pub(super) link: Option<Link>,
    pub(super) gitwatch: Option<GitWatch>,
    /// Whether the link is held.
    pub(super) held: bool,
    pub(super) no_stash: bool,
    /// The agent a switch goes to.
    pub(super) switch_to: Option<String>,
    pub(super) figures: Figures,
    pub(super) conflicts: Vec<PairConflict>,
    pub(super) status: Arc<Mutex<PairStatus>>,
    pub(super) tx: Sender<Msg>,
    /// What the last request's transitions ended with.
    pub(super) refused: Option<Refusal>,
    pub(super) finished: Option<Outcome>,
    pub(super) git_due: Option<Instant>,
    pub(super) next_check: Instant,
    /// Set by the front door when it passes a start or stop on; cleared once answered.
    pub(super) in_flight: InFlight,
    /// The last branch move of ref sync, watched for a while in case a concurrent `git status`
    /// undoes its index update ([`observe::repair_index`]).
    pub(super) moved: Option<(observe::Move, Instant)>,
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

impl Controller {
    pub(super) fn new(
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
            moved: None,
        }
    }

    /// Agent `name` of this project (`None`: not defined here) and the two repositories of a
    /// pairing with it.
    pub(super) fn agent_repos(&self, name: &str) -> (Option<AgentRecord>, Repos) {
        let pid = self.store.project_id(&self.root, now_ms()).ok();
        let rec = pid
            .and_then(|pid| self.store.agent(pid, name).ok().flatten())
            .filter(|a| a.kind == "agent");
        let workspace = rec
            .as_ref()
            .map(|a| PathBuf::from(&a.workspace))
            .unwrap_or_default();
        let repos = Repos {
            user: Git::new(&self.root),
            agent: Git::new(&workspace),
            workspace,
            name: name.to_string(),
        };
        (rec, repos)
    }

    /// Points the controller at agent `name` (its record, its workspace).
    pub fn set_agent(&mut self, name: &str) {
        (self.agent, self.repos) = self.agent_repos(name);
    }

    /// Both roots and their git dirs (fails when a side is not a repository now).
    pub fn roots(&self) -> Result<Roots, String> {
        let dir = |g: &Git| berth_git::pairing::git_dir(g).map_err(|e| e.to_string());
        let (exclude, max_size) = roots::settings(&self.repos.user)?;
        Ok(Roots {
            user: PathBuf::from(&self.root),
            user_git_dir: dir(&self.repos.user)?,
            agent: self.repos.workspace.clone(),
            agent_git_dir: dir(&self.repos.agent)?,
            branch_ref: self.repos.branch_ref(),
            exclude,
            max_size,
        })
    }

    /// Serves until the pairing is over (or parked). A fresh controller waits for its first
    /// request; a recovered one that ended up `off` (a start rolled back) has nothing to do.
    pub(super) fn run(&mut self, rx: &Receiver<Msg>) {
        if matches!(self.state, State::Off) && !self.rec.id.is_empty() {
            return;
        }
        loop {
            let now = Instant::now();
            let due = self.git_due.unwrap_or(self.next_check).min(self.next_check);
            match rx.recv_timeout(due.saturating_duration_since(now)) {
                Ok(Msg::Request(r)) => {
                    let parked = matches!(r, Request::Park { .. });
                    self.on_request(r);
                    if parked || matches!(self.state, State::Off) {
                        return; // parked, stopped, rolled back, or refused before it began
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
    pub(super) fn enter(&mut self, state: State) -> Option<u64> {
        let only_activity = matches!(
            (&self.state, &state),
            (State::Active { .. }, State::Active { .. })
        );
        self.state = state;
        if only_activity || self.rec.id.is_empty() {
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
        seq
    }

    /// Carries out one action; what it found out (a step's report, re-validated notices)
    /// comes back as the next inputs.
    pub(super) fn act(&mut self, action: Action) -> Vec<Input> {
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
            // `sync_hold` decides from the notices; the full reconcile that follows a resume
            // releases the link (one full round, not two).
            Action::PauseSync | Action::ResumeSync => {}
            Action::FullReconcile => match &self.link {
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
    pub(super) fn sync_hold(&mut self) {
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

    /// What git shows on both sides now (a failure to look is a notice itself).
    fn look(&self) -> Result<Vec<Notice>, Notice> {
        let _git = self.shared.git_lock.blocking_lock();
        observe::notices(&self.repos).map_err(|e| Notice::UnexpectedError {
            message: format!("cannot read git's state: {e}"),
        })
    }

    /// Looks at both sides' git state: raises what is found, clears the git-shown causes that
    /// are gone; while active, carries commits.
    pub(super) fn check_git(&mut self) {
        self.next_check = Instant::now()
            + match self.state {
                State::Paused { .. } => CHECK_PAUSED,
                _ => CHECK_ACTIVE,
            };
        if !matches!(self.state, State::Active { .. } | State::Paused { .. }) {
            return;
        }
        match self.look() {
            Ok(found) => {
                for input in notice_changes(&self.notices(), &found, held_by_git) {
                    self.feed(input);
                }
            }
            Err(notice) => {
                self.feed(Input::Raise(notice));
                return;
            }
        }
        if matches!(self.state, State::Active { .. }) {
            self.carry_commits();
            self.watch_moved_index();
        }
        self.restart_link();
    }

    /// Repairs the index of the last branch move if something undid it (see
    /// [`observe::repair_index`]); a move is watched for [`INDEX_WATCH`].
    fn watch_moved_index(&mut self) {
        let Some((m, at)) = &self.moved else {
            return;
        };
        if at.elapsed() > INDEX_WATCH {
            self.moved = None;
            return;
        }
        let repaired = {
            let _git = self.shared.git_lock.blocking_lock();
            observe::repair_index(&self.repos, m)
        };
        match repaired {
            Ok(true) => tracing::info!(pairing = self.rec.id, "the index was put back in step"),
            Ok(false) => {}
            Err(e) => tracing::warn!(pairing = self.rec.id, "checking the index: {e}"),
        }
        // Look again soon: the undoing write may still come.
        self.next_check = self.next_check.min(Instant::now() + INDEX_RECHECK);
    }

    /// A link that ended by itself (it could not watch a tree that was moved away for a
    /// while) is started again once both sides are repositories again; its first full round
    /// clears the notice its end raised. Without this the pairing stayed paused for good.
    pub(super) fn restart_link(&mut self) {
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

    /// After a restart: everything is checked again; the inputs raise what is found and clear
    /// every cause that is gone, `revalidating` last.
    pub(super) fn revalidate(&mut self) -> Vec<Input> {
        let found = self.look().unwrap_or_else(|notice| vec![notice]);
        let mut inputs = notice_changes(&self.notices(), &found, |_| true);
        inputs.push(Input::Clear(Cause::Revalidating));
        inputs
    }

    pub(super) fn carry_commits(&mut self) {
        let carried = {
            let _git = self.shared.git_lock.blocking_lock();
            observe::carry_commits(&self.repos)
        };
        match carried {
            Ok(c) if c.to_user > 0 || c.to_agent > 0 => {
                self.moved = c.moved.map(|m| (m, Instant::now()));
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
        for git in [&self.repos.user, &self.repos.agent] {
            if let Err(e) = roots::exclude_temp_files(git) {
                tracing::warn!(
                    pairing = self.rec.id,
                    "cannot exclude berth's temporary files: {e}"
                );
            }
        }
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
    pub(super) fn clear_link_troubles(&mut self) {
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

    pub(super) fn on_link(&mut self, ev: LinkEvent) {
        match ev {
            LinkEvent::Ready => {
                // A first round that went through: what stopped the last link is gone.
                self.clear_link_troubles();
                self.publish();
            }
            LinkEvent::Synced {
                to_user,
                to_agent,
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
                    self.figures.warn(w);
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
}

/// A step's failure from an error message.
pub(super) fn unexpected(message: impl Into<String>) -> Failure {
    Failure::Notice {
        notice: Notice::UnexpectedError {
            message: message.into(),
        },
    }
}
