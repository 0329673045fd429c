//! Model-based pairing test (SPEC §8): random interleavings of edits on both sides (write,
//! delete, rename, chmod, symlink, file↔directory), commits on either side, the user switching
//! to another branch and back (a pause, with edits on both sides meanwhile), and daemon
//! restarts, graceful or by SIGKILL — against a real daemon, real repositories and the real
//! CLI. After every step that leaves pairing active, a flush makes both sides agree; they must
//! then hold exactly what the model says, and the two copies of the branch must be the same
//! commit. At the end, stopping restores the checkout exactly as it was before pairing.
//!
//! A race is a run of edits with no flush between them, so they meet the sync half-way, and
//! maybe a SIGKILL right after, in the middle of syncing them. Within a race a path is edited
//! by one side only (which side's edit would win a path both edit depends on timing); no edit
//! may be lost or reverted.
//!
//! The model of a pause is the three-way rule the spec gives: a path changed on one side only
//! takes that side's version; changed on both, the user's version wins (a deletion never beats
//! a change). Cases: `PAIR_MODEL_CASES` (default 6).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_testkit::{TestHome, files, git, wait_until, worktree_state};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::{home, start};

/// What a side holds at a path: a file's bytes and executable bit, or a link's target.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    File(Vec<u8>, bool),
    Link(Vec<u8>),
}

type Tree = BTreeMap<String, Node>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    User,
    Agent,
}

#[derive(Debug, Clone)]
enum Op {
    Write(Side, u8, u8),
    Delete(Side, u8),
    Rename(Side, u8, u8),
    Chmod(Side, u8),
    Symlink(Side, u8, u8),
    /// The file becomes a directory holding one file.
    FileToDir(Side, u8),
    Commit(Side),
    /// The user switches to a new branch at the same commit (pairing pauses), both sides edit
    /// plain files meanwhile, then the user switches back (pairing resumes).
    Away(Vec<(Side, u8, Option<u8>)>),
    Restart,
    /// The daemon is SIGKILLed and started again.
    Kill,
    /// Writes (`Some`) and deletions (`None`) with no flush between them, then (if set) a
    /// SIGKILL while they are being synced.
    Race(Vec<(Side, u8, Option<u8>)>, bool),
}

const NAMES: [&str; 6] = ["f0", "f1", "f2", "d/g0", "d/g1", "d/e/g2"];

fn name(i: u8) -> &'static str {
    NAMES[i as usize % NAMES.len()]
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::User), Just(Side::Agent)]
}

fn op() -> impl Strategy<Value = Op> {
    // Two files only, so both sides often change the same one while paused.
    let away_edit = (side(), 0u8..2, proptest::option::of(0u8..8));
    prop_oneof![
        6 => (side(), 0u8..6, 0u8..8).prop_map(|(s, f, c)| Op::Write(s, f, c)),
        2 => (side(), 0u8..6).prop_map(|(s, f)| Op::Delete(s, f)),
        2 => (side(), 0u8..6, 0u8..6).prop_map(|(s, a, b)| Op::Rename(s, a, b)),
        1 => (side(), 0u8..6).prop_map(|(s, f)| Op::Chmod(s, f)),
        1 => (side(), 0u8..6, 0u8..6).prop_map(|(s, f, t)| Op::Symlink(s, f, t)),
        1 => (side(), 0u8..3).prop_map(|(s, f)| Op::FileToDir(s, f)),
        2 => side().prop_map(Op::Commit),
        2 => proptest::collection::vec(away_edit, 2..8).prop_map(Op::Away),
        1 => Just(Op::Restart),
        1 => Just(Op::Kill),
        2 => (
            proptest::collection::vec((side(), 0u8..6, proptest::option::of(0u8..8)), 2..12),
            proptest::bool::ANY
        )
            .prop_map(|(edits, kill)| Op::Race(edits, kill)),
    ]
}

/// Removes whatever is at `rel` and at any ancestor that is not a directory (in the model).
fn clear_model(t: &mut Tree, rel: &str) {
    t.retain(|p, _| {
        !(p == rel || p.starts_with(&format!("{rel}/")) || rel.starts_with(&format!("{p}/")))
    });
}

/// The same on disk.
fn clear_disk(root: &Path, rel: &str) {
    let mut at = PathBuf::new();
    for part in rel.split('/') {
        at.push(part);
        let p = root.join(&at);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() && at.as_os_str() != rel => continue,
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&p).unwrap(),
            Ok(_) => {
                std::fs::remove_file(&p).unwrap();
                return;
            }
            Err(_) => return,
        }
    }
}

