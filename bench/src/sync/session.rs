//! One tool on one tree: the initial sync, single-file edits in both directions, idle use and
//! (on the large tree) many files rewritten at once.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::cleanup::TempDir;
use super::live::{self, Live};
use super::options::Options;
use super::procs;
use super::tools::Tool;
use super::tree::{Tree, body, mix};
use super::{Env, wait};
use crate::remote::traffic::Bytes;

/// Consecutive lost edits after which a direction is abandoned.
const GIVE_UP_AFTER: usize = 3;
/// How long a tool must use no CPU to count as quiet.
const QUIET: Duration = Duration::from_millis(1200);
/// Longest wait for a tool to go quiet between edits, and after a bulk step.
const SETTLE_EDIT: Duration = Duration::from_secs(10);
const SETTLE_BULK: Duration = Duration::from_secs(60);
/// How long a canary file may take during set-up.
const CANARY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    AlphaToBeta,
    BetaToAlpha,
}

impl Direction {
    pub fn label(self) -> &'static str {
        match self {
            Direction::AlphaToBeta => "alpha → beta",
            Direction::BetaToAlpha => "beta → alpha",
        }
    }
}

#[derive(Debug, Default)]
pub struct Edits {
    pub latencies: Vec<Duration>,
    pub attempted: usize,
    pub lost: usize,
    /// CPU of the tool's processes over all edits, divided by the edits attempted.
    pub cpu_per_edit: Duration,
    /// Over ssh: what the connections carried over the whole series, and how long it took.
    pub bytes: Option<(Bytes, Duration)>,
    pub note: Option<String>,
}

#[derive(Debug)]
pub struct Idle {
    pub seconds: f64,
    pub cpu: Duration,
    pub switches: u64,
    pub rss_kib: u64,
    pub processes: usize,
    /// Over ssh: what the connections carried meanwhile.
    pub bytes: Option<Bytes>,
}

#[derive(Debug)]
pub struct Rewrite {
    /// How long writing them took (the clock starts when the last one is written).
    pub write: Duration,
    pub synced: Result<Duration, String>,
    pub cpu: Duration,
    /// Over ssh: what the connections carried from the first write until quiet again.
    pub bytes: Option<Bytes>,
}

