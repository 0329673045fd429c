//! One module per command group.

pub mod agent;
pub mod attach;
pub mod completions;
pub mod compose;
pub mod daemon;
pub mod debug_sync;
pub mod demo;
pub mod doctor;
pub mod events;
pub mod hook;
pub mod inbox;
pub mod logs;
pub mod man;
pub mod pair;
pub mod serve;
pub mod stash;
pub mod status;
pub mod timer;
pub mod turns;
pub mod web;
