//! The dependency graph of a `berth.toml`: in which order `berth up` starts processes and
//! `berth down` stops them.
//!
//! [`plan`] groups the processes into levels: level 0 holds processes without dependencies, and
//! every later level holds processes whose dependencies all sit in earlier levels (each process is
//! in the earliest level it can be). `berth up` starts the levels in order, the processes within a
//! level concurrently, waiting for each dependency's condition (`started`, `ready`,
//! `completed`) before starting a dependent; `berth down` walks the levels in reverse
//! ([`dependents_first`]).
//!
//! When a process fails, `berth up` goes on with everything that does not depend on it:
//! [`blocked_by`] says which processes are skipped, naming the failures they waited for. When
//! `berth down` has an overall timeout, [`grace_within`] shortens each process's grace period
//! so that every level still gets its stop signal first.
//!
//! A cycle is reported with its path, `a -> b -> c -> a` meaning `a` depends on `b`, which
//! depends on `c`, which depends on `a`. The walk is iterative, so no input can exhaust the stack.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::project::ProjectFile;

/// Start order: `levels[0]` first; names within a level are sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub levels: Vec<Vec<String>>,
}

impl Plan {
    /// Every process in the plan, in start order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.levels.iter().flatten().map(String::as_str)
    }
}

/// Why no plan exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepsError {
    #[error("unknown agent or service {0:?}")]
    UnknownTarget(String),
    /// Only possible for a hand-built [`ProjectFile`]: [`crate::project::parse`] rejects it.
    #[error("{name:?} depends on {dependency:?}, which is neither an agent nor a service")]
    UnknownDependency { name: String, dependency: String },
    /// `path` starts and ends with the same name; it starts at the cycle's smallest name.
    #[error("dependency cycle: {}", path.join(" -> "))]
    Cycle { path: Vec<String> },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// On the walk's stack.
    Open,
    /// Finished, at this level.
    Done(usize),
}

/// Plans `targets` (all processes when empty) and, transitively, what they depend on.
pub fn plan(project: &ProjectFile, targets: &[String]) -> Result<Plan, DepsError> {
    let graph: BTreeMap<&str, Vec<&str>> = project
        .all()
        .map(|p| {
            let deps: BTreeSet<&str> = p.depends_on.iter().map(|d| d.name.as_str()).collect();
            (p.name.as_str(), deps.into_iter().collect())
        })
        .collect();

    let roots: Vec<&str> = if targets.is_empty() {
        graph.keys().copied().collect()
    } else {
        let mut roots = BTreeSet::new();
        for target in targets {
            match graph.get_key_value(target.as_str()) {
                Some((name, _)) => roots.insert(*name),
                None => return Err(DepsError::UnknownTarget(target.clone())),
            };
        }
        roots.into_iter().collect()
    };

    let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
    for root in roots {
        if marks.contains_key(root) {
            continue;
        }
        // Depth-first, with an explicit stack of (process, index of the next dependency).
        let mut stack: Vec<(&str, usize)> = vec![(root, 0)];
        marks.insert(root, Mark::Open);
        while let Some((node, next)) = stack.last_mut() {
            let node: &str = node;
            let deps = graph.get(node).map(Vec::as_slice).unwrap_or(&[]);
            if let Some(dep) = deps.get(*next).copied() {
                *next += 1;
                if !graph.contains_key(dep) {
                    return Err(DepsError::UnknownDependency {
                        name: node.to_string(),
                        dependency: dep.to_string(),
                    });
                }
                match marks.get(dep) {
                    None => {
                        marks.insert(dep, Mark::Open);
                        stack.push((dep, 0));
                    }
                    Some(Mark::Open) => {
                        let from = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                        let cycle: Vec<&str> = stack[from..].iter().map(|(n, _)| *n).collect();
                        return Err(DepsError::Cycle {
                            path: canonical_cycle(&cycle),
                        });
                    }
                    Some(Mark::Done(_)) => {}
                }
            } else {
                let level = deps
                    .iter()
                    .filter_map(|d| match marks.get(d) {
                        Some(Mark::Done(level)) => Some(level + 1),
                        _ => None,
                    })
                    .max()
                    .unwrap_or(0);
                marks.insert(node, Mark::Done(level));
                stack.pop();
            }
        }
    }

    let mut levels: Vec<Vec<String>> = Vec::new();
    for (name, mark) in marks {
        if let Mark::Done(level) = mark {
            if levels.len() <= level {
                levels.resize_with(level + 1, Vec::new);
            }
            levels[level].push(name.to_string());
        }
    }
    // `marks` is sorted by name, so each level already is.
    Ok(Plan { levels })
}

