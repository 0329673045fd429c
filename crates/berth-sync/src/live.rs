//! The live loop: watch both trees and keep them identical, a few milliseconds behind.
//!
//! Events from both watches ([`crate::watch`]) collect into one set of dirty paths (berth's own
//! writes are recognised and dropped: [`crate::scan::Scanner::is_echo`]). A batch is reconciled
//! at once when every path in it is *settled* (its writer is done with it: closed after
//! writing, renamed into place, removed — [`Input::Changed`]); otherwise when no event came for
//! `debounce` (a file being written may be written again), or at the latest `max_delay` after
//! its first event, so a steady stream still syncs. Only the dirty paths are scanned and reconciled
//! ([`crate::engine::sync_paths`]): the cost of an edit does not grow with the tree.
//!
//! Full rescans ([`crate::engine::sync_once`]) happen at start, when events were lost (queue
//! overflow, a watch error), when an ignore file changed, and periodically as a safety net.
//! [`Input::Flush`] is answered without one while the loop is *in step* — both trees agreed
//! when last scanned whole, and every change since was seen and carried without a warning: a
//! heartbeat sent through each watch is a fence (events arrive in order, so once both are back,
//! every change made before the flush is among the dirty paths), and a round over those paths
//! is the flush ([`fenced_flush`]). Out of step, or when the fence does not close in time, a
//! flush is full rounds until both sides agree. A heartbeat goes through each root's watch
//! periodically; if it does not come back in time, watching has stopped delivering events:
//! that is reported, the watch is made anew and everything is rescanned.
//!
//! A round that fails for a condition that pauses (disk full, permission denied) is reported
//! once as paused and retried until it succeeds; nothing is partially written meanwhile.

use std::collections::BTreeSet;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use crate::ancestor::Ancestor;
use crate::apply::ApplyError;
use crate::endpoint::Endpoint;
use crate::engine::{Keeper, Sides, sync_once, sync_paths};
use crate::ignores::is_rules_file;
use crate::reconcile::Side;
use crate::relpath::RelPath;
use crate::scan::Scanner;
use crate::stats::Stats;
use crate::watch::Input;

/// Timings of the live loop.
#[derive(Debug, Clone)]
pub struct Options {
    /// Quiet time after the last event before a batch is synced.
    pub debounce: Duration,
    /// Longest a batch waits after its first event, however busy the trees are.
    pub max_delay: Duration,
    /// Period of the full safety-net rescan.
    pub rescan_every: Duration,
    /// Period of the heartbeat through each watch.
    pub heartbeat_every: Duration,
    /// How long a heartbeat may take before watching counts as stalled.
    pub heartbeat_timeout: Duration,
    /// How often a paused or failed round is tried again.
    pub retry_every: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            debounce: Duration::from_millis(2),
            max_delay: Duration::from_millis(100),
            rescan_every: Duration::from_secs(300),
            heartbeat_every: Duration::from_secs(30),
            heartbeat_timeout: Duration::from_secs(5),
            retry_every: Duration::from_secs(2),
        }
    }
}

/// Why a round ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The first full round.
    Start,
    /// These many paths changed.
    Events(usize),
    /// A full rescan, for the reason given.
    Rescan(&'static str),
    /// Someone asked for a flush.
    Flush,
}

/// How long the trees must stay quiet after the first round before the loop counts as ready
/// (the first round's own writes come back as events, and a large one can overflow the queue).
const SETTLE: Duration = Duration::from_millis(20);

/// How soon a round the gate found busy is tried again.
const GATE_BUSY_RETRY: Duration = Duration::from_millis(10);
/// How long the trees must be quiet before a burst of deletions is carried out.
const BURST_QUIET: Duration = Duration::from_millis(500);

