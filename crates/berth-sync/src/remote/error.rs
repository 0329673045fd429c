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
    /// berth could not be installed there.
    #[error("cannot install berth on {name}: {message}")]
    Install { name: String, message: String },
    /// The far side is of another OS or architecture than this berth is built for.
    #[error(
        "{name} is {theirs} and this berth is built for {ours}: the far side must run the same OS \
         and architecture"
    )]
    Platform {
        name: String,
        theirs: String,
        ours: String,
    },
    /// The container engine's client failed.
    #[error("{command} failed: {said}")]
    Engine { command: String, said: String },
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
            RemoteError::BadTarget(_) => Some(
                "write it as ssh://[user@]host[:port]/dir, docker://IMAGE/dir or docker-exec://CONTAINER/dir (podman:// and podman-exec:// alike)",
            ),
            RemoteError::Spawn { .. } => Some(
                "install the client it names (ssh: openssh-client; docker: docker.io; podman), or set BERTH_SSH to the ssh command to use",
            ),
            RemoteError::NotStarted { said, .. } | RemoteError::Engine { said, .. }
                if said.contains("Cannot connect to the Docker daemon") =>
            {
                Some("start the docker daemon, or point DOCKER_HOST at one that runs")
            }
            RemoteError::NotStarted { said, .. } | RemoteError::Engine { said, .. }
                if said.contains("is paused") =>
            {
                Some("the container is paused: docker unpause CONTAINER, and syncing goes on")
            }
            RemoteError::NotStarted { said, .. } | RemoteError::Engine { said, .. }
                if said.contains("No such container") || said.contains("is not running") =>
            {
                Some(
                    "start the container (docker ps -a lists them), or use docker://IMAGE/dir to have berth make one",
                )
            }
            RemoteError::Engine { said, .. }
                if said.contains("No such image")
                    || said.contains("Unable to find image")
                    || said.contains("pull access denied") =>
            {
                Some("pull or build the image first (berth never pulls: docker pull IMAGE)")
            }
            RemoteError::Engine { .. } => {
                Some("check that the docker (or podman) client works, e.g. docker ps")
            }
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
            RemoteError::NotStarted { said, .. } if said.contains("\"sh\"") => Some(
                "berth needs a POSIX sh on the far side (and sleep, in a container berth makes): use an image that has them",
            ),
            RemoteError::NotStarted { said, .. }
                if said.contains("not found") || said.contains("No such file") =>
            {
                Some(
                    "BERTH_REMOTE_BIN names a berth there that is not found: fix the path, or unset it and berth installs itself there",
                )
            }
            RemoteError::NotStarted { .. } => Some(
                "check that `ssh HOST true` (or `docker exec CONTAINER true`) works without a prompt",
            ),
            RemoteError::Version { .. } => Some(
                "install the same version of berth on both sides (BERTH_REMOTE_BIN names another one: unset it and berth installs itself there)",
            ),
            RemoteError::Install { .. } => Some(
                "berth copies itself into ~/.cache/berth/bin there (XDG_CACHE_HOME if set): make room or make it writable, or install berth there yourself and set BERTH_REMOTE_BIN to its path",
            ),
            RemoteError::Platform { .. } => Some(
                "run a berth built for that machine there and set BERTH_REMOTE_BIN to its path there",
            ),
            RemoteError::Refused(_) | RemoteError::Frame(_) => None,
        }
    }
}
