//! Fast-forward-only ref moves with compare-and-swap, against a real repository.

// An integration test: its helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_git::Git;
use berth_git::refs::{self, RefError};
use berth_testkit::git;

/// `main` at three commits, `side` one commit off its first.
fn repo() -> (tempfile::TempDir, Git) {
    let dir = berth_testkit::repo(&[]);
    let p = dir.path();
    for n in ["two", "three"] {
        git(p, &["commit", "-q", "--allow-empty", "-m", n]);
    }
    git(p, &["branch", "side", "HEAD~2"]);
    git(p, &["checkout", "-q", "side"]);
    git(p, &["commit", "-q", "--allow-empty", "-m", "side"]);
    git(p, &["checkout", "-q", "main"]);
    let api = Git::new(p);
    (dir, api)
}

fn oid(git: &Git, rev: &str) -> String {
    git.query(&["rev-parse", rev]).unwrap()
}

#[test]
fn fast_forwards_and_creates() {
    let (_d, git) = repo();
    let (first, tip) = (oid(&git, "main~2"), oid(&git, "main"));
    refs::fast_forward(&git, "refs/heads/mirror", None, &first).unwrap();
    refs::fast_forward(&git, "refs/heads/mirror", Some(&first), &tip).unwrap();
    assert_eq!(
        refs::resolve(&git, "refs/heads/mirror").unwrap().as_deref(),
        Some(tip.as_str())
    );
    // Moving to where it already is, is a no-op success.
    refs::fast_forward(&git, "refs/heads/mirror", Some(&tip), &tip).unwrap();
}

#[test]
fn refuses_anything_but_a_fast_forward() {
    let (_d, git) = repo();
    let (tip, side, back) = (oid(&git, "main"), oid(&git, "side"), oid(&git, "main~1"));
    for target in [&side, &back] {
        let err = refs::fast_forward(&git, "refs/heads/main", Some(&tip), target).unwrap_err();
        assert!(matches!(err, RefError::NotFastForward { .. }), "{err}");
    }
    assert_eq!(oid(&git, "main"), tip, "the ref did not move");
}

#[test]
fn compare_and_swap_fails_when_the_ref_moved_meanwhile() {
    let (_d, git) = repo();
    let (stale, tip) = (oid(&git, "main~1"), oid(&git, "main"));
    let first = oid(&git, "main~2");
    // The caller saw main at `first`, but it is at `tip` now.
    match refs::fast_forward(&git, "refs/heads/main", Some(&first), &stale).unwrap_err() {
        RefError::Changed {
            expected, found, ..
        } => {
            assert_eq!(expected.as_deref(), Some(first.as_str()));
            assert_eq!(found.as_deref(), Some(tip.as_str()));
        }
        other => panic!("{other}"),
    }
    assert_eq!(oid(&git, "main"), tip);
    // Creating a ref that exists is refused the same way.
    let err = refs::fast_forward(&git, "refs/heads/main", None, &tip).unwrap_err();
    assert!(
        matches!(err, RefError::Changed { expected: None, .. }),
        "{err}"
    );
}

#[test]
fn delete_only_removes_the_expected_value() {
    let (_d, git) = repo();
    let (tip, side) = (oid(&git, "main"), oid(&git, "side"));
    refs::compare_and_swap(&git, "refs/berth/test", None, &tip, "test").unwrap();
    assert!(matches!(
        refs::delete(&git, "refs/berth/test", &side),
        Err(RefError::Changed { .. })
    ));
    assert!(refs::resolve(&git, "refs/berth/test").unwrap().is_some());
    refs::delete(&git, "refs/berth/test", &tip).unwrap();
    assert!(refs::resolve(&git, "refs/berth/test").unwrap().is_none());
}

#[test]
fn a_name_git_cannot_be_given_resolves_to_nothing() {
    let (_dir, git) = repo();
    assert!(refs::resolve(&git, "HEAD").unwrap().is_some());
    for name in ["ma\0in", "HEAD\0", "\0"] {
        assert_eq!(refs::resolve(&git, name).unwrap(), None, "{name:?}");
    }
}
