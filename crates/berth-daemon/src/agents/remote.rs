//! Agents elsewhere (`berth agent new NAME --on URL`, SPEC §10.4): the daemon's end.
//!
//! Where the agent lives is a `berth_sync::remote::target::Target` made from the URL
//! ([`place`]): over ssh a directory (by default `~/.berth/agents/<name>-<project digest>`),
//! in a container berth makes from an image one container of the agent's own (named after a
//! digest of engine, project and agent, labelled `berth.managed=1`, its directory `/berth` on a
//! named volume), in a container that exists a directory in it. The daemon keeps one [`Link`]
//! per such agent: a `RemoteEndpoint` serving the agent's directory there, over which it makes
//! the far side's [`Call`]s (`crate::far`). A link that breaks is made again by the next call;
//! while calls fail the agent is `unreachable` with the cause, and the watch tries again by
//! itself (every second at first, then less often, at most every 10 s).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use berth_core::agent_state::{AgentState, Event, Unreachability};
use berth_core::probe::{ProbeCheck, ProbeSpec};
use berth_core::restart::Exit;
use berth_store::AgentRecord;
use berth_supervisor::keeper::spec::KeeperSpec;
use berth_supervisor::probe;
use berth_sync::endpoint::Endpoint;
use berth_sync::reconcile::Entry;
use berth_sync::remote::container::Place;
use berth_sync::remote::install::Installing;
use berth_sync::remote::ssh::quote;
use berth_sync::remote::target::Target;
use berth_sync::remote::{HostCallError, RemoteEndpoint, RemoteError};

use super::{AgentError, Key, Supervisor, key, now_ms};
use crate::far_calls::{Answer, Call, INCOMING, KeeperLook, OUTGOING};

/// How often a reachable agent elsewhere is looked at.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// The longest wait between two tries to reach an unreachable agent.
const RETRY_AT_MOST: Duration = Duration::from_secs(10);

/// A short digest of `parts`, for names.
fn digest(parts: &[&str]) -> String {
    let hex = blake3::hash(parts.join("\0").as_bytes()).to_hex();
    hex[..12].to_string()
}

/// Where an agent of the project at `project` named `name` lives for `--on URL`.
pub fn place(on: &str, project: &str, name: &str) -> Result<Target, RemoteError> {
    let slug = format!("{name}-{}", &digest(&[project])[..8]);
    let url = if let Some(rest) = on.strip_prefix("ssh://") {
        if rest.contains('/') {
            on.to_string()
        } else {
            format!("{on}/~/.berth/agents/{slug}")
        }
    } else if ["docker://", "podman://"].iter().any(|s| on.starts_with(s)) {
        if on.split_once("://").is_some_and(|(_, r)| r.contains("//")) {
            on.to_string()
        } else {
            format!("{on}//berth")
        }
    } else if ["docker-exec://", "podman-exec://"]
        .iter()
        .any(|s| on.starts_with(s))
    {
        let rest = on.split_once("://").map_or("", |(_, r)| r);
        if rest.contains('/') {
            on.to_string()
        } else {
            format!("{on}/berth-agents/{slug}")
        }
    } else {
        return Err(RemoteError::BadTarget(format!(
            "{on}: --on takes ssh://[user@]host[:port][/dir], docker://IMAGE, podman://IMAGE or \
             docker-exec://CONTAINER[/dir]"
        )));
    };
    let mut target = Target::parse(&url)?.ok_or_else(|| {
        RemoteError::BadTarget(format!("{on}: not a place berth can run an agent"))
    })?;
    if let Target::Container(c) = &mut target
        && matches!(c.place, Place::Image(_))
    {
        c.name = Some(format!(
            "berth-agent-{}",
            digest(&[c.engine.program(), project, name])
        ));
    }
    Ok(target)
}

/// Why a call to the far side failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LinkError {
    /// It could not be reached.
    #[error("{detail}")]
    Unreachable {
        cause: Unreachability,
        detail: String,
    },
    /// It was reached and refused, saying why.
    #[error("{0}")]
    Refused(String),
}

/// The daemon's connection to one agent elsewhere, made on first use and again after it broke.
#[derive(Clone)]
pub struct Link {
    target: Target,
    label: String,
    endpoint: Arc<Mutex<Option<RemoteEndpoint>>>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").field("label", &self.label).finish()
    }
}

