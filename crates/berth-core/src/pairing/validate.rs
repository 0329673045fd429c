//! The `validate` step of a start: from what the daemon observed ([`Facts`]), every blocker
//! of SPEC §6.3 at once — so the user fixes them all in one go, not one per attempt.

use super::blocker::Blocker;
use super::operation::Operation;
use super::text::agent_branch;

/// How the user's `berth/<agent>` (in the checkout's repository) and the agent's (in its
/// workspace) relate: commits only one side has. Unrelated histories count every commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commits {
    pub user_only: u64,
    pub agent_only: u64,
}

/// What the daemon observed before a start, read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub agent: String,
    /// The agent is defined in this project and its workspace exists.
    pub agent_exists: bool,
    /// The agent runs elsewhere and cannot be paired with now: its `--on` URL, and why (with
    /// what to do).
    pub elsewhere: Option<(String, String)>,
    /// `berth/<agent>` exists in the agent's workspace.
    pub agent_branch_exists: bool,
    /// The branch the workspace has checked out (`None`: a detached HEAD).
    pub agent_on: Option<String>,
    /// The two copies of the branch compared (`None`: the user has no copy yet, which is fine:
    /// the start creates it at the agent's commit).
    pub commits: Option<Commits>,
    /// An operation in progress in the user's checkout.
    pub operation: Option<Operation>,
    /// Changed paths in the user's checkout (tracked changes and untracked files).
    pub changes: u64,
    /// `--no-stash` was given.
    pub no_stash: bool,
    /// Another pairing transition in progress for this project, described.
    pub busy: Option<String>,
}

/// Every blocker that `facts` show, in the order of SPEC §6.3 (empty: the start may go on).
/// Facts about the agent's branch are only judged when the agent exists and its branch is
/// checked out: with no workspace there is nothing to compare.
pub fn blockers(facts: &Facts) -> Vec<Blocker> {
    let agent = || facts.agent.clone();
    let mut out = Vec::new();
    if let Some((on, detail)) = &facts.elsewhere {
        out.push(Blocker::AgentElsewhere {
            agent: agent(),
            on: on.clone(),
            detail: detail.clone(),
        });
    } else if !facts.agent_exists {
        out.push(Blocker::AgentMissing { agent: agent() });
    } else if !facts.agent_branch_exists {
        out.push(Blocker::AgentBranchMissing { agent: agent() });
    } else if facts.agent_on.as_deref() != Some(agent_branch(&facts.agent).as_str()) {
        out.push(Blocker::AgentWrongBranch {
            agent: agent(),
            actual: facts.agent_on.clone(),
        });
    } else if let Some(c) = facts.commits {
        match (c.user_only, c.agent_only) {
            (0, _) => {}
            (user_only, 0) => out.push(Blocker::UserAhead {
                agent: agent(),
                commits: user_only,
            }),
            (user_only, agent_only) => out.push(Blocker::Diverged {
                agent: agent(),
                user_only,
                agent_only,
            }),
        }
    }
    if let Some(operation) = facts.operation {
        out.push(Blocker::OperationInProgress { operation });
    }
    if facts.no_stash && facts.changes > 0 {
        out.push(Blocker::DirtyNoStash {
            changes: facts.changes,
        });
    }
    if let Some(transition) = &facts.busy {
        out.push(Blocker::PairingBusy {
            transition: transition.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clear() -> Facts {
        Facts {
            agent: "fixer".into(),
            agent_exists: true,
            elsewhere: None,
            agent_branch_exists: true,
            agent_on: Some("berth/fixer".into()),
            commits: Some(Commits {
                user_only: 0,
                agent_only: 3,
            }),
            operation: None,
            changes: 5,
            no_stash: false,
            busy: None,
        }
    }

    fn codes(f: &Facts) -> Vec<&'static str> {
        blockers(f).iter().map(Blocker::code).collect()
    }

    #[test]
    fn nothing_blocks_when_the_agent_is_ahead_or_equal_or_the_user_has_no_copy() {
        assert!(blockers(&clear()).is_empty());
        let equal = Facts {
            commits: Some(Commits {
                user_only: 0,
                agent_only: 0,
            }),
            ..clear()
        };
        assert!(blockers(&equal).is_empty());
        let fresh = Facts {
            commits: None,
            ..clear()
        };
        assert!(blockers(&fresh).is_empty());
        // Changes are snapshotted unless --no-stash.
        assert!(
            blockers(&Facts {
                changes: 40,
                ..clear()
            })
            .is_empty()
        );
    }

    #[test]
    fn each_blocker_alone() {
        let cases: Vec<(Facts, &str)> = vec![
            (
                Facts {
                    agent_exists: false,
                    ..clear()
                },
                "agent_missing",
            ),
            (
                Facts {
                    elsewhere: Some(("ssh://box".into(), "unreachable".into())),
                    ..clear()
                },
                "agent_elsewhere",
            ),
            (
                Facts {
                    agent_branch_exists: false,
                    ..clear()
                },
                "agent_branch_missing",
            ),
            (
                Facts {
                    agent_on: Some("main".into()),
                    ..clear()
                },
                "agent_wrong_branch",
            ),
            (
                Facts {
                    agent_on: None,
                    ..clear()
                },
                "agent_wrong_branch",
            ),
            (
                Facts {
                    commits: Some(Commits {
                        user_only: 2,
                        agent_only: 0,
                    }),
                    ..clear()
                },
                "user_ahead",
            ),
            (
                Facts {
                    commits: Some(Commits {
                        user_only: 1,
                        agent_only: 4,
                    }),
                    ..clear()
                },
                "diverged",
            ),
            (
                Facts {
                    operation: Some(Operation::Rebase),
                    ..clear()
                },
                "operation_in_progress",
            ),
            (
                Facts {
                    no_stash: true,
                    ..clear()
                },
                "dirty_no_stash",
            ),
            (
                Facts {
                    busy: Some("starting (snapshot) with other".into()),
                    ..clear()
                },
                "pairing_busy",
            ),
        ];
        for (facts, code) in cases {
            assert_eq!(codes(&facts), [code], "{facts:?}");
        }
        // --no-stash on a clean checkout is fine.
        assert!(
            blockers(&Facts {
                no_stash: true,
                changes: 0,
                ..clear()
            })
            .is_empty()
        );
    }

    #[test]
    fn several_at_once_are_all_reported_in_the_specs_order() {
        let f = Facts {
            commits: Some(Commits {
                user_only: 1,
                agent_only: 1,
            }),
            operation: Some(Operation::Merge),
            no_stash: true,
            busy: Some("stopping (final_sync) with fixer".into()),
            ..clear()
        };
        assert_eq!(
            codes(&f),
            [
                "diverged",
                "operation_in_progress",
                "dirty_no_stash",
                "pairing_busy"
            ]
        );
        // A missing agent hides what cannot be judged without it, not the rest.
        let g = Facts {
            agent_exists: false,
            agent_branch_exists: false,
            agent_on: None,
            commits: None,
            operation: Some(Operation::Bisect),
            ..clear()
        };
        assert_eq!(codes(&g), ["agent_missing", "operation_in_progress"]);
        // So does an agent elsewhere that cannot be paired with (its workspace is not here).
        let e = Facts {
            elsewhere: Some(("ssh://box".into(), "unreachable".into())),
            ..g
        };
        assert_eq!(codes(&e), ["agent_elsewhere", "operation_in_progress"]);
        for b in blockers(&f) {
            assert!(b.message().contains(" — "), "{b:?} names its fix");
        }
    }
}
