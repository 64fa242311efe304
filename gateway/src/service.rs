//! Running under a service manager (systemd `Type=notify`, `systemd/sable.service`).
//!
//! - `READY=1` once [`crate::pipeline::start`] has returned: recovery (snapshot + journal
//!   replay) is done and every listener is bound, so connections are accepted from then on.
//! - `WATCHDOG=1` every half `WATCHDOG_USEC`, from a thread of its own, but only while the
//!   pipeline makes progress ([`StallDetector`]): a stalled matcher stops the pings and systemd
//!   kills the process (`WatchdogSec=`), which restarts it or lets the standby take over.
//! - `STOPPING=1` when a shutdown begins; the watchdog stops with it (draining is not a stall).
//!
//! Without `NOTIFY_SOCKET` (not under systemd) every notification is a no-op.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

use crate::rings::Shared;
use crate::stage::sequencer::TICK_PERIOD_NS;

/// Longest time neither the matcher nor the journaler may go without advancing. An idle
/// appliance still sequences a `Tick` every [`TICK_PERIOD_NS`], so silence this long means the
/// gateway thread (receiver, sequencer, publisher) stopped feeding the pipeline.
pub const SILENCE_LIMIT: Duration = Duration::from_nanos(5 * TICK_PERIOD_NS);

/// The pipeline's progress counters at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Last sequence number the matcher applied.
    pub seq_applied: u64,
    /// Last sequence number the journaler wrote (its own progress: a `replicated` policy may
    /// hold the durable position back while the journaler keeps going).
    pub seq_journaled: u64,
}

/// Reads the pipeline's progress from any thread ([`crate::pipeline::Appliance::progress`]).
#[derive(Clone)]
pub struct ProgressProbe {
    shared: Arc<Shared>,
}

impl ProgressProbe {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        ProgressProbe { shared }
    }

    /// The counters now.
    pub fn read(&self) -> Progress {
        Progress {
            seq_applied: self.shared.seq_applied.0.load(Ordering::Acquire),
            seq_journaled: self.shared.seq_written.load(Ordering::Acquire),
        }
    }
}

/// Why the pipeline is not making progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stall {
    /// Journaled commands were waiting for the matcher a whole check interval ago, and it has
    /// applied none of them since.
    Matcher {
        /// Last sequence number applied.
        seq_applied: u64,
        /// Last sequence number durable (applied < durable: work is waiting).
        seq_journaled: u64,
    },
    /// The matcher was ahead of the journal a whole interval ago and the journal has not moved.
    Journaler {
        /// Last sequence number applied.
        seq_applied: u64,
        /// Last sequence number durable (durable < applied: work is waiting).
        seq_journaled: u64,
    },
    /// Nothing advanced for longer than [`SILENCE_LIMIT`] (not even the idle `Tick`).
    Silent {
        /// How long nothing advanced, in milliseconds.
        silent_ms: u64,
    },
}

impl std::fmt::Display for Stall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stall::Matcher { seq_applied, seq_journaled } => {
                write!(f, "matcher stalled at seq {seq_applied} with commands up to {seq_journaled} waiting")
            }
            Stall::Journaler { seq_applied, seq_journaled } => {
                write!(f, "journaler stalled at seq {seq_journaled} while the matcher is at {seq_applied}")
            }
            Stall::Silent { silent_ms } => {
                write!(f, "no command sequenced for {silent_ms} ms (gateway thread stalled)")
            }
        }
    }
}

/// Decides, check after check, whether the pipeline is making progress. Time is passed in, so
/// the rule is tested without threads or clocks.
///
/// The matcher and the journaler consume the same input ring side by side. One that is behind
/// the other is healthy as long as it moves; one that was behind at the previous check and has
/// not moved since is stalled. (Comparing with the previous check, not the current one, keeps a
/// command that arrived a microsecond before the check from counting as a stall.) Both caught up
/// is healthy, until nothing at all has moved for [`SILENCE_LIMIT`]. That also covers a snapshot
/// follower slow enough to keep the input ring full (the sequencer then waits, and with it both
/// consumers): clients get no acknowledgement either, so it is a stall like any other.
#[derive(Debug)]
pub struct StallDetector {
    last: Progress,
    last_advance: Duration,
}

impl StallDetector {
    /// Starts from `first`, read at time `now` (any monotonic origin).
    pub fn new(first: Progress, now: Duration) -> Self {
        StallDetector { last: first, last_advance: now }
    }

    /// One check: the counters `now` read at time `at`.
    pub fn check(&mut self, now: Progress, at: Duration) -> Result<(), Stall> {
        let last = std::mem::replace(&mut self.last, now);
        let matcher_moved = now.seq_applied > last.seq_applied;
        let journal_moved = now.seq_journaled > last.seq_journaled;
        if matcher_moved || journal_moved {
            self.last_advance = at;
        }
        if !matcher_moved && last.seq_applied < last.seq_journaled {
            return Err(Stall::Matcher { seq_applied: now.seq_applied, seq_journaled: now.seq_journaled });
        }
        if !journal_moved && last.seq_journaled < last.seq_applied {
            return Err(Stall::Journaler { seq_applied: now.seq_applied, seq_journaled: now.seq_journaled });
        }
        let silent = at.saturating_sub(self.last_advance);
        if silent > SILENCE_LIMIT {
            return Err(Stall::Silent { silent_ms: u64::try_from(silent.as_millis()).unwrap_or(u64::MAX) });
        }
        Ok(())
    }
}

