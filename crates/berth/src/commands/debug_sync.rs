//! `berth debug sync ALPHA BETA [--once]`: the sync engine between two plain directories, run by
//! `berth_daemon::debug_sync` (the same wiring of engine and store that pairing uses, without
//! git), in this process.

use berth_daemon::debug_sync::{self, DebugSyncError, Options};

use crate::Ctx;
use crate::cli::DebugSyncArgs;
use crate::error::{CliError, CliResult, Kind};

impl From<DebugSyncError> for CliError {
    fn from(e: DebugSyncError) -> CliError {
        let kind = if e.is_usage() {
            Kind::Usage
        } else {
            Kind::Failed
        };
        let mut err = CliError::new(kind, e.code(), e.to_string());
        err.hint = e.hint().map(str::to_string);
        err
    }
}

pub fn run(ctx: &Ctx, args: &DebugSyncArgs) -> CliResult<i32> {
    let options = Options {
        alpha: args.alpha.clone(),
        beta: args.beta.clone(),
        once: args.once,
        max_size: args.max_size,
        exclude: args.exclude.clone(),
        debounce: args.debounce,
        max_delay: args.max_delay,
        rescan_every: args.rescan_every,
        heartbeat_every: args.heartbeat_every,
        json: ctx.json,
    };
    debug_sync::run(&ctx.home, &options)?;
    Ok(0)
}
