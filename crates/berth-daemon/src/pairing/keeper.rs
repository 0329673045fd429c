//! Conflicts: the agent's losing version of a path both sides changed is committed under
//! `refs/berth/conflicts/<pairing>/<n>` in its workspace before the user's version replaces it;
//! those refs are also how a recovered pairing knows what it kept.

use std::io::Read;

use berth_git::Git;
use berth_git::pairing::{self as gitpair, KeptKind};
use berth_proto::PairConflict;
use berth_sync::apply::ApplyError;
use berth_sync::engine::Keeper;
use berth_sync::reconcile::Entry;

use super::link_event::{LinkEvent, Tell};

/// Where a pairing's kept conflicts are (refs in the agent's workspace).
fn conflicts_prefix(pairing: &str) -> String {
    format!("refs/berth/conflicts/{pairing}/")
}

/// The ref a conflict's losing version is kept under.
fn conflict_ref(pairing: &str, n: usize) -> String {
    format!("{}{n}", conflicts_prefix(pairing))
}

/// Keeps the agent's losing versions as commits in its workspace.
pub struct RefKeeper {
    pub ws: Git,
    pub pairing: String,
    pub next: usize,
    pub tell: Tell,
}

/// How many conflicts of `pairing` the workspace keeps already.
pub fn kept_count(ws: &Git, pairing: &str) -> usize {
    ws.query(&[
        "for-each-ref",
        "--format=%(refname)",
        &conflicts_prefix(pairing),
    ])
    .map(|s| s.lines().count())
    .unwrap_or(0)
}

/// The conflicts `pairing` kept so far, oldest first.
pub fn kept_conflicts(ws: &Git, pairing: &str) -> Vec<PairConflict> {
    let listed = ws.query(&[
        "for-each-ref",
        "--sort=creatordate",
        "--format=%(refname)%00%(creatordate:unix)%00%(subject)",
        &conflicts_prefix(pairing),
    ]);
    listed
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut parts = l.split('\0');
            let (refname, time, subject) = (parts.next()?, parts.next()?, parts.next()?);
            Some(PairConflict {
                refname: refname.to_string(),
                path: kept_path(subject).unwrap_or(subject).to_string(),
                time_ms: time.parse::<i64>().unwrap_or(0) * 1000,
            })
        })
        .collect()
}

/// The path a kept conflict's commit subject names.
fn kept_path(subject: &str) -> Option<&str> {
    subject
        .strip_prefix("berth: kept the agent's version of ")?
        .strip_suffix(" (conflict)")
}

impl Keeper for RefKeeper {
    fn keep(
        &mut self,
        rel: &[u8],
        entry: &Entry,
        content: Option<&mut dyn Read>,
    ) -> Result<(), ApplyError> {
        let from = berth_sync::relpath::absolute(self.ws.dir(), rel);
        let io = |source: std::io::Error| ApplyError::Io {
            path: from.display().to_string(),
            source,
        };
        let (kind, content) = match entry {
            Entry::File { executable, .. } => {
                let mut bytes = Vec::new();
                if let Some(content) = content {
                    content.read_to_end(&mut bytes).map_err(io)?;
                }
                (
                    KeptKind::File {
                        executable: *executable,
                    },
                    bytes,
                )
            }
            Entry::Symlink { target } => (KeptKind::Symlink, target.clone()),
            // An empty directory holds nothing to lose.
            Entry::Dir => return Ok(()),
        };
        self.next += 1;
        let refname = conflict_ref(&self.pairing, self.next);
        gitpair::keep_conflict(&self.ws, &refname, rel, kind, &content)
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        (self.tell)(LinkEvent::Kept {
            refname,
            path: String::from_utf8_lossy(rel).into_owned(),
        });
        Ok(())
    }
}
