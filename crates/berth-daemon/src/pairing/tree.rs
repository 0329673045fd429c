//! The agent's tree of a pairing as the sync engine sees it: a directory here (the local
//! endpoint, `Scanner`) or the workspace of an agent elsewhere (`RemoteEndpoint`). One type
//! for both keeps the sync loop's code one; the engine's decisions never look at which it is.

use std::io::Read;
use std::sync::mpsc::Sender;

use berth_sync::apply::ApplyError;
use berth_sync::endpoint::Endpoint;
use berth_sync::reconcile::{Entry, Side};
use berth_sync::remote::{RemoteEndpoint, RemoteReader, RemoteWatch};
use berth_sync::scan::{ScanError, Scanner, Tree, Warning};
use berth_sync::watch::Input;

/// The agent's tree.
pub enum AgentTree {
    Here(Box<Scanner>),
    Far(Box<RemoteEndpoint>),
}

/// Its watch (held for its drop: dropping it stops watching).
#[expect(dead_code, reason = "held only to be dropped")]
pub enum AgentWatch {
    Here(<Scanner as Endpoint>::Watching),
    Far(RemoteWatch),
}

/// A file of it being read.
pub enum AgentReader<'a> {
    Here(<Scanner as Endpoint>::Reader<'a>),
    /// Boxed: it holds a whole chunk, and local reads should not pay for its size.
    Far(Box<RemoteReader<'a>>),
}

impl Read for AgentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            AgentReader::Here(r) => r.read(buf),
            AgentReader::Far(r) => r.read(buf),
        }
    }
}

/// `$call` on whichever endpoint the tree is.
macro_rules! either {
    ($tree:expr, $e:ident => $call:expr) => {
        match $tree {
            AgentTree::Here($e) => $call,
            AgentTree::Far($e) => $call,
        }
    };
}

impl Endpoint for AgentTree {
    type Watching = AgentWatch;
    type Reader<'a> = AgentReader<'a>;

    fn name(&self) -> String {
        either!(self, e => Endpoint::name(&**e))
    }

    fn full(&mut self) -> Result<(Tree, Vec<Warning>), ScanError> {
        either!(self, e => Endpoint::full(&mut **e))
    }

    fn under(&mut self, rel: &[u8]) -> Result<(Tree, Vec<Warning>), ScanError> {
        either!(self, e => Endpoint::under(&mut **e, rel))
    }

    fn root_is_empty(&mut self) -> Result<bool, ScanError> {
        either!(self, e => Endpoint::root_is_empty(&mut **e))
    }

    fn exclude(&mut self, patterns: &[String]) -> Result<(), ScanError> {
        either!(self, e => Endpoint::exclude(&mut **e, patterns))
    }

    fn forget_rules(&mut self) -> Result<(), ScanError> {
        either!(self, e => Endpoint::forget_rules(&mut **e))
    }

    fn is_echo(&mut self, rel: &[u8]) -> bool {
        either!(self, e => Endpoint::is_echo(&mut **e, rel))
    }

    fn read(&mut self, rel: &[u8]) -> Result<AgentReader<'_>, ApplyError> {
        match self {
            AgentTree::Here(e) => Endpoint::read(&mut **e, rel).map(AgentReader::Here),
            AgentTree::Far(e) => {
                Endpoint::read(&mut **e, rel).map(|r| AgentReader::Far(Box::new(r)))
            }
        }
    }

    fn apply(
        &mut self,
        rel: &[u8],
        entry: Option<&Entry>,
        content: Option<&mut dyn Read>,
    ) -> Result<Option<Entry>, ApplyError> {
        either!(self, e => Endpoint::apply(&mut **e, rel, entry, content))
    }

    fn watch(&mut self, side: Side, tx: Sender<Input>) -> std::io::Result<AgentWatch> {
        match self {
            AgentTree::Here(e) => Endpoint::watch(&mut **e, side, tx).map(AgentWatch::Here),
            AgentTree::Far(e) => Endpoint::watch(&mut **e, side, tx).map(AgentWatch::Far),
        }
    }

    fn heartbeat(&mut self) -> std::io::Result<()> {
        either!(self, e => Endpoint::heartbeat(&mut **e))
    }
}
