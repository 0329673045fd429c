//! Creating an agent's workspace (`berth agent new`, and `berth up` for an agent it declares):
//! under the home at `workspaces/<project>/<agent>`, one repository-changing git operation at a
//! time, answering the commit the agent starts from.

use std::path::Path;

use berth_git::Git;
use berth_git::workspace::{self, WorkspaceError};

use crate::git_lock::GitLock;

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error("the workspace was created without its keep-alive ref")]
    NoKeepAlive,
    #[error("creating the workspace was interrupted: {0}")]
    Interrupted(String),
}

/// Creates the workspace of `name` at `path`, on `berth/<name>` at `base` (any commit-ish of
/// the project); returns the commit `base` named.
pub async fn create(
    lock: &GitLock,
    project: &Git,
    path: &Path,
    name: &str,
    base: &str,
) -> Result<String, CreateError> {
    let (project, path, name, base) = (
        project.clone(),
        path.to_path_buf(),
        name.to_string(),
        base.to_string(),
    );
    let _one_at_a_time = lock.lock().await;
    tokio::task::spawn_blocking(move || -> Result<String, CreateError> {
        workspace::create(&project, &path, &name, &base)?;
        berth_git::refs::resolve(&project, &workspace::keep_alive_ref(&name))
            .map_err(WorkspaceError::from)?
            .ok_or(CreateError::NoKeepAlive)
    })
    .await
    .map_err(|e| CreateError::Interrupted(e.to_string()))?
}
