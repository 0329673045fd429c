//! The agent's side of a pairing when the agent runs elsewhere (`agent new --on URL`, SPEC
//! §10.4): its workspace is `workspace/` in the agent's directory there. Pairing reaches it over
//! two connections of its own, both through `berth __endpoint` there (berth installing itself
//! first if it must): one serving the agent's directory, for the far side's calls (`far_calls::Call`:
//! what git shows there, the gate, commits moved there), and one serving the workspace itself,
//! which the sync loop uses as its agent tree.
//!
//! Commits cross as git bundles over the first connection: the agent's arrive in the project as
//! objects only (no ref moves; pairing then moves the branch by fast-forward as for a local
//! agent), the user's go there and move the branch there the same way. The project's keep-alive
//! ref of the agent follows what the workspace there holds, as after a mirror.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use berth_git::Git;
use berth_git::workspace::{branch_ref, keep_alive_ref};
use berth_proto::PairLink;
use berth_sync::gate::Gate;
use berth_sync::remote::install::Installing;
use berth_sync::remote::target::Target;
use berth_sync::remote::traffic::Traffic;
use berth_sync::remote::{RemoteEndpoint, RemoteError};

use crate::agents::{Link, LinkError, place};
use crate::far_calls::{Answer, Call, INCOMING, OUTGOING, PairLook};

/// Where an agent elsewhere is, for pairing.
#[derive(Clone)]
pub struct FarSide {
    /// The agent's `--on` URL.
    pub on: String,
    name: String,
    label: String,
    link: Link,
    /// The workspace there, as a tree.
    workspace: Target,
    /// What the link carried: files' contents (the sync loop's connection) and bundles.
    traffic: Arc<Traffic>,
    /// The last few round trips, newest last.
    trips: Arc<Mutex<VecDeque<Duration>>>,
}

/// How many round trips the latency is the median of.
const TRIPS_KEPT: usize = 9;

impl std::fmt::Debug for FarSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FarSide").field("on", &self.on).finish()
    }
}

/// Why the far side could not do what pairing asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FarError {
    /// The connection is down (or could not be made).
    #[error("{0}")]
    Lost(String),
    /// It was reached and refused, or git failed (there or here).
    #[error("{0}")]
    Failed(String),
}

impl From<LinkError> for FarError {
    fn from(e: LinkError) -> FarError {
        match e {
            LinkError::Unreachable { detail, .. } => FarError::Lost(detail),
            LinkError::Refused(why) => FarError::Failed(why),
        }
    }
}

fn failed(e: impl std::fmt::Display) -> FarError {
    FarError::Failed(e.to_string())
}

impl FarSide {
    /// The far side of agent `name` of the project at `project`, which runs on `on`.
    pub fn new(on: &str, project: &str, name: &str) -> Result<FarSide, RemoteError> {
        let target = place(on, project, name)?;
        let mut workspace = target.clone();
        let dir = format!("{}/workspace", target.dir().trim_end_matches('/'));
        match &mut workspace {
            Target::Ssh(t) => t.dir = dir,
            Target::Container(t) => t.dir = dir,
        }
        let label = format!("agent {name} ({on})");
        Ok(FarSide {
            on: on.to_string(),
            name: name.to_string(),
            link: Link::new(target, label.clone()),
            label,
            workspace,
            traffic: Arc::default(),
            trips: Arc::default(),
        })
    }

    /// Measures the link's round trip once (a call the far side answers at once).
    pub fn ping(&self) -> Result<Duration, FarError> {
        let began = Instant::now();
        self.call(&Call::Ping)?;
        let took = began.elapsed();
        let mut trips = self.trips.lock().unwrap_or_else(PoisonError::into_inner);
        trips.push_back(took);
        while trips.len() > TRIPS_KEPT {
            trips.pop_front();
        }
        Ok(took)
    }

    /// The link's figures for `pair status`.
    pub fn figures(&self) -> PairLink {
        let mut trips: Vec<Duration> = self
            .trips
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect();
        trips.sort();
        let counted = self.traffic.figures();
        PairLink {
            on: self.on.clone(),
            latency_ms: trips.get(trips.len() / 2).map(|d| d.as_secs_f64() * 1000.0),
            bandwidth_bps: counted.bandwidth,
            bytes_to_agent: counted.sent,
            bytes_to_user: counted.received,
        }
    }

    /// The workspace's endpoint's name (its errors' paths begin with it).
    pub fn shown(&self) -> String {
        format!("{}: workspace", self.label)
    }

    /// Where the workspace is, for people: its directory there and the agent's `--on`.
    pub fn location(&self) -> String {
        format!("{} on {}", self.workspace.dir(), self.on)
    }

    fn call(&self, call: &Call) -> Result<Answer, FarError> {
        Ok(self.link.call(call)?)
    }

