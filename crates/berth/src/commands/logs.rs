//! `berth daemon logs`: the daemon log's tail and the failure records; `--follow` streams.

use std::time::Duration;

use berth_control::failure::FailureRecord;
use berth_control::logs::{Follower, tail};
use serde::Serialize;

use crate::Ctx;
use crate::cli::LogsArgs;
use crate::error::CliResult;
use crate::output::{self, emit};

/// How often `--follow` looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(200);
/// The most lines `--tail` shows.
const MAX_TAIL: usize = 10_000;

#[derive(Debug, Serialize)]
struct LogsReport {
    log: String,
    lines: Vec<String>,
    failures: Vec<FailureRecord>,
}

pub fn run(ctx: &Ctx, args: LogsArgs) -> CliResult<i32> {
    let home = &ctx.home;
    let report = LogsReport {
        log: home.daemon_log().display().to_string(),
        lines: tail(&home.daemon_log(), args.tail.min(MAX_TAIL)),
        failures: FailureRecord::all(home),
    };
    emit(ctx.json && !args.follow, &report, |r| {
        let mut s = r.lines.join("\n");
        if r.lines.is_empty() {
            s = format!("({} is empty)", r.log);
        }
        for f in &r.failures {
            s += &format!(
                "\nfailure record: {} {} (run {}, pid {}): {}",
                output::time_ms(f.time_ms),
                f.phase,
                f.generation,
                f.pid,
                f.message
            );
        }
        s
    });
    if args.follow {
        follow(ctx, &home.daemon_log(), Shown::Raw)?;
    }
    Ok(0)
}

/// How lines of a log are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// As written.
    Raw,
    /// As a terminal would show them (`berth_core::plain_text`).
    Plain,
}

impl Shown {
    fn line(self, text: &str) -> String {
        match self {
            Shown::Raw => text.to_string(),
            Shown::Plain => berth_core::output_line::shown(text),
        }
    }
}

/// Prints the last `n` lines of a log (and with `follow`, new ones as they come).
pub fn print_tail(
    ctx: &Ctx,
    path: &std::path::Path,
    n: usize,
    follow_it: bool,
    shown: Shown,
) -> CliResult {
    let lines: Vec<String> = tail(path, n.min(MAX_TAIL))
        .iter()
        .map(|l| shown.line(l))
        .collect();
    if ctx.json && !follow_it {
        output::json(&serde_json::json!({ "log": path, "lines": lines }));
    } else {
        for l in &lines {
            print_line(ctx, l);
        }
    }
    if follow_it {
        follow(ctx, path, shown)?;
    }
    Ok(())
}

fn print_line(ctx: &Ctx, text: &str) {
    if ctx.json {
        output::json(&serde_json::json!({ "line": text }));
    } else {
        println!("{text}");
    }
}

/// Prints lines appended to the log from now on; survives rotation. Ends on Ctrl-C.
fn follow(ctx: &Ctx, path: &std::path::Path, shown: Shown) -> CliResult {
    let mut follower = Follower::from_end(path);
    loop {
        std::thread::sleep(FOLLOW_POLL);
        for line in follower.poll()? {
            print_line(ctx, &shown.line(&line));
        }
    }
}
