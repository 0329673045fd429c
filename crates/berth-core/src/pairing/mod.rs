//! Pairing as plain data: its states, the steps of starting and stopping, the blockers that
//! refuse a start, the notices that pause a pairing, and the pure transition and crash-recovery
//! functions. The daemon gathers observations, feeds them in as [`Input`]s, writes each new
//! [`Intent`] to the store *before* carrying out the [`Action`]s it is given, and marks it done
//! after (SPEC §6.2: the intent journal).
//!
//! ```text
//!                    start                      begin_sync done
//! off ──────────▶ starting(step) ─────────────────────────▶ active{idle|pending|syncing}
//!  ▲                  │ failure, blocker, stop                  │ notice   ▲ last notice cleared
//!  │                  ▼                                         ▼          │ (full reconcile)
//!  ├──────────── rolling_back(undo)                          paused{notices}
//!  │                                                            │ stop: nothing changes,
//!  ├────────────────────────────────────────────────────────────┘ the snapshot is kept
//!  │                        stop (from active)
//!  └──────────── stopping(step) ◀── active
//!                     │ switch: final_sync, clean_checkout, then starting(validate) for the
//!                     └─────────  other agent, carrying the snapshot over
//! ```
//!
//! # Steps and their undo
//!
//! The steps of a start run in order ([`StartStep`]); a failure at step *k*, or a stop asked
//! while *k* ran, undoes steps `validate..=k` in reverse ([`rollback_plan`]): the step that
//! failed is undone too, because it may have done part of its work. Every [`Undo`] is
//! idempotent and a no-op when its step had no effect, so undoing a step that never really
//! happened is harmless.
//!
//! # Pausing
//!
//! Pausing is never manual: `active` becomes `paused` when a [`Notice`] is raised, and `paused`
//! becomes `active` only when the last notice is cleared — always followed by
//! [`Action::FullReconcile`]. At most one notice per [`Cause`] is held; raising a notice
//! replaces the one of the same cause (the user moved from `main` on to `dev`).
//!
//! # Crash recovery
//!
//! [`recover`] decides from the last journal entry what the daemon does on its next start; the
//! reasoning for every step is on that function.
//!
//! # Where each part lives
//!
//! - `steps`: the steps of a start and of a stop, their undo ([`Undo`], [`Step`]) and
//!   [`rollback_plan`].
//! - `operation`: a git [`Operation`] in progress (a blocker and a notice name it).
//! - `blocker`: the [`Blocker`]s that refuse a start.
//! - `notice`: the [`Notice`]s that pause a pairing, their [`Cause`]s and the [`Side`] they
//!   are on.
//! - `text`: wording the messages share ([`agent_branch`], plurals).
//! - `state`: the [`State`]s, the [`Input`]s, the [`Action`]s and the transition function
//!   [`next`].
//! - `reconnect`: the waits between tries to reach an agent elsewhere again
//!   ([`reconnect_after`]; the notice is [`Notice::ConnectionLost`]).
//! - `settings`: the time limit of a stop's final sync ([`stop_timeout`]).
//! - `validate`: every blocker from the [`Facts`] the daemon observed ([`blockers`]).
//! - `journal`: the intent journal's [`JournalEntry`] and crash recovery ([`recover`]).

mod blocker;
mod journal;
mod notice;
mod operation;
mod reconnect;
mod settings;
mod state;
mod steps;
mod text;
mod validate;

#[cfg(test)]
mod test_support;

pub use blocker::Blocker;
pub use journal::{Intent, JournalEntry, recover};
pub use notice::{Cause, Notice, Side};
pub use operation::Operation;
pub use reconnect::{RECONNECT_AT_MOST, RECONNECT_FIRST, reconnect_after};
pub use settings::{STOP_TIMEOUT, stop_timeout};
pub use state::{
    Action, Activity, Failure, Input, Outcome, Refusal, RollbackCause, State, StopFrom, Transition,
    next,
};
pub use steps::{StartStep, Step, StopStep, Undo, rollback_plan};
pub use text::agent_branch;
pub use validate::{Commits, Facts, blockers};
