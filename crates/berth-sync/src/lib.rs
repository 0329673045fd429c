//! berth's sync engine: two trees (alpha, the user's; beta, the agent's) kept identical, live,
//! without ever losing an edit.
//!
//! # Theory of operation
//!
//! Every path is reconciled three ways: its state in the *ancestor* (what both sides last
//! agreed on, persisted so restarts cause no false conflicts), in alpha and in beta
//! ([`reconcile`]). A side that did not change since the ancestor takes the other side's
//! change; when both changed, alpha (the user) wins and beta's version is handed to a keeper so
//! nothing is lost — except that a deletion never beats a modification. Scanning
//! ([`scan`], with the tree's own ignore rules: [`ignores`]), applying ([`apply`]: atomic, never
//! outside the root) and watching ([`watch`]) are the I/O around this pure decision; [`engine`]
//! runs one round over everything or over the paths that changed, and [`live`] keeps two trees
//! in step as they change, a few milliseconds apart, whatever their size.

pub mod ancestor;
pub mod apply;
pub mod engine;
mod failpoint;
pub mod gate;
pub mod ignores;
pub mod live;
pub mod reconcile;
pub mod relpath;
pub mod scan;
pub mod watch;
