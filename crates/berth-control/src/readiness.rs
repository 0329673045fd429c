//! The readiness pipe between `berth daemon start` and the daemon it spawns.
//!
//! The parent creates a pipe and hands the write end to the child as an inherited descriptor
//! (`--ready-fd N`). The child writes exactly one line — `ready <json>` or `failed <message>` —
//! and closes it. The parent reads: a line tells it the outcome; end-of-file without a line means
//! the child died, and the parent shows the daemon log's tail.

use std::fs::File;
use std::io::Write;
use std::os::fd::RawFd;

use crate::files::take_inherited_fd;

/// The write end of the readiness pipe, held by the daemon until it reports.
#[derive(Debug)]
pub struct ReadyPipe {
    file: File,
}

impl ReadyPipe {
    /// Takes ownership of the inherited descriptor `fd`.
    pub fn from_fd(fd: RawFd) -> std::io::Result<ReadyPipe> {
        Ok(ReadyPipe {
            file: take_inherited_fd(fd, "--ready-fd")?,
        })
    }

    /// Reports readiness; `detail` is one line of JSON.
    pub fn ready(mut self, detail: &str) {
        // The parent may be gone (it timed out); that is not the daemon's problem.
        let _ = writeln!(self.file, "ready {detail}");
    }

    /// Reports a failure to start.
    pub fn failed(mut self, message: &str) {
        let _ = writeln!(self.file, "failed {}", message.replace('\n', " "));
    }
}

/// What the parent read from the pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Ready(String),
    Failed(String),
}

/// Parses the one line the daemon writes.
pub fn parse_report(line: &str) -> Option<Report> {
    let line = line.trim_end_matches('\n');
    if let Some(rest) = line.strip_prefix("ready ") {
        Some(Report::Ready(rest.to_string()))
    } else {
        line.strip_prefix("failed ")
            .map(|rest| Report::Failed(rest.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_through_their_line_format() {
        assert_eq!(
            parse_report("ready {\"pid\":1}\n"),
            Some(Report::Ready("{\"pid\":1}".into()))
        );
        assert_eq!(
            parse_report("failed no disk"),
            Some(Report::Failed("no disk".into()))
        );
        assert_eq!(parse_report("garbage"), None);
        assert_eq!(parse_report(""), None);
    }

    #[test]
    fn standard_streams_are_refused() {
        for fd in 0..=2 {
            assert!(ReadyPipe::from_fd(fd).is_err());
        }
        assert!(ReadyPipe::from_fd(987).is_err());
    }
}
