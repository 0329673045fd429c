//! Progress lines for long work: on a terminal a line says what is going on, and it is gone
//! when the result is printed; with `--json`, or when output is not a terminal, nothing extra.

use std::cell::Cell;

use berth_testkit::{Tmux, repo};

use crate::home;

/// Every start and stop step that copies or cleans takes this long, so the work is long.
const SLOW: &str = "pair.start.copy_agent_files=sleep(2000);pair.stop.clean_checkout=sleep(2000)";

#[test]
fn a_long_pair_start_and_stop_show_a_progress_line_on_a_terminal_only() {
    let h = home();
    let mut daemon = h.command(&["daemon", "start"]);
    daemon.env("BERTH_FAILPOINTS", SLOW);
    h.run_cmd(daemon).expect_code(0);
    let r = repo(&[("README", "hi\n")]);
    let p = r.path();
    h.run_in(p, &["agent", "new", "fixer"]).expect_code(0);

    // On a terminal: a line while it works (with the step from `pair status`), cleared at
    // the end.
    let t = Tmux::start();
    t.open("start", 120, 12, &Tmux::berth(&h, p, &["pair", "fixer"]));
    let during = t.wait_for("start", "pairing with fixer");
    assert!(during.contains("pairing with fixer"), "{during}");
    let after = t.wait_for("start", "EXIT=0");
    assert!(!after.contains("pairing with fixer:"), "cleared: {after}");
    t.open("stop", 120, 12, &Tmux::berth(&h, p, &["pair", "stop"]));
    t.wait_for("stop", "stopping the pairing");
    t.wait_for("stop", "EXIT=0");

    // Not a terminal: the result only.
    let piped = h.run_in(p, &["pair", "fixer"]);
    piped.expect_code(0);
    assert_eq!(
        piped.stderr, "",
        "nothing on stderr when it is not a terminal"
    );
    h.run_in(p, &["pair", "stop"]).expect_code(0);

    // `--json` on a terminal: no line at any moment.
    let seen = Cell::new(false);
    t.open(
        "json",
        120,
        12,
        &Tmux::berth(&h, p, &["--json", "pair", "fixer"]),
    );
    t.wait_until("json", "the command ended", |s| {
        seen.set(seen.get() || s.contains("pairing with"));
        s.contains("EXIT=")
    });
    assert!(!seen.get(), "no progress line with --json");
    assert!(t.screen("json").contains("EXIT=0"));
    h.run_in(p, &["pair", "stop"]).expect_code(0);
    h.run(&["daemon", "stop"]).expect_code(0);
}
