//! `berth turns NAME | show ID`: every delivery of an agent's inbox.

use berth_client::Client;
use berth_proto::{AgentTarget, ById, TurnInfo, TurnList};

use super::stash::here;
use crate::Ctx;
use crate::cli::{TurnsArgs, TurnsCommand};
use crate::error::{CliError, CliResult, Kind};
use crate::output::{duration_ms, emit, time_ms};

fn short(oid: Option<&str>) -> String {
    oid.map_or_else(|| "-".to_string(), |o| o.chars().take(10).collect())
}

/// The commits a turn made, as a range (or that it made none).
fn commits(t: &TurnInfo) -> String {
    match (t.commit_before.as_deref(), t.commit_after.as_deref()) {
        (Some(a), Some(b)) if a == b => "no commits".to_string(),
        (a, b) => format!("{}..{}", short(a), short(b)),
    }
}

fn line(t: &TurnInfo) -> String {
    let took = t
        .duration_ms
        .map(|d| duration_ms(u64::try_from(d).unwrap_or(0)))
        .unwrap_or_else(|| "-".to_string());
    let exit = t
        .exit_code
        .map(|c| format!(" exit {c}"))
        .unwrap_or_default();
    format!(
        "{:>6}  item {:<6} #{} {:<11} {}  {took}{exit}  {}",
        t.id,
        t.item,
        t.attempt,
        t.status,
        time_ms(t.started_ms),
        commits(t)
    )
}

fn detail(t: &TurnInfo) -> String {
    let mut s = format!(
        "turn {} of {}: item {}, attempt {}, {} ({})\n  started   {}\n",
        t.id,
        t.agent,
        t.item,
        t.attempt,
        t.status,
        t.mode,
        time_ms(t.started_ms)
    );
    if let (Some(end), Some(d)) = (t.ended_ms, t.duration_ms) {
        s += &format!(
            "  ended     {} (after {})\n",
            time_ms(end),
            duration_ms(u64::try_from(d).unwrap_or(0))
        );
    }
    if let Some(c) = t.exit_code {
        s += &format!("  exit      {c}\n");
    }
    if let Some(e) = &t.error {
        s += &format!("  error     {e}\n");
    }
    s += &format!("  trigger   {}\n  commits   {}\n", t.trigger, commits(t));
    if !t.output.is_empty() {
        s += &format!("output (the end, at most 16 KiB):\n{}\n", t.output);
    }
    s
}

pub async fn run(ctx: &Ctx, args: TurnsArgs) -> CliResult<i32> {
    let client = Client::unix(ctx.home.socket());
    match (args.command, args.name) {
        (Some(TurnsCommand::Show { id }), _) => {
            let t: TurnInfo = client.post_json("/v1/turns/show", &ById { id }).await?;
            emit(ctx.json, &t, detail);
        }
        (None, Some(name)) => {
            let req = AgentTarget {
                repo: here()?,
                name,
            };
            let l: TurnList = client.post_json("/v1/turns/list", &req).await?;
            emit(ctx.json, &l, |l| {
                if l.turns.is_empty() {
                    return format!("{} has had no turns yet", req.name);
                }
                l.turns.iter().map(line).collect::<Vec<_>>().join("\n")
            });
        }
        (None, None) => {
            return Err(CliError::new(Kind::Usage, "usage", "which agent's turns?")
                .hint("`berth turns NAME`, or `berth turns show ID`"));
        }
    }
    Ok(0)
}