/// What the loop tells its owner.
#[derive(Debug)]
pub enum Report<'a> {
    /// The first round and whatever its own writes stirred up are done: from now on the trees
    /// follow each other live. Sent once, `took` after the loop started.
    Ready { took: Duration },
    /// A round finished (quiet ones after events are reported too: the ancestor may have moved).
    Synced {
        reason: Reason,
        stats: &'a Stats,
        took: Duration,
    },
    /// Syncing is paused by a condition that must go away (disk full, permission denied, an
    /// emptied root).
    Paused { error: &'a ApplyError },
    /// The gate closed ([`crate::gate::Gate::Closed`]): nothing is applied until
    /// [`Input::Release`]. (A hold the owner asked for is not reported back.)
    Held { why: &'a str },
    /// The condition went away and a full round succeeded.
    Resumed,
    /// A round failed for another reason; it is retried.
    Failed { error: String },
    /// The heartbeat of a side did not come back: its watch stopped delivering events.
    Stalled { side: Side },
    /// Watching a side reported a problem (events may be lost; a rescan follows).
    WatchTrouble { side: Side, error: String },
}

/// When a batch of events is due: at once when all its paths are settled, else `debounce`
/// after the last event, but no later than `max_delay` after the first.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Debounce {
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Debounce {
    pub fn event(&mut self, now: Instant) {
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    pub fn due(&self, debounce: Duration, max_delay: Duration, settled: bool) -> Option<Instant> {
        if settled {
            return self.last;
        }
        Some((self.last? + debounce).min(self.first? + max_delay))
    }

    pub fn clear(&mut self) {
        *self = Debounce::default();
    }
}

/// One side's heartbeat: when the next is sent, and the one awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    next: Instant,
    awaited_since: Option<Instant>,
}

/// What a heartbeat needs done now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    Nothing,
    Send,
    Missed,
}

impl Heartbeat {
    pub fn new(now: Instant, every: Duration) -> Heartbeat {
        Heartbeat {
            next: now + every,
            awaited_since: None,
        }
    }

    /// When [`Heartbeat::tick`] next has something to do.
    pub fn due(&self, timeout: Duration) -> Instant {
        match self.awaited_since {
            Some(sent) => sent + timeout,
            None => self.next,
        }
    }

    pub fn tick(&mut self, now: Instant, every: Duration, timeout: Duration) -> Beat {
        match self.awaited_since {
            Some(sent) if now >= sent + timeout => {
                *self = Heartbeat::new(now, every);
                Beat::Missed
            }
            Some(_) => Beat::Nothing,
            None if now >= self.next => {
                self.awaited_since = Some(now);
                Beat::Send
            }
            None => Beat::Nothing,
        }
    }

    /// The loop was busy (a round) until `until`: an answer may be waiting unread, so the
    /// wait for it counts from then.
    pub fn busy_until(&mut self, until: Instant) {
        if let Some(sent) = self.awaited_since {
            self.awaited_since = Some(sent.max(until));
        }
    }

    /// Whether one was sent and has not come through yet.
    pub fn awaited(&self) -> bool {
        self.awaited_since.is_some()
    }

    /// The heartbeat came through.
    pub fn answered(&mut self, now: Instant, every: Duration) {
        if self.awaited_since.is_some() {
            *self = Heartbeat::new(now, every);
        }
    }
}

/// What the loop keeps: both endpoints, the ancestor and the keeper of conflict losers.
pub struct Link<'a, A = Scanner, B = Scanner> {
    pub sides: Sides<A, B>,
    pub ancestor: Ancestor,
    pub keeper: &'a mut dyn Keeper,
}

/// Both sides' watches.
struct Watches<A: Endpoint, B: Endpoint> {
    alpha: Option<A::Watching>,
    beta: Option<B::Watching>,
}

impl<A: Endpoint, B: Endpoint> Watches<A, B> {
    /// Watches `side` (anew: a watch it had is stopped first).
    fn start(
        &mut self,
        sides: &mut Sides<A, B>,
        side: Side,
        tx: &Sender<Input>,
    ) -> std::io::Result<()> {
        match side {
            Side::Alpha => {
                self.alpha = None;
                self.alpha = Some(sides.alpha.watch(side, tx.clone())?);
            }
            Side::Beta => {
                self.beta = None;
                self.beta = Some(sides.beta.watch(side, tx.clone())?);
            }
        }
        Ok(())
    }
}

fn index(side: Side) -> usize {
    match side {
        Side::Alpha => 0,
        Side::Beta => 1,
    }
}

