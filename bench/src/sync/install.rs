//! Installing the peer tools when they are missing (Debian's `unison`, `syncthing` and `rsync`,
//! and the crates.io `unison-fsmonitor` that Unison's watch mode needs; Debian's `tmux` for the
//! terminal benchmark), and their versions.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::tools::Tool;

/// `$CARGO_HOME/bin`, or `~/.cargo/bin`.
pub fn cargo_bin() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"))
        .join("bin")
}

/// `PATH` with cargo's bin directory first (where `unison-fsmonitor` is installed).
pub fn path_with_cargo_bin() -> OsString {
    let mut dirs = vec![cargo_bin()];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

fn on_path(program: &str, path: &OsString) -> bool {
    std::env::split_paths(path).any(|d| d.join(program).is_file())
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    eprintln!("installing: {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{program} {} failed ({status})", args.join(" ")))
    }
}

/// Installs Debian's `packages` (as root).
pub fn debian(packages: &[&str]) -> Result<(), String> {
    run("apt-get", &["update", "-q"])?;
    let mut args = vec!["install", "-y", "-q"];
    args.extend(packages);
    run("apt-get", &args)
}

/// Installs what `tools` need and is not on `PATH` yet.
pub fn ensure(tools: &[Tool]) -> Result<(), String> {
    let path = path_with_cargo_bin();
    let mut packages = Vec::new();
    for (tool, program) in [
        (Tool::Unison, "unison"),
        (Tool::Syncthing, "syncthing"),
        (Tool::Rsync, "rsync"),
    ] {
        if tools.contains(&tool) && !on_path(program, &path) {
            packages.push(program);
        }
    }
    if !packages.is_empty() {
        debian(&packages)?;
    }
    if tools.contains(&Tool::Unison) && !on_path("unison-fsmonitor", &path) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        run(&cargo, &["install", "--locked", "unison-fsmonitor"])?;
    }
    Ok(())
}

fn first_line(program: &str, args: &[&str], path: &OsString) -> String {
    Command::new(program)
        .args(args)
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// `unison-fsmonitor` has no `--version`; cargo remembers what it installed.
fn fsmonitor_version() -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    Command::new(cargo)
        .args(["install", "--list"])
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find(|l| l.starts_with("unison-fsmonitor "))
                .map(|l| l.trim_end_matches(':').to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// `(tool, version)` for the report.
pub fn versions(tools: &[Tool], berth: &std::path::Path) -> Vec<(String, String)> {
    let path = path_with_cargo_bin();
    let mut out = Vec::new();
    for &tool in tools {
        let version = match tool {
            Tool::Berth => first_line(&berth.display().to_string(), &["--version"], &path),
            Tool::Unison => first_line("unison", &["-version"], &path),
            Tool::Syncthing => first_line("syncthing", &["--version"], &path),
            Tool::Cp => first_line("cp", &["--version"], &path),
            Tool::Rsync => first_line("rsync", &["--version"], &path),
        };
        out.push((tool.label().to_string(), version));
        if tool == Tool::Unison {
            out.push(("unison-fsmonitor".into(), fsmonitor_version()));
        }
    }
    out
}
