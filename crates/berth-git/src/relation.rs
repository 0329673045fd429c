//! How two commits relate: equal, one ahead of the other, diverged, or unrelated.
//!
//! [`classify`] decides from the two commits and their merge base, as a pure function;
//! [`relation`] resolves the commits and runs `git merge-base`.

use crate::git::{Access, Git, GitError, render_args};
use crate::head::is_oid;

/// How commit `a` relates to commit `b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relation {
    /// The same commit.
    Equal,
    /// `a` has commits `b` lacks, and `b` is an ancestor of `a`: `b` can fast-forward to `a`.
    Ahead,
    /// `b` has commits `a` lacks, and `a` is an ancestor of `b`: `a` can fast-forward to `b`.
    Behind,
    /// Each has commits the other lacks.
    Diverged {
        /// Their best common ancestor.
        merge_base: String,
    },
    /// No common ancestor at all.
    Unrelated,
}

/// Decides from two full object names and the output of `git merge-base a b` (`None` when
/// there is no common ancestor). Comparison is exact, so all three must be spelled the same
/// way (full lowercase hex); a trailing newline on `merge_base` is tolerated.
pub fn classify(a: &str, b: &str, merge_base: Option<&str>) -> Relation {
    if a == b {
        return Relation::Equal;
    }
    match merge_base.map(|m| m.trim_end_matches('\n')) {
        None => Relation::Unrelated,
        Some(m) if m == b => Relation::Ahead,
        Some(m) if m == a => Relation::Behind,
        Some(m) => Relation::Diverged {
            merge_base: m.to_string(),
        },
    }
}

/// How commit `a` relates to commit `b` (each a full object name or any revision that names a
/// commit, e.g. `main` or `origin/main`). Revisions that are not full object names are first
/// resolved with `git rev-parse --verify`; then `git merge-base` runs. Its exit 1 with no output
/// means there is no common ancestor; any other failure (e.g. an unknown commit) is an error.
pub fn relation(git: &Git, a: &str, b: &str) -> Result<Relation, GitError> {
    let a = resolve(git, a)?;
    let b = resolve(git, b)?;
    if a == b {
        return Ok(Relation::Equal);
    }
    let args = ["merge-base", a.as_str(), b.as_str()];
    let out = git.output(Access::Read, &args)?;
    let merge_base = match out.code {
        0 => {
            let m = out.text();
            if !is_oid(&m) {
                return Err(GitError::Parse {
                    args: render_args(&args),
                    detail: format!("not an object name: {m:?}"),
                });
            }
            Some(m)
        }
        1 if out.stdout.is_empty() => None,
        code => {
            return Err(GitError::Failed {
                args: render_args(&args),
                code,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
    };
    Ok(classify(&a, &b, merge_base.as_deref()))
}

/// The full object name of the commit `rev` names.
fn resolve(git: &Git, rev: &str) -> Result<String, GitError> {
    let spec = format!("{rev}^{{commit}}");
    let args = ["rev-parse", "--verify", "--end-of-options", spec.as_str()];
    let oid = git.query(&args)?;
    if is_oid(&oid) {
        Ok(oid)
    } else {
        Err(GitError::Parse {
            args: render_args(&args),
            detail: format!("not an object name: {oid:?}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(classify("a", "a", None), Relation::Equal);
        assert_eq!(classify("a", "a", Some("x")), Relation::Equal);
        assert_eq!(classify("a", "b", Some("b")), Relation::Ahead);
        assert_eq!(classify("a", "b", Some("b\n")), Relation::Ahead);
        assert_eq!(classify("a", "b", Some("a")), Relation::Behind);
        assert_eq!(
            classify("a", "b", Some("c")),
            Relation::Diverged {
                merge_base: "c".into()
            }
        );
        assert_eq!(classify("a", "b", None), Relation::Unrelated);
    }
}
