//! `berth doctor [--fix]`: diagnose the home; repair only what is safe to repair.
//!
//! Never repaired: a foreign socket (someone else's program), an incompatible daemon, and the
//! database's content (an unreadable or newer-schema database is the user's data; doctor explains
//! what to do with it instead). Modes are: `--fix` makes an open home private again.

use std::os::unix::fs::MetadataExt;

use berth_client::{Client, ClientError};
use berth_core::daemon_state::DaemonState;
use berth_daemon::database::{self, DatabaseHealth};
use berth_proto::{ErrorCode, PairLeftovers, PairLeftoversRequest, PairRepo, PairStatus};
use serde::Serialize;

use super::pair;
use crate::Ctx;
use crate::cli::DoctorArgs;
use crate::error::CliResult;
use crate::output::emit;
use berth_control::privacy;
use berth_control::probe::{clean_stale, probe};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Verdict {
    Ok,
    Problem,
    Fixed,
    /// Worth knowing, not broken (a paused pairing): does not make the exit code 1.
    Warning,
}

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    status: Verdict,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
    /// Further lines (a paused pairing's notices).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    details: Vec<String>,
}

impl Check {
    fn ok(name: &'static str, message: impl Into<String>) -> Check {
        Check {
            name,
            status: Verdict::Ok,
            message: message.into(),
            hint: None,
            details: Vec::new(),
        }
    }
    fn problem(name: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            name,
            status: Verdict::Problem,
            message: message.into(),
            hint: Some(hint.into()),
            details: Vec::new(),
        }
    }
    fn fixed(name: &'static str, message: impl Into<String>) -> Check {
        Check {
            name,
            status: Verdict::Fixed,
            message: message.into(),
            hint: None,
            details: Vec::new(),
        }
    }
    fn warning(name: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            name,
            status: Verdict::Warning,
            message: message.into(),
            hint: Some(hint.into()),
            details: Vec::new(),
        }
    }
}

#[derive(Debug, Serialize)]
struct DoctorReport {
    ok: bool,
    checks: Vec<Check>,
}

pub async fn run(ctx: &Ctx, args: DoctorArgs) -> CliResult<i32> {
    let checks = vec![
        check_home(ctx, args.fix),
        check_daemon(ctx, args.fix).await,
        check_database(ctx),
        check_pairing(ctx).await,
        check_leftovers(ctx, args.fix).await,
    ];
    let report = DoctorReport {
        ok: checks.iter().all(|c| c.status != Verdict::Problem),
        checks,
    };
    emit(ctx.json, &report, |r| {
        let mut s = String::new();
        for c in &r.checks {
            let mark = match c.status {
                Verdict::Ok => "ok     ",
                Verdict::Problem => "PROBLEM",
                Verdict::Fixed => "fixed  ",
                Verdict::Warning => "warning",
            };
            s += &format!("{mark} {:<9} {}\n", c.name, c.message);
            for d in &c.details {
                s += &format!("        {:<9} {d}\n", "");
            }
            if let Some(h) = &c.hint {
                s += &format!("        {:<9} fix: {h}\n", "");
            }
        }
        s
    });
    Ok(if report.ok { 0 } else { 1 })
}

fn check_home(ctx: &Ctx, fix: bool) -> Check {
    const NAME: &str = "home";
    let root = ctx.home.root();
    if !root.exists() {
        return Check::ok(NAME, format!("{} does not exist yet", root.display()));
    }
    let dir = ctx.home.run_dir();
    let me = nix::unistd::geteuid().as_raw();
    if let Ok(meta) = std::fs::metadata(&dir)
        && meta.uid() != me
    {
        return Check::problem(
            NAME,
            format!(
                "{} belongs to uid {}, not to you",
                dir.display(),
                meta.uid()
            ),
            "use a BERTH_HOME of your own",
        );
    }
    let open = privacy::open_paths(&ctx.home);
    if open.is_empty() {
        return Check::ok(
            NAME,
            format!(
                "{} is private (folders 0700, database 0600)",
                root.display()
            ),
        );
    }
    let what = "others can read what is in the home";
    let details = open.iter().map(ToString::to_string).collect();
    let check = if !fix {
        Check::problem(
            NAME,
            what,
            "run `berth doctor --fix` (chmod 700 folders, 600 the database)",
        )
    } else {
        match privacy::tighten(&open) {
            Ok(()) => Check::fixed(NAME, format!("{what}; made it private")),
            Err(e) => Check::problem(
                NAME,
                format!("{what}; chmod failed: {e}"),
                "chmod each path listed as it says",
            ),
        }
    };
    Check { details, ..check }
}

