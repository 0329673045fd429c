//! The event recorder: how everything but the API's event routes writes to the event log.
//! Recording is best effort for the caller — a failure is logged, never returned — because an
//! event describes what already happened and must not undo or fail it.

use berth_store::Store;

/// A handle that appends events to the run's log.
#[derive(Debug, Clone)]
pub struct Recorder {
    store: Store,
}

impl Recorder {
    pub fn new(store: Store) -> Recorder {
        Recorder { store }
    }

    /// Appends an event about the daemon itself.
    pub fn record(&self, kind: &str, data: serde_json::Value) {
        self.append(kind, None, data);
    }

    /// Appends an event about a subject (an agent, a snapshot id).
    pub fn record_about(&self, kind: &str, subject: &str, data: serde_json::Value) {
        self.append(kind, Some(subject), data);
    }

    fn append(&self, kind: &str, subject: Option<&str>, data: serde_json::Value) {
        if let Err(e) = self.store.append(kind, subject, data) {
            tracing::error!("cannot record event {kind}: {e}");
        }
    }
}
