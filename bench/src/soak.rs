//! `berth-bench soak [--minutes N] [--seed N] [--berth PATH]`: pairing under random operations
//! for a long time, with the daemon SIGKILLed again and again (`--berth`: that binary instead of
//! a fresh release build).
//!
//! One repository, one agent, one pairing, and a loop of random operations until the time is
//! up: single edits, deletions and renames on either side; races (several edits on both sides
//! with no flush between them, each path edited by one side only, sometimes followed at once by
//! a SIGKILL of the daemon in the middle of syncing them); commits on either side; graceful
//! restarts and SIGKILL restarts. After every operation a flush makes both sides agree; they
//! must then hold exactly what the model of the edits says, with no temporary file anywhere, and
//! both copies of the branch must come to the same commit. Any difference is a divergence (the
//! model then takes what the checkout holds, and the run goes on). At the end, stopping the
//! pairing must give back the checkout exactly as it was. Writes `bench/results/soak.md`; a run
//! with a divergence fails.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cli::git;
use crate::pairing::Scratch;
use crate::sync::tree::mix;

pub const USAGE: &str = "berth-bench soak [--minutes N] [--seed N] [--berth PATH]";

pub struct Options {
    minutes: u64,
    seed: u64,
    /// A berth binary to use instead of building one.
    pub berth: Option<PathBuf>,
}

pub fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        minutes: 10,
        seed: 1,
        berth: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number\nusage: {USAGE}"))
        };
        match a.as_str() {
            "--minutes" => o.minutes = num("--minutes")?.max(1),
            "--seed" => o.seed = num("--seed")?,
            "--berth" => {
                let path = it
                    .next()
                    .ok_or_else(|| format!("--berth needs a path\nusage: {USAGE}"))?;
                o.berth = Some(PathBuf::from(path));
            }
            other => return Err(format!("unknown option {other}\nusage: {USAGE}")),
        }
    }
    Ok(o)
}

/// The paths operations touch.
const NAMES: [&str; 12] = [
    "f0", "f1", "f2", "f3", "f4", "f5", "d/g0", "d/g1", "d/g2", "d/g3", "d/e/h0", "d/e/h1",
];

/// A tree as the model sees it: each file's bytes and executable bit (`.git` left out).
type Files = BTreeMap<String, (Vec<u8>, bool)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    User,
    Agent,
}

/// The operations, as counted in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Edit,
    Delete,
    Rename,
    Race,
    RaceThenKill,
    Commit,
    Restart,
    Kill,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Edit => "edit (one file, either side)",
            Kind::Delete => "deletion",
            Kind::Rename => "rename",
            Kind::Race => "race (2–12 edits on both sides, no flush between)",
            Kind::RaceThenKill => "race, then SIGKILL while it syncs",
            Kind::Commit => "commit (either side)",
            Kind::Restart => "graceful daemon restart",
            Kind::Kill => "SIGKILL of the daemon, then a start",
        }
    }
}

/// The weighted choice of the next operation.
const WEIGHTS: [(Kind, u64); 8] = [
    (Kind::Edit, 6),
    (Kind::Delete, 2),
    (Kind::Rename, 2),
    (Kind::Race, 3),
    (Kind::RaceThenKill, 2),
    (Kind::Commit, 2),
    (Kind::Restart, 1),
    (Kind::Kill, 2),
];

struct Soak {
    s: Scratch,
    user: PathBuf,
    agent: PathBuf,
    model: Files,
    rng: u64,
    step: u64,
    kills: u64,
    restarts: u64,
    divergences: Vec<String>,
}

impl Soak {
    fn next(&mut self, below: u64) -> u64 {
        self.rng = mix(self.rng);
        self.rng % below.max(1)
    }

    fn root(&self, side: Side) -> &Path {
        match side {
            Side::User => &self.user,
            Side::Agent => &self.agent,
        }
    }

    fn side(&mut self) -> Side {
        if self.next(2) == 0 {
            Side::User
        } else {
            Side::Agent
        }
    }

