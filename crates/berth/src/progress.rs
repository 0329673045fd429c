//! A progress line for long work (`pair`, `pair stop`, `agent new`, `up`): an `indicatif`
//! spinner on standard error saying what is going on and for how long, so no command sits
//! silent. Only on a terminal, and never with `--json`: scripts and pipes see exactly the
//! output they saw before. The line is cleared before the command prints its result.

use std::future::Future;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How often the line is redrawn, and how often [`during`] asks what is going on.
const TICK: Duration = Duration::from_millis(120);
const POLL: Duration = Duration::from_millis(400);

/// A spinner, or nothing when output is not for a person at a terminal.
fn spinner(json: bool, message: String) -> Option<ProgressBar> {
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(message);
    bar.enable_steady_tick(TICK);
    Some(bar)
}

/// Runs `work` while a progress line shows `message`; `now` (asked every 400 ms) may replace
/// the message with what is going on at the moment (`None`: keep it).
pub async fn during<T, N, F>(json: bool, message: String, work: F, mut now: N) -> T
where
    F: Future<Output = T>,
    N: AsyncFnMut() -> Option<String>,
{
    let Some(bar) = spinner(json, message) else {
        return work.await;
    };
    tokio::pin!(work);
    let mut poll = tokio::time::interval(POLL);
    poll.tick().await;
    let out = loop {
        tokio::select! {
            out = &mut work => break out,
            _ = poll.tick() => {
                if let Some(m) = now().await {
                    bar.set_message(m);
                }
            }
        }
    };
    bar.finish_and_clear();
    out
}

/// [`during`] with a message that does not change.
pub async fn steady<T>(json: bool, message: String, work: impl Future<Output = T>) -> T {
    during(json, message, work, async || None).await
}