/// The process's side of the service-manager protocol, from readiness to shutdown.
pub struct Service {
    watchdog: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

impl Service {
    /// Tells the service manager the appliance is ready (`READY=1` with a `STATUS=` line) and,
    /// when it asked for a watchdog (`WATCHDOG_USEC`, `WATCHDOG_PID`), starts pinging at half
    /// that interval while `probe` shows progress. Notification failures are logged, not fatal:
    /// a service manager that cannot be told is no reason to stop matching.
    pub fn ready(probe: ProgressProbe, status: &str) -> Self {
        let origin = Instant::now();
        let mut detector = StallDetector::new(probe.read(), Duration::ZERO);
        Service::ready_with(status, move || detector.check(probe.read(), origin.elapsed()).map_err(|s| s.to_string()))
    }

    /// [`Service::ready`] with any health check: the watchdog pings while `health` is `Ok` and
    /// withholds them, with the reason in `STATUS=`, while it is not (`sable standby`).
    pub fn ready_with(status: &str, health: impl FnMut() -> Result<(), String> + Send + 'static) -> Self {
        notify(&[NotifyState::Ready, NotifyState::Status(status)]);
        let watchdog = sd_notify::watchdog_enabled().and_then(|timeout| {
            let interval = timeout / 2;
            tracing::info!(interval_ms = interval.as_millis() as u64, "watchdog pings enabled");
            let (stop_tx, stop_rx) = mpsc::channel();
            let spawned = std::thread::Builder::new()
                .name("sable-watchdog".into())
                .spawn(move || watchdog_loop(health, interval, &stop_rx));
            match spawned {
                Ok(handle) => Some((stop_tx, handle)),
                Err(e) => {
                    tracing::error!(error = %e, "could not start the watchdog thread; systemd will stop the service");
                    None
                }
            }
        });
        Service { watchdog }
    }

    /// Tells the service manager a shutdown began (`STOPPING=1`) and stops the watchdog pings
    /// (systemd stops expecting them once it has read `STOPPING=1`).
    pub fn stopping(mut self) {
        notify(&[NotifyState::Stopping, NotifyState::Status("draining: final snapshot next")]);
        if let Some((stop, handle)) = self.watchdog.take() {
            drop(stop);
            let _ = handle.join();
        }
    }
}

/// Pings every `interval` while the pipeline progresses; returns when `stop` is dropped.
fn watchdog_loop(mut health: impl FnMut() -> Result<(), String>, interval: Duration, stop: &mpsc::Receiver<()>) {
    let mut stalled = false;
    notify(&[NotifyState::Watchdog]);
    loop {
        match stop.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        match health() {
            Ok(()) => {
                if stalled {
                    tracing::warn!("pipeline progressing again; watchdog pings resumed");
                    notify(&[NotifyState::Status("running")]);
                    stalled = false;
                }
                notify(&[NotifyState::Watchdog]);
            }
            Err(stall) => {
                if !stalled {
                    let text = format!("stalled: {stall}; watchdog pings withheld");
                    tracing::error!("{text}");
                    notify(&[NotifyState::Status(&text)]);
                    stalled = true;
                }
            }
        }
    }
}

fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(seq_applied: u64, seq_journaled: u64) -> Progress {
        Progress { seq_applied, seq_journaled }
    }

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn an_idle_appliance_fed_by_ticks_is_healthy() {
        let mut d = StallDetector::new(p(10, 10), s(0.0));
        for i in 1..=20u64 {
            // One Tick a second, checks every half second: half the checks see no change.
            let seq = 10 + i / 2;
            assert_eq!(d.check(p(seq, seq), s(i as f64 * 0.5)), Ok(()), "check {i}");
        }
    }

    #[test]
    fn work_that_arrives_just_before_a_check_is_not_a_stall() {
        let mut d = StallDetector::new(p(10, 10), s(0.0));
        assert_eq!(d.check(p(10, 11), s(1.0)), Ok(()), "the journal was quicker by a hair");
        assert_eq!(d.check(p(11, 12), s(2.0)), Ok(()), "the matcher moved");
    }

    #[test]
    fn a_matcher_that_does_not_move_while_work_waits_is_stalled() {
        let mut d = StallDetector::new(p(10, 10), s(0.0));
        assert_eq!(d.check(p(10, 11), s(1.0)), Ok(()));
        assert_eq!(d.check(p(10, 12), s(2.0)), Err(Stall::Matcher { seq_applied: 10, seq_journaled: 12 }));
        assert_eq!(d.check(p(10, 12), s(3.0)), Err(Stall::Matcher { seq_applied: 10, seq_journaled: 12 }));
        assert_eq!(d.check(p(13, 13), s(4.0)), Ok(()), "moving again is healthy again");
    }

    #[test]
    fn a_journal_that_does_not_move_behind_the_matcher_is_stalled() {
        let mut d = StallDetector::new(p(10, 10), s(0.0));
        assert_eq!(d.check(p(12, 10), s(1.0)), Ok(()));
        assert_eq!(d.check(p(14, 10), s(2.0)), Err(Stall::Journaler { seq_applied: 14, seq_journaled: 10 }));
    }

    #[test]
    fn nothing_moving_for_longer_than_the_silence_limit_is_a_stall() {
        let mut d = StallDetector::new(p(10, 10), s(0.0));
        let just_inside = SILENCE_LIMIT.as_secs_f64();
        assert_eq!(d.check(p(10, 10), s(just_inside)), Ok(()));
        assert!(matches!(d.check(p(10, 10), s(just_inside + 0.5)), Err(Stall::Silent { .. })));
        assert_eq!(d.check(p(11, 11), s(just_inside + 1.0)), Ok(()));
    }
}
