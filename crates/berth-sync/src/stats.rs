//! What a round of syncing did: files written each way, conflicts, warnings.

use crate::scan::Warning;

/// What a reconcile did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub to_alpha: usize,
    pub to_beta: usize,
    pub conflicts: usize,
    pub warnings: Vec<Warning>,
}

impl Stats {
    /// Whether nothing was written to either side.
    pub fn is_quiet(&self) -> bool {
        self.to_alpha == 0 && self.to_beta == 0 && self.conflicts == 0
    }

    /// Adds another round's figures to these.
    pub fn absorb(&mut self, other: Stats) {
        self.to_alpha += other.to_alpha;
        self.to_beta += other.to_beta;
        self.conflicts += other.conflicts;
        self.warnings.extend(other.warnings);
    }
}
