//! The driver: a pairing's state, its record and its intent journal, and its decisions. Every
//! input goes through `berth_core::pairing::next`; each new state is journaled *before* its
//! actions are carried out and marked done after. The driver does no git or file work itself:
//! it hands each action to its [`Hands`] and feeds what they report back in.

use std::collections::VecDeque;

use berth_core::pairing::{
    Action, Failure, Input, Intent, Notice, Outcome, Refusal, State, Step, next, recover,
};
use berth_git::head::Head;
use berth_store::{PairingRecord, Store};

use super::error::{OpenError, PairingError};
use super::journal::{intent_json, resume_point};
use super::notices::notices_of;
use super::{ancestor, events, outcome};
use crate::clock::now_ms;
use crate::recorder::Recorder;

/// What carries out the driver's actions.
pub trait Hands {
    /// Carries out `step` of the pairing `rec` in `state`.
    fn run(&mut self, step: Step, state: &State, rec: &mut PairingRecord) -> Result<(), Failure>;
    /// A full reconcile of both sides (after a resume): the link released, or started.
    fn reconcile(&mut self, rec: &PairingRecord);
    /// Everything checked again after a restart: the inputs that bring `held` in line with
    /// what is found.
    fn revalidate(&mut self, rec: &PairingRecord, held: &[Notice]) -> Vec<Input>;
    /// Syncing stops (the link and the git watch).
    fn stop_link(&mut self);
    /// Where the checkout's copy of `agent`'s branch is now (a switch to it records that).
    fn mirror_of(&mut self, agent: &str) -> Option<String>;
    /// The pairing is now `rec` (recovered, or the new one of a switch): both sides point at
    /// its agent, and the status starts from what it kept.
    fn joined(&mut self, rec: &PairingRecord);
    /// The pairing `rec` ended (its link stopped): what it added to the repositories is taken
    /// out again.
    fn finished(&mut self, rec: &PairingRecord);
    /// After every batch of inputs: the link held or released for `state`, the status
    /// published.
    fn settle(&mut self, state: &State, rec: &PairingRecord);
}

/// One pairing's state machine, record and journal.
pub struct Driver {
    state: State,
    rec: PairingRecord,
    /// The agent a switch goes to.
    switch_to: Option<String>,
    store: Store,
    events: Recorder,
    /// What the last request's transitions ended with.
    refused: Option<Refusal>,
    finished: Option<Outcome>,
}

