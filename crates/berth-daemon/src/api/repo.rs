//! Finding the repository a request is about.

use berth_git::Git;
use berth_proto::ErrorCode;
use hyper::StatusCode;

use super::ApiFailure;

/// The repository's top level, from any absolute path inside it.
pub fn repository(path: &str) -> Result<Git, ApiFailure> {
    let not_repo = |detail: String| {
        ApiFailure::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::NotARepository,
            format!("{path} is not inside a git repository{detail}"),
            Some("run the command inside your repository"),
        )
    };
    if !std::path::Path::new(path).is_absolute() {
        return Err(not_repo(" (the path must be absolute)".into()));
    }
    if is_top_level(path) {
        return Ok(Git::new(path));
    }
    let top = Git::new(path)
        .query(&["rev-parse", "--show-toplevel"])
        .map_err(|e| not_repo(format!(": {e}")))?;
    if top.is_empty() {
        return Err(not_repo(" (it is a bare repository)".into()));
    }
    Ok(Git::new(top))
}

/// Whether `path` is, without asking git, the top level git would name: a directory with its
/// own `.git` (a repository's or a worktree's), owned by this user (git refuses others'), whose
/// path has no symbolic link, `.` or `..` in it (git names the real path). Most requests come
/// from the top level, and a `git rev-parse` costs milliseconds; anything else asks git.
fn is_top_level(path: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let dir = std::path::Path::new(path);
    let real = std::fs::canonicalize(dir).is_ok_and(|r| r.as_os_str() == dir.as_os_str());
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let me = unsafe { libc::geteuid() };
    real && std::fs::symlink_metadata(dir.join(".git")).is_ok_and(|m| m.uid() == me)
}
