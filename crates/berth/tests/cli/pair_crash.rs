//! The crash matrix: the daemon killed at every step of pairing start, stop and rollback,
//! of snapshot capture and restore, and inside live sync (an apply's temporary file written
//! but not renamed, renamed but not yet in the ancestor, half-way through a round of 1,000
//! files, commits carried to one copy of the branch but not the other); started again, it
//! recovers the user's state exactly.
//!
//! Each case (one row of [`MATRIX`]) starts a daemon whose failpoint sleeps, drives pairing
//! until the daemon log says the failpoint was reached, SIGKILLs the daemon, starts it again
//! without failpoints, waits until the pairing settled (`off` or `active`) and checks:
//!
//! - (a) the checkout is exactly as before pairing (every file's bytes and mode, `git status`
//!   with ignored files, the staged diff, HEAD) — at once, or after `berth pair stop` when the
//!   pairing legitimately came back active;
//! - (b) nothing either side wrote is gone: the agent's commit and its uncommitted files (also
//!   one written while the daemon hung at the failpoint), and what the user wrote while paired
//!   (which is in the agent's workspace after the stop);
//! - (c) no snapshot ref is left behind unless the outcome says the snapshot was kept, and then
//!   `berth stash list` shows it and restoring it gives the exact state;
//! - (d) a pairing killed while syncing comes back, and after a flush both trees hold exactly
//!   the same files — every edit on either side, none reverted, no temporary file left — and
//!   both copies of the branch are the same commit.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use berth_core::pairing::{StartStep, StopStep, Undo};
use berth_testkit::{TestHome, WorktreeState, base, dirty, git, repo, wait_until, worktree_state};

use crate::home;

/// Where the failpoint is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// During `berth pair fixer` (a start, or the rollback of one).
    Start,
    /// During `berth pair stop` from `active`.
    Stop,
    /// During `berth pair other` while active with `fixer`: the switch's stop steps, then a
    /// start that carries the snapshot over.
    Switch,
    /// While active: the failpoint is inside live sync, reached by an edit (or a commit) the
    /// row makes ([`Trigger`]).
    Paired,
}

/// What a [`Phase::Paired`] row does to reach its failpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// The user writes one file.
    Edit,
    /// The agent writes one file, and writes it again while the daemon hangs (after the
    /// first version reached the checkout): the second version must win.
    AgentEdit,
    /// The user writes [`BULK`] files at once.
    Bulk,
    /// The agent commits.
    Commit,
}

/// How many files a [`Trigger::Bulk`] writes.
const BULK: usize = 1000;

/// The trigger of a live-sync row, by failpoint.
fn trigger(failpoint: &str) -> Trigger {
    match failpoint {
        berth_sync::failpoint::ROUND_HALF_WAY => Trigger::Bulk,
        berth_daemon::failpoints::CARRY_COMMITS => Trigger::Commit,
        berth_sync::failpoint::APPLY_RENAMED => Trigger::AgentEdit,
        _ => Trigger::Edit,
    }
}

/// One row: the failpoint the daemon is killed at, other failpoints set with it (to make a
/// step fail so that a rollback reaches an undo), and where it is reached.
struct Case {
    failpoint: &'static str,
    also: &'static str,
    phase: Phase,
    /// The outcome the pairing ends with (`pair.finished`): `rolled_back` (an interrupted
    /// start is undone), or `stopped` (a stop is finished; a start that had begun syncing
    /// resumes, and is then stopped).
    outcome: &'static str,
}

const fn case(
    failpoint: &'static str,
    also: &'static str,
    phase: Phase,
    outcome: &'static str,
) -> Case {
    Case {
        failpoint,
        also,
        phase,
        outcome,
    }
}

const ROLLED_BACK: &str = "rolled_back";
const STOPPED: &str = "stopped";

