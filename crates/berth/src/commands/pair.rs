//! `berth pair NAME [--no-stash] | status | flush | stop` and `berth unpair`: live pairing of
//! the checkout berth runs in with an agent, through the daemon (which owns the pairing, its
//! journal and the sync).

use std::time::{SystemTime, UNIX_EPOCH};

use berth_client::Client;
use berth_proto::{PairFlushed, PairLink, PairRepo, PairStart, PairStatus, PairStopped};

use super::long_client;
use super::stash::here;
use crate::Ctx;
use crate::cli::{PairArgs, PairCommand};
use crate::error::{CliError, CliResult, Kind};
use crate::output::{self, emit};
use crate::progress;

pub async fn run(ctx: &Ctx, args: PairArgs) -> CliResult<i32> {
    match (args.command, args.name) {
        (Some(PairCommand::Status), _) => status(ctx).await,
        (Some(PairCommand::Flush), _) => flush(ctx).await,
        (Some(PairCommand::Stop), _) => stop(ctx).await,
        (None, Some(agent)) => start(ctx, agent, args.no_stash).await,
        (None, None) => Err(CliError::new(
            Kind::Usage,
            "usage",
            "give an agent to pair with (`berth pair NAME`) or a subcommand (`berth pair status|flush|stop`)",
        )),
    }
}

/// What the pairing of the checkout at `repo` is doing, for a progress line.
async fn doing(ctx: &Ctx, repo: &str, what: &str) -> Option<String> {
    let s: PairStatus = Client::unix(ctx.home.socket())
        .post_json(
            "/v1/pair/status",
            &PairRepo {
                repo: repo.to_string(),
            },
        )
        .await
        .ok()?;
    Some(format!("{what}: {}", s.describe))
}

async fn start(ctx: &Ctx, agent: String, no_stash: bool) -> CliResult<i32> {
    let req = PairStart {
        repo: here()?,
        agent: agent.clone(),
        no_stash,
    };
    let what = format!("pairing with {agent}");
    let s: PairStatus = progress::during(
        ctx.json,
        what.clone(),
        long_client(ctx).post_json("/v1/pair/start", &req),
        async || doing(ctx, &req.repo, &what).await,
    )
    .await
    .map_err(|e| explain_start_error(&agent, CliError::from(e)))?;
    emit(ctx.json, &s, render_started);
    if s.state == "off" {
        // Not what the daemon answers a start with; say so rather than claim success.
        return Ok(Kind::Failed.exit_code());
    }
    Ok(0)
}

/// `pairing_blocked` carries one line per blocker (`code: message — fix`): they become the
/// error's details under one headline, so each is printed on its own line.
fn explain_start_error(agent: &str, mut e: CliError) -> CliError {
    if e.code != "pairing_blocked" {
        return e;
    }
    let lines: Vec<String> = e
        .message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    e.message = format!("cannot pair with {agent}; nothing was changed:");
    e.details = lines;
    e
}

pub async fn status(ctx: &Ctx) -> CliResult<i32> {
    let s: PairStatus = Client::unix(ctx.home.socket())
        .post_json("/v1/pair/status", &PairRepo { repo: here()? })
        .await?;
    let now = now_ms();
    emit(ctx.json, &s, |s| render_status(s, now));
    Ok(0)
}

async fn flush(ctx: &Ctx) -> CliResult<i32> {
    let f: PairFlushed = long_client(ctx)
        .post_json("/v1/pair/flush", &PairRepo { repo: here()? })
        .await?;
    emit(ctx.json, &f, render_flushed);
    Ok(0)
}

/// `berth pair stop` and `berth unpair`.
pub async fn stop(ctx: &Ctx) -> CliResult<i32> {
    let req = PairRepo { repo: here()? };
    let what = "stopping the pairing".to_string();
    let s: PairStopped = progress::during(
        ctx.json,
        what.clone(),
        long_client(ctx).post_json("/v1/pair/stop", &req),
        async || doing(ctx, &req.repo, &what).await,
    )
    .await?;
    emit(ctx.json, &s, render_stopped);
    Ok(stop_exit_code(&s.outcome))
}

/// 0 when the stop (or the undoing of a start) finished, whatever it left; 1 when a step failed
/// and the rest was not attempted (`stop_incomplete`, `rollback_incomplete`, and any later
/// `*_incomplete`).
fn stop_exit_code(outcome: &str) -> i32 {
    if outcome.ends_with("_incomplete") {
        Kind::Failed.exit_code()
    } else {
        0
    }
}

/// One line for `berth status` and `berth doctor`: `active (idle) with fixer`, `off`.
pub fn summary(s: &PairStatus) -> String {
    match (&s.agent, s.state.as_str()) {
        (_, "off") | (None, _) => s.describe.clone(),
        (Some(agent), _) => format!("{} with {agent}", s.describe),
    }
}

