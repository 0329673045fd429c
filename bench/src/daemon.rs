//! The daemon benchmark: start until ready, stop, `daemon status` round trips and requests/s.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_client::Client;
use hyper::Method;

use crate::machine;
use crate::stats::{Summary, ms};

const START_STOP_RUNS: usize = 30;
const CLI_STATUS_RUNS: usize = 300;
const CLIENT_STATUS_RUNS: usize = 3000;
const LOAD_SECONDS: u64 = 5;
const LOAD_CONNECTIONS: usize = 4;

struct Home {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl Home {
    fn new(bin: &Path) -> Result<Home, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        Ok(Home {
            dir,
            bin: bin.to_path_buf(),
        })
    }

    /// Runs berth with this home; returns the wall time of the whole process.
    fn time(&self, args: &[&str]) -> Result<Duration, String> {
        let began = Instant::now();
        let status = Command::new(&self.bin)
            .env("BERTH_HOME", self.dir.path())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        let took = began.elapsed();
        match status.code() {
            Some(0) => Ok(took),
            other => Err(format!("berth {args:?} exited with {other:?}")),
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("run/berth.sock")
    }
}

fn row(what: &str, s: &Summary, target: &str) -> String {
    format!(
        "| {what} | {} | {} | {} | {} | {} | {target} |\n",
        s.n,
        ms(s.p50),
        ms(s.min),
        ms(s.max),
        ms(s.p99)
    )
}

pub fn run(bin: &Path, root: &Path) -> Result<PathBuf, String> {
    let mut starts = Vec::new();
    let mut stops = Vec::new();
    for _ in 0..START_STOP_RUNS {
        let home = Home::new(bin)?;
        starts.push(home.time(&["daemon", "start"])?);
        stops.push(home.time(&["daemon", "stop"])?);
    }
    eprintln!("start/stop done");

    let home = Home::new(bin)?;
    home.time(&["daemon", "start"])?;
    let mut cli_status = Vec::new();
    let mut cli_version = Vec::new();
    for _ in 0..CLI_STATUS_RUNS {
        cli_status.push(home.time(&["--json", "daemon", "status"])?);
        cli_version.push(home.time(&["--version"])?);
    }
    eprintln!("CLI status done");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let client = Client::unix(home.socket());
    let (fresh, reused, rps) = rt.block_on(async {
        let mut fresh = Vec::new();
        for _ in 0..CLIENT_STATUS_RUNS {
            let began = Instant::now();
            client.status().await.map_err(|e| e.to_string())?;
            fresh.push(began.elapsed());
        }
        let mut conn = client.connect().await.map_err(|e| e.to_string())?;
        let mut reused = Vec::new();
        for _ in 0..CLIENT_STATUS_RUNS {
            let began = Instant::now();
            let _: serde_json::Value = conn
                .get_json("/v1/status")
                .await
                .map_err(|e| e.to_string())?;
            reused.push(began.elapsed());
        }
        let deadline = Instant::now() + Duration::from_secs(LOAD_SECONDS);
        let mut tasks = Vec::new();
        for _ in 0..LOAD_CONNECTIONS {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut conn = client.connect().await.map_err(|e| e.to_string())?;
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let resp = conn
                        .request(Method::GET, "/v1/status", None)
                        .await
                        .map_err(|e| e.to_string())?;
                    if !resp.status.is_success() {
                        return Err(format!("HTTP {}", resp.status));
                    }
                    n += 1;
                }
                Ok::<u64, String>(n)
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.map_err(|e| e.to_string())??;
        }
        Ok::<_, String>((fresh, reused, total as f64 / LOAD_SECONDS as f64))
    })?;
    home.time(&["daemon", "stop"])?;

    let start = Summary::of(&starts);
    let stop = Summary::of(&stops);
    let cli = Summary::of(&cli_status);
    let version = Summary::of(&cli_version);
    let fresh = Summary::of(&fresh);
    let reused = Summary::of(&reused);
    let mut md = String::from("# Daemon benchmark\n\n");
    md += "Produced by `cargo run --release --locked -p berth-bench -- daemon`. All times in \
           milliseconds, measured on this machine in one run.\n\n## Machine\n\n";
    md += &machine::describe();
    md += "\n## Results\n\n| what | runs | median | min | max | p99 | SPEC §7 target |\n|---|---|---|---|---|---|---|\n";
    md += &row(
        "`berth daemon start` until ready (whole CLI process)",
        &start,
        "< 200 ms",
    );
    md += &row("`berth daemon stop` (whole CLI process)", &stop, "< 1 s");
    md += &row(
        "`berth daemon status` round trip, whole CLI process",
        &cli,
        "p50 < 2 ms",
    );
    md += &row(
        "`berth --version` (process start-up alone, for reference)",
        &version,
        "—",
    );
    md += &row(
        "status round trip, in-process client, new connection each",
        &fresh,
        "p50 < 2 ms",
    );
    md += &row(
        "status round trip, in-process client, one kept connection",
        &reused,
        "—",
    );
    md += &format!(
        "\nRequests per second over the socket (`GET /v1/status`, {LOAD_CONNECTIONS} kept connections, \
         {LOAD_SECONDS} s): **{rps:.0}** (target ≥ 1,000).\n"
    );
    md += "\nThe whole-process figures include starting the `berth` executable itself \
           (exec, dynamic linking, runtime set-up), which the in-process figures do not.\n";
    let out = root.join("bench/results/daemon.md");
    std::fs::create_dir_all(out.parent().unwrap_or(root)).map_err(|e| e.to_string())?;
    std::fs::write(&out, &md).map_err(|e| e.to_string())?;
    print!("{md}");
    Ok(out)
}