fn put(root: &Path, t: &mut Tree, rel: &str, node: Node) {
    clear_model(t, rel);
    clear_disk(root, rel);
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    match &node {
        Node::File(bytes, exec) => {
            std::fs::write(&p, bytes).unwrap();
            let mode = if *exec { 0o755 } else { 0o644 };
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        Node::Link(target) => {
            std::os::unix::fs::symlink(String::from_utf8_lossy(target).as_ref(), &p).unwrap()
        }
    }
    t.insert(rel.to_string(), node);
}

fn remove(root: &Path, t: &mut Tree, rel: &str) {
    if t.contains_key(rel) {
        clear_model(t, rel);
        clear_disk(root, rel);
    }
}

/// What is on disk under `root`, as the model sees it (files and links; `.git` left out).
fn observed(root: &Path) -> Tree {
    files(root)
        .into_iter()
        .map(|(p, (bytes, mode))| {
            let node = if mode == 0o120000 {
                Node::Link(bytes)
            } else {
                Node::File(bytes, mode & 0o111 != 0)
            };
            (String::from_utf8_lossy(&p).into_owned(), node)
        })
        .collect()
}

/// The three-way outcome of a pause (see the module docs), path by path.
fn merge(base: &Tree, user: &Tree, agent: &Tree) -> Tree {
    let mut out = Tree::new();
    let paths: std::collections::BTreeSet<&String> =
        base.keys().chain(user.keys()).chain(agent.keys()).collect();
    for p in paths {
        let (b, u, a) = (base.get(p), user.get(p), agent.get(p));
        let pick = if u == b {
            a
        } else if a == b || u == a {
            u
        } else if u.is_none() {
            a // a deletion never beats a change
        } else {
            u
        };
        if let Some(n) = pick {
            out.insert(p.clone(), n.clone());
        }
    }
    out
}

struct Pairing<'a> {
    h: &'a TestHome,
    user: PathBuf,
    agent: PathBuf,
    model: Tree,
    step: usize,
}

