//! berth on the far side, installed by berth itself, like Mutagen's agent: [`Installing`] is
//! the [`Launcher`] of every `ssh://` and container target.
//!
//! The endpoint it starts is this very binary, kept there under a name of its version and
//! digest: `${XDG_CACHE_HOME:-$HOME/.cache}/berth/bin/berth-<version>-<digest>`, the digest
//! being the first 16 hex digits of the blake3 of this executable's bytes. The script that
//! starts it (run by `sh` there, over ssh or `docker exec -i`) runs that file if it is there,
//! and otherwise says so on standard error with the machine's `uname -s` and `uname -m`.
//! Then, unless the machine is of another OS or architecture (a berth built for another one
//! cannot run there: that is an error saying so), the binary is copied over the same kind of
//! stream — a script reading it from standard input into a temporary file beside the final one
//! — checked there by its blake3 digest (computed by the copy itself, `berth __digest FILE`,
//! which also proves it runs there), and renamed into place, so a copy that broke off or
//! arrived damaged is never used. A file of that name that answers with another version or
//! protocol in its hello is replaced the same way. The endpoint is then started once more.
//!
//! `BERTH_REMOTE_BIN` names a berth to run there instead; it is never installed or replaced.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::RemoteError;
use super::launch::Launcher;
use super::message::VERSION;
use super::ssh::quote;
use super::target::Target;

/// What the start script says on standard error when there is no berth of this digest there.
const MISSING: &str = "berth-install: missing";

/// The folder installed binaries live in there, as `sh` expands it.
const BIN_DIR: &str = r#""${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/berth/bin""#;

/// An installation that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The path there.
    pub path: String,
    /// Whether it replaced a file that answered with another version.
    pub replaced: bool,
    pub bytes: u64,
    pub took: Duration,
}

/// Starts berth's endpoint on a [`Target`], installing berth there first when it is missing
/// or of another version.
pub struct Installing {
    name: String,
    target: Target,
    /// `BERTH_REMOTE_BIN`: the berth to run there, never installed.
    bin: Option<String>,
    /// Told of every installation.
    notify: Box<dyn FnMut(&Installed) + Send>,
}

impl Installing {
    /// The launcher of `target` (named `name` in messages), with `BERTH_REMOTE_BIN` from the
    /// environment; `notify` hears of every installation.
    pub fn new(
        name: &str,
        target: Target,
        notify: impl FnMut(&Installed) + Send + 'static,
    ) -> Installing {
        let bin = std::env::var("BERTH_REMOTE_BIN")
            .ok()
            .filter(|s| !s.trim().is_empty());
        Installing {
            name: name.to_string(),
            target,
            bin,
            notify: Box::new(notify),
        }
    }

