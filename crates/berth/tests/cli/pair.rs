//! `berth pair` end to end: real repositories, a real daemon, the CLI.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_testkit::{Outcome, TestHome, base, dirty, files, git, mode, repo, worktree_state};
use serde_json::Value;

use crate::{home, start};

/// How long anything that pairing does by itself may take in a test.
const PATIENCE: Duration = Duration::from_secs(30);

/// A daemon, a project whose `main` holds [`base`], and agents made from it.
struct Fixture {
    h: TestHome,
    project: tempfile::TempDir,
}

impl Fixture {
    fn new(agents: &[&str]) -> Fixture {
        Fixture::with_env(agents, &[])
    }

    /// The daemon starts with `env` (failpoints).
    fn with_env(agents: &[&str], env: &[(&str, &str)]) -> Fixture {
        let h = home();
        if env.is_empty() {
            start(&h);
        } else {
            let mut cmd = h.command(&["--json", "daemon", "start"]);
            for (k, v) in env {
                cmd.env(k, v);
            }
            h.run_cmd(cmd).expect_code(0);
        }
        let project = repo(&[]);
        base(project.path());
        let f = Fixture { h, project };
        for a in agents {
            f.berth(&["--json", "agent", "new", a]).expect_code(0);
        }
        f
    }

    fn user(&self) -> &Path {
        self.project.path()
    }

    /// `berth ARGS` in the checkout.
    fn berth(&self, args: &[&str]) -> Outcome {
        self.h.run_in(self.user(), args)
    }

    fn ws(&self, agent: &str) -> PathBuf {
        let out = self.berth(&["--json", "agent", "show", agent]);
        out.expect_code(0);
        PathBuf::from(out.json()["workspace"].as_str().expect("a workspace"))
    }

    fn status(&self) -> Value {
        let out = self.berth(&["--json", "pair", "status"]);
        out.expect_code(0);
        out.json()
    }

    /// Starts pairing with `agent` and checks it is active; its workspace.
    fn pair(&self, agent: &str) -> PathBuf {
        let out = self.berth(&["--json", "pair", agent]);
        out.expect_code(0);
        let s = out.json();
        assert_eq!(s["state"], "active", "{out}");
        assert_eq!(
            git(self.user(), &["symbolic-ref", "--short", "HEAD"]),
            format!("berth/{agent}")
        );
        PathBuf::from(s["agent_workspace"].as_str().expect("a workspace"))
    }

    fn wait_notice(&self, code: &str) -> Value {
        poll(
            &format!("notice {code}"),
            || self.status(),
            |s| s["state"] == "paused" && codes(s).iter().any(|c| c == code),
        )
    }

    fn wait_active(&self) {
        poll(
            "pairing active",
            || self.status(),
            |s| s["state"] == "active",
        );
    }

    fn flush(&self) -> Value {
        let out = self.berth(&["--json", "pair", "flush"]);
        out.expect_code(0);
        out.json()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Stop the daemon gracefully when the test got that far; `TestHome` kills the rest.
        if !std::thread::panicking() {
            let _ = self.h.run(&["daemon", "stop"]);
        }
    }
}

