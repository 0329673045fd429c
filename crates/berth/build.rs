//! Links the `berth` executable as non-PIE: loaded at a fixed address, it needs none of the
//! ~13,000 run-time relocations a position-independent build makes the dynamic loader apply at
//! every start, and every CLI command pays its start-up (see bench/results/daemon.md).

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
