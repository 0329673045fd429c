//! `berth-bench pairing [--files N] [--cycles N] [--edits N]`: pairing on a large repository.
//!
//! A repository of N small files (50,000 by default) with an agent: `berth pair` started and
//! stopped several times (wall time of the CLI command, which returns once the start or stop has
//! finished), with a few uncommitted changes in the checkout so the snapshot and its exact
//! restore are part of every cycle; then, while paired, single-file edits in both directions
//! (time until the other side holds the new bytes) and the daemon's memory; then the same edits
//! with `berth debug sync` between the same two trees, so the cost of pairing over the bare
//! engine shows. Writes `bench/results/pairing.md`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::git;
use crate::stats::{Summary, ms};
use crate::sync::tree::{Tree, body, mix};
use crate::sync::wait;

pub const USAGE: &str =
    "berth-bench pairing [--files N] [--cycles N] [--edits N] [--curve N,N,...]";

#[derive(Clone)]
struct Options {
    files: usize,
    cycles: usize,
    edits: usize,
    /// Tree sizes for the scale curve (each measured like the main run; the main run's own
    /// size is not measured twice).
    curve: Vec<usize>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        files: 50_000,
        cycles: 5,
        edits: 100,
        curve: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<usize, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number\nusage: {USAGE}"))
        };
        match a.as_str() {
            "--files" => o.files = num("--files")?,
            "--cycles" => o.cycles = num("--cycles")?.max(1),
            "--edits" => o.edits = num("--edits")?.max(1),
            "--curve" => {
                o.curve = it
                    .next()
                    .map(|v| {
                        v.split(',')
                            .map(str::parse)
                            .collect::<Result<Vec<usize>, _>>()
                    })
                    .and_then(Result::ok)
                    .filter(|v| !v.is_empty() && v.iter().all(|n| *n > 0))
                    .ok_or_else(|| {
                        format!("--curve needs sizes like 1000,10000\nusage: {USAGE}")
                    })?;
            }
            other => return Err(format!("unknown option {other}\nusage: {USAGE}")),
        }
    }
    Ok(o)
}

/// The scratch directory: removed at the end, whatever happens (the daemon stopped first).
pub struct Scratch {
    pub root: PathBuf,
    pub bin: PathBuf,
}

impl Scratch {
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    pub fn project(&self) -> PathBuf {
        self.root.join("project")
    }

