//! What a run serves requests with once its storage is prepared. Each member is a cheap handle
//! (clones share one thing), made here once: the supervisor and the pairings are given the
//! store, the event recorder and the git lock they work with, and the API passes on just the
//! handle a request needs (`berth up`, which defines and starts several agents, gets them all).
//! No module but `serve` and the API sees the run as a whole ([`crate::state::Shared`]).

use berth_core::home::Home;
use berth_store::Store;

use crate::agents::Supervisor;
use crate::git_lock::GitLock;
use crate::hooks::Hooks;
use crate::inbox::Inbox;
use crate::pairing::Pairings;
use crate::recorder::Recorder;
use crate::timers::Timers;

/// The run's handles, available from the moment its store is open.
#[derive(Debug, Clone)]
pub struct Services {
    pub home: Home,
    pub store: Store,
    pub events: Recorder,
    /// Serialises git operations that change repositories.
    pub git: GitLock,
    /// Agents under supervision.
    pub agents: Supervisor,
    /// Agents' inboxes and the workers that deliver them.
    pub inbox: Inbox,
    /// Agents' timers and the task that fires them.
    pub timers: Timers,
    /// Agents' webhooks.
    pub hooks: Hooks,
    /// Open pairings, by project root.
    pub pairings: Pairings,
}

impl Services {
    pub fn new(home: Home, store: Store) -> Services {
        let events = Recorder::new(store.clone());
        let git = GitLock::default();
        let agents = Supervisor::new(&home, store.clone(), events.clone(), git.clone());
        let inbox = Inbox::new(store.clone(), events.clone(), agents.clone());
        Services {
            timers: Timers::new(store.clone(), events.clone(), inbox.clone()),
            hooks: Hooks::new(store.clone(), events.clone(), inbox.clone()),
            inbox,
            agents,
            pairings: Pairings::new(store.clone(), events.clone(), git.clone()),
            home,
            store,
            events,
            git,
        }
    }
}
