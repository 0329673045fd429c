//! The status view: what `pair status` shows of a pairing — its state and notices, the
//! running figures (files and commits carried, round latency), the conflicts kept and recent
//! warnings — published for the API after every change.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_core::pairing::{Cause, Notice, Side, State, agent_branch};
use berth_proto::{PairConflict, PairLatency, PairLink, PairNotice, PairStatus};
use berth_store::PairingRecord;

use super::notices::notices_of;

/// How many recent warnings `pair status` lists.
const WARNINGS_KEPT: usize = 20;
/// How many recent round times the latency figures are taken from.
const LATENCY_SAMPLES: usize = 200;

/// What the view is told.
#[derive(Debug)]
pub enum Seen {
    /// A round of the sync loop went through.
    Synced {
        to_user: u64,
        to_agent: u64,
        took: Duration,
        at_ms: i64,
    },
    /// The first copy of a start brought this many files to the user.
    Copied(u64),
    /// Commits were carried.
    Commits { to_user: u64, to_agent: u64 },
    /// A file was skipped (too large, of another type, unreadable).
    Warning(String),
    /// A conflict's losing version was kept.
    Kept(PairConflict),
    /// The conflicts kept so far (a recovered pairing reads them from the workspace).
    AllKept(Vec<PairConflict>),
    /// The link to an agent elsewhere, as last measured.
    Link(PairLink),
    /// Another pairing took over the checkout: figures start again.
    Switched,
}

/// One pairing's status, as the controller keeps it and the API reads it.
#[derive(Debug)]
pub struct StatusView {
    root: String,
    to_user: u64,
    to_agent: u64,
    commits_to_user: u64,
    commits_to_agent: u64,
    last_sync_ms: Option<i64>,
    rounds: VecDeque<f64>,
    /// Recent warnings, newest last.
    warnings: VecDeque<String>,
    conflicts: Vec<PairConflict>,
    link: Option<PairLink>,
    /// Where the API reads it.
    published: Arc<Mutex<PairStatus>>,
}

impl StatusView {
    pub fn new(root: &str, published: Arc<Mutex<PairStatus>>) -> StatusView {
        StatusView {
            root: root.to_string(),
            to_user: 0,
            to_agent: 0,
            commits_to_user: 0,
            commits_to_agent: 0,
            last_sync_ms: None,
            rounds: VecDeque::new(),
            warnings: VecDeque::new(),
            conflicts: Vec::new(),
            link: None,
            published,
        }
    }

    /// The status of an open pairing found at daemon start, until its controller has looked.
    pub fn recovering(rec: &PairingRecord) -> PairStatus {
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

    pub fn note(&mut self, seen: Seen) {
        match seen {
            Seen::Synced {
                to_user,
                to_agent,
                took,
                at_ms,
            } => {
                self.to_user += to_user;
                self.to_agent += to_agent;
                self.last_sync_ms = Some(at_ms);
                if to_user + to_agent > 0 {
                    self.rounds.push_back(took.as_secs_f64() * 1000.0);
                    while self.rounds.len() > LATENCY_SAMPLES {
                        self.rounds.pop_front();
                    }
                }
            }
            Seen::Copied(n) => self.to_user += n,
            Seen::Commits { to_user, to_agent } => {
                self.commits_to_user += to_user;
                self.commits_to_agent += to_agent;
            }
            Seen::Warning(w) => {
                if self.warnings.contains(&w) {
                    return;
                }
                self.warnings.push_back(w);
                while self.warnings.len() > WARNINGS_KEPT {
                    self.warnings.pop_front();
                }
            }
            Seen::Kept(c) => self.conflicts.push(c),
            Seen::AllKept(all) => self.conflicts = all,
            Seen::Link(link) => self.link = Some(link),
            Seen::Switched => {
                *self = StatusView::new(&self.root, self.published.clone());
            }
        }
    }

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

    /// The status of the pairing `rec` in `state`, with the agent's workspace at `workspace`.
    pub fn status(&self, state: &State, rec: &PairingRecord, workspace: &Path) -> PairStatus {
        if matches!(state, State::Off) {
            return PairStatus::off(&self.root);
        }
        PairStatus {
            repo: self.root.clone(),
            state: state.name().into(),
            describe: state.describe(),
            step: state.step().map(|s| s.qualified_name()),
            pairing: Some(rec.id.clone()),
            agent: Some(rec.agent.clone()),
            branch: Some(agent_branch(&rec.agent)),
            agent_workspace: Some(workspace.display().to_string()),
            original_branch: rec
                .original_branch
                .as_deref()
                .map(|b| b.strip_prefix("refs/heads/").unwrap_or(b).to_string()),
            snapshot: rec.snapshot.clone(),
            notices: notices_of(state)
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
            warnings: self.warnings.iter().cloned().collect(),
            last_sync_ms: self.last_sync_ms,
            latency: self.latency(),
            to_user: self.to_user,
            to_agent: self.to_agent,
            commits_to_user: self.commits_to_user,
            commits_to_agent: self.commits_to_agent,
            link: self.link.clone(),
        }
    }

    /// Makes the status of `rec` in `state` what the API reads.
    pub fn publish(&self, state: &State, rec: &PairingRecord, workspace: &Path) {
        let s = self.status(state, rec, workspace);
        *self.published.lock().unwrap_or_else(|p| p.into_inner()) = s;
    }
}

fn notice_side(n: &Notice) -> Option<Side> {
    match n.cause() {
        Cause::Operation(s) | Cause::Root(s) | Cause::Watch(s) | Cause::Write(s) => Some(s),
        Cause::UserBranch => Some(Side::User),
        Cause::AgentBranch | Cause::AgentWorkspace | Cause::AgentBranchGone | Cause::Link => {
            Some(Side::Agent)
        }
        Cause::Diverged | Cause::Unexpected | Cause::SyncUnanswered | Cause::Revalidating => None,
    }
}