    fn name(&mut self) -> &'static str {
        NAMES[self.next(NAMES.len() as u64) as usize]
    }

    fn write(&mut self, side: Side, rel: &str) -> Result<(), String> {
        self.step += 1;
        let bytes = format!("{side:?} at step {}\n", self.step).into_bytes();
        let p = self.root(side).join(rel);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(&p, &bytes).map_err(|e| format!("{}: {e}", p.display()))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| format!("{}: {e}", p.display()))?;
        self.model.insert(rel.to_string(), (bytes, false));
        Ok(())
    }

    fn delete(&mut self, side: Side, rel: &str) -> Result<(), String> {
        if self.model.remove(rel).is_some() {
            let p = self.root(side).join(rel);
            std::fs::remove_file(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        }
        Ok(())
    }

    fn rename(&mut self, side: Side, from: &str, to: &str) -> Result<(), String> {
        if from == to {
            return Ok(());
        }
        let Some(node) = self.model.remove(from) else {
            return Ok(());
        };
        let (a, b) = (self.root(side).join(from), self.root(side).join(to));
        if let Some(dir) = b.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::rename(&a, &b).map_err(|e| format!("rename {}: {e}", a.display()))?;
        self.model.insert(to.to_string(), node);
        Ok(())
    }

    /// Edits with no flush between them; each path is edited by one side only.
    fn race(&mut self) -> Result<(), String> {
        let n = 2 + self.next(11);
        let mut owner: BTreeMap<&str, Side> = BTreeMap::new();
        for _ in 0..n {
            let (side, rel) = (self.side(), self.name());
            if *owner.entry(rel).or_insert(side) != side {
                continue;
            }
            if self.next(4) == 0 {
                self.delete(side, rel)?;
            } else {
                self.write(side, rel)?;
            }
        }
        Ok(())
    }

    fn commit(&mut self, side: Side) -> Result<(), String> {
        let root = self.root(side).to_path_buf();
        git(&root, &["add", "-A"])?;
        git(
            &root,
            &[
                "-c",
                "user.name=soak",
                "-c",
                "user.email=soak@berth.invalid",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                &format!("{side:?} at step {}", self.step),
            ],
        )?;
        Ok(())
    }

    fn daemon_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.s.home().join("run/daemon.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn kill(&mut self) -> Result<(), String> {
        let pid = self.daemon_pid().ok_or("no daemon pid is recorded")?;
        // SAFETY: kill(2) on the daemon this run started.
        if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
            return Err(format!("cannot kill the daemon ({pid})"));
        }
        self.kills += 1;
        // Gone, and its socket closed (until then a start would see a daemon that never answers).
        until("the killed daemon is gone", Duration::from_secs(20), || {
            // `daemon status` exits non-zero for a daemon that is not running.
            let out = std::process::Command::new(&self.s.bin)
                .arg("--home")
                .arg(self.s.home())
                .args(["--json", "daemon", "status"])
                .env_remove("BERTH_HOME")
                .output()
                .ok()?;
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            matches!(v["state"].as_str(), Some("stale" | "stopped")).then_some(())
        })?;
        self.s.berth(&["daemon", "start"])?;
        Ok(())
    }

    fn restart(&mut self) -> Result<(), String> {
        self.s.berth(&["daemon", "stop"])?;
        self.s.berth(&["daemon", "start"])?;
        self.restarts += 1;
        Ok(())
    }

    /// Carries out one operation of `kind`.
    fn op(&mut self, kind: Kind) -> Result<(), String> {
        match kind {
            Kind::Edit => {
                let (side, rel) = (self.side(), self.name());
                self.write(side, rel)
            }
            Kind::Delete => {
                let (side, rel) = (self.side(), self.name());
                self.delete(side, rel)
            }
            Kind::Rename => {
                let (side, from, to) = (self.side(), self.name(), self.name());
                self.rename(side, from, to)
            }
            Kind::Race => self.race(),
            Kind::RaceThenKill => {
                self.race()?;
                self.kill()
            }
            Kind::Commit => {
                let side = self.side();
                self.commit(side)
            }
            Kind::Restart => self.restart(),
            Kind::Kill => self.kill(),
        }
    }

    /// Flushes and checks both sides against the model; a difference is a divergence.
    fn check(&mut self, after: Kind) -> Result<(), String> {
        until("the pairing is active", Duration::from_secs(60), || {
            let out = self.s.berth(&["--json", "pair", "status"]).ok()?;
            let v: serde_json::Value = serde_json::from_str(&out).ok()?;
            (v["state"] == "active").then_some(())
        })?;
        self.s.berth(&["pair", "flush"])?;
        let (user, agent) = (files(&self.user)?, files(&self.agent)?);
        let mut wrong = Vec::new();
        let temps: Vec<&String> = user
            .keys()
            .chain(agent.keys())
            .filter(|k| {
                k.rsplit('/')
                    .next()
                    .is_some_and(|n| n.starts_with(".berth-tmp-"))
            })
            .collect();
        if !temps.is_empty() {
            wrong.push(format!("temporary files left: {temps:?}"));
        }
        if user != agent {
            wrong.push(format!(
                "the sides differ at {:?}",
                differing(&user, &agent)
            ));
        }
        if user != self.model {
            wrong.push(format!(
                "the checkout differs from the model at {:?}",
                differing(&user, &self.model)
            ));
        }
        let branch = |dir: &Path| git(dir, &["rev-parse", "refs/heads/berth/soak"]).ok();
        if until(
            "both copies of the branch agree",
            Duration::from_secs(20),
            || (branch(&self.user) == branch(&self.agent)).then_some(()),
        )
        .is_err()
        {
            wrong.push("the two copies of the branch differ".into());
        }
        if !wrong.is_empty() {
            self.divergences.push(format!(
                "after operation {} ({after:?}): {}",
                self.step,
                wrong.join("; ")
            ));
            self.model = user;
        }
        Ok(())
    }
}