/// A failing `begin_sync` rolls back through every undo but `drop_snapshot`.
const FAIL_BEGIN_SYNC: &str = "pair.start.begin_sync=error(5)";
/// The live loop hangs in its next write, its temporary file written (reached after the row's
/// own failpoint, by what the agents write then).
const HANG_IN_A_WRITE: &str = "sync.apply.temp_written=sleep(60000)";
/// A failing `mirror_branch` rolls back while the checkout still holds the user's state: the
/// snapshot is dropped.
const FAIL_MIRROR: &str = "pair.start.mirror_branch=error(5)";

/// Every failpoint the matrix covers; [`the_matrix_names_every_failpoint`] checks it is all.
const MATRIX: &[Case] = &[
    case("pair.start.validate", "", Phase::Start, ROLLED_BACK),
    case("pair.start.snapshot", "", Phase::Start, ROLLED_BACK),
    case("pair.start.mirror_branch", "", Phase::Start, ROLLED_BACK),
    case("pair.start.switch_checkout", "", Phase::Start, ROLLED_BACK),
    case("pair.start.copy_agent_files", "", Phase::Start, ROLLED_BACK),
    case("pair.start.begin_sync", "", Phase::Start, STOPPED),
    case("snapshot.index_tree", "", Phase::Start, ROLLED_BACK),
    case("snapshot.work_tree", "", Phase::Start, ROLLED_BACK),
    case("snapshot.commit", "", Phase::Start, ROLLED_BACK),
    case("snapshot.ref", "", Phase::Start, ROLLED_BACK),
    case(
        "pair.undo.stop_sync",
        FAIL_BEGIN_SYNC,
        Phase::Start,
        ROLLED_BACK,
    ),
    case(
        "pair.undo.clean_checkout",
        FAIL_BEGIN_SYNC,
        Phase::Start,
        ROLLED_BACK,
    ),
    case(
        "pair.undo.switch_back",
        FAIL_BEGIN_SYNC,
        Phase::Start,
        ROLLED_BACK,
    ),
    case(
        "pair.undo.restore_mirror",
        FAIL_BEGIN_SYNC,
        Phase::Start,
        ROLLED_BACK,
    ),
    case(
        "pair.undo.restore_snapshot",
        FAIL_BEGIN_SYNC,
        Phase::Start,
        ROLLED_BACK,
    ),
    case(
        "pair.undo.drop_snapshot",
        FAIL_MIRROR,
        Phase::Start,
        ROLLED_BACK,
    ),
    case("pair.stop.final_sync", "", Phase::Stop, STOPPED),
    case("pair.stop.clean_checkout", "", Phase::Stop, STOPPED),
    case("pair.stop.switch_back", "", Phase::Stop, STOPPED),
    case("pair.stop.restore_snapshot", "", Phase::Stop, STOPPED),
    case("restore.plan", "", Phase::Stop, STOPPED),
    case("restore.read_tree", "", Phase::Stop, STOPPED),
    case("restore.head", "", Phase::Stop, STOPPED),
    case("restore.index", "", Phase::Stop, STOPPED),
    case("restore.delete_ref", "", Phase::Stop, STOPPED),
    // Restoring inside a rollback (a failed `begin_sync`), killed half-way.
    case(
        "restore.read_tree",
        FAIL_BEGIN_SYNC,
        Phase::Start,
        ROLLED_BACK,
    ),
    case("restore.index", FAIL_BEGIN_SYNC, Phase::Start, ROLLED_BACK),
    // A switch: its stop steps are finished and the start with the other agent goes on;
    // its start (carrying the snapshot over) is undone back to the user's own state.
    case("pair.stop.final_sync", "", Phase::Switch, STOPPED),
    case("pair.stop.clean_checkout", "", Phase::Switch, STOPPED),
    case("pair.start.validate", "", Phase::Switch, ROLLED_BACK),
    case("pair.start.snapshot", "", Phase::Switch, ROLLED_BACK),
    case("pair.start.mirror_branch", "", Phase::Switch, ROLLED_BACK),
    case("pair.start.switch_checkout", "", Phase::Switch, ROLLED_BACK),
    case(
        "pair.start.copy_agent_files",
        "",
        Phase::Switch,
        ROLLED_BACK,
    ),
    case("pair.start.begin_sync", "", Phase::Switch, STOPPED),
    case(
        "pair.undo.restore_snapshot",
        FAIL_BEGIN_SYNC,
        Phase::Switch,
        ROLLED_BACK,
    ),
    // The switch's stop hangs before its final sync while the link still carries what the
    // agents write into the checkout, and the daemon is killed with that write's temporary
    // file on disk: nothing must be left of it (`git clean` alone leaves it: it is ignored).
    case(
        "pair.stop.final_sync",
        HANG_IN_A_WRITE,
        Phase::Switch,
        STOPPED,
    ),
    // Inside live sync: the pairing resumes.
    case(
        berth_sync::failpoint::APPLY_TEMP_WRITTEN,
        "",
        Phase::Paired,
        STOPPED,
    ),
    case(
        berth_sync::failpoint::APPLY_RENAMED,
        "",
        Phase::Paired,
        STOPPED,
    ),
    case(
        berth_sync::failpoint::ROUND_HALF_WAY,
        "",
        Phase::Paired,
        STOPPED,
    ),
    case(
        berth_daemon::failpoints::CARRY_COMMITS,
        "",
        Phase::Paired,
        STOPPED,
    ),
];

