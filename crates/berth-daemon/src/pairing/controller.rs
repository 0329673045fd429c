//! The controller: one pairing's actor. It runs on a thread of its own behind a front door
//! ([`super::front`]) and serves its mailbox ([`Msg`]): requests from the API, the link's
//! reports, changes in either git dir, and its own timers (both sides are looked at a moment
//! after git changed, and every few seconds anyway). Decisions are the [`Driver`]'s; the work
//! is the [`Worker`]'s.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_core::pairing::{
    Activity, Cause, Input, Notice, STOP_TIMEOUT, Side, State, reconnect_after,
};
use berth_proto::{PairConflict, PairFlushed, PairStatus, PairStopped};
use berth_store::{PairingRecord, Store};

use super::answers;
use super::driver::Driver;
use super::error::PairingError;
use super::front::{InFlight, run_front, set_in_flight};
use super::link_event::LinkEvent;
use super::messages::{Msg, Request};
use super::notices::{self, held_by_git};
use super::registry::{Handle, Registry};
use super::sides::TwoSides;
use super::status::{Seen, StatusView};
use super::worker::Worker;
use crate::clock::now_ms;
use crate::git_lock::GitLock;
use crate::recorder::Recorder;

/// How soon after a change in a git dir both sides are looked at.
const GIT_SETTLE: Duration = Duration::from_millis(15);
/// How often both sides are looked at anyway: while paused (a workspace coming back shows in
/// no git dir), and while active as a safety net.
const CHECK_PAUSED: Duration = Duration::from_secs(2);
const CHECK_ACTIVE: Duration = Duration::from_secs(10);
/// With an agent elsewhere no git dir of its is watched here: its side is looked at this often
/// while active (its commits, its branch).
const CHECK_FAR: Duration = Duration::from_secs(1);
/// How often a branch move's index update is looked at while it is watched.
const INDEX_RECHECK: Duration = Duration::from_secs(1);

/// What every controller of a run is given.
#[derive(Debug, Clone)]
pub struct Context {
    pub store: Store,
    pub events: Recorder,
    pub git: GitLock,
    pub registry: Arc<Registry>,
}

/// One pairing's controller.
pub struct Controller {
    driver: Driver,
    work: Worker,
    git_due: Option<Instant>,
    next_check: Instant,
    /// Looks in a row that found the connection to an agent elsewhere lost (the next waits
    /// longer: `berth_core::pairing::reconnect_after`).
    lost_looks: u32,
    /// Set by the front door when it passes a start or stop on; cleared once answered.
    in_flight: InFlight,
}

/// Starts the controller of the checkout at `root` — a fresh one whose first request is a
/// start, or (`rec`) one that re-opens a pairing found open at daemon start.
pub fn spawn(cx: &Context, root: String, rec: Option<PairingRecord>) -> Handle {
    let (tx, rx) = mpsc::channel();
    let (front_tx, front_rx) = mpsc::channel();
    // A recovered pairing shows what it was doing from the first moment, not `off`.
    let first = match &rec {
        Some(rec) => StatusView::recovering(rec),
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
    let cx = cx.clone();
    let name = format!("pairing {root}");
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        let mut c = Controller::new(&cx, &root, status.clone(), tx, in_flight);
        if let Some(rec) = rec {
            c.driver.recover(rec, &mut c.work);
        }
        c.run(&rx);
        cx.registry.remove(&root, &status);
        // Answer whatever arrived meanwhile: the pairing is over.
        while let Ok(Msg::Request(r)) = rx.try_recv() {
            r.answer_ended();
        }
    });
    if let Err(e) = spawned {
        tracing::error!("cannot start a pairing controller: {e}");
    }
    handle
}

