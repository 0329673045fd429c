//! The notices that pause a pairing (SPEC §6.4), the cause each stands for, and the side it
//! is on.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::operation::Operation;
use super::text::agent_branch;
use crate::duration;

/// Which side of a pairing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The user's checkout.
    User,
    /// The agent's workspace.
    Agent,
}

impl Side {
    fn tree(self) -> &'static str {
        match self {
            Side::User => "your checkout",
            Side::Agent => "the agent's workspace",
        }
    }
}

/// A pausing cause (SPEC §6.4). Each names what happened and how pairing resumes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum Notice {
    /// The user's checkout is on `actual`, not `berth/<agent>`.
    UserSwitchedBranch { agent: String, actual: String },
    /// The user's checkout has a detached HEAD.
    UserDetachedHead { agent: String },
    /// The agent's workspace is on another branch (`None`: a detached HEAD).
    AgentSwitchedBranch {
        agent: String,
        actual: Option<String>,
    },
    /// An operation is in progress on one side.
    OperationInProgress { side: Side, operation: Operation },
    /// Neither branch is an ancestor of the other any more.
    Diverged { agent: String },
    /// The agent's workspace is gone.
    AgentWorkspaceMissing { agent: String, path: String },
    /// `berth/<agent>` was deleted in the agent's workspace.
    AgentBranchDeleted { agent: String },
    /// A root holds nothing any more (safety halt: an emptied root is not a mass deletion).
    RootEmptied { side: Side, path: String },
    /// A root does not exist any more.
    RootDeleted { side: Side, path: String },
    /// The end-to-end heartbeat on one side did not come back: file watching stalled.
    WatchStalled { side: Side },
    /// A write failed because the disk is full.
    DiskFull { side: Side, path: String },
    /// A write was refused.
    PermissionDenied { side: Side, path: String },
    /// Anything else; `message` says what.
    UnexpectedError { message: String },
    /// The final sync of a stop got no answer within its time limit (`waited_ms`): a tree does
    /// not respond. Nothing was changed; the pairing waits for syncing to answer again.
    FinalSyncTimedOut { waited_ms: u64 },
    /// The daemon restarted while paired: both sides are checked again before syncing.
    Revalidating,
    /// The connection to an agent elsewhere (`on`: its `--on` URL) was lost; `detail` says how.
    /// Nothing syncs until it is back; berth reconnects by itself.
    ConnectionLost {
        agent: String,
        on: String,
        detail: String,
    },
}

/// What a notice is about: at most one notice per cause is held, and a detector clears a cause
/// once it is gone ("the user is back on the branch" clears [`Cause::UserBranch`], whichever
/// branch they had been on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "cause", content = "side")]
pub enum Cause {
    UserBranch,
    AgentBranch,
    Operation(Side),
    Diverged,
    AgentWorkspace,
    AgentBranchGone,
    Root(Side),
    Watch(Side),
    /// Disk full or permission denied while applying on this side.
    Write(Side),
    Unexpected,
    /// The sync loop did not answer the final sync of a stop in time.
    SyncUnanswered,
    Revalidating,
    /// The connection to an agent elsewhere.
    Link,
}

