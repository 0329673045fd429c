//! What the daemon observes in git about the two sides of a pairing: the facts a start is
//! validated on, the pausing causes that git shows (branches, operations, divergence, a missing
//! workspace), and the commits to carry from one side to the other by fast-forward.

use std::path::PathBuf;

use berth_core::pairing::{Commits, Facts, Notice, Operation, Side};
use berth_git::head::{self, Head};
use berth_git::refs::{self, RefError};
use berth_git::workspace::{self, Mirror, WorkspaceError};
use berth_git::{Git, GitError, operation, pairing as gitpair, status};

use super::far_side::{FarError, FarSide};
use crate::failpoints::CARRY_COMMITS;

/// The two repositories of a pairing.
#[derive(Debug, Clone)]
pub struct Repos {
    /// The user's checkout (its top level).
    pub user: Git,
    /// The agent's workspace; for an agent elsewhere the project, which holds the agent's
    /// commits once fetched and keeps its conflicts.
    pub agent: Git,
    /// The agent's workspace (for an agent elsewhere: where it is, for people).
    pub workspace: PathBuf,
    pub name: String,
    /// Where the agent runs when it is elsewhere.
    pub far: Option<FarSide>,
}

/// The agent's side as git shows it now.
#[derive(Debug, Clone, Default)]
pub struct AgentSeen {
    /// Its workspace exists.
    exists: bool,
    /// The branch HEAD names, in full (`None`: a detached HEAD).
    on: Option<String>,
    /// Where its `berth/<agent>` is (the project holds the commit, also for an agent elsewhere).
    tip: Option<String>,
    operation: Option<Operation>,
}

/// Why the agent's side could not be looked at.
#[derive(Debug, thiserror::Error)]
pub enum SeenError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Far(#[from] FarError),
}

/// An agent elsewhere's side, looked at ahead (`None`: a local agent, or look now). Its calls
/// cross the network, so callers make them before they take the daemon's git lock.
pub type FarLook = Option<Result<AgentSeen, SeenError>>;

/// Looks at an agent elsewhere's side now (see [`FarLook`]); nothing for a local agent.
pub fn look_far(r: &Repos) -> FarLook {
    r.far.as_ref().map(|far| far_seen(r, far))
}

/// Looks at the agent's side: its workspace here, or over the link (its new commits fetched
/// into the project) unless `ahead` holds that look already.
fn agent_seen(r: &Repos, ahead: FarLook) -> Result<AgentSeen, SeenError> {
    if let Some(seen) = ahead {
        return seen;
    }
    let Some(far) = &r.far else {
        if !r.workspace_exists() {
            return Ok(AgentSeen::default());
        }
        return Ok(AgentSeen {
            exists: true,
            on: head::head(&r.agent)?.branch().map(str::to_string),
            tip: refs::resolve(&r.agent, &r.branch_ref())?,
            operation: operation::in_progress(&r.agent)?.map(operation_of),
        });
    };
    far_seen(r, far)
}

/// An agent elsewhere's side, over the link; the commit its branch is at fetched into the
/// project if it is new.
fn far_seen(r: &Repos, far: &FarSide) -> Result<AgentSeen, SeenError> {
    let look = far.look()?;
    if let Some(tip) = &look.tip {
        far.fetch(&r.user, tip)?;
    }
    Ok(AgentSeen {
        exists: look.workspace,
        on: look.on,
        tip: look.tip,
        operation: look.operation,
    })
}

/// A branch's short name.
fn short(full: &str) -> &str {
    full.strip_prefix("refs/heads/").unwrap_or(full)
}

impl Repos {
    pub fn branch_ref(&self) -> String {
        workspace::branch_ref(&self.name)
    }

