//! The two trees of a pairing: where they are, their git dirs, and the settings syncing them
//! reads from the checkout's git config.

use std::path::PathBuf;
use std::time::Duration;

use berth_core::pairing::stop_timeout;
use berth_git::{Access, Git};
use berth_sync::engine::{DEFAULT_MAX_SIZE, Sides};
use berth_sync::scan::Scanner;

use super::error::PairingError;
use super::far_side::FarSide;
use super::gate::{AgentGit, gate};
use super::tree::AgentTree;

/// The two roots and their git dirs.
#[derive(Debug, Clone)]
pub struct Roots {
    pub user: PathBuf,
    pub user_git_dir: PathBuf,
    /// The agent's workspace (for an agent elsewhere: its endpoint's name, which its errors'
    /// paths begin with).
    pub agent: PathBuf,
    /// Its git dir (none for an agent elsewhere: the far side reads it).
    pub agent_git_dir: PathBuf,
    /// Where the agent is when it runs elsewhere.
    pub far: Option<FarSide>,
    /// The repository conflicts' losing versions are kept in: the agent's workspace, or for an
    /// agent elsewhere the project.
    pub keep_in: PathBuf,
    /// `refs/heads/berth/<agent>`.
    pub branch_ref: String,
    /// What the checkout's git config says (exclusions, size limit, stop timeout).
    pub settings: Settings,
}

/// Pairing's settings from the checkout's git config: they live with the repository, like its
/// other ignore rules.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `berth.exclude` (repeatable): extra exclusions, gitignore syntax.
    pub exclude: Vec<String>,
    /// `berth.maxSize`: bytes (`k`/`m`/`g` suffixes as git reads them), else the engine's
    /// default.
    pub max_size: u64,
    /// `berth.stopTimeout`: how long a flush (a stop's final sync above all) may wait for the
    /// sync loop's answer (`berth_core::pairing::stop_timeout`).
    pub stop_timeout: Duration,
}

/// Reads [`Settings`] from `user`'s git config.
pub fn settings(user: &Git) -> Result<Settings, PairingError> {
    let exclude = user.output(Access::Read, &["config", "--get-all", "berth.exclude"])?;
    let exclude = if exclude.success() {
        exclude.text().lines().map(str::to_string).collect()
    } else {
        vec![]
    };
    let size = user.output(
        Access::Read,
        &["config", "--type=int", "--get", "berth.maxSize"],
    )?;
    let max_size = if size.success() {
        size.text()
            .trim()
            .parse::<u64>()
            .map_err(|_| PairingError::MaxSize(size.text()))?
    } else if size.code == 1 {
        DEFAULT_MAX_SIZE
    } else {
        return Err(PairingError::Setting {
            key: "berth.maxSize",
            message: String::from_utf8_lossy(&size.stderr).trim().to_string(),
        });
    };
    let timeout = user.output(Access::Read, &["config", "--get", "berth.stopTimeout"])?;
    let setting = match timeout.code {
        0 => Some(timeout.text()),
        1 => None,
        _ => {
            return Err(PairingError::Setting {
                key: "berth.stopTimeout",
                message: String::from_utf8_lossy(&timeout.stderr).trim().to_string(),
            });
        }
    };
    let stop_timeout = stop_timeout(setting.as_deref().map(str::trim))
        .map_err(|e| PairingError::StopTimeout(e.0))?;
    Ok(Settings {
        exclude,
        max_size,
        stop_timeout,
    })
}

impl Roots {
    /// Both trees with the pairing's gate, size limit and extra exclusions (an agent elsewhere's
    /// over a connection made now).
    pub fn sides(&self) -> Result<Sides<Scanner, AgentTree>, PairingError> {
        let max = self.settings.max_size;
        let (agent, agent_git) = match &self.far {
            None => (
                AgentTree::Here(Box::new(Scanner::new(&self.agent, max))),
                AgentGit::Here(self.agent_git_dir.clone()),
            ),
            Some(far) => (
                AgentTree::Far(Box::new(
                    far.endpoint(max)
                        .map_err(|e| PairingError::Far(e.to_string()))?,
                )),
                AgentGit::Far(Box::new(far.clone())),
            ),
        };
        let mut sides = Sides::with(Scanner::new(&self.user, max), agent);
        sides
            .exclude(&self.settings.exclude)
            .map_err(|e| PairingError::Exclude(Box::new(e)))?;
        sides.gate = Some(gate(
            self.user_git_dir.clone(),
            agent_git,
            self.branch_ref.clone(),
        ));
        // Every deletion waits until its side is quiet: a tree being emptied is then seen whole
        // (and halts) before even its first files are deleted on the other side.
        sides.deletion_burst = 0;
        Ok(sides)
    }
}
