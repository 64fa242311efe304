//! The matcher thread's timed loop, shared by every case that measures the matcher.
//!
//! For each pre-generated command: a timestamp pair around (the case's [`Hook`] + `Engine::apply`),
//! written into a preallocated, pre-touched timeline, so the timed path records nothing but two
//! words; histograms are built after the loop. Work the case does outside the window (sampling a
//! consumer's lag) goes in [`Hook::after_window`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{Command, CountingSink, Engine};
use hdrhistogram::Histogram;

use super::LIMITS;
use super::ring::{RingFull, RingProducer, SharedSeq, publish};
use crate::machine::SchedStat;
use crate::report::histogram;
use crate::timing;

/// The consumer's lag is sampled once every this many commands: often enough to catch every
/// stall of more than a few microseconds, rarely enough that the matcher's reads of the
/// consumer's cache line do not show in its own timings.
pub const LAG_SAMPLE_EVERY: u64 = 64;

/// What a case adds to the matcher's per-command path.
pub trait Hook {
    /// Inside the timed window, before the matcher applies `cmd`; `t0` is the window's start.
    fn before_apply(&mut self, cmd: &Command, t0: u64);
    /// After the window closed on `cmd`, which took `ticks`.
    fn after_window(&mut self, cmd: &Command, ticks: u64);
}

/// The bare matcher: nothing besides `apply`.
#[derive(Debug, Default)]
pub struct Bare;

impl Hook for Bare {
    #[inline(always)]
    fn before_apply(&mut self, _cmd: &Command, _t0: u64) {}
    #[inline(always)]
    fn after_window(&mut self, _cmd: &Command, _ticks: u64) {}
}

/// Hands every command to a consumer thread through the ring, and samples how far behind the
/// consumer is (published seq minus the seq the consumer last reported).
pub struct RingHook {
    /// The matcher's end of the ring.
    pub producer: RingProducer,
    /// Waits for a free slot.
    pub full: RingFull,
    /// What the consumer reports as done (durable, or applied).
    pub consumer_seq: Arc<SharedSeq>,
    /// Sampled lag in commands.
    pub lag: Histogram<u64>,
}

impl RingHook {
    /// A hook publishing into `producer`, whose consumer reports progress in `consumer_seq`.
    pub fn new(producer: RingProducer, consumer_seq: Arc<SharedSeq>) -> Self {
        RingHook { producer, full: RingFull::default(), consumer_seq, lag: histogram() }
    }
}

impl Hook for RingHook {
    #[inline(always)]
    fn before_apply(&mut self, cmd: &Command, t0: u64) {
        publish(&mut self.producer, cmd, t0, &mut self.full);
    }

    #[inline(always)]
    fn after_window(&mut self, cmd: &Command, _ticks: u64) {
        if cmd.seq.is_multiple_of(LAG_SAMPLE_EVERY) {
            // The consumer never reports beyond what was published.
            self.lag.saturating_record(cmd.seq - self.consumer_seq.load().min(cmd.seq));
        }
    }
}

/// One timed pass of the matcher.
pub struct MatcherRun {
    /// The engine after the last command.
    pub engine: Engine,
    /// Per command: (window start tick, ticks inside the window).
    pub timeline: Vec<(u64, u64)>,
    /// Wall time of the whole loop.
    pub wall: Duration,
    /// Trades the engine reported.
    pub trades: u64,
    /// Minor page faults of the matcher thread during the loop, if known.
    pub minor_faults: Option<u64>,
    /// The matcher thread's scheduler accounting during the loop, if known.
    pub sched: Option<SchedStat>,
}

impl MatcherRun {
    /// Per-command ticks as a histogram.
    pub fn histogram(&self) -> Histogram<u64> {
        let mut h = histogram();
        for &(_, ticks) in &self.timeline {
            h.saturating_record(ticks.max(1));
        }
        h
    }

    /// Commands per second over the whole loop (timer and hook included).
    pub fn ops_per_s(&self) -> f64 {
        self.timeline.len() as f64 / self.wall.as_secs_f64()
    }

    /// Tick at which the first command's window opened.
    pub fn first_tick(&self) -> u64 {
        self.timeline.first().map_or(0, |e| e.0)
    }
}

/// Applies `cmds` to a fresh engine on the calling thread, timing each command with `hook`.
#[inline(never)]
pub fn run_matcher<H: Hook>(cmds: &[Command], hook: &mut H) -> MatcherRun {
    // A non-zero fill writes every page now, so first-touch faults stay out of the loop.
    let mut timeline = vec![(u64::MAX, u64::MAX); cmds.len()];
    let mut engine = Engine::new(LIMITS);
    let mut sink = CountingSink::default();
    let faults_before = timing::minor_faults();
    let sched_before = SchedStat::now();
    let started = Instant::now();
    for (cmd, entry) in cmds.iter().zip(timeline.iter_mut()) {
        let t0 = timing::start();
        hook.before_apply(cmd, t0);
        engine.apply(cmd, &mut sink).expect("the generated stream is numbered consecutively from 1");
        let t1 = timing::stop();
        *entry = (t0, t1 - t0);
        hook.after_window(cmd, t1 - t0);
    }
    let wall = started.elapsed();
    let minor_faults = faults_before.zip(timing::minor_faults()).map(|(a, b)| b - a);
    let sched = sched_before.zip(SchedStat::now()).map(|(a, b)| b.since(a));
    MatcherRun { engine, timeline, wall, trades: sink.trades, minor_faults, sched }
}
