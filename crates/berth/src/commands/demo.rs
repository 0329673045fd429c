//! `berth demo`: pairing shown end to end in a few seconds, leaving nothing behind.
//!
//! Everything happens in a throwaway directory with its own berth home (so the demo never
//! touches your projects, agents or daemon): a small project with one uncommitted change, a
//! scripted agent that edits a file and commits every other edit, the daemon started for it,
//! `berth pair`, a live view of files and commits flowing both ways, one edit of "yours" that
//! reaches the agent, `berth pair stop` (your uncommitted change comes back exactly), then the
//! agent, the daemon and the directory are removed. Each step runs the real `berth` binary, as
//! you would.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::Ctx;
use crate::error::{CliError, CliResult};

/// What the demo agent does in its workspace: waits a moment for pairing, then appends to
/// NOTES.md six times and commits every other step.
const AGENT_SCRIPT: &str = "sleep 1; for i in 1 2 3 4 5 6; do \
printf 'step %s: the demo agent was here\\n' \"$i\" >> NOTES.md; sleep 0.6; \
if [ $((i % 2)) -eq 0 ]; then git add -A && git -c user.name='demo agent' \
-c user.email=agent@berth.invalid commit -qm \"demo agent: step $i\"; fi; done; exec sleep 3600";

/// How long the live view runs.
const WATCH: Duration = Duration::from_secs(6);

/// The throwaway directory; removed (with its daemon stopped first) however the demo ends.
struct Scratch {
    root: PathBuf,
    exe: PathBuf,
    daemon_started: bool,
}

impl Scratch {
    fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    fn project(&self) -> PathBuf {
        self.root.join("project")
    }

