//! The worker: the controller's hands. It carries out what the driver decides — the steps
//! (each after its failpoint, with the daemon's git lock held for the git ones), the link's
//! lifetime, re-validation — and owns what that work touches: both sides, the link and the
//! status view.

use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Duration;

use berth_core::pairing::{Cause, Failure, Input, Notice, StartStep, State, Step, StopStep, Undo};
use berth_store::{PairingRecord, Store};

use super::driver::Hands;
use super::error::PairingError;
use super::excludes;
use super::keeper::kept_conflicts;
use super::link::Link;
use super::messages::Msg;
use super::notices;
use super::observe;
use super::prepare::Preparing;
use super::roots;
use super::sides::TwoSides;
use super::status::{Seen, StatusView};
use super::steps::{StepResult, Steps, git_failure, unexpected};
use super::sync_loop::Warm;
use crate::git_lock::GitLock;
use crate::recorder::Recorder;

/// Longest wait for the first full round of a start.
const BEGIN_SYNC_TIMEOUT: Duration = Duration::from_secs(600);

/// What carries out a pairing's actions.
pub struct Worker {
    pub sides: TwoSides,
    pub link: Link,
    pub view: StatusView,
    /// Whether the start in progress was asked for with `--no-stash`.
    pub no_stash: bool,
    /// What the copy step left (both trees scanned, the ancestor saved) for the step right
    /// after it, beginning sync; or what the final sync's loop left, for the checkout's
    /// cleaning. Any other step drops it.
    warm: Option<Warm>,
    /// The checkout's status as a start's validation read it, for the snapshot step right
    /// after it; any other step drops it.
    seen: Option<berth_git::status::Status>,
    /// The copy step's preparation, started with the snapshot step; dropped by any step but
    /// those up to the copy.
    preparing: Option<Preparing>,
    store: Store,
    events: Recorder,
    git: GitLock,
    /// The controller's mailbox: where the link's events and git changes go.
    tx: Sender<Msg>,
}

impl Worker {
    pub fn new(
        sides: TwoSides,
        view: StatusView,
        store: Store,
        events: Recorder,
        git: GitLock,
        tx: Sender<Msg>,
    ) -> Worker {
        Worker {
            sides,
            link: Link::default(),
            view,
            no_stash: false,
            warm: None,
            seen: None,
            preparing: None,
            store,
            events,
            git,
            tx,
        }
    }

    /// Starts the link of the pairing `rec` unless it runs; not yet if a side is not a
    /// repository now.
    pub fn start_link(&mut self, rec: &PairingRecord) {
        self.start_link_with(rec, None);
    }

