//! Model-based test of the engine: random edits on both trees (files, links, directories, file
//! ↔ directory, deletions, renames, chmod), interleaved with full rounds, rounds over just the paths
//! that changed (what the watcher asks for), and restarts from the ancestor persisted in a real
//! store. After every round both trees are equal, every alpha edit stands exactly as made, and
//! every beta edit either stands or was handed to the keeper.

// An integration test: its helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod world;

use berth_sync::scan::Scanner;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_edits_on_both_sides_converge_without_losing_anything(ops in proptest::collection::vec(world::op(), 1..40)) {
        world::run(world::World::new(|beta| Scanner::new(beta, u64::MAX)), &ops)?;
    }
}