async fn check_daemon(ctx: &Ctx, fix: bool) -> Check {
    const NAME: &str = "daemon";
    let home = &ctx.home;
    let p = probe(home).await;
    let pid = p.pid().map(|p| format!(" (pid {p})")).unwrap_or_default();
    match p.state {
        DaemonState::Running | DaemonState::Starting | DaemonState::Stopping => {
            Check::ok(NAME, format!("{}{pid}", p.state.as_str()))
        }
        DaemonState::Stopped => Check::ok(NAME, "stopped, no leftover files"),
        DaemonState::Stale => {
            let files: Vec<String> = p.files.iter().map(|f| f.display().to_string()).collect();
            let what = format!("stale files of a daemon that is gone: {}", files.join(", "));
            if !fix {
                return Check::problem(
                    NAME,
                    what,
                    "run `berth doctor --fix` or `berth daemon start`",
                );
            }
            match clean_stale(home, &p) {
                Ok(removed) => {
                    Check::fixed(NAME, format!("removed {} stale file(s)", removed.len()))
                }
                Err(e) => Check::problem(
                    NAME,
                    format!("{what}; removing failed: {e}"),
                    "remove them by hand",
                ),
            }
        }
        DaemonState::Foreign => Check::problem(
            NAME,
            format!(
                "{} is held by a program that is not berth; berth never removes it",
                home.socket().display()
            ),
            "find it with `ss -xlp | grep berth.sock` and stop it, or use another BERTH_HOME",
        ),
        DaemonState::Incompatible => {
            let (v, proto) = p
                .handshake
                .as_ref()
                .map(|h| (h.version.clone(), h.protocol))
                .unwrap_or_default();
            Check::problem(
                NAME,
                format!(
                    "a berth daemon of version {v} (protocol {proto}){pid} is running; this berth speaks protocol {}",
                    berth_proto::PROTOCOL_VERSION
                ),
                format!("stop it with berth {v} (`berth daemon stop`), then start this one"),
            )
        }
    }
}

fn check_database(ctx: &Ctx) -> Check {
    const NAME: &str = "database";
    let path = ctx.home.database();
    match database::inspect(&path) {
        DatabaseHealth::Missing => Check::ok(NAME, format!("{} not created yet", path.display())),
        DatabaseHealth::Readable { version, supported } if version == supported => {
            Check::ok(NAME, format!("{} (schema {version})", path.display()))
        }
        DatabaseHealth::Readable { version, supported } => Check::ok(
            NAME,
            format!(
                "{} (schema {version}; the daemon migrates it to {supported} on start)",
                path.display(),
            ),
        ),
        DatabaseHealth::Newer { message } => Check::problem(
            NAME,
            message,
            "upgrade berth; doctor never changes the database",
        ),
        DatabaseHealth::Unreadable { message } => Check::problem(
            NAME,
            message,
            format!(
                "if it is damaged, stop the daemon and move {} aside (berth starts a new one); doctor never deletes it",
                path.display()
            ),
        ),
    }
}

/// The pairing of the repository doctor runs in (asked only of a live daemon).
async fn check_pairing(ctx: &Ctx) -> Check {
    const NAME: &str = "pairing";
    if !probe(&ctx.home).await.state.is_alive() {
        return Check::ok(NAME, "not checked: the daemon is not running");
    }
    let repo = match super::stash::here() {
        Ok(r) => r,
        Err(e) => return Check::ok(NAME, format!("not checked: {}", e.message)),
    };
    match Client::unix(ctx.home.socket())
        .post_json::<_, PairStatus>("/v1/pair/status", &PairRepo { repo })
        .await
    {
        Ok(s) => pairing_check(&s),
        Err(ClientError::Api { error, .. }) if error.code == ErrorCode::NotARepository => {
            Check::ok(NAME, "not checked: not inside a git repository")
        }
        Err(ClientError::Api { error, .. }) if error.code == ErrorCode::NotFound => {
            Check::ok(NAME, "not checked: this daemon does not offer pairing")
        }
        Err(e) => Check::warning(
            NAME,
            format!("cannot ask the daemon: {e}"),
            "check `berth daemon status` and `berth daemon logs`",
        ),
    }
}

/// berth's lines left in repositories' `info/exclude` where no pairing is open (a daemon that
/// died as a pairing ended); `fix` asks the daemon to take them out (asked only of a live
/// daemon, which knows which lines are berth's).
async fn check_leftovers(ctx: &Ctx, fix: bool) -> Check {
    const NAME: &str = "leftovers";
    if !probe(&ctx.home).await.state.is_alive() {
        return Check::ok(NAME, "not checked: the daemon is not running");
    }
    match Client::unix(ctx.home.socket())
        .post_json::<_, PairLeftovers>("/v1/pair/leftovers", &PairLeftoversRequest { fix })
        .await
    {
        Ok(found) => leftovers_check(&found, fix),
        Err(ClientError::Api { error, .. }) if error.code == ErrorCode::NotFound => {
            Check::ok(NAME, "not checked: this daemon does not offer it")
        }
        Err(e) => Check::warning(
            NAME,
            format!("cannot ask the daemon: {e}"),
            "check `berth daemon status` and `berth daemon logs`",
        ),
    }
}

