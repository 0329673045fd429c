//! `berth man`: the manual page (roff) from the command-line definitions, so it never drifts
//! from `--help`.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{CliError, CliResult};

pub fn run() -> CliResult<i32> {
    clap_mangen::Man::new(Cli::command())
        .render(&mut std::io::stdout())
        .map_err(|e| CliError::failed("io", format!("cannot write the manual page: {e}")))?;
    Ok(0)
}
