//! Agent workspaces: cheap clones of the project that borrow its objects, and the refs that keep
//! the project and the workspace safe for each other.
//!
//! - The workspace is `git clone --shared`: its `objects/info/alternates` points at the
//!   project's object store, so creating one costs about a checkout, not a copy of history.
//! - Borrowing is only safe while the project keeps those objects: the project always holds
//!   `refs/berth/agents/<name>` at the agent's tip (fetched into the project, so the agent's own
//!   objects are there too). `git gc --prune=now` in the project can then never break the
//!   workspace.
//! - The agent's branch is mirrored into the project as `refs/heads/berth/<name>` by
//!   fast-forward only, from where berth last put it. If the user moved that branch, berth stops
//!   mirroring it and says so ([`Mirror::UserMoved`]) instead of overwriting it.

use std::path::Path;

use crate::git::{Access, Git, GitError};
use crate::refs::{self, RefError};

/// The agent's branch name (short).
pub fn branch(name: &str) -> String {
    format!("berth/{name}")
}

/// The agent's branch as a full ref (in the workspace and, mirrored, in the project).
pub fn branch_ref(name: &str) -> String {
    format!("refs/heads/berth/{name}")
}

/// The project's keep-alive ref for an agent.
pub fn keep_alive_ref(name: &str) -> String {
    format!("refs/berth/agents/{name}")
}

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("{0} already exists; choose another agent name or remove it")]
    PathExists(String),
    #[error(
        "the project already has a branch {branch} that berth did not create; rename it or choose \
         another agent name"
    )]
    BranchExists { branch: String },
    #[error("the project already keeps an agent named {0} (refs/berth/agents/{0})")]
    AgentExists(String),
    #[error("{0} is not a commit in the project")]
    BadBase(String),
    #[error(transparent)]
    Ref(#[from] RefError),
    #[error(transparent)]
    Git(#[from] GitError),
}

/// Creates the workspace of agent `name` at `path`, on `berth/<name>` at `base` (any commit-ish
/// of the project). Every precondition is checked before anything is created.
pub fn create(project: &Git, path: &Path, name: &str, base: &str) -> Result<Git, WorkspaceError> {
    if path.exists() {
        return Err(WorkspaceError::PathExists(path.display().to_string()));
    }
    let base_oid = check_new(project, name, base)?;
    let top = project.query(&["rev-parse", "--show-toplevel"])?;
    let parent = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(|e| GitError::Parse {
        args: "create workspace directory".into(),
        detail: e.to_string(),
    })?;
    let path_arg = path.display().to_string();
    Git::new(parent).run(
        Access::Write,
        &[
            "clone",
            "--quiet",
            "--shared",
            "--no-checkout",
            "--origin",
            "project",
            "--",
            &top,
            &path_arg,
        ],
    )?;
    let ws = Git::new(path);
    ws.run(
        Access::Write,
        &["checkout", "--quiet", "-b", &branch(name), &base_oid],
    )?;
    // Only the agent's branch may point into borrowed history: the project keeps that alive,
    // but not whatever the clone's other refs and reflogs point at.
    ws.run(Access::Write, &["remote", "remove", "project"])?;
    let others = ws.query(&[
        "for-each-ref",
        "--format=%(refname)",
        "refs/heads/",
        "refs/tags/",
    ])?;
    for r in others.lines().filter(|r| *r != branch_ref(name)) {
        ws.run(Access::Write, &["update-ref", "--no-deref", "-d", r])?;
    }
    ws.run(
        Access::Write,
        &["reflog", "expire", "--expire=now", "--all"],
    )?;
    claim_refs(project, name, &base_oid)?;
    Ok(ws)
}

/// Checks that agent `name` can be made in `project` at `base`; returns the commit `base` names.
fn check_new(project: &Git, name: &str, base: &str) -> Result<String, WorkspaceError> {
    let base_oid =
        refs::resolve(project, base)?.ok_or_else(|| WorkspaceError::BadBase(base.into()))?;
    if refs::resolve(project, &branch_ref(name))?.is_some() {
        return Err(WorkspaceError::BranchExists {
            branch: branch(name),
        });
    }
    if refs::resolve(project, &keep_alive_ref(name))?.is_some() {
        return Err(WorkspaceError::AgentExists(name.into()));
    }
    Ok(base_oid)
}

/// The keep-alive ref and `berth/<name>` made at `oid` (create-only).
fn claim_refs(project: &Git, name: &str, oid: &str) -> Result<(), WorkspaceError> {
    for r in [keep_alive_ref(name), branch_ref(name)] {
        refs::compare_and_swap(project, &r, None, oid, "berth: agent created")?;
    }
    Ok(())
}

/// For an agent whose workspace is elsewhere (SPEC §10.4): makes `berth/<name>` and its
/// keep-alive ref at `base` in the project, and a bundle of that branch at `bundle` for the far
/// side to clone. Returns the commit `base` named.
pub fn create_elsewhere(
    project: &Git,
    name: &str,
    base: &str,
    bundle: &Path,
) -> Result<String, WorkspaceError> {
    let base_oid = check_new(project, name, base)?;
    claim_refs(project, name, &base_oid)?;
    let bundle_arg = bundle.display().to_string();
    project.run(
        Access::Write,
        &[
            "bundle",
            "create",
            "--quiet",
            &bundle_arg,
            &branch_ref(name),
        ],
    )?;
    Ok(base_oid)
}

/// What happened to the project's copy of the agent's branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mirror {
    /// Already at the agent's tip.
    UpToDate,
    /// Fast-forwarded.
    Moved { from: String, to: String },
    /// The user moved (or deleted) the project's branch; berth left it alone.
    UserMoved {
        branch_at: Option<String>,
        agent_at: String,
    },
    /// The agent's history is not a fast-forward of what was mirrored (it rewrote history).
    AgentRewrote { mirrored: String, agent_at: String },
}

