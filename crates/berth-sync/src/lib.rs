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
//!
//! The engine reaches each tree through an [`endpoint::Endpoint`]: a directory here (the
//! [`scan::Scanner`], see [`local`]) or one served by `berth __endpoint` across any byte stream
//! (ssh, a pipe: [`remote`], which holds the versioned, framed protocol and both of its ends).

pub mod ancestor;
pub mod apply;
pub mod endpoint;
pub mod engine;
pub mod failpoint;
pub mod gate;
pub mod ignores;
pub mod live;
mod local;
pub mod pathmap;
pub mod reconcile;
pub mod relpath;
pub mod remote;
pub mod scan;
pub mod stats;
pub mod watch;
