//! Where a tree is: the engine reads and writes each side through an [`Endpoint`], so nothing
//! it decides depends on whether a tree is a directory here ([`crate::scan::Scanner`], the local
//! endpoint) or across a byte stream ([`crate::remote::RemoteEndpoint`]).
//!
//! An endpoint scans (the whole tree or one subtree, keeping its own stat cache), hands out a
//! file's content ([`Endpoint::read`]), applies one entry atomically inside its root
//! ([`Endpoint::apply`], which also records berth's own write so its event is known as an
//! echo), watches the tree and sends heartbeats through that watch. The engine and the live
//! loop are generic over the endpoint types of both sides ([`crate::engine::Sides`]): the local
//! path is compiled as before, without a call through a pointer or an allocation per file.

use std::io::Read;
use std::sync::mpsc::Sender;

use crate::apply::ApplyError;
use crate::reconcile::{Entry, Side};
use crate::scan::{ScanError, Tree, Warning};
use crate::watch::Input;

/// One tree, wherever it is. `Send`: a full round scans both sides at once, one on a thread of
/// its own ([`crate::engine::Sides::scan_both`]).
pub trait Endpoint: Send {
    /// A running watch of the tree; dropping it stops watching.
    type Watching;
    /// A file's content being read ([`Endpoint::read`]).
    type Reader<'a>: Read
    where
        Self: 'a;

    /// The tree's name in messages (its path, or `host:path`).
    fn name(&self) -> String;

    /// The whole tree, with its ignore rules read afresh.
    fn full(&mut self) -> Result<(Tree, Vec<Warning>), ScanError>;

    /// `rel` and everything below it, as it is now.
    fn under(&mut self, rel: &[u8]) -> Result<(Tree, Vec<Warning>), ScanError>;

    /// Whether the root is gone, or holds nothing but `.git`.
    fn root_is_empty(&mut self) -> Result<bool, ScanError>;

    /// Adds extra exclusions (gitignore syntax) on top of the tree's own rules.
    fn exclude(&mut self, patterns: &[String]) -> Result<(), ScanError>;

    /// Forgets the ignore rules read so far (an ignore file changed).
    fn forget_rules(&mut self) -> Result<(), ScanError>;

    /// Whether an event on `rel` is only the echo of berth's own last write there.
    fn is_echo(&mut self, rel: &[u8]) -> bool;

    /// The content of the file at `rel`, to be copied to the other side.
    fn read(&mut self, rel: &[u8]) -> Result<Self::Reader<'_>, ApplyError>;

    /// Makes `rel` hold `entry` (`None`: nothing), a file's bytes read from `content`, and
    /// returns what it now holds (see [`crate::apply::apply`]). The write is recorded, so its
    /// event is recognised as an echo.
    fn apply(
        &mut self,
        rel: &[u8],
        entry: Option<&Entry>,
        content: Option<&mut dyn Read>,
    ) -> Result<Option<Entry>, ApplyError>;

    /// Starts watching the tree: its events reach `tx` as [`Input`]s for `side`. Everything is
    /// watched when this returns.
    fn watch(&mut self, side: Side, tx: Sender<Input>) -> std::io::Result<Self::Watching>;

    /// Sends a heartbeat through the watch ([`Input::Heartbeat`] comes back if it works).
    fn heartbeat(&mut self) -> std::io::Result<()>;
}

/// Copies `rel` as `entry` (`None`: removes it) from `source` to `target` and returns what
/// `target` now holds.
pub fn transfer<S: Endpoint, T: Endpoint>(
    source: &mut S,
    target: &mut T,
    rel: &[u8],
    entry: Option<&Entry>,
) -> Result<Option<Entry>, ApplyError> {
    match entry {
        Some(Entry::File { .. }) => {
            let mut content = source.read(rel)?;
            target.apply(rel, entry, Some(&mut content))
        }
        _ => target.apply(rel, entry, None),
    }
}
