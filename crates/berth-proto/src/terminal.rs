//! Terminal agents: their screen, and typing into them.

use serde::{Deserialize, Serialize};

/// Body of `POST /v1/agents/screen`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentScreenRequest {
    pub repo: String,
    pub name: String,
    /// Also this many of the newest lines of scrollback (at most what the keeper holds).
    #[serde(default)]
    pub scrollback: usize,
}

/// A terminal's screen as its keeper's emulator holds it: the answer to `POST
/// /v1/agents/screen`, and what a keeper answers to `screen`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalScreen {
    pub size: TerminalSize,
    /// One string per row, top to bottom, without trailing blanks.
    pub rows: Vec<String>,
    /// Where the cursor is, 0-based.
    pub cursor: Cursor,
    /// The window title the program set, if any.
    #[serde(default)]
    pub title: Option<String>,
    /// The newest lines that scrolled off the top, oldest first (as many as were asked for).
    #[serde(default)]
    pub scrollback: Vec<String>,
    /// How many lines of scrollback the keeper holds.
    #[serde(default)]
    pub scrollback_lines: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    pub rows: u16,
    pub cols: u16,
}

/// A cursor position, 0-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub row: u16,
    pub col: u16,
}

/// Body of `POST /v1/agents/input`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentInput {
    pub repo: String,
    pub name: String,
    /// Typed as it is (control characters included).
    pub text: String,
    /// Then Return (`\r`).
    #[serde(default)]
    pub enter: bool,
}

/// Answer to `POST /v1/agents/input`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentTyped {
    pub name: String,
    /// How many bytes were written to the terminal.
    pub bytes: usize,
}
