//! `berth agent new|list|show|start|stop|restart|rm|logs|input|screen|exec`.

use std::io::Read;

use berth_client::Client;
use berth_core::terminal::{InputError, MAX_INPUT_BYTES, keystrokes};
use berth_proto::{
    AgentInfo, AgentInput, AgentList, AgentNew, AgentRemove, AgentRemoved, AgentScreenRequest,
    AgentTarget, AgentTyped, StashRepo, TerminalScreen,
};

use super::logs::Shown;
use super::long_client;
use super::stash::here;
use crate::Ctx;
use crate::cli::AgentCommand;
use crate::error::{CliError, CliResult, Kind};
use crate::output::emit;
use crate::progress;

fn line(a: &AgentInfo) -> String {
    let pid = a.pid.map(|p| format!(" pid {p}")).unwrap_or_default();
    let code = a
        .exit_code
        .map(|c| format!(" (exit {c})"))
        .unwrap_or_default();
    let place = a.branch.clone().unwrap_or_else(|| format!("({})", a.kind));
    let on =
        a.on.as_deref()
            .map(|o| format!(" on {o}"))
            .unwrap_or_default();
    let why = a
        .unreachable
        .as_deref()
        .map(|u| format!("\n  unreachable {u}"))
        .unwrap_or_default();
    format!("{:<20} {:<9}{pid}{code}  {place}{on}{why}", a.name, a.state)
}

fn detail(a: &AgentInfo) -> String {
    format!(
        "{}\n  command    {}\n  turn       {}\n  workspace  {}\n  base       {}\n  restart    {}\n  terminal   {}\n",
        line(a),
        a.command.as_deref().unwrap_or("(none)"),
        a.turn.as_deref().unwrap_or("(none)"),
        a.workspace,
        a.base,
        a.restart,
        match (a.tty, a.scrollback) {
            (true, Some(n)) => format!("yes, {n} lines of scrollback"),
            (true, None) => "yes".to_string(),
            (false, _) => "no".to_string(),
        }
    )
}

/// The screen for a person: its rows, without the blank ones at the bottom (scrollback first).
fn screen_text(s: &TerminalScreen) -> String {
    let used = s
        .rows
        .iter()
        .rposition(|r| !r.is_empty())
        .map_or(0, |i| i + 1);
    s.scrollback
        .iter()
        .chain(&s.rows[..used])
        .cloned()
        .collect::<Vec<_>>()
        .join("\n")
}

/// What `agent input` types: TEXT, or stdin for `-`, then Return with `--enter`; checked here
/// so that input that cannot be typed is refused before anything is sent.
fn input_text(text: Option<String>, enter: bool) -> CliResult<String> {
    let text = match text.as_deref() {
        Some("-") => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .take(MAX_INPUT_BYTES as u64 + 1)
                .read_to_end(&mut bytes)?;
            // Over the limit is said as such, even when the cut fell inside a character.
            if bytes.len() > MAX_INPUT_BYTES {
                let bytes = bytes.len();
                return Err(input_error(InputError::TooLarge { bytes }));
            }
            String::from_utf8(bytes).map_err(|_| {
                CliError::new(Kind::Usage, "invalid_input", "stdin is not UTF-8 text")
                    .hint("type text; control characters may be given as they are")
            })?
        }
        _ => text.unwrap_or_default(),
    };
    keystrokes(&text, enter).map_err(input_error)?;
    Ok(text)
}

fn input_error(e: InputError) -> CliError {
    let hint = match e {
        InputError::Empty => "e.g. `berth agent input NAME 'make test' --enter`",
        InputError::TooLarge { .. } => "split it into several inputs",
    };
    CliError::new(
        Kind::Usage,
        "invalid_input",
        format!("{e}; nothing was typed"),
    )
    .hint(hint)
}

