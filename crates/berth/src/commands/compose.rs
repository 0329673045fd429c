//! `berth up` / `berth down`.

use berth_client::Client;
use berth_proto::{AgentList, ComposeRequest, DownReport, StashRepo, UpReport};

use super::stash::here;
use crate::Ctx;
use crate::cli::ComposeArgs;
use crate::error::{CliResult, Kind};
use crate::output::{duration_ms, emit};
use crate::progress;

pub async fn run(ctx: &Ctx, up: bool, args: ComposeArgs) -> CliResult<i32> {
    // The daemon enforces the overall timeout; the request may take that long and a bit.
    let client = Client::unix(ctx.home.socket())
        .with_timeout(args.timeout + std::time::Duration::from_secs(30));
    let body = ComposeRequest {
        repo: here()?,
        names: args.names,
        timeout_ms: u64::try_from(args.timeout.as_millis()).unwrap_or(u64::MAX),
    };
    if up {
        let report: UpReport = progress::during(
            ctx.json,
            "bringing the project up".to_string(),
            client.post_json("/v1/up", &body),
            async || {
                let l: AgentList = Client::unix(ctx.home.socket())
                    .post_json(
                        "/v1/agents/list",
                        &StashRepo {
                            repo: body.repo.clone(),
                        },
                    )
                    .await
                    .ok()?;
                let running = l.agents.iter().filter(|a| a.state == "running").count();
                Some(format!(
                    "bringing the project up: {running} of {} running",
                    l.agents.len()
                ))
            },
        )
        .await?;
        emit(ctx.json, &report, render_up);
        if report.failed.is_empty() && report.skipped.is_empty() {
            return Ok(0);
        }
        if !ctx.json {
            eprint!("{}", render_up_failures(&report));
        }
        Ok(Kind::Failed.exit_code())
    } else {
        let report: DownReport = client.post_json("/v1/down", &body).await?;
        emit(ctx.json, &report, render_down);
        if report.failed.is_empty() {
            return Ok(0);
        }
        if !ctx.json {
            for f in &report.failed {
                eprintln!("error: could not stop {}: {}", f.name, f.error);
            }
            eprintln!("hint: see `berth daemon logs`, then run `berth down` again");
        }
        Ok(Kind::Failed.exit_code())
    }
}

/// What came up, level by level (standard output).
fn render_up(r: &UpReport) -> String {
    let mut s = String::new();
    for (i, level) in r.levels.iter().enumerate() {
        let up: Vec<&str> = level
            .iter()
            .map(String::as_str)
            .filter(|n| {
                !r.failed.iter().any(|f| f.name == *n) && !r.skipped.iter().any(|k| k.name == *n)
            })
            .collect();
        if !up.is_empty() {
            s += &format!("started (level {}): {}\n", i + 1, up.join(", "));
        }
    }
    s
}

/// Every failure and skip together, and what is left running (standard error).
fn render_up_failures(r: &UpReport) -> String {
    let total: usize = r.levels.iter().map(Vec::len).sum();
    let mut s = format!(
        "error: {} of {total} did not come up\n",
        r.failed.len() + r.skipped.len()
    );
    for f in &r.failed {
        s += &format!("  {} ({}): {}\n", f.name, f.kind, f.reason);
        if let Some(probe) = &f.probe {
            s += &format!("    readiness probe: {probe}\n");
        }
        if f.output.is_empty() {
            s += &format!("    no output (log: {})\n", f.log);
        } else {
            s += &format!("    last output ({}):\n", f.log);
            for line in &f.output {
                s += &format!("      {line}\n");
            }
        }
    }
    for k in &r.skipped {
        let why = if k.because.is_empty() {
            "the overall timeout passed before its turn".to_string()
        } else {
            format!("it needs {}, which did not come up", k.because.join(", "))
        };
        s += &format!("  {}: not started: {why}\n", k.name);
    }
    s += &match r.running.as_slice() {
        [] => "nothing is left running\n".to_string(),
        running => format!("left running: {}\n", running.join(", ")),
    };
    s += "hint: fix what failed and run `berth up` again (what runs is left as it is); \
          `berth down` stops everything\n";
    s
}

fn render_down(r: &DownReport) -> String {
    let mut s = String::new();
    for (i, level) in r.levels.iter().enumerate() {
        let failed = |n: &str| r.failed.iter().any(|f| f.name == n);
        let stopped: Vec<&str> = level
            .iter()
            .map(String::as_str)
            .filter(|n| !failed(n) && !r.killed.iter().any(|k| k.name == *n))
            .collect();
        if !stopped.is_empty() {
            s += &format!("stopped (level {}): {}\n", i + 1, stopped.join(", "));
        }
        for k in r.killed.iter().filter(|k| level.contains(&k.name)) {
            s += &format!(
                "killed (level {}): {} (still running {} after its stop signal)\n",
                i + 1,
                k.name,
                duration_ms(k.grace_ms)
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use berth_proto::{DownKilled, UpFailure, UpSkipped};

    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn up_shows_what_started_then_every_failure_skip_and_what_is_left_running() {
        let r = UpReport {
            levels: vec![names(&["cache", "db"]), names(&["web"])],
            failed: vec![UpFailure {
                name: "db".into(),
                kind: "service".into(),
                reason: "ended with exit code 3 before it was ready".into(),
                probe: Some("tcp:127.0.0.1:5432".into()),
                exit_code: Some(3),
                output: names(&["2026-11-22 08:15:02.123Z err| no disk"]),
                log: "/h/db/output.log".into(),
            }],
            skipped: vec![UpSkipped {
                name: "web".into(),
                because: names(&["db"]),
            }],
            running: names(&["cache"]),
            took_ms: 5,
        };
        assert_eq!(render_up(&r), "started (level 1): cache\n");
        assert_eq!(
            render_up_failures(&r),
            "error: 2 of 3 did not come up
  db (service): ended with exit code 3 before it was ready
    readiness probe: tcp:127.0.0.1:5432
    last output (/h/db/output.log):
      2026-11-22 08:15:02.123Z err| no disk
  web: not started: it needs db, which did not come up
left running: cache
hint: fix what failed and run `berth up` again (what runs is left as it is); `berth down` stops everything
"
        );
    }

    #[test]
    fn down_names_what_it_had_to_kill_apart_from_what_stopped() {
        let r = DownReport {
            levels: vec![names(&["api", "web"]), names(&["db"])],
            killed: vec![DownKilled {
                name: "web".into(),
                grace_ms: 500,
            }],
            failed: vec![],
            took_ms: 900,
        };
        assert_eq!(
            render_down(&r),
            "stopped (level 1): api
killed (level 1): web (still running 500ms after its stop signal)
stopped (level 2): db
"
        );
    }
}