#[derive(Debug)]
pub struct Session {
    pub tool: Tool,
    pub files: usize,
    /// From start until every file has arrived in beta (canaries go through after that).
    pub initial: Result<Duration, String>,
    pub edits: Vec<(Direction, Edits)>,
    pub idle: Option<Idle>,
    pub rewrite: Option<Rewrite>,
    /// What stopped the session after set-up, if anything did.
    pub error: Option<String>,
}

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Waits until the tool's processes have used no CPU for `QUIET` (at most `max`), so one step's
/// after-work (saving state, the echo of its own writes) is over before the next step.
fn settle(live: &Live, max: Duration) {
    let roots = live.roots();
    let began = Instant::now();
    let mut cpu = procs::cpu(&roots);
    let mut quiet_since = began;
    while began.elapsed() < max {
        std::thread::sleep(Duration::from_millis(100));
        let now = procs::cpu(&roots);
        if now != cpu {
            cpu = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= QUIET {
            return;
        }
    }
}

struct Sides {
    alpha: PathBuf,
    beta: PathBuf,
}

impl Sides {
    fn of(&self, d: Direction) -> (&Path, &Path) {
        match d {
            Direction::AlphaToBeta => (&self.alpha, &self.beta),
            Direction::BetaToAlpha => (&self.beta, &self.alpha),
        }
    }
}

/// A new file on one side must appear on the other: proves the watcher is live both ways.
fn canaries(live: &mut Live, sides: &Sides) -> Result<(), String> {
    for d in [Direction::AlphaToBeta, Direction::BetaToAlpha] {
        let (from, to) = sides.of(d);
        let name = format!("canary-{}.txt", if from == sides.alpha { "a" } else { "b" });
        let content = format!("canary {} {}\n", d.label(), nanos());
        std::fs::write(from.join(&name), &content).map_err(|e| format!("{name}: {e}"))?;
        if wait::file(
            &to.join(&name),
            content.as_bytes(),
            Instant::now() + CANARY_TIMEOUT,
        )
        .is_none()
        {
            live.check_running()?;
            return Err(format!(
                "a new file ({}) did not arrive within {} s",
                d.label(),
                CANARY_TIMEOUT.as_secs()
            ));
        }
    }
    settle(live, SETTLE_BULK);
    Ok(())
}

/// Starts the tool on a tree in `alpha` and an empty `beta` and waits until it is in sync.
fn set_up(live: &mut Live, tree: &Tree, sides: &Sides, began: Instant) -> Result<Duration, String> {
    let deadline = began + Duration::from_secs(60) + Duration::from_millis(10) * tree.files as u32;
    live.wait_started(deadline)?;
    let all = wait::all(
        &sides.beta,
        tree.files,
        |i| (tree.path(i), tree.content(i)),
        deadline,
    );
    if let Err(e) = all {
        live.check_running()?;
        return Err(format!("the initial sync did not finish: {e}"));
    }
    let took = began.elapsed();
    live.wait_idle(deadline)?;
    canaries(live, sides)?;
    Ok(took)
}

fn edits(
    live: &mut Live,
    tree: &Tree,
    sides: &Sides,
    d: Direction,
    opts: &Options,
) -> Result<Edits, String> {
    let (from, to) = sides.of(d);
    let roots = live.roots();
    let mut out = Edits::default();
    let mut lost_in_a_row = 0;
    settle(live, SETTLE_BULK);
    let cpu_before = procs::cpu(&roots);
    let bytes_before = live.traffic();
    let series = Instant::now();
    // The first edit keeps the same distance from whatever the tool did before.
    let mut arrived = Instant::now();
    for k in 0..opts.edits {
        settle(live, SETTLE_EDIT);
        std::thread::sleep((arrived + opts.edit_gap).saturating_duration_since(Instant::now()));
        let i = (mix(((d as u64) << 40) ^ k as u64) % tree.files as u64) as usize;
        let rel = tree.path(i);
        let content = body(
            &format!("edit {} #{k} {}", d.label(), nanos()),
            k as u64,
            tree.size(i),
        );
        let began = Instant::now();
        std::fs::write(from.join(&rel), &content)
            .map_err(|e| format!("cannot edit {}: {e}", rel.display()))?;
        out.attempted += 1;
        match wait::file(&to.join(&rel), &content, began + opts.edit_timeout) {
            Some(seen) => {
                arrived = seen;
                out.latencies.push(seen - began);
                lost_in_a_row = 0;
            }
            None => {
                live.check_running()?;
                arrived = Instant::now();
                out.lost += 1;
                lost_in_a_row += 1;
                if lost_in_a_row == GIVE_UP_AFTER {
                    out.note = Some(format!(
                        "stopped after {GIVE_UP_AFTER} edits in a row did not arrive within {} s",
                        opts.edit_timeout.as_secs_f64()
                    ));
                    break;
                }
            }
        }
    }
    settle(live, SETTLE_BULK);
    out.cpu_per_edit = (procs::cpu(&roots) - cpu_before) / out.attempted.max(1) as u32;
    out.bytes = live
        .traffic()
        .zip(bytes_before)
        .map(|(after, before)| (after - before, series.elapsed()));
    Ok(out)
}

/// Leaves the tool alone for `period` once the edits' after-work is surely over (`gap` since the
/// last one, and quiet).
fn idle(live: &mut Live, gap: Duration, period: Duration) -> Result<Idle, String> {
    std::thread::sleep(gap);
    settle(live, SETTLE_BULK);
    let roots = live.roots();
    let before = procs::sample(&roots);
    let bytes_before = live.traffic();
    let began = Instant::now();
    std::thread::sleep(period);
    let after = procs::sample(&roots);
    let bytes = live.traffic().zip(bytes_before).map(|(a, b)| a - b);
    let seconds = began.elapsed().as_secs_f64();
    live.check_running()?;
    Ok(Idle {
        seconds,
        cpu: after.cpu.saturating_sub(before.cpu),
        switches: after.switches.saturating_sub(before.switches),
        rss_kib: after.rss_kib,
        processes: after.processes,
        bytes,
    })
}

/// Rewrites `count` files spread over the tree on beta (the agent's side) at once; the clock
/// runs from the last write until alpha has every new content.
fn rewrite(live: &mut Live, tree: &Tree, sides: &Sides, count: usize) -> Result<Rewrite, String> {
    settle(live, SETTLE_BULK);
    let roots = live.roots();
    let cpu_before = procs::cpu(&roots);
    let bytes_before = live.traffic();
    let stamp = nanos();
    let files: Vec<(PathBuf, Vec<u8>)> = tree
        .spread(count)
        .into_iter()
        .map(|i| {
            let header = format!("rewritten {i} at {stamp}");
            (tree.path(i), body(&header, i as u64 ^ 0xabc, tree.size(i)))
        })
        .collect();
    let began = Instant::now();
    for (rel, content) in &files {
        std::fs::write(sides.beta.join(rel), content)
            .map_err(|e| format!("cannot rewrite {}: {e}", rel.display()))?;
    }
    let written = Instant::now();
    let deadline = written + Duration::from_secs(60) + Duration::from_millis(10) * count as u32;
    let synced =
        wait::all(&sides.alpha, count, |k| files[k].clone(), deadline).map(|()| written.elapsed());
    live.check_running()?;
    settle(live, SETTLE_BULK);
    Ok(Rewrite {
        write: written - began,
        synced,
        cpu: procs::cpu(&roots) - cpu_before,
        bytes: live.traffic().zip(bytes_before).map(|(a, b)| a - b),
    })
}

/// Measures `tool` on a fresh `tree`; `rewrite` files are rewritten at once at the end if given.
pub fn run(
    tool: Tool,
    env: &Env,
    opts: &Options,
    tree: &Tree,
    rewrite_count: Option<usize>,
) -> Session {
    let mut session = Session {
        tool,
        files: tree.files,
        initial: Err("not started".into()),
        edits: Vec::new(),
        idle: None,
        rewrite: None,
        error: None,
    };
    let tmp = match TempDir::new("berth-bench-sync-") {
        Ok(t) => t,
        Err(e) => {
            session.initial = Err(e);
            return session;
        }
    };
    let sides = Sides {
        alpha: tmp.path().join("alpha"),
        beta: tmp.path().join("beta"),
    };
    let work = tmp.path().join("work");
    let prepared = [&sides.alpha, &sides.beta, &work]
        .iter()
        .try_for_each(|d| std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display())))
        .and_then(|()| tree.generate(&sides.alpha));
    if let Err(e) = prepared {
        session.initial = Err(e);
        return session;
    }
    let began = Instant::now();
    let mut live = match live::start(tool, env, &work, &sides.alpha, &sides.beta) {
        Ok(l) => l,
        Err(e) => {
            session.initial = Err(e);
            return session;
        }
    };
    session.initial = set_up(&mut live, tree, &sides, began);
    if session.initial.is_err() {
        return session;
    }
    eprintln!(
        "  {}: in sync after {:.1} s, ready to measure after {:.1} s",
        tool.name(),
        session.initial.as_ref().map_or(0.0, |d| d.as_secs_f64()),
        began.elapsed().as_secs_f64()
    );
    let result = (|| -> Result<(), String> {
        for d in [Direction::AlphaToBeta, Direction::BetaToAlpha] {
            let series = Instant::now();
            let e = edits(&mut live, tree, &sides, d, opts)?;
            eprintln!(
                "  {}: {} edits {} arrived, {} lost ({:.0} s)",
                tool.name(),
                e.latencies.len(),
                d.label(),
                e.lost,
                series.elapsed().as_secs_f64()
            );
            session.edits.push((d, e));
        }
        session.idle = Some(idle(&mut live, opts.edit_gap, opts.idle)?);
        if let Some(count) = rewrite_count {
            let r = rewrite(&mut live, tree, &sides, count)?;
            eprintln!("  {}: {count} files rewritten: {:?}", tool.name(), r.synced);
            session.rewrite = Some(r);
        }
        Ok(())
    })();
    session.error = result.err();
    live.stop();
    session
}
