//! `berth daemon start|stop|restart|status`.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_client::Client;
use berth_core::config::{self, FieldDiff, ServeConfig, TokenSource};
use berth_core::daemon_state::{DaemonState, LockObservation};
use berth_core::home::Home;
use berth_core::stop::{self, StopInput, StopOutcome, StopState};
use berth_daemon::failure::FailureRecord;
use berth_daemon::logging;
use berth_daemon::readiness::{Report, parse_report};
use berth_daemon::runtime::{self, probe_lock};
use berth_proto::{Activity, PROTOCOL_VERSION};
use serde::Serialize;

use super::serve;
use crate::Ctx;
use crate::cli::{RestartArgs, StartArgs, StatusArgs, StopArgs, StopTimeouts};
use crate::error::{CliError, CliResult, Kind};
use crate::output::{self, emit};
use crate::probe::{Probe, clean_stale, probe};

/// Lines of the daemon log shown when a start fails.
const FAILURE_TAIL: usize = 20;

#[derive(Debug, Serialize)]
struct StartReport {
    state: DaemonState,
    already_running: bool,
    pid: Option<u32>,
    generation: Option<String>,
    socket: PathBuf,
    tcp: Option<String>,
    ready_ms: Option<u64>,
    cleaned_stale_files: Vec<PathBuf>,
}

pub async fn start(ctx: &Ctx, args: StartArgs) -> CliResult<i32> {
    let config = serve::config(ctx, &args.options);
    serve::validate(&config)?;
    serve::load_token(ctx, &config)?;
    let report = start_with(ctx, &config, args.start_timeout).await?;
    emit(ctx.json, &report, render_start);
    Ok(0)
}

fn render_start(r: &StartReport) -> String {
    let mut s = String::new();
    for f in &r.cleaned_stale_files {
        s += &format!("removed stale {}\n", f.display());
    }
    let pid = r.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into());
    if r.already_running {
        s += &format!(
            "berth daemon already {} (pid {pid}) with the same configuration\n",
            r.state.as_str()
        );
    } else {
        let ms = r.ready_ms.unwrap_or_default();
        s += &format!("berth daemon running (pid {pid}, ready in {ms} ms)\n");
    }
    s += &format!("  socket  {}\n", r.socket.display());
    if let Some(tcp) = &r.tcp {
        s += &format!("  tcp     {tcp}\n");
    }
    s
}

fn config_mismatch(diff: &[FieldDiff]) -> CliError {
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
    let details = diff
        .iter()
        .map(|d| {
            format!(
                "{}: running {}, asked for {}",
                d.field,
                show(&d.running),
                show(&d.wanted)
            )
        })
        .collect();
    CliError::failed(
        "config_mismatch",
        "a berth daemon is already running with a different configuration",
    )
    .details(details)
    .hint("`berth daemon restart` keeps the running options; to change them, `berth daemon stop` and start again")
}

fn foreign_error(home: &Home) -> CliError {
    CliError::new(
        Kind::Refused,
        "foreign_socket",
        format!(
            "{} is held by a program that is not berth; berth will not touch it",
            home.socket().display()
        ),
    )
    .hint("find it with `ss -xlp | grep berth.sock`, stop it, or use another BERTH_HOME")
}

fn incompatible_error(p: &Probe) -> CliError {
    let (protocol, version, pid) = match &p.handshake {
        Some(h) => (h.protocol.to_string(), h.version.clone(), h.pid.to_string()),
        None => ("?".into(), "?".into(), "?".into()),
    };
    CliError::new(
        Kind::Refused,
        "incompatible",
        format!(
            "a berth daemon speaking protocol {protocol} (version {version}, pid {pid}) is running; \
             this berth speaks protocol {PROTOCOL_VERSION}"
        ),
    )
    .hint(format!(
        "stop it with the berth {version} that started it (`berth daemon stop`), or `kill {pid}`; then start again"
    ))
}

