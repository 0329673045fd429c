//! The git and file work of a start's and a stop's steps, and of the undo of each start step
//! (the steps that only start or stop the link are the worker's). They run on the controller's
//! thread, with the daemon's git lock held and their failpoint reached (both by the worker).
//! Every undo checks before it acts, so running one again (after a crash) or for a step that
//! never had an effect does nothing.

use berth_core::pairing::{Blocker, Failure, Notice, blockers};
use berth_git::snapshot::{self, CaptureOptions, SnapshotError};
use berth_git::{Access, Git, refs, status};
use berth_store::{PairingRecord, SnapshotState, Store};
use berth_sync::apply::ApplyError;
use berth_sync::engine::copy_over;
use berth_sync::reconcile::Side as SyncSide;

use super::prepare::{Prepared, Preparing, prepare};
use super::sides::TwoSides;
use super::status::{Seen, StatusView};
use super::sync_loop::Warm;
use super::{ancestor, events, hashes, observe};
use crate::clock::now_ms;
use crate::recorder::Recorder;

pub type StepResult = Result<(), Failure>;

/// A step's failure from an error message.
pub fn unexpected(message: impl std::fmt::Display) -> Failure {
    Failure::Notice {
        notice: Notice::UnexpectedError {
            message: message.to_string(),
        },
    }
}

/// A step's failure: what it was doing, and what went wrong.
pub fn git_failure(what: &str, e: impl std::fmt::Display) -> Failure {
    unexpected(format!("{what}: {e}"))
}

/// Runs `args` in `git`, failing the step with what git said.
fn run(git: &Git, what: &str, args: &[&str]) -> StepResult {
    git.run(Access::Write, args)
        .map(|_| ())
        .map_err(|e| git_failure(what, e))
}

/// The steps' view of one pairing: its two sides, its record, and where their results go.
pub struct Steps<'a> {
    pub sides: &'a TwoSides,
    pub rec: &'a mut PairingRecord,
    pub store: &'a Store,
    pub events: &'a Recorder,
    pub view: &'a mut StatusView,
    /// The checkout holds berth's own clean copy of the previous agent's branch, and the
    /// snapshot (if any) came with the switch.
    pub carried: bool,
    pub no_stash: bool,
    /// The checkout's status as the start's validation read it, for its snapshot right after
    /// (taken by the first step that needs it; any other step leaves it).
    pub seen: &'a mut Option<status::Status>,
}