    /// `berth --home <scratch home> ARGS` in the project; its standard output.
    fn berth(&self, args: &[&str], show: bool) -> CliResult<String> {
        if show {
            println!("$ berth {}", args.join(" "));
        }
        let out = Command::new(&self.exe)
            .arg("--home")
            .arg(self.home())
            .args(args)
            .current_dir(self.project())
            .env_remove("BERTH_HOME")
            .env_remove("BERTH_FAILPOINTS")
            .output()
            .map_err(|e| failed(format!("cannot run berth: {e}")))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(failed(format!(
                "`berth {}` failed: {}{}",
                args.join(" "),
                stdout,
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        if show {
            for line in stdout.lines() {
                println!("  {line}");
            }
        }
        Ok(stdout)
    }

    fn status(&self) -> CliResult<serde_json::Value> {
        let out = self.berth(&["--json", "pair", "status"], false)?;
        serde_json::from_str(&out).map_err(|e| failed(format!("pair status: {e}")))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.daemon_started {
            // `--all` stops the agent (and every process of it) with the daemon.
            let _ = Command::new(&self.exe)
                .arg("--home")
                .arg(self.home())
                .args(["daemon", "stop", "--all"])
                .output();
        }
        let _ = remove_all(&self.root);
    }
}

/// Removes the demo's directory. A keeper answers a stop once everything it kept is gone and
/// ends itself a moment later, writing its last state as it goes: a removal that meets such a
/// file is tried again for a while (two seconds at most).
fn remove_all(root: &Path) -> std::io::Result<()> {
    let mut tries = 0;
    loop {
        match std::fs::remove_dir_all(root) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(_) if tries < 40 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

fn failed(message: String) -> CliError {
    CliError::failed("demo_failed", message)
}

fn git(dir: &Path, args: &[&str]) -> CliResult<String> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .map_err(|e| failed(format!("cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(failed(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn write(path: &Path, text: &str) -> CliResult<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| failed(format!("{}: {e}", dir.display())))?;
    }
    std::fs::write(path, text).map_err(|e| failed(format!("{}: {e}", path.display())))
}

/// The demo project: three files committed, one uncommitted change of "yours".
fn make_project(dir: &Path) -> CliResult<()> {
    std::fs::create_dir_all(dir).map_err(|e| failed(format!("{}: {e}", dir.display())))?;
    git(dir, &["init", "-q", "-b", "main"])?;
    git(dir, &["config", "user.name", "you"])?;
    git(dir, &["config", "user.email", "you@berth.invalid"])?;
    write(&dir.join("README.md"), "# demo\n")?;
    write(&dir.join("src/app.py"), "print('hello')\n")?;
    write(&dir.join(".gitignore"), "*.log\n")?;
    git(dir, &["add", "-A"])?;
    git(dir, &["commit", "-q", "-m", "the demo project"])?;
    write(&dir.join("README.md"), "# demo\n\nyour work in progress\n")
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

pub fn run(_ctx: &Ctx) -> CliResult<i32> {
    let exe = std::env::current_exe().map_err(|e| failed(format!("cannot find berth: {e}")))?;
    let root = std::env::temp_dir().join(format!("berth-demo-{}", std::process::id()));
    if root.exists() {
        return Err(failed(format!("{} exists already", root.display())));
    }
    let mut s = Scratch {
        root,
        exe,
        daemon_started: false,
    };
    println!("berth demo: you, pairing with an agent that edits and commits");
    println!(
        "  everything happens in {} and is removed at the end\n",
        s.root.display()
    );
    make_project(&s.project())?;
    println!("a project with three files and one uncommitted change of yours (README.md)\n");
    s.berth(&["daemon", "start"], true)?;
    s.daemon_started = true;
    s.berth(&["agent", "new", "demo", "--cmd", AGENT_SCRIPT], false)?;
    println!("$ berth agent new demo --cmd '<edits NOTES.md, commits every other edit>'");
    s.berth(&["agent", "start", "demo"], true)?;
    s.berth(&["pair", "demo"], true)?;

    let checkout = s.project();
    let workspace = PathBuf::from(
        s.status()?["agent_workspace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    println!("\nwatching your checkout for {} s:", WATCH.as_secs());
    let started = Instant::now();
    let mut last = String::new();
    let mut edited = false;
    while started.elapsed() < WATCH {
        let st = s.status()?;
        let line = format!(
            "{:<16} NOTES.md has {} line(s) · {} commit(s) from the agent, {} from you",
            st["describe"].as_str().unwrap_or_default(),
            lines(&checkout.join("NOTES.md")),
            st["commits_to_user"],
            st["commits_to_agent"],
        );
        if line != last {
            println!("  {:>4.1}s  {line}", started.elapsed().as_secs_f64());
            last = line;
        }
        if !edited && started.elapsed() > Duration::from_secs(3) {
            edited = true;
            write(&checkout.join("src/app.py"), "print('hello from you')\n")?;
            let at = Instant::now();
            println!("  you edit src/app.py in your checkout …");
            let arrived = || {
                std::fs::read_to_string(workspace.join("src/app.py"))
                    .is_ok_and(|t| t.contains("from you"))
            };
            while !arrived() && at.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(1));
            }
            if arrived() {
                println!(
                    "  … and it is in the agent's workspace {:.1} ms later",
                    at.elapsed().as_secs_f64() * 1000.0
                );
            } else {
                return Err(failed(
                    "your edit did not reach the agent's workspace within 5 s; see `berth pair \
                     status` in a real project, and `berth daemon logs`"
                        .into(),
                ));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("\n$ git log --oneline   (in your checkout, on berth/demo)");
    for l in git(&checkout, &["log", "--oneline", "-4"])?.lines() {
        println!("  {l}");
    }
    println!();
    s.berth(&["pair", "stop"], true)?;
    println!("$ git status --short   (back on main, your change exactly as it was)");
    for l in git(&checkout, &["status", "--short"])?.lines() {
        println!("  {l}");
    }
    let root = s.root.clone();
    drop(s);
    if root.exists() {
        return Err(failed(format!(
            "the demo is over, but {} could not be removed entirely; remove it yourself",
            root.display()
        )));
    }
    let root = root.display();
    println!(
        "\ncleaned up: the agent and the daemon are stopped and {root} is gone\n\
         try it on your own repository: `berth agent new NAME --cmd CMD`, then `berth pair NAME`"
    );
    Ok(0)
}
