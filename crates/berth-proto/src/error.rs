//! Structured API errors: `{"error": {"code": "...", "message": "...", "hint": "..."}}`.

use serde::{Deserialize, Serialize};

/// Stable error codes. The serialized names never change once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request body is not valid JSON or does not match the expected shape.
    MalformedJson,
    /// The request body exceeds [`crate::MAX_BODY_BYTES`].
    BodyTooLarge,
    /// No such endpoint.
    NotFound,
    /// The endpoint exists but not with this method.
    MethodNotAllowed,
    /// A query parameter or header has an invalid value.
    BadRequest,
    /// Missing or wrong bearer token on the TCP listener, or no valid console session.
    Unauthorized,
    /// A browser request failed the console's checks: a `Host` that does not name this
    /// listener, or a state-changing request from another origin or without its CSRF token.
    Forbidden,
    /// The daemon is still preparing storage or recovering.
    Starting,
    /// The daemon is shutting down.
    Stopping,
    /// The request took longer than the daemon allows.
    Timeout,
    /// Something failed inside the daemon; the message says what.
    Internal,
    /// The path is not inside a git repository.
    NotARepository,
    /// No snapshot with that id.
    SnapshotNotFound,
    /// Malformed snapshot id.
    BadId,
    /// Refused: the working tree has changes that would be overwritten.
    DirtyTree,
    /// Refused: a merge, rebase, cherry-pick, revert, bisect or am is in progress.
    OperationInProgress,
    /// Refused: the index has unresolved conflicts.
    Unmerged,
    /// Refused: the original branch moved in a way that conflicts with the snapshot.
    BranchMoved,
    /// Refused: the original branch no longer exists (or now exists where it did not).
    BranchMissing,
    /// Refused: files that git does not track would be overwritten.
    WouldOverwrite,
    /// A git command failed.
    GitFailed,
    /// No such agent in this project.
    AgentNotFound,
    /// An agent of that name exists already.
    AgentExists,
    /// The agent's definition or the request is not valid (name, command, base, policy).
    InvalidAgent,
    /// Refused: removing the agent would lose uncommitted changes or commits.
    UnsavedWork,
    /// `berth.toml` is missing or invalid (the message names the key and line), or has a cycle.
    InvalidConfig,
    /// A process of `berth.toml` could not be prepared (its workspace could not be made).
    /// Processes that were started and failed are listed in `berth up`'s answer instead.
    StartFailed,
    /// Refused: pairing cannot start; the message lists every blocker, one line each with its
    /// code and fix.
    PairingBlocked,
    /// Refused: the pairing's state does not allow the request now (`pairing_busy`,
    /// `already_paired`, `paused_cannot_switch`); the message says why.
    PairingRefused,
    /// Not paired: nothing to show, flush or stop.
    NotPaired,
    /// Pairing is paused: a flush cannot make both sides agree until the notices are gone.
    PairingPaused,
    /// The agent does not run under a pseudo-terminal (create it with `--tty`).
    NotATerminal,
    /// The agent has no running process (start it first).
    AgentNotRunning,
    /// What was to be typed or the size asked for is not valid (empty, too large); nothing was
    /// typed.
    InvalidInput,
    /// A message that cannot be sent (empty, too large, a NUL byte, a bad key or priority);
    /// nothing was queued.
    InvalidMessage,
    /// The agent takes no messages (it has neither a turn command nor a terminal).
    NotDeliverable,
    /// No inbox item with that id.
    ItemNotFound,
    /// The item is no longer queued (it is being delivered, or finished): it cannot be cancelled.
    NotCancellable,
    /// No turn with that id.
    TurnNotFound,
    /// An agent elsewhere (`--on`) could not be reached, or its far side failed what was asked.
    AgentUnreachable,
    /// A timer that cannot be made (a bad interval, cron expression, time or zone, or an `at`
    /// in the past); nothing was added.
    InvalidTimer,
    /// No timer with that id.
    TimerNotFound,
    /// The agent has a webhook of that name already.
    HookExists,
    /// No webhook of that name.
    HookNotFound,
    /// A webhook delivery whose id was queued before; nothing was queued again.
    DuplicateDelivery,
    /// Any code this build does not know (sent by a newer daemon).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Codes that mean "refused for safety": nothing was changed, and the message says what to
    /// do first. The CLI exits 4 for these.
    pub fn is_refusal(self) -> bool {
        matches!(
            self,
            ErrorCode::DirtyTree
                | ErrorCode::OperationInProgress
                | ErrorCode::Unmerged
                | ErrorCode::BranchMoved
                | ErrorCode::BranchMissing
                | ErrorCode::WouldOverwrite
                | ErrorCode::UnsavedWork
                | ErrorCode::PairingBlocked
                | ErrorCode::PairingRefused
        )
    }

    /// Codes that mean "the request itself is wrong": a bad argument, body, query or token, a
    /// path outside any repository, an invalid `berth.toml`. Nothing was done; the caller fixes
    /// what it asked. The CLI exits 2 for these, as for its own usage errors.
    pub fn is_usage(self) -> bool {
        matches!(
            self,
            ErrorCode::MalformedJson
                | ErrorCode::BodyTooLarge
                | ErrorCode::BadRequest
                | ErrorCode::Unauthorized
                | ErrorCode::NotARepository
                | ErrorCode::BadId
                | ErrorCode::InvalidAgent
                | ErrorCode::InvalidConfig
                | ErrorCode::InvalidInput
                | ErrorCode::InvalidMessage
                | ErrorCode::InvalidTimer
        )
    }

    /// The stable wire name of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Starting => "starting",
            ErrorCode::Stopping => "stopping",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Internal => "internal",
            ErrorCode::NotARepository => "not_a_repository",
            ErrorCode::SnapshotNotFound => "snapshot_not_found",
            ErrorCode::BadId => "bad_id",
            ErrorCode::DirtyTree => "dirty_tree",
            ErrorCode::OperationInProgress => "operation_in_progress",
            ErrorCode::Unmerged => "unmerged",
            ErrorCode::BranchMoved => "branch_moved",
            ErrorCode::BranchMissing => "branch_missing",
            ErrorCode::WouldOverwrite => "would_overwrite",
            ErrorCode::GitFailed => "git_failed",
            ErrorCode::AgentNotFound => "agent_not_found",
            ErrorCode::AgentExists => "agent_exists",
            ErrorCode::InvalidAgent => "invalid_agent",
            ErrorCode::UnsavedWork => "unsaved_work",
            ErrorCode::InvalidConfig => "invalid_config",
            ErrorCode::StartFailed => "start_failed",
            ErrorCode::PairingBlocked => "pairing_blocked",
            ErrorCode::PairingRefused => "pairing_refused",
            ErrorCode::NotPaired => "not_paired",
            ErrorCode::PairingPaused => "pairing_paused",
            ErrorCode::NotATerminal => "not_a_terminal",
            ErrorCode::AgentNotRunning => "agent_not_running",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::NotDeliverable => "not_deliverable",
            ErrorCode::ItemNotFound => "item_not_found",
            ErrorCode::NotCancellable => "not_cancellable",
            ErrorCode::TurnNotFound => "turn_not_found",
            ErrorCode::AgentUnreachable => "agent_unreachable",
            ErrorCode::InvalidTimer => "invalid_timer",
            ErrorCode::TimerNotFound => "timer_not_found",
            ErrorCode::HookExists => "hook_exists",
            ErrorCode::HookNotFound => "hook_not_found",
            ErrorCode::DuplicateDelivery => "duplicate_delivery",
            ErrorCode::Unknown => "unknown",
        }
    }
}

