//! The file side of a pairing: the sync engine's live loop between the user's checkout (alpha,
//! which wins conflicts) and the agent's workspace (beta), on a thread of its own.
//!
//! Its scanners carry the pairing's gate and settings ([`Roots::sides`]), conflict losers go to
//! the keeper ([`RefKeeper`]), and the ancestor is saved to the store after every report.
//! Reports become [`LinkEvent`]s for the controller.
//!
//! Nothing waits for the loop without a limit: a flush gives up after its limit (a tree that
//! does not respond keeps the loop in its round), and a stop lets go of a loop that does not
//! end in time. A loop let go of keeps its gate shut ([`until_shut`]) and reports nothing
//! more, so when it wakes up it applies nothing (at most the one write it was blocked in
//! completes) and leaves the store alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use berth_git::Git;
use berth_store::Store;
use berth_sync::ancestor::Ancestor;
use berth_sync::endpoint::Endpoint;
use berth_sync::engine::Sides;
use berth_sync::live::{self, Report};
use berth_sync::reconcile::Side;
use berth_sync::scan::Scanner;
use berth_sync::stats::Stats;
use berth_sync::watch::Input;

use super::ancestor;
use super::error::PairingError;
use super::gate::until_shut;
use super::keeper::{RefKeeper, kept_count};
use super::link_event::{LinkEvent, Tell, from_report};
use super::roots::Roots;
use super::tree::AgentTree;

/// Both trees' endpoints and the ancestor as a start's copy step left them (scanned, hashed,
/// saved), so that the loop's first round stats both trees instead of reading every file
/// again; or as the loop left them when it ended, for a stop's check of both trees.
pub struct Warm {
    pub sides: Sides<Scanner, AgentTree>,
    pub ancestor: Ancestor,
    /// Both trees watched since before the copy step scanned them: the loop then begins with
    /// what changed since instead of a full round. From a loop that ended: its watches, still
    /// watching.
    pub watched: Option<Watching>,
    /// From a loop that ended: its last full round found both trees agreeing, and it saw
    /// nothing change after that round began ([`live::Ended::agreed`]).
    pub agreed: bool,
}

/// Both trees watched, and the channel their events wait in until the loop runs.
pub struct Watching {
    tx: Sender<Input>,
    rx: Receiver<Input>,
    watches: live::Watched<Scanner, AgentTree>,
    /// Heartbeats the checkout's watch has yet to deliver (sent by a loop that ended).
    beats_due: usize,
}

impl Watching {
    /// Whether the checkout (alpha) is still as it was when the loop's last full round
    /// scanned it: no event of it is waiting, up to a heartbeat sent through its watch now
    /// (events come in order, so once the heartbeat is back, every earlier change has been
    /// seen; one the loop sent before it is told apart by counting). `false` when in doubt
    /// (an event, lost events, an error, no heartbeat in time).
    pub fn checkout_untouched(&self, sides: &mut Sides<Scanner, AgentTree>) -> bool {
        if sides.alpha.heartbeat().is_err() {
            return false;
        }
        let mut due = self.beats_due + 1;
        let until = std::time::Instant::now() + HEARTBEAT_WAIT;
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Input::Heartbeat { side: Side::Alpha }) => {
                    due -= 1;
                    if due == 0 {
                        return true;
                    }
                }
                // The agent's changes cannot make the checkout hold anything new; the owner's
                // own requests (a stop sent again as the loop was dropped) change nothing.
                Ok(Input::Heartbeat { side: Side::Beta })
                | Ok(Input::Changed {
                    side: Side::Beta, ..
                })
                | Ok(Input::Stop | Input::Flush(_) | Input::Hold | Input::Release) => {}
                Ok(_) | Err(_) => return false,
            }
        }
    }

    /// Both trees were scanned whole since they were watched and made to agree, nothing left
    /// out: the loop begins in step ([`live::Watched::in_step`]).
    pub fn agreed(&mut self) {
        self.watches.in_step = true;
    }

    /// Starts watching both trees of `sides`; `None` if either cannot be watched now (the
    /// loop then watches them itself, and begins with a full round). Not in step until
    /// [`Watching::agreed`] says so.
    pub fn start(sides: &mut Sides<Scanner, AgentTree>) -> Option<Watching> {
        let (tx, rx) = mpsc::channel();
        let alpha = sides.alpha.watch(Side::Alpha, tx.clone());
        let beta = Endpoint::watch(&mut sides.beta, Side::Beta, tx.clone());
        match (alpha, beta) {
            (Ok(alpha), Ok(beta)) => Some(Watching {
                tx,
                rx,
                watches: live::Watched {
                    alpha,
                    beta,
                    in_step: false,
                },
                beats_due: 0,
            }),
            (Err(e), _) | (_, Err(e)) => {
                tracing::debug!("cannot watch the trees before copying: {e}");
                None
            }
        }
    }
}

