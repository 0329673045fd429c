//! The crate graph is the architecture: every internal dependency edge (normal or build, not
//! dev) must be the one `ARCHITECTURE.md`'s crate table lists, and the layering rules of
//! SPEC §9 must hold. A new edge fails here until it is argued for in the document.

// An integration test: its helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

type Graph = BTreeMap<String, BTreeSet<String>>;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// Internal edges as cargo resolves them, dev-dependencies left out (tests may reach anywhere).
fn cargo_graph(root: &Path) -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let names: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].as_str() != Some("dev"))
                .map(|d| d["name"].as_str().unwrap().to_string())
                .filter(|n| names.contains(n))
                .collect();
            (p["name"].as_str().unwrap().to_string(), deps)
        })
        .collect()
}

/// The crate table of ARCHITECTURE.md: `| \`crate\` | role | deps |`, deps by short name
/// (`core` for `berth-core`) or `—` for none.
fn documented_graph(root: &Path) -> Graph {
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut graph = Graph::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // ["", "`name`", role, deps, ""]
        if cells.len() != 5 || !cells[1].starts_with("`berth") {
            continue;
        }
        let name = cells[1].split('`').nth(1).unwrap();
        let deps = cells[3]
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty() && *d != "—")
            .map(|d| format!("berth-{d}"))
            .collect();
        graph.insert(name.to_string(), deps);
    }
    graph
}

#[test]
fn every_internal_dependency_edge_is_the_documented_one() {
    let root = workspace_root();
    let actual = cargo_graph(&root);
    let documented = documented_graph(&root);
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        documented.keys().collect::<Vec<_>>(),
        "every crate has a row in ARCHITECTURE.md's crate table"
    );
    let mut wrong = Vec::new();
    for (krate, deps) in &actual {
        let listed = &documented[krate];
        for extra in deps.difference(listed) {
            wrong.push(format!(
                "{krate} → {extra} exists but is not in ARCHITECTURE.md"
            ));
        }
        for gone in listed.difference(deps) {
            wrong.push(format!(
                "{krate} → {gone} is in ARCHITECTURE.md but not in Cargo.toml"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_layers_of_spec_9_hold() {
    let actual = cargo_graph(&workspace_root());
    let deps = |k: &str| actual[k].iter().map(String::as_str).collect::<Vec<_>>();
    for pure in ["berth-proto", "berth-core"] {
        assert!(deps(pure).is_empty(), "{pure} depends on {:?}", deps(pure));
    }
    for leaf in ["berth-store", "berth-git", "berth-sync", "berth-supervisor"] {
        let reach: Vec<&str> = deps(leaf)
            .into_iter()
            .filter(|d| !matches!(*d, "berth-core" | "berth-proto"))
            .collect();
        assert!(reach.is_empty(), "{leaf} depends on {reach:?}");
    }
    let cli_reach: Vec<&str> = deps("berth")
        .into_iter()
        .filter(|d| {
            !matches!(
                *d,
                "berth-core" | "berth-proto" | "berth-client" | "berth-control" | "berth-daemon"
            )
        })
        .collect();
    assert!(
        cli_reach.is_empty(),
        "the CLI reaches {cli_reach:?} directly"
    );
}