#[test]
fn the_matrix_names_every_failpoint() {
    let mut want: BTreeSet<String> = BTreeSet::new();
    want.extend(StartStep::ALL.iter().map(|s| s.failpoint()));
    want.extend(StopStep::ALL.iter().map(|s| s.failpoint()));
    want.extend(Undo::ALL.iter().map(|u| u.failpoint()));
    want.extend(
        berth_git::failpoint::FAILPOINTS
            .iter()
            .map(|s| s.to_string()),
    );
    want.extend(
        berth_sync::failpoint::CRASH_POINTS
            .iter()
            .map(|s| s.to_string()),
    );
    want.insert(berth_daemon::failpoints::CARRY_COMMITS.to_string());
    let have: BTreeSet<String> = MATRIX.iter().map(|c| c.failpoint.to_string()).collect();
    assert_eq!(have, want, "the matrix and the failpoints differ");
    let rows_seen: BTreeSet<(&str, &str, Phase)> = MATRIX
        .iter()
        .map(|c| (c.failpoint, c.also, c.phase))
        .collect();
    assert_eq!(rows_seen.len(), MATRIX.len(), "a row is listed twice");
    // Every group test below runs some rows; together, all of them.
    let grouped: usize = GROUPS.iter().map(|g| rows(g).len()).sum();
    assert_eq!(grouped, MATRIX.len());
}

/// The groups, one test each, by failpoint prefix.
const GROUPS: &[&str] = &[
    "pair.start.",
    "pair.stop.",
    "pair.undo.",
    "snapshot.",
    "restore.",
    SWITCH,
    LIVE,
];

/// The rows of a group: a switch's, or the others' by failpoint prefix.
fn rows(group: &str) -> Vec<&'static Case> {
    MATRIX
        .iter()
        .filter(|c| match c.phase {
            Phase::Switch => group == SWITCH,
            Phase::Paired => group == LIVE,
            _ => c.failpoint.starts_with(group),
        })
        .collect()
}

const SWITCH: &str = "switch";
const LIVE: &str = "live";

#[test]
fn crash_at_every_start_step() {
    run_group("pair.start.");
}

#[test]
fn crash_at_every_stop_step() {
    run_group("pair.stop.");
}

#[test]
fn crash_at_every_undo_of_a_failed_start() {
    run_group("pair.undo.");
}

#[test]
fn crash_at_every_step_of_snapshot_capture() {
    run_group("snapshot.");
}

#[test]
fn crash_at_every_step_of_snapshot_restore() {
    run_group("restore.");
}

