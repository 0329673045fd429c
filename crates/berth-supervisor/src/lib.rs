//! berth's supervisor: what keeps agents and services alive, and what makes a stop complete.
//!
//! # Theory of operation
//!
//! Each agent or service runs under its own small *keeper* process, which starts the child in a
//! new session and process group and makes itself a child subreaper: every process of the
//! agent's tree that is orphaned — including a grandchild that called `setsid()` and
//! double-forked to escape its process group — is reparented to the keeper rather than to init.
//! So "every descendant of the keeper" is exactly the agent's process tree, and a stop is
//! complete only when that set is empty ([`tree`]).
//!
//! The daemon finds its keepers again after it restarts and trusts one only if both its pid and
//! its start time (from `/proc/<pid>/stat`) match what was recorded ([`tree::Identity`]), so a
//! recycled pid is never mistaken for the agent.

pub mod keeper;
pub mod logs;
pub mod probe;
pub mod tree;
