//! What a pairing writes to the event log: every event is about the agent and names the
//! pairing and the checkout.

use berth_store::PairingRecord;

use crate::recorder::Recorder;

/// Records `kind` for the pairing `rec`.
pub fn record(events: &Recorder, rec: &PairingRecord, kind: &str, mut data: serde_json::Value) {
    if let Some(obj) = data.as_object_mut() {
        obj.insert("pairing".into(), rec.id.clone().into());
        obj.insert("repo".into(), rec.project_root.clone().into());
    }
    events.record_about(kind, &rec.agent, data);
}