/// None left is fine; lines left are a problem `--fix` solves (fixed once all are out).
fn leftovers_check(found: &PairLeftovers, fix: bool) -> Check {
    const NAME: &str = "leftovers";
    if found.lines.is_empty() {
        return Check::ok(NAME, "no line of berth's left in any info/exclude");
    }
    let failed: Vec<String> = found
        .lines
        .iter()
        .filter_map(|l| l.error.as_ref().map(|e| format!("{}: {e}", l.path)))
        .collect();
    let paths: Vec<&str> = found.lines.iter().map(|l| l.path.as_str()).collect();
    if !failed.is_empty() {
        let mut c = Check::problem(
            NAME,
            "berth's line could not be taken out of info/exclude where no pairing is open",
            "remove the two lines `# berth: …` and `.berth-tmp-*` from each file by hand",
        );
        c.details = failed;
        return c;
    }
    let mut c = if fix {
        Check::fixed(
            NAME,
            format!(
                "took berth's line out of {} info/exclude file(s) where pairing had ended",
                paths.len()
            ),
        )
    } else {
        Check::problem(
            NAME,
            format!(
                "berth's line `.berth-tmp-*` is still in {} info/exclude file(s) although no \
                 pairing is open there (a daemon stopped as a pairing ended)",
                paths.len()
            ),
            "run `berth doctor --fix` (takes out exactly berth's lines)",
        )
    };
    c.details = paths.into_iter().map(str::to_string).collect();
    c
}

/// Off and active are fine; paused (with its notices) and a transition under way are worth a
/// warning.
fn pairing_check(s: &PairStatus) -> Check {
    const NAME: &str = "pairing";
    let what = format!("{} ({})", pair::summary(s), s.repo);
    match s.state.as_str() {
        "off" => Check::ok(NAME, format!("not paired ({})", s.repo)),
        "active" => Check::ok(NAME, what),
        "paused" => {
            let mut c = Check::warning(
                NAME,
                what,
                "pairing resumes by itself once every notice is gone; `berth pair stop` leaves \
                 the checkout and the snapshot as they are",
            );
            c.details = s
                .notices
                .iter()
                .map(|n| pair::notice_line(&n.message))
                .collect();
            c
        }
        _ => {
            let step = s
                .step
                .as_ref()
                .map(|st| format!(", step {st}"))
                .unwrap_or_default();
            Check::warning(
                NAME,
                format!("{what}: a transition is under way{step}"),
                "wait for it (`berth pair status`); if it stays, see `berth daemon logs` — a \
                 daemon restart finishes or undoes the step",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use berth_proto::PairNotice;

    use super::*;

    fn status(state: &str, describe: &str) -> PairStatus {
        PairStatus {
            state: state.into(),
            describe: describe.into(),
            agent: Some("fixer".into()),
            ..PairStatus::off("/r")
        }
    }

    #[test]
    fn off_and_active_are_ok() {
        let mut off = status("off", "off");
        off.agent = None;
        let c = pairing_check(&off);
        assert_eq!(
            (c.status, c.message.as_str()),
            (Verdict::Ok, "not paired (/r)")
        );
        let c = pairing_check(&status("active", "active (idle)"));
        assert_eq!(
            (c.status, c.message.as_str()),
            (Verdict::Ok, "active (idle) with fixer (/r)")
        );
    }

    #[test]
    fn paused_is_a_warning_listing_its_notices() {
        let mut s = status("paused", "paused (1 notice)");
        s.notices.push(PairNotice {
            code: "user_switched_branch".into(),
            side: Some("user".into()),
            message: "paused: you switched to `main` — switch back".into(),
        });
        let c = pairing_check(&s);
        assert_eq!(c.status, Verdict::Warning);
        assert_eq!(c.details, ["paused: you switched to `main` — switch back"]);
    }

    #[test]
    fn lines_left_behind_are_a_problem_until_taken_out() {
        let line = |error: Option<&str>| berth_proto::PairLeftover {
            path: "/r/.git/info/exclude".into(),
            project: "/r".into(),
            removed: error.is_none(),
            error: error.map(str::to_string),
        };
        let none = PairLeftovers { lines: vec![] };
        assert_eq!(leftovers_check(&none, false).status, Verdict::Ok);
        let left = PairLeftovers {
            lines: vec![line(None)],
        };
        let c = leftovers_check(&left, false);
        assert_eq!(c.status, Verdict::Problem);
        assert!(c.hint.unwrap().contains("--fix"));
        assert_eq!(c.details, ["/r/.git/info/exclude"]);
        assert_eq!(leftovers_check(&left, true).status, Verdict::Fixed);
        let failed = PairLeftovers {
            lines: vec![line(Some("permission denied"))],
        };
        let c = leftovers_check(&failed, true);
        assert_eq!(c.status, Verdict::Problem);
        assert_eq!(c.details, ["/r/.git/info/exclude: permission denied"]);
    }

    #[test]
    fn a_transition_is_a_warning_naming_its_step() {
        for state in ["starting", "stopping", "rolling_back"] {
            let mut s = status(state, &format!("{state} (x)"));
            s.step = Some("start.snapshot".into());
            let c = pairing_check(&s);
            assert_eq!(c.status, Verdict::Warning, "{state}");
            assert!(c.message.contains("step start.snapshot"), "{}", c.message);
        }
    }
}
