//! Ref moves that can never lose commits: fast-forward only, with compare-and-swap.
//!
//! [`fast_forward`] moves a ref only when its current value is an ancestor of the new one, and
//! only if it still holds the value the caller saw (`git update-ref REF NEW OLD` is atomic): a
//! concurrent move by the user or an agent makes it fail with [`RefError::Changed`] instead of
//! silently overwriting their work.

use crate::git::{Access, Git, GitError};

#[derive(Debug, thiserror::Error)]
pub enum RefError {
    #[error("{refname} cannot move from {from} to {to}: that is not a fast-forward")]
    NotFastForward {
        refname: String,
        from: String,
        to: String,
    },
    #[error("{refname} changed meanwhile (expected {}, found {})", show(.expected), show(.found))]
    Changed {
        refname: String,
        expected: Option<String>,
        found: Option<String>,
    },
    #[error(transparent)]
    Git(#[from] GitError),
}

fn show(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("nothing")
}

/// The commit a ref (or any commit-ish) points at, if it exists. A name with a NUL byte names
/// nothing: git cannot even be given it.
pub fn resolve(git: &Git, refname: &str) -> Result<Option<String>, GitError> {
    if refname.contains('\0') {
        return Ok(None);
    }
    let out = git.output(
        Access::Read,
        &[
            "rev-parse",
            "-q",
            "--verify",
            &format!("{refname}^{{commit}}"),
        ],
    )?;
    Ok(out.success().then(|| out.text()))
}

/// Whether `ancestor` is an ancestor of (or equal to) `descendant`.
pub fn is_ancestor(git: &Git, ancestor: &str, descendant: &str) -> Result<bool, GitError> {
    let args = ["merge-base", "--is-ancestor", ancestor, descendant];
    let out = git.output(Access::Read, &args)?;
    match out.code {
        0 => Ok(true),
        1 => Ok(false),
        code => Err(GitError::Failed {
            args: crate::git::render_args(&args),
            code,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }),
    }
}

/// Sets `refname` to `new` if it currently holds `old` (`None`: it must not exist).
pub fn compare_and_swap(
    git: &Git,
    refname: &str,
    old: Option<&str>,
    new: &str,
    reason: &str,
) -> Result<(), RefError> {
    let out = git.output(
        Access::Write,
        &["update-ref", "-m", reason, refname, new, old.unwrap_or("")],
    )?;
    if out.success() {
        return Ok(());
    }
    Err(RefError::Changed {
        refname: refname.to_string(),
        expected: old.map(str::to_string),
        found: resolve(git, refname)?,
    })
}

/// Deletes `refname` if it still holds `old`.
pub fn delete(git: &Git, refname: &str, old: &str) -> Result<(), RefError> {
    let out = git.output(Access::Write, &["update-ref", "-d", refname, old])?;
    if out.success() {
        return Ok(());
    }
    Err(RefError::Changed {
        refname: refname.to_string(),
        expected: Some(old.to_string()),
        found: resolve(git, refname)?,
    })
}

/// Moves `refname` from `old` to `new` by fast-forward only, atomically.
/// `old = None` creates the ref, which must not exist yet.
pub fn fast_forward(
    git: &Git,
    refname: &str,
    old: Option<&str>,
    new: &str,
) -> Result<(), RefError> {
    if let Some(old) = old
        && old != new
        && !is_ancestor(git, old, new)?
    {
        return Err(RefError::NotFastForward {
            refname: refname.to_string(),
            from: old.to_string(),
            to: new.to_string(),
        });
    }
    compare_and_swap(git, refname, old, new, "berth: fast-forward")
}
