//! The sync benchmark: berth's engine against Unison and Syncthing (edit latency both ways on a
//! small and a large tree, many files rewritten at once, idle use) and against `cp -a`,
//! `rsync -a` and Unison for the first copy of a large tree. Writes `bench/results/sync.md`.
//! The same measurements run with beta across an ssh connection for `-- remote`
//! ([`crate::remote`]).

pub(crate) mod cleanup;
pub(crate) mod first_copy;
pub(crate) mod group;
mod http;
pub(crate) mod install;
mod live;
pub(crate) mod options;
pub use options::USAGE;
pub(crate) mod procs;
pub(crate) mod report;
pub(crate) mod session;
pub(crate) mod tools;
pub mod tree;
pub mod wait;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use options::Options;
use tools::Tool;
use tree::Tree;

/// What every tool run needs from the harness.
pub struct Env {
    pub berth: PathBuf,
    /// `PATH` with cargo's bin directory first (for `unison-fsmonitor`).
    pub path: OsString,
    pub berth_no_ready: bool,
    /// Reach beta through this ssh server (`-- remote`) instead of directly.
    pub ssh: Option<crate::remote::sshd::Client>,
}

/// `berth --version` plus the commit it was built from.
pub(crate) fn berth_commit(root: &Path) -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let head = git(&["rev-parse", "--short", "HEAD"]);
    let dirty = !git(&["status", "--porcelain", "--", "crates"]).is_empty();
    format!(
        "commit {head}{}",
        if dirty {
            " with uncommitted changes under crates/"
        } else {
            ""
        }
    )
}

/// The 1, 5 and 15 minute load averages (a busy machine shows here).
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Installs what `opts.tools` need and builds berth if it is measured; its path.
pub(crate) fn prepare(opts: &Options, root: &Path) -> Result<PathBuf, String> {
    cleanup::install()?;
    install::ensure(&opts.tools)?;
    if opts.uses(Tool::Berth) {
        crate::build_berth()
    } else {
        Ok(root.join("target/release/berth"))
    }
}

/// The tools' versions for the report, berth's with its commit.
pub(crate) fn versions(opts: &Options, env: &Env, root: &Path) -> Vec<(String, String)> {
    let mut versions = install::versions(&opts.tools, &env.berth);
    if let Some(v) = versions.iter_mut().find(|(t, _)| t == Tool::Berth.label()) {
        v.1 = format!("{} ({})", v.1, berth_commit(root));
    }
    versions
}

pub fn run(args: &[String], root: &Path) -> Result<PathBuf, String> {
    let opts = Options::parse(args)?;
    let began = Instant::now();
    let load_before = load_average();
    let berth = prepare(&opts, root)?;
    let env = Env {
        berth,
        path: install::path_with_cargo_bin(),
        berth_no_ready: opts.berth_no_ready,
        ssh: None,
    };
    let versions = versions(&opts, &env, root);
    let (sessions, first_copy) = measure(&env, &opts, |_| {});
    let results = report::Results {
        args: args.to_vec(),
        opts,
        versions,
        sessions,
        first_copy,
        took: began.elapsed(),
        load: [load_before, load_average()],
        ssh: None,
    };
    let md = results.markdown();
    let out = root.join("bench/results/sync.md");
    std::fs::create_dir_all(out.parent().unwrap_or(root)).map_err(|e| e.to_string())?;
    std::fs::write(&out, &md).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    print!("{md}");
    Ok(out)
}

/// Every tool's sessions on both edit trees, then the first copy; `between` runs after each
/// session (to let the far side of one finish before the next starts).
pub(crate) fn measure(
    env: &Env,
    opts: &Options,
    mut between: impl FnMut(Tool),
) -> (
    Vec<session::Session>,
    Option<Result<first_copy::FirstCopy, String>>,
) {
    let mut sessions = Vec::new();
    let trees = if opts.live {
        vec![opts.small_tree, opts.large_tree]
    } else {
        Vec::new()
    };
    for files in trees {
        let tree = Tree::small(files);
        let rewrite = (files == opts.large_tree).then_some(opts.rewrite);
        for &tool in opts.tools.iter().filter(|t| t.is_live()) {
            eprintln!("{} on {files} files…", tool.name());
            let s = session::run(tool, env, opts, &tree, rewrite);
            if let Err(e) = &s.initial {
                eprintln!("  {}: set-up failed: {e}", tool.name());
            }
            if let Some(e) = &s.error {
                eprintln!("  {}: {e}", tool.name());
            }
            sessions.push(s);
            between(tool);
        }
    }
    let first_copy = (opts.copy && opts.tools.iter().any(|t| t.copies()))
        .then(|| first_copy::run(env, opts, &mut between));
    (sessions, first_copy)
}
