//! What a pairing shows: `pair status`, events, the running figures, and the words for how a
//! pairing ended.

use std::collections::VecDeque;

use berth_core::pairing::{Cause, Notice, Outcome, RollbackCause, Side, State, agent_branch};
use berth_proto::{PairLatency, PairNotice, PairStatus};
use berth_store::PairingRecord;

use super::controller::Controller;

/// Running figures for `pair status`.
#[derive(Debug, Default)]
pub(super) struct Figures {
    pub to_user: u64,
    pub to_agent: u64,
    pub commits_to_user: u64,
    pub commits_to_agent: u64,
    pub last_sync_ms: Option<i64>,
    pub rounds: VecDeque<f64>,
    /// Recent warnings (files skipped as too large, of another type, unreadable), newest last.
    pub warnings: VecDeque<String>,
}

/// How many recent warnings `pair status` lists.
const WARNINGS_KEPT: usize = 20;

impl Figures {
    /// Remembers a warning (once; the oldest go first).
    pub(super) fn warn(&mut self, w: String) {
        if self.warnings.contains(&w) {
            return;
        }
        self.warnings.push_back(w);
        while self.warnings.len() > WARNINGS_KEPT {
            self.warnings.pop_front();
        }
    }

    pub(super) fn latency(&self) -> Option<PairLatency> {
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

/// The status of an open pairing found at daemon start, until its controller has looked.
pub(super) fn recovering_status(rec: &PairingRecord) -> PairStatus {
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

impl Controller {
    pub(super) fn status(&self) -> PairStatus {
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
            warnings: self.figures.warnings.iter().cloned().collect(),
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

pub(super) fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Stopped => "stopped",
        Outcome::LeftAsIs => "left_as_is",
        Outcome::RolledBack { .. } => "rolled_back",
        Outcome::StopIncomplete { .. } => "stop_incomplete",
        Outcome::RollbackIncomplete { .. } => "rollback_incomplete",
    }
}

/// What happened, for the user, naming what is left where.
pub(super) fn outcome_message(o: &Outcome, rec: &PairingRecord) -> String {
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
