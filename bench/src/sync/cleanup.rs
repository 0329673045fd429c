//! Leaving nothing behind when the run is interrupted: the tools run in process groups of their
//! own (so a terminal's Ctrl-C does not reach them), so on SIGINT, SIGTERM or SIGHUP the harness
//! stops every group and removes every temporary directory still registered here, then exits.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

static GROUPS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn add<T: PartialEq>(list: &Mutex<Vec<T>>, item: T) {
    if let Ok(mut v) = list.lock() {
        v.push(item);
    }
}

fn remove<T: PartialEq>(list: &Mutex<Vec<T>>, item: &T) {
    if let Ok(mut v) = list.lock() {
        v.retain(|x| x != item);
    }
}

pub fn add_group(pgid: u32) {
    add(&GROUPS, pgid);
}

pub fn remove_group(pgid: u32) {
    remove(&GROUPS, &pgid);
}

/// A temporary directory removed when dropped, or by the signal handler if the run is
/// interrupted first.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(prefix: &str) -> Result<TempDir, String> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        add(&DIRS, dir.path().to_path_buf());
        Ok(TempDir(dir))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        remove(&DIRS, &self.0.path().to_path_buf());
    }
}

/// Sends `signal` to process group `pgid`.
pub fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn clean_up_and_exit() -> ! {
    eprintln!("interrupted: stopping the tools and removing temporary directories…");
    let groups = GROUPS.lock().map(|g| g.clone()).unwrap_or_default();
    for &pgid in &groups {
        signal_group(pgid, "TERM");
    }
    std::thread::sleep(Duration::from_millis(500));
    for &pgid in &groups {
        signal_group(pgid, "KILL");
    }
    for dir in DIRS.lock().map(|d| d.clone()).unwrap_or_default() {
        let _ = std::fs::remove_dir_all(dir);
    }
    std::process::exit(130);
}

/// Starts a thread that cleans up and exits on SIGINT, SIGTERM or SIGHUP.
pub fn install() -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a signal handler: {e}"))?;
    let (mut int, mut term, mut hup) = rt
        .block_on(async {
            Ok::<_, std::io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
                signal(SignalKind::hangup())?,
            ))
        })
        .map_err(|e| format!("cannot handle signals: {e}"))?;
    std::thread::spawn(move || {
        rt.block_on(async {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
        });
        clean_up_and_exit();
    });
    Ok(())
}