    /// [`Worker::start_link`], the loop beginning with `warm` if given.
    fn start_link_with(&mut self, rec: &PairingRecord, warm: Option<Warm>) {
        if self.link.is_running() {
            return;
        }
        let roots = match self.sides.roots() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(pairing = rec.id, "cannot start syncing yet: {e}");
                return;
            }
        };
        let (link_tx, git_tx) = (self.tx.clone(), self.tx.clone());
        self.link.start(
            &roots,
            &self.store,
            &rec.id,
            warm,
            Arc::new(move |ev| {
                let _ = link_tx.send(Msg::Link(ev));
            }),
            move || {
                let _ = git_tx.send(Msg::Git);
            },
        );
    }

    fn steps<'a>(&'a mut self, state: &State, rec: &'a mut PairingRecord) -> Steps<'a> {
        let carried = matches!(
            state,
            State::Starting { carried: true, .. } | State::RollingBack { carried: true, .. }
        );
        Steps {
            sides: &self.sides,
            rec,
            store: &self.store,
            events: &self.events,
            view: &mut self.view,
            carried,
            no_stash: self.no_stash,
            seen: &mut self.seen,
        }
    }

    fn dispatch(
        &mut self,
        step: Step,
        state: &State,
        rec: &mut PairingRecord,
        warm: Option<Warm>,
    ) -> StepResult {
        match step {
            Step::Start(StartStep::Validate) => self.steps(state, rec).validate(),
            Step::Start(StartStep::Snapshot) => self.steps(state, rec).take_snapshot(),
            Step::Start(StartStep::MirrorBranch) => self.steps(state, rec).mirror(),
            Step::Start(StartStep::SwitchCheckout) => self.steps(state, rec).switch_checkout(),
            Step::Start(StartStep::CopyAgentFiles) => {
                let preparing = self.preparing.take();
                self.warm = Some(self.steps(state, rec).copy_agent_files(preparing)?);
                Ok(())
            }
            Step::Start(StartStep::BeginSync) => self.begin_sync(rec, warm),
            Step::Stop(StopStep::FinalSync) => self.final_sync(rec),
            Step::Stop(StopStep::CleanCheckout) => {
                self.steps(state, rec).clean_checkout(true, warm)
            }
            Step::Stop(StopStep::SwitchBack) => self.steps(state, rec).switch_back(),
            Step::Stop(StopStep::RestoreSnapshot) => self.steps(state, rec).restore_snapshot(),
            Step::Undo(Undo::StopSync) => {
                self.link.stop();
                Ok(())
            }
            Step::Undo(Undo::CleanCheckout) => self.steps(state, rec).clean_checkout(false, None),
            Step::Undo(Undo::SwitchBack) => self.steps(state, rec).switch_back(),
            Step::Undo(Undo::RestoreMirror) => self.steps(state, rec).restore_mirror(),
            Step::Undo(Undo::RestoreSnapshot) => self.steps(state, rec).restore_snapshot(),
            Step::Undo(Undo::DropSnapshot) => self.steps(state, rec).drop_snapshot(),
        }
    }

    /// Starts the copy step's preparation with the snapshot step, so it runs beside the git
    /// steps before the copy (it needs nothing they do); drops it on any other step but those.
    fn prepare_copy(&mut self, step: Step) {
        match step {
            Step::Start(StartStep::Snapshot) if self.preparing.is_none() => {
                self.preparing = self
                    .sides
                    .roots()
                    .map_err(|e| e.to_string())
                    .and_then(|roots| {
                        Preparing::start(roots, self.store.clone()).map_err(|e| e.to_string())
                    })
                    .inspect_err(|e| tracing::debug!("the copy is prepared when it runs: {e}"))
                    .ok();
            }
            Step::Start(
                StartStep::Snapshot
                | StartStep::MirrorBranch
                | StartStep::SwitchCheckout
                | StartStep::CopyAgentFiles,
            ) => {}
            _ => self.preparing = None,
        }
    }

    /// The link started; done once both trees are watched and agree (a first full round on a
    /// very large tree takes a while), or the gate holds the loop (a cause appeared).
    fn begin_sync(&mut self, rec: &PairingRecord, warm: Option<Warm>) -> StepResult {
        self.start_link_with(rec, warm);
        if !self.link.is_running() {
            return Err(unexpected("cannot start syncing (see `berth daemon logs`)"));
        }
        if self.link.wait_started(BEGIN_SYNC_TIMEOUT) {
            Ok(())
        } else {
            Err(unexpected(
                "syncing did not start (see `berth daemon logs`)",
            ))
        }
    }

    /// How long a flush may wait for the sync loop: the checkout's `berth.stopTimeout`.
    pub fn stop_timeout(&self) -> Result<Duration, PairingError> {
        roots::settings(&self.sides.repos.user).map(|s| s.stop_timeout)
    }

    /// Everything synced once more (both files and commits), then syncing stops. Any pausing
    /// cause fails it (the pairing stays, paused), and so does a loop that does not answer
    /// within `berth.stopTimeout`.
    fn final_sync(&mut self, rec: &PairingRecord) -> StepResult {
        let found = observe::notices(&self.sides.repos, None)
            .map_err(|e| git_failure("reading git's state", e))?;
        if let Some(notice) = found.into_iter().next() {
            return Err(Failure::Notice { notice });
        }
        let limit = self.stop_timeout().map_err(unexpected)?;
        self.start_link(rec);
        if !self.link.is_running() {
            return Err(unexpected("syncing is not running"));
        }
        match self.link.flush(limit) {
            Ok(_) => {}
            // A tree does not respond: nothing is changed, the pairing waits (paused).
            Err(PairingError::FlushTimedOut(waited)) => {
                return Err(Failure::Notice {
                    notice: Notice::FinalSyncTimedOut {
                        waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                    },
                });
            }
            Err(e) => return Err(git_failure("the final sync", e)),
        }
        observe::carry_commits(&self.sides.repos, None)
            .map_err(|e| git_failure("carrying commits", e))?;
        // What the loop scanned is handed on to the next step, which compares both trees.
        self.warm = self.link.finish();
        Ok(())
    }
}

impl Hands for Worker {
    fn run(&mut self, step: Step, state: &State, rec: &mut PairingRecord) -> Result<(), Failure> {
        self.view.publish(state, rec, &self.sides.repos.workspace);
        if let Err(e) = berth_git::failpoint::hit(&step.failpoint()) {
            return Err(git_failure(&format!("failpoint {}", step.failpoint()), e));
        }
        // Beginning sync waits for nothing git-related; everything else is git work.
        let git = self.git.clone();
        let _git = (step != Step::Start(StartStep::BeginSync)).then(|| git.blocking());
        // Only the step right after the copy (or the final sync) gets what that one left, and
        // only the snapshot what the validation read.
        let warm = self.warm.take();
        if step != Step::Start(StartStep::Snapshot) {
            self.seen = None;
        }
        self.prepare_copy(step);
        let result = self.dispatch(step, state, rec, warm);
        // Steps scan whole trees: what they freed goes back.
        crate::memory::give_back();
        result
    }

    fn reconcile(&mut self, rec: &PairingRecord) {
        if self.link.is_running() {
            self.link.release();
        } else {
            self.start_link(rec);
        }
    }

    fn revalidate(&mut self, rec: &PairingRecord, held: &[Notice]) -> Vec<Input> {
        self.start_link(rec);
        let found = self.sides.look().unwrap_or_else(|notice| vec![notice]);
        let mut inputs = notices::changes(held, &found, |_| true);
        inputs.push(Input::Clear(Cause::Revalidating));
        inputs
    }

    fn stop_link(&mut self) {
        self.link.stop();
    }

    fn finished(&mut self, rec: &PairingRecord) {
        excludes::remove_all(&self.store, &rec.project_root);
    }

    fn mirror_of(&mut self, agent: &str) -> Option<String> {
        self.sides.mirror_of(agent)
    }

    fn joined(&mut self, rec: &PairingRecord) {
        self.sides.set_agent(&rec.agent);
        self.view.note(Seen::Switched);
        self.view.note(Seen::AllKept(kept_conflicts(
            &self.sides.repos.agent,
            &rec.id,
        )));
    }

    fn settle(&mut self, state: &State, rec: &PairingRecord) {
        self.link.follow(state);
        self.view.publish(state, rec, &self.sides.repos.workspace);
    }
}
