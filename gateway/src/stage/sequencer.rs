//! Stage: the sequencer. Stamps every accepted request with its sequence number and timestamp,
//! once, and publishes it into the input ring. The clock and the ring are passed in, so tests
//! drive it without threads or TCP.
//!
//! Timestamps never go backwards (also across restarts: the first stamp is at least the restored
//! engine's time), and sequence numbers are consecutive from the restored journal's end. While
//! nothing has been stamped for [`TICK_PERIOD_NS`] the owner asks for a `Tick`
//! ([`Sequencer::tick_due`]), so engine time, and with it GTD expiry, advances without traffic.

use std::time::{SystemTime, UNIX_EPOCH};

use engine::{Command, CommandBody};

use crate::rings::{InputProducer, Slot};

/// Longest stretch without a sequenced command: the engine's only clock is command timestamps,
/// so an idle appliance sequences a `Tick` this often (one journal record per idle second).
pub(crate) const TICK_PERIOD_NS: u64 = 1_000_000_000;

/// Where the sequencer's timestamps come from.
pub(crate) trait Clock {
    /// Nanoseconds since the Unix epoch.
    fn now_ns(&self) -> u64;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WallClock;

impl Clock for WallClock {
    fn now_ns(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    }
}

/// Where stamped commands go.
pub(crate) trait InputRing {
    /// Publishes `slot` if there is room; false when the ring is full.
    fn try_put(&mut self, slot: Slot) -> bool;
}

impl InputRing for InputProducer {
    fn try_put(&mut self, slot: Slot) -> bool {
        use disruptor::Producer;
        self.try_publish(|s| *s = slot).is_ok()
    }
}

/// The sequencer's state.
pub(crate) struct Sequencer<R, C> {
    ring: Option<R>,
    clock: C,
    next_seq: u64,
    last_ts_ns: u64,
}

impl<R: InputRing, C: Clock> Sequencer<R, C> {
    /// A sequencer that continues after `last_seq` and `last_ts_ns` (the restored engine's).
    pub(crate) fn new(ring: R, clock: C, last_seq: u64, last_ts_ns: u64) -> Self {
        Sequencer { ring: Some(ring), clock, next_seq: last_seq + 1, last_ts_ns }
    }

    /// The next sequence number to stamp.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The timestamp of the last command stamped.
    pub(crate) fn last_ts_ns(&self) -> u64 {
        self.last_ts_ns
    }

    /// Whether the appliance was idle long enough that a `Tick` should be sequenced.
    pub(crate) fn tick_due(&self) -> bool {
        self.clock.now_ns().saturating_sub(self.last_ts_ns) >= TICK_PERIOD_NS
    }

    /// Stamps `body` and publishes it. While the ring is full it calls `on_full` (which lets
    /// the rest of the pipeline drain) and retries, until `on_full` returns false (the pipeline
    /// failed) or the ring takes the slot. Returns the sequence number, or `None` when the
    /// command was not published (failure, or the ring was already closed).
    pub(crate) fn submit(&mut self, body: CommandBody, mut on_full: impl FnMut() -> bool) -> Option<u64> {
        let ring = self.ring.as_mut()?;
        let ts_ns = self.clock.now_ns().max(self.last_ts_ns);
        let seq = self.next_seq;
        let slot = Slot { command: Command { seq, ts_ns, body } };
        while !ring.try_put(slot) {
            if !on_full() {
                return None;
            }
        }
        self.last_ts_ns = ts_ns;
        self.next_seq += 1;
        Some(seq)
    }

    /// Takes the ring away (shutdown: dropping the producer lets the stages drain and join).
    pub(crate) fn close(&mut self) -> Option<R> {
        self.ring.take()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    struct FakeClock<'a>(&'a Cell<u64>);

    impl Clock for FakeClock<'_> {
        fn now_ns(&self) -> u64 {
            self.0.get()
        }
    }

    /// A ring with `room` free slots (the test can make room while the sequencer waits).
    struct FakeRing<'a> {
        room: &'a Cell<usize>,
        taken: Vec<Slot>,
    }

    impl<'a> FakeRing<'a> {
        fn new(room: &'a Cell<usize>) -> Self {
            FakeRing { room, taken: Vec::new() }
        }
    }

    impl InputRing for FakeRing<'_> {
        fn try_put(&mut self, slot: Slot) -> bool {
            if self.room.get() == 0 {
                return false;
            }
            self.room.set(self.room.get() - 1);
            self.taken.push(slot);
            true
        }
    }

    #[test]
    fn stamps_consecutive_seqs_and_never_goes_back_in_time() {
        let (t, room) = (Cell::new(5_000), Cell::new(10));
        let mut s = Sequencer::new(FakeRing::new(&room), FakeClock(&t), 41, 4_000);
        assert_eq!(s.submit(CommandBody::Tick, || true), Some(42));
        t.set(3_000); // the wall clock stepped back
        assert_eq!(s.submit(CommandBody::Tick, || true), Some(43));
        let ring = s.close().expect("open");
        let stamps: Vec<(u64, u64)> = ring.taken.iter().map(|x| (x.command.seq, x.command.ts_ns)).collect();
        assert_eq!(stamps, vec![(42, 5_000), (43, 5_000)]);
    }

    #[test]
    fn first_stamp_is_not_before_the_restored_time() {
        let (t, room) = (Cell::new(100), Cell::new(1));
        let mut s = Sequencer::new(FakeRing::new(&room), FakeClock(&t), 0, 900);
        s.submit(CommandBody::Tick, || true);
        assert_eq!(s.close().expect("open").taken[0].command.ts_ns, 900);
    }

    #[test]
    fn a_full_ring_is_retried_through_on_full_and_stamped_once() {
        let (t, room) = (Cell::new(1_000), Cell::new(0));
        let mut s = Sequencer::new(FakeRing::new(&room), FakeClock(&t), 6, 0);
        let mut calls = 0;
        let seq = s.submit(CommandBody::Tick, || {
            calls += 1;
            t.set(t.get() + 10); // time passes while the pipeline drains
            if calls == 3 {
                room.set(1);
            }
            true
        });
        assert_eq!((seq, calls), (Some(7), 3));
        let ring = s.close().expect("open");
        assert_eq!(ring.taken[0].command.ts_ns, 1_000, "stamped once, before the wait");
    }

    #[test]
    fn a_failed_pipeline_ends_the_wait_without_using_the_seq() {
        let (t, room) = (Cell::new(1_000), Cell::new(0));
        let mut s = Sequencer::new(FakeRing::new(&room), FakeClock(&t), 0, 0);
        let mut calls = 0;
        let seq = s.submit(CommandBody::Tick, || {
            calls += 1;
            calls < 5
        });
        assert_eq!((seq, calls, s.next_seq()), (None, 5, 1));
    }

    #[test]
    fn tick_is_due_after_a_second_of_silence() {
        let (t, room) = (Cell::new(10), Cell::new(4));
        let mut s = Sequencer::new(FakeRing::new(&room), FakeClock(&t), 0, 0);
        s.submit(CommandBody::Tick, || true);
        t.set(10 + TICK_PERIOD_NS - 1);
        assert!(!s.tick_due());
        t.set(10 + TICK_PERIOD_NS);
        assert!(s.tick_due());
    }

    #[test]
    fn a_closed_sequencer_publishes_nothing() {
        let (t, room) = (Cell::new(1), Cell::new(4));
        let mut s = Sequencer::new(FakeRing::new(&room), FakeClock(&t), 0, 0);
        assert!(s.close().is_some());
        assert_eq!(s.submit(CommandBody::Tick, || true), None);
    }
}
