//! Re-opening a pairing at daemon start from its intent journal.

use berth_core::pairing::{Intent, State, recover};
use berth_proto::PairConflict;
use berth_store::PairingRecord;

use super::controller::{Controller, now_ms};
use super::keeper::conflicts_prefix;

impl Controller {
    pub(super) fn recover(&mut self, rec: PairingRecord) {
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
    pub(super) fn kept_conflicts(&self) -> Vec<PairConflict> {
        let prefix = conflicts_prefix(&self.rec.id);
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
}

/// An intent as journaled: the state, and while a switch runs, the agent it goes to (an
/// extra field the core's `Intent` ignores when read back).
pub(super) fn intent_json(intent: &Intent, switch_to: Option<&str>) -> String {
    let mut v = serde_json::to_value(intent).unwrap_or_default();
    if let (Some(agent), Some(obj)) = (switch_to, v.as_object_mut()) {
        obj.insert("switch_to".into(), agent.into());
    }
    v.to_string()
}

/// The agent a journaled intent's switch goes to.
pub(super) fn switch_target(intent: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(intent).ok()?;
    v.get("switch_to")?.as_str().map(str::to_string)
}

/// The path a kept conflict's commit subject names.
pub(super) fn kept_path(subject: &str) -> Option<&str> {
    subject
        .strip_prefix("berth: kept the agent's version of ")?
        .strip_suffix(" (conflict)")
}
