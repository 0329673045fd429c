//! Running readiness probes against the real thing: a command, an HTTP endpoint, a TCP port,
//! the process's output, or its notify socket. What a probe *is* and how results add up lives
//! in `berth_core::probe`; this module only carries out one attempt.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::time::Duration;

use berth_core::probe::ProbeCheck;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixDatagram};

/// What a probe looks at besides its own check.
pub struct Target {
    /// Where `exec` runs.
    pub cwd: PathBuf,
    /// The process's output log, for `log`.
    pub log: PathBuf,
    /// Where in the log this run's output starts.
    pub log_offset: u64,
    /// Bound before the process starts, for `notify`.
    pub notify: Option<UnixDatagram>,
    /// `log`: the compiled pattern.
    pattern: Option<regex::Regex>,
    /// Bytes of the log after `log_offset` not yet ending in a newline.
    partial: String,
}

impl Target {
    /// Prepares a target; fails only on a `log` pattern that is not a valid regular expression.
    pub fn new(
        check: &ProbeCheck,
        cwd: PathBuf,
        log: PathBuf,
        notify: Option<UnixDatagram>,
    ) -> Result<Target, String> {
        let pattern = match check {
            ProbeCheck::Log { pattern } => Some(
                regex::Regex::new(pattern)
                    .map_err(|e| format!("invalid log pattern {pattern:?}: {e}"))?,
            ),
            _ => None,
        };
        let log_offset = std::fs::metadata(&log).map_or(0, |m| m.len());
        Ok(Target {
            cwd,
            log,
            log_offset,
            notify,
            pattern,
            partial: String::new(),
        })
    }
}

/// One attempt, bounded by `timeout`: `true` when the check passes.
pub async fn attempt(check: &ProbeCheck, target: &mut Target, timeout: Duration) -> bool {
    tokio::time::timeout(timeout, once(check, target))
        .await
        .unwrap_or(false)
}

async fn once(check: &ProbeCheck, target: &mut Target) -> bool {
    match check {
        ProbeCheck::Exec { command } => tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(&target.cwd)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .status()
            .await
            .is_ok_and(|s| s.success()),
        ProbeCheck::Tcp { address } => TcpStream::connect(address.as_str()).await.is_ok(),
        ProbeCheck::Http { url } => http_ok(url).await,
        ProbeCheck::Log { .. } => log_matches(target).await,
        ProbeCheck::Notify => notified(target),
    }
}

/// `GET url` answers 2xx. Plain HTTP/1.1 over TCP; enough for a health endpoint.
async fn http_ok(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let address = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let Ok(mut stream) = TcpStream::connect(&address).await else {
        return false;
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nUser-Agent: berth\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 32];
    let mut got = 0;
    while got < 12 {
        match stream.read(&mut head[got..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    // "HTTP/1.1 204 ..."
    let line = String::from_utf8_lossy(&head[..got]);
    let mut parts = line.split_whitespace();
    parts.next().is_some_and(|v| v.starts_with("HTTP/"))
        && parts
            .next()
            .and_then(|c| c.parse::<u16>().ok())
            .is_some_and(|c| (200..300).contains(&c))
}

/// A line of this run's output matches the pattern.
async fn log_matches(target: &mut Target) -> bool {
    let Some(pattern) = &target.pattern else {
        return false;
    };
    let Ok(mut file) = tokio::fs::File::open(&target.log).await else {
        return false;
    };
    let len = file.metadata().await.map_or(0, |m| m.len());
    if len < target.log_offset {
        target.log_offset = 0; // rotated
    }
    if file.seek(SeekFrom::Start(target.log_offset)).await.is_err() {
        return false;
    }
    let mut fresh = Vec::new();
    if file.read_to_end(&mut fresh).await.is_err() {
        return false;
    }
    target.log_offset += fresh.len() as u64;
    target.partial.push_str(&String::from_utf8_lossy(&fresh));
    let mut matched = false;
    while let Some(end) = target.partial.find('\n') {
        let line: String = target.partial.drain(..=end).collect();
        // Keeper lines are "<time> out| <text>": match the text as a terminal shows it
        // (a terminal agent's colours and carriage returns are not part of what it says).
        matched |= pattern.is_match(&berth_core::output_line::shown_text(line.trim_end()));
    }
    matched
}

/// A `READY=1` datagram arrived on the notify socket.
fn notified(target: &mut Target) -> bool {
    let Some(sock) = &target.notify else {
        return false;
    };
    let mut buf = [0u8; 4096];
    let mut ready = false;
    while let Ok(n) = sock.try_recv(&mut buf) {
        ready |= String::from_utf8_lossy(&buf[..n])
            .lines()
            .any(|l| l.trim() == "READY=1");
    }
    ready
}
