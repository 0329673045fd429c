//! `berth-bench web`: the web console in Debian's Chromium (`bench/web/measure.mjs`, with the
//! browser tests' playwright-core): first meaningful paint of the overview listing 100 running
//! agents (goal ≤ 300 ms), event-to-screen latency (goal ≤ 100 ms), and the overview's page
//! weight, gzip-compressed, without xterm.js (goal ≤ 300 KiB). Writes `bench/results/web.md`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cli::git;
use crate::machine;
use crate::stats::{Summary, ms};

const AGENTS: usize = 100;
const SAMPLES: usize = 30;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

struct Daemon<'a> {
    bin: &'a Path,
    home: PathBuf,
    repo: PathBuf,
}

impl Daemon<'_> {
    fn run(&self, args: &[&str]) -> Result<String, String> {
        crate::cli::berth(self.bin, &self.home, &self.repo, args)
    }
}

impl Drop for Daemon<'_> {
    fn drop(&mut self) {
        let _ = self.run(&["daemon", "stop", "--all"]);
    }
}

fn durations(v: &serde_json::Value) -> Vec<Duration> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(serde_json::Value::as_f64)
                .map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0))
                .collect()
        })
        .unwrap_or_default()
}

fn kib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1024.0)
}

pub fn run(bin: &Path, root: &Path) -> Result<PathBuf, String> {
    let status = Command::new(root.join("scripts/test-deps"))
        .status()
        .map_err(|e| format!("cannot run scripts/test-deps: {e}"))?;
    if !status.success() {
        return Err("scripts/test-deps failed: chromium and playwright-core are needed".into());
    }
    let tmp = tempfile::tempdir().map_err(err)?;
    let repo = tmp.path().join("project");
    std::fs::create_dir(&repo).map_err(err)?;
    git(&repo, &["init", "-q", "-b", "main"])?;
    git(&repo, &["config", "user.name", "bench"])?;
    git(&repo, &["config", "user.email", "bench@berth.invalid"])?;
    std::fs::write(repo.join("a.txt"), "a\n").map_err(err)?;
    git(&repo, &["add", "."])?;
    git(&repo, &["commit", "-qm", "first"])?;
    let daemon = Daemon {
        bin,
        home: tmp.path().join("home"),
        repo: repo.clone(),
    };
    daemon.run(&["daemon", "start"])?;
    eprintln!("starting {AGENTS} agents");
    for i in 0..AGENTS {
        let name = format!("a{i:03}");
        daemon.run(&["agent", "new", &name, "--cmd", "sleep 3600", "--start"])?;
    }
    let opened: serde_json::Value =
        serde_json::from_str(&daemon.run(&["--json", "web"])?).map_err(err)?;
    let login = opened["url"].as_str().ok_or("berth web printed no url")?;
    eprintln!("measuring in chromium");
    let out = Command::new("node")
        .arg(root.join("bench/web/measure.mjs"))
        .env("LOGIN", login)
        .env("BERTH_BIN", bin)
        .env("BERTH_HOME", &daemon.home)
        .env("REPO", &repo)
        .env("AGENTS", AGENTS.to_string())
        .env("SAMPLES", SAMPLES.to_string())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run node: {e}"))?;
    if !out.status.success() {
        return Err("bench/web/measure.mjs failed (see above)".into());
    }
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(err)?;
    drop(daemon);

    let paint = Summary::of(&durations(&m["paints"]));
    let fcp = Summary::of(&durations(&m["fcps"]));
    let latency = Summary::of(&durations(&m["latencies"]));
    let mut files = String::new();
    let (mut raw, mut gzip) = (0u64, 0u64);
    for kind in ["files", "data"] {
        for f in m["weight"][kind].as_array().into_iter().flatten() {
            let (r, g) = (
                f["raw"].as_u64().unwrap_or(0),
                f["gzip"].as_u64().unwrap_or(0),
            );
            raw += r;
            gzip += g;
            files += &format!(
                "| `{}` | {} | {} |\n",
                f["url"].as_str().unwrap_or("?"),
                kib(r),
                kib(g)
            );
        }
    }
    let xterm = ["xterm.mjs", "xterm.css", "addon-fit.mjs"]
        .iter()
        .map(|f| {
            let bytes = std::fs::read(root.join("crates/berth-daemon/console/vendor").join(f))
                .map(|b| b.len())
                .unwrap_or(0);
            bytes as u64
        })
        .sum::<u64>();
    let verdict = |ok: bool| if ok { "✓" } else { "✗" };
    let report = format!(
        "# Web console benchmark\n\n\
         `cargo run --release --locked -p berth-bench -- web`: the console in Debian's Chromium \
         (headless, playwright-core), the overview listing {AGENTS} running agents, {SAMPLES} \
         samples each.\n\n\
         {}- load average at the start: {}\n\n\
         | measure | p50 | p99 | max | goal |\n| --- | --- | --- | --- | --- |\n\
         | first meaningful paint: every agent's row in the document, from navigation start (ms) | {} | {} | {} | ≤ 300 ms {} |\n\
         | first contentful paint (ms) | {} | {} | {} | |\n\
         | event to screen: the daemon's event time to the new state in the document (ms) | {} | {} | {} | ≤ 100 ms {} |\n\n\
         Page weight of the overview (everything it loads, the API answers with {AGENTS} agents \
         included; xterm.js is loaded only when a terminal is opened): **{} KiB gzip-compressed** \
         ({} KiB as served), goal ≤ 300 KiB {}. xterm.js and its fit addon add {} KiB as served.\n\n\
         | file | KiB | KiB gzip |\n| --- | --- | --- |\n{files}",
        machine::describe(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split(' ')
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        ms(paint.p50),
        ms(paint.p99),
        ms(paint.max),
        verdict(paint.p50 <= Duration::from_millis(300)),
        ms(fcp.p50),
        ms(fcp.p99),
        ms(fcp.max),
        ms(latency.p50),
        ms(latency.p99),
        ms(latency.max),
        verdict(latency.p50 <= Duration::from_millis(100)),
        kib(gzip),
        kib(raw),
        verdict(gzip <= 300 * 1024),
        kib(xterm),
    );
    let path = root.join("bench/results/web.md");
    std::fs::write(&path, report).map_err(err)?;
    Ok(path)
}
