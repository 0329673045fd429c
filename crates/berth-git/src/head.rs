//! What HEAD is: a branch, a detached commit, or a branch with no commits yet.
//!
//! [`classify`] decides from the output of two git commands, as a pure function; [`head`] runs
//! them.

use std::fmt;

use crate::git::{Access, Git, GitError, render_args};

/// What HEAD is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// HEAD is a branch with at least one commit.
    Branch {
        /// The full ref name, e.g. `refs/heads/main`.
        name: String,
        /// The commit the branch points at.
        oid: String,
    },
    /// HEAD points directly at a commit.
    Detached {
        /// The commit.
        oid: String,
    },
    /// HEAD is a branch that has no commit yet (a new repository, or after
    /// `git checkout --orphan`).
    Unborn {
        /// The full ref name, e.g. `refs/heads/main`.
        name: String,
    },
}

impl Head {
    /// The full name of the branch HEAD is on (born or unborn); `None` when detached.
    pub fn branch(&self) -> Option<&str> {
        match self {
            Head::Branch { name, .. } | Head::Unborn { name } => Some(name),
            Head::Detached { .. } => None,
        }
    }

    /// The commit HEAD points at; `None` when unborn.
    pub fn oid(&self) -> Option<&str> {
        match self {
            Head::Branch { oid, .. } | Head::Detached { oid } => Some(oid),
            Head::Unborn { .. } => None,
        }
    }

    /// The branch name without `refs/heads/` (e.g. `main`); `None` when detached or when HEAD
    /// refers to a ref outside `refs/heads/`.
    pub fn short_branch(&self) -> Option<&str> {
        self.branch()?
            .strip_prefix("refs/heads/")
            .filter(|s| !s.is_empty())
    }
}

/// Why [`classify`] rejected its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// Neither a symbolic ref nor a commit: HEAD is detached at something that is not a commit,
    /// or is broken.
    NoHead,
    /// The symbolic ref is not a plausible full ref name (`refs/…`, no whitespace).
    InvalidRef(String),
    /// The object name is not 40 or 64 lowercase hex digits.
    InvalidOid(String),
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::NoHead => write!(f, "HEAD is neither a branch nor a commit"),
            HeadError::InvalidRef(r) => write!(f, "invalid ref name {r:?}"),
            HeadError::InvalidOid(o) => write!(f, "invalid object name {o:?}"),
        }
    }
}

impl std::error::Error for HeadError {}

/// Whether `s` is a full object name: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
pub(crate) fn is_oid(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Decides what HEAD is from the standard output of `git symbolic-ref -q HEAD` (`None` if it
/// exited non-zero: HEAD is detached) and of `git rev-parse -q --verify HEAD^{commit}` (`None`
/// if it exited non-zero: no commit). A trailing newline is tolerated.
pub fn classify(symref: Option<&str>, oid: Option<&str>) -> Result<Head, HeadError> {
    let oid = match oid.map(|o| o.trim_end_matches('\n')) {
        Some(o) if is_oid(o) => Some(o.to_string()),
        Some(o) => return Err(HeadError::InvalidOid(o.to_string())),
        None => None,
    };
    let name = match symref.map(|s| s.trim_end_matches('\n')) {
        Some(s) if is_full_ref(s) => Some(s.to_string()),
        Some(s) => return Err(HeadError::InvalidRef(s.to_string())),
        None => None,
    };
    match (name, oid) {
        (Some(name), Some(oid)) => Ok(Head::Branch { name, oid }),
        (Some(name), None) => Ok(Head::Unborn { name }),
        (None, Some(oid)) => Ok(Head::Detached { oid }),
        (None, None) => Err(HeadError::NoHead),
    }
}

fn is_full_ref(s: &str) -> bool {
    s.len() > "refs/".len()
        && s.starts_with("refs/")
        && !s
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
}

/// Finds out what HEAD is, running `git symbolic-ref -q HEAD` and
/// `git rev-parse -q --verify HEAD^{commit}` read-only.
pub fn head(git: &Git) -> Result<Head, GitError> {
    let symref_args = ["symbolic-ref", "-q", "HEAD"];
    let symref = optional(git, &symref_args)?;
    let oid_args = ["rev-parse", "-q", "--verify", "HEAD^{commit}"];
    let oid = optional(git, &oid_args)?;
    classify(symref.as_deref(), oid.as_deref()).map_err(|e| GitError::Parse {
        args: format!(
            "{}; git {}",
            render_args(&symref_args),
            render_args(&oid_args)
        ),
        detail: e.to_string(),
    })
}

/// Standard output if the command exits 0, `None` if it exits 1, an error otherwise.
fn optional(git: &Git, args: &[&str]) -> Result<Option<String>, GitError> {
    let out = git.output(Access::Read, args)?;
    match out.code {
        0 => Ok(Some(out.text())),
        1 => Ok(None),
        code => Err(GitError::Failed {
            args: render_args(args),
            code,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const O: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn oids() {
        assert!(is_oid(O));
        assert!(is_oid(&"a".repeat(64)));
        assert!(!is_oid(&O.to_uppercase()));
        assert!(!is_oid(&O[..39]));
        assert!(!is_oid(""));
    }

    #[test]
    fn accessors() {
        let h = classify(Some("refs/heads/main\n"), Some(O)).unwrap();
        assert_eq!(
            (h.branch(), h.short_branch(), h.oid()),
            (Some("refs/heads/main"), Some("main"), Some(O))
        );
        let h = classify(Some("refs/remotes/x"), None).unwrap();
        assert_eq!(
            (h.branch(), h.short_branch(), h.oid()),
            (Some("refs/remotes/x"), None, None)
        );
        let h = classify(None, Some(O)).unwrap();
        assert_eq!(
            (h.branch(), h.short_branch(), h.oid()),
            (None, None, Some(O))
        );
    }
}