    /// Whether the workspace exists here (an agent elsewhere's is taken to: only its far side
    /// can tell, and says so when looked at).
    pub fn workspace_exists(&self) -> bool {
        self.far.is_some() || self.workspace.join(".git").exists()
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
/// The workspace borrows the project's objects (and the project fetched an agent elsewhere's),
/// so `r.agent` sees both tips.
fn commits(r: &Repos, seen: &AgentSeen) -> Result<Option<(String, String, Commits)>, GitError> {
    let branch = r.branch_ref();
    let (Some(user), Some(agent)) = (refs::resolve(&r.user, &branch)?, seen.tip.clone()) else {
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
    facts_and_status(user, agent, r, no_stash, busy).map(|(facts, _)| facts)
}

/// [`facts`], with the checkout's status they were read from (a start's snapshot, right
/// after, begins from it rather than reading it again).
pub fn facts_and_status(
    user: &Git,
    agent: &str,
    r: Option<&Repos>,
    no_stash: bool,
    busy: Option<String>,
) -> Result<(Facts, status::Status), GitError> {
    let operation = operation::in_progress(user)?.map(operation_of);
    let st = status::status(user, false)?;
    let changes = st.entries.len() as u64;
    let mut facts = Facts {
        agent: agent.to_string(),
        agent_exists: false,
        elsewhere: None,
        agent_branch_exists: false,
        agent_on: None,
        commits: None,
        operation,
        changes,
        no_stash,
        busy,
    };
    let Some(r) = r else {
        return Ok((facts, st));
    };
    let seen = match agent_seen(r, None) {
        Ok(seen) => seen,
        Err(SeenError::Git(e)) => return Err(e),
        Err(SeenError::Far(e)) => {
            let on = r.far.as_ref().map(|f| f.on.clone()).unwrap_or_default();
            let detail = match e {
                FarError::Lost(why) => format!(
                    "it cannot be reached ({why}) — check the connection (`berth agent show \
                     {agent}` says what berth saw) and pair again"
                ),
                FarError::Failed(why) => format!(
                    "its side failed ({why}) — see `berth daemon logs`, and pair again once it \
                     is fixed"
                ),
            };
            facts.elsewhere = Some((on, detail));
            return Ok((facts, st));
        }
    };
    if !seen.exists {
        return Ok((facts, st));
    }
    facts.agent_exists = true;
    facts.agent_branch_exists = seen.tip.is_some();
    facts.agent_on = seen.on.as_deref().map(short).map(str::to_string);
    facts.commits = commits(r, &seen)?.map(|(_, _, c)| c);
    Ok((facts, st))
}

/// Every pausing cause git shows on either side now (an agent elsewhere's as `ahead` shows it,
/// if given).
pub fn notices(r: &Repos, ahead: FarLook) -> Result<Vec<Notice>, GitError> {
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
    let seen = match agent_seen(r, ahead) {
        Ok(seen) => seen,
        Err(SeenError::Git(e)) => return Err(e),
        Err(SeenError::Far(FarError::Lost(detail))) => {
            out.push(Notice::ConnectionLost {
                agent,
                on: r.far.as_ref().map(|f| f.on.clone()).unwrap_or_default(),
                detail,
            });
            return Ok(out);
        }
        Err(SeenError::Far(FarError::Failed(why))) => {
            out.push(Notice::UnexpectedError {
                message: format!("looking at the agent's side: {why}"),
            });
            return Ok(out);
        }
    };
    if !seen.exists {
        out.push(Notice::AgentWorkspaceMissing {
            agent,
            path: r.workspace.display().to_string(),
        });
        return Ok(out);
    }
    if seen.tip.is_none() {
        out.push(Notice::AgentBranchDeleted {
            agent: agent.clone(),
        });
    } else if seen.on.as_deref() != Some(r.branch_ref().as_str()) {
        out.push(Notice::AgentSwitchedBranch {
            agent: agent.clone(),
            actual: seen.on.as_deref().map(short).map(str::to_string),
        });
    }
    if let Some(operation) = seen.operation {
        out.push(Notice::OperationInProgress {
            side: Side::Agent,
            operation,
        });
    }
    if let Some((_, _, c)) = commits(r, &seen)?
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
    if m.side == Side::Agent && r.far.is_some() {
        return Ok(false); // moved there, by the far side, which made its index follow
    }
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
    #[error(transparent)]
    Seen(#[from] SeenError),
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
/// branch. An agent elsewhere's side is as `ahead` shows it, if given.
pub fn carry_commits(r: &Repos, ahead: FarLook) -> Result<Carried, RefSyncError> {
    let seen = agent_seen(r, ahead)?;
    let Some((user, agent, c)) = commits(r, &seen)? else {
        return Ok(Carried::default());
    };
    if let Some(far) = &r.far {
        return carry_far(r, far, user, agent, c);
    }
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

/// [`carry_commits`] with an agent elsewhere: its commits are in the project already (fetched
/// when it was looked at); the user's go there as a bundle and the far side moves its branch.
/// The project's keep-alive ref then names what the workspace there holds.
fn carry_far(
    r: &Repos,
    far: &FarSide,
    user: String,
    agent: String,
    c: Commits,
) -> Result<Carried, RefSyncError> {
    let branch = r.branch_ref();
    let mut carried = Carried::default();
    if c.user_only == 0 && c.agent_only > 0 {
        let followed = gitpair::move_branch_and_index(&r.user, &branch, &user, &agent);
        carried.to_user = c.agent_only;
        carried.moved = Some(moved(r, Side::User, user, agent.clone(), followed)?);
        berth_git::failpoint::hit(CARRY_COMMITS).map_err(carry_failpoint)?;
        keep_alive(r, &agent)?;
    } else if c.agent_only == 0 && c.user_only > 0 {
        far.advance(&r.user, &agent, &user)
            .map_err(|e| RefSyncError::Seen(e.into()))?;
        berth_git::failpoint::hit(CARRY_COMMITS).map_err(carry_failpoint)?;
        keep_alive(r, &user)?;
        carried.to_agent = c.user_only;
        carried.moved = Some(Move {
            side: Side::Agent,
            old: agent,
            new: user,
        });
    }
    Ok(carried)
}

/// Points the project's keep-alive ref of the agent at `tip` (what the workspace elsewhere
/// holds), so the project keeps it.
pub fn keep_alive(r: &Repos, tip: &str) -> Result<(), RefError> {
    let keep = workspace::keep_alive_ref(&r.name);
    let now = refs::resolve(&r.user, &keep)?;
    if now.as_deref() == Some(tip) {
        return Ok(());
    }
    refs::compare_and_swap(
        &r.user,
        &keep,
        now.as_deref(),
        tip,
        "berth: the agent elsewhere holds it",
    )
}

/// The agent's tip, its commits in the project (fetched from elsewhere if need be); `None`: no
/// such branch there. For the start's mirror.
pub fn agent_tip(r: &Repos) -> Result<Option<String>, SeenError> {
    Ok(agent_seen(r, None)?.tip)
}
