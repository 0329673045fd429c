//! `berth daemon start|stop|restart|status`.

use std::path::PathBuf;

use berth_control::failure::FailureRecord;
use berth_control::metadata::Metadata;
use berth_control::probe::probe;
use berth_control::start::Started;
use berth_control::stop::{StopTimeouts, Stopped};
use berth_control::{error::describe_diff, start, stop};
use berth_core::config::{self, FieldDiff, ServeConfig, TokenSource};
use berth_core::daemon_state::DaemonState;
use berth_core::home::Home;
use berth_core::stop::StopOutcome;
use berth_proto::{Activity, PROTOCOL_VERSION};
use serde::Serialize;

use super::serve;
use crate::Ctx;
use crate::cli::{self, RestartArgs, StartArgs, StatusArgs, StopArgs};
use crate::error::{CliError, CliResult, Kind};
use crate::output::{self, emit};

pub async fn start(ctx: &Ctx, args: StartArgs) -> CliResult<i32> {
    let config = serve::config(ctx, &args.options);
    serve::validate(&config)?;
    serve::load_token(ctx, &config)?;
    let report = start::start(
        &ctx.home,
        &config,
        ctx.env_token.as_deref(),
        args.start_timeout,
    )
    .await?;
    emit(ctx.json, &report, render_start);
    Ok(0)
}

fn render_start(r: &Started) -> String {
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

fn timeouts(t: &cli::StopTimeouts) -> StopTimeouts {
    StopTimeouts {
        graceful: t.graceful_timeout,
        term: t.term_timeout,
        kill: t.kill_timeout,
    }
}

pub async fn stop(ctx: &Ctx, args: StopArgs) -> CliResult<i32> {
    let report = stop::stop(&ctx.home, &timeouts(&args.timeouts), args.all).await?;
    emit(ctx.json, &report, render_stop);
    Ok(0)
}

fn render_stop(r: &Stopped) -> String {
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

#[derive(Debug, Serialize)]
struct RestartReport {
    stop: Stopped,
    start: Started,
}

pub async fn restart(ctx: &Ctx, args: RestartArgs) -> CliResult<i32> {
    let recorded = Metadata::read(&ctx.home).map(|m| m.config);
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
    let stopped = stop::stop(&ctx.home, &timeouts(&args.timeouts), false).await?;
    let started = start::start(
        &ctx.home,
        &config,
        ctx.env_token.as_deref(),
        args.start_timeout,
    )
    .await?;
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
        line("", describe_diff(d));
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
