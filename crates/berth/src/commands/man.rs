//! `berth man [COMMAND...]`: the manual page (roff) of berth or of one of its commands (named
//! `berth-pair-stop` for `pair stop`), from the command-line definitions, so it never drifts
//! from `--help`.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{CliError, CliResult, Kind};

pub fn run(path: &[String]) -> CliResult<i32> {
    let mut cmd = Cli::command();
    cmd.build();
    for name in path {
        let Some(sub) = cmd.find_subcommand(name).cloned() else {
            return Err(CliError::new(
                Kind::Usage,
                "unknown_command",
                format!(
                    "`berth {}` is not a command; `berth --help` lists them",
                    path.join(" ")
                ),
            ));
        };
        cmd = sub;
    }
    let mut page = clap_mangen::Man::new(cmd);
    if !path.is_empty() {
        page = page.title(format!("berth-{}", path.join("-")));
    }
    page.render(&mut std::io::stdout())
        .map_err(|e| CliError::failed("io", format!("cannot write the manual page: {e}")))?;
    Ok(0)
}
