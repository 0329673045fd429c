//! The supervisor benchmark: 100 agents started and stopped, keeper and daemon memory, and
//! re-adoption after a daemon restart.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_client::Client;

use crate::machine;
use crate::stats::{Summary, ms};

const AGENTS: usize = 100;
const ROUNDS: usize = 5;

fn run(bin: &Path, home: &Path, args: &[&str]) -> Result<Duration, String> {
    let began = Instant::now();
    let ok = Command::new(bin)
        .env("BERTH_HOME", home)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| e.to_string())?
        .success();
    if ok {
        Ok(began.elapsed())
    } else {
        Err(format!("berth {args:?} failed"))
    }
}

/// A `KEY:  N kB` field of a `/proc` file.
fn kib(file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    kib(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// RSS, proportional set size (shared pages divided among their users) and anonymous RSS.
fn memory(pid: u32) -> Option<(u64, u64, u64)> {
    Some((
        rss_kib(pid)?,
        kib(&format!("/proc/{pid}/smaps_rollup"), "Pss:")?,
        kib(&format!("/proc/{pid}/status"), "RssAnon:")?,
    ))
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

pub(crate) fn keeper_pids(home: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    for project in std::fs::read_dir(home.join("agents"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for agent in std::fs::read_dir(project.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let state: Option<serde_json::Value> = std::fs::read(agent.path().join("state.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            if let Some(pid) = state.and_then(|s| s["keeper"]["pid"].as_u64()) {
                pids.push(pid as u32);
            }
        }
    }
    pids
}

async fn all(client: &Client, path: &str, repo: &str) -> Result<Duration, String> {
    let began = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..AGENTS {
        let (client, path) = (client.clone(), path.to_string());
        let body = serde_json::json!({ "repo": repo, "name": format!("a{i:03}") });
        tasks.push(tokio::spawn(async move {
            client
                .post_json::<_, serde_json::Value>(&path, &body)
                .await
                .map_err(|e| e.to_string())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(began.elapsed())
}

/// A repository at `dir` with one empty commit on `main`: a project for agents.
pub(crate) fn empty_project(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for args in [
        &["init", "-q", "-b", "main"][..],
        &[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@b",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
    ] {
        Command::new("git")
            .current_dir(dir)
            .args(args)
            .status()
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub fn run_bench(bin: &Path, root: &Path) -> Result<PathBuf, String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let home = tmp.path().join("home");
    let repo = tmp.path().join("project");
    empty_project(&repo)?;
    run(bin, &home, &["daemon", "start"])?;
    let client = Client::unix(home.join("run/berth.sock"));
    let repo_s = repo.display().to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (starts, stops, keeper_rss, daemon_rss, adopt) = rt.block_on(async {
        for i in 0..AGENTS {
            let body = serde_json::json!({ "repo": repo_s, "name": format!("a{i:03}"), "command": "exec sleep 3600" });
            client.post_json::<_, serde_json::Value>("/v1/agents/new", &body).await.map_err(|e| e.to_string())?;
        }
        let (mut starts, mut stops) = (Vec::new(), Vec::new());
        let (mut keeper_rss, mut daemon_rss, mut adopt) = (Vec::new(), 0, Vec::new());
        for round in 0..ROUNDS {
            starts.push(all(&client, "/v1/agents/start", &repo_s).await?);
            if round == 0 {
                keeper_rss = keeper_pids(&home).into_iter().filter_map(memory).collect();
                let status = client.status().await.map_err(|e| e.to_string())?;
                daemon_rss = rss_kib(status.handshake.pid).unwrap_or(0);
            }
            // Re-adoption: the daemon restarts while all agents run; start returns when ready,
            // and readiness includes re-adopting every keeper.
            run(bin, &home, &["daemon", "stop"])?;
            adopt.push(run(bin, &home, &["daemon", "start"])?);
            let list: serde_json::Value = client
                .post_json("/v1/agents/list", &serde_json::json!({ "repo": repo_s }))
                .await
                .map_err(|e| e.to_string())?;
            let running = list["agents"].as_array().map_or(0, |a| a.iter().filter(|x| x["state"] == "running").count());
            if running != AGENTS {
                return Err(format!("only {running} of {AGENTS} agents were re-adopted"));
            }
            stops.push(all(&client, "/v1/agents/stop", &repo_s).await?);
        }
        Ok::<_, String>((starts, stops, keeper_rss, daemon_rss, adopt))
    })?;
    run(bin, &home, &["daemon", "stop"])?;

    let median_rss = median(keeper_rss.iter().map(|m| m.0).collect());
    let max_rss = keeper_rss.iter().map(|m| m.0).max().unwrap_or(0);
    let median_pss = median(keeper_rss.iter().map(|m| m.1).collect());
    let median_anon = median(keeper_rss.iter().map(|m| m.2).collect());
    let row = |what: &str, s: &Summary, target: &str| {
        format!(
            "| {what} | {} | {} | {} | {} | {target} |\n",
            s.n,
            ms(s.p50),
            ms(s.min),
            ms(s.max)
        )
    };
    let mut md = String::from("# Supervisor benchmark\n\n");
    md += "Produced by `cargo run --release --locked -p berth-bench -- supervisor`: 100 agents \
           (`exec sleep 3600`, which honours SIGTERM), each under its own keeper, started and \
           stopped together over the API; between start and stop the daemon is restarted and \
           must re-adopt all 100. Times in milliseconds.\n\n## Machine\n\n";
    md += &machine::describe();
    md += "\n## Results\n\n| what | runs | median | min | max | SPEC §7 target |\n|---|---|---|---|---|---|\n";
    md += &row(
        "start 100 agents (concurrent API calls, until each runs)",
        &Summary::of(&starts),
        "< 2 s",
    );
    md += &row(
        "stop 100 agents (until no descendant remains)",
        &Summary::of(&stops),
        "< 1 s",
    );
    md += &row(
        "`berth daemon start` until ready, re-adopting 100 agents",
        &Summary::of(&adopt),
        "—",
    );
    md += &format!(
        "\nKeeper memory with its agent running, over {} keepers: RSS median {median_rss} KiB, max \
         {max_rss} KiB (target < 4 MB each); PSS median {median_pss} KiB; anonymous RSS median \
         {median_anon} KiB. Most of a keeper's RSS is pages of the `berth` executable, which all \
         keepers share (PSS divides them among their users).  \nDaemon RSS supervising 100 \
         agents: {daemon_rss} KiB (target < 30 MB).\n",
        keeper_rss.len()
    );
    let out = root.join("bench/results/supervisor.md");
    std::fs::write(&out, &md).map_err(|e| e.to_string())?;
    print!("{md}");
    Ok(out)
}
