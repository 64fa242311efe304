//! How idle pipeline threads wait: one `Copy` enum implementing the disruptor's
//! [`WaitStrategy`] (a `match`, no `dyn`), chosen at run time from the configuration.
//!
//! `BusySpin` is only allowed with a dedicated matcher core (the configuration refuses it
//! otherwise); the default `Backoff` yields a bounded number of times and then sleeps, so idle
//! threads cost almost nothing on a shared machine.

use std::cell::Cell;
use std::time::Duration;

use disruptor::Sequence;
use disruptor::wait_strategies::WaitStrategy;

use crate::config::{PipelineConfig, WaitKind};

/// A runtime-selected wait strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Spin without pausing (dedicated cores only).
    BusySpin,
    /// `sched_yield` each time.
    Yield,
    /// Sleep each time.
    Sleep(Duration),
    /// Yield `yields` times for the same sequence, then sleep `sleep`; after
    /// [`DEEP_IDLE_ROUNDS`] more rounds of idleness, sleep `idle_sleep`.
    Backoff {
        /// Yields before sleeping.
        yields: u32,
        /// Sleep after that.
        sleep: Duration,
        /// Sleep once the thread has been idle for long.
        idle_sleep: Duration,
    },
}

/// Short sleeps before a `Backoff` waiter settles into `idle_sleep` (with the default 50 µs,
/// about a tenth of a second of idleness).
pub const DEEP_IDLE_ROUNDS: u32 = 2000;

thread_local! {
    /// (sequence waited for, times waited for it) of this thread, for `Backoff`.
    static BACKOFF: Cell<(Sequence, u32)> = const { Cell::new((-1, 0)) };
}

impl Wait {
    /// The strategy the configuration asks for.
    pub fn from_config(p: &PipelineConfig) -> Wait {
        let sleep = Duration::from_micros(p.sleep_us);
        match p.wait_strategy {
            WaitKind::BusySpin => Wait::BusySpin,
            WaitKind::Yield => Wait::Yield,
            WaitKind::Sleep => Wait::Sleep(sleep),
            WaitKind::Backoff => {
                Wait::Backoff { yields: p.backoff_yields, sleep, idle_sleep: Duration::from_micros(p.idle_sleep_us) }
            }
        }
    }

    /// Waits once; `idle_rounds` counts consecutive idle rounds of the caller's loop.
    pub fn idle(&self, idle_rounds: u32) {
        match *self {
            Wait::BusySpin => std::hint::spin_loop(),
            Wait::Yield => std::thread::yield_now(),
            Wait::Sleep(d) => std::thread::sleep(d),
            Wait::Backoff { yields, sleep, idle_sleep } => {
                if idle_rounds < yields {
                    std::thread::yield_now();
                } else if idle_rounds - yields < DEEP_IDLE_ROUNDS {
                    std::thread::sleep(sleep);
                } else {
                    std::thread::sleep(idle_sleep);
                }
            }
        }
    }
}

impl WaitStrategy for Wait {
    fn wait_for(&self, sequence: Sequence) {
        let rounds = BACKOFF.with(|c| {
            let (seq, n) = c.get();
            let n = if seq == sequence { n.saturating_add(1) } else { 0 };
            c.set((sequence, n));
            n
        });
        self.idle(rounds);
    }
}