struct State {
    dirty: BTreeSet<RelPath>,
    /// The dirty paths whose last event did not settle them (see [`Input::Changed`]).
    open: BTreeSet<RelPath>,
    full: Option<&'static str>,
    debounce: Debounce,
    next_rescan: Instant,
    beats: [Heartbeat; 2],
    paused: Option<String>,
    /// Held by the gate or the owner: no round runs until released.
    held: bool,
    retry_at: Option<Instant>,
    /// The gate was busy, or a burst of deletions waits for quiet: the same batch is tried
    /// again then.
    again_at: Option<Instant>,
    /// A burst of deletions is waiting for quiet.
    burst: bool,
    /// Until ready: when the trees will have been quiet long enough.
    settle: Option<Instant>,
    /// See [`Ended::agreed`].
    agreed: bool,
    /// Both trees agreed with the ancestor when last scanned whole, and every change since
    /// was seen (no events lost, no stall) and carried without a failure or a warning.
    in_step: bool,
    /// Heartbeats of a fence given up on, still on their way (alpha, beta).
    stray: [usize; 2],
}

/// Runs the loop until [`Input::Stop`] (or until every sender is gone). `tx` is a sender of the
/// same channel as `rx` (the watches send into it). Every report comes with the ancestor, so the
/// owner can save what changed ([`Ancestor::unsaved_rows`], also after a failed round).
pub fn run<A: Endpoint, B: Endpoint>(
    link: &mut Link<A, B>,
    opts: &Options,
    rx: &Receiver<Input>,
    tx: &Sender<Input>,
    report: &mut dyn FnMut(&Report, &mut Ancestor),
) -> Result<(), std::io::Error> {
    run_watched(link, opts, rx, tx, None, report).map(|_| ())
}

/// Both sides' watches, started by the owner before the loop runs (see [`run_watched`]).
pub struct Watched<A: Endpoint, B: Endpoint> {
    pub alpha: A::Watching,
    pub beta: B::Watching,
    /// Both trees agreed with the ancestor when they were last scanned whole under these
    /// watches, nothing left out: the loop begins in step (see [`fenced_flush`]).
    pub in_step: bool,
}

/// How a loop run by [`run_watched`] ended (asked to stop).
pub struct Ended<A: Endpoint, B: Endpoint> {
    /// Both sides' watches, still watching: what changes from now on is still sent to the
    /// loop's channel (none if a side could not be watched again after a stall).
    pub watched: Option<Watched<A, B>>,
    /// The last full round found both trees agreeing with the ancestor (it wrote nothing and
    /// left nothing out), and no change on either side was seen after it began.
    pub agreed: bool,
    /// How many heartbeats each side's watch has yet to deliver (alpha, beta): 0 or 1.
    pub beats_due: [usize; 2],
}

