//! How a [`super::RemoteEndpoint`] starts its endpoint: a [`Launcher`] makes the command that
//! runs `berth __endpoint ROOT` at the other end, and may repair what kept the last one from
//! answering (no berth there, or another version: [`super::install::Installing`] installs this
//! binary) before it is tried once more. Any `FnMut() -> Command` is a launcher that repairs
//! nothing (the local binary in tests, `BERTH_REMOTE_BIN`).

use std::process::Command;

use super::RemoteError;

/// Starts an endpoint, and fixes what kept one from answering.
pub trait Launcher: Send {
    /// The command that runs the endpoint; its standard input and output are the stream.
    fn command(&mut self) -> Result<Command, RemoteError>;

    /// After the endpoint [`Launcher::command`] started failed its handshake with `failure`:
    /// whether it was repaired (worth one more try). An error says why it cannot be.
    fn repair(&mut self, failure: &RemoteError) -> Result<bool, RemoteError>;
}

impl<F: FnMut() -> Command + Send> Launcher for F {
    fn command(&mut self) -> Result<Command, RemoteError> {
        Ok(self())
    }

    fn repair(&mut self, _failure: &RemoteError) -> Result<bool, RemoteError> {
        Ok(false)
    }
}
