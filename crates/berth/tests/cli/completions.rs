//! Completions, the manual page and --help examples, all made from the clap definitions.

use crate::home;

#[test]
fn completions_for_each_shell_know_the_commands() {
    let h = home();
    for (shell, marker) in [
        ("bash", "complete -F _berth"),
        ("zsh", "#compdef berth"),
        ("fish", "complete -c berth"),
    ] {
        let out = h.run(&["completions", shell]);
        out.expect_code(0);
        assert!(out.stdout.contains(marker), "{shell}: {out}");
        for word in ["daemon", "agent", "pair", "stash", "listen-public"] {
            assert!(out.stdout.contains(word), "{shell} lacks {word}");
        }
    }
    let bash = h.run(&["completions", "bash"]).stdout;
    let syntax = std::process::Command::new("bash")
        .args(["-n", "-c", &bash])
        .status()
        .unwrap();
    assert!(syntax.success(), "the bash script parses");
    h.run(&["completions", "powershell"]).expect_code(2);
}

#[test]
fn the_manual_page_is_roff_and_lists_the_commands() {
    let out = home().run(&["man"]);
    out.expect_code(0);
    assert!(out.stdout.starts_with(".ie \\n(.g .ds Aq"), "{out}");
    assert!(out.stdout.contains(".TH berth 1"), "{out}");
    for word in [
        "daemon",
        "agent",
        "pair",
        "stash",
        "completions",
        "home directory",
    ] {
        assert!(out.stdout.contains(word), "the page lacks {word}");
    }
}

#[test]
fn each_command_has_a_manual_page_of_its_own() {
    let h = home();
    let out = h.run(&["man", "daemon", "stop"]);
    out.expect_code(0);
    assert!(out.stdout.contains(".TH berth-daemon-stop 1"), "{out}");
    assert!(
        out.stdout.contains("berth daemon stop"),
        "its synopsis: {out}"
    );
    assert!(out.stdout.contains("\\-\\-all"), "its options: {out}");
    let agent = h.run(&["man", "agent"]);
    agent.expect_code(0);
    assert!(agent.stdout.contains(".TH berth-agent 1"), "{agent}");
    let bad = h.run(&["man", "no-such-command"]);
    bad.expect_code(2);
    assert!(bad.stderr.contains("berth --help"), "{bad}");
}

#[test]
fn the_main_commands_carry_examples_in_their_help() {
    let h = home();
    for args in [
        &["daemon", "start", "--help"][..],
        &["agent", "new", "--help"],
        &["pair", "--help"],
        &["stash", "--help"],
        &["up", "--help"],
        &["completions", "--help"],
    ] {
        let out = h.run(args);
        out.expect_code(0);
        assert!(out.stdout.contains("Example"), "{args:?}: {out}");
        assert!(out.stdout.contains("berth "), "{args:?}: {out}");
    }
}