pub async fn run(ctx: &Ctx, cmd: AgentCommand) -> CliResult<i32> {
    let client = Client::unix(ctx.home.socket());
    let repo = here()?;
    match cmd {
        AgentCommand::New {
            name,
            command,
            base,
            restart,
            env,
            ready,
            start,
            tty,
            scrollback,
            turn,
            turn_timeout,
            on,
        } => {
            let req = AgentNew {
                repo,
                name,
                command,
                base,
                restart,
                env: env.into_iter().collect(),
                ready,
                start,
                tty,
                scrollback,
                turn,
                turn_timeout_ms: turn_timeout
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                on,
            };
            let a: AgentInfo = progress::steady(
                ctx.json,
                format!("creating agent {} (its workspace is checked out)", req.name),
                long_client(ctx).post_json("/v1/agents/new", &req),
            )
            .await?;
            emit(ctx.json, &a, |a| {
                format!("created agent {}\n{}", a.name, detail(a))
            });
        }
        AgentCommand::List => {
            let l: AgentList = client
                .post_json("/v1/agents/list", &StashRepo { repo })
                .await?;
            emit(ctx.json, &l, |l| {
                if l.agents.is_empty() {
                    return "no agents in this repository".to_string();
                }
                l.agents.iter().map(line).collect::<Vec<_>>().join("\n")
            });
        }
        AgentCommand::Show { name } => {
            let a: AgentInfo = client
                .post_json("/v1/agents/show", &AgentTarget { repo, name })
                .await?;
            emit(ctx.json, &a, detail);
        }
        AgentCommand::Start { name } => {
            let a: AgentInfo = client
                .post_json("/v1/agents/start", &AgentTarget { repo, name })
                .await?;
            emit(ctx.json, &a, line);
        }
        AgentCommand::Stop { name } => {
            let a: AgentInfo = client
                .post_json("/v1/agents/stop", &AgentTarget { repo, name })
                .await?;
            emit(ctx.json, &a, line);
        }
        AgentCommand::Restart { name } => {
            let target = AgentTarget { repo, name };
            let _: AgentInfo = client.post_json("/v1/agents/stop", &target).await?;
            let a: AgentInfo = client.post_json("/v1/agents/start", &target).await?;
            emit(ctx.json, &a, line);
        }
        AgentCommand::Rm {
            name,
            force,
            delete_branch,
            forget,
        } => {
            let req = AgentRemove {
                repo,
                name,
                force,
                delete_branch,
                forget,
            };
            let r: AgentRemoved = long_client(ctx).post_json("/v1/agents/rm", &req).await?;
            emit(ctx.json, &r, |r| {
                let mut s = match &r.left_there {
                    Some(left) => format!("forgot agent {}; left where it ran: {left}", r.name),
                    None => format!("removed agent {}", r.name),
                };
                if let Some(id) = &r.snapshot {
                    s += &format!("\nits unsaved work is snapshot {id}: `berth stash show {id}`");
                }
                if r.branch_kept {
                    s += &format!("\nits branch berth/{} stays in this repository", r.name);
                }
                s
            });
        }
        AgentCommand::Logs {
            name,
            tail,
            follow,
            raw,
        } => {
            let a: AgentInfo = client
                .post_json("/v1/agents/show", &AgentTarget { repo, name })
                .await?;
            let shown = if raw { Shown::Raw } else { Shown::Plain };
            super::logs::print_tail(ctx, std::path::Path::new(&a.log), tail, follow, shown)?;
        }
        AgentCommand::Input { name, text, enter } => {
            let text = input_text(text, enter)?;
            let req = AgentInput {
                repo,
                name,
                text,
                enter,
            };
            let typed: AgentTyped = client.post_json("/v1/agents/input", &req).await?;
            emit(ctx.json, &typed, |t| {
                format!("typed {} bytes into {}", t.bytes, t.name)
            });
        }
        AgentCommand::Screen { name, scrollback } => {
            let req = AgentScreenRequest {
                repo,
                name,
                scrollback,
            };
            let screen: TerminalScreen = client.post_json("/v1/agents/screen", &req).await?;
            emit(ctx.json, &screen, screen_text);
        }
        AgentCommand::Exec { name, command } => {
            let a: AgentInfo = client
                .post_json("/v1/agents/show", &AgentTarget { repo, name })
                .await?;
            return exec(&a, &command);
        }
    }
    Ok(0)
}

/// `berth notify`: one datagram to the agent's `$BERTH_NOTIFY_SOCKET`.
pub fn notify(message: &str) -> CliResult<i32> {
    let path = std::env::var_os("BERTH_NOTIFY_SOCKET").ok_or_else(|| {
        CliError::new(
            Kind::Usage,
            "no_notify_socket",
            "BERTH_NOTIFY_SOCKET is not set",
        )
        .hint("run this from inside an agent started by berth")
    })?;
    let sock = std::os::unix::net::UnixDatagram::unbound()?;
    sock.send_to(message.as_bytes(), &path)
        .map_err(|e| CliError::failed("notify", format!("cannot notify berth: {e}")))?;
    Ok(0)
}

/// Runs `command` in the agent's workspace with the agent's identity; exits as it does.
fn exec(a: &AgentInfo, command: &[String]) -> CliResult<i32> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| CliError::new(Kind::Usage, "no_command", "give the command after `--`"))?;
    if let Some(on) = &a.on {
        return Err(CliError::new(
            Kind::Usage,
            "agent_elsewhere",
            format!(
                "agent {} runs on {on}; `agent exec` runs commands here, in local workspaces",
                a.name
            ),
        )
        .hint("run it there (ssh, docker exec) in the agent's workspace"));
    }
    let status = std::process::Command::new(program)
        .args(args)
        .current_dir(&a.workspace)
        .env("BERTH_AGENT", &a.name)
        .env("BERTH_WORKSPACE", &a.workspace)
        .status()
        .map_err(|e| CliError::failed("exec", format!("cannot run {program}: {e}")))?;
    Ok(status.code().unwrap_or(1))
}
