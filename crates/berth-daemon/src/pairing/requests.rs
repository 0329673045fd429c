//! What a controller does for each request: start (or switch), stop, flush, park.

use std::time::Instant;

use berth_core::pairing::{
    Blocker, Failure, Input, Notice, Outcome, Refusal, RollbackCause, State,
};
use berth_git::workspace;
use berth_proto::{PairFlushed, PairStatus, PairStopped};
use berth_store::PairingRecord;

use super::PairError;
use super::controller::{Controller, Request, now_ms};
use super::front::set_in_flight;
use super::observe::{self};
use super::status::{Figures, outcome_message, outcome_name};

impl Controller {
    pub(super) fn on_request(&mut self, r: Request) {
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

    pub(super) fn on_start(
        &mut self,
        agent: &str,
        no_stash: bool,
    ) -> Result<PairStatus, PairError> {
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
    pub(super) fn facts_for(
        &self,
        agent: &str,
        no_stash: bool,
    ) -> Result<berth_core::pairing::Facts, PairError> {
        let (rec, repos) = self.agent_repos(agent);
        let _git = self.shared.git_lock.blocking_lock();
        observe::facts(
            &self.repos.user,
            agent,
            rec.is_some().then_some(&repos),
            no_stash,
            None,
        )
        .map_err(|e| PairError::Failed(format!("cannot read git's state: {e}")))
    }

    /// Creates the pairing's record: what the checkout is on now, where the project's copy of
    /// the agent's branch is (so a rollback can put both back).
    pub(super) fn open_record(&mut self, agent: &str) -> Result<(), PairError> {
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
    pub(super) fn hand_over(&mut self) {
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

    pub(super) fn on_stop(&mut self) -> Result<PairStopped, PairError> {
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

    pub(super) fn on_flush(&mut self) -> Result<PairFlushed, PairError> {
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
    pub(super) fn park(&mut self) {
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

    pub(super) fn answer_ended(&self, r: Request) {
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
    pub(super) fn finish(&mut self, outcome: Outcome) {
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
}
