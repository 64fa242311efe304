//! The publisher's end of the feed: the output slots the feed needs, in order, into a ring of
//! their own that the feed thread (`sable-feed`) consumes.
//!
//! Why here and not a second consumer of the output ring: the publisher already holds back
//! every slot until its input is durable, so the feed inherits the gate (nothing a failover
//! could lose is shown); the output ring keeps one consumer, so a stalled feed thread cannot
//! make the matcher wait; and when the feed is off nothing changes at all. The cost on the
//! publisher is a copy per forwarded slot and, after a batch, a wake of the feed thread only
//! when it sleeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::Thread;
use std::time::Duration;

use disruptor::Producer;
use engine::Event;

use crate::rings::{OutItem, OutSlot, OutputProducer};

/// Rounds of yielding before a full feed ring makes the publisher sleep between tries.
const FULL_YIELDS: u32 = 64;
/// Sleep between tries of a full feed ring after the yields.
const FULL_SLEEP: Duration = Duration::from_micros(50);

/// The feed thread's wake-up state, shared by tap and thread.
#[derive(Default)]
pub(crate) struct Doorbell {
    /// Set by the feed thread before it parks; the tap unparks it when set.
    pub(crate) sleeping: AtomicBool,
}

/// Whether the feed needs an output item: book changes, trades, instrument changes, orders
/// accepted, triggered or replaced (their references and owners), the end of every command.
/// The journal replay at start (`feed::rebuild`) filters with this too, so both see the same.
pub(crate) fn needed(item: &OutItem) -> bool {
    match item {
        OutItem::Done => true,
        OutItem::Event(e) => needed_event(e),
    }
}

/// Whether the feed needs event `e` (see [`needed`]).
pub(crate) fn needed_event(e: &Event) -> bool {
    matches!(
        e,
        Event::Book(_)
            | Event::Trade(_)
            | Event::Instrument { .. }
            | Event::Replaced { .. }
            | Event::Accepted(_)
            | Event::Triggered(_)
    )
}

/// The publisher's handle on the feed ring.
pub(crate) struct FeedTap {
    producer: OutputProducer,
    doorbell: Arc<Doorbell>,
    thread: Thread,
    forwarded: bool,
}

impl FeedTap {
    /// A tap into `producer`, whose consumer runs on `thread`.
    pub(crate) fn new(producer: OutputProducer, doorbell: Arc<Doorbell>, thread: Thread) -> Self {
        FeedTap { producer, doorbell, thread, forwarded: false }
    }

    /// Forwards `slot` if the feed needs it (book changes, trades, instrument changes,
    /// replaces, the end of every command).
    pub(crate) fn forward(&mut self, slot: &OutSlot) {
        if !needed(&slot.item) {
            return;
        }
        let mut rounds = 0u32;
        // The feed thread never waits on the publisher, so this ends.
        while self.producer.try_publish(|s| *s = *slot).is_err() {
            self.thread.unpark();
            if rounds < FULL_YIELDS {
                std::thread::yield_now();
            } else {
                std::thread::sleep(FULL_SLEEP);
            }
            rounds = rounds.saturating_add(1);
        }
        self.forwarded = true;
    }

    /// After a batch: wakes the feed thread if it sleeps and something was forwarded.
    pub(crate) fn ring(&mut self) {
        if std::mem::take(&mut self.forwarded) && self.doorbell.sleeping.swap(false, Ordering::AcqRel) {
            self.thread.unpark();
        }
    }
}
