//! Mirroring: an agent's commits brought into its project (the keep-alive ref, and
//! `berth/<agent>` by fast-forward) after the agent stopped or exited. The git work is
//! `berth_git::workspace::sync_refs`; this module only serialises it with the daemon's other
//! git work and says in the event log what happened — also when the user moved the branch or
//! the agent rewrote mirrored history, in which case the branch is left as it is.

use berth_git::Git;
use berth_git::workspace::{self, Mirror};
use berth_store::AgentRecord;

use crate::git_lock::GitLock;
use crate::recorder::Recorder;

/// Mirrors an agent's commits in the background: a stop is complete when its processes are
/// gone, and mirroring (one git fetch, serialised with other git work) need not hold it up.
pub fn mirror_later(git: &GitLock, events: &Recorder, rec: &AgentRecord) {
    if rec.kind != "agent" {
        return; // services run in the repository itself
    }
    let (git, events, rec) = (git.clone(), events.clone(), rec.clone());
    tokio::spawn(async move { mirror(&git, &events, &rec).await });
}

/// Brings the agent's commits into the project; when the user moved that branch, says so in
/// an event instead of overwriting it.
pub async fn mirror(git: &GitLock, events: &Recorder, rec: &AgentRecord) {
    let (project, ws, name) = (
        Git::new(&rec.project_root),
        Git::new(&rec.workspace),
        rec.name.clone(),
    );
    let _one_at_a_time = git.lock().await;
    if !std::path::Path::new(&rec.workspace).exists() {
        return; // removed meanwhile (`agent rm` synced it itself)
    }
    let result =
        tokio::task::spawn_blocking(move || workspace::sync_refs(&project, &ws, &name)).await;
    let (kind, data) = match result {
        Ok(Ok(Mirror::UpToDate)) => return,
        Ok(Ok(Mirror::Moved { from, to })) => (
            "agent.mirrored",
            serde_json::json!({ "from": from, "to": to }),
        ),
        Ok(Ok(Mirror::UserMoved {
            branch_at,
            agent_at,
        })) => (
            "agent.mirror_stopped",
            serde_json::json!({
                "reason": format!("you moved berth/{} in your repository; berth no longer updates it", rec.name),
                "branch_at": branch_at,
                "agent_at": agent_at,
            }),
        ),
        Ok(Ok(Mirror::AgentRewrote { mirrored, agent_at })) => (
            "agent.mirror_stopped",
            serde_json::json!({
                "reason": format!("agent {} rewrote history berth had mirrored; berth/{} is left as it was", rec.name, rec.name),
                "branch_at": mirrored,
                "agent_at": agent_at,
            }),
        ),
        Ok(Err(e)) => (
            "agent.mirror_failed",
            serde_json::json!({ "error": e.to_string() }),
        ),
        Err(e) => (
            "agent.mirror_failed",
            serde_json::json!({ "error": e.to_string() }),
        ),
    };
    events.record_about(kind, &rec.name, data);
}
