//! The local endpoint: a directory on this machine, scanned by a [`Scanner`], written by
//! [`crate::apply`], watched by [`crate::watch`].

use std::fs::File;
use std::io::Read;
use std::sync::mpsc::Sender;

use crate::apply::{self, ApplyError};
use crate::endpoint::Endpoint;
use crate::reconcile::{Entry, Side};
use crate::relpath;
use crate::scan::{ScanError, Scanner, Tree, Warning};
use crate::watch::{self, Input, Watch};

impl Endpoint for Scanner {
    type Watching = Watch;
    type Reader<'a> = File;

    fn name(&self) -> String {
        self.root().display().to_string()
    }

    fn full(&mut self) -> Result<(Tree, Vec<Warning>), ScanError> {
        Scanner::full(self)
    }

    fn under(&mut self, rel: &[u8]) -> Result<(Tree, Vec<Warning>), ScanError> {
        Ok(Scanner::under(self, rel))
    }

    fn root_is_empty(&mut self) -> Result<bool, ScanError> {
        Ok(Scanner::root_is_empty(self))
    }

    fn exclude(&mut self, patterns: &[String]) -> Result<(), ScanError> {
        Scanner::exclude(self, patterns).map_err(|e| ScanError {
            root: self.name(),
            error: e.to_string(),
        })
    }

    fn forget_rules(&mut self) -> Result<(), ScanError> {
        Scanner::forget_rules(self);
        Ok(())
    }

    fn is_echo(&mut self, rel: &[u8]) -> bool {
        Scanner::is_echo(self, rel)
    }

    fn read(&mut self, rel: &[u8]) -> Result<File, ApplyError> {
        let path = relpath::absolute(self.root(), rel);
        File::open(&path).map_err(|source| ApplyError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    fn apply(
        &mut self,
        rel: &[u8],
        entry: Option<&Entry>,
        content: Option<&mut dyn Read>,
    ) -> Result<Option<Entry>, ApplyError> {
        let written = apply::apply(self.root(), rel, entry, content)?;
        self.wrote(rel, written.as_ref());
        Ok(written)
    }

    fn watch(&mut self, side: Side, tx: Sender<Input>) -> std::io::Result<Watch> {
        watch::watch(self.root(), side, tx)
    }

    fn heartbeat(&mut self) -> std::io::Result<()> {
        // The heartbeat comes while the tree is idle too: what no event came for goes then.
        self.forget_old_writes(crate::scan::now_ns());
        watch::touch_root(self.root())
    }
}