impl Pairing<'_> {
    fn root(&self, s: Side) -> PathBuf {
        match s {
            Side::User => self.user.clone(),
            Side::Agent => self.agent.clone(),
        }
    }

    fn state(&self) -> String {
        let out = self.h.run_in(&self.user, &["--json", "pair", "status"]);
        out.json()["state"].as_str().unwrap_or_default().to_string()
    }

    fn wait_state(&self, want: &str) {
        wait_until(
            &format!("pairing is {want}"),
            Duration::from_secs(20),
            || self.state() == want,
        );
    }

    fn flush(&self) {
        self.wait_state("active");
        let out = self.h.run_in(&self.user, &["pair", "flush"]);
        out.expect_code(0);
        let (u, a) = (observed(&self.user), observed(&self.agent));
        assert_eq!(u, a, "the sides differ after a flush (step {})", self.step);
        assert_eq!(
            u, self.model,
            "the sides differ from the model (step {})",
            self.step
        );
        let branch = |dir: &Path| git(dir, &["rev-parse", "refs/heads/berth/m"]);
        wait_until(
            "both copies of the branch agree",
            Duration::from_secs(10),
            || branch(&self.user) == branch(&self.agent),
        );
    }

    fn content(&mut self, s: Side, c: u8) -> Vec<u8> {
        self.step += 1;
        format!("{s:?} {c} at step {}\n", self.step).into_bytes()
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Write(s, f, c) => {
                let bytes = self.content(*s, *c);
                let root = self.root(*s);
                put(&root, &mut self.model, name(*f), Node::File(bytes, false));
            }
            Op::Delete(s, f) => {
                let root = self.root(*s);
                remove(&root, &mut self.model, name(*f));
            }
            Op::Rename(s, a, b) => {
                let (from, to) = (name(*a), name(*b));
                let Some(node) = self.model.get(from).cloned() else {
                    return;
                };
                if from == to || to.starts_with(&format!("{from}/")) {
                    return;
                }
                let root = self.root(*s);
                clear_model(&mut self.model, to);
                clear_disk(&root, to);
                std::fs::create_dir_all(root.join(to).parent().unwrap()).unwrap();
                std::fs::rename(root.join(from), root.join(to)).unwrap();
                self.model.remove(from);
                self.model.insert(to.to_string(), node);
            }
            Op::Chmod(s, f) => {
                if let Some(Node::File(bytes, exec)) = self.model.get(name(*f)).cloned() {
                    let root = self.root(*s);
                    let mode = if exec { 0o644 } else { 0o755 };
                    std::fs::set_permissions(
                        root.join(name(*f)),
                        std::fs::Permissions::from_mode(mode),
                    )
                    .unwrap();
                    self.model
                        .insert(name(*f).to_string(), Node::File(bytes, !exec));
                }
            }
            Op::Symlink(s, f, t) => {
                let root = self.root(*s);
                put(
                    &root,
                    &mut self.model,
                    name(*f),
                    Node::Link(name(*t).as_bytes().to_vec()),
                );
            }
            Op::FileToDir(s, f) => {
                let bytes = self.content(*s, 0);
                let root = self.root(*s);
                put(
                    &root,
                    &mut self.model,
                    &format!("{}/inner", name(*f)),
                    Node::File(bytes, false),
                );
            }
            Op::Commit(s) => {
                let root = self.root(*s);
                git(&root, &["add", "-A"]);
                git(
                    &root,
                    &[
                        "-c",
                        "user.name=model",
                        "-c",
                        "user.email=model@example.com",
                        "commit",
                        "-q",
                        "--allow-empty",
                        "-m",
                        &format!("{s:?} commit at step {}", self.step),
                    ],
                );
            }
            Op::Away(edits) => self.away(edits),
            Op::Restart => {
                self.h.run(&["daemon", "stop"]).expect_code(0);
                self.h.run(&["daemon", "start"]).expect_code(0);
            }
            Op::Kill => self.kill(),
            Op::Race(edits, kill) => {
                let mut owner: BTreeMap<&str, Side> = BTreeMap::new();
                for (s, f, c) in edits {
                    let rel = name(*f);
                    if *owner.entry(rel).or_insert(*s) != *s {
                        continue;
                    }
                    let root = self.root(*s);
                    match c {
                        Some(c) => {
                            let bytes = self.content(*s, *c);
                            put(&root, &mut self.model, rel, Node::File(bytes, false));
                        }
                        None => remove(&root, &mut self.model, rel),
                    }
                }
                if *kill {
                    self.kill();
                }
            }
        }
        self.flush();
    }

    /// SIGKILLs the daemon and starts it again.
    fn kill(&self) {
        self.h.signal_daemon(libc::SIGKILL);
        wait_until("the killed daemon is gone", Duration::from_secs(20), || {
            matches!(self.h.state().as_str(), "stale" | "stopped")
        });
        self.h.run(&["daemon", "start"]).expect_code(0);
    }

    /// A pause by a branch switch, with plain-file edits on both sides meanwhile.
    fn away(&mut self, edits: &[(Side, u8, Option<u8>)]) {
        self.step += 1;
        let branch = format!("away-{}", self.step);
        git(&self.user, &["switch", "-q", "-c", &branch]);
        self.wait_state("paused");
        let base = self.model.clone();
        let (mut user, mut agent) = (base.clone(), base.clone());
        let top = |p: &str| !p.contains('/');
        for (s, f, c) in edits {
            // Plain top-level files only: their shape cannot clash with the other side's.
            let rel = name(*f);
            if !top(rel) || base.keys().any(|p| p.starts_with(&format!("{rel}/"))) {
                continue;
            }
            let root = self.root(*s);
            let t = match s {
                Side::User => &mut user,
                Side::Agent => &mut agent,
            };
            match c {
                Some(c) => {
                    self.step += 1;
                    let bytes = format!("{s:?} {c} while away, step {}\n", self.step).into_bytes();
                    put(&root, t, rel, Node::File(bytes, false));
                }
                None => remove(&root, t, rel),
            }
        }
        // Nothing crossed while paused.
        assert_eq!(
            observed(&self.user),
            user,
            "the checkout changed while paused"
        );
        assert_eq!(
            observed(&self.agent),
            agent,
            "the workspace changed while paused"
        );
        git(&self.user, &["switch", "-q", "berth/m"]);
        git(&self.user, &["branch", "-q", "-D", &branch]);
        self.model = merge(&base, &user, &agent);
    }
}

fn run_case(ops: &[Op]) -> Result<(), TestCaseError> {
    let h = home();
    start(&h);
    let repo = berth_testkit::repo(&[("f0", "base\n"), ("README", "model\n")]);
    let user = repo.path().to_path_buf();
    std::fs::write(user.join("README"), "uncommitted before pairing\n").unwrap();
    let before = worktree_state(&user);
    h.run_in(&user, &["agent", "new", "m"]).expect_code(0);
    h.run_in(&user, &["pair", "m"]).expect_code(0);
    let status = h.run_in(&user, &["--json", "pair", "status"]).json();
    let agent = PathBuf::from(status["agent_workspace"].as_str().unwrap());
    let mut p = Pairing {
        h: &h,
        model: observed(&user),
        user: user.clone(),
        agent,
        step: 0,
    };
    p.flush();
    for op in ops {
        p.apply(op);
    }
    h.run_in(&user, &["pair", "stop"]).expect_code(0);
    prop_assert_eq!(worktree_state(&user), before);
    Ok(())
}

#[test]
fn random_edits_commits_pauses_and_restarts_keep_both_sides_equal_to_the_model() {
    let cases = std::env::var("PAIR_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let mut runner = TestRunner::new(Config {
        cases,
        max_shrink_iters: 32,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(op(), 4..16), |ops| {
        run_case(&ops)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
