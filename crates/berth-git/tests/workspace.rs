//! Agent workspaces against real repositories: borrowing objects, keep-alive refs, the mirror.

// An integration test: its helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use berth_git::Git;
use berth_git::workspace::{self, Mirror, WorkspaceError};
use berth_testkit::{git, init_repo};

struct Setup {
    _tmp: tempfile::TempDir,
    project: std::path::PathBuf,
    ws: std::path::PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("project");
    std::fs::create_dir(&project).unwrap();
    init_repo(&project);
    for i in 0..3 {
        std::fs::write(project.join("f.txt"), format!("version {i}\n")).unwrap();
        git(&project, &["add", "."]);
        git(&project, &["commit", "-q", "-m", &format!("c{i}")]);
    }
    let ws = tmp.path().join("workspaces/fixer");
    Setup {
        _tmp: tmp,
        project,
        ws,
    }
}

fn commit_in(dir: &Path, file: &str, text: &str) -> String {
    std::fs::write(dir.join(file), text).unwrap();
    git(dir, &["add", "."]);
    git(
        dir,
        &[
            "-c",
            "user.name=A",
            "-c",
            "user.email=a@example.com",
            "commit",
            "-q",
            "-m",
            text,
        ],
    );
    git(dir, &["rev-parse", "HEAD"])
}

#[test]
fn a_workspace_borrows_the_projects_objects_and_starts_on_its_branch() {
    let s = setup();
    let base = git(&s.project, &["rev-parse", "HEAD~1"]);
    workspace::create(&Git::new(&s.project), &s.ws, "fixer", "HEAD~1").unwrap();
    assert_eq!(
        git(&s.ws, &["symbolic-ref", "HEAD"]),
        "refs/heads/berth/fixer"
    );
    assert_eq!(git(&s.ws, &["rev-parse", "HEAD"]), base);
    assert_eq!(
        std::fs::read_to_string(s.ws.join("f.txt")).unwrap(),
        "version 1\n"
    );
    let alternates = std::fs::read_to_string(s.ws.join(".git/objects/info/alternates")).unwrap();
    assert!(alternates.contains("project/.git/objects"), "{alternates}");
    // Nothing was copied: the workspace has no loose objects or packs of its own.
    assert_eq!(git(&s.ws, &["count-objects"]), "0 objects, 0 kilobytes");
    assert_eq!(
        git(&s.project, &["rev-parse", "refs/berth/agents/fixer"]),
        base
    );
    assert_eq!(git(&s.project, &["rev-parse", "berth/fixer"]), base);
}

#[test]
fn creation_checks_everything_before_changing_anything() {
    let s = setup();
    git(&s.project, &["branch", "berth/fixer"]);
    let err = workspace::create(&Git::new(&s.project), &s.ws, "fixer", "HEAD").unwrap_err();
    assert!(matches!(err, WorkspaceError::BranchExists { .. }), "{err}");
    assert!(!s.ws.exists());
    assert!(git(&s.project, &["for-each-ref", "refs/berth/"]).is_empty());
    let err = workspace::create(&Git::new(&s.project), &s.ws, "other", "no-such-ref").unwrap_err();
    assert!(matches!(err, WorkspaceError::BadBase(_)), "{err}");
}

#[test]
fn agent_commits_are_mirrored_by_fast_forward_and_kept_alive() {
    let s = setup();
    let project = Git::new(&s.project);
    let ws = workspace::create(&project, &s.ws, "fixer", "HEAD").unwrap();
    assert_eq!(
        workspace::sync_refs(&project, &ws, "fixer").unwrap(),
        Mirror::UpToDate
    );
    let tip = commit_in(&s.ws, "agent.txt", "agent work");
    match workspace::sync_refs(&project, &ws, "fixer").unwrap() {
        Mirror::Moved { to, .. } => assert_eq!(to, tip),
        other => panic!("{other:?}"),
    }
    assert_eq!(git(&s.project, &["rev-parse", "berth/fixer"]), tip);
    assert_eq!(
        git(&s.project, &["log", "-1", "--format=%s", "berth/fixer"]),
        "agent work"
    );
}

#[test]
fn mirroring_stops_when_the_user_moved_the_branch() {
    let s = setup();
    let project = Git::new(&s.project);
    let ws = workspace::create(&project, &s.ws, "fixer", "HEAD").unwrap();
    git(&s.project, &["checkout", "-q", "berth/fixer"]);
    let users = commit_in(&s.project, "user.txt", "user work");
    git(&s.project, &["checkout", "-q", "main"]);
    let agents = commit_in(&s.ws, "agent.txt", "agent work");
    match workspace::sync_refs(&project, &ws, "fixer").unwrap() {
        Mirror::UserMoved {
            branch_at,
            agent_at,
        } => {
            assert_eq!(branch_at.as_deref(), Some(users.as_str()));
            assert_eq!(agent_at, agents);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        git(&s.project, &["rev-parse", "berth/fixer"]),
        users,
        "the user's branch is untouched"
    );
    assert_eq!(
        git(&s.project, &["rev-parse", "refs/berth/agents/fixer"]),
        agents,
        "still kept alive"
    );
}

#[test]
fn gc_in_the_project_never_breaks_the_workspace() {
    let s = setup();
    let project = Git::new(&s.project);
    let ws = workspace::create(&project, &s.ws, "fixer", "HEAD~2").unwrap();
    commit_in(&s.ws, "agent.txt", "agent work");
    workspace::sync_refs(&project, &ws, "fixer").unwrap();
    // The user rewinds main and deletes the mirror: only the keep-alive ref still holds the
    // commits the workspace borrows.
    git(&s.project, &["reset", "-q", "--hard", "HEAD~2"]);
    git(&s.project, &["branch", "-q", "-D", "berth/fixer"]);
    git(&s.project, &["reflog", "expire", "--expire=now", "--all"]);
    git(&s.project, &["gc", "-q", "--prune=now"]);
    git(&s.ws, &["fsck", "--no-dangling"]);
    assert_eq!(git(&s.ws, &["log", "--format=%s"]).lines().count(), 2);
    assert_eq!(
        std::fs::read_to_string(s.ws.join("f.txt")).unwrap(),
        "version 0\n"
    );
}
