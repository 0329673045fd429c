//! A keeper as the daemon sees it: starting one (detached, in a session of its own, from the
//! daemon's own binary) and looking at one through the state file it keeps. The supervisor
//! (`agents.rs`), turns (`inbox.rs`) and the far side of an agent elsewhere (`far.rs`) all start
//! and watch their keepers through here.

use std::os::unix::process::CommandExt;
use std::process::Stdio;

use berth_supervisor::keeper::read_state;
use berth_supervisor::keeper::spec::{KeeperDir, KeeperState};
use berth_supervisor::tree::Identity;

/// Whether the keeper recorded in `state` is still that very process.
fn keeper_alive(state: &KeeperState) -> bool {
    Identity {
        pid: state.keeper.pid,
        start_time: state.keeper.start_time,
    }
    .is_alive()
}

/// What a keeper's files and process show.
pub(crate) enum Look {
    /// It runs.
    Alive(KeeperState),
    /// It recorded that everything it kept has ended.
    Done(KeeperState),
    /// It is gone without saying it was done.
    Vanished,
}

/// Looks at the keeper of `dir`; `None` before it wrote its state. A keeper records `done`
/// just before it exits, so one whose process is gone is looked at again: it may have
/// finished between the two looks, and only one that never said so has vanished.
pub(crate) fn look(dir: &KeeperDir) -> Option<Look> {
    let st = read_state(dir)?;
    if st.done {
        return Some(Look::Done(st));
    }
    if keeper_alive(&st) {
        return Some(Look::Alive(st));
    }
    Some(match read_state(dir) {
        Some(st) if st.done => Look::Done(st),
        _ => Look::Vanished,
    })
}

/// Whether the keeper `spawn_keeper` started for `dir` has reported: its state once it wrote
/// it, what it said if it ended before that, `None` while neither happened yet.
pub(crate) fn reported(
    dir: &KeeperDir,
    exited: &std::sync::mpsc::Receiver<std::process::ExitStatus>,
) -> Option<Result<KeeperState, String>> {
    if let Some(st) = read_state(dir) {
        return Some(Ok(st));
    }
    exited.try_recv().ok()?;
    let said = std::fs::read_to_string(dir.path().join("keeper.err")).unwrap_or_default();
    Some(Err(said.trim().trim_start_matches("error: ").to_string()))
}

/// Starts a keeper for the spec in `dir`, detached (in a session of its own); the receiver
/// says when it exits. Turns (`inbox.rs`) start theirs through here too.
pub(crate) fn spawn_keeper(
    dir: &KeeperDir,
) -> std::io::Result<std::sync::mpsc::Receiver<std::process::ExitStatus>> {
    // The daemon's own binary, also when its file was replaced or removed since it started (an
    // upgrade in place): the keeper is always the daemon's version. Shown under its path.
    let shown = std::env::current_exe()?;
    // Whatever the keeper says before its own log exists (it cannot start the child, say).
    let errors = std::fs::File::create(dir.path().join("keeper.err"))?;
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg0(shown.as_os_str());
    // `__keeper` first: the binary recognises it before parsing anything else (see its main).
    cmd.arg("__keeper")
        .arg("--dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(errors);
    // SAFETY: setsid(2) in the child before exec: the keeper leaves the daemon's session, so
    // nothing that happens to the daemon reaches it.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    // Reap it when it ends, so it never lingers as the daemon's zombie, and say when.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Ok(status) = child.wait() {
            let _ = tx.send(status);
        }
    });
    Ok(rx)
}
