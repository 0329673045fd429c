//! What an agent, a service or an exec probe runs: a command line for `sh -c` and environment
//! variables, in a form the operating system can pass to a program.
//!
//! exec takes C strings, so a NUL byte anywhere (command, variable name or value) cannot reach
//! the program, and a variable name with '=' would be read as a different variable. Both are
//! refused when a definition is accepted, before anything is created or started, instead of
//! failing later when the process is spawned.

/// Why a command or an environment variable cannot be run as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("the command is empty")]
    Empty,
    #[error("the command contains a NUL byte, which no program can be given")]
    Nul,
    #[error("environment variable name {0:?} is invalid: it must be non-empty, without '=' or NUL")]
    EnvName(String),
    #[error("the value of environment variable {0} contains a NUL byte")]
    EnvValue(String),
}

/// Checks a command line (run with `sh -c`).
pub fn check(command: &str) -> Result<(), CommandError> {
    if command.trim().is_empty() {
        return Err(CommandError::Empty);
    }
    if command.contains('\0') {
        return Err(CommandError::Nul);
    }
    Ok(())
}

/// Checks one environment variable.
pub fn check_env(name: &str, value: &str) -> Result<(), CommandError> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(CommandError::EnvName(name.to_string()));
    }
    if value.contains('\0') {
        return Err(CommandError::EnvValue(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_exec_can_take_pass() {
        for ok in ["true", "sh -c 'echo hi'", " x ", "printf '\\0'", "é"] {
            assert_eq!(check(ok), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn empty_commands_and_nul_bytes_are_refused() {
        for (bad, want) in [
            ("", CommandError::Empty),
            (" \t\n", CommandError::Empty),
            ("echo a\0b", CommandError::Nul),
            ("\0", CommandError::Nul),
        ] {
            assert_eq!(check(bad), Err(want), "{bad:?}");
        }
    }

    #[test]
    fn variable_names_and_values_exec_cannot_take_are_refused() {
        assert_eq!(check_env("RUST_LOG", "debug"), Ok(()));
        assert_eq!(check_env("EMPTY", ""), Ok(()));
        for name in ["", "A=B", "A\0"] {
            assert_eq!(
                check_env(name, "x"),
                Err(CommandError::EnvName(name.into()))
            );
        }
        assert_eq!(
            check_env("A", "x\0y"),
            Err(CommandError::EnvValue("A".into()))
        );
    }
}