/// A notice's message already says `paused: …`; a daemon that left the prefix out gets it.
pub fn notice_line(message: &str) -> String {
    if message.starts_with("paused:") {
        message.to_string()
    } else {
        format!("paused: {message}")
    }
}

fn branch_of(s: &PairStatus) -> String {
    s.branch
        .clone()
        .or_else(|| s.agent.as_ref().map(|a| format!("berth/{a}")))
        .unwrap_or_else(|| "the agent's branch".to_string())
}

fn render_started(s: &PairStatus) -> String {
    let agent = s.agent.as_deref().unwrap_or("the agent");
    if s.state == "off" {
        return format!(
            "pairing with {agent} did not start (state: {})\n",
            s.describe
        );
    }
    let kept = s
        .snapshot
        .as_ref()
        .map(|id| format!(" (your changes are kept in snapshot {id})"))
        .unwrap_or_default();
    let mut out = format!(
        "paired with {agent}: your checkout is on {}{kept}\n",
        branch_of(s)
    );
    if s.state != "active" {
        out += &format!("state: {}\n", s.describe);
    }
    for n in &s.notices {
        out += &format!("{}\n", notice_line(&n.message));
    }
    out += "see `berth pair status`; leave with `berth pair stop` (or `berth unpair`)\n";
    out
}

fn render_status(s: &PairStatus, now_ms: i64) -> String {
    if s.state == "off" {
        return "not paired\n".to_string();
    }
    let mut out = String::new();
    let mut row = |k: &str, v: &str| out += &format!("{k:<11}{v}\n");
    row("state", &s.describe);
    if let Some(step) = &s.step {
        row("step", step);
    }
    if let Some(agent) = &s.agent {
        row("agent", agent);
    }
    row("branch", &branch_of(s));
    if let Some(ws) = &s.agent_workspace {
        row("workspace", ws);
    }
    row(
        "original",
        s.original_branch.as_deref().unwrap_or("(detached HEAD)"),
    );
    row(
        "snapshot",
        &s.snapshot.as_ref().map_or_else(
            || "none (there were no changes to keep)".to_string(),
            |id| format!("{id} (your changes from before pairing)"),
        ),
    );
    row(
        "last sync",
        &s.last_sync_ms
            .map_or_else(|| "not yet".to_string(), |t| ago(now_ms, t)),
    );
    row("latency", &latency(s));
    if let Some(link) = &s.link {
        row("link", &link_line(link));
    }
    row(
        "changes",
        &format!("{} to you, {} to the agent", s.to_user, s.to_agent),
    );
    row(
        "commits",
        &format!(
            "{} to you, {} to the agent",
            s.commits_to_user, s.commits_to_agent
        ),
    );
    if let Some(p) = &s.pairing {
        row("pairing", p);
    }
    if !s.notices.is_empty() {
        out += "notices:\n";
        for n in &s.notices {
            out += &format!("  {}\n", notice_line(&n.message));
        }
    }
    if !s.conflicts.is_empty() {
        out += &format!(
            "conflicts kept ({}; your version won, the agent's is kept):\n",
            s.conflicts.len()
        );
        for c in &s.conflicts {
            out += &format!(
                "  {}  {}  ({})\n",
                c.path,
                c.refname,
                output::time_ms(c.time_ms)
            );
        }
        match (&s.link, &s.agent_workspace) {
            // An agent elsewhere's conflicts are kept in this repository.
            (Some(_), _) => out += "  see one with `git show REF`\n",
            (None, Some(ws)) => out += &format!("  see one with `git -C {ws} show REF`\n"),
            (None, None) => {}
        }
    }
    if !s.warnings.is_empty() {
        out += "not synced:\n";
        for w in &s.warnings {
            out += &format!("  {w}\n");
        }
    }
    out
}

fn latency(s: &PairStatus) -> String {
    match &s.latency {
        Some(l) if l.samples > 0 => format!(
            "p50 {}, p99 {} ({} {})",
            millis(l.p50_ms),
            millis(l.p99_ms),
            l.samples,
            if l.samples == 1 { "sample" } else { "samples" }
        ),
        _ => "no samples yet".to_string(),
    }
}

/// The link to an agent elsewhere: where, its round trip and bandwidth, what it carried.
fn link_line(l: &PairLink) -> String {
    let latency = l
        .latency_ms
        .map_or_else(|| "not measured yet".to_string(), millis);
    let bandwidth = l.bandwidth_bps.map_or_else(
        || "not measured yet (no transfer of 64 KiB yet)".to_string(),
        |b| format!("{}/s", output::bytes(b)),
    );
    format!(
        "{}: round trip {latency}, bandwidth {bandwidth}; {} to the agent, {} to you",
        l.on,
        output::bytes(l.bytes_to_agent),
        output::bytes(l.bytes_to_user)
    )
}

