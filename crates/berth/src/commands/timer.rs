//! `berth timer add | list | rm`: timers that send an agent a message.

use berth_client::Client;
use berth_proto::{AgentFilter, ById, TimerAdd, TimerInfo, TimerList};

use super::stash::here;
use crate::Ctx;
use crate::cli::TimerCommand;
use crate::error::CliResult;
use crate::output::emit;

/// The schedule as typed: `every 30m`, `cron 0 9 * * 1-5`, `at 2026-12-24T09:00:00`.
fn schedule(t: &TimerInfo) -> String {
    format!("{} {}", t.kind, t.spec)
}

/// When it fires next, in its zone and saying which: `2026-12-24 09:00:00 CET (Europe/Berlin)`.
fn next(t: &TimerInfo) -> String {
    match (t.next_ms, berth_core::timer::zone(&t.zone)) {
        (Some(ms), Ok(zone)) => format!("{} ({})", berth_core::time::local(ms, &zone), t.zone),
        (Some(ms), Err(_)) => format!("{} (unknown zone {})", berth_core::time::utc(ms), t.zone),
        (None, _) => "never again".to_string(),
    }
}

fn line(t: &TimerInfo) -> String {
    format!(
        "{:>4}  {:<12} {:<28} next {}  fired {}×  {:?}",
        t.id,
        t.agent,
        schedule(t),
        next(t),
        t.fired,
        t.message
    )
}

pub async fn run(ctx: &Ctx, command: TimerCommand) -> CliResult<i32> {
    let client = Client::unix(ctx.home.socket());
    match command {
        TimerCommand::Add(a) => {
            let zone =
                a.tz.or_else(|| jiff::tz::TimeZone::system().iana_name().map(str::to_string));
            let req = TimerAdd {
                repo: here()?,
                name: a.name,
                every: a.every,
                cron: a.cron,
                at: a.at,
                zone,
                message: a.message,
            };
            let t: TimerInfo = client.post_json("/v1/timers/add", &req).await?;
            emit(ctx.json, &t, |t| {
                format!(
                    "added timer {} for {}: {}; first fire {}",
                    t.id,
                    t.agent,
                    schedule(t),
                    next(t)
                )
            });
        }
        TimerCommand::List { name } => {
            let req = AgentFilter {
                repo: here()?,
                name,
            };
            let l: TimerList = client.post_json("/v1/timers/list", &req).await?;
            emit(ctx.json, &l, |l| {
                if l.timers.is_empty() {
                    return "no timers; `berth timer add NAME --every 30m --message TEXT` makes one"
                        .to_string();
                }
                l.timers.iter().map(line).collect::<Vec<_>>().join("\n")
            });
        }
        TimerCommand::Rm { id } => {
            let t: TimerInfo = client.post_json("/v1/timers/rm", &ById { id }).await?;
            emit(ctx.json, &t, |t| {
                format!("removed timer {} of {} ({})", t.id, t.agent, schedule(t))
            });
        }
    }
    Ok(0)
}
