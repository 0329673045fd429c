//! Command-line syntax (clap). Behaviour lives in `commands/`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "A durable home for coding agents, and live pairing with them."
)]
pub struct Cli {
    /// berth's home directory.
    #[arg(long, global = true, env = "BERTH_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Print exact JSON instead of text for a person.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground (logs to stderr).
    Serve(ServeArgs),
    /// Start, stop and inspect the background daemon.
    #[command(subcommand)]
    Daemon(DaemonCommand),
    /// Show the event log; --follow streams new events live.
    Events(EventsArgs),
    /// Diagnose berth's home (and with --fix, repair what is safe to repair).
    Doctor(DoctorArgs),
    /// Agents: long-lived processes, each in its own workspace on its own branch.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Attach to a terminal agent: its screen, then your keys (detach with ctrl-\\).
    Attach(AttachArgs),
    /// Queue a message for an agent: a run of its turn command, or typed into its terminal.
    #[command(after_help = SEND_EXAMPLES)]
    Send(SendArgs),
    /// An agent's inbox (`berth inbox NAME`), or cancel a queued item (`berth inbox cancel ID`).
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Inbox(InboxArgs),
    /// An agent's turns: every delivery, its exit, output and commits (`berth turns show ID`).
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Turns(TurnsArgs),
    /// Timers that send an agent a message: every interval, on a cron schedule, or once.
    #[command(subcommand, after_help = TIMER_EXAMPLES)]
    Timer(TimerCommand),
    /// Webhooks: a URL and a secret; each signed POST queues its payload in the agent's inbox.
    #[command(subcommand, after_help = HOOK_EXAMPLES)]
    Hook(HookCommand),
    /// The daemon and this repository's agents and services, in one screen.
    Status,
    /// Open the web console: prints a one-time login link (valid once, for 60 s).
    #[command(after_help = WEB_EXAMPLES)]
    Web(WebArgs),
    /// Tools for diagnosis.
    #[command(subcommand)]
    Debug(DebugCommand),
    /// Start what berth.toml declares, in dependency order, waiting for readiness.
    #[command(after_help = UP_EXAMPLES)]
    Up(ComposeArgs),
    /// Stop what berth.toml declares, dependents first.
    Down(ComposeArgs),
    /// Tell berth from inside an agent that it is ready (sends READY=1 to $BERTH_NOTIFY_SOCKET).
    Notify {
        /// The message (default READY=1).
        #[arg(default_value = "READY=1")]
        message: String,
    },
    /// Snapshots of uncommitted work: exact, and hidden from `git stash list`.
    #[command(subcommand, after_help = STASH_EXAMPLES)]
    Stash(StashCommand),
    /// Pair your checkout with an agent: both trees sync live, commits flow both ways.
    #[command(after_help = PAIR_EXAMPLES)]
    Pair(PairArgs),
    /// Leave pairing (the same as `berth pair stop`).
    Unpair,
    /// See pairing work in a throwaway project with a scripted agent; leaves nothing behind.
    Demo,
    /// Print a completion script for your shell.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        /// bash, zsh or fish.
        shell: Shell,
    },
    /// Print berth's manual page (roff), or one command's, made from the same definitions as
    /// --help.
    #[command(
        after_help = "Examples:\n  berth man > ~/.local/share/man/man1/berth.1 && man berth\n  berth man pair stop > ~/.local/share/man/man1/berth-pair-stop.1"
    )]
    Man {
        /// The command whose page to print (e.g. `pair stop`); none: berth's own page.
        command: Vec<String>,
    },
}

const SEND_EXAMPLES: &str = "Examples:
  berth agent new bot --turn 'claude -p \"$(cat $BERTH_MESSAGE_FILE)\"'
  berth send bot 'fix the failing test in parser.rs'
  git diff | berth send bot -
  berth send bot --file task.md --key task-42 --priority now";

const TIMER_EXAMPLES: &str = "Examples:
  berth timer add bot --every 30m --message 'look at the open pull requests'
  berth timer add bot --cron '0 9 * * 1-5' --message 'morning triage'
  berth timer add bot --at 2026-12-24T09:00 --tz Europe/Berlin --message 'ship it'
  berth timer list
  berth timer rm 3";

