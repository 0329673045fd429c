//! Agents' webhooks: a hook is a name, a secret and an optional template; a delivery
//! (`POST /hooks/<agent>/<hook>` on a TCP listener, no bearer token) is queued in the agent's
//! inbox only if its body is signed with the secret (`berth_core::hook::verify`, constant time),
//! with its delivery id as the item's idempotency key. What makes a delivery acceptable is
//! `berth_core::hook`'s; here are the store, the agent and the inbox.
//!
//! A URL names an agent but not its project: every hook of that agent and name, in any project,
//! is tried, and the one whose secret verifies the signature is the one meant. A secret is never
//! logged nor put in an event; it is shown once, when the hook is made.

use std::io::Read;

use berth_core::hook::{self, TemplateError};
use berth_core::inbox::{self, Priority, Undeliverable};
use berth_store::{AgentRecord, HookRecord, ItemRecord, Store, StoreError};

use crate::clock::now_ms;
use crate::inbox::{Inbox, SendError};
use crate::recorder::Recorder;

/// The `webhook` source of an inbox item.
pub const SOURCE_WEBHOOK: &str = "webhook";
/// Random bytes in a secret.
const SECRET_BYTES: usize = 32;

/// Why a hook was not made.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("{0}; no hook was added")]
    Name(String),
    #[error("{0}; no hook was added")]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Undeliverable(#[from] Undeliverable),
    #[error("{agent} has a hook named {hook} already")]
    Exists { agent: String, hook: String },
    #[error("cannot make a secret: {0}")]
    Secret(std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a delivery was not queued.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("the request has no X-Hub-Signature-256 header; nothing was queued")]
    Unsigned,
    #[error("the signature does not match the body under this hook's secret; nothing was queued")]
    BadSignature,
    #[error("the agent of this hook was removed; nothing was queued")]
    Gone,
    #[error("the body is not {0}; nothing was queued")]
    Body(&'static str),
    #[error(transparent)]
    Send(#[from] SendError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The daemon's webhooks. A cheap handle.
#[derive(Debug, Clone)]
pub struct Hooks {
    store: Store,
    events: Recorder,
    inbox: Inbox,
}

/// A new secret: random bytes from the kernel, as hex.
fn new_secret() -> std::io::Result<String> {
    let mut bytes = [0u8; SECRET_BYTES];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hook::hex(&bytes))
}

impl Hooks {
    pub fn new(store: Store, events: Recorder, inbox: Inbox) -> Hooks {
        Hooks {
            store,
            events,
            inbox,
        }
    }

    /// Makes a hook for the agent, with a new secret.
    pub fn add(
        &self,
        rec: &AgentRecord,
        name: &str,
        template: Option<&str>,
    ) -> Result<HookRecord, AddError> {
        berth_core::names::validate(name).map_err(|e| AddError::Name(e.to_string()))?;
        if let Some(t) = template {
            hook::check_template(t)?;
        }
        inbox::mode(&rec.name, rec.turn.is_some(), rec.tty)?;
        let h = HookRecord {
            project_id: rec.project_id,
            agent: rec.name.clone(),
            name: name.to_string(),
            agent_created_ms: rec.created_ms,
            secret: new_secret().map_err(AddError::Secret)?,
            template: template.map(str::to_string),
            created_ms: now_ms(),
        };
        if !self.store.hook_add(&h)? {
            return Err(AddError::Exists {
                agent: rec.name.clone(),
                hook: name.to_string(),
            });
        }
        self.events
            .record_about("hook.added", &rec.name, serde_json::json!({ "hook": name }));
        Ok(h)
    }

    /// Removes a hook; returns it as it was, `None` if the agent has none of that name.
    pub fn remove(&self, rec: &AgentRecord, name: &str) -> Result<Option<HookRecord>, StoreError> {
        let found = self
            .store
            .hooks(rec.project_id, Some(&rec.name))?
            .into_iter()
            .find(|h| h.name == name);
        let removed = found.is_some() && self.store.hook_remove(rec.project_id, &rec.name, name)?;
        if removed {
            self.events.record_about(
                "hook.removed",
                &rec.name,
                serde_json::json!({ "hook": name }),
            );
        }
        Ok(found.filter(|_| removed))
    }

    /// Queues a delivery to `agent`'s hook `name`: `signature` must be the body's, under the
    /// hook's secret; `delivery` (the sender's id) makes a second delivery of it a no-op.
    /// Returns the item and whether it is new.
    pub fn deliver(
        &self,
        agent: &str,
        name: &str,
        signature: Option<&str>,
        delivery: Option<&str>,
        body: &[u8],
    ) -> Result<(ItemRecord, bool), DeliverError> {
        let signature = signature.ok_or(DeliverError::Unsigned)?;
        let h = self
            .store
            .hooks_named(agent, name)?
            .into_iter()
            .find(|h| hook::verify(&h.secret, body, signature))
            .ok_or(DeliverError::BadSignature)?;
        let rec = self
            .store
            .agent(h.project_id, &h.agent)?
            .filter(|r| r.created_ms == h.agent_created_ms)
            .ok_or(DeliverError::Gone)?;
        let text = match &h.template {
            None => std::str::from_utf8(body)
                .map_err(|_| DeliverError::Body("UTF-8 text"))?
                .to_string(),
            Some(t) => {
                let payload: serde_json::Value =
                    serde_json::from_slice(body).map_err(|_| DeliverError::Body("JSON"))?;
                // Checked when the hook was made.
                hook::render(t, &payload).map_err(|_| DeliverError::Body("usable"))?
            }
        };
        let key = delivery.and_then(|d| hook::delivery_key(name, d));
        let sent = self.inbox.send(
            &rec,
            &text,
            key.as_deref(),
            Priority::Normal,
            SOURCE_WEBHOOK,
        )?;
        Ok(sent)
    }
}
