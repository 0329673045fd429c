//! A controller's front door: its thread is busy for as long as a start or stop runs, so a
//! start that arrives meanwhile is answered here, at once, as `pairing_busy`.

use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};

use berth_core::pairing::Blocker;
use berth_proto::PairStatus;

use super::error::PairingError;
use super::messages::{Msg, Request};

/// The transition a start or stop the controller has accepted is carrying out (until it
/// answers): `starting with fixer`, `stopping with fixer`.
pub(super) type InFlight = Arc<Mutex<Option<String>>>;

/// The controller's front door: the controller's thread is busy for as long as a start or a
/// stop runs, so a start that arrives meanwhile is answered here, at once, with
/// `pairing_busy` naming the transition in progress (rather than queued and carried out after
/// it, e.g. as a switch nobody asked for any more). Everything else goes through in order.
pub(super) fn run_front(
    rx: &Receiver<Msg>,
    tx: &Sender<Msg>,
    status: &Mutex<PairStatus>,
    in_flight: &InFlight,
) {
    while let Ok(msg) = rx.recv() {
        let msg = match msg {
            Msg::Request(Request::Start {
                agent,
                no_stash,
                reply,
            }) => {
                if let Some(transition) = busy_with(status, in_flight) {
                    let blocker = Blocker::PairingBusy { transition };
                    let _ = reply.send(Err(PairingError::Blocked(vec![blocker])));
                    continue;
                }
                set_in_flight(in_flight, Some(format!("starting with {agent}")));
                Msg::Request(Request::Start {
                    agent,
                    no_stash,
                    reply,
                })
            }
            Msg::Request(Request::Stop { reply }) => {
                let agent = lock(status).agent.clone().unwrap_or_default();
                set_in_flight(in_flight, Some(format!("stopping with {agent}")));
                Msg::Request(Request::Stop { reply })
            }
            other => other,
        };
        if tx.send(msg).is_err() {
            return; // the controller ended; the request's reply is dropped (asked again)
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) fn set_in_flight(in_flight: &InFlight, what: Option<String>) {
    *lock(in_flight) = what;
}

/// The transition in progress, if one is: what the status shows (a start or stop step, a
/// rollback, also during recovery), else a start or stop accepted but not answered yet.
fn busy_with(status: &Mutex<PairStatus>, in_flight: &InFlight) -> Option<String> {
    {
        let s = lock(status);
        if matches!(s.state.as_str(), "starting" | "stopping" | "rolling_back") {
            let agent = s.agent.clone().unwrap_or_default();
            return Some(format!("{} with {agent}", s.describe));
        }
    }
    lock(in_flight).clone()
}