/// The error object itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// The envelope every error response carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ApiError,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_to_their_stable_names() {
        for code in [
            ErrorCode::MalformedJson,
            ErrorCode::BodyTooLarge,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::BadRequest,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::Starting,
            ErrorCode::Stopping,
            ErrorCode::Timeout,
            ErrorCode::Internal,
            ErrorCode::NotARepository,
            ErrorCode::SnapshotNotFound,
            ErrorCode::BadId,
            ErrorCode::DirtyTree,
            ErrorCode::OperationInProgress,
            ErrorCode::Unmerged,
            ErrorCode::BranchMoved,
            ErrorCode::BranchMissing,
            ErrorCode::WouldOverwrite,
            ErrorCode::GitFailed,
            ErrorCode::AgentNotFound,
            ErrorCode::AgentExists,
            ErrorCode::InvalidAgent,
            ErrorCode::UnsavedWork,
            ErrorCode::InvalidConfig,
            ErrorCode::StartFailed,
            ErrorCode::PairingBlocked,
            ErrorCode::PairingRefused,
            ErrorCode::NotPaired,
            ErrorCode::PairingPaused,
            ErrorCode::NotATerminal,
            ErrorCode::AgentNotRunning,
            ErrorCode::InvalidInput,
            ErrorCode::InvalidMessage,
            ErrorCode::NotDeliverable,
            ErrorCode::ItemNotFound,
            ErrorCode::NotCancellable,
            ErrorCode::TurnNotFound,
            ErrorCode::AgentUnreachable,
            ErrorCode::InvalidTimer,
            ErrorCode::TimerNotFound,
            ErrorCode::HookExists,
            ErrorCode::HookNotFound,
            ErrorCode::DuplicateDelivery,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn an_unknown_code_from_a_newer_daemon_still_parses() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"brand_new","message":"m"}}"#).unwrap();
        assert_eq!(body.error.code, ErrorCode::Unknown);
        assert_eq!(body.error.hint, None);
    }
}
