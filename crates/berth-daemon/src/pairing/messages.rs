//! A controller's mailbox: what reaches it — requests from the API, the link's reports, a
//! change in a git dir — and how a request is answered once the pairing is over.

use berth_proto::{PairFlushed, PairStatus, PairStopped};
use tokio::sync::oneshot;

use super::error::PairingError;
use super::link_event::LinkEvent;

/// A request to the controller; each carries where its answer goes.
#[derive(Debug)]
pub enum Request {
    Start {
        agent: String,
        no_stash: bool,
        reply: oneshot::Sender<Result<PairStatus, PairingError>>,
    },
    Stop {
        reply: oneshot::Sender<Result<PairStopped, PairingError>>,
    },
    Flush {
        reply: oneshot::Sender<Result<PairFlushed, PairingError>>,
    },
    Park {
        reply: oneshot::Sender<()>,
    },
}

/// What reaches the controller.
#[derive(Debug)]
pub enum Msg {
    Request(Request),
    Link(LinkEvent),
    /// Something changed in a git dir of either side.
    Git,
}

impl Request {
    /// Answers a request that reached the controller after its pairing ended.
    pub fn answer_ended(self) {
        match self {
            // Unanswered: the caller asks a new controller (`Pairings::start`).
            Request::Start { reply, .. } => drop(reply),
            Request::Stop { reply } => {
                let _ = reply.send(Err(PairingError::NotPaired));
            }
            Request::Flush { reply } => {
                let _ = reply.send(Err(PairingError::NotPaired));
            }
            Request::Park { reply } => {
                let _ = reply.send(());
            }
        }
    }
}
