//! The turns of a turn agent elsewhere (`--turn CMD --on URL`, SPEC §10.2 and §10.4): the
//! daemon's end. `inbox.rs` records, times and settles a turn as for a local agent; only what
//! touches the keeper and the workspace goes over the agent's link, as far calls
//! (`far_calls::Call::{TurnStart, TurnLook, TurnStop, TurnEnd}`): the turn runs there under a keeper
//! of its own (`turns/<turn>/` in the agent's directory there), in the workspace there, with
//! the message on its standard input, so it lives on whatever happens to the daemon or the
//! connection. The branch's tip before and after comes from the workspace there
//! (`far_calls::Call::PairLook`), and the end of the turn's output is brought here into the local
//! turn directory, where the inbox reads it as a local turn's.

use std::path::Path;
use std::time::Duration;

use berth_core::inbox::Seen;
use berth_store::AgentRecord;
use berth_supervisor::keeper::spec::KeeperSpec;

use crate::agents::{Link, LinkError, Supervisor};
use crate::far_calls::{Answer, Call, KeeperLook};

/// How long a look that could not get through holds the watch back.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// One turn's keeper there.
#[derive(Debug, Clone)]
pub struct FarTurn {
    link: Link,
    turn: i64,
}

/// What a look at the turn's keeper there shows.
fn seen_of(keeper: KeeperLook) -> Seen {
    match keeper {
        KeeperLook::Alive { .. } => Seen::Alive,
        KeeperLook::Done { code, .. } => Seen::Exited { code },
        // Its files are written before the turn is said to have started: gone.
        KeeperLook::Vanished | KeeperLook::NotStarted => Seen::Gone,
    }
}

impl FarTurn {
    /// Turn `turn` of `rec` (an agent elsewhere).
    pub fn of(agents: &Supervisor, rec: &AgentRecord, turn: i64) -> Result<FarTurn, String> {
        let link = agents.link(rec).map_err(|e| e.to_string())?;
        Ok(FarTurn { link, turn })
    }

    /// Starts the turn there with `spec` (its working directory, standard input and message
    /// file are set there) and the message's bytes.
    pub async fn start(&self, spec: KeeperSpec, message: Vec<u8>) -> Result<(), String> {
        let call = Call::TurnStart {
            turn: self.turn,
            spec,
            message,
        };
        match self.link.call_async(call).await {
            Ok(Answer::Look { .. }) => Ok(()),
            Ok(_) => Err("the far side answered out of turn".into()),
            Err(e) => Err(format!("the turn could not start there: {e}")),
        }
    }

    /// How the turn is there; `None` while it runs, or while it cannot be asked (the watch
    /// asks again, and the turn's timeout still counts). A look that could not get through
    /// returns only after [`RETRY_AFTER`], so a link that is down is not tried again at the
    /// watch's pace (each try may start ssh or docker anew).
    pub async fn seen(&self) -> Option<Seen> {
        match self.look().await {
            Ok(Seen::Alive) => None,
            Ok(seen) => Some(seen),
            Err(_) => {
                tokio::time::sleep(RETRY_AFTER).await;
                None
            }
        }
    }

    /// How the turn is there, for a daemon that started again: one that cannot be asked now
    /// is taken as running (it is watched, never started a second time).
    pub async fn recovered(&self) -> Seen {
        self.look().await.unwrap_or(Seen::Alive)
    }

    async fn look(&self) -> Result<Seen, LinkError> {
        match self
            .link
            .call_async(Call::TurnLook { turn: self.turn })
            .await?
        {
            Answer::Look { keeper, .. } => Ok(seen_of(keeper)),
            _ => Err(LinkError::Refused(
                "the far side answered out of turn".into(),
            )),
        }
    }

    /// Stops the turn there (its keeper's own stop).
    pub async fn stop(&self) -> Result<(), LinkError> {
        self.link
            .call_async(Call::TurnStop { turn: self.turn })
            .await
            .map(drop)
    }

    /// Brings the end of the turn's output there into `log` here, and removes its files there.
    pub async fn end(&self, log: &Path) -> Result<(), String> {
        match self
            .link
            .call_async(Call::TurnEnd { turn: self.turn })
            .await
        {
            Ok(Answer::Look { log: bytes, .. }) => {
                if let Some(dir) = log.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                }
                std::fs::write(log, bytes).map_err(|e| e.to_string())
            }
            Ok(_) => Err("the far side answered out of turn".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Where the agent's branch is in its workspace there (`None`: it cannot be asked now).
pub async fn tip(agents: &Supervisor, rec: &AgentRecord) -> Option<String> {
    let link = agents.link(rec).ok()?;
    let branch_ref = berth_git::workspace::branch_ref(&rec.name);
    match link.call_async(Call::PairLook { branch_ref }).await {
        Ok(Answer::PairLook(look)) => look.tip,
        _ => None,
    }
}
