//! `berth send` and `berth inbox NAME | cancel ID`: agents' inboxes.

use std::io::Read;

use berth_client::Client;
use berth_core::inbox::{MAX_MESSAGE_BYTES, Priority};
use berth_proto::{AgentTarget, ById, InboxItem, InboxList, InboxSend, InboxSent};

use super::stash::here;
use crate::Ctx;
use crate::cli::{InboxArgs, InboxCommand, SendArgs};
use crate::error::{CliError, CliResult, Kind};
use crate::output::{emit, time_ms};

fn invalid(message: impl Into<String>) -> CliError {
    CliError::new(Kind::Usage, "invalid_message", message)
}

/// The first line of a message, shortened for a listing.
fn preview(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default();
    let mut shown: String = first.chars().take(50).collect();
    if shown.len() < first.len() || text.lines().nth(1).is_some() {
        shown.push('…');
    }
    shown
}

fn line(i: &InboxItem) -> String {
    let attempts = if i.attempts > 1 {
        format!(" ({} attempts)", i.attempts)
    } else {
        String::new()
    };
    let now = if i.priority == Priority::Now.as_str() {
        " [now]"
    } else {
        ""
    };
    format!(
        "{:>6}  {:<10}{now}  {}  {}{attempts}",
        i.id,
        i.state,
        time_ms(i.created_ms),
        preview(&i.text)
    )
}

/// The message: TEXT, stdin for `-`, or the file; as UTF-8 text, at most the largest message
/// an agent takes (the daemon checks the rest).
fn message(args: &SendArgs) -> CliResult<String> {
    let bytes = match (&args.file, args.text.as_deref()) {
        (Some(path), _) => std::fs::read(path).map_err(|e| {
            CliError::failed("io", format!("cannot read {}: {e}", path.display()))
                .hint("give a readable file, or the text itself")
        })?,
        (None, Some("-")) => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .take(MAX_MESSAGE_BYTES as u64 + 1)
                .read_to_end(&mut bytes)?;
            bytes
        }
        (None, text) => text.unwrap_or_default().as_bytes().to_vec(),
    };
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(invalid(format!(
            "the message is over {MAX_MESSAGE_BYTES} bytes; nothing was queued"
        ))
        .hint("send a shorter message, e.g. a path to a file in the agent's workspace"));
    }
    String::from_utf8(bytes).map_err(|_| {
        invalid("the message is not UTF-8 text; nothing was queued")
            .hint("send text (a binary file can be named in the message instead)")
    })
}

pub async fn send(ctx: &Ctx, args: SendArgs) -> CliResult<i32> {
    args.priority.parse::<Priority>().map_err(|e| {
        invalid(format!("{e}; nothing was queued")).hint("use --priority now or --priority normal")
    })?;
    let text = message(&args)?;
    let client = Client::unix(ctx.home.socket());
    let req = InboxSend {
        repo: here()?,
        name: args.name,
        text,
        key: args.key,
        priority: Some(args.priority),
    };
    let sent: InboxSent = client.post_json("/v1/inbox/send", &req).await?;
    emit(ctx.json, &sent, |s| {
        if s.duplicate {
            format!(
                "already sent with this key: item {} ({}); nothing new was queued",
                s.item.id, s.item.state
            )
        } else {
            format!("queued item {} for {}", s.item.id, s.item.agent)
        }
    });
    Ok(0)
}

pub async fn run(ctx: &Ctx, args: InboxArgs) -> CliResult<i32> {
    let client = Client::unix(ctx.home.socket());
    match (args.command, args.name) {
        (Some(InboxCommand::Cancel { id }), _) => {
            let i: InboxItem = client.post_json("/v1/inbox/cancel", &ById { id }).await?;
            emit(ctx.json, &i, |i| {
                format!("cancelled item {} of {}", i.id, i.agent)
            });
        }
        (None, Some(name)) => {
            let req = AgentTarget {
                repo: here()?,
                name,
            };
            let l: InboxList = client.post_json("/v1/inbox/list", &req).await?;
            emit(ctx.json, &l, |l| {
                if l.items.is_empty() {
                    return format!("the inbox of {} is empty", req.name);
                }
                l.items.iter().map(line).collect::<Vec<_>>().join("\n")
            });
        }
        (None, None) => {
            return Err(CliError::new(Kind::Usage, "usage", "which agent's inbox?")
                .hint("`berth inbox NAME`, or `berth inbox cancel ID`"));
        }
    }
    Ok(0)
}
