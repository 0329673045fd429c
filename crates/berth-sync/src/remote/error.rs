//! Why a remote endpoint could not be reached, or an endpoint could not serve.

use super::frame::FrameError;

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{0}")]
    BadTarget(String),
    #[error("cannot start {command}: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    /// The command ran, but no endpoint answered on its output.
    #[error("{name}: no berth endpoint answered ({message}){}", said_suffix(.said))]
    NotStarted {
        name: String,
        message: String,
        /// What the command wrote on its standard error (ssh's reason, typically).
        said: String,
    },
    #[error("{name} runs {theirs}, this is {ours}")]
    Version {
        name: String,
        theirs: String,
        ours: String,
    },
    #[error("{0}")]
    Refused(String),
    #[error("the stream broke: {0}")]
    Frame(#[from] FrameError),
}

fn said_suffix(said: &str) -> String {
    if said.is_empty() {
        String::new()
    } else {
        format!(": {said}")
    }
}

impl RemoteError {
    /// What to do about it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            RemoteError::BadTarget(_) => Some("write it as ssh://[user@]host[:port]/dir"),
            RemoteError::Spawn { .. } => Some(
                "install the ssh client (Debian: openssh-client), or set BERTH_SSH to the command to use",
            ),
            RemoteError::NotStarted { said, .. }
                if said.contains("Host key verification failed") =>
            {
                Some(
                    "the host's key is not known (or changed): check its fingerprint and add it to your known_hosts, for example by connecting once with ssh; berth never accepts a host key by itself",
                )
            }
            RemoteError::NotStarted { said, .. } if said.contains("Permission denied") => Some(
                "ssh could not log in without a prompt (berth runs it with BatchMode=yes): load your key into ssh-agent or name it in ~/.ssh/config",
            ),
            RemoteError::NotStarted { said, .. }
                if said.contains("not found") || said.contains("No such file") =>
            {
                Some(
                    "install the same version of berth there, on the PATH of a non-interactive shell, or set BERTH_REMOTE_BIN to its path there",
                )
            }
            RemoteError::NotStarted { .. } => Some(
                "check that `ssh HOST true` works without a prompt and that berth is installed there",
            ),
            RemoteError::Version { .. } => Some("install the same version of berth on both sides"),
            RemoteError::Refused(_) | RemoteError::Frame(_) => None,
        }
    }
}