/// The cause a broken link's message shows.
fn cause_of(message: &str) -> Unreachability {
    if message.contains("stopped answering") {
        Unreachability::NotAnswering
    } else if message.contains("starting it again failed") {
        Unreachability::CannotConnect
    } else {
        Unreachability::ConnectionLost
    }
}

impl Link {
    pub fn new(target: Target, label: String) -> Link {
        Link {
            target,
            label,
            endpoint: Arc::default(),
        }
    }

    /// Runs `f` with the endpoint, connecting first if there is none yet (blocking).
    fn with<T>(
        &self,
        f: impl FnOnce(&mut RemoteEndpoint) -> Result<T, LinkError>,
    ) -> Result<T, LinkError> {
        let mut endpoint = self.endpoint.lock().unwrap_or_else(PoisonError::into_inner);
        if endpoint.is_none() {
            *endpoint = Some(self.open().map_err(|e| LinkError::Unreachable {
                cause: Unreachability::CannotConnect,
                detail: format!(
                    "{e}{}",
                    e.hint().map(|h| format!("; {h}")).unwrap_or_default()
                ),
            })?);
        }
        match endpoint.as_mut() {
            Some(e) => f(e),
            None => Err(LinkError::Refused("no connection".into())),
        }
    }

    /// Makes the agent's directory there, then connects to an endpoint serving it (berth
    /// installing itself there first if it must).
    fn open(&self) -> Result<RemoteEndpoint, RemoteError> {
        self.target.prepare()?;
        let script = format!("mkdir -p -- {}", quote(self.target.dir()));
        let mut mkdir = self.target.shell(&script);
        let shown = format!("{} (making {})", self.label, self.target.dir());
        let out = mkdir
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|source| RemoteError::Spawn {
                command: shown.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(RemoteError::NotStarted {
                name: self.label.clone(),
                message: format!("cannot make {} there", self.target.dir()),
                said: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        let label = self.label.clone();
        let launcher = Installing::new(&self.label, self.target.clone(), move |i| {
            tracing::info!(agent = %label, path = %i.path, bytes = i.bytes, "berth installed there");
        });
        RemoteEndpoint::spawn(&self.label, launcher, u64::MAX)
    }

    /// The agent and where it runs, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The agent's directory there (relative paths are from the login directory).
    pub fn dir(&self) -> &str {
        self.target.dir()
    }

    /// The command that runs `berth ARGS` there (`args` quoted for `sh`): the copy the link
    /// installed there, whose standard input and output are the stream.
    pub fn berth_there(&self, args: &str) -> Result<std::process::Command, LinkError> {
        let launcher = Installing::new(&self.label, self.target.clone(), |_| {});
        let script = launcher
            .script(args)
            .map_err(|e| LinkError::Refused(e.to_string()))?;
        Ok(self.target.shell(&script))
    }

    /// Makes `call` there (blocking). A connection found broken is made again for one more
    /// try: an operation someone asked for does not fail only because the link broke while
    /// nothing used it.
    pub fn call(&self, call: &Call) -> Result<Answer, LinkError> {
        match self.call_once(call) {
            Err(LinkError::Unreachable {
                cause: Unreachability::ConnectionLost | Unreachability::NotAnswering,
                ..
            }) => self.call_once(call),
            other => other,
        }
    }

    /// Makes `call` there as [`Link::call`] does, from async code (on a thread of its own).
    pub async fn call_async(&self, call: Call) -> Result<Answer, LinkError> {
        let link = self.clone();
        blocking(move || link.call(&call)).await
    }

    /// Makes `call` there once (blocking): the watch's looks, which report a broken link.
    pub fn call_once(&self, call: &Call) -> Result<Answer, LinkError> {
        let request = serde_json::to_vec(call).map_err(|e| LinkError::Refused(e.to_string()))?;
        let bytes = self.with(|e| {
            e.host_call(request).map_err(|e| match e {
                HostCallError::Link(detail) => LinkError::Unreachable {
                    cause: cause_of(&detail),
                    detail,
                },
                HostCallError::Refused(why) => LinkError::Refused(why),
            })
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            LinkError::Refused(format!("an answer this berth does not understand: {e}"))
        })
    }

    /// Copies the local file `from` to `rel` under the agent's directory there (checked by
    /// digest, whole or not at all).
    pub fn upload(&self, from: &Path, rel: &str) -> Result<(), LinkError> {
        let failed = |e: std::io::Error| LinkError::Refused(format!("{}: {e}", from.display()));
        let digest = berth_sync::remote::install::digest_file(from).map_err(failed)?;
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&digest[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        let entry = Entry::File {
            digest: bytes,
            executable: false,
        };
        let mut file = std::fs::File::open(from).map_err(failed)?;
        self.with(|e| {
            e.apply(rel.as_bytes(), Some(&entry), Some(&mut file))
                .map(drop)
                .map_err(|err| LinkError::Refused(err.to_string()))
        })
    }

    /// Copies `rel` under the agent's directory there to the local file `to`.
    pub fn download(&self, rel: &str, to: &Path) -> Result<(), LinkError> {
        self.with(|e| {
            let mut reader = e
                .read(rel.as_bytes())
                .map_err(|err| LinkError::Refused(err.to_string()))?;
            let mut file = std::fs::File::create(to)
                .map_err(|err| LinkError::Refused(format!("{}: {err}", to.display())))?;
            std::io::copy(&mut reader, &mut file)
                .map(drop)
                .map_err(|err| LinkError::Refused(err.to_string()))
        })
    }
}

/// Runs `f` on a thread of its own. Not tokio's blocking pool: a call to a far side that went
/// silent may take as long as the silence limit, and the runtime waits for its blocking tasks
/// when the daemon shuts down; a thread of its own is simply left behind then.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LinkError> + Send + 'static,
) -> Result<T, LinkError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("berth-agent-link".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| LinkError::Refused(format!("cannot start a thread: {e}")))?;
    rx.await
        .unwrap_or_else(|_| Err(LinkError::Refused("the call's thread ended".into())))
}

/// Where a readiness probe's attempts run: here (a local agent's, and a `log` probe of an agent
/// elsewhere, on the copy of its log), or there ([`Call::Probe`]: the port or command is on
/// the agent's host or in its container).
pub(crate) enum Prober {
    Here(probe::Target),
    There(Link),
}

impl Prober {
    /// One attempt: whether it passed. A far side that cannot be asked fails the attempt.
    pub(crate) async fn attempt(&mut self, spec: &ProbeSpec) -> bool {
        match self {
            Prober::Here(target) => probe::attempt(&spec.check, target, spec.timeout).await,
            Prober::There(link) => matches!(
                link.call_async(Call::Probe {
                    probe: spec.clone()
                })
                .await,
                Ok(Answer::Probed { passed: true })
            ),
        }
    }
}

/// What removing an agent elsewhere found.
pub enum Removal {
    /// Something would be lost: uncommitted paths, or commits on no branch.
    Refused { dirty: Vec<String>, commits: bool },
    /// Removed; the snapshot saved first, if one was.
    Done(Option<String>),
}

impl Supervisor {
    /// The link to an agent elsewhere (made on first use).
    pub(crate) fn link(&self, rec: &AgentRecord) -> Result<Link, AgentError> {
        let on = rec.remote.as_deref().unwrap_or_default();
        let mut links = self
            .inner
            .links
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(link) = links.get(&key(rec)) {
            return Ok(link.clone());
        }
        let target = place(on, &rec.project_root, &rec.name)
            .map_err(|e| Self::remote_error(rec, LinkError::Refused(e.to_string())))?;
        let link = Link::new(target, format!("agent {} ({on})", rec.name));
        links.insert(key(rec), link.clone());
        Ok(link)
    }

    fn remote_error(rec: &AgentRecord, e: LinkError) -> AgentError {
        AgentError::Elsewhere {
            name: rec.name.clone(),
            on: rec.remote.clone().unwrap_or_default(),
            detail: e.to_string(),
        }
    }

    /// Makes the workspace of a new agent elsewhere: copies the bundle of its branch there and
    /// has the far side clone it. If that fails, a container this call made for the agent is
    /// removed again (one that was there before is left as it is), and the link forgotten.
    pub async fn create_remote(&self, rec: &AgentRecord, bundle: &Path) -> Result<(), AgentError> {
        let link = self.link(rec)?;
        let made_here = match place(
            rec.remote.as_deref().unwrap_or_default(),
            &rec.project_root,
            &rec.name,
        ) {
            Ok(Target::Container(c)) if matches!(c.place, Place::Image(_)) => {
                let probe = c.clone();
                let existed = blocking(move || {
                    probe
                        .exists()
                        .map_err(|e| LinkError::Refused(e.to_string()))
                })
                .await
                .map_err(|e| Self::remote_error(rec, e))?;
                (!existed).then_some(c)
            }
            _ => None,
        };
        let (bundle, branch) = (
            bundle.to_path_buf(),
            berth_git::workspace::branch(&rec.name),
        );
        let copied = blocking(move || {
            link.upload(&bundle, INCOMING)?;
            link.call(&Call::Clone { branch })
        })
        .await;
        let Err(e) = copied else { return Ok(()) };
        self.forget_link(rec);
        let mut detail = e.to_string();
        if let Some(c) = made_here {
            let name = c.container();
            let engine = c.engine.program();
            let removed = blocking(move || {
                c.remove_made()
                    .map_err(|e| LinkError::Refused(e.to_string()))
            })
            .await;
            detail += &match removed {
                Ok(_) => format!("; the container {name} made for it was removed again"),
                Err(why) => format!(
                    "; the container {name} made for it could not be removed ({why}): \
                     remove it with `{engine} rm --force {name}` and `{engine} volume rm {name}-work`"
                ),
            };
        }
        Err(Self::remote_error(rec, LinkError::Refused(detail)))
    }

    /// Drops the daemon's link to an agent elsewhere (its endpoint process ends with it).
    fn forget_link(&self, rec: &AgentRecord) {
        self.inner
            .links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key(rec));
    }

    /// Starts an agent elsewhere under a keeper there.
    pub(super) async fn start_remote(
        &self,
        rec: &AgentRecord,
        spec: KeeperSpec,
    ) -> Result<(), AgentError> {
        let k = key(rec);
        let link = self.link(rec)?;
        let answer = blocking(move || link.call(&Call::Start { spec }))
            .await
            .map_err(|e| Self::remote_error(rec, e))?;
        let started = match answer {
            Answer::Look {
                keeper: KeeperLook::Alive { pid, started_ms },
                ..
            } => {
                self.with(&k, |rt| rt.far_pid = pid);
                u64::try_from(started_ms).unwrap_or(0)
            }
            _ => now_ms(),
        };
        self.apply(&k, Event::Start);
        self.with(&k, |rt| rt.not_ready = None);
        self.inner.events.record_about(
            "agent.started",
            &rec.name,
            serde_json::json!({ "project": rec.project_root, "on": rec.remote }),
        );
        match super::probe_of(rec).ok().flatten() {
            Some(probe) => {
                let prober = if let ProbeCheck::Log { .. } = probe.check {
                    // The copy here of its output log, kept up by the watch below.
                    let log = self.keeper_dir(rec).output();
                    let target = probe::Target::new(&probe.check, PathBuf::new(), log, None)
                        .map_err(|e| Self::remote_error(rec, LinkError::Refused(e)))?;
                    Prober::Here(target)
                } else {
                    Prober::There(self.link(rec)?)
                };
                tokio::spawn(self.clone().await_ready(rec.clone(), probe, prober));
            }
            None => {
                self.apply(&k, Event::Ready);
            }
        }
        tokio::spawn(self.clone().watch_remote(rec.clone(), started));
        Ok(())
    }

    /// Stops an agent elsewhere through its keeper there; returns whether SIGKILL was needed.
    pub(super) async fn end_remote(
        &self,
        rec: &AgentRecord,
        grace_ms: Option<u64>,
    ) -> Result<bool, AgentError> {
        let k = key(rec);
        let link = self.link(rec)?;
        let timeout_ms = rec.stop_grace_ms + 10_000;
        let answer = blocking(move || {
            link.call(&Call::Stop {
                grace_ms,
                timeout_ms,
            })
        })
        .await;
        match answer {
            Ok(Answer::Stopped { killed, code }) => {
                self.with(&k, |rt| rt.exit_code = code);
                self.apply(&k, Event::Gone);
                self.inner
                    .events
                    .record_about("agent.stopped", &rec.name, serde_json::json!({}));
                self.mirror_remote_later(rec);
                Ok(killed)
            }
            Ok(_) => Err(Self::remote_error(
                rec,
                LinkError::Refused("the far side answered out of turn".into()),
            )),
            Err(e @ LinkError::Unreachable { cause, .. }) => {
                self.apply(&k, Event::LinkLost(cause));
                self.with(&k, |rt| rt.unreachable = Some(e.to_string()));
                Err(Self::remote_error(rec, e))
            }
            Err(e) => Err(Self::remote_error(rec, e)),
        }
    }

    /// Looks at an agent elsewhere once a second while it should have a process: copies its new
    /// output here, marks it `unreachable` (with the cause) while it cannot be reached and
    /// `running` again once it can, and handles its exit as a local agent's.
    pub(super) async fn watch_remote(self, rec: AgentRecord, started_ms: u64) {
        let k: Key = key(&rec);
        let Ok(link) = self.link(&rec) else { return };
        let local_log = self.keeper_dir(&rec).output();
        let mut wait = LOOK_EVERY;
        loop {
            tokio::time::sleep(wait).await;
            let state = self.state(&k);
            if !state.has_process() {
                return;
            }
            if state == AgentState::Stopping {
                continue; // the stop owns it now
            }
            let log_from = std::fs::metadata(&local_log).map_or(0, |m| m.len());
            let l = link.clone();
            let look = blocking(move || l.call_once(&Call::Look { log_from })).await;
            let (keeper, log) = match look {
                Ok(Answer::Look { keeper, log }) => (keeper, log),
                Ok(_) | Err(LinkError::Refused(_)) => continue,
                Err(LinkError::Unreachable { cause, detail }) => {
                    let was = self.state(&k);
                    let first = self.with(&k, |rt| std::mem::take(&mut rt.adopting));
                    if was == (AgentState::Unreachable { cause }) && !first {
                        wait = (wait * 2).min(RETRY_AT_MOST);
                        continue;
                    }
                    self.apply(&k, Event::LinkLost(cause));
                    self.with(&k, |rt| rt.unreachable = Some(detail.clone()));
                    self.inner.events.record_about(
                        "agent.unreachable",
                        &rec.name,
                        serde_json::json!({ "cause": cause.name(), "error": detail }),
                    );
                    wait = LOOK_EVERY;
                    continue;
                }
            };
            wait = LOOK_EVERY;
            append_log(&local_log, &log);
            if let AgentState::Unreachable { .. } = self.state(&k)
                && let KeeperLook::Alive { pid, .. } = keeper
            {
                let ready = !self.with(&k, |rt| rt.probing);
                self.apply(&k, Event::Reconnected { ready });
                let adopted = self.with(&k, |rt| {
                    rt.unreachable = None;
                    std::mem::take(&mut rt.adopting)
                });
                // The first look of a daemon that started again re-attaches to it.
                let (kind, data) = if adopted {
                    (
                        "agent.adopted",
                        serde_json::json!({ "on": rec.remote, "pid": pid }),
                    )
                } else {
                    ("agent.reachable", serde_json::json!({}))
                };
                self.inner.events.record_about(kind, &rec.name, data);
            }
            match keeper {
                KeeperLook::Alive { pid, .. } => {
                    self.with(&k, |rt| rt.far_pid = pid);
                }
                KeeperLook::Done { code, success } => {
                    self.with(&k, |rt| {
                        rt.unreachable = None;
                        rt.adopting = false;
                    });
                    let exit = if success {
                        Exit::Success
                    } else {
                        Exit::Failure
                    };
                    self.mirror_remote_later(&rec);
                    self.on_exit(&rec, code, exit, started_ms).await;
                    return;
                }
                KeeperLook::Vanished | KeeperLook::NotStarted => {
                    self.with(&k, |rt| {
                        rt.unreachable = None;
                        rt.adopting = false;
                    });
                    self.apply(&k, Event::Vanished);
                    self.inner
                        .events
                        .record_about("agent.lost", &rec.name, serde_json::json!({}));
                    return;
                }
            }
        }
    }

    /// Brings an agent elsewhere's commits into the project in the background.
    pub(crate) fn mirror_remote_later(&self, rec: &AgentRecord) {
        let (sup, rec) = (self.clone(), rec.clone());
        tokio::spawn(async move {
            if let Err(e) = sup.mirror_remote(&rec, &[]).await {
                sup.inner.events.record_about(
                    "agent.mirror_failed",
                    &rec.name,
                    serde_json::json!({ "error": e.to_string() }),
                );
            }
        });
    }

    /// Brings the agent's branch (and the snapshots `extra` names) from over there into the
    /// project: a bundle made there, copied here, fetched (the branch by fast-forward only, as
    /// for local agents).
    pub(crate) async fn mirror_remote(
        &self,
        rec: &AgentRecord,
        extra: &[String],
    ) -> Result<(), LinkError> {
        let link = self
            .link(rec)
            .map_err(|e| LinkError::Refused(e.to_string()))?;
        let mut refs = vec![berth_git::workspace::branch_ref(&rec.name)];
        refs.extend(extra.iter().map(|id| berth_git::snapshot::refname(id)));
        let here = self.keeper_dir(rec).path().join(OUTGOING);
        if let Some(parent) = here.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        // One mirror at a time, with the daemon's other git work: the bundle there and its
        // copy here have one name each (a stop's mirror and `rm`'s may meet).
        let _one_at_a_time = self.inner.git.lock().await;
        let (project, name) = (berth_git::Git::new(&rec.project_root), rec.name.clone());
        let have = tokio::task::spawn_blocking(move || {
            berth_git::refs::resolve(&project, &berth_git::workspace::keep_alive_ref(&name))
        })
        .await
        .map_err(|e| LinkError::Refused(e.to_string()))?
        .map_err(|e| LinkError::Refused(e.to_string()))?;
        let to = here.clone();
        let bundled = blocking(move || match link.call(&Call::Bundle { refs, have })? {
            Answer::Bundled(refs) => link.download(OUTGOING, &to).map(|()| refs),
            _ => Ok(Vec::new()),
        })
        .await?;
        if bundled.is_empty() {
            return Ok(());
        }
        let with_branch = bundled.contains(&berth_git::workspace::branch_ref(&rec.name));
        let (project, name, ids) = (
            berth_git::Git::new(&rec.project_root),
            rec.name.clone(),
            extra.to_vec(),
        );
        let source = here.display().to_string();
        let result = tokio::task::spawn_blocking(move || {
            for id in &ids {
                berth_git::workspace::adopt_snapshot_from(&project, &source, id)?;
            }
            if with_branch {
                berth_git::workspace::sync_refs_from(&project, &source, &name)
            } else {
                Ok(berth_git::workspace::Mirror::UpToDate)
            }
        })
        .await
        .map_err(|e| LinkError::Refused(e.to_string()))?;
        let _ = std::fs::remove_file(&here);
        match result {
            Ok(berth_git::workspace::Mirror::Moved { from, to }) => {
                self.inner.events.record_about(
                    "agent.mirrored",
                    &rec.name,
                    serde_json::json!({ "from": from, "to": to }),
                );
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(LinkError::Refused(e.to_string())),
        }
    }

    /// Forgets an agent elsewhere without reaching it (`agent rm --forget`, for a host that is
    /// gone for good): its watch ends and its link is dropped; nothing there is touched. Returns
    /// what may be left there, in words for the user.
    pub fn forget_remote(&self, rec: &AgentRecord) -> String {
        let k = key(rec);
        if self.state(&k).has_process() {
            self.apply(&k, Event::Vanished);
        }
        self.forget_link(rec);
        let on = rec.remote.as_deref().unwrap_or_default();
        match place(on, &rec.project_root, &rec.name) {
            Ok(Target::Container(c)) if matches!(c.place, Place::Image(_)) => {
                let (engine, name) = (c.engine.program(), c.container());
                format!(
                    "the container {name} and its volume {name}-work, if the engine still has \
                     them: `{engine} rm --force {name}` and `{engine} volume rm {name}-work` remove them"
                )
            }
            Ok(target) => format!(
                "its workspace {}/workspace and keeper files in {} on {on}, if that still exists: \
                 remove the directory there by hand",
                target.dir(),
                target.dir()
            ),
            Err(_) => format!("whatever berth made on {on}"),
        }
    }

    /// Removes an agent elsewhere (already stopped): its commits brought here first; with
    /// anything unsaved, refused — or with `force`, a snapshot made there and brought here
    /// first; then its workspace and keeper there, and a container berth made for it.
    pub async fn remove_remote(
        &self,
        rec: &AgentRecord,
        force: bool,
        delete_branch: bool,
    ) -> Result<Removal, AgentError> {
        let fail = |e: LinkError| Self::remote_error(rec, e);
        let link = self.link(rec)?;
        self.mirror_remote(rec, &[]).await.map_err(fail)?;
        let l = link.clone();
        let dirty = match blocking(move || l.call(&Call::Dirty)).await.map_err(fail)? {
            Answer::Dirty(d) => d,
            _ => Vec::new(),
        };
        let project = berth_git::Git::new(&rec.project_root);
        let name = rec.name.clone();
        let commits = tokio::task::spawn_blocking(move || {
            berth_git::workspace::commits_unsaved(&project, &name, delete_branch)
        })
        .await
        .map_err(|e| Self::remote_error(rec, LinkError::Refused(e.to_string())))?
        .map_err(|e| Self::remote_error(rec, LinkError::Refused(e.to_string())))?;
        let mut snapshot = None;
        if !dirty.is_empty() || commits {
            if !force {
                return Ok(Removal::Refused { dirty, commits });
            }
            let now = crate::clock::now_ms();
            let id = format!("{}-rm-{}", berth_core::time::compact_utc(now), rec.name);
            let call = Call::Snapshot {
                id: id.clone(),
                time_ms: now,
                reason: format!("berth agent rm --force {}", rec.name),
            };
            let l = link.clone();
            blocking(move || l.call(&call)).await.map_err(fail)?;
            self.mirror_remote(rec, std::slice::from_ref(&id))
                .await
                .map_err(fail)?;
            snapshot = Some(id);
        }
        let l = link.clone();
        blocking(move || l.call(&Call::Remove))
            .await
            .map_err(fail)?;
        // Nothing is connected to it any more; a container berth made for the agent goes.
        self.forget_link(rec);
        drop(link);
        if let Ok(Target::Container(c)) = place(
            rec.remote.as_deref().unwrap_or_default(),
            &rec.project_root,
            &rec.name,
        ) {
            tokio::task::spawn_blocking(move || c.remove_made())
                .await
                .map_err(|e| Self::remote_error(rec, LinkError::Refused(e.to_string())))?
                .map_err(|e| Self::remote_error(rec, LinkError::Refused(e.to_string())))?;
        }
        Ok(Removal::Done(snapshot))
    }
}

/// Appends the far log's new bytes to the local copy (whose length is where the far side was
/// asked to begin; a rotated far log begins again at 0 and is appended whole).
fn append_log(local: &Path, bytes: &[u8]) {
    use std::io::Write;
    if bytes.is_empty() {
        return;
    }
    if let Some(parent) = local.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(local)
    {
        let _ = f.write_all(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_default_their_directory_and_give_each_agent_its_own_container() {
        let t = place("ssh://me@box:2222", "/p", "a").unwrap();
        assert!(t.dir().starts_with(".berth/agents/a-"), "{}", t.dir());
        let t = place("ssh://box/srv/a", "/p", "a").unwrap();
        assert_eq!(t.dir(), "/srv/a");
        let (a, b) = (
            place("docker://ghcr.io/acme/img:1", "/p", "a").unwrap(),
            place("docker://ghcr.io/acme/img:1", "/p", "b").unwrap(),
        );
        let (Target::Container(a), Target::Container(b)) = (a, b) else {
            panic!("containers")
        };
        assert_eq!(a.place, Place::Image("ghcr.io/acme/img:1".into()));
        assert_eq!(a.dir, "/berth");
        assert_ne!(a.container(), b.container());
        assert!(a.container().starts_with("berth-agent-"));
        let t = place("docker-exec://box", "/p", "a").unwrap();
        assert!(t.dir().starts_with("/berth-agents/a-"), "{}", t.dir());
        assert!(place("/local/dir", "/p", "a").is_err());
    }
}
