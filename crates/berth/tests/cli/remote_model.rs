//! The sync engine's model-based test (`crates/berth-sync/tests/model.rs`) with beta remote:
//! every round reaches beta through the protocol, over the pipes of a real `berth __endpoint`
//! process (a new one at every restart of the model). The same invariants hold: both trees
//! equal after every round, alpha's edits as made, beta's in beta or kept.

use std::process::Command;

use berth_sync::remote::RemoteEndpoint;
use proptest::prelude::*;

#[path = "../../../berth-sync/tests/world/mod.rs"]
mod world;

fn endpoint(beta: &std::path::Path) -> RemoteEndpoint {
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    command.arg("__endpoint").arg(beta);
    RemoteEndpoint::spawn("beta (berth __endpoint)", command, u64::MAX).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn random_edits_converge_with_beta_behind_a_real_endpoint(ops in proptest::collection::vec(world::op(), 1..40)) {
        world::run(world::World::new(endpoint), &ops)?;
    }
}