/// The cycle `nodes[0] -> … -> nodes[last] -> nodes[0]`, rotated to start at its smallest name,
/// with that name repeated at the end.
fn canonical_cycle(nodes: &[&str]) -> Vec<String> {
    let start = nodes
        .iter()
        .enumerate()
        .min_by_key(|(_, n)| **n)
        .map_or(0, |(i, _)| i);
    let mut path: Vec<String> = nodes[start..]
        .iter()
        .chain(&nodes[..start])
        .map(|n| n.to_string())
        .collect();
    if let Some(first) = path.first().cloned() {
        path.push(first);
    }
    path
}

/// Stop order for `berth down`: the plan's levels reversed, so every process stops before what
/// it depends on.
pub fn dependents_first(plan: &Plan) -> Vec<Vec<String>> {
    plan.levels.iter().rev().cloned().collect()
}

/// How one process of `berth up` turned out, as far as what depends on it is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It reached what its dependents ask for.
    Reached,
    /// It did not, and never will in this run.
    Failed,
    /// It was not started. `because` names the failed processes it waited for, directly or
    /// through other skipped ones; empty when it was skipped for no failure (`berth up` ran out
    /// of time before its turn).
    Skipped { because: Vec<String> },
}

/// The failures that keep `name` from starting, sorted: each dependency that failed, and for
/// each one that was skipped, what that one was skipped for (or itself, when it was skipped
/// for no failure). A dependency with no outcome yet also blocks, by its own name. Empty: `name`
/// may start.
pub fn blocked_by(
    project: &ProjectFile,
    name: &str,
    outcomes: &BTreeMap<String, Outcome>,
) -> Vec<String> {
    let mut because = BTreeSet::new();
    for dep in project.get(name).map_or(&[][..], |p| &p.depends_on[..]) {
        match outcomes.get(&dep.name) {
            Some(Outcome::Reached) => {}
            Some(Outcome::Skipped { because: theirs }) if !theirs.is_empty() => {
                because.extend(theirs.iter().cloned());
            }
            Some(Outcome::Failed | Outcome::Skipped { .. }) | None => {
                because.insert(dep.name.clone());
            }
        }
    }
    because.into_iter().collect()
}

