//! What the daemon observes in git about the two sides of a pairing: the facts a start is
//! validated on, the pausing causes that git shows (branches, operations, divergence, a missing
//! workspace), and the commits to carry from one side to the other by fast-forward.

use std::path::PathBuf;

use berth_core::pairing::{Commits, Facts, Notice, Operation, Side};
use berth_git::head::{self, Head};
use berth_git::refs::{self, RefError};
use berth_git::workspace::{self, Mirror, WorkspaceError};
use berth_git::{Git, GitError, operation, pairing as gitpair, status};

use crate::failpoints::CARRY_COMMITS;

/// The two repositories of a pairing.
#[derive(Debug, Clone)]
pub struct Repos {
    /// The user's checkout (its top level).
    pub user: Git,
    /// The agent's workspace.
    pub agent: Git,
    pub workspace: PathBuf,
    pub name: String,
}

impl Repos {
    pub fn branch_ref(&self) -> String {
        workspace::branch_ref(&self.name)
    }

    pub fn workspace_exists(&self) -> bool {
        self.workspace.join(".git").exists()
    }
}

/// berth-git's operation as pairing names it.
pub fn operation_of(op: operation::Operation) -> Operation {
    use operation::Operation as G;
    match op {
        G::Merge => Operation::Merge,
        G::Rebase { .. } => Operation::Rebase,
        G::Am => Operation::Am,
        G::CherryPick => Operation::CherryPick,
        G::Revert => Operation::Revert,
        G::Bisect => Operation::Bisect,
    }
}

/// The two copies of the branch compared: commits only the user's copy has, only the agent's.
/// The workspace borrows the project's objects, so it sees both tips.
fn commits(r: &Repos) -> Result<Option<(String, String, Commits)>, GitError> {
    let branch = r.branch_ref();
    let (Some(user), Some(agent)) = (
        refs::resolve(&r.user, &branch)?,
        refs::resolve(&r.agent, &branch)?,
    ) else {
        return Ok(None);
    };
    let (user_only, agent_only) = gitpair::ahead_behind(&r.agent, &user, &agent)?;
    Ok(Some((
        user,
        agent,
        Commits {
            user_only,
            agent_only,
        },
    )))
}

/// Everything a start is validated on, read-only. `r` is `None` when the agent is not
/// defined in this project.
pub fn facts(
    user: &Git,
    agent: &str,
    r: Option<&Repos>,
    no_stash: bool,
    busy: Option<String>,
) -> Result<Facts, GitError> {
    let operation = operation::in_progress(user)?.map(operation_of);
    let changes = status::status(user, false)?.entries.len() as u64;
    let mut facts = Facts {
        agent: agent.to_string(),
        agent_exists: false,
        agent_branch_exists: false,
        agent_on: None,
        commits: None,
        operation,
        changes,
        no_stash,
        busy,
    };
    let Some(r) = r.filter(|r| r.workspace_exists()) else {
        return Ok(facts);
    };
    facts.agent_exists = true;
    facts.agent_branch_exists = refs::resolve(&r.agent, &r.branch_ref())?.is_some();
    facts.agent_on = head::head(&r.agent)?.short_branch().map(str::to_string);
    facts.commits = commits(r)?.map(|(_, _, c)| c);
    Ok(facts)
}

/// Every pausing cause git shows on either side now.
pub fn notices(r: &Repos) -> Result<Vec<Notice>, GitError> {
    let agent = r.name.clone();
    let mut out = Vec::new();
    match head::head(&r.user)? {
        h if h.branch() == Some(r.branch_ref().as_str()) => {}
        Head::Detached { .. } => out.push(Notice::UserDetachedHead {
            agent: agent.clone(),
        }),
        h => out.push(Notice::UserSwitchedBranch {
            agent: agent.clone(),
            actual: h.short_branch().unwrap_or_default().to_string(),
        }),
    }
    if let Some(op) = operation::in_progress(&r.user)? {
        out.push(Notice::OperationInProgress {
            side: Side::User,
            operation: operation_of(op),
        });
    }
    if !r.workspace_exists() {
        out.push(Notice::AgentWorkspaceMissing {
            agent,
            path: r.workspace.display().to_string(),
        });
        return Ok(out);
    }
    if refs::resolve(&r.agent, &r.branch_ref())?.is_none() {
        out.push(Notice::AgentBranchDeleted {
            agent: agent.clone(),
        });
    } else {
        let h = head::head(&r.agent)?;
        if h.branch() != Some(r.branch_ref().as_str()) {
            out.push(Notice::AgentSwitchedBranch {
                agent: agent.clone(),
                actual: h.short_branch().map(str::to_string),
            });
        }
    }
    if let Some(op) = operation::in_progress(&r.agent)? {
        out.push(Notice::OperationInProgress {
            side: Side::Agent,
            operation: operation_of(op),
        });
    }
    if let Some((_, _, c)) = commits(r)?
        && c.user_only > 0
        && c.agent_only > 0
    {
        out.push(Notice::Diverged { agent });
    }
    Ok(out)
}