/// Environment variable (milliseconds) shortening the heartbeat period, for tests and
/// diagnosis; the default is the live loop's.
const HEARTBEAT_ENV: &str = "BERTH_PAIR_HEARTBEAT_MS";

/// The live loop's timings: its defaults, with the heartbeat from [`HEARTBEAT_ENV`] if set.
fn options() -> live::Options {
    let defaults = live::Options::default();
    match std::env::var(HEARTBEAT_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
    {
        Some(ms) => {
            let every = Duration::from_millis(ms);
            live::Options {
                heartbeat_every: every,
                heartbeat_timeout: defaults.heartbeat_timeout.min(every),
                ..defaults
            }
        }
        None => defaults,
    }
}

/// How long a stop's check waits for the checkout's heartbeat ([`Watching::checkout_untouched`]).
const HEARTBEAT_WAIT: Duration = Duration::from_secs(1);

/// How long a stop waits for the round in progress before it lets go of the loop.
const END_WAIT: Duration = Duration::from_secs(5);

/// A running live loop.
pub struct SyncLoop {
    input: Sender<Input>,
    /// Ends with the loop's endpoints and ancestor, when it ended as asked.
    thread: Option<JoinHandle<Option<Warm>>>,
    /// Sent to once the loop watches both trees and its first full round went through (or the
    /// gate held it); dropped if the loop ends first.
    started: Receiver<()>,
    /// Nothing is sent on it: it is disconnected once the loop's thread has ended.
    ended: Receiver<()>,
    /// Set when the loop is let go of: its gate stays shut and it reports nothing more.
    shut: Arc<AtomicBool>,
    /// Where the answer of the last flush comes, while it has not come (the flush gave up):
    /// a stop does not wait for the loop again, and the loop is not answering
    /// ([`SyncLoop::answering`]).
    unanswered: Option<Receiver<Result<Stats, String>>>,
}

impl SyncLoop {
    /// Starts the loop: its first round is a full one; [`LinkEvent::Ready`] follows once the
    /// trees agree. `warm`: the endpoints and ancestor to begin with (else made and loaded).
    pub fn start(
        store: Store,
        pairing: String,
        roots: Roots,
        warm: Option<Warm>,
        tell: Tell,
    ) -> std::io::Result<SyncLoop> {
        let mut warm = warm;
        let watched = warm.as_mut().and_then(|w| w.watched.take());
        let (tx, rx, watches) = match watched {
            Some(w) => (w.tx, w.rx, Some(w.watches)),
            None => {
                let (tx, rx) = mpsc::channel();
                (tx, rx, None)
            }
        };
        let hand_back = tx.clone();
        let loop_tx = tx.clone();
        let (started_tx, started) = mpsc::channel();
        let (ended_tx, ended) = mpsc::channel::<()>();
        let shut = Arc::new(AtomicBool::new(false));
        let loop_shut = shut.clone();
        let thread = std::thread::Builder::new()
            .name(format!("pair-{pairing}"))
            .spawn(move || {
                let _ended = ended_tx;
                let shut = loop_shut;
                let ws = Git::new(&roots.keep_in);
                let mut keeper = RefKeeper {
                    next: kept_count(&ws, &pairing),
                    ws,
                    pairing: pairing.clone(),
                    tell: tell.clone(),
                };
                let prepared = match warm {
                    Some(w) => Ok((w.ancestor, w.sides)),
                    None => roots.sides().and_then(|mut sides| {
                        let ancestor = ancestor::load_adopting(&store, &pairing, |side, path| {
                            let (tree, _) = match side {
                                Side::Alpha => sides.alpha.under(path),
                                Side::Beta => Endpoint::under(&mut sides.beta, path)?,
                            };
                            Ok::<_, berth_sync::scan::ScanError>(tree.get(path).cloned())
                        })?;
                        Ok((ancestor, sides))
                    }),
                };
                let (ancestor, mut sides) = match prepared {
                    Ok(p) => p,
                    Err(e) => {
                        tell(LinkEvent::Ended(Err(e)));
                        return None;
                    }
                };
                sides.journal = Some(ancestor::journal(store.clone(), &pairing));
                sides.gate = Some(until_shut(sides.gate.take(), shut.clone()));
                let mut link = live::Link {
                    sides,
                    ancestor,
                    keeper: &mut keeper,
                };
                let mut report = |r: &Report, a: &mut Ancestor| {
                    if shut.load(Ordering::SeqCst) {
                        return; // let go of: the pairing may be over
                    }
                    if let Err(e) = ancestor::save(&store, &pairing, a) {
                        tell(LinkEvent::Failed(format!(
                            "cannot save what both sides agreed on: {e}"
                        )));
                    }
                    if matches!(
                        r,
                        Report::Ready { .. }
                            | Report::Held { .. }
                            | Report::Synced {
                                reason: live::Reason::Start,
                                ..
                            }
                    ) {
                        let _ = started_tx.send(());
                    }
                    if let Some(ev) = from_report(&roots.agent, r) {
                        tell(ev);
                    }
                    crate::memory::after_round(r);
                };
                let end =
                    live::run_watched(&mut link, &options(), &rx, &loop_tx, watches, &mut report)
                        .map_err(PairingError::Watch);
                if shut.load(Ordering::SeqCst) {
                    return None;
                }
                let (end, ended) = match end {
                    Ok(ended) => (Ok(()), Some(ended)),
                    Err(e) => (Err(e), None),
                };
                tell(LinkEvent::Ended(end));
                let ended = ended?;
                Some(Warm {
                    sides: link.sides,
                    ancestor: link.ancestor,
                    watched: ended.watched.map(|watches| Watching {
                        tx: hand_back,
                        rx,
                        watches,
                        beats_due: ended.beats_due[0],
                    }),
                    agreed: ended.agreed,
                })
            })?;
        Ok(SyncLoop {
            input: tx,
            thread: Some(thread),
            started,
            ended,
            shut,
            unanswered: None,
        })
    }

    /// Waits until the loop watches both trees and its first full round went through (or the
    /// gate holds it); `false` if it ended first or `timeout` passed.
    pub fn wait_started(&self, timeout: Duration) -> bool {
        self.started.recv_timeout(timeout).is_ok()
    }

    /// Apply nothing until released.
    pub fn hold(&self) {
        let _ = self.input.send(Input::Hold);
    }

    /// Apply again, beginning with a full round.
    pub fn release(&self) {
        let _ = self.input.send(Input::Release);
    }

    /// Syncs everything now; answers once both sides agree, or gives up after `limit`
    /// ([`PairingError::FlushTimedOut`]; the loop goes on with the flush).
    pub fn flush(&mut self, limit: Duration) -> Result<Stats, PairingError> {
        let (tx, rx) = mpsc::channel();
        self.input
            .send(Input::Flush(tx))
            .map_err(|_| PairingError::LoopEnded)?;
        match rx.recv_timeout(limit) {
            Ok(answer) => {
                self.unanswered = None;
                answer.map_err(PairingError::Sync)
            }
            Err(RecvTimeoutError::Timeout) => {
                self.unanswered = Some(rx);
                Err(PairingError::FlushTimedOut(limit))
            }
            Err(RecvTimeoutError::Disconnected) => Err(PairingError::LoopEnded),
        }
    }

    /// Whether the loop has answered every flush it was sent: until it answers one that gave
    /// up, what it reports is from before (it may have sent it as the flush was asked).
    pub fn answering(&mut self) -> bool {
        let answered = self
            .unanswered
            .as_ref()
            .is_none_or(|rx| !matches!(rx.try_recv(), Err(mpsc::TryRecvError::Empty)));
        if answered {
            self.unanswered = None;
        }
        answered
    }

    /// Stops the loop after the round in progress and waits for it — for [`END_WAIT`] at
    /// most, and not at all once a flush went unanswered; then it is let go of. What it
    /// ended with, if it ended as asked.
    pub fn stop(mut self) -> Option<Warm> {
        self.end()
    }

    fn end(&mut self) -> Option<Warm> {
        let _ = self.input.send(Input::Stop);
        let thread = self.thread.take()?;
        let wait = if self.answering() {
            END_WAIT
        } else {
            Duration::ZERO
        };
        match self.ended.recv_timeout(wait) {
            Err(RecvTimeoutError::Disconnected) => thread.join().ok().flatten(),
            Ok(()) | Err(RecvTimeoutError::Timeout) => {
                // Dropping the handle detaches the thread; its shut gate keeps it harmless.
                self.shut.store(true, Ordering::SeqCst);
                tracing::warn!(
                    "the sync loop did not end in time; let go of it (it applies nothing more)"
                );
                None
            }
        }
    }
}

impl Drop for SyncLoop {
    fn drop(&mut self) {
        let _ = self.end();
    }
}