/// Polls `f` until it gives a value, or fails after `limit`.
fn until<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> Result<T, String> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > end {
            return Err(format!("timed out waiting until {what}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The files under `root` (`.git` left out), as the model sees them.
fn files(root: &Path) -> Result<Files, String> {
    let mut out = Files::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let read = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for item in read.flatten() {
            let name = item.file_name();
            if rel.as_os_str().is_empty() && name == ".git" {
                continue;
            }
            let child = rel.join(&name);
            let meta = item.metadata().map_err(|e| e.to_string())?;
            if meta.is_dir() {
                stack.push(child);
            } else {
                let bytes = std::fs::read(root.join(&child)).map_err(|e| e.to_string())?;
                let exec = meta.permissions().mode() & 0o111 != 0;
                out.insert(child.to_string_lossy().into_owned(), (bytes, exec));
            }
        }
    }
    Ok(out)
}

fn differing(a: &Files, b: &Files) -> Vec<String> {
    a.keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

pub fn run(o: &Options, bin: &Path, repo_root: &Path) -> Result<PathBuf, String> {
    let root = std::env::temp_dir().join(format!("berth-bench-soak-{}", std::process::id()));
    std::fs::create_dir_all(root.join("project")).map_err(|e| e.to_string())?;
    let s = Scratch {
        root,
        bin: bin.to_path_buf(),
    };
    let project = s.project();
    git(&project, &["init", "-q", "-b", "main"])?;
    git(&project, &["config", "user.name", "bench"])?;
    git(&project, &["config", "user.email", "bench@berth.invalid"])?;
    std::fs::write(project.join("f0"), "base\n").map_err(|e| e.to_string())?;
    std::fs::write(project.join("README"), "soak\n").map_err(|e| e.to_string())?;
    git(&project, &["add", "-A"])?;
    git(&project, &["commit", "-q", "-m", "base"])?;
    // Uncommitted work the pairing must keep and give back.
    std::fs::write(project.join("README"), "uncommitted before pairing\n")
        .map_err(|e| e.to_string())?;
    let before = git(&project, &["status", "--porcelain=v2"])?;
    s.berth(&["daemon", "start"])?;
    s.berth(&["agent", "new", "soak"])?;
    s.berth(&["pair", "soak"])?;
    let status: serde_json::Value = serde_json::from_str(&s.berth(&["--json", "pair", "status"])?)
        .map_err(|e| e.to_string())?;
    let agent = PathBuf::from(status["agent_workspace"].as_str().unwrap_or_default());
    let model = files(&project)?;
    let mut soak = Soak {
        s,
        user: project.clone(),
        agent,
        model,
        rng: o.seed,
        step: 0,
        kills: 0,
        restarts: 0,
        divergences: Vec::new(),
    };
    let mut counts: BTreeMap<Kind, u64> = BTreeMap::new();
    let total: u64 = WEIGHTS.iter().map(|(_, w)| w).sum();
    let began = Instant::now();
    let end = began + Duration::from_secs(o.minutes * 60);
    let mut last_note = began;
    eprintln!("soaking for {} minutes …", o.minutes);
    while Instant::now() < end {
        let mut pick = soak.next(total);
        let kind = WEIGHTS
            .iter()
            .find(|(_, w)| {
                let hit = pick < *w;
                pick = pick.saturating_sub(*w);
                hit
            })
            .map_or(Kind::Edit, |(k, _)| *k);
        soak.op(kind)?;
        soak.check(kind)?;
        *counts.entry(kind).or_default() += 1;
        if last_note.elapsed() > Duration::from_secs(60) {
            last_note = Instant::now();
            eprintln!(
                "{} operations, {} SIGKILLs, {} divergences",
                counts.values().sum::<u64>(),
                soak.kills,
                soak.divergences.len()
            );
        }
    }
    let took = began.elapsed();
    soak.s.berth(&["pair", "stop"])?;
    if git(&project, &["status", "--porcelain=v2"])? != before {
        soak.divergences
            .push("after the stop, the checkout is not as it was before pairing".into());
    }
    let report = report(o, took, &counts, &soak);
    let path = repo_root.join("bench/results/soak.md");
    std::fs::write(&path, report).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    if !soak.divergences.is_empty() {
        return Err(format!(
            "{} divergences found (see {}): {}",
            soak.divergences.len(),
            path.display(),
            soak.divergences.join("\n")
        ));
    }
    Ok(path)
}

fn report(o: &Options, took: Duration, counts: &BTreeMap<Kind, u64>, soak: &Soak) -> String {
    let operations: u64 = counts.values().sum();
    let mut r = String::new();
    r.push_str("# Soak: pairing under random operations and SIGKILL restarts\n\n");
    r.push_str(&format!(
        "Command: `cargo run --release --locked -p berth-bench -- soak --minutes {} --seed {}{}`\n\n",
        o.minutes,
        o.seed,
        o.berth
            .as_ref()
            .map_or(String::new(), |b| format!(" --berth {}", b.display()))
    ));
    r.push_str("## Machine\n\n");
    r.push_str(&crate::machine::describe());
    r.push_str(&format!(
        "\n## Result\n\n- ran for {:.1} minutes\n- operations: {operations} (each followed by a flush and a check of both sides against the model)\n- restarts: {} by SIGKILL, {} graceful\n- divergences found: {}\n",
        took.as_secs_f64() / 60.0,
        soak.kills,
        soak.restarts,
        soak.divergences.len()
    ));
    r.push_str("\n## Operations\n\n| operation | count |\n| --- | --- |\n");
    for (kind, n) in counts {
        r.push_str(&format!("| {} | {n} |\n", kind.label()));
    }
    if !soak.divergences.is_empty() {
        r.push_str("\n## Divergences\n\n");
        for d in &soak.divergences {
            r.push_str(&format!("- {d}\n"));
        }
    }
    r
}