/// Commits carried by one round of ref sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carried {
    pub to_user: u64,
    pub to_agent: u64,
    /// The side whose branch (and index) moved, from and to which commit.
    pub moved: Option<Move>,
}

/// A branch moved by ref sync, with the index following.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub side: Side,
    pub old: String,
    pub new: String,
}

impl Move {
    fn git<'a>(&self, r: &'a Repos) -> &'a Git {
        match self.side {
            Side::User => &r.user,
            Side::Agent => &r.agent,
        }
    }
}

/// The move of `side`'s branch from `old` to `new`, once it happened. If the branch moved but
/// its index could not follow (git's index lock was held by someone else), the move still
/// counts: [`repair_index`] brings the index along later.
fn moved(
    r: &Repos,
    side: Side,
    old: String,
    new: String,
    followed: Result<(), RefError>,
) -> Result<Move, RefSyncError> {
    let m = Move { side, old, new };
    if let Err(e) = followed {
        let at = refs::resolve(m.git(r), &r.branch_ref())?;
        if at.as_deref() != Some(m.new.as_str()) {
            return Err(e.into());
        }
        tracing::info!("the index follows the branch later: {e}");
    }
    Ok(m)
}

/// Puts the index back in step with a branch move when it is not: its update failed (someone
/// held git's index lock), or a `git status` running meanwhile (a shell prompt does that
/// constantly) wrote back the index it had read before. Either way the index is exactly the old
/// commit's tree and is moved once more. Anything else (the user staged something meanwhile) is
/// left alone. Whether it had to repair.
pub fn repair_index(r: &Repos, m: &Move) -> Result<bool, GitError> {
    let git = m.git(r);
    let tree = |c: &str| git.query(&["rev-parse", "--verify", &format!("{c}^{{tree}}")]);
    let Ok(index) = gitpair::index_tree(git) else {
        return Ok(false); // unmerged entries: not ours to touch
    };
    if index != tree(&m.old)? || tree(&m.old)? == tree(&m.new)? {
        return Ok(false);
    }
    gitpair::index_follow(git, &m.old, &m.new)?;
    Ok(true)
}

#[derive(Debug, thiserror::Error)]
pub enum RefSyncError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Ref(#[from] RefError),
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
}

fn carry_failpoint(e: std::io::Error) -> RefSyncError {
    RefSyncError::Git(GitError::Parse {
        args: format!("failpoint {CARRY_COMMITS}"),
        detail: e.to_string(),
    })
}

/// Carries commits between the two copies of `berth/<agent>` by fast-forward only; the side
/// whose branch moved gets its index updated (its files are file sync's business). Diverged
/// copies are left alone ([`notices`] reports them). Call only while both sides are on the
/// branch.
pub fn carry_commits(r: &Repos) -> Result<Carried, RefSyncError> {
    let Some((user, agent, c)) = commits(r)? else {
        return Ok(Carried::default());
    };
    let branch = r.branch_ref();
    let mut carried = Carried::default();
    if c.user_only == 0 && c.agent_only > 0 {
        // The agent's objects into the project (and its keep-alive ref), then the user's copy.
        let followed = match workspace::sync_refs(&r.user, &r.agent, &r.name)? {
            Mirror::Moved { from, to } => {
                gitpair::index_follow(&r.user, &from, &to).map_err(Into::into)
            }
            _ => gitpair::move_branch_and_index(&r.user, &branch, &user, &agent),
        };
        carried.to_user = c.agent_only;
        carried.moved = Some(moved(r, Side::User, user, agent, followed)?);
        berth_git::failpoint::hit(CARRY_COMMITS).map_err(carry_failpoint)?;
    } else if c.agent_only == 0 && c.user_only > 0 {
        let followed = gitpair::move_branch_and_index(&r.agent, &branch, &agent, &user);
        let m = moved(r, Side::Agent, agent, user, followed)?;
        berth_git::failpoint::hit(CARRY_COMMITS).map_err(carry_failpoint)?;
        // The project keeps what the workspace now borrows.
        workspace::sync_refs(&r.user, &r.agent, &r.name)?;
        carried.to_agent = c.user_only;
        carried.moved = Some(m);
    }
    Ok(carried)
}
