//! Wire types of berth's control API.
//!
//! Everything that crosses the control socket (or the optional TCP listener) is defined here and
//! nowhere else, so the daemon and every client agree on one vocabulary. The crate depends on
//! serde only.
//!
//! Compatibility rules:
//! - [`HANDSHAKE_PATH`] is frozen forever: any berth, of any protocol version, answers it with a
//!   [`Handshake`], so a client can always tell an incompatible daemon from a foreign program.
//! - Every other path is versioned (`/v1/...`). A change that an older client could misread bumps
//!   [`PROTOCOL_VERSION`].
//! - Errors are always [`ErrorBody`] with a stable [`ErrorCode`].

mod agent;
mod attach;
mod compose;
mod console;
mod error;
mod event;
mod hook;
mod inbox;
mod pair;
mod stash;
mod status;
mod terminal;
mod timer;

pub use agent::{AgentInfo, AgentList, AgentNew, AgentRemove, AgentRemoved, AgentTarget};
pub use attach::{
    AttachControl, AttachEvent, AttachQuery, Frame, FrameError, HANDOVER_PATH, HANDOVER_PROTOCOL,
    Handover, HandoverNotice, MAX_FRAME_BYTES,
};
pub use compose::{
    ComposeRequest, DownFailure, DownKilled, DownReport, UpFailure, UpReport, UpSkipped,
};
pub use console::{ConsoleOpened, ConsoleOverview, ConsoleProject, ConsoleSessionInfo, LoggedOut};
pub use error::{ApiError, ErrorBody, ErrorCode};
pub use event::Event;
pub use hook::{HookAdd, HookInfo, HookList, HookTarget};
pub use inbox::{
    ById, InboxCount, InboxCounts, InboxItem, InboxList, InboxSend, InboxSent, TurnInfo, TurnList,
};
pub use pair::{
    PairConflict, PairConflictDiff, PairConflictRequest, PairFlushed, PairLatency, PairLeftover,
    PairLeftovers, PairLeftoversRequest, PairLink, PairNotice, PairRepo, PairStart, PairStatus,
    PairStopped,
};
pub use stash::{
    FileChange, RestoreResult, SnapshotDetail, SnapshotInfo, SnapshotList, SnapshotMeta, StashRepo,
    StashSave, StashTarget,
};
pub use status::{Activity, DaemonPhase, DaemonStatus, Handshake, ShutdownRequest};
pub use terminal::{
    AgentInput, AgentScreenRequest, AgentTyped, Cursor, TerminalScreen, TerminalSize,
};
pub use timer::{AgentFilter, TimerAdd, TimerInfo, TimerList};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The product name every berth daemon reports in its handshake.
pub const PRODUCT: &str = "berth";

/// The unversioned handshake path; see the crate docs.
pub const HANDSHAKE_PATH: &str = "/handshake";

/// Capabilities this build's daemon offers, reported in the handshake.
pub const CAPABILITIES: &[&str] = &[
    "status",
    "shutdown",
    "events",
    "events-sse",
    "stash",
    "agents",
    "pairing",
    "terminal",
    "attach",
    "inbox",
    "console",
    "timers",
    "hooks",
];

/// Largest request body the daemon accepts, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