async fn start_with(ctx: &Ctx, config: &ServeConfig, timeout: Duration) -> CliResult<StartReport> {
    let home = &ctx.home;
    let mut p = probe(home).await;
    let mut cleaned = Vec::new();
    match p.state {
        DaemonState::Running | DaemonState::Starting => {
            let status = p.daemon_status().await?;
            let wanted = config.effective(PROTOCOL_VERSION).fields;
            let diff = config::diff(&wanted, &status.config);
            if !diff.is_empty() {
                return Err(config_mismatch(&diff));
            }
            return Ok(StartReport {
                state: p.state,
                already_running: true,
                pid: Some(status.handshake.pid),
                generation: Some(status.handshake.generation),
                socket: home.socket(),
                tcp: status.tcp,
                ready_ms: None,
                cleaned_stale_files: cleaned,
            });
        }
        DaemonState::Stopping => {
            return Err(
                CliError::failed("daemon_stopping", "the berth daemon is still stopping")
                    .hint("wait until `berth daemon status` says stopped, then start again"),
            );
        }
        DaemonState::Foreign => return Err(foreign_error(home)),
        DaemonState::Incompatible => return Err(incompatible_error(&p)),
        DaemonState::Stale => cleaned = clean_stale(home, &p)?,
        DaemonState::Stopped => {}
    }

    let started = Instant::now();
    let spawned_at_ms = now_ms();
    let (mut child, pipe) = spawn_daemon(ctx, config)?;
    let report = read_report(pipe, timeout);
    match report {
        ReadOutcome::Report(Report::Ready(detail)) => {
            let detail: serde_json::Value = serde_json::from_str(&detail).unwrap_or_default();
            Ok(StartReport {
                state: DaemonState::Running,
                already_running: false,
                pid: detail["pid"].as_u64().and_then(|p| u32::try_from(p).ok()),
                generation: detail["generation"].as_str().map(str::to_string),
                socket: home.socket(),
                tcp: detail["tcp"].as_str().map(str::to_string),
                ready_ms: Some(started.elapsed().as_millis() as u64),
                cleaned_stale_files: cleaned,
            })
        }
        ReadOutcome::Report(Report::Failed(message)) => {
            let code = wait_exit(&mut child);
            let kind = if code == Some(Kind::Refused.exit_code()) {
                Kind::Refused
            } else {
                Kind::Failed
            };
            Err(CliError::new(
                kind,
                "start_failed",
                format!("the daemon could not start: {message}"),
            )
            .details(log_tail(home))
            .hint("see `berth daemon logs` for the whole log"))
        }
        ReadOutcome::Eof => {
            let code = wait_exit(&mut child);
            let how = code.map_or_else(
                || "was killed by a signal".to_string(),
                |c| format!("exited with status {c}"),
            );
            let mut details = Vec::new();
            if let Some(f) =
                FailureRecord::read(&home.last_failure()).filter(|f| f.time_ms >= spawned_at_ms)
            {
                details.push(format!("failure record ({}): {}", f.phase, f.message));
            }
            details.extend(log_tail(home));
            Err(CliError::failed(
                "start_crashed",
                format!("the daemon {how} before it was ready"),
            )
            .details(details)
            .hint("fix the cause shown in the log above, then run `berth daemon start` again"))
        }
        ReadOutcome::TimedOut => Err(CliError::failed(
            "start_timeout",
            format!(
                "the daemon (pid {}) did not report ready within {:?}",
                child.id(),
                timeout
            ),
        )
        .hint("it may still be starting: check `berth daemon status` and `berth daemon logs`")),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn log_tail(home: &Home) -> Vec<String> {
    let lines = logging::tail(home, FAILURE_TAIL);
    if lines.is_empty() {
        return vec![format!("({} is empty)", home.daemon_log().display())];
    }
    let mut out = vec![format!("last lines of {}:", home.daemon_log().display())];
    out.extend(lines.into_iter().map(|l| format!("| {l}")));
    out
}

/// The file descriptors the daemon sees the readiness pipe and the token pipe on.
const READY_FD: i32 = 3;
const TOKEN_FD: i32 = 4;

/// A pipe already holding the whole token, read end first; the token never enters the
/// daemon's environment (where `/proc/PID/environ` would show it).
fn token_pipe(token: &str) -> CliResult<OwnedFd> {
    let fail = |e: std::io::Error| CliError::failed("pipe", format!("cannot pass the token: {e}"));
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| fail(e.into()))?;
    std::io::Write::write_all(&mut File::from(write_end), token.as_bytes()).map_err(fail)?;
    Ok(read_end)
}

fn spawn_daemon(ctx: &Ctx, config: &ServeConfig) -> CliResult<(Child, OwnedFd)> {
    let home = &ctx.home;
    runtime::prepare_run_dir(home).map_err(|e| {
        CliError::failed(
            "run_dir",
            format!("cannot prepare {}: {e}", home.run_dir().display()),
        )
    })?;
    let exe = std::env::current_exe().map_err(|e| {
        CliError::failed("no_exe", format!("cannot find the berth executable: {e}"))
    })?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.daemon_log())
        .map_err(|e| {
            CliError::failed(
                "log",
                format!("cannot open {}: {e}", home.daemon_log().display()),
            )
        })?;
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| CliError::failed("pipe", format!("cannot create the readiness pipe: {e}")))?;

    let mut cmd = Command::new(exe);
    cmd.arg("--home")
        .arg(home.root())
        .arg("serve")
        .arg("--log-max-bytes")
        .arg(config.log_max_bytes.to_string())
        .arg("--log-keep")
        .arg(config.log_keep.to_string())
        .arg("--event-retention")
        .arg(config.event_retention.to_string())
        .arg("--ready-fd")
        .arg(READY_FD.to_string())
        .arg("--detached")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(addr) = config.listen {
        cmd.arg("--listen").arg(addr.to_string());
    }
    let mut token_read = None;
    match &config.token_source {
        Some(TokenSource::File(path)) => {
            cmd.arg("--token-file").arg(path);
        }
        Some(TokenSource::Env) => {
            token_read = Some(token_pipe(ctx.env_token.as_deref().unwrap_or_default())?);
            cmd.arg("--token-fd").arg(TOKEN_FD.to_string());
        }
        None => {}
    }
    let fd = write_end.as_raw_fd();
    let token_fd = token_read.as_ref().map(|t| t.as_raw_fd());
    // SAFETY: the closure runs in the forked child before exec and calls only async-signal-safe
    // functions (fcntl, dup2, setsid) on descriptors that exist in the child. Both pipes are
    // first copied above 10 (close-on-exec), so placing one on 3 or 4 cannot clobber the other.
    unsafe {
        cmd.pre_exec(move || {
            let place = |from: i32, to: i32| -> std::io::Result<()> {
                if libc::dup2(from, to) < 0 || libc::fcntl(to, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            };
            let ready_high = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
            let token_high = token_fd.map(|t| libc::fcntl(t, libc::F_DUPFD_CLOEXEC, 10));
            if ready_high < 0 || token_high.is_some_and(|t| t < 0) {
                return Err(std::io::Error::last_os_error());
            }
            place(ready_high, READY_FD)?;
            if let Some(t) = token_high {
                place(t, TOKEN_FD)?;
            }
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| CliError::failed("spawn", format!("cannot start the daemon process: {e}")))?;
    drop(write_end);
    drop(token_read);
    Ok((child, read_end))
}

enum ReadOutcome {
    Report(Report),
    Eof,
    TimedOut,
}

/// Waits for the daemon's one line on the readiness pipe, bounded by `timeout`.
fn read_report(pipe: OwnedFd, timeout: Duration) -> ReadOutcome {
    let deadline = Instant::now() + timeout;
    let mut file = File::from(pipe);
    let mut buf = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return ReadOutcome::TimedOut;
        }
        let mut pfd = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1);
        // SAFETY: one valid pollfd for an open descriptor.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return ReadOutcome::Eof;
        }
        if rc == 0 {
            continue;
        }
        let mut chunk = [0u8; 4096];
        match file.read(&mut chunk) {
            Ok(0) | Err(_) => return ReadOutcome::Eof,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line = String::from_utf8_lossy(&buf[..end]).into_owned();
            return match parse_report(&line) {
                Some(r) => ReadOutcome::Report(r),
                None => ReadOutcome::Report(Report::Failed(format!(
                    "unexpected readiness message {line:?}"
                ))),
            };
        }
    }
}

