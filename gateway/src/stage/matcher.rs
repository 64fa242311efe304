//! Stage: the matcher. Applies each sequenced command to the engine and streams the events into
//! the output ring as the engine emits them, ending every command with a `Done` marker. It does
//! no I/O, reads no clock, takes no lock and formats nothing on the hot path: a broken input
//! contract (an `ApplyError`, a pipeline bug) is flagged in [`Shared`] for the receiver to
//! report, once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use disruptor::Producer;
use engine::{Engine, Event, EventSink};

use crate::rings::{OutItem, OutSlot, OutputProducer, Shared, Slot};
use crate::wait::Wait;

/// The matcher's state, living on its own (pinned) thread.
pub(crate) struct Matcher {
    engine: Option<Engine>,
    /// Commands of the current batch seen but not applied yet (at most [`engine::LOOKAHEAD`]): a
    /// command is applied once the matcher has seen the ones after it, or at the end of the
    /// batch, so the engine can start loading their memory while it works
    /// ([`Engine::prefetch`]). Every command of a batch is already in the ring, so holding one
    /// back adds no waiting.
    held: VecDeque<Slot>,
    out: OutputProducer,
    wait: Wait,
    shared: Arc<Shared>,
    dead: bool,
}

/// Streams a command's events into the output ring as the engine produces them.
struct OutSink<'a> {
    out: &'a mut OutputProducer,
    wait: Wait,
    template: OutSlot,
}

impl OutSink<'_> {
    fn put(&mut self, item: OutItem) {
        let slot = OutSlot { item, ..self.template };
        let mut rounds = 0u32;
        // The publisher never waits on the matcher, so this ends.
        while self.out.try_publish(|s| *s = slot).is_err() {
            self.wait.idle(rounds);
            rounds = rounds.saturating_add(1);
        }
    }
}

impl EventSink for OutSink<'_> {
    #[inline]
    fn push(&mut self, event: Event) {
        self.put(OutItem::Event(event));
    }
}

impl Matcher {
    /// A matcher applying to `engine` and publishing into `out`.
    pub(crate) fn new(engine: Engine, out: OutputProducer, wait: Wait, shared: Arc<Shared>) -> Self {
        let held = VecDeque::with_capacity(engine::LOOKAHEAD + 1);
        shared.seq_applied.0.store(engine.seq(), Ordering::Release);
        Matcher { engine: Some(engine), held, out, wait, shared, dead: false }
    }

    /// One input slot.
    pub(crate) fn on_slot(&mut self, slot: &Slot, end_of_batch: bool) {
        if self.held.is_empty() && (end_of_batch || !self.engine.as_ref().is_some_and(Engine::looks_ahead)) {
            // A batch of one (an idle market), or an engine too small to gain from hints:
            // nothing to overlap with, no detour.
            return self.apply(slot);
        }
        self.held.push_back(*slot);
        while self.held.len() > engine::LOOKAHEAD || (end_of_batch && !self.held.is_empty()) {
            let current = self.held.pop_front().expect("not empty");
            if let Some(engine) = &self.engine {
                for (i, next) in self.held.iter().enumerate() {
                    engine.prefetch(&next.command, i + 1);
                }
            }
            self.apply(&current);
        }
    }

    fn apply(&mut self, slot: &Slot) {
        let Some(engine) = self.engine.as_mut() else { return };
        if self.dead {
            return;
        }
        let cmd = &slot.command;
        let template = OutSlot { seq: cmd.seq, ts_ns: cmd.ts_ns, request: cmd.body, item: OutItem::Done };
        let mut sink = OutSink { out: &mut self.out, wait: self.wait, template };
        #[cfg(debug_assertions)]
        crate::fault::matcher_gate();
        if let Err(e) = engine.apply(cmd, &mut sink) {
            self.dead = true;
            // Formatting happens here only once, on a fatal pipeline bug.
            self.shared.fail(format!("matcher: {e}"));
        } else {
            self.shared.seq_applied.0.store(cmd.seq, Ordering::Release);
        }
        sink.put(OutItem::Done);
    }
}

impl Drop for Matcher {
    fn drop(&mut self) {
        // Every batch ends with `end_of_batch`, which applies what was held, and the processor
        // stops only between batches. Were a command still held, it would be journaled and not
        // yet answered: a restart replays it, so nothing acknowledged is lost (applying it here
        // could block on an output ring nobody drains any more).
        debug_assert!(self.held.is_empty(), "matcher stopped with {} commands held", self.held.len());
        if let Some(engine) = self.engine.take() {
            *self.shared.engine_back.lock().unwrap_or_else(|p| p.into_inner()) = Some(engine);
        }
    }
}
