//! The first copy of a large tree into an empty directory: `cp -a`, `rsync -a`, one Unison batch
//! run and `berth debug sync --once`, each with a warm and a cold page cache.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::cleanup::TempDir;
use super::live;
use super::options::Options;
use super::tools::Tool;
use super::tree::Tree;
use super::{Env, wait};

#[derive(Debug)]
pub struct Copies {
    pub tool: Tool,
    pub warm: Vec<Duration>,
    pub cold: Vec<Duration>,
    pub error: Option<String>,
}

#[derive(Debug)]
pub struct FirstCopy {
    pub tree: Tree,
    pub bytes: u64,
    pub copies: Vec<Copies>,
    /// Why there are no cold-cache figures, if there are none.
    pub cold_missing: Option<String>,
}

/// Writes back dirty pages, then drops the page cache, dentries and inodes (cold) or reads the
/// whole source tree into it (warm: the kernel may have reclaimed some of it since).
fn flush(cold: bool, src: &Path, tree: &Tree) -> Result<(), String> {
    Command::new("sync")
        .status()
        .map_err(|e| format!("cannot run sync: {e}"))?;
    if cold {
        std::fs::write("/proc/sys/vm/drop_caches", "3")
            .map_err(|e| format!("cannot drop the page cache (needs root): {e}"))?;
    } else {
        for i in 0..tree.files {
            let path = src.join(tree.path(i));
            std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

fn remove(path: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("cannot remove {}: {e}", path.display()))
        }
        _ => Ok(()),
    }
}

/// One timed copy into a fresh destination, checked file by file afterwards.
fn once(tool: Tool, env: &Env, tmp: &Path, tree: &Tree, cold: bool) -> Result<Duration, String> {
    let (src, dst, work) = (tmp.join("src"), tmp.join("dst"), tmp.join("work"));
    remove(&dst)?;
    remove(&work)?;
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    if matches!(tool, Tool::Berth | Tool::Unison) || env.ssh.is_some() {
        std::fs::create_dir_all(&dst).map_err(|e| e.to_string())?;
    }
    let mut cmd = live::copy_command(tool, env, &work, &src, &dst)?;
    cmd.stdin(Stdio::null());
    flush(cold, &src, tree)?;
    let began = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", tool.name()))?;
    let took = began.elapsed();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(6).collect();
        return Err(format!(
            "{} exited with {}: {}",
            tool.name(),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        ));
    }
    wait::all(
        &dst,
        tree.files,
        |i| (tree.path(i), tree.content(i)),
        Instant::now(),
    )
    .map_err(|e| format!("{}'s copy is incomplete: {e}", tool.name()))?;
    Ok(took)
}

/// Copies with every tool that copies; `between` runs after each copy.
pub fn run(env: &Env, opts: &Options, between: &mut impl FnMut(Tool)) -> Result<FirstCopy, String> {
    let tree = Tree::with_mean(opts.copy_files, opts.copy_mean_size);
    let bytes = tree.bytes();
    let tmp = TempDir::new("berth-bench-copy-")?;
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).map_err(|e| e.to_string())?;
    eprintln!(
        "first copy: generating {} files, {:.0} MiB…",
        tree.files,
        bytes as f64 / (1 << 20) as f64
    );
    tree.generate(&src)?;
    let mut copies: Vec<Copies> = opts
        .tools
        .iter()
        .filter(|t| t.copies())
        .map(|&tool| Copies {
            tool,
            warm: Vec::new(),
            cold: Vec::new(),
            error: None,
        })
        .collect();
    let mut cold_missing = None;
    for cold in [false, true] {
        if cold && let Err(e) = flush(true, &src, &tree) {
            cold_missing = Some(e);
            break;
        }
        for run in 0..opts.copy_runs {
            for c in copies.iter_mut().filter(|c| c.error.is_none()) {
                let runs = if c.tool == Tool::Unison {
                    opts.copy_runs_slow
                } else {
                    opts.copy_runs
                };
                if run >= runs {
                    continue;
                }
                let result = once(c.tool, env, tmp.path(), &tree, cold);
                between(c.tool);
                match result {
                    Ok(took) => {
                        eprintln!(
                            "  {} {}: {:.2} s",
                            c.tool.name(),
                            if cold { "cold" } else { "warm" },
                            took.as_secs_f64()
                        );
                        if cold { &mut c.cold } else { &mut c.warm }.push(took);
                    }
                    Err(e) => {
                        eprintln!("  {}: {e}", c.tool.name());
                        c.error = Some(e);
                    }
                }
            }
        }
    }
    remove(&tmp.path().join("dst"))?;
    Ok(FirstCopy {
        tree,
        bytes,
        copies,
        cold_missing,
    })
}
