//! The blockers that refuse a start before anything changes (SPEC §6.3).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::operation::Operation;
use super::text::{agent_branch, plural};

/// A reason a start is refused before anything changes (SPEC §6.3). All are reported together.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum Blocker {
    /// No such agent, or its workspace is gone.
    AgentMissing { agent: String },
    /// The agent runs elsewhere (`on`: its `--on` URL) and cannot be paired with now;
    /// `detail` says why and what to do.
    AgentElsewhere {
        agent: String,
        on: String,
        detail: String,
    },
    /// The agent's branch does not exist in its workspace.
    AgentBranchMissing { agent: String },
    /// The agent's workspace is on another branch (`None`: a detached HEAD).
    AgentWrongBranch {
        agent: String,
        actual: Option<String>,
    },
    /// The user's copy of the branch has `commits` the agent lacks.
    UserAhead { agent: String, commits: u64 },
    /// Neither side is an ancestor of the other.
    Diverged {
        agent: String,
        user_only: u64,
        agent_only: u64,
    },
    /// An operation is in progress in the checkout.
    OperationInProgress { operation: Operation },
    /// The checkout has `changes` changed paths and `--no-stash` was given.
    DirtyNoStash { changes: u64 },
    /// Another pairing transition is in progress for this project (`transition`: what it is,
    /// e.g. `starting (snapshot) with fixer`).
    PairingBusy { transition: String },
}

