//! `berth hook add | list | rm`: webhooks that queue their payload in an agent's inbox.

use berth_client::Client;
use berth_control::metadata::Metadata;
use berth_proto::{AgentFilter, HookAdd, HookInfo, HookList, HookTarget};
use serde::Serialize;

use super::stash::here;
use crate::Ctx;
use crate::cli::HookCommand;
use crate::error::CliResult;
use crate::output::emit;

/// How to get a listener when the daemon has none.
const NO_LISTENER: &str = "the daemon has no TCP listener, so nothing can reach this hook yet: `berth web` starts one on 127.0.0.1 (kept across restarts), or start the daemon with one, e.g. `berth daemon stop && berth daemon start --listen 127.0.0.1:7070`";

/// A hook as shown: with its URL on the running daemon's TCP listener (`--listen`'s, or the one
/// `berth web` started), if it has one.
#[derive(Debug, Serialize)]
struct Shown {
    #[serde(flatten)]
    hook: HookInfo,
    url: Option<String>,
}

fn shown(ctx: &Ctx, hook: HookInfo) -> Shown {
    let url = Metadata::read(&ctx.home)
        .and_then(|m| m.tcp.or(m.console))
        .map(|addr| format!("http://{addr}{}", hook.path));
    Shown { hook, url }
}

fn where_(s: &Shown) -> String {
    s.url
        .clone()
        .unwrap_or_else(|| format!("{} (no listener)", s.hook.path))
}

pub async fn run(ctx: &Ctx, command: HookCommand) -> CliResult<i32> {
    let client = Client::unix(ctx.home.socket());
    match command {
        HookCommand::Add {
            name,
            hook,
            template,
        } => {
            let req = HookAdd {
                repo: here()?,
                name,
                hook: Some(hook),
                template,
            };
            let h: HookInfo = client.post_json("/v1/hooks/add", &req).await?;
            let s = shown(ctx, h);
            emit(ctx.json, &s, |s| {
                let mut out = format!(
                    "added hook {} for {}\n  url:    {}\n  secret: {}\n\
                     Senders sign each body with the secret (X-Hub-Signature-256: sha256=<HMAC-SHA256>, as GitHub does); the secret is not shown again.",
                    s.hook.hook,
                    s.hook.agent,
                    where_(s),
                    s.hook.secret.as_deref().unwrap_or_default()
                );
                if s.url.is_none() {
                    out.push_str(&format!("\nNote: {NO_LISTENER}"));
                }
                out
            });
        }
        HookCommand::List { name } => {
            let req = AgentFilter {
                repo: here()?,
                name,
            };
            let l: HookList = client.post_json("/v1/hooks/list", &req).await?;
            let all: Vec<Shown> = l.hooks.into_iter().map(|h| shown(ctx, h)).collect();
            emit(ctx.json, &all, |all| {
                if all.is_empty() {
                    return "no hooks; `berth hook add NAME` makes one".to_string();
                }
                let mut lines: Vec<String> = all
                    .iter()
                    .map(|s| {
                        let template = s
                            .hook
                            .template
                            .as_deref()
                            .map(|t| format!("  template {t:?}"))
                            .unwrap_or_default();
                        format!(
                            "{:<12} {:<12} {}{template}",
                            s.hook.agent,
                            s.hook.hook,
                            where_(s)
                        )
                    })
                    .collect();
                if all.iter().any(|s| s.url.is_none()) {
                    lines.push(format!("Note: {NO_LISTENER}"));
                }
                lines.join("\n")
            });
        }
        HookCommand::Rm { name, hook } => {
            let req = HookTarget {
                repo: here()?,
                name,
                hook,
            };
            let h: HookInfo = client.post_json("/v1/hooks/rm", &req).await?;
            emit(ctx.json, &h, |h| {
                format!("removed hook {} of {}", h.hook, h.agent)
            });
        }
    }
    Ok(0)
}