/// [`run`], handing back the watches when it ends ([`Ended`]). `watched`: two trees that
/// have been watched (into `tx`) since before they were last scanned whole and made to agree
/// with the ancestor — as a pairing's start leaves them, its copy of the agent's files done
/// while both were watched. Whatever changed since is in the channel, so the first round
/// covers only that instead of both trees again. Without it, the loop watches both trees
/// itself and begins with a full round.
pub fn run_watched<A: Endpoint, B: Endpoint>(
    link: &mut Link<A, B>,
    opts: &Options,
    rx: &Receiver<Input>,
    tx: &Sender<Input>,
    watched: Option<Watched<A, B>>,
    report: &mut dyn FnMut(&Report, &mut Ancestor),
) -> Result<Ended<A, B>, std::io::Error> {
    let mut watches = Watches::<A, B> {
        alpha: None,
        beta: None,
    };
    let mut in_step = false;
    let first = match watched {
        Some(w) => {
            watches.alpha = Some(w.alpha);
            watches.beta = Some(w.beta);
            in_step = w.in_step;
            None
        }
        None => {
            for side in [Side::Alpha, Side::Beta] {
                watches.start(&mut link.sides, side, tx)?;
            }
            Some("start")
        }
    };
    let started = Instant::now();
    let now = started;
    let mut st = State {
        dirty: BTreeSet::new(),
        open: BTreeSet::new(),
        full: first,
        debounce: Debounce::default(),
        next_rescan: now + opts.rescan_every,
        beats: [Heartbeat::new(now, opts.heartbeat_every); 2],
        paused: None,
        held: false,
        retry_at: None,
        again_at: None,
        burst: false,
        settle: None,
        agreed: false,
        in_step,
        stray: [0; 2],
    };
    // A failure is reported by `round` itself and retried by the loop.
    if round(link, &mut st, opts, Some(Reason::Start), report).is_ok() {
        st.settle = Some(Instant::now() + SETTLE);
    }
    let mut ready = false;
    loop {
        let deadline = [
            st.settle,
            st.debounce
                .due(opts.debounce, opts.max_delay, st.open.is_empty()),
            Some(st.next_rescan),
            Some(st.beats[0].due(opts.heartbeat_timeout)),
            Some(st.beats[1].due(opts.heartbeat_timeout)),
            st.retry_at,
            st.again_at,
        ]
        .into_iter()
        .flatten()
        .min();
        let timeout = deadline.map_or(Duration::from_secs(3600), |d| {
            d.saturating_duration_since(Instant::now())
        });
        match rx.recv_timeout(timeout) {
            Ok(Input::Stop) | Err(RecvTimeoutError::Disconnected) => {
                let watched = match (watches.alpha.take(), watches.beta.take()) {
                    (Some(alpha), Some(beta)) => Some(Watched {
                        alpha,
                        beta,
                        in_step: st.in_step,
                    }),
                    _ => None,
                };
                return Ok(Ended {
                    watched,
                    agreed: st.agreed,
                    beats_due: [0, 1].map(|i| usize::from(st.beats[i].awaited()) + st.stray[i]),
                });
            }
            Ok(Input::Flush(reply)) => {
                // `sync.flush=sleep(MS)`: a tree that does not respond, for tests.
                let answer = match crate::failpoint::hit("sync.flush") {
                    Some(e) => Err(format!("failpoint sync.flush: {e}")),
                    None => match fenced_flush(link, &mut st, opts, rx, tx, report) {
                        Some(answer) => answer,
                        None => flush(link, &mut st, opts, report),
                    },
                };
                let _ = reply.send(answer);
            }
            Ok(input) => {
                on_input(link, &mut st, opts, input, report);
                if !ready {
                    st.settle = Some(Instant::now() + SETTLE);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        if !ready
            && st.settle.is_some_and(|s| now >= s)
            && st.dirty.is_empty()
            && st.full.is_none()
            && st.retry_at.is_none()
        {
            ready = true;
            st.settle = None;
            report(
                &Report::Ready {
                    took: now.duration_since(started),
                },
                &mut link.ancestor,
            );
        }
        for side in [Side::Alpha, Side::Beta] {
            let i = index(side);
            match st.beats[i].tick(now, opts.heartbeat_every, opts.heartbeat_timeout) {
                Beat::Nothing => {}
                Beat::Send => {
                    if let Err(e) = link.sides.heartbeat(side) {
                        report(
                            &Report::WatchTrouble {
                                side,
                                error: format!("cannot send the heartbeat: {e}"),
                            },
                            &mut link.ancestor,
                        );
                        st.beats[i].answered(now, opts.heartbeat_every);
                    }
                }
                Beat::Missed => {
                    st.agreed = false;
                    st.in_step = false;
                    report(&Report::Stalled { side }, &mut link.ancestor);
                    // If the root cannot be watched now (it is gone), the next missed
                    // heartbeat tries again; the rescan meanwhile halts on the missing root.
                    if let Err(e) = watches.start(&mut link.sides, side, tx) {
                        report(
                            &Report::WatchTrouble {
                                side,
                                error: format!("cannot watch it again: {e}"),
                            },
                            &mut link.ancestor,
                        );
                    }
                    st.full = Some("watching had stalled");
                }
            }
        }
        if now >= st.next_rescan {
            st.full = Some("periodic");
        }
        let batch_due = st
            .debounce
            .due(opts.debounce, opts.max_delay, st.open.is_empty())
            .is_some_and(|d| now >= d);
        let retry_due = st.retry_at.is_some_and(|r| now >= r);
        // After a busy gate, nothing runs before `again_at`; then the same batch does.
        let waiting = st.again_at.is_some_and(|t| now < t);
        let again_due = st.again_at.is_some() && !waiting;
        let full_now = !waiting && st.full.is_some() && (st.retry_at.is_none() || retry_due);
        let batch_now = !waiting && (batch_due || again_due) && st.retry_at.is_none();
        if !st.held
            && (batch_now || full_now)
            && round(link, &mut st, opts, None, report).is_ok()
            && !ready
        {
            st.settle = Some(Instant::now() + SETTLE);
        }
    }
}

fn on_input<A: Endpoint, B: Endpoint>(
    link: &mut Link<A, B>,
    st: &mut State,
    opts: &Options,
    input: Input,
    report: &mut dyn FnMut(&Report, &mut Ancestor),
) {
    let now = Instant::now();
    match input {
        Input::Changed {
            side,
            paths,
            settled,
        } => {
            let mut any = false;
            for p in paths {
                if link.sides.is_echo(side, &p) {
                    continue;
                }
                if is_rules_file(&p) {
                    st.full = Some("ignore rules changed");
                }
                if settled {
                    st.open.remove(&p);
                } else {
                    st.open.insert(p.clone());
                }
                st.dirty.insert(p);
                any = true;
            }
            if any {
                st.agreed = false;
                st.debounce.event(now);
                if st.burst {
                    st.again_at = Some(now + BURST_QUIET);
                }
            }
        }
        Input::Overflow { side: _ } => {
            st.agreed = false;
            st.in_step = false;
            st.full = Some("events were lost");
        }
        Input::WatchError { side, error } => {
            st.agreed = false;
            st.in_step = false;
            report(&Report::WatchTrouble { side, error }, &mut link.ancestor);
            st.full = Some("watching reported an error");
        }
        Input::Heartbeat { side } => {
            let i = index(side);
            if st.stray[i] > 0 {
                st.stray[i] -= 1;
            } else {
                st.beats[i].answered(now, opts.heartbeat_every);
            }
        }
        // The owner knows why it holds: nothing to report back.
        Input::Hold => {
            st.held = true;
            st.retry_at = None;
        }
        Input::Release => {
            st.held = false;
            st.retry_at = None;
            st.full = Some("released");
        }
        Input::Flush(_) | Input::Stop => {}
    }
}

/// One round: full when one is pending, else over the dirty paths. Returns the round's figures
/// (for a flush: once both sides agree).
fn round<A: Endpoint, B: Endpoint>(
    link: &mut Link<A, B>,
    st: &mut State,
    opts: &Options,
    reason: Option<Reason>,
    report: &mut dyn FnMut(&Report, &mut Ancestor),
) -> Result<Stats, String> {
    let started = Instant::now();
    let full = st.full.take();
    let dirty = std::mem::take(&mut st.dirty);
    // Only a full round that goes through says the trees agree (see `Ended::agreed`).
    st.agreed = false;
    st.open.clear();
    st.debounce.clear();
    st.again_at = None;
    // A burst that waited for quiet may be carried out now (the engine still halts if a side
    // lost most of what both agreed on).
    link.sides.burst_settled = std::mem::take(&mut st.burst);
    let reason = reason.unwrap_or(match full {
        Some("start") => Reason::Start,
        Some(why) => Reason::Rescan(why),
        None => Reason::Events(dirty.len()),
    });
    let result = if full.is_some() {
        let forgot = if full.is_some_and(|w| w == "ignore rules changed") {
            link.sides.forget_rules()
        } else {
            Ok(())
        };
        forgot
            .and_then(|()| full_until_quiet(link, reason == Reason::Flush))
            .map(|(stats, agreed)| {
                st.agreed = agreed;
                st.in_step = agreed;
                stats
            })
    } else {
        sync_paths(&mut link.sides, &mut link.ancestor, link.keeper, &dirty).inspect(|stats| {
            st.in_step &= stats.warnings.is_empty();
        })
    };
    if result.is_err() {
        st.in_step = false;
    }
    let outcome = match result {
        Ok(stats) => {
            if full.is_some() {
                st.next_rescan = Instant::now() + opts.rescan_every;
            }
            st.retry_at = None;
            if st.paused.take().is_some() {
                report(&Report::Resumed, &mut link.ancestor);
            }
            report(
                &Report::Synced {
                    reason,
                    stats: &stats,
                    took: started.elapsed(),
                },
                &mut link.ancestor,
            );
            Ok(stats)
        }
        Err(ApplyError::Burst { .. }) => {
            st.full = full;
            st.dirty.extend(dirty);
            st.burst = true;
            st.again_at = Some(Instant::now() + BURST_QUIET);
            Err("a burst of deletions waits for quiet".to_string())
        }
        Err(ApplyError::Gated { busy, why }) => {
            // Nothing was written; everything stays pending (a release adds a full round).
            st.full = full;
            st.dirty.extend(dirty);
            if busy {
                st.again_at = Some(Instant::now() + GATE_BUSY_RETRY);
            } else {
                hold(link, st, &why, report);
            }
            Err(why)
        }
        Err(e) => {
            // Whatever was pending stays pending: retry everything, fully.
            st.full = Some("retrying after a failure");
            st.dirty.extend(dirty);
            st.retry_at = Some(Instant::now() + opts.retry_every);
            let msg = e.to_string();
            if e.is_pausing() {
                if st.paused.as_deref() != Some(msg.as_str()) {
                    st.paused = Some(msg.clone());
                    report(&Report::Paused { error: &e }, &mut link.ancestor);
                }
            } else {
                report(&Report::Failed { error: msg.clone() }, &mut link.ancestor);
            }
            Err(msg)
        }
    };
    // Heartbeat answers that arrived meanwhile are still unread: judge them from now on.
    let done = Instant::now();
    for beat in &mut st.beats {
        beat.busy_until(done);
    }
    outcome
}

/// How long a fenced flush waits for its heartbeats before it flushes with full rounds.
const FENCE_WAIT: Duration = Duration::from_secs(1);

/// A flush without a full round, while the loop is in step (`None` otherwise, or when the
/// fence did not close in time: then [`flush`] runs). A heartbeat goes through each watch;
/// events arrive in order, so once both are back every change made before the flush is among
/// the dirty paths, and a round over them makes both sides agree. What the owner asks
/// meanwhile is asked again after it.
fn fenced_flush<A: Endpoint, B: Endpoint>(
    link: &mut Link<A, B>,
    st: &mut State,
    opts: &Options,
    rx: &Receiver<Input>,
    tx: &Sender<Input>,
    report: &mut dyn FnMut(&Report, &mut Ancestor),
) -> Option<Result<Stats, String>> {
    // In step, and nothing asks for more than a round over the dirty paths (a full round
    // pending — an ignore file changed, say —, a hold, a retry).
    let fit = |st: &State| {
        st.in_step
            && !st.held
            && st.full.is_none()
            && st.retry_at.is_none()
            && st.again_at.is_none()
    };
    if !fit(st) {
        return None;
    }
    // The heartbeats each side's watch is to deliver before the fence closes: those still
    // on their way come first, then the fence's own.
    let mut due = [0, 1].map(|i| st.stray[i] + usize::from(st.beats[i].awaited()));
    let mut sent = true;
    for side in [Side::Alpha, Side::Beta] {
        match link.sides.heartbeat(side) {
            Ok(()) => due[index(side)] += 1,
            Err(_) => {
                sent = false;
                break;
            }
        }
    }
    let mut asked = Vec::new();
    let until = Instant::now() + FENCE_WAIT.min(opts.heartbeat_timeout);
    while sent && due != [0, 0] && fit(st) {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Input::Heartbeat { side }) => {
                let i = index(side);
                due[i] = due[i].saturating_sub(1);
                on_input(link, st, opts, Input::Heartbeat { side }, report);
            }
            Ok(input @ (Input::Stop | Input::Flush(_))) => asked.push(input),
            Ok(input) => on_input(link, st, opts, input, report),
            Err(_) => break,
        }
    }
    for input in asked {
        let _ = tx.send(input);
    }
    if !sent || due != [0, 0] || !fit(st) {
        // Heartbeats not back yet are strays, beyond the one the loop itself awaits:
        // whoever counts heartbeats later must not take one of them for its own.
        st.stray = [0, 1].map(|i| due[i].saturating_sub(usize::from(st.beats[i].awaited())));
        return None;
    }
    let answer = if st.dirty.is_empty() {
        Ok(Stats::default())
    } else {
        match round(link, st, opts, Some(Reason::Flush), report) {
            Ok(stats) => Ok(stats),
            // Whatever it was (the gate busy, a failure), full rounds deal with it.
            Err(_) => return None,
        }
    };
    st.agreed = st.in_step;
    Some(answer)
}

/// A flush: full rounds until both sides agree, waiting while the gate is busy.
fn flush<A: Endpoint, B: Endpoint>(
    link: &mut Link<A, B>,
    st: &mut State,
    opts: &Options,
    report: &mut dyn FnMut(&Report, &mut Ancestor),
) -> Result<Stats, String> {
    loop {
        if st.held {
            return Err("syncing is held".to_string());
        }
        st.full = Some("flush");
        let answer = round(link, st, opts, Some(Reason::Flush), report);
        match st.again_at.take() {
            Some(at) if answer.is_err() => {
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
            }
            _ => return answer,
        }
    }
}

/// The gate shut: the loop holds (reported once per hold) and applies nothing until released.
fn hold<A: Endpoint, B: Endpoint>(
    link: &mut Link<A, B>,
    st: &mut State,
    why: &str,
    report: &mut dyn FnMut(&Report, &mut Ancestor),
) {
    st.retry_at = None;
    if !st.held {
        st.held = true;
        report(&Report::Held { why }, &mut link.ancestor);
    }
}

/// Full rounds; for a flush, repeated (a few times at most) until one finds nothing to do.
/// Also whether the last found both trees agreeing (nothing to do, nothing left out).
fn full_until_quiet<A: Endpoint, B: Endpoint>(
    link: &mut Link<A, B>,
    until_quiet: bool,
) -> Result<(Stats, bool), ApplyError> {
    let mut total = Stats::default();
    let mut agreed = false;
    for _ in 0..5 {
        let stats = sync_once(&mut link.sides, &mut link.ancestor, link.keeper)?;
        let quiet = stats.is_quiet();
        agreed = quiet && stats.warnings.is_empty();
        total.absorb(stats);
        if quiet || !until_quiet {
            break;
        }
    }
    Ok((total, agreed))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_batch_is_due_at_once_when_settled_else_after_quiet_or_the_maximum_delay() {
        let t0 = Instant::now();
        let mut d = Debounce::default();
        assert_eq!(d.due(2 * MS, 100 * MS, false), None);
        assert_eq!(d.due(2 * MS, 100 * MS, true), None);
        d.event(t0);
        assert_eq!(d.due(2 * MS, 100 * MS, false), Some(t0 + 2 * MS));
        // Every path settled (written and closed, say): due at once.
        assert_eq!(d.due(2 * MS, 100 * MS, true), Some(t0));
        // A steady stream: each event pushes the quiet deadline, the maximum holds.
        for i in 1..=99 {
            d.event(t0 + i * MS);
        }
        assert_eq!(d.due(2 * MS, 100 * MS, false), Some(t0 + 100 * MS));
        d.clear();
        assert_eq!(d.due(2 * MS, 100 * MS, false), None);
    }

    #[test]
    fn a_heartbeat_is_sent_awaited_and_missed_or_answered() {
        let (every, timeout) = (1000 * MS, 100 * MS);
        let t0 = Instant::now();
        let mut h = Heartbeat::new(t0, every);
        assert_eq!(h.due(timeout), t0 + every);
        assert_eq!(h.tick(t0 + 999 * MS, every, timeout), Beat::Nothing);
        assert_eq!(h.tick(t0 + every, every, timeout), Beat::Send);
        assert_eq!(h.due(timeout), t0 + every + timeout);
        assert_eq!(h.tick(t0 + every + 50 * MS, every, timeout), Beat::Nothing);
        h.answered(t0 + every + 60 * MS, every);
        assert_eq!(h.due(timeout), t0 + 2 * every + 60 * MS);
        // Sent again, never answered: missed once, then a new period starts.
        let t1 = t0 + 2 * every + 60 * MS;
        assert_eq!(h.tick(t1, every, timeout), Beat::Send);
        assert_eq!(h.tick(t1 + timeout, every, timeout), Beat::Missed);
        assert_eq!(h.due(timeout), t1 + timeout + every);
        // An answer nobody awaited changes nothing.
        let before = h;
        h.answered(t1 + timeout + MS, every);
        assert_eq!(h, before);
        // A long round delays the verdict: the answer may be queued behind it.
        let t2 = t1 + timeout + every;
        assert_eq!(h.tick(t2, every, timeout), Beat::Send);
        h.busy_until(t2 + 10 * timeout);
        assert_eq!(h.tick(t2 + 10 * timeout, every, timeout), Beat::Nothing);
        assert_eq!(h.due(timeout), t2 + 11 * timeout);
        assert_eq!(h.tick(t2 + 11 * timeout, every, timeout), Beat::Missed);
    }
}