impl Blocker {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Blocker::AgentMissing { .. } => "agent_missing",
            Blocker::AgentElsewhere { .. } => "agent_elsewhere",
            Blocker::AgentBranchMissing { .. } => "agent_branch_missing",
            Blocker::AgentWrongBranch { .. } => "agent_wrong_branch",
            Blocker::UserAhead { .. } => "user_ahead",
            Blocker::Diverged { .. } => "diverged",
            Blocker::OperationInProgress { .. } => "operation_in_progress",
            Blocker::DirtyNoStash { .. } => "dirty_no_stash",
            Blocker::PairingBusy { .. } => "pairing_busy",
        }
    }

    /// One line: what is wrong, then (after ` — `) how to fix it.
    pub fn message(&self) -> String {
        match self {
            Blocker::AgentMissing { agent } => format!(
                "there is no agent `{agent}` in this project, or its workspace is gone — \
                 create it with `berth agent new {agent}` (see `berth agent list`)"
            ),
            Blocker::AgentElsewhere { agent, on, detail } => {
                format!("agent `{agent}` runs on {on}: {detail}")
            }
            Blocker::AgentBranchMissing { agent } => format!(
                "agent `{agent}`'s workspace has no branch `{b}` — create it there with \
                 `git switch -c {b}`, or recreate the agent",
                b = agent_branch(agent)
            ),
            Blocker::AgentWrongBranch { agent, actual } => {
                let on = match actual {
                    Some(branch) => format!("on `{branch}`"),
                    None => "on a detached HEAD".to_string(),
                };
                format!(
                    "agent `{agent}`'s workspace is {on}, not `{b}` — run `git switch {b}` in \
                     its workspace",
                    b = agent_branch(agent)
                )
            }
            Blocker::UserAhead { agent, commits } => format!(
                "your `{b}` has {c} that agent `{agent}` lacks — push to the agent first \
                 (fast-forward the agent's `{b}` to yours in its workspace), or reset your \
                 `{b}` to the agent's",
                b = agent_branch(agent),
                c = plural(*commits, "commit", "commits")
            ),
            Blocker::Diverged {
                agent,
                user_only,
                agent_only,
            } => format!(
                "your `{b}` and agent `{agent}`'s have diverged ({u} only yours, {a} only the \
                 agent's) — merge one into the other first",
                b = agent_branch(agent),
                u = plural(*user_only, "commit", "commits"),
                a = plural(*agent_only, "commit", "commits")
            ),
            Blocker::OperationInProgress { operation } => format!(
                "a {op} is in progress in your checkout — {fix}",
                op = operation.name(),
                fix = operation.fix()
            ),
            Blocker::DirtyNoStash { changes } => format!(
                "your checkout has {c} and --no-stash was given — commit them, or pair without \
                 --no-stash so berth keeps them in a snapshot",
                c = plural(*changes, "uncommitted change", "uncommitted changes")
            ),
            Blocker::PairingBusy { transition } => format!(
                "another pairing transition is in progress for this project ({transition}) — \
                 wait for it to finish (`berth pair status`) and try again"
            ),
        }
    }

    /// Every blocker, one line each with its code: what `berth pair` prints.
    pub fn report<'a>(blockers: impl IntoIterator<Item = &'a Blocker>) -> String {
        blockers
            .into_iter()
            .map(|b| format!("{}: {}", b.code(), b.message()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn all_blockers() -> Vec<Blocker> {
        vec![
            Blocker::AgentMissing {
                agent: "fixer".into(),
            },
            Blocker::AgentElsewhere {
                agent: "fixer".into(),
                on: "ssh://box".into(),
                detail: "it cannot be reached (ssh: connection refused) — check the link \
                         (`berth agent show fixer`) and pair again"
                    .into(),
            },
            Blocker::AgentBranchMissing {
                agent: "fixer".into(),
            },
            Blocker::AgentWrongBranch {
                agent: "fixer".into(),
                actual: Some("main".into()),
            },
            Blocker::UserAhead {
                agent: "fixer".into(),
                commits: 2,
            },
            Blocker::Diverged {
                agent: "fixer".into(),
                user_only: 1,
                agent_only: 3,
            },
            Blocker::OperationInProgress {
                operation: Operation::CherryPick,
            },
            Blocker::DirtyNoStash { changes: 4 },
            Blocker::PairingBusy {
                transition: "stopping (final_sync) with fixer".into(),
            },
        ]
    }

    #[test]
    fn blockers_have_the_spec_codes_and_specific_one_line_messages_with_a_fix() {
        let codes: Vec<&str> = all_blockers().iter().map(|b| b.code()).collect();
        assert_eq!(
            codes,
            [
                "agent_missing",
                "agent_elsewhere",
                "agent_branch_missing",
                "agent_wrong_branch",
                "user_ahead",
                "diverged",
                "operation_in_progress",
                "dirty_no_stash",
                "pairing_busy"
            ]
        );
        let mut seen = BTreeSet::new();
        for b in all_blockers() {
            let m = b.message();
            assert!(seen.insert(m.clone()), "duplicate message {m}");
            assert!(!m.contains('\n'), "{m}");
            assert!(m.contains(" — "), "what, then the fix: {m}");
            // The JSON form carries the code too.
            assert_eq!(serde_json::to_value(&b).unwrap()["code"], b.code());
            assert_eq!(b.to_string(), m);
        }
        let msg = |i: usize| all_blockers()[i].message();
        assert!(msg(0).contains("berth agent new fixer"));
        assert!(msg(1).contains("runs on ssh://box") && msg(1).contains("connection refused"));
        assert!(msg(2).contains("`berth/fixer`"));
        assert!(msg(3).contains("on `main`") && msg(3).contains("git switch berth/fixer"));
        assert!(msg(4).contains("2 commits") && msg(4).contains("push to the agent first"));
        assert!(msg(5).contains("1 commit only yours") && msg(5).contains("3 commits only"));
        assert!(msg(5).contains("merge one into the other first"));
        assert!(msg(6).contains("cherry-pick") && msg(6).contains("--abort"));
        assert!(msg(7).contains("4 uncommitted changes") && msg(7).contains("--no-stash"));
        assert!(msg(8).contains("stopping (final_sync) with fixer"));
        let detached = Blocker::AgentWrongBranch {
            agent: "a".into(),
            actual: None,
        };
        assert!(detached.message().contains("detached HEAD"));
        let report = Blocker::report(&all_blockers());
        assert_eq!(report.lines().count(), 9);
        assert!(
            report
                .lines()
                .next()
                .unwrap()
                .starts_with("agent_missing: ")
        );
    }
}
