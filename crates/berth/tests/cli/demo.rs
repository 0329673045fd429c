//! `berth demo` runs to the end and leaves nothing behind.

use crate::home;

#[test]
fn the_demo_runs_to_the_end_and_leaves_nothing_behind() {
    let h = home();
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = h.command(&["demo"]);
    cmd.env("TMPDIR", tmp.path());
    let out = h.run_cmd(cmd);
    out.expect_code(0);
    for expected in [
        "paired with demo",
        "commit(s) from the agent",
        "in the agent's workspace",
        "stopped pairing with demo: your checkout is back on main",
        "M README.md",
        "cleaned up",
    ] {
        assert!(
            out.stdout.contains(expected),
            "missing {expected:?}:\n{out}"
        );
    }
    // Its directory (project, home, workspace) is gone, and no process of it is left.
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // (A keeper answers a stop once everything it kept is gone, and ends itself a moment
    // later: give the last ones that moment.)
    let left = || {
        let procs = std::process::Command::new("pgrep")
            .args(["-f", &tmp.path().display().to_string()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&procs.stdout).into_owned()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !left().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let procs = left();
    assert!(procs.is_empty(), "processes left: {procs}");
    // The demo used its own home: the test home was never touched.
    assert!(!h.socket().exists());
}
