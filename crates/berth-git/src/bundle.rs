//! git bundles: how commits travel between the project and an agent elsewhere, as one file
//! copied over the protocol's stream (digest-checked there). A bundle's objects are fetched
//! without moving any ref: what becomes of a branch is decided by the caller, by fast-forward.

use std::path::Path;

use crate::git::{Access, Git, GitError};
use crate::refs;

/// Writes a bundle of `heads` (ref names) at `path`, leaving out the history of `known`
/// (commits the receiving side holds).
pub fn create(git: &Git, path: &Path, heads: &[&str], known: &[&str]) -> Result<(), GitError> {
    let out = path.display().to_string();
    let exclusions: Vec<String> = known.iter().map(|k| format!("^{k}")).collect();
    let mut args = vec!["bundle", "create", "--quiet", out.as_str()];
    args.extend_from_slice(heads);
    args.extend(exclusions.iter().map(String::as_str));
    git.run(Access::Write, &args).map(drop)
}

/// The refs a bundle holds: `(commit, ref name)` each.
pub fn heads(git: &Git, path: &Path) -> Result<Vec<(String, String)>, GitError> {
    let listed = git.query(&["bundle", "list-heads", &path.display().to_string()])?;
    Ok(listed
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(oid, name)| (oid.to_string(), name.to_string()))
        .collect())
}

/// Fetches every object of the bundle at `path` into `git` and returns its heads; no ref moves.
pub fn fetch_objects(git: &Git, path: &Path) -> Result<Vec<(String, String)>, GitError> {
    let listed = heads(git, path)?;
    let source = path.display().to_string();
    let mut args = vec![
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        source.as_str(),
    ];
    args.extend(listed.iter().map(|(_, name)| name.as_str()));
    git.run(Access::Write, &args)?;
    Ok(listed)
}

/// Whether `git` holds the commit `oid` (with everything it reaches, as git keeps it).
pub fn has_commit(git: &Git, oid: &str) -> bool {
    refs::resolve(git, &format!("{oid}^{{commit}}")).is_ok_and(|c| c.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_testkit::{git, init_repo};

    #[test]
    fn a_bundle_carries_only_new_commits_and_fetching_it_moves_no_ref() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        init_repo(&a);
        std::fs::write(a.join("f"), "1\n").unwrap();
        git(&a, &["add", "f"]);
        git(&a, &["commit", "-qm", "one"]);
        git(
            tmp.path(),
            &["clone", "-q", a.to_str().unwrap(), b.to_str().unwrap()],
        );
        let base = git(&a, &["rev-parse", "HEAD"]);
        std::fs::write(a.join("f"), "2\n").unwrap();
        git(&a, &["commit", "-qam", "two"]);
        let tip = git(&a, &["rev-parse", "HEAD"]);
        let (ga, gb) = (Git::new(&a), Git::new(&b));
        assert!(!has_commit(&gb, &tip));

        let path = tmp.path().join("x.bundle");
        create(&ga, &path, &["refs/heads/main"], &[&base]).unwrap();
        assert_eq!(
            heads(&ga, &path).unwrap(),
            [(tip.clone(), "refs/heads/main".into())]
        );
        let fetched = fetch_objects(&gb, &path).unwrap();
        assert_eq!(fetched[0].0, tip);
        assert!(has_commit(&gb, &tip));
        assert_eq!(git(&b, &["rev-parse", "main"]), base, "no ref moved");
        assert!(!has_commit(&gb, "0123456789012345678901234567890123456789"));
        // A bundle whose prerequisites the receiver lacks is refused, never half fetched.
        let c = tmp.path().join("c");
        std::fs::create_dir_all(&c).unwrap();
        init_repo(&c);
        assert!(fetch_objects(&Git::new(&c), &path).is_err());
    }
}