    /// What git shows in the workspace there (the link's round trip measured first).
    pub fn look(&self) -> Result<PairLook, FarError> {
        self.ping()?;
        match self.call(&Call::PairLook {
            branch_ref: branch_ref(&self.name),
        })? {
            Answer::PairLook(look) => Ok(look),
            _ => Err(FarError::Failed("the far side answered out of turn".into())),
        }
    }

    /// The gate's answer for the workspace there; a link that is down shuts it.
    pub fn gate(&self) -> Gate {
        let call = Call::Gate {
            branch_ref: branch_ref(&self.name),
        };
        match self.link.call_once(&call) {
            Ok(Answer::Gate {
                closed: Some(why), ..
            }) => Gate::Closed(why),
            Ok(Answer::Gate { busy: true, .. }) => {
                Gate::Busy("git is rewriting the agent's index".into())
            }
            Ok(Answer::Gate { .. }) => Gate::Open,
            Ok(_) => Gate::Closed("the agent's side answered out of turn".into()),
            Err(LinkError::Unreachable { detail, .. }) => {
                Gate::Closed(format!("the agent's side cannot be reached: {detail}"))
            }
            Err(LinkError::Refused(why)) => {
                Gate::Closed(format!("the agent's side cannot tell its git state: {why}"))
            }
        }
    }

    /// Where the project keeps bundles while they are fetched.
    fn here(project: &Git, file: &str) -> Result<PathBuf, FarError> {
        let dir = berth_git::pairing::git_dir(project).map_err(failed)?;
        Ok(dir.join(format!("berth-pair-{file}")))
    }

    /// Makes sure the project holds the commit `tip` of the agent's branch there: when it does
    /// not, a bundle of what it lacks is made there, copied here and its objects fetched (no
    /// ref moves).
    pub fn fetch(&self, project: &Git, tip: &str) -> Result<(), FarError> {
        if berth_git::bundle::has_commit(project, tip) {
            return Ok(());
        }
        let have = berth_git::refs::resolve(project, &keep_alive_ref(&self.name))
            .map_err(failed)?
            .or(berth_git::refs::resolve(project, &branch_ref(&self.name)).map_err(failed)?);
        let began = Instant::now();
        let call = Call::Bundle {
            refs: vec![branch_ref(&self.name)],
            have,
        };
        if !matches!(self.call(&call)?, Answer::Bundled(_)) {
            return Ok(());
        }
        let here = Self::here(project, OUTGOING)?;
        self.link.download(OUTGOING, &here)?;
        let bytes = std::fs::metadata(&here).map_or(0, |m| m.len());
        self.traffic.received(bytes, began.elapsed());
        let fetched = berth_git::bundle::fetch_objects(project, &here);
        let _ = std::fs::remove_file(&here);
        fetched.map_err(failed)?;
        if !berth_git::bundle::has_commit(project, tip) {
            return Err(FarError::Failed(format!(
                "the agent's branch moved while its commits were fetched (wanted {tip})"
            )));
        }
        Ok(())
    }

    /// Moves the agent's branch there from `from` to `to` (a commit of the project's, which
    /// descends from `from`): the commits it lacks go over as a bundle.
    pub fn advance(&self, project: &Git, from: &str, to: &str) -> Result<(), FarError> {
        let began = Instant::now();
        let here = Self::here(project, INCOMING)?;
        let branch = branch_ref(&self.name);
        let made = berth_git::bundle::create(project, &here, &[&branch], &[from]);
        let bytes = std::fs::metadata(&here).map_or(0, |m| m.len());
        let sent = made
            .map_err(failed)
            .and_then(|()| self.link.upload(&here, INCOMING).map_err(FarError::from));
        let _ = std::fs::remove_file(&here);
        sent?;
        self.traffic.sent(bytes, began.elapsed());
        self.call(&Call::Advance {
            branch_ref: branch,
            from: from.to_string(),
            to: to.to_string(),
        })?;
        Ok(())
    }

    /// A connection serving the workspace there, for the sync loop; files over `max_size`
    /// bytes are not synced.
    pub fn endpoint(&self, max_size: u64) -> Result<RemoteEndpoint, RemoteError> {
        let label = self.label.clone();
        let launcher = Installing::new(&self.shown(), self.workspace.clone(), move |i| {
            tracing::info!(agent = %label, path = %i.path, bytes = i.bytes, "berth installed there");
        });
        let mut endpoint = RemoteEndpoint::spawn(&self.shown(), launcher, max_size)?;
        endpoint.count_into(self.traffic.clone());
        Ok(endpoint)
    }
}

/// Whether `path` (an error's) is on the far side whose workspace is named `shown` there
/// (the far side's errors name their paths `<shown>: <path>`).
pub fn is_far_path(shown: &Path, path: &str) -> bool {
    path.starts_with(&format!("{}: ", shown.display()))
}
