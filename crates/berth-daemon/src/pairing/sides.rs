//! The two sides of a pairing as the controller looks at them: the checkout and the agent's
//! workspace (found from the agent's record), what git shows there now, and commits carried
//! between them. Every look that runs git holds the daemon's git lock; the reading and moving
//! itself is [`observe`]'s.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_core::pairing::{Blocker, Notice, blockers};
use berth_git::Git;
use berth_git::head::{self, Head};
use berth_git::workspace;
use berth_store::{AgentRecord, Store};

use super::error::{OpenError, PairingError};
use super::far_side::FarSide;
use super::observe::{self, AgentSeen, Carried, Move, RefSyncError, Repos};
use super::roots::{self, Roots};
use crate::clock::now_ms;
use crate::git_lock::GitLock;

/// How long a branch move's index update is watched.
const INDEX_WATCH: Duration = Duration::from_secs(5);

/// The checkout and the workspace of the agent it is paired with.
pub struct TwoSides {
    pub repos: Repos,
    /// The agent's definition (`None`: not defined in this project).
    pub agent: Option<AgentRecord>,
    root: String,
    store: Store,
    git: GitLock,
    /// The last branch move of ref sync, watched for a while in case a concurrent `git status`
    /// undoes its index update ([`observe::repair_index`]).
    moved: Option<(Move, Instant)>,
    /// What the last look saw of an agent elsewhere, for the carrying of commits right after
    /// it (one look over the network per check, not two).
    far_seen: Option<AgentSeen>,
}

impl TwoSides {
    /// The checkout at `root`, not paired with anyone yet.
    pub fn new(root: &str, store: Store, git: GitLock) -> TwoSides {
        TwoSides {
            repos: Repos {
                user: Git::new(root),
                agent: Git::new("/nonexistent"),
                workspace: PathBuf::new(),
                name: String::new(),
                far: None,
            },
            agent: None,
            root: root.to_string(),
            store,
            git,
            moved: None,
            far_seen: None,
        }
    }

    /// Agent `name` of this project (`None`: not defined here) and the two repositories of a
    /// pairing with it.
    fn with_agent(&self, name: &str) -> (Option<AgentRecord>, Repos) {
        let pid = self.store.project_id(&self.root, now_ms()).ok();
        let rec = pid
            .and_then(|pid| self.store.agent(pid, name).ok().flatten())
            .filter(|a| a.kind == "agent");
        let far = rec.as_ref().and_then(|a| {
            let on = a.remote.as_deref()?;
            FarSide::new(on, &self.root, name)
                .map_err(|e| tracing::warn!(agent = name, "{on}: {e}"))
                .ok()
        });
        let workspace = match (&far, &rec) {
            (Some(far), _) => PathBuf::from(far.location()),
            (None, Some(a)) => PathBuf::from(&a.workspace),
            (None, None) => PathBuf::new(),
        };
        let repos = Repos {
            user: Git::new(&self.root),
            // An agent elsewhere's commits are fetched into the project, and its conflicts kept
            // there.
            agent: if far.is_some() {
                Git::new(&self.root)
            } else {
                Git::new(&workspace)
            },
            workspace,
            name: name.to_string(),
            far,
        };
        (rec, repos)
    }

    /// Points both sides at agent `name` (its record, its workspace).
    pub fn set_agent(&mut self, name: &str) {
        (self.agent, self.repos) = self.with_agent(name);
    }

    /// Both roots and their git dirs (fails when a side is not a repository now).
    pub fn roots(&self) -> Result<Roots, PairingError> {
        let settings = roots::settings(&self.repos.user)?;
        let agent_git_dir = match &self.repos.far {
            Some(_) => PathBuf::new(),
            None => berth_git::pairing::git_dir(&self.repos.agent)?,
        };
        Ok(Roots {
            user: PathBuf::from(&self.root),
            user_git_dir: berth_git::pairing::git_dir(&self.repos.user)?,
            // An agent elsewhere's tree is named as its endpoint names it (errors say where).
            agent: match &self.repos.far {
                Some(far) => PathBuf::from(far.shown()),
                None => self.repos.workspace.clone(),
            },
            agent_git_dir,
            far: self.repos.far.clone(),
            keep_in: self.repos.agent.dir().to_path_buf(),
            branch_ref: self.repos.branch_ref(),
            settings,
        })
    }

    /// What git shows on both sides now (a failure to look is a notice itself). An agent
    /// elsewhere is looked at before the git lock is taken: its calls cross the network.
    pub fn look(&mut self) -> Result<Vec<Notice>, Notice> {
        let ahead = observe::look_far(&self.repos);
        self.far_seen = ahead.as_ref().and_then(|seen| seen.as_ref().ok().cloned());
        let _git = self.git.blocking();
        observe::notices(&self.repos, ahead).map_err(|e| Notice::UnexpectedError {
            message: format!("cannot read git's state: {e}"),
        })
    }

    /// Carries commits between the two copies of the branch; a move is watched for a while.
    pub fn carry(&mut self) -> Result<Carried, RefSyncError> {
        let carried = {
            let ahead = match self.far_seen.take() {
                Some(seen) => Some(Ok(seen)),
                None => observe::look_far(&self.repos),
            };
            let _git = self.git.blocking();
            observe::carry_commits(&self.repos, ahead)
        }?;
        if carried.to_user > 0 || carried.to_agent > 0 {
            self.moved = carried.moved.clone().map(|m| (m, Instant::now()));
        }
        Ok(carried)
    }

    /// Repairs the index of the last branch move if something undid it (see
    /// [`observe::repair_index`]); whether a move is still watched (then look again soon: the
    /// undoing write may still come).
    pub fn repair_moved_index(&mut self) -> bool {
        let Some((m, at)) = &self.moved else {
            return false;
        };
        if at.elapsed() > INDEX_WATCH {
            self.moved = None;
            return false;
        }
        let repaired = {
            let _git = self.git.blocking();
            observe::repair_index(&self.repos, m)
        };
        match repaired {
            Ok(true) => tracing::info!(root = self.root, "the index was put back in step"),
            Ok(false) => {}
            Err(e) => tracing::warn!(root = self.root, "checking the index: {e}"),
        }
        true
    }

    /// What would block switching to `agent` now (read-only; a dirty checkout does not: a
    /// switch keeps the snapshot it has).
    pub fn switch_blockers(
        &self,
        agent: &str,
        no_stash: bool,
    ) -> Result<Vec<Blocker>, PairingError> {
        let (rec, repos) = self.with_agent(agent);
        let facts = {
            let _git = self.git.blocking();
            observe::facts(
                &self.repos.user,
                agent,
                rec.is_some().then_some(&repos),
                no_stash,
                None,
            )
            .map_err(PairingError::GitState)?
        };
        Ok(blockers(&facts)
            .into_iter()
            .filter(|b| !matches!(b, Blocker::DirtyNoStash { .. }))
            .collect())
    }

    /// Where the checkout is, and where its copy of `agent`'s branch is (before a start).
    pub fn before_start(&self, agent: &str) -> Result<(Head, Option<String>), OpenError> {
        let _git = self.git.blocking();
        let head = head::head(&self.repos.user)?;
        let mirror = berth_git::refs::resolve(&self.repos.user, &workspace::branch_ref(agent))?;
        Ok((head, mirror))
    }

    /// Where the checkout's copy of `agent`'s branch is (`None`: not there, or unreadable).
    pub fn mirror_of(&self, agent: &str) -> Option<String> {
        let _git = self.git.blocking();
        berth_git::refs::resolve(&self.repos.user, &workspace::branch_ref(agent))
            .ok()
            .flatten()
    }
}