impl Driver {
    /// The driver of the checkout at `root`, not paired yet.
    pub fn new(root: &str, store: Store, events: Recorder) -> Driver {
        Driver {
            state: State::Off,
            rec: PairingRecord {
                id: String::new(),
                project_root: root.to_string(),
                agent: String::new(),
                state: String::new(),
                original_branch: None,
                original_head: None,
                mirror_before: None,
                snapshot: None,
                created_ms: 0,
                updated_ms: 0,
                ended_ms: None,
            },
            switch_to: None,
            store,
            events,
            refused: None,
            finished: None,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn rec(&self) -> &PairingRecord {
        &self.rec
    }

    /// Whether a pairing was ever recorded (a start that was refused before it began left
    /// none).
    pub fn is_recorded(&self) -> bool {
        !self.rec.id.is_empty()
    }

    pub fn notices(&self) -> Vec<Notice> {
        notices_of(&self.state)
    }

    /// Records `kind` in the event log for this pairing.
    pub fn event(&self, kind: &str, data: serde_json::Value) {
        events::record(&self.events, &self.rec, kind, data);
    }

    /// Forgets how the last request's transitions ended (a new request begins).
    pub fn begin_request(&mut self) {
        self.refused = None;
        self.finished = None;
    }

    /// The refusal of the last request's transitions, if they were refused.
    pub fn take_refused(&mut self) -> Option<Refusal> {
        self.refused.take()
    }

    /// How the pairing ended during the last request, if it did.
    pub fn take_finished(&mut self) -> Option<Outcome> {
        self.finished.take()
    }

    /// A switch to `agent` is asked for.
    pub fn switch_to(&mut self, agent: &str) {
        self.switch_to = Some(agent.to_string());
    }

    /// A refused switch goes nowhere (and must not be journaled as one later) — unless the
    /// pairing is stopping towards it already.
    pub fn switch_refused(&mut self) {
        if !matches!(self.state, State::Stopping { .. }) {
            self.switch_to = None;
        }
    }

    /// Creates the pairing's record: what the checkout is on now (`head`), where the project's
    /// copy of the agent's branch is (`mirror`), so a rollback can put both back.
    pub fn open(
        &mut self,
        agent: &str,
        head: &Head,
        mirror: Option<String>,
    ) -> Result<(), PairingError> {
        let now = now_ms();
        let starting = State::starting(false);
        self.rec = PairingRecord {
            id: crate::ids::new_id(now),
            project_root: self.rec.project_root.clone(),
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
                Err(PairingError::Refused(Refusal::Busy))
            }
            Err(e) => {
                self.rec.id.clear();
                Err(PairingError::Open(OpenError::Store(e)))
            }
        }
    }

    /// Feeds `input` and everything it leads to (step reports) through the state machine,
    /// journaling each new state before acting on it.
    pub fn feed(&mut self, input: Input, hands: &mut impl Hands) {
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
                queue.extend(self.act(action, hands));
            }
            self.done(seq);
        }
        hands.settle(&self.state, &self.rec);
    }

    /// Re-opens the pairing `rec` found open at daemon start, from its last journal entry:
    /// an interrupted step is finished or undone, an active pairing re-validated.
    pub fn recover(&mut self, rec: PairingRecord, hands: &mut impl Hands) {
        self.rec = rec;
        hands.joined(&self.rec);
        let last = self.store.last_intent(&self.rec.id).ok().flatten();
        let point = resume_point(&self.rec, last.as_ref());
        self.switch_to = point.switch_to;
        tracing::info!(
            pairing = self.rec.id,
            state = point.intent.state.describe(),
            done = point.done,
            switch_to = self.switch_to,
            "recovering a pairing"
        );
        self.state = point.intent.state.clone();
        self.event(
            "pair.recovering",
            serde_json::json!({ "state": point.intent.state.describe(), "done": point.done }),
        );
        let t = recover(&point.intent, point.done);
        let seq = self.enter(t.state);
        let mut reports = Vec::new();
        for action in t.actions {
            reports.extend(self.act(action, hands));
        }
        self.done(seq);
        for r in reports {
            self.feed(r, hands);
        }
        hands.settle(&self.state, &self.rec);
    }

    fn done(&self, seq: Option<u64>) {
        if let Some(seq) = seq
            && let Err(e) = self.store.mark_intent_done(seq, now_ms())
        {
            tracing::error!("cannot mark a pairing intent done: {e}");
        }
    }

    /// Enters `state`: journaled (unless only the activity changed) and recorded.
    fn enter(&mut self, state: State) -> Option<u64> {
        let only_activity = matches!(
            (&self.state, &state),
            (State::Active { .. }, State::Active { .. })
        );
        self.state = state;
        if only_activity || !self.is_recorded() {
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
    fn act(&mut self, action: Action, hands: &mut impl Hands) -> Vec<Input> {
        match action {
            Action::Run { step } => {
                let report = match hands.run(step, &self.state, &mut self.rec) {
                    Ok(()) => Input::StepDone(step),
                    Err(failure) => Input::StepFailed(step, failure),
                };
                return vec![report];
            }
            // The hands hold or release the link from the notices when they settle; the full
            // reconcile that follows a resume releases it (one full round, not two).
            Action::PauseSync | Action::ResumeSync => {}
            Action::FullReconcile => hands.reconcile(&self.rec),
            Action::Revalidate => return hands.revalidate(&self.rec, &self.notices()),
            Action::StopWatching => hands.stop_link(),
            Action::Handover => self.hand_over(hands),
            Action::Refuse { refusal } => self.refused = Some(refusal),
            Action::Finish { outcome } => self.finish(outcome, hands),
        }
        vec![]
    }

    /// A switch: the old pairing ends, a new one with the other agent takes over its snapshot
    /// and original branch.
    fn hand_over(&mut self, hands: &mut impl Hands) {
        let Some(agent) = self.switch_to.take() else {
            return;
        };
        hands.stop_link();
        let old = self.rec.clone();
        let now = now_ms();
        let new = PairingRecord {
            id: crate::ids::new_id(now),
            agent: agent.clone(),
            state: serde_json::to_string(&self.state).unwrap_or_default(),
            mirror_before: hands.mirror_of(&agent),
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
        hands.joined(&self.rec);
    }

    /// The pairing is over: its record ends, its ancestor goes, and so do its lines in
    /// `info/exclude`.
    fn finish(&mut self, outcome: Outcome, hands: &mut impl Hands) {
        hands.stop_link();
        let state = serde_json::to_string(&State::Off).unwrap_or_default();
        if let Err(e) = self.store.end_pairing(&self.rec.id, &state, now_ms()) {
            tracing::error!("cannot end pairing {}: {e}", self.rec.id);
        }
        if let Err(e) = self.store.drop_ancestor(&ancestor::key(&self.rec.id)) {
            tracing::warn!("cannot drop pairing {}'s ancestor: {e}", self.rec.id);
        }
        hands.finished(&self.rec);
        self.event(
            "pair.finished",
            serde_json::json!({
                "outcome": outcome::name(&outcome),
                "restored": outcome.restored(),
                "snapshot": self.rec.snapshot,
                "message": outcome::message(&outcome, &self.rec),
            }),
        );
        self.finished = Some(outcome);
    }
}
