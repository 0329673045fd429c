//! Agents' timers fired: one task sleeps until the earliest next fire (at most
//! 30 s, so a changed wall clock or a suspended machine is noticed), then fires every
//! timer that is due. When a timer fires and what comes next is `berth_core::timer`'s; a fire
//! moves the timer on and queues its message, with the fire's idempotency key, in one
//! transaction (`Store::timer_fire`), so a fire is queued once even if the daemon dies halfway.
//! A timer due while the daemon was down fires once when it starts again, and then goes on
//! from the present.
//!
//! A timer belongs to its agent as it was when the timer was made (its `created_ms`): an agent
//! removed takes its timers with it, at the next fire (an agent made again under the same name
//! does not inherit them).

use std::sync::Arc;
use std::time::Duration;

use berth_core::inbox::{self, MessageError, Priority, Undeliverable};
use berth_core::timer::{self, Schedule, Timer, TimerError};
use berth_store::{AgentRecord, NewItem, Store, StoreError, TimerRecord};
use tokio::sync::Notify;

use crate::clock::now_ms;
use crate::inbox::{Inbox, queued_event};
use crate::recorder::Recorder;

/// The longest the task sleeps before it looks at the clock again.
const LOOK_AGAIN: Duration = Duration::from_secs(30);
/// The `timer` source of an inbox item.
pub const SOURCE_TIMER: &str = "timer";

/// Why a timer was not made.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("{0}; no timer was added")]
    Invalid(#[from] TimerError),
    #[error(transparent)]
    Undeliverable(#[from] Undeliverable),
    #[error("{0}; no timer was added")]
    Message(#[from] MessageError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The daemon's timers: adding, removing, and the task that fires them. A cheap handle.
#[derive(Debug, Clone)]
pub struct Timers {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    events: Recorder,
    inbox: Inbox,
    /// Wakes the task: the earliest fire may have changed.
    changed: Notify,
}

/// The time zone of the machine the daemon runs on, by name (UTC if it has none).
pub fn local_zone() -> String {
    jiff::tz::TimeZone::system()
        .iana_name()
        .unwrap_or("UTC")
        .to_string()
}

/// A stored timer as `berth_core::timer` computes with it.
fn timer_of(t: &TimerRecord) -> Result<Timer, TimerError> {
    Ok(Timer {
        schedule: Schedule::parse(&t.kind, &t.spec)?,
        zone: timer::zone(&t.zone)?,
        anchor_ms: t.anchor_ms,
    })
}

impl Timers {
    pub fn new(store: Store, events: Recorder, inbox: Inbox) -> Timers {
        Timers {
            inner: Arc::new(Inner {
                store,
                events,
                inbox,
                changed: Notify::new(),
            }),
        }
    }

    /// Starts the task that fires timers (once per daemon run, after recovery). Timers missed
    /// while the daemon was down fire at once.
    pub fn start(&self) {
        tokio::spawn(self.clone().run());
    }

    /// Adds a timer that queues `message` for the agent (checked as a send would be), first
    /// firing after `now_ms`.
    pub fn add(
        &self,
        rec: &AgentRecord,
        kind: &str,
        spec: &str,
        zone: &str,
        message: &str,
    ) -> Result<TimerRecord, AddError> {
        let mode = inbox::mode(&rec.name, rec.turn.is_some(), rec.tty)?;
        inbox::check_message(message, None, mode)?;
        let now = now_ms();
        let t = Timer {
            schedule: Schedule::parse(kind, spec)?,
            zone: timer::zone(zone)?,
            anchor_ms: now,
        };
        let next = t.first(now)?;
        let added = self.inner.store.timer_add(&TimerRecord {
            id: 0,
            project_id: rec.project_id,
            agent: rec.name.clone(),
            agent_created_ms: rec.created_ms,
            kind: t.schedule.kind().to_string(),
            spec: t.schedule.text(),
            zone: zone.to_string(),
            message: message.to_string(),
            anchor_ms: now,
            next_ms: Some(next),
            fired: 0,
            last_fired_ms: None,
            created_ms: now,
        })?;
        self.inner.events.record_about(
            "timer.added",
            &rec.name,
            serde_json::json!({ "timer": added.id, "kind": added.kind, "spec": added.spec,
                                "zone": added.zone, "next_ms": next }),
        );
        self.inner.changed.notify_one();
        Ok(added)
    }

    /// Removes a timer; `None` if there is none with that id.
    pub fn remove(&self, id: i64) -> Result<Option<TimerRecord>, StoreError> {
        let removed = self.inner.store.timer_remove(id)?;
        if let Some(t) = &removed {
            self.inner.events.record_about(
                "timer.removed",
                &t.agent,
                serde_json::json!({ "timer": t.id }),
            );
            self.inner.changed.notify_one();
        }
        Ok(removed)
    }

    async fn run(self) {
        loop {
            let now = now_ms();
            if let Err(e) = self.fire_due(now) {
                tracing::error!("cannot fire timers: {e}");
            }
            let wait = match self.inner.store.timers_earliest() {
                Ok(Some(next)) => {
                    Duration::from_millis(u64::try_from(next.saturating_sub(now_ms())).unwrap_or(0))
                        .min(LOOK_AGAIN)
                }
                Ok(None) => LOOK_AGAIN,
                Err(e) => {
                    tracing::error!("cannot read timers: {e}");
                    LOOK_AGAIN
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.inner.changed.notified() => {}
            }
        }
    }

    /// Fires every timer due at `now`.
    fn fire_due(&self, now: i64) -> Result<(), StoreError> {
        let store = &self.inner.store;
        for t in store.timers_due(now)? {
            let Some(next_ms) = t.next_ms else { continue };
            let owner = store.agent(t.project_id, &t.agent)?;
            if owner.is_none_or(|a| a.created_ms != t.agent_created_ms) {
                store.timer_remove(t.id)?;
                self.inner.events.record_about(
                    "timer.removed",
                    &t.agent,
                    serde_json::json!({ "timer": t.id, "reason": "its agent was removed" }),
                );
                continue;
            }
            let timer = match timer_of(&t) {
                Ok(timer) => timer,
                Err(e) => {
                    // Its zone left the time zone database, say: it can never fire again.
                    store.timer_remove(t.id)?;
                    self.inner.events.record_about(
                        "timer.removed",
                        &t.agent,
                        serde_json::json!({ "timer": t.id, "reason": e.to_string() }),
                    );
                    continue;
                }
            };
            let Some(fire) = timer.due(next_ms, now) else {
                continue;
            };
            let key = timer::fire_key(t.id, fire.scheduled_ms);
            let fired = store.timer_fire(
                t.id,
                fire.scheduled_ms,
                fire.next_ms,
                &NewItem {
                    project_id: t.project_id,
                    agent: &t.agent,
                    text: &t.message,
                    source: SOURCE_TIMER,
                    priority: Priority::Normal.rank(),
                    key: Some(&key),
                    now_ms: now,
                },
                queued_event,
            )?;
            if let Some((item, new)) = fired {
                self.inner.events.record_about(
                    "timer.fired",
                    &t.agent,
                    serde_json::json!({ "timer": t.id, "item": item.id,
                                        "scheduled_ms": fire.scheduled_ms,
                                        "late_ms": now - fire.scheduled_ms,
                                        "next_ms": fire.next_ms }),
                );
                if new {
                    self.inner.inbox.queued(&item);
                }
            }
        }
        Ok(())
    }
}
