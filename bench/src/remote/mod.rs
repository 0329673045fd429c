//! The sync benchmark over ssh (`-- remote`): the `-- sync` harness, trees and measurements
//! with beta on the far side of a real ssh connection to an `sshd` of the benchmark's own on
//! 127.0.0.1 ([`sshd`]) — berth's `debug sync ALPHA ssh://…` against Unison over ssh (and
//! `rsync -e ssh` for the first copy) — plus the bytes the connections carried ([`traffic`]).
//! Writes `bench/results/remote.md`.

pub mod sshd;
pub mod traffic;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::sync::cleanup::TempDir;
use crate::sync::options::Options;
use crate::sync::report::{self, Results};
use crate::sync::tools::Tool;
use crate::sync::{self, Env, install};
use sshd::{Client, Sshd};

pub const USAGE: &str = "usage: berth-bench remote [--quick] [--tools berth,unison,rsync] [--only live|copy] \
[--edits N] [--edit-timeout-ms MS] [--edit-gap-ms MS] [--small-tree N] [--large-tree N] [--rewrite N] \
[--copy-files N] [--copy-runs N] [--idle-secs N] [--berth-no-ready]";

/// The tools measured over ssh (`rsync` for the first copy only).
const TOOLS: [Tool; 3] = [Tool::Berth, Tool::Unison, Tool::Rsync];

/// How long the far side of a finished run may take to notice its connection closed.
const SESSIONS_GONE: Duration = Duration::from_secs(10);

/// berth's first connection: `berth debug sync EMPTY ssh://…/EMPTY --once`, which installs
/// berth's binary on the far side; how long it took.
fn install_berth(env: &Env, ssh: &Client) -> Result<Duration, String> {
    let tmp = TempDir::new("berth-bench-install-")?;
    let (here, there) = (tmp.path().join("here"), tmp.path().join("there"));
    for d in [&here, &there] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let began = Instant::now();
    let out = Command::new(&env.berth)
        .env("BERTH_HOME", tmp.path().join("home"))
        .env("BERTH_SSH", ssh.command())
        .env_remove("BERTH_REMOTE_BIN")
        .args(["debug", "sync"])
        .arg(&here)
        .arg(format!("ssh://127.0.0.1:{}{}", ssh.port, there.display()))
        .arg("--once")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", env.berth.display()))?;
    if !out.status.success() {
        return Err(format!(
            "berth debug sync over ssh failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(began.elapsed())
}

/// Installs the ssh client and server from Debian when missing.
fn ensure_ssh() -> Result<(), String> {
    let have = |p: &str| Path::new(p).exists();
    if have("/usr/sbin/sshd") && have("/usr/bin/ssh") && have("/usr/bin/ss") {
        return Ok(());
    }
    install::debian(&["openssh-server", "openssh-client", "iproute2"])
}

pub fn run(args: &[String], root: &Path) -> Result<PathBuf, String> {
    let opts = Options::parse_among(args, &TOOLS, USAGE)?;
    let began = Instant::now();
    let load_before = sync::load_average();
    ensure_ssh()?;
    let berth = sync::prepare(&opts, root)?;
    let mut server = Sshd::start()?;
    eprintln!(
        "sshd on 127.0.0.1:{} ({})",
        server.client().port,
        server.client().config.display()
    );
    let env = Env {
        berth,
        path: install::path_with_cargo_bin(),
        berth_no_ready: opts.berth_no_ready,
        ssh: Some(server.client().clone()),
    };
    let install = if opts.uses(Tool::Berth) {
        let took = install_berth(&env, server.client());
        server.wait_sessions_gone(SESSIONS_GONE);
        match &took {
            Ok(d) => eprintln!(
                "berth installed itself on the far side in {:.2} s ({})",
                d.as_secs_f64(),
                server.cache().display()
            ),
            Err(e) => eprintln!("berth could not install itself on the far side: {e}"),
        }
        took
    } else {
        Err("berth was not measured".into())
    };
    let versions = sync::versions(&opts, &env, root);
    let (sessions, first_copy) =
        sync::measure(&env, &opts, |_| server.wait_sessions_gone(SESSIONS_GONE));
    drop(server);
    let results = Results {
        args: args.to_vec(),
        opts,
        versions,
        sessions,
        first_copy,
        took: began.elapsed(),
        load: [load_before, sync::load_average()],
        ssh: Some(report::Ssh {
            version: sshd::version(),
            install,
        }),
    };
    let md = results.markdown();
    let out = root.join("bench/results/remote.md");
    std::fs::create_dir_all(out.parent().unwrap_or(root)).map_err(|e| e.to_string())?;
    std::fs::write(&out, &md).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    print!("{md}");
    Ok(out)
}