impl Steps<'_> {
    /// Every blocker of the start, checked again.
    pub fn validate(&mut self) -> StepResult {
        let repos = &self.sides.repos;
        let agent = self.sides.agent.is_some().then_some(repos);
        let (facts, st) = observe::facts_and_status(
            &repos.user,
            &repos.name,
            agent,
            self.no_stash && !self.carried,
            None,
        )
        .map_err(|e| git_failure("reading git's state", e))?;
        *self.seen = Some(st);
        let mut found = blockers(&facts);
        if self.carried {
            // The checkout holds berth's own clean copy of the previous agent's branch.
            found.retain(|b| !matches!(b, Blocker::DirtyNoStash { .. }));
        }
        if found.is_empty() {
            Ok(())
        } else {
            Err(Failure::Blocked {
                blockers: found.into_iter().collect(),
            })
        }
    }

    /// Keeps the checkout's uncommitted state in a snapshot (nothing when it is clean or the
    /// snapshot was carried over). The id is recorded *before* the capture, so an undo after a
    /// crash finds it.
    ///
    /// Whether it is clean is what the validation right before saw (read again if this step
    /// runs on its own, after a restart): the capture reads the working tree itself, so what
    /// changed since is in the snapshot all the same, and a checkout dirtied since a clean
    /// look is refused by the switch ([`Steps::switch_checkout`] looks again).
    pub fn take_snapshot(&mut self) -> StepResult {
        if self.carried {
            return Ok(());
        }
        let st = match self.seen.take() {
            Some(st) => st,
            None => status::status(&self.sides.repos.user, false)
                .map_err(|e| git_failure("reading your checkout's status", e))?,
        };
        if st.is_clean() {
            return Ok(());
        }
        let now = now_ms();
        let id = crate::ids::new_id(now);
        self.rec.snapshot = Some(id.clone());
        self.store
            .update_pairing(self.rec)
            .map_err(|e| git_failure("recording the snapshot", e))?;
        let taken = snapshot::capture_seen(
            &self.sides.repos.user,
            CaptureOptions {
                id: id.clone(),
                time_ms: now,
                reason: format!("berth pair {}", self.sides.repos.name),
                message: None,
                pairing: Some(self.rec.id.clone()),
            },
            Some(st),
        )
        .map_err(|e| git_failure("keeping your uncommitted work in a snapshot", e))?;
        let info = taken.info(&self.rec.project_root, true);
        if let Err(e) = self.store.record_snapshot(&info) {
            tracing::warn!("cannot record snapshot {id}: {e}");
        }
        events::record(
            self.events,
            self.rec,
            "pair.snapshot",
            serde_json::json!({ "snapshot": id }),
        );
        Ok(())
    }

    /// The project's `berth/<agent>` to the agent's tip: created, or fast-forwarded.
    pub fn mirror(&mut self) -> StepResult {
        let r = &self.sides.repos;
        let branch = r.branch_ref();
        let bringing = "bringing the agent's commits into your repository";
        let tip = if r.far.is_some() {
            // Fetched from over there as objects; the keep-alive ref names them, as a mirror's.
            let tip = observe::agent_tip(r).map_err(|e| git_failure(bringing, e))?;
            if let Some(tip) = &tip {
                observe::keep_alive(r, tip).map_err(|e| git_failure(bringing, e))?;
            }
            tip
        } else {
            berth_git::workspace::sync_refs(&r.user, &r.agent, &r.name)
                .map_err(|e| git_failure(bringing, e))?;
            refs::resolve(&r.agent, &branch)
                .map_err(|e| git_failure("reading the agent's branch", e))?
        }
        .ok_or_else(|| unexpected(format!("the agent's workspace has no {branch}")))?;
        let now = refs::resolve(&r.user, &branch)
            .map_err(|e| git_failure("reading your copy of the branch", e))?;
        if now.as_deref() == Some(tip.as_str()) {
            return Ok(());
        }
        refs::fast_forward(&r.user, &branch, now.as_deref(), &tip)
            .map_err(|e| git_failure("moving your copy of the agent's branch", e))
    }

    /// Undoes [`Steps::mirror`]: back where it was before the start, compare-and-swap.
    pub fn restore_mirror(&mut self) -> StepResult {
        let branch = self.sides.repos.branch_ref();
        let user = &self.sides.repos.user;
        let now = refs::resolve(user, &branch).map_err(|e| git_failure("reading the branch", e))?;
        let before = self.rec.mirror_before.clone();
        let result = match (&now, &before) {
            (n, b) if n == b => return Ok(()),
            (Some(n), Some(b)) => {
                refs::compare_and_swap(user, &branch, Some(n), b, "berth: undo pairing start")
            }
            (Some(n), None) => refs::delete(user, &branch, n),
            // Deleted meanwhile by someone else: leave it so.
            (None, Some(_)) => return Ok(()),
            (None, None) => return Ok(()),
        };
        result.map_err(|e| git_failure("putting your copy of the agent's branch back", e))
    }

    /// The checkout onto `berth/<agent>`. Its uncommitted state is in the snapshot: the
    /// working tree must still be exactly what the snapshot holds before it is replaced (and
    /// without a snapshot, it must be clean). With a snapshot, the comparison with it comes
    /// first: it is what a start with uncommitted work needs, and it reads the tree once.
    pub fn switch_checkout(&mut self) -> StepResult {
        let user = self.sides.repos.user.clone();
        let branch = berth_core::pairing::agent_branch(&self.sides.repos.name);
        let snap = self.rec.snapshot.clone().filter(|_| !self.carried);
        let holds = match &snap {
            Some(id) => snapshot::matches_worktree(&user, id)
                .map_err(|e| git_failure("comparing your checkout with the snapshot", e))?,
            None => false,
        };
        if !holds {
            let dirty = !status::status(&user, false)
                .map_err(|e| git_failure("reading your checkout's status", e))?
                .is_clean();
            if !dirty {
                return run(
                    &user,
                    "switching your checkout",
                    &["checkout", "-q", &branch, "--"],
                );
            }
            return Err(unexpected(match snap {
                Some(id) => {
                    format!(
                        "your checkout changed after snapshot {id} was taken; nothing was switched"
                    )
                }
                None => {
                    "your checkout has changes that no snapshot holds; nothing was switched".into()
                }
            }));
        }
        run(
            &user,
            "switching your checkout",
            &["checkout", "-q", "-f", &branch, "--"],
        )?;
        run(
            &user,
            "clearing your checkout",
            &["clean", "-q", "-f", "-d"],
        )
    }

    /// The agent's working files over the checkout, one way; the ancestor becomes what both
    /// now hold. Both trees' endpoints (their scans' hashes) and the ancestor are handed on
    /// to the sync loop, whose first round then reads no file again that did not change.
    /// What the scan needs is `preparing` if that was started (see [`super::prepare`]).
    pub fn copy_agent_files(&mut self, preparing: Option<Preparing>) -> Result<Warm, Failure> {
        let prepared = match preparing {
            Some(p) => p.finish(),
            None => self
                .sides
                .roots()
                .and_then(|roots| prepare(&roots, self.store)),
        };
        let Prepared {
            mut sides,
            mut watched,
            mut agent,
        } = prepared.map_err(unexpected)?;
        let mut ancestor = ancestor::load(self.store, &self.rec.id).map_err(unexpected)?;
        // The checkout was just switched: git may still be finishing with the index.
        let mut copied = copy_over(&mut sides, &mut ancestor, SyncSide::Alpha, &mut agent);
        for _ in 0..1000 {
            if !matches!(copied, Err(ApplyError::Gated { busy: true, .. })) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            copied = copy_over(&mut sides, &mut ancestor, SyncSide::Alpha, &mut agent);
        }
        ancestor::save(self.store, &self.rec.id, &mut ancestor).map_err(unexpected)?;
        let stats = copied.map_err(|e| git_failure("copying the agent's files", e))?;
        self.view.note(Seen::Copied(stats.to_alpha as u64));
        if stats.warnings.is_empty()
            && let Some(w) = watched.as_mut()
        {
            w.agreed();
        }
        Ok(Warm {
            sides,
            ancestor,
            watched,
            agreed: false,
        })
    }

    /// The checkout back to `berth/<agent>`'s tip. `verify`: only when it holds exactly what
    /// the agent's workspace holds (everything in it is there too), compared with `warm`'s
    /// endpoints if given (what the final sync scanned: only changed files are read again).
    pub fn clean_checkout(&mut self, verify: bool, warm: Option<Warm>) -> StepResult {
        let user = self.sides.repos.user.clone();
        let head = berth_git::head::head(&user).map_err(|e| git_failure("reading HEAD", e))?;
        if head.branch() != Some(self.sides.repos.branch_ref().as_str()) {
            return Ok(()); // never switched (or already switched back)
        }
        if verify {
            let (mut sides, untouched) = match warm {
                // The final sync's last full round found both trees agreeing, and the checkout
                // has not changed since (its watch says so, up to now): every entry of it is
                // what both sides agreed on, so it holds nothing the workspace lacks.
                Some(mut w) => {
                    let untouched = w.agreed
                        && w.watched
                            .as_ref()
                            .is_some_and(|watching| watching.checkout_untouched(&mut w.sides));
                    tracing::debug!(
                        agreed = w.agreed,
                        untouched,
                        "the stop's check of both trees"
                    );
                    (w.sides, untouched)
                }
                None => {
                    let roots = self.sides.roots().map_err(unexpected)?;
                    (roots.sides().map_err(unexpected)?, false)
                }
            };
            if untouched {
                hashes::save(self.store, &mut sides);
                return self.reset_checkout(&user);
            }
            let ((a, _), (b, _)) = sides
                .scan_both()
                .map_err(|e| git_failure("comparing the two sides", e.error))?;
            // What was read is kept for the next start (whatever the comparison finds).
            hashes::save(self.store, &mut sides);
            // The agent may have gone on working after the final sync (or while the daemon
            // was down before a recovered stop got here): cleaning is still safe when every
            // entry of the checkout is either in the agent's workspace as it is, or exactly
            // what both sides last agreed on (the agent changed or removed it since — its
            // own edit, which sync would have carried over anyway).
            if a != b && !held_elsewhere(&a, &b, self.store, &self.rec.id)? {
                return Err(unexpected(format!(
                    "your checkout changed after the final sync, so it still holds work the \
                     agent's workspace does not; nothing was cleaned and it stays on `{}` — \
                     commit what you changed there, or pair again (`berth pair {}`) and \
                     stop once it is synced",
                    berth_core::pairing::agent_branch(&self.sides.repos.name),
                    self.sides.repos.name
                )));
            }
        }
        self.reset_checkout(&user)
    }

    /// `git reset --hard` and `git clean` of the checkout, and berth's temporary files gone.
    fn reset_checkout(&self, user: &berth_git::Git) -> StepResult {
        run(user, "cleaning your checkout", &["reset", "-q", "--hard"])?;
        run(user, "cleaning your checkout", &["clean", "-q", "-f", "-d"])?;
        // `git clean` leaves ignored files, and berth's temporary files are ignored while it
        // syncs: one a killed or let-go write left would outlive the pairing.
        berth_sync::apply::remove_temps(user.dir(), false);
        Ok(())
    }

    /// The checkout back on the original branch (or detached HEAD).
    pub fn switch_back(&mut self) -> StepResult {
        let user = self.sides.repos.user.clone();
        let head = berth_git::head::head(&user).map_err(|e| git_failure("reading HEAD", e))?;
        match (&self.rec.original_branch, &self.rec.original_head) {
            (Some(b), _) if head.branch() == Some(b.as_str()) => Ok(()),
            (Some(b), _) => {
                let short = b.strip_prefix("refs/heads/").unwrap_or(b);
                run(&user, "switching back", &["checkout", "-q", short, "--"])
            }
            (None, Some(oid)) if head.branch().is_none() && head.oid() == Some(oid.as_str()) => {
                Ok(())
            }
            (None, Some(oid)) => run(
                &user,
                "switching back",
                &["checkout", "-q", "--detach", oid],
            ),
            (None, None) => Err(unexpected("the original HEAD was not recorded")),
        }
    }

    /// The pairing's snapshot, if it has one and its ref is still there (gone: restored or
    /// dropped already).
    fn kept_snapshot(&self) -> Result<Option<String>, Failure> {
        let Some(id) = self.rec.snapshot.clone() else {
            return Ok(None);
        };
        let found = refs::resolve(&self.sides.repos.user, &snapshot::refname(&id))
            .map_err(|e| git_failure("reading the snapshot", e))?;
        Ok(found.map(|_| id))
    }

    /// The snapshot back, byte for byte (nothing if there is none, or it was restored already).
    pub fn restore_snapshot(&mut self) -> StepResult {
        let Some(id) = self.kept_snapshot()? else {
            return Ok(());
        };
        let user = self.sides.repos.user.clone();
        match snapshot::restore(&user, &id) {
            Ok(_) => {}
            // The checkout may hold it already: on the original branch and commit, with exactly
            // the snapshot's index and files (a start stopped before it switched anything).
            // Then the snapshot has nothing left to give back, and restoring onto a "dirty"
            // tree is refused: it is dropped instead. (Asked only after a refusal: a restore
            // that goes through needs no comparison, and one that is refused changed nothing.)
            Err(e @ (SnapshotError::Dirty(_) | SnapshotError::OperationInProgress { .. })) => {
                let head =
                    berth_git::head::head(&user).map_err(|e| git_failure("reading HEAD", e))?;
                let at_original = head.branch() == self.rec.original_branch.as_deref()
                    && head.oid() == self.rec.original_head.as_deref();
                let holds_it = at_original
                    && snapshot::matches_worktree(&user, &id)
                        .map_err(|e| git_failure("comparing your checkout with the snapshot", e))?;
                if !holds_it {
                    return Err(git_failure(&format!("restoring snapshot {id}"), e));
                }
                snapshot::drop_snapshot(&user, &id)
                    .map_err(|e| git_failure(&format!("dropping snapshot {id}"), e))?;
            }
            Err(e) => return Err(git_failure(&format!("restoring snapshot {id}"), e)),
        }
        if let Err(e) = self.store.end_snapshot(
            &self.rec.project_root,
            &id,
            SnapshotState::Restored,
            now_ms(),
        ) {
            tracing::warn!("cannot record snapshot {id} restored: {e}");
        }
        Ok(())
    }

    /// The snapshot berth made, dropped (the checkout still holds all of it).
    pub fn drop_snapshot(&mut self) -> StepResult {
        let Some(id) = self.kept_snapshot()? else {
            return Ok(());
        };
        let user = self.sides.repos.user.clone();
        snapshot::drop_snapshot(&user, &id)
            .map_err(|e| git_failure(&format!("dropping snapshot {id}"), e))?;
        if let Err(e) = self.store.end_snapshot(
            &self.rec.project_root,
            &id,
            SnapshotState::Dropped,
            now_ms(),
        ) {
            tracing::warn!("cannot record snapshot {id} dropped: {e}");
        }
        self.rec.snapshot = None;
        if let Err(e) = self.store.update_pairing(self.rec) {
            tracing::warn!("cannot record snapshot {id} dropped: {e}");
        }
        Ok(())
    }
}

/// Whether everything in the checkout (`user`) is also somewhere else: in the agent's
/// workspace (`agent`) as it is, or in the ancestor (what both sides last held; then the
/// agent changed or removed it after, and that change is the agent's own).
fn held_elsewhere(
    user: &berth_sync::scan::Tree,
    agent: &berth_sync::scan::Tree,
    store: &berth_store::Store,
    pairing: &str,
) -> Result<bool, Failure> {
    let ancestor = ancestor::load_adopting(store, pairing, |side, path| {
        let tree = match side {
            berth_sync::reconcile::Side::Alpha => user,
            berth_sync::reconcile::Side::Beta => agent,
        };
        Ok::<_, std::convert::Infallible>(tree.get(path).cloned())
    })
    .map_err(unexpected)?;
    let agreed = ancestor.tree();
    Ok(user
        .iter()
        .all(|(path, entry)| agent.get(path) == Some(entry) || agreed.get(path) == Some(entry)))
}