const HOOK_EXAMPLES: &str = "Examples:
  berth daemon start --listen 127.0.0.1:7070     (hooks are served on the TCP listener)
  berth hook add bot --name ci
  berth hook add bot --name prs --template 'PR {{.pull_request.title}}: {{.pull_request.html_url}}'
  berth hook list
  berth hook rm bot --name ci";

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Make a webhook for an agent: prints its URL and its secret (shown only now).
    Add {
        /// The agent.
        name: String,
        /// The hook's name, the last part of its URL.
        #[arg(long = "name", value_name = "HOOK", default_value = berth_core::hook::DEFAULT_NAME)]
        hook: String,
        /// Make the message from the JSON payload: `{{.pull_request.title}}` is that field.
        #[arg(long, value_name = "TEMPLATE")]
        template: Option<String>,
    },
    /// This repository's webhooks (or one agent's).
    List {
        /// Only this agent's.
        name: Option<String>,
    },
    /// Remove a webhook: its URL answers 401 from now on.
    Rm {
        /// The agent.
        name: String,
        /// The hook's name.
        #[arg(long = "name", value_name = "HOOK", default_value = berth_core::hook::DEFAULT_NAME)]
        hook: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TimerCommand {
    /// Add a timer: each fire queues MESSAGE in the agent's inbox (source `timer`).
    Add(TimerAddArgs),
    /// This repository's timers (or one agent's), next fire in local time with its zone.
    List {
        /// Only this agent's.
        name: Option<String>,
    },
    /// Remove a timer.
    Rm { id: i64 },
}

/// `berth timer add NAME (--every D | --cron EXPR | --at TIME) --message TEXT [--tz ZONE]`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("schedule").required(true).args(["every", "cron", "at"])))]
pub struct TimerAddArgs {
    /// The agent.
    pub name: String,
    /// Every interval of real time from now: 30s, 30m, 2h, 1h30m.
    #[arg(long, value_name = "DURATION")]
    pub every: Option<String>,
    /// Five cron fields (minute hour day-of-month month day-of-week), in local time.
    #[arg(long, value_name = "EXPR")]
    pub cron: Option<String>,
    /// Once, at this local date and time: 2026-12-24T09:00.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// The IANA time zone of --cron and --at (default: this machine's, e.g. Europe/Berlin).
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// The message each fire queues.
    #[arg(long, short, value_name = "TEXT")]
    pub message: String,
}

/// `berth send NAME [TEXT | -] [--file F] [--key K] [--priority now|normal]`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The agent.
    pub name: String,
    /// The message; `-` reads it from stdin.
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub text: Option<String>,
    /// Read the message from this file.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// An idempotency key: sending again with the same key queues nothing.
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// now (before every normal item) or normal.
    #[arg(long, value_name = "PRIORITY", default_value = "normal")]
    pub priority: String,
}

#[derive(Debug, Args)]
pub struct InboxArgs {
    /// The agent whose inbox to show.
    #[arg(required = true)]
    pub name: Option<String>,
    #[command(subcommand)]
    pub command: Option<InboxCommand>,
}

#[derive(Debug, Subcommand)]
pub enum InboxCommand {
    /// Cancel a queued item (one whose delivery has not started).
    Cancel { id: i64 },
}

#[derive(Debug, Args)]
pub struct TurnsArgs {
    /// The agent whose turns to list.
    #[arg(required = true)]
    pub name: Option<String>,
    #[command(subcommand)]
    pub command: Option<TurnsCommand>,
}

#[derive(Debug, Subcommand)]
pub enum TurnsCommand {
    /// One turn in full, its output included.
    Show { id: i64 },
}

