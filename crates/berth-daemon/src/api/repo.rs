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
    let top = Git::new(path)
        .query(&["rev-parse", "--show-toplevel"])
        .map_err(|e| not_repo(format!(": {e}")))?;
    if top.is_empty() {
        return Err(not_repo(" (it is a bare repository)".into()));
    }
    Ok(Git::new(top))
}