impl Controller {
    fn new(
        cx: &Context,
        root: &str,
        status: Arc<Mutex<PairStatus>>,
        tx: Sender<Msg>,
        in_flight: InFlight,
    ) -> Controller {
        let sides = TwoSides::new(root, cx.store.clone(), cx.git.clone());
        let view = StatusView::new(root, status);
        Controller {
            driver: Driver::new(root, cx.store.clone(), cx.events.clone()),
            work: Worker::new(
                sides,
                view,
                cx.store.clone(),
                cx.events.clone(),
                cx.git.clone(),
                tx,
            ),
            git_due: None,
            next_check: Instant::now() + CHECK_ACTIVE,
            lost_looks: 0,
            in_flight,
        }
    }

    /// Serves until the pairing is over (or parked). A fresh controller waits for its first
    /// request; a recovered one that ended up `off` (a start rolled back) has nothing to do.
    fn run(&mut self, rx: &Receiver<Msg>) {
        if matches!(self.driver.state(), State::Off) && self.driver.is_recorded() {
            return;
        }
        loop {
            let now = Instant::now();
            let due = self.git_due.unwrap_or(self.next_check).min(self.next_check);
            match rx.recv_timeout(due.saturating_duration_since(now)) {
                Ok(Msg::Request(r)) => {
                    let parked = matches!(r, Request::Park { .. });
                    self.on_request(r);
                    if parked || matches!(self.driver.state(), State::Off) {
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

    fn feed(&mut self, input: Input) {
        self.driver.feed(input, &mut self.work);
    }

    fn publish(&self) {
        let workspace = &self.work.sides.repos.workspace;
        self.work
            .view
            .publish(self.driver.state(), self.driver.rec(), workspace);
    }

    fn status(&self) -> PairStatus {
        let workspace = &self.work.sides.repos.workspace;
        self.work
            .view
            .status(self.driver.state(), self.driver.rec(), workspace)
    }

    // -- requests -------------------------------------------------------------------------

    fn on_request(&mut self, r: Request) {
        self.driver.begin_request();
        match r {
            Request::Start {
                agent,
                no_stash,
                reply,
            } => {
                let answer = self.start(&agent, no_stash);
                self.publish();
                set_in_flight(&self.in_flight, None);
                let _ = reply.send(answer);
            }
            Request::Stop { reply } => {
                let answer = self.stop();
                self.publish();
                set_in_flight(&self.in_flight, None);
                let _ = reply.send(answer);
            }
            Request::Flush { reply } => {
                let _ = reply.send(self.flush());
            }
            Request::Park { reply } => {
                self.park();
                let _ = reply.send(());
            }
        }
    }

    /// A start (or, while paired with another agent, a switch); answers once it is done or
    /// was undone.
    fn start(&mut self, agent: &str, no_stash: bool) -> Result<PairStatus, PairingError> {
        if matches!(self.driver.state(), State::Off) {
            self.work.no_stash = no_stash;
            self.work.sides.set_agent(agent);
            let (head, mirror) = self
                .work
                .sides
                .before_start(agent)
                .map_err(PairingError::Open)?;
            self.driver.open(agent, &head, mirror)?;
            self.feed(Input::StartRequested);
        } else if self.work.sides.repos.name == agent {
            self.feed(Input::StartRequested); // refused: already paired (or busy)
        } else {
            if matches!(self.driver.state(), State::Active { .. }) {
                // Read-only: the other agent's blockers, before anything changes.
                let blockers = self.work.sides.switch_blockers(agent, no_stash)?;
                if !blockers.is_empty() {
                    return Err(PairingError::Blocked(blockers));
                }
            }
            self.driver.switch_to(agent);
            self.work.no_stash = no_stash;
            self.feed(Input::SwitchRequested);
        }
        let refused = self.driver.take_refused();
        if refused.is_some() {
            self.driver.switch_refused();
        }
        let finished = self.driver.take_finished();
        answers::start(refused, finished, self.driver.rec())?;
        Ok(self.status())
    }

    fn stop(&mut self) -> Result<PairStopped, PairingError> {
        if matches!(self.driver.state(), State::Off) {
            return Err(PairingError::NotPaired);
        }
        let before = self.driver.rec().clone();
        self.feed(Input::StopRequested);
        let (refused, finished) = (self.driver.take_refused(), self.driver.take_finished());
        answers::stop(
            refused,
            finished,
            &before,
            self.driver.rec(),
            self.driver.state(),
        )
    }

    fn flush(&mut self) -> Result<PairFlushed, PairingError> {
        answers::flush(self.driver.state())?;
        let started = Instant::now();
        if !self.work.link.is_running() {
            return Err(PairingError::NotSyncing);
        }
        let limit = self.work.stop_timeout()?;
        let stats = self.work.link.flush(limit).map_err(|e| match e {
            PairingError::FlushTimedOut(_) => e,
            e => PairingError::Paused(e.to_string()),
        })?;
        self.carry_commits();
        Ok(PairFlushed {
            to_user: stats.to_alpha as u64,
            to_agent: stats.to_beta as u64,
            conflicts: stats.conflicts as u64,
            took_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// A graceful daemon shutdown: a last flush while active (within `berth.stopTimeout`),
    /// then the link stops. The journal stays: the next daemon start resumes (re-validating
    /// first).
    fn park(&mut self) {
        let limit = self.work.stop_timeout().unwrap_or(STOP_TIMEOUT);
        if matches!(self.driver.state(), State::Active { .. })
            && self.work.link.is_running()
            && let Err(e) = self.work.link.flush(limit)
        {
            tracing::warn!(
                pairing = self.driver.rec().id,
                "last flush before parking: {e}"
            );
        }
        self.work.link.stop();
        self.driver.event(
            "pair.parked",
            serde_json::json!({ "state": self.driver.state().name() }),
        );
    }

    // -- what the link and git show -------------------------------------------------------

    /// Looks at both sides' git state: raises what is found, clears the git-shown causes that
    /// are gone; while active, carries commits.
    fn check_git(&mut self) {
        let far = self.work.sides.repos.far.is_some();
        self.next_check = Instant::now()
            + match self.driver.state() {
                State::Paused { .. } => CHECK_PAUSED,
                _ if far => CHECK_FAR,
                _ => CHECK_ACTIVE,
            };
        if !matches!(
            self.driver.state(),
            State::Active { .. } | State::Paused { .. }
        ) {
            return;
        }
        match self.work.sides.look() {
            Ok(found) => {
                if found.iter().any(|n| n.cause() == Cause::Link) {
                    // Tried again later, less often the longer it lasts.
                    self.lost_looks = self.lost_looks.saturating_add(1);
                    self.next_check = Instant::now() + reconnect_after(self.lost_looks);
                } else {
                    self.lost_looks = 0;
                }
                for input in notices::changes(&self.driver.notices(), &found, held_by_git) {
                    self.feed(input);
                }
                if let Some(far) = &self.work.sides.repos.far {
                    self.work.view.note(Seen::Link(far.figures()));
                    self.publish();
                }
            }
            Err(notice) => {
                self.feed(Input::Raise(notice));
                return;
            }
        }
        if matches!(self.driver.state(), State::Active { .. }) {
            self.carry_commits();
            if self.work.sides.repair_moved_index() {
                self.next_check = self.next_check.min(Instant::now() + INDEX_RECHECK);
            }
        }
        self.restart_link();
    }

    /// A link that ended by itself (it could not watch a tree that was moved away for a
    /// while) is started again once both sides are repositories again; its first full round
    /// clears the notice its end raised. Without this the pairing stayed paused for good.
    fn restart_link(&mut self) {
        if self.work.link.is_running()
            || !matches!(
                self.driver.state(),
                State::Active { .. } | State::Paused { .. }
            )
            || !self.work.sides.repos.workspace_exists()
            || self.link_lost()
        {
            return;
        }
        tracing::info!(pairing = self.driver.rec().id, "starting syncing again");
        self.work.start_link(self.driver.rec());
        self.work.link.follow(self.driver.state());
    }

    /// Whether the connection to an agent elsewhere is known lost (a notice says so).
    fn link_lost(&self) -> bool {
        self.driver
            .notices()
            .iter()
            .any(|n| n.cause() == Cause::Link)
    }

    /// A round failed or the loop ended with an agent elsewhere: its side is looked at first,
    /// and a lost connection is the cause (`connection_lost`) rather than some error.
    fn lost_link_explains(&mut self) -> bool {
        if self.work.sides.repos.far.is_none() {
            return false;
        }
        self.check_git();
        self.link_lost()
    }

    fn carry_commits(&mut self) {
        match self.work.sides.carry() {
            Ok(c) if c.to_user > 0 || c.to_agent > 0 => {
                self.work.view.note(Seen::Commits {
                    to_user: c.to_user,
                    to_agent: c.to_agent,
                });
                self.driver.event(
                    "pair.commits",
                    serde_json::json!({ "to_user": c.to_user, "to_agent": c.to_agent }),
                );
                self.publish();
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(pairing = self.driver.rec().id, "carrying commits: {e}");
                self.feed(Input::Raise(Notice::UnexpectedError {
                    message: format!("cannot carry commits between the two branches: {e}"),
                }));
            }
        }
    }

    /// A round went through: watching works, no error is left, and syncing answers again —
    /// unless the loop still owes the answer to a flush that gave up: then the round was
    /// reported before that flush was asked (the report waited while the flush did).
    fn clear_link_troubles(&mut self) {
        let answering = self.work.link.answering();
        for c in [
            Cause::Watch(Side::User),
            Cause::Watch(Side::Agent),
            Cause::Unexpected,
            Cause::SyncUnanswered,
        ] {
            if c == Cause::SyncUnanswered && !answering {
                continue;
            }
            if self.driver.notices().iter().any(|n| n.cause() == c) {
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
                took,
                warnings,
            } => {
                self.work.view.note(Seen::Synced {
                    to_user,
                    to_agent,
                    took,
                    at_ms: now_ms(),
                });
                for w in warnings {
                    self.driver
                        .event("pair.warning", serde_json::json!({ "warning": w }));
                    self.work.view.note(Seen::Warning(w));
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
                if !self.lost_link_explains() {
                    self.feed(Input::Raise(Notice::UnexpectedError { message: error }));
                }
            }
            LinkEvent::Stalled(side) => self.feed(Input::Raise(Notice::WatchStalled { side })),
            LinkEvent::Held(why) => {
                // The gate shut before the controller saw why: look now. If git shows nothing
                // (a branch switched there and back), let the link go on.
                self.work.link.held_by_gate();
                self.check_git();
                let git_cause = self.driver.notices().iter().any(|n| held_by_git(n.cause()));
                if !git_cause && self.work.link.is_running() {
                    tracing::info!(
                        pairing = self.driver.rec().id,
                        "gate shut ({why}); nothing found"
                    );
                    self.work.link.release();
                }
            }
            LinkEvent::Kept { refname, path } => {
                self.driver.event(
                    "pair.conflict_kept",
                    serde_json::json!({ "ref": refname, "path": path }),
                );
                self.work.view.note(Seen::Kept(PairConflict {
                    refname,
                    path,
                    time_ms: now_ms(),
                }));
                self.publish();
            }
            LinkEvent::Ended(Err(e)) => {
                self.work.link.ended();
                if !self.lost_link_explains() {
                    self.feed(Input::Raise(Notice::UnexpectedError {
                        message: e.to_string(),
                    }));
                }
                // Try again soon (see `restart_link`).
                self.next_check = self.next_check.min(Instant::now() + CHECK_PAUSED);
            }
            LinkEvent::Ended(Ok(())) => {}
        }
    }
}