#[test]
fn crash_at_steps_of_a_switch() {
    run_group(SWITCH);
}

#[test]
fn crash_inside_live_sync() {
    run_group(LIVE);
}

/// Runs every row of the group, then fails naming every row that failed.
fn run_group(prefix: &str) {
    let mut failed = Vec::new();
    for c in rows(prefix) {
        let began = Instant::now();
        match catch_unwind(AssertUnwindSafe(|| run_case(c))) {
            Ok(outcome) => eprintln!(
                "{} [{:?}{}]: ok ({outcome}, {:?})",
                c.failpoint,
                c.phase,
                if c.also.is_empty() {
                    String::new()
                } else {
                    format!(", with {}", c.also)
                },
                began.elapsed()
            ),
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                eprintln!("{} [{:?}] {}: FAILED: {msg}", c.failpoint, c.phase, c.also);
                failed.push(format!("{} [{:?}] {}", c.failpoint, c.phase, c.also));
            }
        }
    }
    assert!(failed.is_empty(), "crash matrix rows failed: {failed:?}");
}

const AGENT: &str = "fixer";
/// The agent a switch goes to.
const OTHER: &str = "other";
const SETTLE: Duration = Duration::from_secs(20);
const AGENT_ID: [&str; 4] = [
    "-c",
    "user.name=Agent",
    "-c",
    "user.email=agent@example.com",
];

/// Files that must exist with these bytes at the end: in which agent's workspace, where.
type Kept = Vec<(PathBuf, &'static str, &'static [u8])>;

fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

fn pair_status(h: &TestHome, p: &Path) -> serde_json::Value {
    let out = h.run_in(p, &["--json", "pair", "status"]);
    out.expect_code(0);
    out.json()
}