    pub fn berth(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.bin)
            .arg("--home")
            .arg(self.home())
            .args(args)
            .current_dir(self.project())
            .env_remove("BERTH_HOME")
            .output()
            .map_err(|e| format!("cannot run berth: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "berth {}: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn timed(&self, args: &[&str]) -> Result<Duration, String> {
        let t = Instant::now();
        self.berth(args)?;
        Ok(t.elapsed())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Command::new(&self.bin)
            .arg("--home")
            .arg(self.home())
            .args(["daemon", "stop", "--all"])
            .output();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Edits one file at a time on `from` and waits until `to` holds it; the latencies.
fn edits(
    tree: &Tree,
    from: &Path,
    to: &Path,
    n: usize,
    salt: u64,
) -> Result<Vec<Duration>, String> {
    let mut out = Vec::new();
    for k in 0..n {
        // A pause between edits, so each is a single edit on a quiet machine.
        std::thread::sleep(Duration::from_millis(60));
        let i = (mix((salt << 40) ^ k as u64) % tree.files as u64) as usize;
        let rel = tree.path(i);
        let content = body(&format!("edit {salt} #{k}"), k as u64, tree.size(i));
        let began = Instant::now();
        std::fs::write(from.join(&rel), &content)
            .map_err(|e| format!("cannot edit {}: {e}", rel.display()))?;
        match wait::file(&to.join(&rel), &content, began + Duration::from_secs(10)) {
            Some(seen) => out.push(seen - began),
            None => return Err(format!("edit {k} of {} never arrived", rel.display())),
        }
    }
    Ok(out)
}

/// The daemon's resident memory: in all, and how much of it is anonymous (heap, stacks; the
/// rest is the mapped binary and libraries), in KiB.
#[derive(Debug, Clone, Copy)]
struct Rss {
    total: u64,
    anon: Option<u64>,
}

fn daemon_rss(home: &Path) -> Option<Rss> {
    let pid = std::fs::read_to_string(home.join("run/daemon.pid")).ok()?;
    let field = |file: &str, name: &str| -> Option<u64> {
        let text = std::fs::read_to_string(format!("/proc/{}/{file}", pid.trim())).ok()?;
        text.lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some(Rss {
        total: field("status", "VmRSS:")?,
        anon: field("smaps_rollup", "Anonymous:"),
    })
}

/// The load average over the last minute, as `/proc/loadavg` says.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// Where the time of a start and a stop goes, from the event log: each step runs from the
/// `pair.state` event that enters it to the next one; the pairing's end (its ancestor dropped,
/// its lines in `info/exclude` taken out) runs from the state `off` to `pair.finished`.
/// Per pairing (in the order they began): each timed part, in milliseconds.
fn step_times(events: &str) -> Vec<Vec<(String, i64)>> {
    let mut pairings: Vec<(String, Vec<(i64, String)>)> = Vec::new();
    for line in events.lines() {
        let Ok(ev) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let kind = ev["kind"].as_str().unwrap_or_default();
        let data = &ev["data"];
        let name = match kind {
            "pair.state" => match data["step"].as_str() {
                Some(step) => step.to_string(),
                None => data["state"].as_str().unwrap_or("?").to_string(),
            },
            "pair.finished" => "finished".to_string(),
            _ => continue,
        };
        let (Some(id), Some(t)) = (data["pairing"].as_str(), ev["time_ms"].as_i64()) else {
            continue;
        };
        match pairings.iter_mut().find(|(p, _)| p == id) {
            Some((_, marks)) => marks.push((t, name)),
            None => pairings.push((id.to_string(), vec![(t, name)])),
        }
    }
    pairings
        .into_iter()
        .map(|(_, marks)| {
            marks
                .windows(2)
                .filter(|w| w[0].1.contains('.') || w[0].1 == "off")
                .map(|w| {
                    let name = if w[0].1 == "off" {
                        "end (ancestor dropped, excludes removed)".to_string()
                    } else {
                        w[0].1.clone()
                    };
                    (name, w[1].0 - w[0].0)
                })
                .collect()
        })
        .collect()
}

/// `berth debug sync` between the two trees, until stopped.
fn debug_sync(s: &Scratch, alpha: &Path, beta: &Path) -> Result<Child, String> {
    let mut child = Command::new(&s.bin)
        .arg("--home")
        .arg(s.home())
        .args(["--json", "debug", "sync"])
        .arg(alpha)
        .arg(beta)
        .args(["--exclude", "/.git/"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start berth debug sync: {e}"))?;
    // Ready once its first line (`ready`) is out.
    let Some(stdout) = child.stdout.take() else {
        return Err("no output from berth debug sync".into());
    };
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    match lines.next() {
        Some(Ok(l)) if l.contains("\"ready\"") => {}
        other => return Err(format!("berth debug sync did not get ready: {other:?}")),
    }
    std::thread::spawn(move || for _ in lines {});
    Ok(child)
}

pub fn run(args: &[String], bin: &Path, repo_root: &Path) -> Result<PathBuf, String> {
    let o = parse(args)?;
    let measured = measure(&o, bin)?;
    let mut curve = Vec::new();
    let mut failed = Vec::new();
    for &files in &o.curve {
        if files == o.files {
            curve.push((files, None));
            continue;
        }
        eprintln!("scale curve: {files} files …");
        match measure(&Options { files, ..o.clone() }, bin) {
            Ok(m) => curve.push((files, Some(m))),
            // One size failing leaves the others' figures (and the main run's) standing.
            Err(e) => {
                eprintln!("scale curve: {files} files failed: {e}");
                failed.push(format!("- {files} files: {e}\n"));
            }
        }
    }
    let path = repo_root.join("bench/results/pairing.md");
    // The hand-written analysis below the marker is kept.
    let kept = std::fs::read_to_string(&path)
        .ok()
        .and_then(|old| old.find(ANALYSIS).map(|at| old[at..].to_string()))
        .unwrap_or_default();
    let mut text = report(&o, &measured);
    if !curve.is_empty() {
        let rows: Vec<(usize, &Measured)> = curve
            .iter()
            .map(|(n, m)| (*n, m.as_ref().unwrap_or(&measured)))
            .collect();
        text.push_str(&curve_table(&o, &rows));
    }
    if !failed.is_empty() {
        text.push_str("Sizes of the curve that could not be measured:\n\n");
        text.push_str(&failed.concat());
        text.push('\n');
    }
    text.push_str(&kept);
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// One run on a tree of `o.files` files: start/stop cycles, edits while paired and with the
/// bare engine, the daemon's memory, and a first copy of the tree into an empty directory.
fn measure(o: &Options, bin: &Path) -> Result<Measured, String> {
    let root = std::env::temp_dir().join(format!(
        "berth-bench-pairing-{}-{}",
        std::process::id(),
        o.files
    ));
    std::fs::create_dir_all(root.join("project")).map_err(|e| e.to_string())?;
    let s = Scratch {
        root,
        bin: bin.to_path_buf(),
    };
    let project = s.project();
    let tree = Tree::small(o.files);
    eprintln!("generating {} files …", o.files);
    git(&project, &["init", "-q", "-b", "main"])?;
    git(&project, &["config", "user.name", "bench"])?;
    git(&project, &["config", "user.email", "bench@berth.invalid"])?;
    tree.generate(&project)?;
    git(&project, &["add", "-A"])?;
    git(&project, &["commit", "-q", "-m", "the tree"])?;
    s.berth(&["daemon", "start"])?;
    let t = Instant::now();
    s.berth(&["agent", "new", "bench"])?;
    let agent_new = t.elapsed();
    let status: serde_json::Value =
        serde_json::from_str(&s.berth(&["--json", "agent", "show", "bench"])?)
            .map_err(|e| e.to_string())?;
    let workspace = PathBuf::from(status["workspace"].as_str().unwrap_or_default());
    std::thread::sleep(Duration::from_secs(1));
    let rss_before = daemon_rss(&s.home());
    let load_before = load();

    // Start/stop cycles, each with a few uncommitted changes to keep and restore.
    let (mut starts, mut stops) = (Vec::new(), Vec::new());
    for c in 0..o.cycles {
        for k in 0..5 {
            let i = (mix(0xc0ffee ^ (c * 10 + k) as u64) % tree.files as u64) as usize;
            std::fs::write(project.join(tree.path(i)), format!("uncommitted {c} {k}\n"))
                .map_err(|e| e.to_string())?;
        }
        let before = git(&project, &["status", "--porcelain=v2"])?;
        eprintln!("cycle {}/{}: pair start …", c + 1, o.cycles);
        starts.push(s.timed(&["pair", "bench"])?);
        stops.push(s.timed(&["pair", "stop"])?);
        if git(&project, &["status", "--porcelain=v2"])? != before {
            return Err(format!("cycle {c}: the checkout did not come back exactly"));
        }
        git(&project, &["checkout", "-q", "--", "."])?;
    }

    let steps = step_times(&s.berth(&["--json", "events"])?);
    let load_cycles = load();

    // Edits while paired.
    s.berth(&["pair", "bench"])?;
    std::thread::sleep(Duration::from_secs(2));
    eprintln!("edits while paired …");
    let paired_u2a = edits(&tree, &project, &workspace, o.edits, 1)?;
    let paired_a2u = edits(&tree, &workspace, &project, o.edits, 2)?;
    std::thread::sleep(Duration::from_secs(3));
    let rss_paired = daemon_rss(&s.home());
    let load_paired = load();
    s.berth(&["pair", "stop"])?;
    git(&project, &["reset", "-q", "--hard"])?;
    git(&workspace, &["reset", "-q", "--hard"])?;
    let rss_after = daemon_rss(&s.home());

    // The bare engine on the same two trees.
    eprintln!("edits with berth debug sync …");
    let mut engine = debug_sync(&s, &project, &workspace)?;
    let bare_u2a = edits(&tree, &project, &workspace, o.edits, 3);
    let bare_a2u = edits(&tree, &workspace, &project, o.edits, 4);
    let _ = engine.kill();
    let _ = engine.wait();
    let (bare_u2a, bare_a2u) = (bare_u2a?, bare_a2u?);

    // A first copy of the whole tree into an empty directory, by the bare engine.
    eprintln!("first copy …");
    let copy = s.root.join("copy");
    std::fs::create_dir_all(&copy).map_err(|e| e.to_string())?;
    let (from, to) = (project.display().to_string(), copy.display().to_string());
    let first_copy = s.timed(&["debug", "sync", &from, &to, "--once"])?;
    std::fs::remove_dir_all(&copy).map_err(|e| e.to_string())?;

    Ok(Measured {
        agent_new,
        starts,
        stops,
        steps,
        paired: [paired_u2a, paired_a2u],
        bare: [bare_u2a, bare_a2u],
        rss: [rss_before, rss_paired, rss_after],
        load: [load_before, load_cycles, load_paired, load()],
        first_copy,
    })
}

/// Where the hand-written analysis of the report begins; a run keeps what follows it.
const ANALYSIS: &str = "<!-- analysis: kept by the benchmark -->";

/// What a run measured.
struct Measured {
    agent_new: Duration,
    starts: Vec<Duration>,
    stops: Vec<Duration>,
    /// Per start/stop cycle's pairing: each step's time (see [`step_times`]).
    steps: Vec<Vec<(String, i64)>>,
    /// Edits while paired, then with `berth debug sync`: checkout → agent, agent → checkout.
    paired: [Vec<Duration>; 2],
    bare: [Vec<Duration>; 2],
    /// The daemon before any pairing, paired (idle), after the pairing stopped.
    rss: [Option<Rss>; 3],
    /// The load average before the cycles, after them, while paired, at the end.
    load: [String; 4],
    /// `berth debug sync TREE EMPTY --once`.
    first_copy: Duration,
}

/// The scale curve: each size's figures, and how the idle pairing's memory grows per file.
fn curve_table(o: &Options, rows: &[(usize, &Measured)]) -> String {
    let mut r = format!(
        "## Scale curve\n\nCommand: `cargo run --release --locked -p berth-bench -- pairing --files {} \
         --cycles {} --edits {} --curve {}` (each size measured like the run above: {} start/stop \
         cycles, {} edits per direction). RSS is the daemon's with the pairing idle; growth is the \
         difference of idle RSS to the previous size, per file added. First copy: `berth debug \
         sync TREE EMPTY --once`.\n\n",
        o.files,
        o.cycles,
        o.edits,
        o.curve
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(","),
        o.cycles,
        o.edits
    );
    r.push_str(
        "| files | RSS idle MiB | growth bytes/file | pair median ms | stop median ms | first copy s \
         | checkout → agent p50 / p99 ms | agent → checkout p50 / p99 ms |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    let mut sorted: Vec<&(usize, &Measured)> = rows.iter().collect();
    sorted.sort_by_key(|(n, _)| *n);
    let mut prev: Option<(usize, u64)> = None;
    for (files, m) in sorted {
        let rss = m.rss[1].map(|k| k.total);
        let growth = match (prev, rss) {
            (Some((pn, pk)), Some(k)) if *files > pn => format!(
                "{:.0}",
                (k as f64 - pk as f64) * 1024.0 / (*files - pn) as f64
            ),
            _ => "—".to_string(),
        };
        if let Some(k) = rss {
            prev = Some((*files, k));
        }
        let (u2a, a2u) = (Summary::of(&m.paired[0]), Summary::of(&m.paired[1]));
        r.push_str(&format!(
            "| {files} | {} | {growth} | {} | {} | {:.2} | {} / {} | {} / {} |\n",
            rss.map_or("unknown".into(), |k| format!("{:.1}", k as f64 / 1024.0)),
            ms(Summary::of(&m.starts).p50),
            ms(Summary::of(&m.stops).p50),
            m.first_copy.as_secs_f64(),
            ms(u2a.p50),
            ms(u2a.p99),
            ms(a2u.p50),
            ms(a2u.p99),
        ));
    }
    r.push('\n');
    r
}

/// The step table: the median of each step over the cycles, and what the CLI's wall time
/// holds besides the steps (`prefix`: which steps, `wall`: the CLI's times).
fn step_table(r: &mut String, steps: &[Vec<(String, i64)>], prefix: &str, wall: &[Duration]) {
    let median = |mut v: Vec<i64>| -> i64 {
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    };
    let mut names: Vec<&str> = Vec::new();
    for cycle in steps {
        for (name, _) in cycle {
            if name.starts_with(prefix) && !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    let mut rest = Vec::new();
    for (cycle, w) in steps.iter().zip(wall) {
        let inside: i64 = cycle
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(_, t)| t)
            .sum();
        rest.push(w.as_millis() as i64 - inside);
    }
    for name in names {
        let times: Vec<i64> = steps
            .iter()
            .filter_map(|c| c.iter().find(|(n, _)| n == name).map(|(_, t)| *t))
            .collect();
        r.push_str(&format!(
            "| `{name}` | {} | {} |\n",
            median(times.clone()),
            times.iter().max().copied().unwrap_or(0)
        ));
    }
    r.push_str(&format!(
        "| outside the steps (CLI, request, answer{}) | {} | {} |\n",
        if prefix == "stop." {
            ", the pairing's end"
        } else {
            ""
        },
        median(rest.clone()),
        rest.iter().max().copied().unwrap_or(0)
    ));
}

fn report(o: &Options, m: &Measured) -> String {
    let mut r = String::new();
    r.push_str("# Pairing benchmark\n\n");
    r.push_str(&format!(
        "Command: `cargo run --release --locked -p berth-bench -- pairing --files {} --cycles {} --edits {}`\n\n",
        o.files, o.cycles, o.edits
    ));
    r.push_str("## Machine\n\n");
    r.push_str(&crate::machine::describe());
    r.push_str(&format!(
        "- load average (1 min): {} before the cycles, {} after them, {} while paired, {} at the end\n",
        m.load[0], m.load[1], m.load[2], m.load[3]
    ));
    r.push_str(&format!(
        "\n## Start and stop ({} files, 5 uncommitted changes kept and restored each cycle)\n\n",
        o.files
    ));
    r.push_str(&format!(
        "`berth agent new` (workspace checkout of the whole tree): {} ms\n\n",
        ms(m.agent_new)
    ));
    r.push_str("| | cycles | min ms | median ms | max ms |\n| --- | --- | --- | --- | --- |\n");
    for (name, v) in [
        ("`berth pair NAME` (until active)", &m.starts),
        ("`berth pair stop` (until restored)", &m.stops),
    ] {
        let s = Summary::of(v);
        r.push_str(&format!(
            "| {name} | {} | {} | {} | {} |\n",
            s.n,
            ms(s.min),
            ms(s.p50),
            ms(s.max)
        ));
    }
    r.push_str(
        "\nWhere the time goes (from the `pair.state` events: each step runs until the next \
         state is entered):\n\n| part | median ms | max ms |\n| --- | --- | --- |\n",
    );
    let steps = &m.steps[..m.steps.len().min(m.starts.len())];
    step_table(&mut r, steps, "start.", &m.starts);
    step_table(&mut r, steps, "stop.", &m.stops);
    let ends: Vec<i64> = steps
        .iter()
        .filter_map(|c| c.iter().find(|(n, _)| !n.contains('.')).map(|(_, t)| *t))
        .collect();
    if !ends.is_empty() {
        r.push_str(&format!(
            "| of which the pairing's end (ancestor dropped, excludes removed) | {} | {} |\n",
            {
                let mut v = ends.clone();
                v.sort_unstable();
                v[v.len() / 2]
            },
            ends.iter().max().copied().unwrap_or(0)
        ));
    }
    r.push_str(&format!(
        "\n## One file edited, until the other side holds it ({} edits per direction, 60 ms apart)\n\n",
        o.edits
    ));
    r.push_str("| direction | pairing p50 ms | pairing p99 ms | `debug sync` p50 ms | `debug sync` p99 ms | p50 ratio |\n");
    r.push_str("| --- | --- | --- | --- | --- | --- |\n");
    for (i, label) in ["checkout → agent", "agent → checkout"].iter().enumerate() {
        let (p, b) = (Summary::of(&m.paired[i]), Summary::of(&m.bare[i]));
        r.push_str(&format!(
            "| {label} | {} | {} | {} | {} | {:.2} |\n",
            ms(p.p50),
            ms(p.p99),
            ms(b.p50),
            ms(b.p99),
            p.p50.as_secs_f64() / b.p50.as_secs_f64().max(1e-9)
        ));
    }
    r.push_str("\nTargets (SPEC §7): p50 ≤ 5 ms and p99 ≤ 20 ms.\n\n## Daemon memory\n\n");
    let mib = |k: Option<Rss>| {
        k.map_or("unknown".to_string(), |k| {
            let anon = k.anon.map_or(String::new(), |a| {
                format!(" ({:.1} MiB of it anonymous)", a as f64 / 1024.0)
            });
            format!("{:.1} MiB{anon}", k.total as f64 / 1024.0)
        })
    };
    r.push_str(&format!(
        "- RSS before any pairing (the agent created): {}\n- RSS while paired (idle, after the edits): {}\n- RSS after the pairing stopped: {}\n\nTarget (SPEC §7): daemon RSS under 30 MB with an idle pairing.\n\n",
        mib(m.rss[0]),
        mib(m.rss[1]),
        mib(m.rss[2])
    ));
    r
}
