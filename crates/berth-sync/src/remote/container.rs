//! Trees in containers, reached through the `docker` or `podman` client as it is (so
//! `DOCKER_HOST=ssh://…`, a docker context or a podman connection places them on another
//! machine with nothing new in berth):
//!
//! - `docker-exec://CONTAINER/dir` (`podman-exec://…`): a container that exists; scripts run
//!   with `docker exec -i CONTAINER sh -c …`.
//! - `docker://IMAGE/dir` (`podman://…`): a container berth makes from IMAGE on first use and
//!   keeps: named `berth-<digest of image and dir>`, labelled `berth.managed=1`, with no
//!   network (`--network none`) and a named volume (the same name with `-work`) at `dir`, so a
//!   restart or a new container keeps the tree; its process is an idle `sh` loop (the image
//!   needs `sh` and `sleep`). A container that stopped is started again before each
//!   connection. berth removes one only when it was made for an agent (`berth agent new --on
//!   docker://IMAGE`, named by the agent) and that agent is removed ([`ContainerTarget::remove_made`]);
//!   others go with `docker rm -f NAME` and `docker volume rm NAME-work` (all of them:
//!   `--filter label=berth.managed=1`). An image whose name holds a `/` ends
//!   at `//`: `docker://ghcr.io/acme/tools:1//work`.
//!
//! podman here runs containers only with lower limits than its defaults (`--ulimit
//! nofile=4096:4096 --ulimit nproc=4096:4096`); berth passes them when it makes one.

use std::process::{Command, Stdio};

use super::RemoteError;

/// The container engine's client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Docker,
    Podman,
}

impl Engine {
    /// The client's program name.
    pub fn program(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
        }
    }
}

/// Which container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// One that exists, by name or id.
    Exec(String),
    /// One berth makes from this image (and keeps).
    Image(String),
}

/// A parsed container target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerTarget {
    pub engine: Engine,
    pub place: Place,
    /// The absolute directory in the container.
    pub dir: String,
    /// The name of a container berth makes, when its user names it (an agent's own container);
    /// `None`: named after a digest of engine, image and dir.
    pub name: Option<String>,
}

/// The idle process of a container berth makes: it ends at once on `docker stop`.
const IDLE: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

impl ContainerTarget {
    /// `Ok(None)`: not a container URL at all.
    pub fn parse(url: &str) -> Result<Option<ContainerTarget>, RemoteError> {
        let schemes = [
            ("docker-exec://", Engine::Docker, true),
            ("podman-exec://", Engine::Podman, true),
            ("docker://", Engine::Docker, false),
            ("podman://", Engine::Podman, false),
        ];
        let Some((rest, engine, exec)) = schemes
            .iter()
            .find_map(|(scheme, engine, exec)| Some((url.strip_prefix(scheme)?, *engine, *exec)))
        else {
            return Ok(None);
        };
        let bad = |why: &str| RemoteError::BadTarget(format!("{url}: {why}"));
        // The directory begins at `//` if there is one (an image name may hold `/`), else at
        // the first `/`.
        let split = match rest.find("//") {
            Some(i) if !exec => Some((&rest[..i], &rest[i + 1..])),
            _ => rest.find('/').map(|i| rest.split_at(i)),
        };
        let Some((name, dir)) = split else {
            return Err(bad("no directory (docker://IMAGE/dir)"));
        };
        if name.is_empty() || name.starts_with('-') || name.contains(char::is_whitespace) {
            return Err(bad("no container or image name"));
        }
        if dir.len() < 2 || dir.contains('\0') {
            return Err(bad("no directory (docker://IMAGE/dir)"));
        }
        let place = if exec {
            Place::Exec(name.to_string())
        } else {
            Place::Image(name.to_string())
        };
        Ok(Some(ContainerTarget {
            engine,
            place,
            dir: dir.to_string(),
            name: None,
        }))
    }

    /// The container's name: the one given, or the one berth gives a container it makes.
    pub fn container(&self) -> String {
        match &self.place {
            Place::Exec(name) => name.clone(),
            Place::Image(image) => {
                if let Some(name) = &self.name {
                    return name.clone();
                }
                let key = format!("{}\0{image}\0{}", self.engine.program(), self.dir);
                let digest = blake3::hash(key.as_bytes()).to_hex();
                format!("berth-{}", &digest[..12])
            }
        }
    }

    /// The command that runs `script` with `sh` in the container, its standard input and
    /// output the stream.
    pub fn shell(&self, script: &str) -> Command {
        let mut command = Command::new(self.engine.program());
        command.args(["exec", "-i", &self.container(), "sh", "-c", script]);
        command
    }