    /// Copies this binary there, checked by its digest, and renames it into place.
    fn install(&mut self, replaced: bool) -> Result<(), RemoteError> {
        let started = Instant::now();
        let me = local().map_err(|message| self.install_error(message))?;
        let script = format!(
            "set -e\nd={BIN_DIR}\nmkdir -p \"$d\"\nt=\"$d/.berth-install.$$\"\n\
             trap 'rm -f \"$t\"' EXIT\ncat > \"$t\"\nchmod 755 \"$t\"\n\
             got=$(\"$t\" __digest \"$t\") || {{ echo 'berth-install: the copy does not run there' >&2; exit 1; }}\n\
             [ \"$got\" = {digest} ] || {{ echo \"berth-install: the copy arrived damaged (its digest is $got)\" >&2; exit 1; }}\n\
             mv -f \"$t\" \"$d/{file}\"\necho \"$d/{file}\"\n",
            digest = me.digest,
            file = me.file_name(),
        );
        let mut command = self.target.shell(&script);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| RemoteError::Spawn {
                command: command.get_program().to_string_lossy().into_owned(),
                source,
            })?;
        let stdin = child.stdin.take();
        let path = me.path.clone();
        // Written from a thread of its own while its output is read here, so neither waits.
        let writer = std::thread::spawn(move || -> std::io::Result<u64> {
            let Some(mut stdin) = stdin else {
                return Err(std::io::Error::other("no standard input"));
            };
            let mut file = std::fs::File::open(path)?;
            let n = std::io::copy(&mut file, &mut stdin)?;
            stdin.flush()?;
            Ok(n)
        });
        let out = child
            .wait_with_output()
            .map_err(|e| self.install_error(e.to_string()))?;
        let sent = writer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the copying thread failed")));
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if !out.status.success() {
            let why = if said.is_empty() {
                format!("the install script ended with {}", out.status)
            } else {
                said
            };
            return Err(self.install_error(why));
        }
        let bytes = sent.map_err(|e| self.install_error(format!("copying it: {e}")))?;
        (self.notify)(&Installed {
            path: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            replaced,
            bytes,
            took: started.elapsed(),
        });
        Ok(())
    }

    fn install_error(&self, message: String) -> RemoteError {
        RemoteError::Install {
            name: self.name.clone(),
            message,
        }
    }

    /// The script that runs berth there with `args` (already quoted for `sh`): the copy this
    /// launcher installs (or `BERTH_REMOTE_BIN`); when it is missing, the script says so on
    /// standard error as [`Launcher::repair`] expects, and ends with 127.
    pub fn script(&self, args: &str) -> Result<String, RemoteError> {
        Ok(match &self.bin {
            Some(bin) => format!("exec {} {args}", quote(bin)),
            None => {
                let me = local().map_err(|message| self.install_error(message))?;
                format!(
                    "p={BIN_DIR}/{file}\n[ -x \"$p\" ] && exec \"$p\" {args}\n\
                     echo \"{MISSING} $(uname -s 2>/dev/null) $(uname -m 2>/dev/null)\" >&2\nexit 127\n",
                    file = me.file_name(),
                )
            }
        })
    }
}

impl Launcher for Installing {
    fn command(&mut self) -> Result<Command, RemoteError> {
        self.target.prepare()?;
        let script = self.script(&format!("__endpoint {}", quote(self.target.dir())))?;
        Ok(self.target.shell(&script))
    }

    fn repair(&mut self, failure: &RemoteError) -> Result<bool, RemoteError> {
        if self.bin.is_some() {
            return Ok(false);
        }
        let replaced = match failure {
            RemoteError::NotStarted { said, .. } => {
                let Some(theirs) = said.lines().find_map(|l| l.strip_prefix(MISSING)) else {
                    return Ok(false);
                };
                let theirs = theirs.trim();
                let ours = format!("{} {}", std::env::consts::OS, std::env::consts::ARCH);
                // No `uname` there: the copy's own check tells whether it runs.
                if !theirs.is_empty() && !theirs.eq_ignore_ascii_case(&ours) {
                    return Err(RemoteError::Platform {
                        name: self.name.clone(),
                        theirs: theirs.to_string(),
                        ours,
                    });
                }
                false
            }
            RemoteError::Version { .. } => true,
            _ => return Ok(false),
        };
        self.install(replaced)?;
        Ok(true)
    }
}

/// This executable: where to read it, and its digest.
struct Local {
    path: std::path::PathBuf,
    digest: String,
}

impl Local {
    /// Its name there.
    fn file_name(&self) -> String {
        format!("berth-{VERSION}-{}", &self.digest[..16])
    }
}

/// This executable, digested once per process. `/proc/self/exe` is read rather than the path
/// it was started from, which an upgrade may have replaced since.
fn local() -> Result<&'static Local, String> {
    static LOCAL: OnceLock<Result<Local, String>> = OnceLock::new();
    LOCAL
        .get_or_init(|| {
            let path = Path::new("/proc/self/exe").to_path_buf();
            digest_file(&path)
                .map(|digest| Local { path, digest })
                .map_err(|e| format!("cannot read this berth's own binary: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The blake3 digest of a file's bytes, in hex (`berth __digest FILE`).
pub fn digest_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(path)?)?;
    Ok(hasher.finalize().to_hex().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_files_digest_is_blake3_in_hex() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"abc").unwrap();
        assert_eq!(
            digest_file(&f).unwrap(),
            blake3::hash(b"abc").to_hex().to_string()
        );
        assert!(digest_file(&dir.path().join("missing")).is_err());
        let me = local().unwrap();
        assert!(me.file_name().starts_with(&format!("berth-{VERSION}-")));
        assert_eq!(me.file_name().len(), format!("berth-{VERSION}-").len() + 16);
    }
}