impl Notice {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Notice::UserSwitchedBranch { .. } => "user_switched_branch",
            Notice::UserDetachedHead { .. } => "user_detached_head",
            Notice::AgentSwitchedBranch { .. } => "agent_switched_branch",
            Notice::OperationInProgress { .. } => "operation_in_progress",
            Notice::Diverged { .. } => "diverged",
            Notice::AgentWorkspaceMissing { .. } => "agent_workspace_missing",
            Notice::AgentBranchDeleted { .. } => "agent_branch_deleted",
            Notice::RootEmptied { .. } => "root_emptied",
            Notice::RootDeleted { .. } => "root_deleted",
            Notice::WatchStalled { .. } => "watch_stalled",
            Notice::DiskFull { .. } => "disk_full",
            Notice::PermissionDenied { .. } => "permission_denied",
            Notice::UnexpectedError { .. } => "unexpected_error",
            Notice::FinalSyncTimedOut { .. } => "final_sync_timed_out",
            Notice::Revalidating => "revalidating",
            Notice::ConnectionLost { .. } => "connection_lost",
        }
    }

    /// The cause it stands for (its slot in the notice set).
    pub fn cause(&self) -> Cause {
        match self {
            Notice::UserSwitchedBranch { .. } | Notice::UserDetachedHead { .. } => {
                Cause::UserBranch
            }
            Notice::AgentSwitchedBranch { .. } => Cause::AgentBranch,
            Notice::OperationInProgress { side, .. } => Cause::Operation(*side),
            Notice::Diverged { .. } => Cause::Diverged,
            Notice::AgentWorkspaceMissing { .. } => Cause::AgentWorkspace,
            Notice::AgentBranchDeleted { .. } => Cause::AgentBranchGone,
            Notice::RootEmptied { side, .. } | Notice::RootDeleted { side, .. } => {
                Cause::Root(*side)
            }
            Notice::WatchStalled { side } => Cause::Watch(*side),
            Notice::DiskFull { side, .. } | Notice::PermissionDenied { side, .. } => {
                Cause::Write(*side)
            }
            Notice::UnexpectedError { .. } => Cause::Unexpected,
            Notice::FinalSyncTimedOut { .. } => Cause::SyncUnanswered,
            Notice::Revalidating => Cause::Revalidating,
            Notice::ConnectionLost { .. } => Cause::Link,
        }
    }

    /// One line: `paused: <what happened> — <how pairing resumes>`.
    pub fn message(&self) -> String {
        let what_and_how = match self {
            Notice::UserSwitchedBranch { agent, actual } => format!(
                "you switched to `{actual}` in your checkout — switch back to `{b}` to resume",
                b = agent_branch(agent)
            ),
            Notice::UserDetachedHead { agent } => format!(
                "your checkout is on a detached HEAD — switch back to `{b}` to resume",
                b = agent_branch(agent)
            ),
            Notice::AgentSwitchedBranch { agent, actual } => {
                let on = match actual {
                    Some(branch) => format!("switched its workspace to `{branch}`"),
                    None => "detached HEAD in its workspace".to_string(),
                };
                format!(
                    "agent `{agent}` {on} — pairing resumes when it is back on `{b}`",
                    b = agent_branch(agent)
                )
            }
            Notice::OperationInProgress { side, operation } => format!(
                "a {op} is in progress in {tree} — pairing resumes when it is finished or \
                 aborted ({fix})",
                op = operation.name(),
                tree = side.tree(),
                fix = operation.fix()
            ),
            Notice::Diverged { agent } => format!(
                "your `{b}` and agent `{agent}`'s have diverged (a commit was amended or \
                 rebased on one side) — pairing resumes when one is again an ancestor of the \
                 other: merge one into the other, or reset one side to the other",
                b = agent_branch(agent)
            ),
            Notice::AgentWorkspaceMissing { agent, path } => format!(
                "agent `{agent}`'s workspace `{path}` is missing — pairing resumes when it is \
                 back (or run `berth pair stop`)"
            ),
            Notice::AgentBranchDeleted { agent } => format!(
                "agent `{agent}` deleted its branch `{b}` — pairing resumes when the branch is \
                 back in its workspace",
                b = agent_branch(agent)
            ),
            Notice::RootEmptied { side, path } => format!(
                "{tree} `{path}` is suddenly empty; berth halted rather than delete everything \
                 on the other side — pairing resumes when its files are back",
                tree = side.tree()
            ),
            Notice::RootDeleted { side, path } => format!(
                "{tree} `{path}` was deleted — pairing resumes when it is back",
                tree = side.tree()
            ),
            Notice::WatchStalled { side } => format!(
                "file watching in {tree} stopped delivering events (the heartbeat did not come \
                 back) — pairing resumes when heartbeats arrive again",
                tree = side.tree()
            ),
            Notice::DiskFull { side, path } => format!(
                "the disk is full: writing `{path}` in {tree} failed — free some space; \
                 pairing resumes when the write succeeds on retry",
                tree = side.tree()
            ),
            Notice::PermissionDenied { side, path } => format!(
                "permission denied writing `{path}` in {tree} — fix its permissions; pairing \
                 resumes when the write succeeds on retry",
                tree = side.tree()
            ),
            Notice::UnexpectedError { message } => format!(
                "unexpected error: {message} — pairing resumes when a retry succeeds \
                 (details in `berth daemon logs`)"
            ),
            Notice::FinalSyncTimedOut { waited_ms } => format!(
                "`berth pair stop` gave up: its final sync got no answer within {waited} (a \
                 tree does not respond — a hung disk or network filesystem?), so nothing was \
                 changed in either tree and your snapshot is kept — pairing resumes by itself \
                 once syncing answers again, and `berth pair stop` then stops as usual; \
                 `berth pair stop` before that leaves both trees as they are (raise the limit \
                 with `git config berth.stopTimeout 60s`)",
                waited = duration::show(std::time::Duration::from_millis(*waited_ms))
            ),
            Notice::Revalidating => "berth restarted — checking both sides again before \
                                     syncing; pairing resumes by itself when they check out"
                .to_string(),
            Notice::ConnectionLost { agent, on, detail } => format!(
                "the connection to agent `{agent}` on {on} was lost ({detail}) — berth \
                 reconnects by itself and pairing resumes, carrying over what changed on both \
                 sides meanwhile; `berth pair stop` before that leaves both trees as they are"
            ),
        };
        format!("paused: {what_and_how}")
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::pairing::test_support::*;

    fn all_notices() -> Vec<Notice> {
        let mut v = vec![
            n_user(),
            n_user_detached(),
            Notice::AgentSwitchedBranch {
                agent: "fixer".into(),
                actual: Some("wip".into()),
            },
            Notice::Diverged {
                agent: "fixer".into(),
            },
            Notice::AgentWorkspaceMissing {
                agent: "fixer".into(),
                path: "/ws/fixer".into(),
            },
            Notice::AgentBranchDeleted {
                agent: "fixer".into(),
            },
            Notice::UnexpectedError {
                message: "index.lock exists".into(),
            },
            Notice::FinalSyncTimedOut { waited_ms: 15_000 },
            Notice::Revalidating,
            n_link(),
        ];
        for side in [Side::User, Side::Agent] {
            v.push(Notice::OperationInProgress {
                side,
                operation: Operation::Rebase,
            });
            v.push(Notice::RootEmptied {
                side,
                path: "/r".into(),
            });
            v.push(Notice::RootDeleted {
                side,
                path: "/r".into(),
            });
            v.push(Notice::WatchStalled { side });
            v.push(Notice::DiskFull {
                side,
                path: "a.txt".into(),
            });
            v.push(Notice::PermissionDenied {
                side,
                path: "a.txt".into(),
            });
        }
        v
    }

    #[test]
    fn notices_say_what_happened_and_how_pairing_resumes() {
        assert_eq!(
            n_user().message(),
            "paused: you switched to `main` in your checkout — switch back to `berth/fixer` to resume"
        );
        let mut messages = BTreeSet::new();
        let mut codes = BTreeSet::new();
        for n in all_notices() {
            let m = n.message();
            assert!(messages.insert(m.clone()), "duplicate message {m}");
            codes.insert(n.code());
            assert!(m.starts_with("paused: "), "{m}");
            assert!(!m.contains('\n'), "{m}");
            assert!(m.contains(" — ") && m.contains("resume"), "{m}");
            assert_eq!(serde_json::to_value(&n).unwrap()["code"], n.code());
            assert_eq!(n.to_string(), m);
        }
        assert_eq!(codes.len(), 16, "one code per kind of notice");
        let by_code = |code: &str, side: Option<Side>| {
            all_notices()
                .into_iter()
                .find(|n| {
                    n.code() == code
                        && side.is_none_or(|s| {
                            matches!(n.cause(), Cause::Operation(x) | Cause::Root(x) | Cause::Watch(x) | Cause::Write(x) if x == s)
                        })
                })
                .unwrap()
                .message()
        };
        assert!(by_code("agent_switched_branch", None).contains("`wip`"));
        assert!(by_code("agent_workspace_missing", None).contains("/ws/fixer"));
        assert!(by_code("unexpected_error", None).contains("index.lock exists"));
        let op = by_code("operation_in_progress", Some(Side::Agent));
        assert!(
            op.contains("rebase") && op.contains("the agent's workspace"),
            "{op}"
        );
        let disk = by_code("disk_full", Some(Side::User));
        assert!(
            disk.contains("`a.txt`") && disk.contains("your checkout"),
            "{disk}"
        );
        assert!(by_code("root_emptied", None).contains("halted"));
        let timed_out = by_code("final_sync_timed_out", None);
        assert!(
            timed_out.contains("within 15s") && timed_out.contains("nothing was changed"),
            "{timed_out}"
        );
        let lost = by_code("connection_lost", None);
        assert!(
            lost.contains("ssh://box/w") && lost.contains("ssh: broken pipe"),
            "{lost}"
        );
        assert!(lost.contains("reconnects by itself"), "{lost}");
        assert_eq!(n_link().cause(), Cause::Link);
    }

    #[test]
    fn causes_group_exactly_the_notices_one_resolution_clears() {
        let mut by_cause: std::collections::BTreeMap<Cause, Vec<&str>> = Default::default();
        for n in all_notices() {
            by_cause.entry(n.cause()).or_default().push(n.code());
        }
        for (cause, codes) in &by_cause {
            let expected: &[&str] = match cause {
                Cause::UserBranch => &["user_switched_branch", "user_detached_head"],
                Cause::Root(_) => &["root_emptied", "root_deleted"],
                Cause::Write(_) => &["disk_full", "permission_denied"],
                _ => &codes[..1],
            };
            assert_eq!(codes, expected, "{cause:?}");
        }
        assert_eq!(by_cause.len(), 17, "every cause, the sided ones per side");
    }
}
