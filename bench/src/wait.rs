//! Wait strategies for the consumer threads of the pipeline benchmarks.
//!
//! The `disruptor` crate (4.4) offers (`disruptor::wait_strategies`) busy-spin, busy-spin with a spin-loop hint and sleep; a
//! consumer that gives its core back to the scheduler between polls (what a journaler sharing a
//! 2-core machine with its matcher needs) is [`Yield`].

use disruptor::Sequence;
use disruptor::wait_strategies::WaitStrategy;

/// Calls `std::thread::yield_now` between polls: another runnable thread on the core gets it at
/// once; with none, the thread is rescheduled immediately and behaves like a spin whose polls
/// are a system call apart (about a microsecond).
#[derive(Clone, Copy, Debug)]
pub struct Yield;

impl WaitStrategy for Yield {
    #[inline]
    fn wait_for(&self, _sequence: Sequence) {
        std::thread::yield_now();
    }
}

/// The wait strategy chosen on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Wait {
    /// [`Yield`].
    Yield,
    /// `disruptor::BusySpin`: polls without pause; owns its core.
    Spin,
}

impl Wait {
    /// How the consumer waits, for the report header.
    pub fn describe(self) -> &'static str {
        match self {
            Wait::Yield => "Yield (std::thread::yield_now between polls; bench/src/wait.rs)",
            Wait::Spin => "BusySpin (disruptor::BusySpin: polls without pause)",
        }
    }
}
