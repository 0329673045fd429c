//! Running the `git` command line.
//!
//! Every invocation gets a fixed environment so its output is parseable and its behaviour
//! predictable: `LC_ALL=C` (no translated messages), no pager, no terminal prompts, no
//! `GIT_DIR`/`GIT_INDEX_FILE`/`GIT_WORK_TREE` leaking in from the caller, and for read-only
//! queries `GIT_OPTIONAL_LOCKS=0` so that e.g. `git status` never rewrites the index behind the
//! user's back.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A failed git invocation.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot run git: {0}{hint}", hint = install_hint(.0))]
    Spawn(std::io::Error),
    #[error("{} is not a directory that exists", .0.display())]
    NoDirectory(PathBuf),
    #[error("`git {args}` failed (exit {code}): {stderr}")]
    Failed {
        args: String,
        code: i32,
        stderr: String,
    },
    #[error("unexpected output from `git {args}`: {detail}")]
    Parse { args: String, detail: String },
}

/// Said when git itself was not found (its directory was checked first).
fn install_hint(e: &std::io::Error) -> &'static str {
    if e.kind() == std::io::ErrorKind::NotFound {
        "; is git installed and on PATH?"
    } else {
        ""
    }
}

/// Whether a command may take git's optional locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A query: `GIT_OPTIONAL_LOCKS=0`, so nothing is rewritten as a side effect.
    Read,
    /// A command that is meant to write.
    Write,
}

/// What a finished command produced.
#[derive(Debug, Clone)]
pub struct Output {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// Standard output as text, with the final newline removed.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout)
            .trim_end_matches('\n')
            .to_string()
    }
}

/// git, run in one directory.
#[derive(Debug, Clone)]
pub struct Git {
    dir: PathBuf,
    env: Vec<(OsString, OsString)>,
}

const SCRUBBED: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
];

impl Git {
    pub fn new(dir: impl Into<PathBuf>) -> Git {
        Git {
            dir: dir.into(),
            env: Vec::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The same git with one more environment variable (e.g. `GIT_INDEX_FILE`).
    pub fn with_env(&self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Git {
        let mut g = self.clone();
        g.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        g
    }

    fn command<S: AsRef<OsStr>>(&self, access: Access, args: &[S]) -> Command {
        let mut cmd = Command::new("git");
        for var in SCRUBBED {
            cmd.env_remove(var);
        }
        cmd.current_dir(&self.dir)
            .env("LC_ALL", "C")
            .env("GIT_PAGER", "cat")
            .env("PAGER", "cat")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_EDITOR", "true")
            .env(
                "GIT_OPTIONAL_LOCKS",
                if access == Access::Read { "0" } else { "1" },
            )
            .args([
                "-c",
                "gc.auto=0",
                "-c",
                "maintenance.auto=false",
                "-c",
                "core.quotePath=false",
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs git and returns its output whatever the exit code.
    pub fn output<S: AsRef<OsStr>>(&self, access: Access, args: &[S]) -> Result<Output, GitError> {
        self.output_with_input(access, args, None)
    }

    /// Like [`Git::output`], feeding `input` on standard input.
    pub fn output_with_input<S: AsRef<OsStr>>(
        &self,
        access: Access,
        args: &[S],
        input: Option<&[u8]>,
    ) -> Result<Output, GitError> {
        let mut cmd = self.command(access, args);
        if input.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().map_err(|e| {
            // Starting git in a directory that is not there fails like a missing git would.
            if self.dir.is_dir() {
                GitError::Spawn(e)
            } else {
                GitError::NoDirectory(self.dir.clone())
            }
        })?;
        if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
            // A git that exits early closes its stdin; its exit code then tells what happened.
            let _ = stdin.write_all(bytes);
        }
        let out = child.wait_with_output().map_err(GitError::Spawn)?;
        Ok(Output {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    /// Runs git and fails unless it exits 0.
    pub fn run<S: AsRef<OsStr>>(&self, access: Access, args: &[S]) -> Result<Output, GitError> {
        let out = self.output(access, args)?;
        check(args, out)
    }

    /// Runs git with `input` on standard input and fails unless it exits 0.
    pub fn run_with_input<S: AsRef<OsStr>>(
        &self,
        access: Access,
        args: &[S],
        input: &[u8],
    ) -> Result<Output, GitError> {
        let out = self.output_with_input(access, args, Some(input))?;
        check(args, out)
    }

    /// Shorthand: a read-only query's standard output as trimmed text.
    pub fn query<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<String, GitError> {
        Ok(self.run(Access::Read, args)?.text())
    }
}

/// Renders arguments for an error message.
pub fn render_args<S: AsRef<OsStr>>(args: &[S]) -> String {
    args.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn check<S: AsRef<OsStr>>(args: &[S], out: Output) -> Result<Output, GitError> {
    if out.success() {
        return Ok(out);
    }
    Err(GitError::Failed {
        args: render_args(args),
        code: out.code,
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_missing_git_is_blamed_on_git() {
        let err = Git::new("/no/such/dir/for/berth")
            .query(&["status"])
            .unwrap_err();
        assert!(matches!(err, GitError::NoDirectory(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "/no/such/dir/for/berth is not a directory that exists"
        );
        let nul = Git::new(std::env::temp_dir()).query(&["a\0b"]).unwrap_err();
        assert!(matches!(nul, GitError::Spawn(_)), "{nul:?}");
        assert!(!nul.to_string().contains("installed"), "{nul}");
    }
}
