//! `berth completions bash|zsh|fish`: a completion script from the command-line definitions.

use clap::CommandFactory;
use clap_complete::Generator;

use crate::cli::{Cli, Shell};
use crate::error::{CliError, CliResult};

pub fn run(shell: Shell) -> CliResult<i32> {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut cmd = Cli::command();
    cmd.set_bin_name("berth");
    cmd.build();
    shell
        .try_generate(&cmd, &mut std::io::stdout())
        .map_err(|e| CliError::failed("io", format!("cannot write the completion script: {e}")))?;
    Ok(0)
}