fn state_of(h: &TestHome, p: &Path) -> String {
    pair_status(h, p)["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Whether the daemon log says `name` was reached.
fn reached(h: &TestHome, name: &str) -> bool {
    let log = std::fs::read_to_string(h.run_dir().join("daemon.log")).unwrap_or_default();
    let quoted = format!("\"{name}\"");
    let bare = format!("={name} ");
    log.lines()
        .any(|l| l.contains("failpoint reached") && (l.contains(&quoted) || l.contains(&bare)))
}

fn log_tail(h: &TestHome) -> String {
    let log = std::fs::read_to_string(h.run_dir().join("daemon.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn stash_refs(p: &Path) -> String {
    git(
        p,
        &["for-each-ref", "--format=%(refname)", "refs/berth/stash/"],
    )
}

/// Every `pair.finished` event's data, oldest first.
fn all_finished(h: &TestHome) -> Vec<serde_json::Value> {
    let out = h.run(&["--json", "events"]);
    out.expect_code(0);
    out.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["kind"] == "pair.finished")
        .map(|e| e["data"].clone())
        .collect()
}

fn finished_count(h: &TestHome) -> usize {
    all_finished(h).len()
}

/// The last `pair.finished` event's data, if any.
fn finished(h: &TestHome) -> Option<serde_json::Value> {
    all_finished(h).pop()
}

fn spawn_in(h: &TestHome, dir: &Path, args: &[&str]) -> Child {
    let mut cmd = h.command(args);
    cmd.current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd.spawn().expect("spawn berth")
}

/// One row, start to finish; what the pairing's outcome was.
fn run_case(c: &Case) -> String {
    let h = home();
    let r = repo(&[]);
    let p = r.path();
    base(p);

    let spec = if c.also.is_empty() {
        format!("{}=sleep(60000)", c.failpoint)
    } else {
        format!("{};{}=sleep(60000)", c.also, c.failpoint)
    };
    let start_with_failpoints = || {
        let mut cmd = h.command(&["daemon", "start"]);
        cmd.env("BERTH_FAILPOINTS", &spec);
        h.run_cmd(cmd).expect_code(0);
    };
    // A switch reaches the same failpoints as the first start, and live sync's are reached
    // while pairing starts: that start runs without them.
    if matches!(c.phase, Phase::Switch | Phase::Paired) {
        h.run(&["daemon", "start"]).expect_code(0);
    } else {
        start_with_failpoints();
    }

    // Each agent has work of its own: a commit (so the project's copy of its branch moves
    // when pairing starts) and a file it has not committed.
    let fixer = new_agent(&h, p, AGENT);
    let other = new_agent(&h, p, OTHER);
    let mut kept: Kept = vec![
        (
            fixer.ws.clone(),
            "agent-commit.txt",
            b"committed by the agent\n",
        ),
        (fixer.ws.clone(), "agent-draft.txt", b"not committed yet\n"),
        (
            other.ws.clone(),
            "agent-commit.txt",
            b"committed by the agent\n",
        ),
        (other.ws.clone(), "agent-draft.txt", b"not committed yet\n"),
    ];

    dirty(p);
    let before = worktree_state(p);
    // The agent whose start (or stop) is interrupted.
    let target = if c.phase == Phase::Switch {
        &other
    } else {
        &fixer
    };
    let mirror_ref = format!("refs/heads/berth/{}", target.name);
    let mut mirror_before = git(p, &["rev-parse", &mirror_ref]);
    // What a live-sync row wrote or committed to reach its failpoint.
    let mut bulk = false;
    let mut rewrite = false;
    let mut second_tip: Option<String> = None;

    let waiter = match c.phase {
        Phase::Start => spawn_in(&h, p, &["--json", "pair", AGENT]),
        Phase::Stop | Phase::Switch | Phase::Paired => {
            h.run_in(p, &["--json", "pair", AGENT]).expect_code(0);
            assert_eq!(state_of(&h, p), "active");
            // Both sides write while paired; the user's edits end up in the workspace.
            write(p, "user-while-paired.txt", b"the user, while paired\n");
            write(p, "dir/c.txt", b"the user changed this while paired\n");
            write(
                &fixer.ws,
                "agent-while-paired.txt",
                b"the agent, while paired\n",
            );
            h.run_in(p, &["pair", "flush"]).expect_code(0);
            let paired: Kept = vec![
                (
                    fixer.ws.clone(),
                    "user-while-paired.txt",
                    b"the user, while paired\n",
                ),
                (
                    fixer.ws.clone(),
                    "dir/c.txt",
                    b"the user changed this while paired\n",
                ),
                (
                    fixer.ws.clone(),
                    "agent-while-paired.txt",
                    b"the agent, while paired\n",
                ),
            ];
            for (_, rel, bytes) in &paired {
                assert_eq!(
                    std::fs::read(p.join(rel)).ok().as_deref(),
                    Some(*bytes),
                    "{rel} synced to the checkout"
                );
            }
            kept.extend(paired);
            if c.phase == Phase::Stop {
                spawn_in(&h, p, &["--json", "pair", "stop"])
            } else if c.phase == Phase::Paired {
                h.run(&["daemon", "stop"]).expect_code(0);
                start_with_failpoints();
                wait_until("the pairing resumed", SETTLE, || {
                    state_of(&h, p) == "active"
                });
                mirror_before = git(p, &["rev-parse", &mirror_ref]);
                match trigger(c.failpoint) {
                    Trigger::Edit => {
                        write(p, "user-edit.txt", b"the user's edit being synced\n");
                        kept.push((
                            fixer.ws.clone(),
                            "user-edit.txt",
                            b"the user's edit being synced\n",
                        ));
                    }
                    Trigger::AgentEdit => {
                        write(&fixer.ws, "agent-edit.txt", b"the agent's first version\n");
                        rewrite = true;
                    }
                    Trigger::Bulk => {
                        for i in 0..BULK {
                            write(p, &bulk_name(i), bulk_bytes(i).as_bytes());
                        }
                        bulk = true;
                    }
                    Trigger::Commit => {
                        write(&fixer.ws, "agent-commit-2.txt", b"a second commit\n");
                        git(&fixer.ws, &["add", "agent-commit-2.txt"]);
                        let mut commit = AGENT_ID.to_vec();
                        commit.extend(["commit", "-q", "-m", "more agent work"]);
                        git(&fixer.ws, &commit);
                        second_tip = Some(git(&fixer.ws, &["rev-parse", "HEAD"]));
                        kept.push((fixer.ws.clone(), "agent-commit-2.txt", b"a second commit\n"));
                    }
                }
                // Something that lives until the kill, for the wait below.
                std::process::Command::new("sleep")
                    .arg("60")
                    .spawn()
                    .expect("spawn sleep")
            } else {
                // Parked by a graceful stop, resumed by a daemon with the failpoints.
                h.run(&["daemon", "stop"]).expect_code(0);
                start_with_failpoints();
                wait_until("the pairing resumed", SETTLE, || {
                    state_of(&h, p) == "active"
                });
                mirror_before = git(p, &["rev-parse", &mirror_ref]);
                spawn_in(&h, p, &["--json", "pair", OTHER])
            }
        }
    };
    wait_for_failpoint(&h, c.failpoint, waiter);

    // The agents keep working while the daemon hangs, and while it is down.
    for a in [&fixer, &other] {
        write(
            &a.ws,
            "agent-during-crash.txt",
            b"written while the daemon hung\n",
        );
        kept.push((
            a.ws.clone(),
            "agent-during-crash.txt",
            b"written while the daemon hung\n",
        ));
    }
    // A failpoint set beside the row's own to hang is reached by those writes.
    for also in c.also.split(';') {
        if let Some(name) = also.strip_suffix("=sleep(60000)") {
            wait_until(&format!("{name} is reached"), SETTLE, || reached(&h, name));
        }
    }
    if rewrite {
        write(&fixer.ws, "agent-edit.txt", b"the agent's second version\n");
        kept.push((
            fixer.ws.clone(),
            "agent-edit.txt",
            b"the agent's second version\n",
        ));
    }
    let ended_before = finished_count(&h);
    h.signal_daemon(libc::SIGKILL);
    // The killed daemon's pid is gone a moment before the kernel has closed all its files
    // (an exiting thread still tearing down watches): until then `daemon start` would see a
    // listening socket that never answers and refuse it as foreign.
    let mut dead = String::new();
    wait_until("the killed daemon's socket is closed", SETTLE, || {
        dead = h.state();
        dead == "stale" || dead == "stopped"
    });

    // Again, without failpoints.
    h.run(&["daemon", "start"]).expect_code(0);
    // `off` alone is not enough: a recovered pairing's status reads `off` until its
    // controller published the state it recovers from. Over means a new `pair.finished`.
    let mut settled = String::new();
    wait_until("the pairing settled", SETTLE, || {
        settled = state_of(&h, p);
        settled == "active" || (settled == "off" && finished_count(&h) > ended_before)
    });
    let resumes = c.phase != Phase::Stop && c.outcome == STOPPED;
    assert_eq!(
        settled == "active",
        resumes,
        "settled {settled}: a start resumes only once sync had begun (or a switch's stop \
         had begun)\n{}",
        log_tail(&h)
    );
    if settled == "active" {
        let now = pair_status(&h, p);
        assert_eq!(
            now["agent"], target.name,
            "resumed with the wrong agent: {now}"
        );
        // Resumed: the user edits, then stops.
        write(
            p,
            "user-after-recovery.txt",
            b"the user, after the restart\n",
        );
        h.run_in(p, &["pair", "flush"]).expect_code(0);
        kept.push((
            target.ws.clone(),
            "user-after-recovery.txt",
            b"the user, after the restart\n",
        ));
        if c.phase == Phase::Paired {
            assert_converged(p, &target.ws, target.name);
        }
        let stopped = h.run_in(p, &["--json", "pair", "stop"]);
        stopped.expect_code(0);
    }
    assert_eq!(state_of(&h, p), "off", "{}", log_tail(&h));

    let end = finished(&h).expect("a pair.finished event");
    let outcome = end["outcome"].as_str().unwrap_or_default().to_string();
    if end["restored"] == true || (outcome == ROLLED_BACK) {
        // (a) exactly as before; (c) no snapshot left.
        assert_state(&before, p, &format!("after {outcome}"));
        assert_eq!(stash_refs(p), "", "no snapshot ref is left");
        let list = h.run_in(p, &["--json", "stash", "list"]);
        assert_eq!(
            list.json()["snapshots"].as_array().map(Vec::len),
            Some(0),
            "{list}"
        );
    } else {
        // The outcome keeps the snapshot: it is listed, and restoring it gives the exact state
        // once the checkout is back on the original branch and clean.
        let id = end["snapshot"]
            .as_str()
            .unwrap_or_else(|| panic!("outcome {outcome} keeps no snapshot: {end}"))
            .to_string();
        let list = h.run_in(p, &["--json", "stash", "list"]);
        assert!(list.stdout.contains(&id), "{list}");
        git(p, &["checkout", "-q", "-f", "main"]);
        git(p, &["clean", "-q", "-f", "-d"]);
        h.run_in(p, &["stash", "restore", &id]).expect_code(0);
        assert_state(&before, p, &format!("after {outcome} and a restore"));
    }

    // (b) nothing the agents or the user wrote is gone: it is in the agents' workspaces.
    for (ws, rel, bytes) in &kept {
        assert_eq!(
            std::fs::read(ws.join(rel)).ok().as_deref(),
            Some(*bytes),
            "{rel} in {} after {outcome}",
            ws.display()
        );
    }
    for a in [&fixer, &other] {
        assert_eq!(
            git(&a.ws, &["symbolic-ref", "--short", "HEAD"]),
            format!("berth/{}", a.name)
        );
        git(&a.ws, &["merge-base", "--is-ancestor", &a.tip, "HEAD"]);
    }
    if bulk {
        for i in 0..BULK {
            assert_eq!(
                std::fs::read_to_string(fixer.ws.join(bulk_name(i))).ok(),
                Some(bulk_bytes(i)),
                "{} in the workspace",
                bulk_name(i)
            );
        }
    }
    for a in [&fixer, &other] {
        assert_eq!(temps(&a.ws), Vec::<String>::new(), "temporary files left");
    }
    if let Some(tip) = &second_tip {
        git(p, &["merge-base", "--is-ancestor", tip, &mirror_ref]);
    }
    // The project's copy of the agent's branch: back where it was after a rollback; at the
    // agent's tip (or later) after a stop.
    let mirror = git(p, &["rev-parse", &mirror_ref]);
    if outcome == ROLLED_BACK {
        assert_eq!(mirror, mirror_before, "the mirror is put back");
    } else {
        git(p, &["merge-base", "--is-ancestor", &target.tip, &mirror]);
    }
    assert_eq!(
        outcome, c.outcome,
        "recovered, but not as this row expects: {end}"
    );
    h.run(&["daemon", "stop"]).expect_code(0);
    outcome
}

/// An agent defined in the project, with a commit and an uncommitted file of its own.
struct Agent {
    name: &'static str,
    ws: PathBuf,
    /// Its commit.
    tip: String,
}

fn new_agent(h: &TestHome, p: &Path, name: &'static str) -> Agent {
    let created = h.run_in(p, &["--json", "agent", "new", name, "--cmd", "true"]);
    created.expect_code(0);
    let ws = PathBuf::from(created.json()["workspace"].as_str().unwrap());
    write(&ws, "agent-commit.txt", b"committed by the agent\n");
    git(&ws, &["add", "agent-commit.txt"]);
    let mut commit = AGENT_ID.to_vec();
    commit.extend(["commit", "-q", "-m", "agent work"]);
    git(&ws, &commit);
    let tip = git(&ws, &["rev-parse", "HEAD"]);
    write(&ws, "agent-draft.txt", b"not committed yet\n");
    Agent { name, ws, tip }
}

fn bulk_name(i: usize) -> String {
    format!("bulk/{:02}/file-{i:04}.txt", i % 20)
}

fn bulk_bytes(i: usize) -> String {
    format!("bulk file {i}\n")
}

/// berth's temporary files anywhere under `root` (but in `.git`).
fn temps(root: &Path) -> Vec<String> {
    berth_testkit::files(root)
        .into_keys()
        .map(|k| String::from_utf8_lossy(&k).into_owned())
        .filter(|k| {
            k.rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with(".berth-tmp-"))
        })
        .collect()
}

/// (d): after a flush both trees hold the same files (no temporary file among them) and both
/// copies of the agent's branch are the same commit.
#[track_caller]
fn assert_converged(p: &Path, ws: &Path, agent: &str) {
    assert_eq!(
        temps(p),
        Vec::<String>::new(),
        "temporary files in the checkout"
    );
    assert_eq!(
        temps(ws),
        Vec::<String>::new(),
        "temporary files in the workspace"
    );
    // Ignored files are not synced: the user's stay in the checkout.
    let ignored = |dir: &Path| -> BTreeSet<Vec<u8>> {
        git(dir, &["ls-files", "-o", "-i", "--exclude-standard"])
            .lines()
            .map(|l| l.as_bytes().to_vec())
            .collect()
    };
    let skip: BTreeSet<Vec<u8>> = ignored(p).into_iter().chain(ignored(ws)).collect();
    let tracked = |dir: &Path| {
        let mut all = berth_testkit::files(dir);
        all.retain(|k, _| !skip.contains(k));
        all
    };
    let (user, theirs) = (tracked(p), tracked(ws));
    let differ: Vec<String> = user
        .keys()
        .chain(theirs.keys())
        .filter(|k| user.get(*k) != theirs.get(*k))
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert!(
        differ.is_empty(),
        "the trees differ after a flush: {differ:?}"
    );
    let branch = format!("refs/heads/berth/{agent}");
    wait_until("both copies of the branch agree", SETTLE, || {
        git(p, &["rev-parse", &branch]) == git(ws, &["rev-parse", &branch])
    });
}

/// Waits until the daemon reached `name`; then the command waiting on it is ended.
fn wait_for_failpoint(h: &TestHome, name: &str, mut waiter: Child) {
    let deadline = Instant::now() + SETTLE;
    while !reached(h, name) {
        if Instant::now() > deadline || waiter.try_wait().ok().flatten().is_some() {
            let _ = waiter.kill();
            let _ = waiter.wait();
            panic!(
                "failpoint {name} was not reached (the command ended or it took too long)\n{}",
                log_tail(h)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = waiter.kill();
    let _ = waiter.wait();
}

#[track_caller]
fn assert_state(before: &WorktreeState, p: &Path, when: &str) {
    let now = worktree_state(p);
    if &now == before {
        return;
    }
    let lossy = |k: &Vec<u8>| String::from_utf8_lossy(k).into_owned();
    let mut diff = Vec::new();
    if now.head != before.head {
        diff.push(format!("HEAD {} → {}", before.head, now.head));
    }
    if now.status != before.status {
        diff.push(format!(
            "status\n  before {:?}\n  now    {:?}",
            before.status, now.status
        ));
    }
    if now.staged_diff != before.staged_diff {
        diff.push("staged diff differs".into());
    }
    for (k, v) in &before.files {
        match now.files.get(k) {
            None => diff.push(format!("{} is gone", lossy(k))),
            Some(n) if n != v => diff.push(format!("{} differs", lossy(k))),
            Some(_) => {}
        }
    }
    for k in now.files.keys().filter(|k| !before.files.contains_key(*k)) {
        diff.push(format!("{} is new", lossy(k)));
    }
    panic!(
        "the checkout is not exactly as before pairing {when}:\n{}",
        diff.join("\n")
    );
}