fn codes(s: &Value) -> Vec<String> {
    s["notices"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|n| n["code"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `get` until `ok` holds for what it returns; panics with the last value after
/// [`PATIENCE`].
#[track_caller]
fn poll<T: std::fmt::Debug>(what: &str, mut get: impl FnMut() -> T, ok: impl Fn(&T) -> bool) -> T {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let v = get();
        if ok(&v) {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}; last seen:\n{v:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

fn read(root: &Path, rel: &str) -> Option<String> {
    std::fs::read_to_string(root.join(rel)).ok()
}

/// Waits until `rel` under `root` holds `content` (`None`: is gone).
#[track_caller]
fn wait_content(root: &Path, rel: &str, content: Option<&str>) {
    poll(
        &format!("{} holds {content:?}", root.join(rel).display()),
        || (read(root, rel), exists(root, rel)),
        |(r, e)| r.as_deref() == content && (content.is_some() || !e),
    );
}

fn exists(root: &Path, rel: &str) -> bool {
    std::fs::symlink_metadata(root.join(rel)).is_ok()
}

/// Both trees hold the same files (except what each ignores).
#[track_caller]
fn wait_same(a: &Path, b: &Path) {
    let strip = |m: std::collections::BTreeMap<Vec<u8>, (Vec<u8>, u32)>| {
        m.into_iter()
            .filter(|(k, _)| !k.ends_with(b".log"))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    poll(
        "both sides hold the same files",
        || {
            let (fa, fb) = (strip(files(a)), strip(files(b)));
            let keys: std::collections::BTreeSet<_> = fa.keys().chain(fb.keys()).collect();
            keys.into_iter()
                .filter(|k| fa.get(*k) != fb.get(*k))
                .map(|k| {
                    format!(
                        "{}: {:?} vs {:?}",
                        String::from_utf8_lossy(k),
                        fa.get(k).map(|(b, m)| (String::from_utf8_lossy(b), m)),
                        fb.get(k).map(|(b, m)| (String::from_utf8_lossy(b), m))
                    )
                })
                .collect::<Vec<_>>()
        },
        Vec::is_empty,
    );
}

fn head(dir: &Path, rev: &str) -> String {
    git(dir, &["rev-parse", rev])
}

/// Commits everything in `dir` with `message`.
#[track_caller]
fn commit_all(dir: &Path, message: &str) {
    git(dir, &["add", "-A"]);
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(["commit", "-q", "-m", message])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git commit in {}: {}{}\nstatus: {}\nlog: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        git(dir, &["status", "--short"]),
        git(dir, &["log", "--oneline", "-3"])
    );
}

/// The blocker codes a refused start printed (`code: …` lines on stderr).
#[track_caller]
fn refused(out: &Outcome) -> Vec<String> {
    out.expect_code(4);
    let known = [
        "agent_missing",
        "agent_branch_missing",
        "agent_wrong_branch",
        "user_ahead",
        "diverged",
        "operation_in_progress",
        "dirty_no_stash",
        "pairing_busy",
    ];
    let mut found: Vec<String> = known
        .iter()
        .filter(|c| out.stderr.contains(&format!("{c}:")))
        .map(|c| c.to_string())
        .collect();
    found.sort();
    found
}

/// A start that must be refused with exactly `expect`, changing nothing in the checkout or
/// the workspace.
#[track_caller]
fn assert_blocked(f: &Fixture, agent: &str, args: &[&str], ws: Option<&Path>, expect: &[&str]) {
    let before = worktree_state(f.user());
    let ws_before = ws.map(worktree_state);
    let out = f.berth(args);
    let mut expect: Vec<String> = expect.iter().map(|s| s.to_string()).collect();
    expect.sort();
    assert_eq!(refused(&out), expect, "{out}");
    assert!(out.stderr.contains(agent), "{out}");
    assert_eq!(
        worktree_state(f.user()),
        before,
        "the checkout is unchanged"
    );
    if let (Some(ws), Some(b)) = (ws, ws_before) {
        assert_eq!(worktree_state(ws), b, "the workspace is unchanged");
    }
    assert_eq!(f.status()["state"], "off");
}

// -- 1. start blockers ------------------------------------------------------------------------

#[test]
fn each_start_blocker_alone_refuses_and_changes_nothing() {
    let f = Fixture::new(&["a", "b", "c", "d", "e"]);
    let user = f.user();

    // agent_missing: no such agent; and an agent whose workspace is gone.
    assert_blocked(&f, "ghost", &["pair", "ghost"], None, &["agent_missing"]);
    let ws_e = f.ws("e");
    let moved = ws_e.with_extension("away");
    std::fs::rename(&ws_e, &moved).unwrap();
    assert_blocked(&f, "e", &["pair", "e"], None, &["agent_missing"]);
    std::fs::rename(&moved, &ws_e).unwrap();

    // agent_branch_missing: the workspace moved to another branch and deleted its own.
    let ws_a = f.ws("a");
    git(&ws_a, &["switch", "-q", "-c", "elsewhere"]);
    git(&ws_a, &["branch", "-q", "-D", "berth/a"]);
    assert_blocked(
        &f,
        "a",
        &["pair", "a"],
        Some(&ws_a),
        &["agent_branch_missing"],
    );

    // agent_wrong_branch.
    let ws_b = f.ws("b");
    git(&ws_b, &["switch", "-q", "-c", "side"]);
    assert_blocked(
        &f,
        "b",
        &["pair", "b"],
        Some(&ws_b),
        &["agent_wrong_branch"],
    );

    // user_ahead: the project's copy of berth/c has a commit the agent lacks.
    let ws_c = f.ws("c");
    git(user, &["switch", "-q", "berth/c"]);
    write(user, "ahead.txt", "ahead\n");
    commit_all(user, "ahead");
    git(user, &["switch", "-q", "main"]);
    assert_blocked(&f, "c", &["pair", "c"], Some(&ws_c), &["user_ahead"]);

    // diverged: and the agent has one of its own.
    write(&ws_c, "mine.txt", "agent\n");
    commit_all(&ws_c, "agent's");
    assert_blocked(&f, "c", &["pair", "c"], Some(&ws_c), &["diverged"]);

    // operation_in_progress: a real conflicted merge in the checkout.
    let ws_d = f.ws("d");
    git(user, &["switch", "-q", "-c", "topic"]);
    write(user, "a.txt", "topic\n");
    commit_all(user, "topic");
    git(user, &["switch", "-q", "main"]);
    write(user, "a.txt", "main\n");
    commit_all(user, "main");
    let merge = std::process::Command::new("git")
        .current_dir(user)
        .args(["merge", "-q", "topic"])
        .output()
        .unwrap();
    assert!(!merge.status.success(), "the merge conflicts");
    assert!(user.join(".git/MERGE_HEAD").exists());
    assert_blocked(
        &f,
        "d",
        &["pair", "d"],
        Some(&ws_d),
        &["operation_in_progress"],
    );
    git(user, &["merge", "--abort"]);

    // ... and a stopped rebase.
    git(user, &["switch", "-q", "topic"]);
    let rebase = std::process::Command::new("git")
        .current_dir(user)
        .args(["rebase", "-q", "main"])
        .output()
        .unwrap();
    assert!(!rebase.status.success(), "the rebase stops");
    assert_blocked(
        &f,
        "d",
        &["pair", "d"],
        Some(&ws_d),
        &["operation_in_progress"],
    );
    git(user, &["rebase", "--abort"]);
    git(user, &["switch", "-q", "main"]);

    // dirty_no_stash.
    write(user, "b.txt", "dirty\n");
    assert_blocked(
        &f,
        "d",
        &["pair", "d", "--no-stash"],
        Some(&ws_d),
        &["dirty_no_stash"],
    );
}

#[test]
fn several_blockers_are_reported_together() {
    let f = Fixture::new(&["fixer"]);
    let user = f.user();
    let ws = f.ws("fixer");
    git(&ws, &["switch", "-q", "-c", "side"]);
    write(user, "b.txt", "dirty\n");
    std::fs::write(user.join(".git/MERGE_HEAD"), head(user, "HEAD") + "\n").unwrap();
    let before = worktree_state(user);
    let out = f.berth(&["pair", "fixer", "--no-stash"]);
    assert_eq!(
        refused(&out),
        [
            "agent_wrong_branch",
            "dirty_no_stash",
            "operation_in_progress"
        ],
        "{out}"
    );
    // One line each.
    for code in [
        "agent_wrong_branch",
        "dirty_no_stash",
        "operation_in_progress",
    ] {
        assert_eq!(
            out.stderr.lines().filter(|l| l.contains(code)).count(),
            1,
            "{out}"
        );
    }
    assert_eq!(worktree_state(user), before);
    let json = f.berth(&["--json", "pair", "fixer", "--no-stash"]);
    json.expect_code(4);
    assert_eq!(json.json()["error"]["code"], "pairing_blocked", "{json}");
}

#[test]
fn a_start_during_another_transition_is_refused_as_busy() {
    let f = Fixture::with_env(
        &["fixer", "other"],
        &[(
            "BERTH_FAILPOINTS",
            "pair.start.copy_agent_files=sleep(3000)",
        )],
    );
    std::thread::scope(|s| {
        let first = s.spawn(|| f.berth(&["pair", "fixer"]));
        poll(
            "the first start is copying",
            || f.status(),
            |s| s["state"] == "starting",
        );
        for agent in ["other", "fixer"] {
            let out = f.berth(&["pair", agent]);
            out.expect_code(4);
            assert!(out.stderr.contains("pairing_busy"), "{out}");
            assert!(
                out.stderr.contains("starting") && out.stderr.contains("fixer"),
                "the message names the transition in progress: {out}"
            );
        }
        first.join().unwrap().expect_code(0);
    });
    assert_eq!(f.status()["state"], "active");
    assert_eq!(f.status()["agent"], "fixer");
}

// -- 2. edits and commits both ways -----------------------------------------------------------

#[test]
fn edits_flow_both_ways_but_never_ignored_files_or_git() {
    let f = Fixture::new(&["fixer"]);
    let user = f.user();
    let ws = f.pair("fixer");
    wait_same(user, &ws);

    // The user's edits reach the agent.
    write(user, "new/deep/u.txt", "from the user\n");
    wait_content(&ws, "new/deep/u.txt", Some("from the user\n"));
    write(user, "a.txt", "alpha, edited by the user\n");
    wait_content(&ws, "a.txt", Some("alpha, edited by the user\n"));
    std::fs::remove_file(user.join("b.txt")).unwrap();
    wait_content(&ws, "b.txt", None);
    std::fs::rename(user.join("dir/c.txt"), user.join("dir/c-renamed.txt")).unwrap();
    wait_content(&ws, "dir/c-renamed.txt", Some("gamma\n"));
    wait_content(&ws, "dir/c.txt", None);
    symlink("a.txt", user.join("ulink")).unwrap();
    poll(
        "the link reaches the agent",
        || std::fs::read_link(ws.join("ulink")).ok(),
        |t| t.as_deref() == Some(Path::new("a.txt")),
    );
    std::fs::set_permissions(user.join("a.txt"), std::fs::Permissions::from_mode(0o755)).unwrap();
    poll(
        "the executable bit",
        || mode(&ws.join("a.txt")),
        |m| *m == 0o755,
    );
    std::fs::create_dir(user.join("empty-u")).unwrap();
    poll(
        "the empty directory",
        || ws.join("empty-u").is_dir(),
        |d| *d,
    );

    // The agent's edits reach the user.
    write(&ws, "agent/one.txt", "from the agent\n");
    wait_content(user, "agent/one.txt", Some("from the agent\n"));
    write(&ws, "a.txt", "alpha, edited by the agent\n");
    wait_content(user, "a.txt", Some("alpha, edited by the agent\n"));
    std::fs::remove_file(ws.join("new/deep/u.txt")).unwrap();
    wait_content(user, "new/deep/u.txt", None);
    std::fs::rename(ws.join("run.sh"), ws.join("run2.sh")).unwrap();
    wait_content(user, "run2.sh", Some("#!/bin/sh\n"));
    wait_content(user, "run.sh", None);
    assert_eq!(
        mode(&user.join("run2.sh")),
        0o755,
        "the rename keeps the mode"
    );
    std::fs::remove_file(ws.join("link")).unwrap();
    symlink("dir", ws.join("link")).unwrap();
    poll(
        "the retargeted link reaches the user",
        || std::fs::read_link(user.join("link")).ok(),
        |t| t.as_deref() == Some(Path::new("dir")),
    );
    std::fs::set_permissions(ws.join("a.txt"), std::fs::Permissions::from_mode(0o644)).unwrap();
    poll(
        "the executable bit",
        || mode(&user.join("a.txt")),
        |m| *m == 0o644,
    );
    std::fs::create_dir(ws.join("empty-a")).unwrap();
    poll(
        "the empty directory",
        || user.join("empty-a").is_dir(),
        |d| *d,
    );

    // Ignored files stay where they are, and `.git` is never synced.
    write(user, "user.log", "the user's log\n");
    write(&ws, "agent.log", "the agent's log\n");
    write(user, ".git/user-marker", "x\n");
    write(&ws, ".git/agent-marker", "x\n");
    let flushed = f.flush();
    assert!(flushed["took_ms"].is_u64(), "{flushed}");
    wait_same(user, &ws);
    assert!(!exists(&ws, "user.log") && !exists(user, "agent.log"));
    assert!(!exists(&ws, "debug.log"), "the user's ignored file stays");
    assert!(!exists(&ws, ".git/user-marker") && !exists(user, ".git/agent-marker"));
    assert_eq!(
        read(user, "debug.log").as_deref(),
        Some("ignored, never touched\n")
    );
}

#[test]
fn an_index_update_undone_by_a_concurrent_git_status_is_repaired() {
    let f = Fixture::new(&["fixer"]);
    let user = f.user();
    let ws = f.pair("fixer");
    write(user, "fix.txt", "fix\n");
    wait_content(&ws, "fix.txt", Some("fix\n"));
    // What a `git status` that read the workspace's index before berth updated it would write
    // back afterwards.
    let stale = std::fs::read(ws.join(".git/index")).unwrap();
    commit_all(user, "the user's fix");
    let tip = head(user, "HEAD");
    poll(
        "the agent's branch follows the user's commit",
        || head(&ws, "berth/fixer"),
        |h| *h == tip,
    );
    poll(
        "the workspace is clean",
        || git(&ws, &["status", "--porcelain"]),
        String::is_empty,
    );
    let tmp = ws.join(".git/index.stale");
    std::fs::write(&tmp, &stale).unwrap();
    std::fs::rename(&tmp, ws.join(".git/index")).unwrap();
    assert_ne!(
        git(&ws, &["status", "--porcelain"]),
        "",
        "the index is stale now"
    );
    poll(
        "the workspace's index is in step again",
        || git(&ws, &["status", "--porcelain"]),
        String::is_empty,
    );
}

#[test]
fn commits_flow_both_ways_by_fast_forward() {
    let f = Fixture::new(&["fixer"]);
    let user = f.user();
    let ws = f.pair("fixer");

    // The agent commits: the user's berth/fixer follows and the checkout is clean.
    write(&ws, "feature.txt", "feature\n");
    wait_content(user, "feature.txt", Some("feature\n"));
    commit_all(&ws, "the agent's feature");
    let tip = head(&ws, "HEAD");
    poll(
        "the user's branch follows the agent's commit",
        || head(user, "berth/fixer"),
        |h| *h == tip,
    );
    poll(
        "the checkout is clean",
        || git(user, &["status", "--porcelain"]),
        String::is_empty,
    );

    // The user commits: the agent's branch follows and its status is clean.
    write(user, "fix.txt", "fix\n");
    wait_content(&ws, "fix.txt", Some("fix\n"));
    commit_all(user, "the user's fix");
    let tip = head(user, "HEAD");
    poll(
        "the agent's branch follows the user's commit",
        || head(&ws, "berth/fixer"),
        |h| *h == tip,
    );
    poll(
        "the workspace is clean",
        || git(&ws, &["status", "--porcelain"]),
        String::is_empty,
    );
    assert_eq!(git(&ws, &["log", "-1", "--format=%s"]), "the user's fix");

    // Several commits at once.
    for i in 0..3 {
        write(&ws, &format!("n{i}.txt"), "n\n");
        commit_all(&ws, &format!("agent {i}"));
    }
    let tip = head(&ws, "HEAD");
    poll(
        "three commits reach the user",
        || head(user, "berth/fixer"),
        |h| *h == tip,
    );
    f.flush();
    assert_eq!(git(user, &["status", "--porcelain"]), "");
    assert_eq!(f.status()["state"], "active");
    assert!(f.status()["commits_to_user"].as_u64().unwrap() >= 2);
}

// -- 3. pauses and their automatic resume ---------------------------------------------------

/// Long enough for a change that must not travel to have travelled if it could.
fn settle() {
    std::thread::sleep(Duration::from_millis(500));
}

/// Runs git and expects it to fail (a conflicting merge).
fn git_fails(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "git {args:?} was expected to fail");
}

#[test]
fn user_switching_branch_or_detaching_pauses_until_back() {
    let f = Fixture::new(&["fixer"]);
    let user = f.user();
    write(user, "main-only.txt", "only on main\n");
    commit_all(user, "main moves on");
    let ws = f.pair("fixer");
    assert!(!exists(user, "main-only.txt"));

    git(user, &["switch", "-q", "main"]);
    let s = f.wait_notice("user_switched_branch");
    assert!(
        s["notices"][0]["message"]
            .as_str()
            .unwrap()
            .contains("main"),
        "{s:#}"
    );
    write(&ws, "while-away.txt", "agent\n");
    write(&ws, "a.txt", "agent's a while the user is on main\n");
    settle();
    assert!(
        !exists(user, "while-away.txt"),
        "nothing reaches a checkout on main"
    );
    assert_eq!(read(user, "a.txt").as_deref(), Some("alpha\n"));
    assert!(
        !exists(&ws, "main-only.txt"),
        "main's files do not reach the agent"
    );
    assert_eq!(git(user, &["status", "--porcelain"]), "");

    git(user, &["switch", "-q", "berth/fixer"]);
    f.wait_active();
    wait_content(user, "while-away.txt", Some("agent\n"));
    wait_same(user, &ws);

    git(user, &["switch", "-q", "--detach"]);
    f.wait_notice("user_detached_head");
    write(&ws, "detached.txt", "agent\n");
    settle();
    assert!(!exists(user, "detached.txt"));
    git(user, &["switch", "-q", "berth/fixer"]);
    f.wait_active();
    wait_content(user, "detached.txt", Some("agent\n"));
    wait_same(user, &ws);
}

#[test]
fn agent_switching_branch_or_losing_it_pauses_until_back() {
    let f = Fixture::new(&["fixer"]);
    let user = f.user();
    let ws = f.pair("fixer");

    git(&ws, &["switch", "-q", "-c", "side"]);
    f.wait_notice("agent_switched_branch");
    write(user, "u1.txt", "user\n");
    settle();
    assert!(!exists(&ws, "u1.txt"));
    git(&ws, &["switch", "-q", "berth/fixer"]);
    f.wait_active();
    wait_content(&ws, "u1.txt", Some("user\n"));

    git(&ws, &["switch", "-q", "--detach"]);
    git(&ws, &["branch", "-q", "-D", "berth/fixer"]);
    f.wait_notice("agent_branch_deleted");
    write(user, "u2.txt", "user\n");
    settle();
    assert!(!exists(&ws, "u2.txt"));
    git(&ws, &["switch", "-q", "-c", "berth/fixer"]);
    f.wait_active();
    wait_content(&ws, "u2.txt", Some("user\n"));
    wait_same(user, &ws);
}

#[test]
fn an_operation_in_progress_on_either_side_pauses_until_finished() {
    let f = Fixture::new(&["fixer"]);
    let user = f.user();
    let ws0 = f.ws("fixer");
    // Branches to merge later, one in each repository, each changing a.txt.
    git(user, &["switch", "-q", "-c", "topic-u", "berth/fixer"]);
    write(user, "a.txt", "user's topic\n");
    commit_all(user, "user's topic");
    git(user, &["switch", "-q", "main"]);
    git(&ws0, &["switch", "-q", "-c", "topic-a"]);
    write(&ws0, "a.txt", "agent's topic\n");
    commit_all(&ws0, "agent's topic");
    git(&ws0, &["switch", "-q", "berth/fixer"]);
    let ws = f.pair("fixer");

    // The user: a conflicting merge.
    write(user, "a.txt", "paired\n");
    wait_content(&ws, "a.txt", Some("paired\n"));
    commit_all(user, "paired");
    let tip = head(user, "HEAD");
    poll(
        "the agent follows",
        || head(&ws, "berth/fixer"),
        |h| *h == tip,
    );
    git_fails(user, &["merge", "-q", "topic-u"]);
    let s = f.wait_notice("operation_in_progress");
    assert_eq!(s["notices"][0]["side"], "user", "{s:#}");
    write(&ws, "x.txt", "agent\n");
    settle();
    assert_eq!(
        read(&ws, "a.txt").as_deref(),
        Some("paired\n"),
        "no markers"
    );
    assert!(!exists(user, "x.txt"));
    git(user, &["merge", "--abort"]);
    f.wait_active();
    wait_content(user, "x.txt", Some("agent\n"));
    wait_same(user, &ws);

    // The agent: a conflicting merge.
    write(&ws, "a.txt", "agent paired\n");
    wait_content(user, "a.txt", Some("agent paired\n"));
    commit_all(&ws, "agent paired");
    let tip = head(&ws, "HEAD");
    poll(
        "the user follows",
        || head(user, "berth/fixer"),
        |h| *h == tip,
    );
    poll(
        "the checkout is clean",
        || git(user, &["status", "--porcelain"]),
        String::is_empty,
    );
    git_fails(&ws, &["merge", "-q", "topic-a"]);
    let s = f.wait_notice("operation_in_progress");
    assert_eq!(s["notices"][0]["side"], "agent", "{s:#}");
    write(user, "y.txt", "user\n");
    settle();
    assert_eq!(read(user, "a.txt").as_deref(), Some("agent paired\n"));
    assert!(!exists(&ws, "y.txt"));
    git(&ws, &["merge", "--abort"]);
    f.wait_active();
    wait_content(&ws, "y.txt", Some("user\n"));
    wait_same(user, &ws);
}

#[test]
fn diverged_histories_pause_until_one_is_an_ancestor_again() {
    let f = Fixture::new(&["fixer"]);
    let user = f.user();
    let ws = f.pair("fixer");
    write(&ws, "c1.txt", "one\n");
    commit_all(&ws, "c1");
    let c1 = head(&ws, "HEAD");
    poll(
        "the user follows",
        || head(user, "berth/fixer"),
        |h| *h == c1,
    );
    git(&ws, &["commit", "-q", "--amend", "-m", "c1, amended"]);
    f.wait_notice("diverged");
    write(user, "z.txt", "user\n");
    settle();
    assert!(!exists(&ws, "z.txt"));
    assert_eq!(
        head(user, "berth/fixer"),
        c1,
        "berth never merges or rebases"
    );
    git(&ws, &["reset", "-q", "--keep", &c1]);
    f.wait_active();
    wait_content(&ws, "z.txt", Some("user\n"));
    wait_same(user, &ws);
}

#[test]
fn a_missing_workspace_pauses_until_it_is_back() {
    let f = Fixture::new(&["fixer"]);
    let user = f.user();
    let ws = f.pair("fixer");
    let away = ws.with_extension("away");
    std::fs::rename(&ws, &away).unwrap();
    f.wait_notice("agent_workspace_missing");
    write(user, "w.txt", "user\n");
    settle();
    assert!(!exists(&away, "w.txt") && !exists(&ws, "w.txt"));
    assert!(exists(user, "a.txt"), "the user keeps every file");
    std::fs::rename(&away, &ws).unwrap();
    f.wait_active();
    wait_content(&ws, "w.txt", Some("user\n"));
    write(&ws, "back.txt", "agent\n");
    wait_content(user, "back.txt", Some("agent\n"));
    wait_same(user, &ws);
}

#[test]
fn an_emptied_root_halts_until_it_is_back() {
    let f = Fixture::new(&["fixer"]);
    let user = f.user();
    let ws = f.pair("fixer");
    let before = files(user);
    // The workspace is emptied while syncing looks away (a merge marker holds it), so that
    // the whole emptying is seen at once, as after a daemon restart. (Emptied live, file by
    // file, the first deletions are carried over like any others before the root is empty;
    // see the report of this test's author.)
    let merge_head = ws.join(".git/MERGE_HEAD");
    std::fs::write(&merge_head, head(&ws, "HEAD") + "\n").unwrap();
    f.wait_notice("operation_in_progress");
    let out = std::process::Command::new("sh")
        .current_dir(&ws)
        .args([
            "-c",
            "find . -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::remove_file(&merge_head).unwrap();
    let s = f.wait_notice("root_emptied");
    assert_eq!(s["notices"][0]["side"], "agent", "{s:#}");
    settle();
    assert_eq!(files(user), before, "nothing was deleted in the checkout");
    assert_eq!(f.status()["state"], "paused");
    git(&ws, &["checkout", "--", "."]);
    f.wait_active();
    wait_same(user, &ws);
    assert_eq!(files(user), before);
    write(&ws, "after.txt", "agent\n");
    wait_content(user, "after.txt", Some("agent\n"));
}

#[test]
fn a_workspace_emptied_live_never_empties_the_checkout() {
    let f = Fixture::new(&["fixer"]);
    let user = f.user();
    let ws = f.pair("fixer");
    for i in 0..300 {
        write(&ws, &format!("many/d{}/f{i}.txt", i % 10), "agreed\n");
    }
    wait_content(user, "many/d9/f299.txt", Some("agreed\n"));
    wait_same(user, &ws);
    let before = files(user);
    // Emptied file by file, live (as `rm -rf` does), with nothing holding sync back.
    let out = std::process::Command::new("sh")
        .current_dir(&ws)
        .args([
            "-c",
            "find . -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let s = f.wait_notice("root_emptied");
    assert_eq!(s["notices"][0]["side"], "agent", "{s:#}");
    settle();
    assert_eq!(files(user), before, "nothing was deleted in the checkout");
    // The files come back: syncing resumes.
    git(&ws, &["checkout", "--", "."]);
    for i in 0..300 {
        write(&ws, &format!("many/d{}/f{i}.txt", i % 10), "agreed\n");
    }
    f.wait_active();
    wait_same(user, &ws);
}

#[test]
fn a_large_deletion_is_carried_over_once_quiet() {
    let f = Fixture::new(&["fixer"]);
    let user = f.user();
    let ws = f.pair("fixer");
    for i in 0..300 {
        write(&ws, &format!("many/d{}/f{i}.txt", i % 10), "agreed\n");
    }
    wait_content(user, "many/d9/f299.txt", Some("agreed\n"));
    wait_same(user, &ws);
    // A third of the tree removed at once: a burst, but not a tree being emptied.
    std::fs::remove_dir_all(ws.join("many/d0")).unwrap();
    std::fs::remove_dir_all(ws.join("many/d1")).unwrap();
    std::fs::remove_dir_all(ws.join("many/d2")).unwrap();
    poll(
        "the deletion reaches the checkout",
        || exists(user, "many/d0/f0.txt"),
        |e| !*e,
    );
    wait_same(user, &ws);
    assert!(exists(user, "many/d3/f3.txt"));
    assert_eq!(f.status()["state"], "active");
}

/// Makes `dir` refuse new entries, even for root (`chattr +i`); `false` if it cannot.
fn refuse_writes(dir: &Path, refuse: bool) -> bool {
    // SAFETY: getuid(2) cannot fail.
    if unsafe { libc::getuid() } != 0 {
        let m = if refuse { 0o555 } else { 0o755 };
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(m)).unwrap();
        return true;
    }
    std::process::Command::new("chattr")
        .arg(if refuse { "+i" } else { "-i" })
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_refused_write_pauses_until_it_succeeds() {
    let f = Fixture::new(&["fixer"]);
    let user = f.user();
    let ws = f.pair("fixer");
    assert!(
        refuse_writes(&ws.join("dir"), true),
        "cannot make a directory refuse writes: as root that takes `chattr +i`, which failed \
         here (is chattr installed, and does this file system support it?)"
    );
    /// Lets the directory be written (and removed) again, even when the test fails.
    struct Unrefuse(PathBuf);
    impl Drop for Unrefuse {
        fn drop(&mut self) {
            refuse_writes(&self.0, false);
        }
    }
    let unrefuse = Unrefuse(ws.join("dir"));
    write(user, "dir/blocked.txt", "user\n");
    let s = f.wait_notice("permission_denied");
    assert_eq!(s["notices"][0]["side"], "agent", "{s:#}");
    assert!(!exists(&ws, "dir/blocked.txt"));
    drop(unrefuse);
    f.wait_active();
    wait_content(&ws, "dir/blocked.txt", Some("user\n"));
    wait_same(user, &ws);
}

#[test]
#[ignore = "needs root to mount a small tmpfs; .ci/run runs it"]
fn a_full_disk_pauses_until_there_is_room() {
    crate::require_root("mount a small tmpfs");
    let f = Fixture::new(&["fixer"]);
    let user = f.user();
    let ws = f.pair("fixer");
    // A small file system inside the workspace.
    let small = ws.join("small");
    std::fs::create_dir(&small).unwrap();
    let mount = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&small)
        .output()
        .expect("run mount(8)");
    assert!(
        mount.status.success(),
        "cannot mount a small tmpfs: {}",
        String::from_utf8_lossy(&mount.stderr)
    );
    /// Unmounts it, even when the test fails.
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(small.clone());
    poll(
        "the (empty) directory reaches the checkout",
        || user.join("small").is_dir(),
        |d| *d,
    );
    // 512 KiB cannot fit in 256 KiB: writing it fails with ENOSPC, and nothing half-written
    // is left. Written whole (renamed into place), so no smaller, partly written version of it is
    // ever there to be synced.
    let staged = user.parent().unwrap().join(format!(
        "{}-big.txt",
        user.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&staged, "x".repeat(512 * 1024)).unwrap();
    std::fs::rename(&staged, user.join("small/big.txt")).unwrap();
    let s = f.wait_notice("disk_full");
    assert_eq!(s["notices"][0]["side"], "agent", "{s:#}");
    assert!(!exists(&ws, "small/big.txt"));
    let leftovers: Vec<_> = std::fs::read_dir(&small).unwrap().flatten().collect();
    assert!(leftovers.is_empty(), "partial files left: {leftovers:?}");
    // Room again (the user makes the file smaller): the retry succeeds and pairing resumes.
    write(user, "small/big.txt", "fits now\n");
    f.wait_active();
    wait_content(&ws, "small/big.txt", Some("fits now\n"));
    wait_same(user, &ws);
}

#[test]
fn a_stalled_watch_pauses_and_resumes_once_watched_anew() {
    let f = Fixture::with_env(&["fixer"], &[("BERTH_PAIR_HEARTBEAT_MS", "300")]);
    let user = f.user();
    let ws = f.pair("fixer");
    // Swap the workspace for an identical copy: the watch still follows the old directory, so
    // edits in the new one raise no event; only the heartbeat can tell.
    let parent = ws.parent().unwrap().to_path_buf();
    let copy = parent.join("fixer-copy");
    let old = parent.join("fixer-old");
    let cp = std::process::Command::new("cp")
        .arg("-a")
        .arg(&ws)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(cp.success());
    std::fs::rename(&ws, &old).unwrap();
    std::fs::rename(&copy, &ws).unwrap();
    write(&ws, "after-swap.txt", "the agent, in the new directory\n");
    poll(
        "a pause for a stalled watch is recorded",
        || f.berth(&["--json", "events"]).stdout,
        |log| log.contains("watch_stalled"),
    );
    // Watched anew: the edit arrives and pairing is active again.
    wait_content(
        user,
        "after-swap.txt",
        Some("the agent, in the new directory\n"),
    );
    f.wait_active();
    std::fs::remove_dir_all(&old).unwrap();
}

#[test]
fn git_config_excludes_paths_and_limits_sizes_and_status_lists_what_was_skipped() {
    let f = Fixture::new(&["fixer"]);
    let user = f.user();
    git(user, &["config", "--add", "berth.exclude", "scratch/"]);
    git(user, &["config", "--add", "berth.exclude", "*.tmp"]);
    git(user, &["config", "berth.maxSize", "1k"]);
    let ws = f.pair("fixer");
    write(&ws, "scratch/notes.txt", "the agent's scratch\n");
    write(&ws, "x.tmp", "temporary\n");
    write(&ws, "big.bin", &"b".repeat(4096));
    write(&ws, "small.txt", "fits\n");
    wait_content(user, "small.txt", Some("fits\n"));
    f.flush();
    assert!(!exists(user, "scratch/notes.txt"));
    assert!(!exists(user, "x.tmp"));
    assert!(!exists(user, "big.bin"));
    let s = poll(
        "the large file is listed as not synced",
        || f.status(),
        |s| s["warnings"].to_string().contains("big.bin"),
    );
    assert!(
        s["warnings"].to_string().contains("over the limit"),
        "{s:#}"
    );
    let human = f.berth(&["pair", "status"]);
    assert!(human.stdout.contains("not synced:"), "{human}");
    // A bad setting is a clear error, not a silent default.
    f.berth(&["pair", "stop"]).expect_code(0);
    git(user, &["config", "berth.maxSize", "lots"]);
    let out = f.berth(&["pair", "fixer"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("berth.maxSize"), "{out}");
    assert_eq!(f.status()["state"], "off");
    assert_eq!(git(user, &["symbolic-ref", "--short", "HEAD"]), "main");
}

#[test]
fn status_doctor_and_events_know_about_pairing() {
    let f = Fixture::new(&["fixer"]);
    let user = f.user();
    let pairing_of = |f: &Fixture| f.berth(&["--json", "status"]).json()["pairing"].clone();
    assert_eq!(pairing_of(&f)["state"], "off");
    dirty(user);
    let ws = f.pair("fixer");
    let p = pairing_of(&f);
    assert_eq!(
        (&p["state"], &p["agent"]),
        (&"active".into(), &"fixer".into()),
        "{p:#}"
    );
    assert!(f.berth(&["status"]).stdout.contains("with fixer"));
    let check = |f: &Fixture| {
        let report = f.berth(&["--json", "doctor"]).json();
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "pairing")
            .cloned()
            .unwrap()
    };
    assert_eq!(check(&f)["status"], "ok");
    // Paused: a warning naming what it waits for; doctor still exits 0.
    std::fs::write(ws.join(".git/MERGE_HEAD"), head(&ws, "HEAD") + "\n").unwrap();
    f.wait_notice("operation_in_progress");
    let c = check(&f);
    assert_eq!(c["status"], "warning", "{c:#}");
    assert!(c["details"].to_string().contains("merge"), "{c:#}");
    f.berth(&["doctor"]).expect_code(0);
    std::fs::remove_file(ws.join(".git/MERGE_HEAD")).unwrap();
    f.wait_active();
    // Every transition of the start is an event, in order.
    let log = f.berth(&["--json", "events"]).stdout;
    let steps: Vec<String> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == "pair.state")
        .map(|e| {
            e["data"]["describe"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let start: Vec<&str> = steps.iter().take(7).map(String::as_str).collect();
    assert_eq!(
        start,
        [
            "starting (validate)",
            "starting (snapshot)",
            "starting (mirror_branch)",
            "starting (switch_checkout)",
            "starting (copy_agent_files)",
            "starting (begin_sync)",
            "active (idle)",
        ],
        "{steps:#?}"
    );
    assert!(steps.iter().any(|s| s.starts_with("paused")), "{steps:#?}");
}

// -- 4. kept conflicts --------------------------------------------------------------------------

#[test]
fn a_conflict_while_paused_keeps_the_agents_version() {
    let f = Fixture::new(&["fixer"]);
    let user = f.user();
    let ws = f.pair("fixer");
    let merge_head = ws.join(".git/MERGE_HEAD");
    std::fs::write(&merge_head, head(&ws, "HEAD") + "\n").unwrap();
    f.wait_notice("operation_in_progress");
    write(user, "a.txt", "the user's version\n");
    write(&ws, "a.txt", "the agent's version\n");
    write(&ws, "dir/c.txt", "only the agent changed this\n");
    // Delete versus modify keeps the modification, whichever side made it.
    std::fs::remove_file(user.join("b.txt")).unwrap();
    write(&ws, "b.txt", "the agent's b\n");
    write(user, "run.sh", "#!/bin/sh\n# the user's\n");
    std::fs::remove_file(ws.join("run.sh")).unwrap();
    settle();
    std::fs::remove_file(&merge_head).unwrap();
    f.wait_active();
    wait_content(&ws, "a.txt", Some("the user's version\n"));
    wait_content(user, "dir/c.txt", Some("only the agent changed this\n"));
    wait_same(user, &ws);
    let s = poll(
        "the conflict is listed",
        || f.status(),
        |s| s["conflicts"].as_array().is_some_and(|c| !c.is_empty()),
    );
    let pairing = s["pairing"].as_str().unwrap();
    let conflicts = s["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{s:#}");
    assert_eq!(conflicts[0]["path"], "a.txt");
    let refname = conflicts[0]["ref"]
        .as_str()
        .or(conflicts[0]["refname"].as_str())
        .unwrap()
        .to_string();
    assert_eq!(refname, format!("refs/berth/conflicts/{pairing}/1"));
    assert_eq!(
        git(&ws, &["show", &format!("{refname}:a.txt")]),
        "the agent's version"
    );
    assert_eq!(read(user, "a.txt").as_deref(), Some("the user's version\n"));
    // The web console's pairing page shows it as a diff against the file now.
    let client = berth_client::Client::unix(f.h.socket());
    let ask = |refname: &str| {
        let body = serde_json::json!({ "repo": user, "refname": refname });
        crate::rt().block_on(client.post_json::<_, Value>("/v1/pair/conflict", &body))
    };
    let d = ask(&refname).unwrap();
    assert_eq!(d["path"], "a.txt");
    let diff = d["diff"].as_str().unwrap();
    assert!(
        diff.contains("\n-the agent's version\n") && diff.contains("\n+the user's version\n"),
        "{diff}"
    );
    match ask("refs/heads/main") {
        Err(berth_client::ClientError::Api { status: 404, .. }) => {}
        other => panic!("only kept conflicts are shown: {other:?}"),
    }
    assert_eq!(read(user, "b.txt").as_deref(), Some("the agent's b\n"));
    assert_eq!(
        read(&ws, "run.sh").as_deref(),
        Some("#!/bin/sh\n# the user's\n")
    );

    // A second conflict, paused from the user's side this time, is kept as the next one.
    let user_merge_head = user.join(".git/MERGE_HEAD");
    std::fs::write(&user_merge_head, head(user, "HEAD") + "\n").unwrap();
    f.wait_notice("operation_in_progress");
    write(user, "a.txt", "the user's second\n");
    write(&ws, "a.txt", "the agent's second\n");
    settle();
    std::fs::remove_file(&user_merge_head).unwrap();
    f.wait_active();
    wait_content(&ws, "a.txt", Some("the user's second\n"));
    let s = poll(
        "the second conflict is listed",
        || f.status(),
        |s| s["conflicts"].as_array().is_some_and(|c| c.len() == 2),
    );
    let second = s["conflicts"][1]["refname"]
        .as_str()
        .or(s["conflicts"][1]["ref"].as_str())
        .unwrap()
        .to_string();
    assert_eq!(second, format!("refs/berth/conflicts/{pairing}/2"));
    assert_eq!(
        git(&ws, &["show", &format!("{second}:a.txt")]),
        "the agent's second"
    );
    wait_same(user, &ws);
}

// -- 5.–7. stopping and switching -------------------------------------------------------------

/// Edits on both sides while paired (`tag` makes them new each time), and a commit by the
/// agent; what the agent must still hold afterwards.
fn edit_while_paired(f: &Fixture, ws: &Path, tag: &str) -> Vec<(String, String)> {
    let user = f.user();
    let edits = vec![
        (format!("paired-user-{tag}.txt"), format!("user {tag}\n")),
        (format!("paired-agent-{tag}.txt"), format!("agent {tag}\n")),
        (format!("committed-{tag}.txt"), format!("committed {tag}\n")),
        (
            "a.txt".to_string(),
            format!("the user's a while paired {tag}\n"),
        ),
    ];
    write(user, &edits[0].0, &edits[0].1);
    write(ws, &edits[1].0, &edits[1].1);
    write(ws, &edits[2].0, &edits[2].1);
    commit_all(ws, &format!("the agent's work {tag}"));
    write(user, &edits[3].0, &edits[3].1);
    for (rel, content) in &edits {
        wait_content(ws, rel, Some(content));
        wait_content(user, rel, Some(content));
    }
    f.flush();
    edits
}

#[test]
fn stop_from_active_restores_every_kind_of_change_byte_for_byte() {
    let f = Fixture::new(&["fixer"]);
    let user = f.user();
    for stop in [&["pair", "stop"][..], &["unpair"][..]] {
        dirty(user);
        let before = worktree_state(user);
        let ws = f.pair("fixer");
        assert!(
            f.status()["snapshot"].is_string(),
            "the dirty state is kept"
        );
        let edits = edit_while_paired(&f, &ws, stop[0]);
        let out = f.berth(stop);
        out.expect_code(0);
        assert!(out.stdout.contains("back on main"), "{out}");
        assert_eq!(worktree_state(user), before, "{stop:?} restores everything");
        assert_eq!(f.status()["state"], "off");
        for (rel, content) in &edits {
            assert_eq!(
                read(&ws, rel).as_ref(),
                Some(content),
                "the agent keeps {rel}"
            );
        }
        // Start the next round from the base again.
        git(user, &["reset", "-q", "--hard"]);
        git(user, &["clean", "-fdq", "-e", "debug.log"]);
        git(&ws, &["reset", "-q", "--hard"]);
        git(&ws, &["clean", "-fdq"]);
    }
}

#[test]
fn stop_while_paused_changes_nothing_and_keeps_the_snapshot() {
    let f = Fixture::new(&["fixer"]);
    let user = f.user();
    dirty(user);
    let original = worktree_state(user);
    let ws = f.pair("fixer");
    let snapshot = f.status()["snapshot"].as_str().unwrap().to_string();
    write(user, "while-paired.txt", "x\n");
    wait_content(&ws, "while-paired.txt", Some("x\n"));
    std::fs::write(ws.join(".git/MERGE_HEAD"), head(&ws, "HEAD") + "\n").unwrap();
    f.wait_notice("operation_in_progress");
    let before = worktree_state(user);
    let out = f.berth(&["pair", "stop"]);
    out.expect_code(0);
    assert!(out.stdout.contains(&snapshot), "{out}");
    assert!(out.stdout.contains("nothing was changed"), "{out}");
    assert_eq!(
        worktree_state(user),
        before,
        "a stop while paused changes nothing"
    );
    assert_eq!(f.status()["state"], "off");
    let list = f.berth(&["--json", "stash", "list"]).json();
    assert!(
        list["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == snapshot.as_str()),
        "{list}"
    );
    // The snapshot can be restored later, on the original branch, to the state before
    // pairing.
    std::fs::remove_file(ws.join(".git/MERGE_HEAD")).unwrap();
    git(user, &["reset", "-q", "--hard"]);
    git(user, &["clean", "-fdq", "-e", "*.log"]);
    git(user, &["switch", "-q", "main"]);
    f.berth(&["stash", "restore", &snapshot]).expect_code(0);
    assert_eq!(worktree_state(user), original);
}

#[test]
fn a_flush_without_an_answer_times_out_with_its_own_code() {
    let f = Fixture::with_env(
        &["fixer"],
        &[("BERTH_FAILPOINTS", "sync.flush=sleep(60000)")],
    );
    let user = f.user();
    git(user, &["config", "berth.stopTimeout", "1s"]);
    f.pair("fixer");
    let out = f.berth(&["--json", "pair", "flush"]);
    assert_eq!(out.code, 1, "{out}");
    let err = out.json()["error"].clone();
    assert_eq!(err["code"], "timeout", "not an internal error: {out}");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or_default()
            .contains("got no answer within 1s"),
        "{out}"
    );
}

#[test]
fn a_final_sync_without_an_answer_gives_up_in_time_and_changes_nothing() {
    // Every flush hangs for a minute inside the sync loop: a tree that does not respond.
    let f = Fixture::with_env(
        &["fixer"],
        &[("BERTH_FAILPOINTS", "sync.flush=sleep(60000)")],
    );
    let user = f.user();
    git(user, &["config", "berth.stopTimeout", "1s"]);
    dirty(user);
    let ws = f.pair("fixer");
    let snapshot = f.status()["snapshot"].as_str().unwrap().to_string();
    write(user, "while-paired.txt", "x\n");
    wait_content(&ws, "while-paired.txt", Some("x\n"));
    let (user_before, ws_before) = (worktree_state(user), worktree_state(&ws));

    let began = std::time::Instant::now();
    let out = f.berth(&["pair", "stop"]);
    let took = began.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "the stop gave up after {took:?}"
    );
    assert_ne!(out.code, 0, "{out}");
    for says in [
        "got no answer within 1s",
        "nothing was changed in either tree",
        "`berth pair stop`",
        &snapshot,
    ] {
        assert!(out.stderr.contains(says), "says {says:?}: {out}");
    }
    assert_eq!(
        worktree_state(user),
        user_before,
        "the checkout is unchanged"
    );
    assert_eq!(worktree_state(&ws), ws_before, "the workspace is unchanged");
    let s = f.status();
    assert_eq!(s["state"], "paused", "{s}");
    assert_eq!(codes(&s), ["final_sync_timed_out"]);
    assert_eq!(s["snapshot"], snapshot.as_str());

    // Stopping again does not wait for the hung loop: both trees stay as they are, and the
    // snapshot is kept.
    let began = std::time::Instant::now();
    let out = f.berth(&["pair", "stop"]);
    let took = began.elapsed();
    out.expect_code(0);
    assert!(
        took < Duration::from_secs(10),
        "the second stop took {took:?}"
    );
    assert!(
        out.stdout.contains("nothing was changed") && out.stdout.contains(&snapshot),
        "{out}"
    );
    assert_eq!(f.status()["state"], "off");
    assert_eq!(worktree_state(user), user_before);
    assert_eq!(worktree_state(&ws), ws_before);
    let list = f.berth(&["--json", "stash", "list"]).json();
    assert!(list.to_string().contains(&snapshot), "{list}");
}

/// The bytes of `dir`'s `.git/info/exclude` (`None`: no such file).
fn info_exclude(dir: &Path) -> Option<Vec<u8>> {
    std::fs::read(dir.join(".git/info/exclude")).ok()
}

#[test]
fn stop_takes_out_exactly_the_exclude_line_berth_added() {
    let f = Fixture::new(&["fixer", "other"]);
    let user = f.user();
    // A file without a final newline, to be given back without one.
    let exclude = user.join(".git/info/exclude");
    std::fs::write(&exclude, "# the user's own\n*.mine").unwrap();
    let (before, ws_before) = (info_exclude(user), info_exclude(&f.ws("fixer")));
    let ws = f.pair("fixer");
    for dir in [user, ws.as_path()] {
        let text = String::from_utf8(info_exclude(dir).unwrap()).unwrap();
        assert!(text.lines().any(|l| l == ".berth-tmp-*"), "{text}");
    }
    f.berth(&["pair", "stop"]).expect_code(0);
    assert_eq!(
        info_exclude(user),
        before,
        "the checkout's exclude is as it was"
    );
    assert_eq!(
        info_exclude(&ws),
        ws_before,
        "the workspace's exclude is as it was"
    );

    // The same line written by the user before pairing is theirs: it stays, and the file is
    // not touched at all.
    std::fs::write(&exclude, "*.mine\n.berth-tmp-*\n").unwrap();
    let before = info_exclude(user);
    f.pair("other");
    assert_eq!(
        info_exclude(user),
        before,
        "nothing added: the pattern is there"
    );
    f.berth(&["pair", "stop"]).expect_code(0);
    assert_eq!(info_exclude(user), before, "the user's own line stays");
}

#[test]
fn a_line_a_crash_left_behind_is_found_and_taken_out_by_doctor_fix() {
    let f = Fixture::with_env(
        &["fixer"],
        &[("BERTH_FAILPOINTS", "pair.finish.exclude=sleep(60000)")],
    );
    let user = f.user();
    let before = info_exclude(user);
    f.pair("fixer");
    // The daemon dies after the pairing ended, before it took its line out.
    let mut stop = f.h.command(&["pair", "stop"]);
    stop.current_dir(user)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut stop = stop.spawn().unwrap();
    poll(
        "the failpoint is reached",
        || std::fs::read_to_string(f.h.run_dir().join("daemon.log")).unwrap_or_default(),
        |log| log.contains("failpoint reached") && log.contains("pair.finish.exclude"),
    );
    f.h.signal_daemon(libc::SIGKILL);
    let _ = stop.wait();
    poll(
        "the daemon is gone",
        || f.h.state(),
        |s| s == "stale" || s == "stopped",
    );
    f.h.run(&["daemon", "start"]).expect_code(0);
    assert_eq!(f.status()["state"], "off");
    assert_ne!(info_exclude(user), before, "the line is left behind");

    let out = f.berth(&["doctor"]);
    out.expect_code(1);
    assert!(
        out.stdout.contains("PROBLEM leftovers") && out.stdout.contains("--fix"),
        "{out}"
    );
    let exclude = user.join(".git/info/exclude");
    let out = f.berth(&["doctor", "--fix"]);
    out.expect_code(0);
    assert!(
        out.stdout.contains("fixed   leftovers")
            && out.stdout.contains(&exclude.display().to_string()),
        "{out}"
    );
    assert_eq!(info_exclude(user), before, "taken out exactly");
    let out = f.berth(&["--json", "doctor"]);
    out.expect_code(0);
    assert!(out.stdout.contains("no line of berth's left"), "{out}");
}

#[test]
fn switching_agents_carries_the_snapshot_over() {
    let f = Fixture::new(&["first", "second"]);
    let user = f.user();
    dirty(user);
    let before = worktree_state(user);
    let ws1 = f.pair("first");
    let snapshot = f.status()["snapshot"].clone();
    assert!(snapshot.is_string());
    let edits = edit_while_paired(&f, &ws1, "first");

    let out = f.berth(&["--json", "pair", "second"]);
    out.expect_code(0);
    let s = f.status();
    assert_eq!(s["state"], "active", "{s:#}");
    assert_eq!(s["agent"], "second");
    assert_eq!(s["snapshot"], snapshot, "the snapshot carries over");
    assert_eq!(
        git(user, &["symbolic-ref", "--short", "HEAD"]),
        "berth/second"
    );
    let ws2 = PathBuf::from(s["agent_workspace"].as_str().unwrap());
    wait_same(user, &ws2);
    assert!(
        !exists(user, "paired-agent-first.txt"),
        "the first agent's files stay there"
    );
    for (rel, content) in &edits {
        assert_eq!(
            read(&ws1, rel).as_ref(),
            Some(content),
            "the first agent keeps {rel}"
        );
    }
    write(user, "to-second.txt", "x\n");
    wait_content(&ws2, "to-second.txt", Some("x\n"));
    assert!(!exists(&ws1, "to-second.txt"));

    f.berth(&["pair", "stop"]).expect_code(0);
    assert_eq!(worktree_state(user), before);
}

// -- 8. daemon restart --------------------------------------------------------------------------

#[test]
fn a_daemon_restart_resumes_an_active_pairing() {
    let f = Fixture::new(&["fixer"]);
    let user = f.user();
    dirty(user);
    let before = worktree_state(user);
    let ws = f.pair("fixer");
    write(user, "before-restart.txt", "x\n");
    wait_content(&ws, "before-restart.txt", Some("x\n"));
    let pairing = f.status()["pairing"].clone();
    f.h.run(&["daemon", "stop"]).expect_code(0);
    // Edits while the daemon is down are carried once it is back.
    write(&ws, "while-down.txt", "agent\n");
    write(user, "user-while-down.txt", "user\n");
    start(&f.h);
    f.wait_active();
    assert_eq!(f.status()["pairing"], pairing);
    wait_content(user, "while-down.txt", Some("agent\n"));
    wait_content(&ws, "user-while-down.txt", Some("user\n"));
    write(&ws, "after.txt", "agent\n");
    wait_content(user, "after.txt", Some("agent\n"));
    write(user, "after-user.txt", "user\n");
    wait_content(&ws, "after-user.txt", Some("user\n"));
    wait_same(user, &ws);
    assert!(
        f.status()["conflicts"].as_array().unwrap().is_empty(),
        "no false conflicts"
    );
    f.berth(&["pair", "stop"]).expect_code(0);
    assert_eq!(worktree_state(user), before);
}

/// The files of digests kept between pairings (`state/hashes/`).
fn kept_digests(h: &TestHome) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = match std::fs::read_dir(h.path().join("state").join("hashes")) {
        Ok(dir) => dir.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    };
    found.sort();
    found
}

#[test]
fn a_stop_keeps_both_trees_digests_and_removing_the_agent_drops_its_own() {
    let f = Fixture::new(&["keep"]);
    f.pair("keep");
    f.berth(&["--json", "pair", "stop"]).expect_code(0);
    let kept = kept_digests(&f.h);
    assert_eq!(
        kept.len(),
        2,
        "the checkout's and the workspace's: {kept:?}"
    );
    // A second pairing starts from them and keeps them up to date.
    f.pair("keep");
    f.berth(&["--json", "pair", "stop"]).expect_code(0);
    assert_eq!(kept_digests(&f.h), kept);
    f.berth(&["--json", "agent", "rm", "keep"]).expect_code(0);
    let left = kept_digests(&f.h);
    assert_eq!(left.len(), 1, "only the checkout's: {left:?}");
    assert!(kept.contains(&left[0]));
}