/// `berth attach NAME [--read-only] [--detach-key KEY]`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  berth attach claude                 type into it; ctrl-\\ detaches, it keeps running\n  berth attach claude --read-only     watch only\n  berth attach claude --detach-key ctrl-]"
)]
pub struct AttachArgs {
    /// The terminal agent (one created with --tty).
    pub name: String,
    /// Watch without typing (your window size does not change the agent's either).
    #[arg(long)]
    pub read_only: bool,
    /// The key that detaches: ctrl-LETTER, ctrl-\\, ctrl-], ctrl-^, ctrl-_, ctrl-@, or none
    /// (then only closing the terminal detaches).
    #[arg(long, value_name = "KEY", default_value = "ctrl-\\")]
    pub detach_key: String,
}

const WEB_EXAMPLES: &str = "Examples:
  berth web                 print a login link for the console
  berth web --open          and open it in your browser
  berth web --logout-all    end every browser session";

/// `berth web [--open | --logout-all]`.
#[derive(Debug, Args)]
pub struct WebArgs {
    /// Open the link in your browser (xdg-open) as well as printing it.
    #[arg(long, conflicts_with = "logout_all")]
    pub open: bool,
    /// End every console session instead (each browser must log in again).
    #[arg(long)]
    pub logout_all: bool,
}

/// The shells `berth completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

const COMPLETIONS_EXAMPLES: &str = "Examples:
  berth completions bash > ~/.local/share/bash-completion/completions/berth
  berth completions zsh > ~/.zfunc/_berth    # with fpath+=~/.zfunc before compinit
  berth completions fish > ~/.config/fish/completions/berth.fish";

const PAIR_EXAMPLES: &str = "Examples:
  berth pair fixer        pair this checkout with agent fixer
  berth pair status       where pairing is, what it carried, what it kept
  berth pair stop         back to your branch, your changes restored";

const AGENT_NEW_EXAMPLES: &str = "Examples:
  berth agent new fixer --cmd 'claude --dangerously-skip-permissions' --start
  berth agent new web --cmd 'npm run dev' --ready http:http://127.0.0.1:3000/ --restart on-failure
  berth agent new shell --tty --start --cmd 'bash -i'";

const UP_EXAMPLES: &str = "Examples:
  berth up                start everything berth.toml declares
  berth up web            web and what it depends on
  berth down --timeout 10s";

const STASH_EXAMPLES: &str = "Examples:
  berth stash save -m 'before the refactor'
  berth stash list
  berth stash restore 20261123-013612-ab12";

const DAEMON_START_EXAMPLES: &str = "Examples:
  berth daemon start
  berth daemon start --listen 127.0.0.1:7878 --token-file ~/.berth-token";

