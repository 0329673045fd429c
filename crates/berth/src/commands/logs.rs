//! `berth daemon logs`: the daemon log's tail and the failure records; `--follow` streams.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use berth_daemon::failure::FailureRecord;
use berth_daemon::logging;
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
    let mut failures: Vec<FailureRecord> = std::fs::read_dir(home.run_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("failure-"))
        .filter_map(|e| FailureRecord::read(&e.path()))
        .collect();
    failures.sort_by_key(|f| f.time_ms);
    let report = LogsReport {
        log: home.daemon_log().display().to_string(),
        lines: logging::tail(home, args.tail.min(MAX_TAIL)),
        failures,
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
        follow(ctx, &home.daemon_log())?;
    }
    Ok(0)
}

/// Prints the last `n` lines of a log (and with `follow`, new ones as they come).
pub fn print_tail(ctx: &Ctx, path: &std::path::Path, n: usize, follow_it: bool) -> CliResult {
    let lines = berth_supervisor::logs::tail(path, n.min(MAX_TAIL));
    if ctx.json && !follow_it {
        output::json(&serde_json::json!({ "log": path, "lines": lines }));
    } else {
        for l in &lines {
            print_line(ctx, l);
        }
    }
    if follow_it {
        follow(ctx, path)?;
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

/// Opens the log, positioned at its end (`at_end`) or start; with its inode.
fn open_log(path: &std::path::Path, at_end: bool) -> Option<(File, u64)> {
    let mut f = File::open(path).ok()?;
    if at_end {
        f.seek(SeekFrom::End(0)).ok()?;
    }
    let ino = f.metadata().ok()?.ino();
    Some((f, ino))
}

/// Prints lines appended to the log from now on; survives rotation. Ends on Ctrl-C.
fn follow(ctx: &Ctx, path: &std::path::Path) -> CliResult {
    let mut current = open_log(path, true);
    let mut pending = Vec::new();
    loop {
        std::thread::sleep(FOLLOW_POLL);
        let rotated = match (&current, std::fs::metadata(path)) {
            (Some((_, ino)), Ok(m)) => m.ino() != *ino,
            (None, Ok(_)) => true,
            _ => false,
        };
        if let Some((file, _)) = current.as_mut() {
            file.read_to_end(&mut pending)?;
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                print_line(ctx, &String::from_utf8_lossy(&line[..line.len() - 1]));
            }
        }
        if rotated {
            // The old file was fully read above; the new one is read from its beginning.
            current = open_log(path, false);
        }
    }
}
