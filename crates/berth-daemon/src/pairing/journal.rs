//! The intent journal's entries as pairing writes and reads them: the state about to be acted
//! on, and while a switch runs, the agent it goes to (an extra field the core's `Intent`
//! ignores when read back).

use berth_core::pairing::{Intent, State};
use berth_store::{IntentRecord, PairingRecord};

/// An intent as journaled.
pub fn intent_json(intent: &Intent, switch_to: Option<&str>) -> String {
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

/// Where an open pairing resumes after a daemon restart.
#[derive(Debug)]
pub struct ResumePoint {
    /// The last intent journaled (or, without one, the recorded state).
    pub intent: Intent,
    /// Whether it was carried out.
    pub done: bool,
    /// The agent a switch in progress goes to (the handover after a recovered stop needs it).
    pub switch_to: Option<String>,
}

/// The resume point of `rec` whose last journal entry is `last`.
pub fn resume_point(rec: &PairingRecord, last: Option<&IntentRecord>) -> ResumePoint {
    let journaled = last.and_then(|l| {
        serde_json::from_str::<Intent>(&l.intent)
            .ok()
            .map(|i| (i, l.done()))
    });
    let (intent, done) = match journaled {
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
    ResumePoint {
        intent,
        done,
        switch_to: last.and_then(|l| switch_target(&l.intent)),
    }
}
