//! Where a tree elsewhere is: `ssh://…` ([`super::ssh`]) or a container (`docker://…`,
//! `docker-exec://…` and podman's: [`super::container`]). Each runs a script with a POSIX `sh`
//! there whose standard input and output are the stream; what the script is — start the
//! endpoint, or install berth first — is [`super::install`]'s.

use std::process::Command;

use super::RemoteError;
use super::container::ContainerTarget;
use super::ssh::SshTarget;

/// A tree elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Ssh(SshTarget),
    Container(ContainerTarget),
}

impl Target {
    /// `Ok(None)`: not a URL of a tree elsewhere (a local path).
    pub fn parse(url: &str) -> Result<Option<Target>, RemoteError> {
        if let Some(t) = SshTarget::parse(url)? {
            return Ok(Some(Target::Ssh(t)));
        }
        Ok(ContainerTarget::parse(url)?.map(Target::Container))
    }

    /// The tree's directory there.
    pub fn dir(&self) -> &str {
        match self {
            Target::Ssh(t) => &t.dir,
            Target::Container(t) => &t.dir,
        }
    }

    /// The command that runs `script` with `sh` there.
    pub fn shell(&self, script: &str) -> Command {
        match self {
            Target::Ssh(t) => t.shell(script),
            Target::Container(t) => t.shell(script),
        }
    }

    /// Makes the place ready before a connection (a container berth makes: made or started).
    pub fn prepare(&self) -> Result<(), RemoteError> {
        match self {
            Target::Ssh(_) => Ok(()),
            Target::Container(t) => t.prepare(),
        }
    }
}