/// The exit code of a child that is ending (bounded wait); `None` if killed by a signal or still
/// running after the wait.
fn wait_exit(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(status)) => return status.code(),
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => return None,
        }
    }
    None
}

#[derive(Debug, Serialize)]
struct StopReport {
    was: DaemonState,
    stopped: bool,
    pid: Option<u32>,
    outcome: Option<StopOutcome>,
    elapsed_ms: u64,
    /// Stale files left in place (not running; `daemon start` or `doctor --fix` cleans them).
    stale_files: Vec<PathBuf>,
}

pub async fn stop(ctx: &Ctx, args: StopArgs) -> CliResult<i32> {
    let report = stop_daemon(ctx, &args.timeouts, args.all).await?;
    emit(ctx.json, &report, render_stop);
    Ok(0)
}

fn render_stop(r: &StopReport) -> String {
    match (r.stopped, r.outcome) {
        (true, Some(outcome)) => {
            let how = match outcome {
                StopOutcome::Graceful => "gracefully",
                StopOutcome::Terminated => "after SIGTERM",
                StopOutcome::Killed => "after SIGKILL; its runtime files were removed",
            };
            let pid = r.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            format!("berth daemon stopped{pid} {how} in {} ms", r.elapsed_ms)
        }
        _ if !r.stale_files.is_empty() => {
            let files: Vec<String> = r
                .stale_files
                .iter()
                .map(|f| f.display().to_string())
                .collect();
            format!(
                "berth daemon is not running; stale files remain: {}\n`berth daemon start` or `berth doctor --fix` removes them",
                files.join(", ")
            )
        }
        _ => "berth daemon is not running".to_string(),
    }
}