/// `0.8 ms`, `12 ms`, `1.5 s`.
fn millis(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn render_flushed(f: &PairFlushed) -> String {
    let mut out = format!(
        "flushed: both sides agree ({} changes to you, {} to the agent) in {}\n",
        f.to_user,
        f.to_agent,
        output::duration_ms(f.took_ms)
    );
    if f.conflicts > 0 {
        out += &format!(
            "{} conflict(s): your version won, the agent's is kept (see `berth pair status`)\n",
            f.conflicts
        );
    }
    out
}

fn render_stopped(s: &PairStopped) -> String {
    let mut out = format!("{}\n", s.message.trim_end());
    if let (Some(id), false) = (&s.snapshot, s.restored) {
        out += &format!(
            "your state from before pairing is kept in snapshot {id}; restore it with `berth stash restore {id}`\n"
        );
    }
    out
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// How long ago `then_ms` was: `just now`, `2 s ago`, `5 min ago`, `3 h ago`, `2 d ago`.
pub fn ago(now_ms: i64, then_ms: i64) -> String {
    let ms = now_ms.saturating_sub(then_ms);
    match ms {
        i64::MIN..=999 => "just now".to_string(),
        1_000..=59_999 => format!("{} s ago", ms / 1_000),
        60_000..=3_599_999 => format!("{} min ago", ms / 60_000),
        3_600_000..=86_399_999 => format!("{} h ago", ms / 3_600_000),
        _ => format!("{} d ago", ms / 86_400_000),
    }
}

#[cfg(test)]
mod tests {
    use berth_proto::{PairConflict, PairLatency, PairNotice};

    use super::*;

    fn off() -> PairStatus {
        PairStatus::off("/r")
    }

    fn active() -> PairStatus {
        PairStatus {
            state: "active".into(),
            describe: "active (idle)".into(),
            pairing: Some("p1".into()),
            agent: Some("fixer".into()),
            branch: Some("berth/fixer".into()),
            agent_workspace: Some("/h/workspaces/fixer".into()),
            original_branch: Some("main".into()),
            snapshot: Some("s1".into()),
            last_sync_ms: Some(1_000),
            latency: Some(PairLatency {
                samples: 12,
                p50_ms: 3.12,
                p99_ms: 41.6,
            }),
            to_user: 5,
            to_agent: 2,
            commits_to_user: 1,
            commits_to_agent: 0,
            ..off()
        }
    }

    #[test]
    fn relative_times_pick_a_readable_unit() {
        assert_eq!(ago(10_000, 10_000), "just now");
        assert_eq!(ago(10_000, 9_200), "just now");
        assert_eq!(
            ago(10_000, 20_000),
            "just now",
            "a clock behind is not negative"
        );
        assert_eq!(ago(12_000, 10_000), "2 s ago");
        assert_eq!(ago(70_000, 10_000), "1 min ago");
        assert_eq!(ago(3 * 3_600_000 + 5, 5), "3 h ago");
        assert_eq!(ago(2 * 86_400_000, 0), "2 d ago");
        assert_eq!(
            ago(i64::MAX, i64::MIN),
            format!("{} d ago", i64::MAX / 86_400_000)
        );
    }

    #[test]
    fn latencies_keep_a_useful_precision() {
        assert_eq!(millis(0.84), "0.8 ms");
        assert_eq!(millis(12.4), "12 ms");
        assert_eq!(millis(1500.0), "1.5 s");
    }

    #[test]
    fn summaries_name_the_agent_unless_off() {
        assert_eq!(summary(&off()), "off");
        assert_eq!(summary(&active()), "active (idle) with fixer");
    }

    #[test]
    fn notices_are_prefixed_once() {
        assert_eq!(notice_line("paused: x — y"), "paused: x — y");
        assert_eq!(notice_line("x — y"), "paused: x — y");
    }

    #[test]
    fn status_off_is_one_line() {
        assert_eq!(render_status(&off(), 0), "not paired\n");
    }

    #[test]
    fn status_shows_everything_a_person_asks_about() {
        let mut s = active();
        s.notices.push(PairNotice {
            code: "diverged".into(),
            side: None,
            message: "paused: your `berth/fixer` and agent `fixer`'s have diverged".into(),
        });
        s.conflicts.push(PairConflict {
            refname: "refs/berth/conflicts/p1/1".into(),
            path: "src/lib.rs".into(),
            time_ms: 0,
        });
        let out = render_status(&s, 3_000);
        for want in [
            "state      active (idle)\n",
            "agent      fixer\n",
            "branch     berth/fixer\n",
            "workspace  /h/workspaces/fixer\n",
            "original   main\n",
            "snapshot   s1 ",
            "last sync  2 s ago\n",
            "latency    p50 3.1 ms, p99 42 ms (12 samples)\n",
            "changes    5 to you, 2 to the agent\n",
            "commits    1 to you, 0 to the agent\n",
            "  paused: your `berth/fixer` and agent `fixer`'s have diverged\n",
            "  src/lib.rs  refs/berth/conflicts/p1/1  (",
        ] {
            assert!(out.contains(want), "{want:?} missing from\n{out}");
        }
        assert!(!out.contains("step"), "no step while active:\n{out}");
        assert!(!out.contains("link"), "no link with a local agent:\n{out}");
        // An agent elsewhere: the link's figures, and its conflicts are in this repository.
        s.link = Some(PairLink {
            on: "ssh://box".into(),
            latency_ms: Some(1.25),
            bandwidth_bps: None,
            bytes_to_agent: 2048,
            bytes_to_user: 5 << 20,
        });
        let out = render_status(&s, 3_000);
        assert!(
            out.contains(
                "link       ssh://box: round trip 1.2 ms, bandwidth not measured yet (no \
                 transfer of 64 KiB yet); 2.0 KiB to the agent, 5.0 MiB to you\n"
            ),
            "{out}"
        );
        assert!(out.contains("see one with `git show REF`"), "{out}");
        s.link.as_mut().unwrap().bandwidth_bps = Some(40 << 20);
        assert!(render_status(&s, 3_000).contains("bandwidth 40.0 MiB/s;"));
    }

    #[test]
    fn a_start_says_where_the_checkout_is_and_where_the_changes_are() {
        let out = render_started(&active());
        assert!(out.starts_with(
            "paired with fixer: your checkout is on berth/fixer (your changes are kept in snapshot s1)\n"
        ));
        assert!(out.contains("`berth pair status`") && out.contains("`berth pair stop`"));
        let clean = PairStatus {
            snapshot: None,
            ..active()
        };
        assert!(
            render_started(&clean)
                .starts_with("paired with fixer: your checkout is on berth/fixer\n")
        );
    }

    #[test]
    fn blockers_become_one_line_each() {
        let e = CliError::new(
            Kind::Refused,
            "pairing_blocked",
            "user_ahead: a — push\ndirty_no_stash: b — commit\n",
        );
        let e = explain_start_error("fixer", e);
        assert_eq!(e.kind, Kind::Refused);
        assert_eq!(e.message, "cannot pair with fixer; nothing was changed:");
        assert_eq!(
            e.details,
            vec!["user_ahead: a — push", "dirty_no_stash: b — commit"]
        );
        let other = explain_start_error("fixer", CliError::failed("agent_not_found", "m\nn"));
        assert_eq!((other.message.as_str(), other.details.len()), ("m\nn", 0));
    }

    #[test]
    fn a_stop_that_keeps_the_snapshot_says_how_to_restore_it() {
        let s = PairStopped {
            pairing: "p1".into(),
            agent: "fixer".into(),
            outcome: "left_as_is".into(),
            restored: false,
            snapshot: Some("s1".into()),
            message: "stopped while paused: nothing changed".into(),
        };
        let out = render_stopped(&s);
        assert!(out.contains("kept in snapshot s1"), "{out}");
        assert!(out.contains("`berth stash restore s1`"), "{out}");
        let restored = PairStopped {
            restored: true,
            ..s.clone()
        };
        assert!(!render_stopped(&restored).contains("snapshot"));
        let none = PairStopped {
            snapshot: None,
            ..s
        };
        assert!(!render_stopped(&none).contains("snapshot"));
    }

    #[test]
    fn only_an_incomplete_stop_fails() {
        for ok in ["stopped", "left_as_is", "rolled_back"] {
            assert_eq!(stop_exit_code(ok), 0, "{ok}");
        }
        for bad in ["stop_incomplete", "rollback_incomplete"] {
            assert_eq!(stop_exit_code(bad), Kind::Failed.exit_code(), "{bad}");
        }
    }

    #[test]
    fn a_flush_reports_counts_and_time() {
        let f = PairFlushed {
            to_user: 3,
            to_agent: 1,
            conflicts: 0,
            took_ms: 12,
        };
        assert_eq!(
            render_flushed(&f),
            "flushed: both sides agree (3 changes to you, 1 to the agent) in 12ms\n"
        );
        let c = PairFlushed { conflicts: 2, ..f };
        assert!(render_flushed(&c).contains("2 conflict(s)"));
    }
}
