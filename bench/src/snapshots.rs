//! The snapshot benchmark: `berth stash`'s capture and restore against
//! `git stash push -u` + `git stash apply --index` on the same 50,000-file repository with 1,000
//! dirty files, in the same run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_git::Git;
use berth_git::snapshot::{self, CaptureOptions};

use crate::cli::git;
use crate::machine;
use crate::stats::{Summary, ms};

const DIRS: usize = 500;
const FILES_PER_DIR: usize = 100;
const ROUNDS: usize = 7;

fn timed(f: impl FnOnce() -> Result<(), String>) -> Result<Duration, String> {
    let began = Instant::now();
    f()?;
    Ok(began.elapsed())
}

fn file_body(d: usize, f: usize) -> String {
    format!(
        "directory {d} file {f}\n{}\n",
        "content line of moderate length\n".repeat(6)
    )
}

/// 50,000 committed files.
fn build_repo(root: &Path) -> Result<(), String> {
    git(root, &["init", "-q", "-b", "main"])?;
    git(root, &["config", "user.name", "bench"])?;
    git(root, &["config", "user.email", "bench@localhost"])?;
    for d in 0..DIRS {
        let dir = root.join(format!("d{d:03}"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        for f in 0..FILES_PER_DIR {
            std::fs::write(dir.join(format!("f{f:03}.txt")), file_body(d, f))
                .map_err(|e| e.to_string())?;
        }
    }
    git(root, &["add", "-A"])?;
    git(root, &["commit", "-q", "-m", "50,000 files"]).map(drop)
}

/// 1,000 dirty files: 300 staged edits, 400 unstaged edits, 200 new untracked, 100 deleted.
fn make_dirty(root: &Path) -> Result<(), String> {
    let path = |i: usize| root.join(format!("d{:03}/f{:03}.txt", i % DIRS, i / DIRS));
    let write = |p: PathBuf, s: &str| std::fs::write(p, s).map_err(|e| e.to_string());
    for i in 0..300 {
        write(path(i), "staged edit\n")?;
    }
    let staged: Vec<String> = (0..300)
        .map(|i| format!("d{:03}/f{:03}.txt", i % DIRS, i / DIRS))
        .collect();
    let mut args = vec!["add", "--"];
    args.extend(staged.iter().map(String::as_str));
    git(root, &args)?;
    for i in 300..700 {
        write(path(i), "unstaged edit\n")?;
    }
    for i in 0..200 {
        write(
            root.join(format!("d{:03}/new{i:03}.txt", i % DIRS)),
            "untracked\n",
        )?;
    }
    for i in 700..800 {
        std::fs::remove_file(path(i)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn porcelain(root: &Path) -> Result<Vec<u8>, String> {
    Command::new("git")
        .current_dir(root)
        .args(["status", "--porcelain=v2", "-z", "--untracked-files=all"])
        .output()
        .map(|o| o.stdout)
        .map_err(|e| e.to_string())
}

pub fn run(root_dir: &Path) -> Result<PathBuf, String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let repo = tmp.path();
    eprintln!("building the 50,000-file repository…");
    build_repo(repo)?;
    make_dirty(repo)?;
    let dirty = porcelain(repo)?;
    let api = Git::new(repo);
    let (mut b_save, mut b_restore, mut g_save, mut g_apply) = (vec![], vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        let id = format!("bench-{round}");
        let opts = CaptureOptions {
            id: id.clone(),
            time_ms: 0,
            reason: "bench".into(),
            message: None,
            pairing: None,
        };
        b_save.push(timed(|| {
            snapshot::capture(&api, opts)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })?);
        git(repo, &["reset", "-q", "--hard"])?;
        git(repo, &["clean", "-fdq"])?;
        b_restore.push(timed(|| {
            snapshot::restore(&api, &id)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })?);
        if porcelain(repo)? != dirty {
            return Err("berth's round trip did not reproduce the dirty state".into());
        }
        g_save.push(timed(|| {
            git(repo, &["stash", "push", "-q", "-u"]).map(drop)
        })?);
        g_apply.push(timed(|| {
            git(repo, &["stash", "apply", "-q", "--index"]).map(drop)
        })?);
        git(repo, &["stash", "drop", "-q"])?;
        if porcelain(repo)? != dirty {
            return Err("git stash's round trip did not reproduce the dirty state".into());
        }
        eprintln!("round {} of {ROUNDS} done", round + 1);
    }
    let (bs, br, gs, ga) = (
        Summary::of(&b_save),
        Summary::of(&b_restore),
        Summary::of(&g_save),
        Summary::of(&g_apply),
    );
    let ratio = |a: &Summary, b: &Summary| a.p50.as_secs_f64() / b.p50.as_secs_f64();
    let row = |what: &str, s: &Summary| {
        format!(
            "| {what} | {} | {} | {} | {} |\n",
            s.n,
            ms(s.p50),
            ms(s.min),
            ms(s.max)
        )
    };
    let mut md = String::from("# Snapshot benchmark\n\n");
    md += "Produced by `cargo run --release --locked -p berth-bench -- snapshots`: one repository \
           of 50,000 committed files (500 directories × 100) with 1,000 dirty files (300 staged \
           edits, 400 unstaged edits, 200 untracked, 100 deleted). Each round captures, resets \
           to clean (`git reset --hard` + `git clean -fd`, not timed) and restores with berth, \
           then does the same with `git stash push -u` + `git stash apply --index`; both round \
           trips are checked to reproduce the dirty state exactly. Times in milliseconds.\n\n## Machine\n\n";
    md += &machine::describe();
    md += "\n## Results\n\n| what | runs | median | min | max |\n|---|---|---|---|---|\n";
    md += &row("berth snapshot capture (touches nothing)", &bs);
    md += &row("`git stash push -u` (captures and resets the tree)", &gs);
    md += &row("berth snapshot restore (exact, then removes it)", &br);
    md += &row("`git stash apply --index`", &ga);
    md += &format!(
        "\nRatios of medians (berth ÷ git): capture {:.2}, restore {:.2}, round trip {:.2}.\n",
        ratio(&bs, &gs),
        ratio(&br, &ga),
        (bs.p50 + br.p50).as_secs_f64() / (gs.p50 + ga.p50).as_secs_f64()
    );
    md += "\n`git stash push` also resets the working tree, which berth's capture never does; \
           berth's restore also checks the branch, the tree and ignored-file collisions before \
           it changes anything.\n";
    let out = root_dir.join("bench/results/snapshots.md");
    std::fs::create_dir_all(out.parent().unwrap_or(root_dir)).map_err(|e| e.to_string())?;
    std::fs::write(&out, &md).map_err(|e| e.to_string())?;
    print!("{md}");
    Ok(out)
}
