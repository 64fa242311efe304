//! The ring between the matcher thread (single producer: it is also the sequencer) and one
//! consumer thread (the journaler or the snapshot follower), and what the two sides share.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use disruptor::{Producer, SingleConsumerBarrier, SingleProducer};
use engine::{Command, CommandBody};

use crate::timing;

/// Default ring size: 65,536 slots of [`Slot`] (about 10 MiB). At the matcher's few hundred ns
/// per command it absorbs a consumer stall of roughly 20-50 ms before the matcher has to wait.
pub const DEFAULT_RING_SLOTS: usize = 1 << 16;

/// The matcher's end of a ring with one consumer.
pub type RingProducer = SingleProducer<Slot, SingleConsumerBarrier>;

/// One ring slot: the command and when the matcher published it.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    /// The sequenced command.
    pub cmd: Command,
    /// `timing::start()` tick taken by the matcher just before publishing.
    pub published_tick: u64,
}

/// What the ring's slots hold before the first publish.
pub fn empty_slot() -> Slot {
    Slot { cmd: Command { seq: 0, ts_ns: 0, body: CommandBody::Tick }, published_tick: 0 }
}

/// A sequence number one thread publishes and another samples, alone on its cache line so the
/// sampling does not false-share with anything hot.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct SharedSeq(AtomicU64);

impl SharedSeq {
    /// Publishes `seq` (release: everything done for it happens-before a reader seeing it).
    #[inline]
    pub fn store(&self, seq: u64) {
        self.0.store(seq, Ordering::Release);
    }

    /// The last published value.
    #[inline]
    pub fn load(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// Times the matcher found the ring full and had to wait for the consumer.
#[derive(Clone, Copy, Debug, Default)]
pub struct RingFull {
    /// Publishes that found no free slot.
    pub events: u64,
    /// Ticks spent waiting for a slot, in total.
    pub waited_ticks: u64,
    /// Longest single wait, in ticks.
    pub longest_wait_ticks: u64,
}

/// Publishes `cmd`, stamped with `tick`. The disruptor's own `publish` busy-spins while the ring
/// is full; trying first lets the benchmark count and time those waits.
#[inline(always)]
pub fn publish(producer: &mut RingProducer, cmd: &Command, tick: u64, full: &mut RingFull) {
    let fill = |slot: &mut Slot| {
        slot.cmd = *cmd;
        slot.published_tick = tick;
    };
    if producer.try_publish(fill).is_err() {
        publish_when_free(producer, cmd, tick, full);
    }
}

#[cold]
#[inline(never)]
fn publish_when_free(producer: &mut RingProducer, cmd: &Command, tick: u64, full: &mut RingFull) {
    let t0 = timing::start();
    producer.publish(|slot| {
        slot.cmd = *cmd;
        slot.published_tick = tick;
    });
    let waited = timing::stop() - t0;
    full.events += 1;
    full.waited_ticks += waited;
    full.longest_wait_ticks = full.longest_wait_ticks.max(waited);
}

/// Set by a consumer thread once it has pinned itself and is about to poll, so the matcher does
/// not start while the consumer is still waiting to be scheduled for the first time: it starts
/// on the matcher's core (it inherits the matcher's affinity) and would begin the run tens of
/// thousands of commands behind.
#[derive(Debug, Default)]
pub struct Ready(AtomicBool);

impl Ready {
    /// Called by the consumer.
    pub fn set(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Called by the matcher: sleeps (leaving its core to the consumer) until [`Ready::set`].
    pub fn wait(&self) {
        while !self.0.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}