/// Waits until no process holds the home's lock, polling; `false` when `timeout` passes first.
async fn wait_gone(home: &Home, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if probe_lock(home) == LockObservation::Free {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) -> StopInput {
    let Ok(raw) = i32::try_from(pid) else {
        return StopInput::Exited;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), sig) {
        Ok(()) => StopInput::SignalSent,
        Err(_) => StopInput::Exited,
    }
}

async fn stop_daemon(ctx: &Ctx, t: &StopTimeouts, all: bool) -> CliResult<StopReport> {
    let home = &ctx.home;
    let p = probe(home).await;
    let started = Instant::now();
    let mut report = StopReport {
        was: p.state,
        stopped: false,
        pid: p.pid(),
        outcome: None,
        elapsed_ms: 0,
        stale_files: Vec::new(),
    };
    match p.state {
        DaemonState::Stopped => return Ok(report),
        DaemonState::Stale => {
            report.stale_files = p.files.clone();
            return Ok(report);
        }
        DaemonState::Foreign => return Err(foreign_error(home)),
        DaemonState::Incompatible => return Err(incompatible_error(&p)),
        DaemonState::Running | DaemonState::Starting | DaemonState::Stopping => {}
    }
    let pid = match p.lock {
        LockObservation::Held { pid: Some(pid) } => pid,
        _ => p.pid().ok_or_else(|| {
            CliError::failed("no_pid", "the daemon is running but its pid is unknown")
                .hint("find it with `pgrep -f 'berth.*serve'` and stop it by hand")
        })?,
    };
    let mut state = stop::INITIAL;
    loop {
        let input = match state {
            // With --all the answer waits for every agent's stop (grace periods included).
            StopState::Ask => match Client::unix(home.socket())
                .with_timeout(if all {
                    Duration::from_secs(120)
                } else {
                    berth_client::DEFAULT_TIMEOUT
                })
                .shutdown("berth daemon stop", all)
                .await
            {
                Ok(()) => StopInput::AskAccepted,
                Err(_) if probe_lock(home) == LockObservation::Free => StopInput::Exited,
                Err(_) => StopInput::AskFailed,
            },
            StopState::AwaitGraceful => wait_input(home, t.graceful_timeout).await,
            StopState::Terminate => signal(pid, nix::sys::signal::Signal::SIGTERM),
            StopState::AwaitTerm => wait_input(home, t.term_timeout).await,
            StopState::Kill => signal(pid, nix::sys::signal::Signal::SIGKILL),
            StopState::AwaitKill => wait_input(home, t.kill_timeout).await,
            StopState::Done(outcome) => {
                // Whatever the daemon could not remove itself (killed, crashed) goes now that it
                // is really gone; a socket something else answers on stays.
                let after = probe(home).await;
                clean_stale(home, &after)?;
                report.stopped = true;
                report.outcome = Some(outcome);
                report.elapsed_ms = started.elapsed().as_millis() as u64;
                return Ok(report);
            }
            StopState::Unkillable => {
                return Err(CliError::failed(
                    "unkillable",
                    format!("the daemon (pid {pid}) is still alive after SIGKILL"),
                )
                .hint("it may be stuck in the kernel (e.g. on a hung file system); its runtime files were left in place"));
            }
        };
        state = stop::next(state, input)
            .map_err(|e| CliError::failed("internal", format!("stop procedure: {e}")))?;
    }
}

