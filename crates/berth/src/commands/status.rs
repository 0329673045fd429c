//! `berth status`: the daemon and this repository's agents and services, in one screen.

use berth_proto::{AgentList, InboxCounts, PairRepo, PairStatus, StashRepo};
use serde::Serialize;

use super::pair;
use super::stash::here;
use crate::Ctx;
use crate::error::{CliResult, Kind};
use crate::output::emit;
use berth_control::probe::probe;

#[derive(Debug, Serialize)]
struct Status {
    daemon: &'static str,
    pid: Option<u32>,
    /// `None` outside a repository (or when the daemon is not running).
    agents: Option<AgentList>,
    /// Why the agents are not shown, if they are not.
    note: Option<String>,
    /// This repository's pairing; `None` when it could not be asked (no daemon, not inside a
    /// repository, a daemon without pairing).
    pairing: Option<PairStatus>,
    /// This repository's agents' inboxes, counted by state (`None` as for `pairing`).
    inbox: Option<InboxCounts>,
}

/// `  inbox 3 queued, 1 delivering, 2 failed` for an agent with open or failed items.
fn inbox_line(counts: Option<&InboxCounts>, agent: &str) -> String {
    let Some(c) = counts.and_then(|c| c.agents.iter().find(|c| c.agent == agent)) else {
        return String::new();
    };
    let parts: Vec<String> = [
        (c.queued, "queued"),
        (c.delivering, "delivering"),
        (c.failed, "failed"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("  inbox {}", parts.join(", "))
    }
}

pub async fn run(ctx: &Ctx) -> CliResult<i32> {
    let mut p = probe(&ctx.home).await;
    let alive = p.state.is_alive();
    let mut status = Status {
        daemon: p.state.as_str(),
        pid: p.pid(),
        agents: None,
        note: None,
        pairing: None,
        inbox: None,
    };
    if alive {
        let client = berth_client::Client::unix(ctx.home.socket());
        let repo = here()?;
        match client
            .post_json::<_, AgentList>("/v1/agents/list", &StashRepo { repo: repo.clone() })
            .await
        {
            Ok(list) => status.agents = Some(list),
            Err(e) => status.note = Some(e.to_string()),
        }
        // Best effort: a failure here (not a repository, an older daemon) only leaves it out.
        status.inbox = client
            .post_json::<_, InboxCounts>("/v1/inbox/counts", &StashRepo { repo: repo.clone() })
            .await
            .ok();
        status.pairing = client
            .post_json::<_, PairStatus>("/v1/pair/status", &PairRepo { repo })
            .await
            .ok();
    }
    drop(p.connection.take());
    emit(ctx.json, &status, |s| {
        let pid = s.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
        let mut out = format!("daemon    {}{pid}\n", s.daemon);
        match (&s.agents, &s.note) {
            (Some(list), _) if list.agents.is_empty() => {
                out += "agents    none in this repository\n"
            }
            (Some(list), _) => {
                for a in &list.agents {
                    let pid = a.pid.map(|p| format!(" pid {p}")).unwrap_or_default();
                    let inbox = inbox_line(s.inbox.as_ref(), &a.name);
                    out += &format!("{:<9} {:<20} {}{pid}{inbox}\n", a.kind, a.name, a.state);
                }
            }
            (None, Some(note)) => out += &format!("agents    {note}\n"),
            (None, None) => out += "agents    (start the daemon with `berth daemon start`)\n",
        }
        if let Some(p) = &s.pairing {
            out += &format!("pairing   {}\n", pair::summary(p));
            for n in &p.notices {
                out += &format!("          {}\n", pair::notice_line(&n.message));
            }
        }
        out
    });
    Ok(if alive {
        0
    } else {
        Kind::NotRunning.exit_code()
    })
}