/// Brings the agent's tip into the project: objects and keep-alive ref always, the branch by
/// fast-forward only from where berth last put it.
pub fn sync_refs(project: &Git, workspace: &Git, name: &str) -> Result<Mirror, WorkspaceError> {
    let ws_top = workspace.query(&["rev-parse", "--show-toplevel"])?;
    sync_refs_from(project, &ws_top, name)
}

/// [`sync_refs`] from any repository git can fetch from: a workspace's top level, or a bundle
/// of the agent's branch an agent elsewhere sent.
pub fn sync_refs_from(project: &Git, source: &str, name: &str) -> Result<Mirror, WorkspaceError> {
    let keep = keep_alive_ref(name);
    let last = refs::resolve(project, &keep)?;
    let ws_top = source;
    // Objects and the keep-alive ref in one step; `+` because the agent may rewrite history and
    // the project must still keep whatever the workspace now borrows.
    let refspec = format!("+{}:{keep}", branch_ref(name));
    project.run(
        Access::Write,
        &[
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            ws_top,
            &refspec,
        ],
    )?;
    let tip =
        refs::resolve(project, &keep)?.ok_or_else(|| WorkspaceError::AgentExists(name.into()))?;
    let mirrored = refs::resolve(project, &branch_ref(name))?;
    match (&last, &mirrored) {
        (_, Some(m)) if *m == tip => Ok(Mirror::UpToDate),
        (Some(l), Some(m)) if l == m => {
            match refs::fast_forward(project, &branch_ref(name), Some(m), &tip) {
                Ok(()) => Ok(Mirror::Moved {
                    from: m.clone(),
                    to: tip,
                }),
                Err(RefError::NotFastForward { .. }) => Ok(Mirror::AgentRewrote {
                    mirrored: m.clone(),
                    agent_at: tip,
                }),
                Err(e) => Err(e.into()),
            }
        }
        _ => Ok(Mirror::UserMoved {
            branch_at: mirrored,
            agent_at: tip,
        }),
    }
}

/// What removing a workspace would lose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unsaved {
    /// Paths with uncommitted changes (untracked included).
    pub dirty: Vec<String>,
    /// The agent's tip is on no project branch that survives the removal.
    pub commits: bool,
}

impl Unsaved {
    pub fn is_empty(&self) -> bool {
        self.dirty.is_empty() && !self.commits
    }
}

/// Brings the agent's commits into the project, then says what removing the workspace (and,
/// with `delete_branch`, the project's `berth/<name>`) would lose.
pub fn unsaved(
    project: &Git,
    ws: &Git,
    name: &str,
    delete_branch: bool,
) -> Result<Unsaved, WorkspaceError> {
    sync_refs(project, ws, name)?;
    let st = crate::status::status(ws, false)?;
    let dirty = st
        .entries
        .iter()
        .map(|e| String::from_utf8_lossy(e.path()).into_owned())
        .collect();
    Ok(Unsaved {
        dirty,
        commits: commits_unsaved(project, name, delete_branch)?,
    })
}

/// Whether the agent's tip as last mirrored is on no project branch that survives removing it
/// (with `delete_branch`, `berth/<name>` does not).
pub fn commits_unsaved(
    project: &Git,
    name: &str,
    delete_branch: bool,
) -> Result<bool, WorkspaceError> {
    let Some(tip) = refs::resolve(project, &keep_alive_ref(name))? else {
        return Ok(false);
    };
    let holders = project.query(&[
        "for-each-ref",
        "--format=%(refname)",
        "--contains",
        &tip,
        "refs/heads/",
    ])?;
    Ok(!holders
        .lines()
        .any(|r| !(delete_branch && r == branch_ref(name))))
}

/// Copies the workspace's snapshot `id` into the project (objects and ref), so removing the
/// workspace cannot take it along.
pub fn adopt_snapshot(project: &Git, ws: &Git, id: &str) -> Result<(), WorkspaceError> {
    let ws_top = ws.query(&["rev-parse", "--show-toplevel"])?;
    adopt_snapshot_from(project, &ws_top, id)
}

/// [`adopt_snapshot`] from any repository git can fetch from (a bundle holding its ref).
pub fn adopt_snapshot_from(project: &Git, source: &str, id: &str) -> Result<(), WorkspaceError> {
    let ws_top = source;
    let r = crate::snapshot::refname(id);
    project.run(
        Access::Write,
        &[
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            ws_top,
            &format!("{r}:{r}"),
        ],
    )?;
    Ok(())
}

/// Removes the workspace and the keep-alive ref (and with `delete_branch`, the project's branch).
/// Call only once [`unsaved`] is empty or its state was saved.
pub fn remove(
    project: &Git,
    path: &Path,
    name: &str,
    delete_branch: bool,
) -> Result<(), WorkspaceError> {
    if path.exists() {
        std::fs::remove_dir_all(path).map_err(|e| GitError::Parse {
            args: format!("remove {}", path.display()),
            detail: e.to_string(),
        })?;
    }
    forget(project, name, delete_branch)
}

/// Deletes the agent's keep-alive ref (and with `delete_branch`, the project's branch): the
/// project's side of [`remove`], also for an agent whose workspace was elsewhere.
pub fn forget(project: &Git, name: &str, delete_branch: bool) -> Result<(), WorkspaceError> {
    let mut doomed = vec![keep_alive_ref(name)];
    if delete_branch {
        doomed.push(branch_ref(name));
    }
    for r in doomed {
        if let Some(old) = refs::resolve(project, &r)? {
            refs::delete(project, &r, &old)?;
        }
    }
    Ok(())
}