async fn wait_input(home: &Home, timeout: Duration) -> StopInput {
    if wait_gone(home, timeout).await {
        StopInput::Exited
    } else {
        StopInput::TimedOut
    }
}

#[derive(Debug, Serialize)]
struct RestartReport {
    stop: StopReport,
    start: StartReport,
}

pub async fn restart(ctx: &Ctx, args: RestartArgs) -> CliResult<i32> {
    let recorded = berth_daemon::metadata::Metadata::read(&ctx.home).map(|m| m.config);
    let config = recorded.unwrap_or_else(|| ServeConfig::new(ctx.home.root()));
    if config.token_source == Some(TokenSource::Env) && ctx.env_token.is_none() {
        return Err(CliError::new(
            Kind::Usage,
            "token_missing",
            "the running daemon took its TCP token from BERTH_TOKEN, which is not set here",
        )
        .hint("set BERTH_TOKEN to the same token and run the restart again"));
    }
    serve::validate(&config)?;
    serve::load_token(ctx, &config)?;
    let stopped = stop_daemon(ctx, &args.timeouts, false).await?;
    let started = start_with(ctx, &config, args.start_timeout).await?;
    let report = RestartReport {
        stop: stopped,
        start: started,
    };
    emit(ctx.json, &report, |r| {
        format!("{}\n{}", render_stop(&r.stop), render_start(&r.start))
    });
    Ok(0)
}

#[derive(Debug, Serialize)]
struct FailureReport {
    #[serde(flatten)]
    record: FailureRecord,
    /// Whether the failure belongs to the daemon run that is alive now.
    current_run: bool,
}

#[derive(Debug, Serialize)]
struct StatusReport {
    state: DaemonState,
    healthy: bool,
    pid: Option<u32>,
    generation: Option<String>,
    version: Option<String>,
    protocol: Option<u32>,
    socket: PathBuf,
    tcp: Option<String>,
    uptime_ms: Option<u64>,
    fingerprint: Option<String>,
    /// Whether the running configuration equals the one these options describe.
    config_matches: Option<bool>,
    config_diff: Vec<FieldDiff>,
    activity: Option<Activity>,
    last_failure: Option<FailureReport>,
    /// Runtime files present (for `stale`: what start or doctor --fix will remove).
    files: Vec<PathBuf>,
}

