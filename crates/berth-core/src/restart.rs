//! Restart policy: when a process that ended is started again, and when berth gives up.
//!
//! - `no`: never restarted. `on-failure`: restarted after a non-zero exit or a signal.
//!   `always`: restarted after any exit (a requested stop is not an exit here; the supervisor
//!   does not consult the policy then).
//! - Delays grow exponentially (1 s, 2 s, 4 s, … up to 60 s) and start over once a run has
//!   lasted a stable period.
//! - A budget (5 restarts in 10 minutes by default) ends a crash loop in `failed` instead of
//!   flapping forever.
//!
//! [`Tracker::on_exit`] is a pure function of the times it is given, so the whole policy is
//! tested without sleeping.

use std::collections::VecDeque;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    OnFailure,
    Always,
}

impl RestartPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Always => "always",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid restart policy {0:?}: use no, on-failure or always")]
pub struct PolicyError(pub String);

impl FromStr for RestartPolicy {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "no" => Ok(RestartPolicy::No),
            "on-failure" => Ok(RestartPolicy::OnFailure),
            "always" => Ok(RestartPolicy::Always),
            other => Err(PolicyError(other.to_string())),
        }
    }
}

/// Timing of restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// A run at least this long resets the delay to `initial`.
    pub stable_after: Duration,
    /// At most this many restarts …
    pub budget: u32,
    /// … within this window.
    pub window: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            stable_after: Duration::from_secs(60),
            budget: 5,
            window: Duration::from_secs(600),
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// Exit status 0.
    Success,
    /// Non-zero status, or killed by a signal.
    Failure,
}

/// What to do after an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// No restart is due: the process stays `exited`.
    Stay,
    /// Restart attempt `attempt` (1-based) at `at_ms`.
    Restart { attempt: u32, at_ms: u64 },
    /// The budget is spent: the process is `failed`.
    GiveUp,
}

/// The restart history of one process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracker {
    /// When each restart within the window was scheduled (ms).
    recent: VecDeque<u64>,
    /// Consecutive quick failures so far (sets the next delay).
    streak: u32,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Tracker {
    /// Decides after a process that started at `started_ms` ended at `now_ms`.
    pub fn on_exit(
        &mut self,
        policy: RestartPolicy,
        backoff: &Backoff,
        exit: Exit,
        started_ms: u64,
        now_ms: u64,
    ) -> Decision {
        let due = match policy {
            RestartPolicy::No => false,
            RestartPolicy::OnFailure => exit == Exit::Failure,
            RestartPolicy::Always => true,
        };
        if !due {
            return Decision::Stay;
        }
        if now_ms.saturating_sub(started_ms) >= ms(backoff.stable_after) {
            self.streak = 0;
        }
        let window_start = now_ms.saturating_sub(ms(backoff.window));
        while self.recent.front().is_some_and(|t| *t < window_start) {
            self.recent.pop_front();
        }
        if self.recent.len() >= backoff.budget as usize {
            return Decision::GiveUp;
        }
        let factor = 1u64.checked_shl(self.streak.min(32)).unwrap_or(u64::MAX);
        let delay = ms(backoff.initial)
            .saturating_mul(factor)
            .min(ms(backoff.max));
        self.streak = self.streak.saturating_add(1);
        self.recent.push_back(now_ms);
        Decision::Restart {
            attempt: self.recent.len() as u32,
            at_ms: now_ms.saturating_add(delay),
        }
    }

    /// Forgets the history (a manual start or restart).
    pub fn reset(&mut self) {
        *self = Tracker::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b() -> Backoff {
        Backoff::default()
    }

    #[test]
    fn policies_decide_whether_an_exit_restarts() {
        use Exit::*;
        use RestartPolicy::*;
        for (policy, exit, restarts) in [
            (No, Success, false),
            (No, Failure, false),
            (OnFailure, Success, false),
            (OnFailure, Failure, true),
            (Always, Success, true),
            (Always, Failure, true),
        ] {
            let d = Tracker::default().on_exit(policy, &b(), exit, 0, 100);
            assert_eq!(
                matches!(d, Decision::Restart { .. }),
                restarts,
                "{policy:?} {exit:?}"
            );
            if !restarts {
                assert_eq!(d, Decision::Stay);
            }
        }
    }

    #[test]
    fn a_crash_loop_backs_off_exponentially_then_gives_up_after_the_budget() {
        let mut t = Tracker::default();
        let mut now = 0;
        let mut delays = Vec::new();
        loop {
            let started = now;
            now += 10; // crashes 10 ms after each start
            match t.on_exit(RestartPolicy::Always, &b(), Exit::Failure, started, now) {
                Decision::Restart { attempt, at_ms } => {
                    assert_eq!(attempt as usize, delays.len() + 1);
                    delays.push(at_ms - now);
                    now = at_ms;
                }
                Decision::GiveUp => break,
                Decision::Stay => panic!("always restarts"),
            }
        }
        assert_eq!(
            delays,
            [1000, 2000, 4000, 8000, 16000],
            "five restarts, then failed"
        );
    }

    #[test]
    fn delays_are_capped() {
        let backoff = Backoff {
            budget: 100,
            window: Duration::from_secs(1),
            ..b()
        };
        let mut t = Tracker::default();
        let mut now = 0;
        let mut last = 0;
        for _ in 0..12 {
            if let Decision::Restart { at_ms, .. } =
                t.on_exit(RestartPolicy::Always, &backoff, Exit::Failure, now, now + 1)
            {
                last = at_ms - (now + 1);
                now = at_ms;
            }
        }
        assert_eq!(last, 60_000);
    }

    #[test]
    fn a_stable_run_resets_the_delay() {
        let mut t = Tracker::default();
        for i in 0..3 {
            t.on_exit(
                RestartPolicy::Always,
                &b(),
                Exit::Failure,
                i * 10,
                i * 10 + 5,
            );
        }
        // This run lasted the stable period: back to the initial delay.
        match t.on_exit(RestartPolicy::Always, &b(), Exit::Failure, 1_000, 61_000) {
            Decision::Restart { at_ms, .. } => assert_eq!(at_ms, 62_000),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_budget_is_a_sliding_window() {
        let mut t = Tracker::default();
        for i in 0..5 {
            assert!(matches!(
                t.on_exit(RestartPolicy::Always, &b(), Exit::Failure, i, i + 1),
                Decision::Restart { .. }
            ));
        }
        assert_eq!(
            t.on_exit(RestartPolicy::Always, &b(), Exit::Failure, 10, 11),
            Decision::GiveUp
        );
        // Ten minutes later the old restarts no longer count.
        let later = 11 + 600_000;
        assert!(matches!(
            t.on_exit(RestartPolicy::Always, &b(), Exit::Failure, later - 1, later),
            Decision::Restart { attempt: 1, .. }
        ));
        t.reset();
        assert_eq!(t, Tracker::default());
    }

    #[test]
    fn policy_names_round_trip() {
        for p in [
            RestartPolicy::No,
            RestartPolicy::OnFailure,
            RestartPolicy::Always,
        ] {
            assert_eq!(p.as_str().parse::<RestartPolicy>(), Ok(p));
        }
        assert_eq!(
            "sometimes".parse::<RestartPolicy>(),
            Err(PolicyError("sometimes".into()))
        );
    }
}