/// `berth pair NAME [--no-stash]` starts (or switches); `berth pair status|flush|stop`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    override_usage = "berth pair NAME [--no-stash]\n       berth pair <status|flush|stop>"
)]
pub struct PairArgs {
    #[command(subcommand)]
    pub command: Option<PairCommand>,
    /// The agent to pair with (while paired with another: switch to this one). An agent named
    /// like a subcommand is given after `--`.
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// Refuse to start while the checkout has changes, instead of keeping them in a snapshot.
    #[arg(long)]
    pub no_stash: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum PairCommand {
    /// State, step, notices, conflicts kept, last sync, latency.
    Status,
    /// Sync everything now; returns when both sides agree.
    Flush,
    /// Leave pairing: back to your original branch with your changes restored (alias: `berth
    /// unpair`).
    Stop,
}

#[derive(Debug, Subcommand)]
pub enum DebugCommand {
    /// Run the sync engine between two plain directories, live (ALPHA wins conflicts; BETA's
    /// losing versions are kept in BETA.berth-kept/ beside it).
    Sync(DebugSyncArgs),
}

#[derive(Debug, Args)]
pub struct DebugSyncArgs {
    pub alpha: PathBuf,
    /// A directory, or one elsewhere: ssh://[user@]host[:port]/dir (the system's ssh, or
    /// BERTH_SSH), docker://IMAGE/dir (a container berth makes and keeps),
    /// docker-exec://CONTAINER/dir, podman:// and podman-exec:// alike; berth installs itself
    /// there when needed.
    pub beta: PathBuf,
    /// One full round, then exit (otherwise: watch both and sync until Ctrl-C; a line `flush`
    /// on standard input syncs everything now and answers when both sides agree).
    #[arg(long)]
    pub once: bool,
    /// Files larger than this are not synced.
    #[arg(long, value_name = "BYTES", default_value_t = berth_daemon::debug_sync::DEFAULT_MAX_SIZE)]
    pub max_size: u64,
    /// Leave paths matching this pattern (gitignore syntax, relative to the roots) out of
    /// syncing, whatever the trees' own rules say; repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// Quiet time after the last change before syncing.
    #[arg(long, value_name = "DURATION", default_value = "2ms", value_parser = parse_duration)]
    pub debounce: Duration,
    /// Longest a change waits under a steady stream of changes.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_duration)]
    pub max_delay: Duration,
    /// Period of the full safety-net rescan.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub rescan_every: Duration,
    /// Period of the end-to-end heartbeat through each watch (a missing one means watching
    /// stopped delivering events: the tree is watched anew and rescanned).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub heartbeat_every: Duration,
}

#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// Only these (and what they depend on); default: everything.
    pub names: Vec<String>,
    /// One overall timeout; what has not made it by then is stopped (up) or killed (down).
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Create an agent: a workspace borrowing this repository's objects, on branch berth/NAME.
    #[command(after_help = AGENT_NEW_EXAMPLES)]
    New {
        name: String,
        /// The command it runs (through `sh -c`).
        #[arg(long = "cmd", value_name = "CMD")]
        command: Option<String>,
        /// What its workspace starts from (default: your HEAD).
        #[arg(long, value_name = "REF")]
        base: Option<String>,
        /// no, on-failure or always.
        #[arg(long, value_name = "POLICY")]
        restart: Option<String>,
        /// An environment variable for it (repeatable).
        #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
        env: Vec<(String, String)>,
        /// When it counts as ready: tcp:HOST:PORT, http:URL, exec:CMD, log:REGEX, notify, none.
        #[arg(long, value_name = "PROBE")]
        ready: Option<String>,
        /// Start it right away.
        #[arg(long)]
        start: bool,
        /// Run it under a pseudo-terminal (80x24), for interactive programs: see `agent
        /// screen` and `agent input`.
        #[arg(long)]
        tty: bool,
        /// With --tty: lines of scrollback its keeper keeps (default 10,000, at most 100,000).
        #[arg(long, value_name = "LINES", requires = "tty")]
        scrollback: Option<u32>,
        /// Make it a turn agent: each message of its inbox runs CMD (through `sh -c`) in its
        /// workspace, the message on stdin and in $BERTH_MESSAGE_FILE.
        #[arg(long, value_name = "CMD", conflicts_with = "tty")]
        turn: Option<String>,
        /// With --turn: how long a turn may run before it is stopped (default 30m).
        #[arg(long, value_name = "DURATION", requires = "turn", value_parser = parse_duration)]
        turn_timeout: Option<Duration>,
        /// Run it elsewhere: `ssh://[user@]host[:port][/dir]`, `docker://IMAGE`,
        /// `podman://IMAGE` or `docker-exec://CONTAINER[/dir]`. Its workspace is made there
        /// and it runs there under a keeper of its own, surviving the daemon and the connection.
        #[arg(long, value_name = "URL")]
        on: Option<String>,
    },
    /// List this repository's agents.
    List,
    /// Show one agent.
    Show { name: String },
    /// Start an agent under its keeper.
    Start { name: String },
    /// Stop an agent and every process it started.
    Stop { name: String },
    /// Stop an agent, then start it again.
    Restart { name: String },
    /// Remove an agent and its workspace; refuses to lose uncommitted work or commits.
    Rm {
        name: String,
        /// Remove anyway, after saving the workspace's state as a snapshot in this repository.
        #[arg(long)]
        force: bool,
        /// Also delete the berth/NAME branch of this repository.
        #[arg(long)]
        delete_branch: bool,
        /// An agent elsewhere whose host is gone for good: forget it here without reaching it.
        /// Nothing there is touched; berth/NAME stays as last brought here.
        #[arg(long, conflicts_with_all = ["force", "delete_branch"])]
        forget: bool,
    },
    /// Show an agent's output (timestamped stdout and stderr).
    Logs {
        name: String,
        /// Lines to show from the end.
        #[arg(long, short = 'n', value_name = "N", default_value_t = 50)]
        tail: usize,
        /// Keep printing new lines as they are written.
        #[arg(long, short = 'f')]
        follow: bool,
        /// Show lines as the program wrote them, escape sequences included (by default a
        /// terminal agent's colours and cursor movements are taken out).
        #[arg(long)]
        raw: bool,
    },
    /// Type into a terminal agent (one created with --tty), as if at its keyboard.
    Input {
        name: String,
        /// What to type; `-` reads it from stdin. Control characters are typed as they are.
        text: Option<String>,
        /// Press Return afterwards.
        #[arg(long)]
        enter: bool,
    },
    /// Print a terminal agent's screen as it is now.
    Screen {
        name: String,
        /// Also the last N lines that scrolled off the top.
        #[arg(long, value_name = "N", default_value_t = 0)]
        scrollback: usize,
    },
    /// Run a one-off command in the agent's workspace.
    Exec {
        name: String,
        /// The command and its arguments (after `--`).
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not K=V")),
    }
}

