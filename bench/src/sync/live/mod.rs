//! A tool keeping two directories in sync continuously, started and stopped the same way for
//! every tool: its processes, its own signal that it has started, and its own idea of idle.

mod berth;
mod syncthing;
mod unison;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use super::Env;
use super::group::Group;
use super::tools::Tool;
use crate::remote::sshd::Client;
use crate::remote::traffic::{self, Bytes};

enum Kind {
    Berth(berth::Berth),
    Unison,
    Syncthing(Box<syncthing::Pair>),
}

pub struct Live {
    groups: Vec<Group>,
    kind: Kind,
    require_ready: bool,
    /// The ssh server beta is reached through, if it is.
    ssh: Option<Client>,
}

/// Starts `tool` between `alpha` and `beta` (through `env.ssh` when set); its homes, state and
/// logs go under `work`.
pub fn start(
    tool: Tool,
    env: &Env,
    work: &Path,
    alpha: &Path,
    beta: &Path,
) -> Result<Live, String> {
    let (groups, kind) = match tool {
        Tool::Berth => {
            let (g, b) = berth::start(env, work, alpha, beta)?;
            (vec![g], Kind::Berth(b))
        }
        Tool::Unison => (vec![unison::start(env, work, alpha, beta)?], Kind::Unison),
        Tool::Syncthing if env.ssh.is_some() => {
            return Err("Syncthing is not measured over ssh".into());
        }
        Tool::Syncthing => {
            let (g, p) = syncthing::start(work, alpha, beta)?;
            (g, Kind::Syncthing(Box::new(p)))
        }
        Tool::Cp | Tool::Rsync => {
            return Err(format!("{} does not sync continuously", tool.name()));
        }
    };
    Ok(Live {
        groups,
        kind,
        require_ready: !env.berth_no_ready,
        ssh: env.ssh.clone(),
    })
}

/// The command for one copy of `src` into `dst` (which does not exist yet for `cp` and `rsync`,
/// and is an empty directory for the others); `dst` is reached through `env.ssh` when set.
pub fn copy_command(
    tool: Tool,
    env: &Env,
    work: &Path,
    src: &Path,
    dst: &Path,
) -> Result<Command, String> {
    Ok(match tool {
        Tool::Cp if env.ssh.is_some() => return Err("cp does not copy over ssh".into()),
        Tool::Cp => {
            let mut c = Command::new("cp");
            c.arg("-a").args([src, dst]);
            c
        }
        Tool::Rsync => {
            let mut c = Command::new("rsync");
            c.arg("-a");
            match &env.ssh {
                Some(ssh) => c
                    .arg("-e")
                    .arg(ssh.command())
                    .arg(format!("{}/", src.display()))
                    .arg(format!("127.0.0.1:{}/", dst.display())),
                None => c
                    .arg(format!("{}/", src.display()))
                    .arg(format!("{}/", dst.display())),
            };
            c
        }
        Tool::Unison => unison::once_command(env, work, src, dst)?,
        Tool::Berth => berth::once_command(env, work, src, dst)?,
        Tool::Syncthing => return Err("Syncthing has no one-shot copy".into()),
    })
}

impl Live {
    /// The leaders of the tool's process groups (their descendants are found from these).
    /// Over ssh the server is one too: what runs on the far side runs under it.
    pub fn roots(&self) -> Vec<u32> {
        let mut roots: Vec<u32> = self.groups.iter().map(Group::pid).collect();
        roots.extend(self.ssh.as_ref().map(|s| s.server_pid));
        roots
    }

    /// The bytes the tool's ssh connections have carried so far (`None` without ssh).
    pub fn traffic(&self) -> Option<Bytes> {
        let ssh = self.ssh.as_ref()?;
        traffic::to_port(ssh.port)
            .map_err(|e| eprintln!("  cannot count bytes: {e}"))
            .ok()
    }

    /// An error with the log's tail if any of the tool's processes has exited.
    pub fn check_running(&mut self) -> Result<(), String> {
        self.groups.iter_mut().try_for_each(Group::check_running)
    }

    /// The tool's own signal that it is up: berth's ready line (the initial sync is done and it
    /// is watching), Syncthing's devices connected. Unison gives none; the harness's
    /// convergence and canary checks cover it.
    pub fn wait_started(&mut self, deadline: Instant) -> Result<(), String> {
        self.check_running()?;
        match &mut self.kind {
            Kind::Berth(b) if self.require_ready => b.wait_ready(&mut self.groups[0], deadline),
            Kind::Berth(_) | Kind::Unison => Ok(()),
            Kind::Syncthing(p) => p.wait_connected(deadline),
        }
    }

    /// The tool's own idea of idle where it has one (Syncthing's folder state).
    pub fn wait_idle(&mut self, deadline: Instant) -> Result<(), String> {
        self.check_running()?;
        match &self.kind {
            Kind::Syncthing(p) => p.wait_idle(deadline),
            Kind::Berth(_) | Kind::Unison => Ok(()),
        }
    }

    /// Stops every process of the tool (also done on drop).
    pub fn stop(&mut self) {
        self.groups.iter_mut().for_each(Group::stop);
    }
}