pub async fn status(ctx: &Ctx, args: StatusArgs) -> CliResult<i32> {
    let home = &ctx.home;
    let mut p = probe(home).await;
    let detail = if p
        .handshake
        .as_ref()
        .is_some_and(|h| h.protocol == PROTOCOL_VERSION)
    {
        p.daemon_status().await.ok()
    } else {
        None
    };
    let wanted = serve::config(ctx, &args.options)
        .effective(PROTOCOL_VERSION)
        .fields;
    let config_diff = detail
        .as_ref()
        .map(|d| config::diff(&wanted, &d.config))
        .unwrap_or_default();
    let generation = p.handshake.as_ref().map(|h| h.generation.clone());
    let last_failure = FailureRecord::read(&home.last_failure()).map(|record| FailureReport {
        current_run: generation.as_deref() == Some(record.generation.as_str()),
        record,
    });
    let report = StatusReport {
        state: p.state,
        healthy: p.state == DaemonState::Running,
        pid: p
            .pid()
            .filter(|_| p.state.is_alive() || p.state == DaemonState::Incompatible),
        generation,
        version: p.handshake.as_ref().map(|h| h.version.clone()),
        protocol: p.handshake.as_ref().map(|h| h.protocol),
        socket: home.socket(),
        tcp: detail.as_ref().and_then(|d| d.tcp.clone()),
        uptime_ms: detail.as_ref().map(|d| d.uptime_ms),
        fingerprint: detail.as_ref().map(|d| d.fingerprint.clone()),
        config_matches: detail.as_ref().map(|_| config_diff.is_empty()),
        config_diff,
        activity: detail.map(|d| d.activity),
        last_failure,
        files: p.files.clone(),
    };
    emit(ctx.json, &report, |r| render_status(r, home));
    Ok(match p.state {
        s if s.is_alive() => 0,
        DaemonState::Stopped | DaemonState::Stale => Kind::NotRunning.exit_code(),
        _ => Kind::Failed.exit_code(),
    })
}

fn render_status(r: &StatusReport, home: &Home) -> String {
    let mut s = format!("berth daemon: {}\n", r.state.as_str());
    let mut line = |k: &str, v: String| s += &format!("  {k:<12} {v}\n");
    if let Some(pid) = r.pid {
        line("pid", pid.to_string());
    }
    if let Some(g) = &r.generation {
        line("generation", g.clone());
    }
    if let (Some(v), Some(p)) = (&r.version, r.protocol) {
        line("version", format!("{v} (protocol {p})"));
    }
    line("socket", r.socket.display().to_string());
    if let Some(tcp) = &r.tcp {
        line("tcp", format!("{tcp} (bearer token required)"));
    }
    if let Some(up) = r.uptime_ms {
        line("uptime", output::duration_ms(up));
    }
    if let Some(fp) = &r.fingerprint {
        let m = if r.config_matches == Some(true) {
            "matches"
        } else {
            "differs from these options"
        };
        line("config", format!("{fp} ({m})"));
    }
    for d in &r.config_diff {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
        line(
            "",
            format!(
                "{}: running {}, asked for {}",
                d.field,
                show(&d.running),
                show(&d.wanted)
            ),
        );
    }
    if let Some(a) = &r.activity {
        line(
            "activity",
            format!(
                "requests {}, open connections {}, event subscribers {}, last event #{}",
                a.requests, a.open_connections, a.event_subscribers, a.last_event_seq
            ),
        );
    }
    if let Some(f) = &r.last_failure {
        let when = if f.current_run {
            "this run"
        } else {
            "an earlier run"
        };
        line(
            "last failure",
            format!(
                "{} ({when}, {}, {}): {}",
                output::time_ms(f.record.time_ms),
                f.record.phase,
                f.record.generation,
                f.record.message
            ),
        );
    }
    match r.state {
        DaemonState::Stale => {
            let files: Vec<String> = r.files.iter().map(|f| f.display().to_string()).collect();
            s += &format!(
                "  leftover files of a daemon that is gone: {}\n  `berth daemon start` or `berth doctor --fix` removes them\n",
                files.join(", ")
            );
        }
        DaemonState::Foreign => {
            s += &format!(
                "  {} is held by a program that is not berth; berth will not touch it\n",
                home.socket().display()
            );
        }
        DaemonState::Incompatible => {
            s += "  a berth daemon of another protocol version answers; stop it with the berth that started it\n";
        }
        DaemonState::Starting => s += "  preparing storage; not ready yet (healthy: false)\n",
        _ => {}
    }
    s
}