    /// Makes sure the container runs: for one berth makes, makes it (or starts it again).
    pub fn prepare(&self) -> Result<(), RemoteError> {
        let Place::Image(image) = &self.place else {
            return Ok(());
        };
        let name = self.container();
        match self.running(&name)? {
            Some(true) => return Ok(()),
            Some(false) => return self.engine_run(&["start", &name]).map(drop),
            None => {}
        }
        let volume = format!("{name}-work");
        self.engine_run(&["volume", "create", "--label", "berth.managed=1", &volume])?;
        let mount = format!("type=volume,src={volume},dst={}", self.dir);
        let image_label = format!("berth.image={image}");
        let mut args = vec![
            "run",
            "--detach",
            "--name",
            &name,
            "--label",
            "berth.managed=1",
            "--label",
            &image_label,
            "--network",
            "none",
            "--mount",
            &mount,
        ];
        if self.engine == Engine::Podman {
            args.extend([
                "--ulimit",
                "nofile=4096:4096",
                "--ulimit",
                "nproc=4096:4096",
            ]);
        }
        args.extend(["--entrypoint", "sh", image, "-c", IDLE]);
        match self.engine_run(&args) {
            Ok(_) => Ok(()),
            // Made meanwhile by another berth: fine if it runs now.
            Err(e) if self.running(&name)? != Some(true) => Err(e),
            Err(_) => Ok(()),
        }
    }

    /// Removes a container berth made and its volume (`agent rm` of the agent it was made for);
    /// one without berth's label, or one berth did not make (`docker-exec://`), is left alone.
    /// Returns whether there was one.
    pub fn remove_made(&self) -> Result<bool, RemoteError> {
        let Place::Image(_) = &self.place else {
            return Ok(false);
        };
        let name = self.container();
        let label = [
            "container",
            "inspect",
            "--format",
            "{{index .Config.Labels \"berth.managed\"}}",
            &name,
        ];
        match self.engine_run(&label) {
            Ok(l) if l.trim() == "1" => {}
            Ok(_) => return Ok(false),
            Err(RemoteError::Engine { said, .. }) if said.to_lowercase().contains("no such") => {
                return Ok(false);
            }
            Err(e) => return Err(e),
        }
        self.engine_run(&["rm", "--force", &name])?;
        self.engine_run(&["volume", "rm", "--force", &format!("{name}-work")])?;
        Ok(true)
    }

    /// Whether the container exists (running or not).
    pub fn exists(&self) -> Result<bool, RemoteError> {
        Ok(self.running(&self.container())?.is_some())
    }

    /// Whether the container runs (`None`: there is none of that name).
    fn running(&self, name: &str) -> Result<Option<bool>, RemoteError> {
        let args = [
            "container",
            "inspect",
            "--format",
            "{{.State.Running}}",
            name,
        ];
        match self.engine_run(&args) {
            Ok(out) => Ok(Some(out.trim() == "true")),
            Err(RemoteError::Engine { said, .. }) if said.to_lowercase().contains("no such") => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Runs the engine's client to success, returning what it printed.
    fn engine_run(&self, args: &[&str]) -> Result<String, RemoteError> {
        let program = self.engine.program();
        let shown = format!("{program} {}", args.join(" "));
        let out = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| RemoteError::Spawn {
                command: shown.clone(),
                source,
            })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(RemoteError::Engine {
                command: shown,
                said: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_targets_parse() {
        let t = ContainerTarget::parse("docker-exec://box/srv/work")
            .unwrap()
            .unwrap();
        assert_eq!(
            (t.engine, t.place, t.dir.as_str()),
            (Engine::Docker, Place::Exec("box".into()), "/srv/work")
        );
        let t = ContainerTarget::parse("podman://debian:12/work")
            .unwrap()
            .unwrap();
        assert_eq!(
            (t.engine, t.place, t.dir.as_str()),
            (Engine::Podman, Place::Image("debian:12".into()), "/work")
        );
        let t = ContainerTarget::parse("docker://ghcr.io/acme/tools:1//work/x")
            .unwrap()
            .unwrap();
        assert_eq!(
            (t.place, t.dir.as_str()),
            (Place::Image("ghcr.io/acme/tools:1".into()), "/work/x")
        );
        assert!(ContainerTarget::parse("ssh://box/x").unwrap().is_none());
        for bad in [
            "docker://img",
            "docker:///work",
            "docker://img/",
            "docker-exec://-it/x",
        ] {
            assert!(ContainerTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_made_container_is_named_after_its_engine_image_and_dir() {
        let name = |url| ContainerTarget::parse(url).unwrap().unwrap().container();
        assert_eq!(name("docker://img/a"), name("docker://img/a"));
        assert_ne!(name("docker://img/a"), name("docker://img/b"));
        assert_ne!(name("docker://img/a"), name("podman://img/a"));
        assert!(name("docker://img/a").starts_with("berth-"));
        assert_eq!(name("docker-exec://mine/a"), "mine");
        let args: Vec<_> = ContainerTarget::parse("docker-exec://mine/a")
            .unwrap()
            .unwrap()
            .shell("true")
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args, ["exec", "-i", "mine", "sh", "-c", "true"]);
    }
}
