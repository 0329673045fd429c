//! `berth`: the one binary. Parses the command line, runs the command, maps its error to the
//! documented exit code (see `error.rs` and `docs/cli.md`).

mod cli;
mod commands;
mod error;
mod output;
mod progress;
mod raw_terminal;

use std::io::Write;
use std::path::PathBuf;

use berth_core::home::Home;
use clap::Parser;

use crate::cli::{Cli, Command, DaemonCommand};
use crate::error::{CliError, CliResult, Kind};

/// What every command gets besides its own arguments.
pub struct Ctx {
    pub home: Home,
    pub json: bool,
    /// `BERTH_TOKEN`, taken out of this process's environment at start.
    pub env_token: Option<String>,
}

/// `berth __keeper --dir DIR`, `berth __endpoint ROOT`, `berth __relay SOCKET` (an attached
/// client's stream to a keeper on the far side) and `berth __digest FILE` (a copy of berth
/// installed on the far side checking itself), recognised before anything else is set
/// up: a keeper stays small (SPEC §7: under 4 MB each) by never running the command-line
/// parser or a runtime, and none of them needs one.
fn fast_path() -> Option<i32> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match args.as_slice() {
        [cmd, root] if cmd == "__endpoint" => {
            Some(match berth_daemon::run_endpoint(PathBuf::from(root)) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error: {e}");
                    Kind::Failed.exit_code()
                }
            })
        }
        [cmd, socket] if cmd == "__relay" => Some(
            match berth_daemon::run_relay(std::path::Path::new(socket)) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("{e}");
                    Kind::Failed.exit_code()
                }
            },
        ),
        [cmd, file] if cmd == "__digest" => Some(
            match berth_daemon::file_digest(std::path::Path::new(file)) {
                Ok(digest) => match writeln!(std::io::stdout(), "{digest}") {
                    Ok(()) => 0,
                    Err(_) => Kind::Failed.exit_code(),
                },
                Err(e) => {
                    eprintln!("error: {}: {e}", std::path::Path::new(file).display());
                    Kind::Failed.exit_code()
                }
            },
        ),
        [cmd, flag, dir] if cmd == "__keeper" && flag == "--dir" => {
            Some(match berth_daemon::run_keeper(PathBuf::from(dir)) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error: {e}");
                    Kind::Failed.exit_code()
                }
            })
        }
        _ => None,
    }
}

fn main() {
    if let Some(code) = fast_path() {
        std::process::exit(code);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() {
                Kind::Usage.exit_code()
            } else {
                0
            });
        }
    };
    let env_token = std::env::var("BERTH_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty());
    // SAFETY: no other thread exists yet (no runtime has been built), so nothing can read the
    // environment concurrently. Removing the token here means no child berth ever spawns can
    // inherit it.
    unsafe { std::env::remove_var("BERTH_TOKEN") };
    let json = cli.json;
    let code = match run(cli, env_token) {
        Ok(code) => code,
        Err(e) => {
            e.report(json);
            e.kind.exit_code()
        }
    };
    std::process::exit(code);
}

fn resolve_home(flag: Option<PathBuf>) -> CliResult<Home> {
    let path = match flag {
        Some(p) => p,
        None => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".berth"),
            None => {
                return Err(
                    CliError::new(Kind::Usage, "no_home", "cannot find berth's home")
                        .hint("set BERTH_HOME or HOME, or pass --home DIR"),
                );
            }
        },
    };
    let abs = std::path::absolute(&path)
        .map_err(|e| CliError::new(Kind::Usage, "bad_home", format!("{}: {e}", path.display())))?;
    Ok(Home::new(abs))
}

fn runtime(multi_thread: bool) -> CliResult<tokio::runtime::Runtime> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| CliError::failed("runtime", format!("cannot start the async runtime: {e}")))
}

fn run(cli: Cli, env_token: Option<String>) -> CliResult<i32> {
    let ctx = Ctx {
        home: resolve_home(cli.home)?,
        json: cli.json,
        env_token,
    };
    match cli.command {
        Command::Serve(args) => runtime(true)?.block_on(commands::serve::run(&ctx, args)),
        Command::Daemon(cmd) => {
            let rt = runtime(false)?;
            match cmd {
                DaemonCommand::Start(a) => rt.block_on(commands::daemon::start(&ctx, a)),
                DaemonCommand::Stop(a) => rt.block_on(commands::daemon::stop(&ctx, a)),
                DaemonCommand::Restart(a) => rt.block_on(commands::daemon::restart(&ctx, a)),
                DaemonCommand::Status(a) => rt.block_on(commands::daemon::status(&ctx, a)),
                DaemonCommand::Logs(a) => commands::logs::run(&ctx, a),
            }
        }
        Command::Events(a) => runtime(false)?.block_on(commands::events::run(&ctx, a)),
        Command::Doctor(a) => runtime(false)?.block_on(commands::doctor::run(&ctx, a)),
        Command::Agent(cmd) => runtime(false)?.block_on(commands::agent::run(&ctx, cmd)),
        Command::Debug(cli::DebugCommand::Sync(a)) => commands::debug_sync::run(&ctx, &a),
        Command::Attach(a) => runtime(false)?.block_on(commands::attach::run(&ctx, a)),
        Command::Send(a) => runtime(false)?.block_on(commands::inbox::send(&ctx, a)),
        Command::Inbox(a) => runtime(false)?.block_on(commands::inbox::run(&ctx, a)),
        Command::Turns(a) => runtime(false)?.block_on(commands::turns::run(&ctx, a)),
        Command::Timer(c) => runtime(false)?.block_on(commands::timer::run(&ctx, c)),
        Command::Hook(c) => runtime(false)?.block_on(commands::hook::run(&ctx, c)),
        Command::Status => runtime(false)?.block_on(commands::status::run(&ctx)),
        Command::Web(a) => runtime(false)?.block_on(commands::web::run(&ctx, a)),
        Command::Up(a) => runtime(false)?.block_on(commands::compose::run(&ctx, true, a)),
        Command::Down(a) => runtime(false)?.block_on(commands::compose::run(&ctx, false, a)),
        Command::Notify { message } => commands::agent::notify(&message),
        Command::Stash(cmd) => runtime(false)?.block_on(commands::stash::run(&ctx, cmd)),
        Command::Pair(a) => runtime(false)?.block_on(commands::pair::run(&ctx, a)),
        Command::Unpair => runtime(false)?.block_on(commands::pair::stop(&ctx)),
        Command::Demo => commands::demo::run(&ctx),
        Command::Completions { shell } => commands::completions::run(shell),
        Command::Man { command } => commands::man::run(&command),
    }
}
