//! `berth debug sync`: the engine between two plain directories, with the ancestor persisted.

use crate::home;

#[test]
fn syncs_both_ways_keeps_conflicts_and_resumes_without_false_conflicts() {
    let h = home();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("alpha"), tmp.path().join("beta"));
    std::fs::create_dir_all(a.join("src")).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join("src/lib.rs"), "user").unwrap();
    std::fs::write(b.join("notes.md"), "agent").unwrap();
    let (a_s, b_s) = (a.to_str().unwrap(), b.to_str().unwrap());
    let first = h.run(&["--json", "debug", "sync", a_s, b_s, "--once"]);
    first.expect_code(0);
    assert_eq!(first.json()["to_beta"], 2);
    assert_eq!(first.json()["to_alpha"], 1);
    assert_eq!(
        std::fs::read_to_string(b.join("src/lib.rs")).unwrap(),
        "user"
    );
    // A second process starts from the persisted ancestor: nothing to do, no false conflict.
    let again = h
        .run(&["--json", "debug", "sync", a_s, b_s, "--once"])
        .json();
    assert_eq!(
        (
            again["to_alpha"].as_u64(),
            again["to_beta"].as_u64(),
            again["conflicts"].as_u64()
        ),
        (Some(0), Some(0), Some(0))
    );
    std::fs::write(a.join("notes.md"), "user edit").unwrap();
    std::fs::write(b.join("notes.md"), "agent edit").unwrap();
    let conflict = h
        .run(&["--json", "debug", "sync", a_s, b_s, "--once"])
        .json();
    assert_eq!(conflict["conflicts"], 1);
    assert_eq!(
        std::fs::read_to_string(b.join("notes.md")).unwrap(),
        "user edit"
    );
    let kept = tmp.path().join("beta.berth-kept/1/notes.md");
    assert_eq!(std::fs::read_to_string(kept).unwrap(), "agent edit");
    // A later run keeps its losers beside the earlier ones, never over them.
    std::fs::write(a.join("notes.md"), "user again").unwrap();
    std::fs::write(b.join("notes.md"), "agent again").unwrap();
    let later = h
        .run(&["--json", "debug", "sync", a_s, b_s, "--once"])
        .json();
    assert_eq!(later["conflicts"], 1);
    let kept2 = tmp.path().join("beta.berth-kept/2/notes.md");
    assert_eq!(std::fs::read_to_string(kept2).unwrap(), "agent again");
    let kept = tmp.path().join("beta.berth-kept/1/notes.md");
    assert_eq!(std::fs::read_to_string(kept).unwrap(), "agent edit");
    let nested = h.run(&[
        "debug",
        "sync",
        a_s,
        a.join("src").to_str().unwrap(),
        "--once",
    ]);
    nested.expect_code(2);
}