#[derive(Debug, Subcommand)]
pub enum StashCommand {
    /// Checkpoint the uncommitted state (staged, unstaged, untracked) now, touching nothing.
    Save {
        /// A note to remember it by.
        #[arg(short, long)]
        message: Option<String>,
    },
    /// List this repository's snapshots (found from the refs, even if berth's database lost them).
    List,
    /// Show what a snapshot holds.
    Show { id: String },
    /// Restore a snapshot exactly, then remove it; refuses (changing nothing) if that is unsafe.
    Restore { id: String },
    /// Delete a snapshot.
    Drop {
        id: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// Start the daemon in the background; returns once it is ready.
    #[command(after_help = DAEMON_START_EXAMPLES)]
    Start(StartArgs),
    /// Stop the daemon: ask, then SIGTERM, then SIGKILL, each wait bounded.
    Stop(StopArgs),
    /// Stop the daemon, then start it again with the options it was started with.
    Restart(RestartArgs),
    /// Report the daemon's state.
    Status(StatusArgs),
    /// Show the daemon log's tail and the failure records.
    Logs(LogsArgs),
}

/// Options that shape a daemon run; they make up its effective-config fingerprint.
#[derive(Debug, Clone, Args)]
pub struct ServeOptionArgs {
    /// Also listen on TCP (e.g. 127.0.0.1:7878); always requires a bearer token.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Allow --listen on an address other than loopback: plain HTTP to the network (prefer an
    /// ssh tunnel to 127.0.0.1).
    #[arg(long, requires = "listen")]
    pub listen_public: bool,
    /// File holding the TCP bearer token (or set BERTH_TOKEN); it must be private (mode 600).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Size at which the daemon log is rotated.
    #[arg(long, value_name = "BYTES", default_value_t = berth_core::config::DEFAULT_LOG_MAX_BYTES)]
    pub log_max_bytes: u64,
    /// Rotated daemon logs to keep.
    #[arg(long, value_name = "N", default_value_t = berth_core::config::DEFAULT_LOG_KEEP)]
    pub log_keep: u32,
    /// Events the event log retains.
    #[arg(long, value_name = "N", default_value_t = berth_core::config::DEFAULT_EVENT_RETENTION)]
    pub event_retention: u64,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub options: ServeOptionArgs,
    /// Descriptor of the readiness pipe (set by `berth daemon start`).
    #[arg(long, hide = true)]
    pub ready_fd: Option<i32>,
    /// Descriptor to read the BERTH_TOKEN value from (set by `berth daemon start`, so the token
    /// never sits in the daemon's environment).
    #[arg(long, hide = true)]
    pub token_fd: Option<i32>,
    /// Log only to the daemon log file (set by `berth daemon start`).
    #[arg(long, hide = true)]
    pub detached: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    berth_core::duration::parse(s).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub options: ServeOptionArgs,
    /// How long to wait for the daemon to report ready.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub start_timeout: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct StopTimeouts {
    /// How long to wait after asking the daemon to stop before sending SIGTERM.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub graceful_timeout: Duration,
    /// How long to wait after SIGTERM before sending SIGKILL.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub term_timeout: Duration,
    /// How long to wait after SIGKILL before giving up.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub kill_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub timeouts: StopTimeouts,
    /// Also stop every agent and service (by default they keep running without the daemon).
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    #[command(flatten)]
    pub timeouts: StopTimeouts,
    /// How long to wait for the new daemon to report ready.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub start_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Compare the running daemon's configuration with these options (as `daemon start` would).
    #[command(flatten)]
    pub options: ServeOptionArgs,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Lines to show from the end of the log.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 50)]
    pub tail: usize,
    /// Keep printing new lines as they are written.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Show events after this sequence number.
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    pub since: u64,
    /// Keep streaming new events (reconnects and resumes if the daemon restarts).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only events about this agent (or service, or snapshot id).
    #[arg(long, value_name = "NAME")]
    pub agent: Option<String>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Repair what is safe to repair (never a foreign socket, never the database).
    #[arg(long)]
    pub fix: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn pair(args: &[&str]) -> PairArgs {
        let argv = [&["berth", "pair"][..], args].concat();
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Command::Pair(a),
                ..
            }) => a,
            other => panic!("{args:?} did not parse as `pair`: {other:?}"),
        }
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_subcommand_name_is_the_subcommand() {
        for (word, cmd) in [
            ("status", PairCommand::Status),
            ("flush", PairCommand::Flush),
            ("stop", PairCommand::Stop),
        ] {
            let a = pair(&[word]);
            assert_eq!(a.command, Some(cmd));
            assert_eq!(a.name, None);
            assert!(!a.no_stash);
        }
    }

    #[test]
    fn any_other_word_is_the_agent_to_pair_with() {
        let a = pair(&["fixer"]);
        assert_eq!(
            (a.command, a.name.as_deref(), a.no_stash),
            (None, Some("fixer"), false)
        );
        let a = pair(&["fixer", "--no-stash"]);
        assert_eq!(
            (a.command, a.name.as_deref(), a.no_stash),
            (None, Some("fixer"), true)
        );
        let a = pair(&["--no-stash", "fixer"]);
        assert_eq!(
            (a.command, a.name.as_deref(), a.no_stash),
            (None, Some("fixer"), true)
        );
    }

    #[test]
    fn an_agent_named_like_a_subcommand_comes_after_a_double_dash_or_a_flag() {
        let a = pair(&["--", "stop"]);
        assert_eq!((a.command, a.name.as_deref()), (None, Some("stop")));
        // Once an argument of `pair` itself was given, subcommands are no longer recognised.
        let a = pair(&["--no-stash", "status"]);
        assert_eq!(
            (a.command, a.name.as_deref(), a.no_stash),
            (None, Some("status"), true)
        );
    }

    #[test]
    fn bare_pair_parses_and_is_refused_by_the_command() {
        let a = pair(&[]);
        assert_eq!((a.command, a.name), (None, None));
    }

    #[test]
    fn a_name_and_a_subcommand_do_not_mix() {
        for argv in [
            &["berth", "pair", "fixer", "status"][..],
            &["berth", "pair", "status", "--no-stash"],
            &["berth", "pair", "status", "fixer"],
        ] {
            assert!(Cli::try_parse_from(argv).is_err(), "{argv:?} parsed");
        }
    }

    #[test]
    fn json_is_accepted_after_the_subcommand_and_unpair_takes_nothing() {
        let cli = Cli::try_parse_from(["berth", "pair", "status", "--json"]);
        assert!(matches!(cli, Ok(Cli { json: true, .. })));
        assert!(matches!(
            Cli::try_parse_from(["berth", "unpair"]),
            Ok(Cli {
                command: Command::Unpair,
                ..
            })
        ));
        assert!(Cli::try_parse_from(["berth", "unpair", "fixer"]).is_err());
    }
}