/// The grace period (between the stop signal and SIGKILL) a process gets in `berth down`: its
/// own, shortened so that the `levels_left` levels still to stop (this one included) share the
/// `remaining` time equally. Every process is sent its stop signal first, however little time
/// is left.
pub fn grace_within(own: Duration, remaining: Duration, levels_left: usize) -> Duration {
    let share = remaining / u32::try_from(levels_left.max(1)).unwrap_or(u32::MAX);
    own.min(share)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::project::{self, Condition, Dependency, Kind, ProcessSpec};
    use crate::restart::RestartPolicy;

    fn spec(name: &str, deps: &[&str]) -> ProcessSpec {
        ProcessSpec {
            kind: Kind::Service,
            name: name.to_string(),
            command: "true".to_string(),
            cwd: None,
            env: BTreeMap::new(),
            restart: RestartPolicy::No,
            ready: None,
            liveness: None,
            stop_signal: "SIGTERM".to_string(),
            stop_grace: Duration::from_secs(10),
            depends_on: deps
                .iter()
                .map(|d| Dependency {
                    name: d.to_string(),
                    condition: Condition::Ready,
                })
                .collect(),
            base: None,
            tty: false,
            scrollback: None,
            turn: None,
            turn_timeout: None,
        }
    }

    /// A project of services; `edges` lists (dependent, dependency).
    fn graph(names: &[&str], edges: &[(&str, &str)]) -> ProjectFile {
        let mut project = ProjectFile::default();
        for name in names {
            let deps: Vec<&str> = edges
                .iter()
                .filter(|(from, _)| from == name)
                .map(|(_, to)| *to)
                .collect();
            project.services.insert(name.to_string(), spec(name, &deps));
        }
        project
    }

    fn levels(plan: &Plan) -> Vec<Vec<&str>> {
        plan.levels
            .iter()
            .map(|l| l.iter().map(String::as_str).collect())
            .collect()
    }

    fn targets(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn diamond() -> ProjectFile {
        graph(
            &["a", "b", "c", "d"],
            &[("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")],
        )
    }

    #[test]
    fn a_diamond_has_three_levels() {
        let plan = plan(&diamond(), &[]).unwrap();
        assert_eq!(levels(&plan), [vec!["d"], vec!["b", "c"], vec!["a"]]);
        assert_eq!(
            dependents_first(&plan),
            [
                vec!["a".to_string()],
                vec!["b".into(), "c".into()],
                vec!["d".into()]
            ]
        );
        assert_eq!(plan.names().collect::<Vec<_>>(), ["d", "b", "c", "a"]);
    }

    #[test]
    fn a_process_sits_in_the_earliest_level_possible() {
        // e depends on a process at level 0 and one at level 2: it goes to level 3.
        let project = graph(
            &["a", "b", "c", "e", "z"],
            &[("b", "a"), ("c", "b"), ("e", "c"), ("e", "z")],
        );
        assert_eq!(
            levels(&plan(&project, &[]).unwrap()),
            [vec!["a", "z"], vec!["b"], vec!["c"], vec!["e"]]
        );
    }

    #[test]
    fn partial_targets_pull_in_their_dependencies_only() {
        let project = diamond();
        assert_eq!(
            levels(&plan(&project, &targets(&["b"])).unwrap()),
            [vec!["d"], vec!["b"]]
        );
        assert_eq!(
            levels(&plan(&project, &targets(&["d"])).unwrap()),
            [vec!["d"]]
        );
        assert_eq!(
            levels(&plan(&project, &targets(&["c", "b", "c"])).unwrap()),
            [vec!["d"], vec!["b", "c"]]
        );
        assert_eq!(
            plan(&project, &targets(&["a"])).unwrap(),
            plan(&project, &[]).unwrap()
        );
    }

    #[test]
    fn an_unknown_target_is_named() {
        assert_eq!(
            plan(&diamond(), &targets(&["b", "nope"])),
            Err(DepsError::UnknownTarget("nope".into()))
        );
        assert_eq!(
            DepsError::UnknownTarget("nope".into()).to_string(),
            "unknown agent or service \"nope\""
        );
    }

    #[test]
    fn an_unknown_dependency_of_a_hand_built_project_is_named() {
        let project = graph(&["a"], &[("a", "ghost")]);
        assert_eq!(
            plan(&project, &[]),
            Err(DepsError::UnknownDependency {
                name: "a".into(),
                dependency: "ghost".into()
            })
        );
    }

    #[test]
    fn cycles_are_reported_with_their_path() {
        let cycle = |names: &[&str], edges: &[(&str, &str)], wanted: &str| {
            let err = plan(&graph(names, edges), &[]).unwrap_err();
            assert_eq!(err.to_string(), format!("dependency cycle: {wanted}"));
        };
        cycle(&["a"], &[("a", "a")], "a -> a");
        cycle(&["a", "b"], &[("a", "b"), ("b", "a")], "a -> b -> a");
        cycle(
            &["a", "b", "c"],
            &[("a", "b"), ("b", "c"), ("c", "a")],
            "a -> b -> c -> a",
        );
        // Found from x, reported from its smallest name; the way in is not part of it.
        cycle(
            &["x", "c", "d", "e"],
            &[("x", "d"), ("d", "e"), ("e", "c"), ("c", "d")],
            "c -> d -> e -> c",
        );
        // The direction is "depends on".
        cycle(
            &["a", "b", "c"],
            &[("a", "c"), ("c", "b"), ("b", "a")],
            "a -> c -> b -> a",
        );
    }

    #[test]
    fn a_cycle_outside_the_targets_does_not_matter() {
        let project = graph(&["a", "x", "y"], &[("x", "y"), ("y", "x")]);
        assert_eq!(
            levels(&plan(&project, &targets(&["a"])).unwrap()),
            [vec!["a"]]
        );
        assert!(plan(&project, &targets(&["x"])).is_err());
    }

    #[test]
    fn plans_a_parsed_project_across_agents_and_services() {
        let project = project::parse(
            r#"[agent.fixer]
command = "claude"
depends_on = { web = "ready", migrate = "completed" }

[service.db]
command = "postgres"

[service.migrate]
command = "migrate"
depends_on = ["db"]

[service.web]
command = "npm run dev"
depends_on = { db = "started" }
"#,
        )
        .unwrap();
        let plan = plan(&project, &[]).unwrap();
        assert_eq!(
            levels(&plan),
            [vec!["db"], vec!["migrate", "web"], vec!["fixer"]]
        );
        assert_eq!(
            levels(&super::plan(&project, &targets(&["web"])).unwrap()),
            [vec!["db"], vec!["web"]]
        );
    }

    #[test]
    fn an_empty_project_has_an_empty_plan() {
        assert_eq!(plan(&ProjectFile::default(), &[]), Ok(Plan::default()));
        assert!(dependents_first(&Plan::default()).is_empty());
    }

    #[test]
    fn a_long_chain_does_not_exhaust_the_stack() {
        let names: Vec<String> = (0..20_000).map(|i| format!("p{i}")).collect();
        let mut project = ProjectFile::default();
        for (i, name) in names.iter().enumerate() {
            let deps: Vec<&str> = if i == 0 {
                vec![]
            } else {
                vec![names[i - 1].as_str()]
            };
            project.services.insert(name.clone(), spec(name, &deps));
        }
        let plan = plan(&project, &[]).unwrap();
        assert_eq!(plan.levels.len(), 20_000);
        assert_eq!(plan.levels[19_999], ["p19999"]);
    }

    fn outcomes(list: &[(&str, Outcome)]) -> BTreeMap<String, Outcome> {
        list.iter()
            .map(|(n, o)| (n.to_string(), o.clone()))
            .collect()
    }

    fn skipped(because: &[&str]) -> Outcome {
        Outcome::Skipped {
            because: targets(because),
        }
    }

    #[test]
    fn what_depends_on_a_failure_is_blocked_by_it_and_nothing_else_is() {
        // a -> b -> d, a -> c -> d, plus e -> f and g alone.
        let mut project = diamond();
        for (name, deps) in [("e", &["f"][..]), ("f", &[]), ("g", &[])] {
            project.services.insert(name.into(), spec(name, deps));
        }
        let done = outcomes(&[
            ("d", Outcome::Reached),
            ("b", Outcome::Failed),
            ("c", Outcome::Reached),
            ("f", Outcome::Failed),
        ]);
        assert_eq!(blocked_by(&project, "a", &done), ["b"]);
        assert_eq!(blocked_by(&project, "e", &done), ["f"]);
        assert!(blocked_by(&project, "g", &done).is_empty(), "independent");
        assert!(
            blocked_by(&project, "d", &done).is_empty(),
            "no dependencies"
        );
        assert!(blocked_by(&project, "b", &outcomes(&[("d", Outcome::Reached)])).is_empty());
    }

    #[test]
    fn a_skip_passes_on_the_failures_it_was_skipped_for() {
        // x -> y -> z: z failed, y was skipped for it, so x is skipped for z too.
        let project = graph(&["x", "y", "z", "w"], &[("x", "y"), ("y", "z"), ("x", "w")]);
        let done = outcomes(&[
            ("z", Outcome::Failed),
            ("y", skipped(&["z"])),
            ("w", Outcome::Failed),
        ]);
        assert_eq!(
            blocked_by(&project, "x", &done),
            ["w", "z"],
            "sorted, each once"
        );
        // Skipped for no failure (out of time): it names the skipped one itself.
        let late = outcomes(&[("y", skipped(&[])), ("w", Outcome::Reached)]);
        assert_eq!(blocked_by(&project, "x", &late), ["y"]);
        // Not decided yet: blocks by its own name rather than start too early.
        assert_eq!(
            blocked_by(&project, "x", &outcomes(&[("w", Outcome::Reached)])),
            ["y"]
        );
        assert!(blocked_by(&project, "unknown", &late).is_empty());
    }

    #[test]
    fn the_overall_timeout_shortens_each_grace_period_and_shares_it_between_levels() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert_eq!(
            grace_within(s(10), s(60), 3),
            s(10),
            "plenty of time: its own"
        );
        assert_eq!(
            grace_within(s(10), s(1), 2),
            ms(500),
            "two levels share one second"
        );
        assert_eq!(
            grace_within(ms(100), s(1), 2),
            ms(100),
            "never longer than its own"
        );
        assert_eq!(
            grace_within(s(10), Duration::ZERO, 1),
            Duration::ZERO,
            "out of time"
        );
        assert_eq!(
            grace_within(s(10), s(3), 0),
            s(3),
            "no level left counts as one"
        );
    }

    /// Names p00..p{n}: zero-padded so sorting matches indices.
    fn name(i: usize) -> String {
        format!("p{i:02}")
    }

    fn build(n: usize, edges: &[(usize, usize)]) -> ProjectFile {
        let names: Vec<String> = (0..n).map(name).collect();
        let named: Vec<(String, String)> =
            edges.iter().map(|(a, b)| (name(*a), name(*b))).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let edge_refs: Vec<(&str, &str)> = named
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        graph(&refs, &edge_refs)
    }

    fn check_levels(
        project: &ProjectFile,
        plan: &Plan,
        expected: usize,
    ) -> Result<(), TestCaseError> {
        let mut level_of = BTreeMap::new();
        for (i, level) in plan.levels.iter().enumerate() {
            prop_assert!(!level.is_empty());
            prop_assert!(level.windows(2).all(|w| w[0] < w[1]), "level {i} is sorted");
            for n in level {
                prop_assert!(level_of.insert(n.clone(), i).is_none(), "{n} appears once");
            }
        }
        prop_assert_eq!(level_of.len(), expected);
        for (n, level) in &level_of {
            let deps = &project
                .get(n)
                .map(|p| p.depends_on.clone())
                .unwrap_or_default();
            for d in deps {
                let dl = level_of.get(&d.name).copied();
                prop_assert!(dl.is_some_and(|dl| dl < *level), "{} before {}", d.name, n);
            }
            if *level > 0 {
                prop_assert!(
                    deps.iter()
                        .any(|d| level_of.get(&d.name) == Some(&(level - 1))),
                    "{n} could start earlier"
                );
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn random_dags_plan_into_valid_levels(
            n in 1usize..14,
            raw in proptest::collection::vec((0usize..14, 0usize..14), 0..40),
        ) {
            // Only edges from a higher to a lower index: acyclic.
            let edges: Vec<(usize, usize)> = raw
                .into_iter()
                .map(|(a, b)| (a % n, b % n))
                .filter(|(a, b)| a > b)
                .collect();
            let project = build(n, &edges);
            let plan = plan(&project, &[]).map_err(|e| TestCaseError::fail(e.to_string()))?;
            check_levels(&project, &plan, n)?;
            prop_assert_eq!(dependents_first(&plan).into_iter().rev().collect::<Vec<_>>(), plan.levels.clone());
        }

        #[test]
        fn random_graphs_plan_or_report_a_real_cycle(
            n in 1usize..10,
            raw in proptest::collection::vec((0usize..10, 0usize..10), 0..25),
            target in proptest::option::of(0usize..10),
        ) {
            let edges: Vec<(usize, usize)> = raw.into_iter().map(|(a, b)| (a % n, b % n)).collect();
            let project = build(n, &edges);
            let targets: Vec<String> = target.map(|t| name(t % n)).into_iter().collect();
            match plan(&project, &targets) {
                Ok(plan) => {
                    let count = plan.levels.iter().map(Vec::len).sum();
                    check_levels(&project, &plan, count)?;
                    if targets.is_empty() {
                        prop_assert_eq!(count, n);
                    }
                }
                Err(DepsError::Cycle { path }) => {
                    prop_assert!(path.len() >= 2);
                    prop_assert_eq!(path.first(), path.last());
                    let inner = &path[..path.len() - 1];
                    let distinct: BTreeSet<&String> = inner.iter().collect();
                    prop_assert_eq!(distinct.len(), inner.len(), "a simple cycle");
                    prop_assert_eq!(inner.iter().min(), path.first(), "starts at its smallest name");
                    for w in path.windows(2) {
                        let is_edge = edges.iter().any(|(a, b)| name(*a) == w[0] && name(*b) == w[1]);
                        prop_assert!(is_edge, "{} -> {} is an edge", w[0], w[1]);
                    }
                }
                Err(other) => prop_assert!(false, "unexpected {other}"),
            }
        }
    }
}
