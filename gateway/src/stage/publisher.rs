//! Stage: the publisher. Output ring → durability gate → exec ids → reports routed by account to
//! the configured sessions. Its core ([`Publisher::release`]) is a pure step from one output
//! slot whose input is durable to the reports it routes; [`Publisher::pump`] adds the gate
//! (nothing leaves before its input is durable at the configured level). Tests drive both
//! without sockets or threads; the receiver hands the routed reports to the sessions, which
//! encode, store and send them.
//!
//! Exec ids of engine reports are `seq << 20 | n` (n counts the reports of one command), so
//! they are unique and identical across restarts, replays and a standby's replay.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use disruptor::Polling;
use engine::{AccountId, CommandBody, Event, InstrumentId, InstrumentSpec, OrderId, RequestKind};

use crate::edge::{Edge, lock};
use crate::rings::{OutItem, OutSlot, OutputPoller, Shared};
use crate::sbe::convert::{OrderTerms, Report, ReportContext, ReportLookup, event_reports};
use crate::session::SessionRef;
use crate::stage::sequencer::{Clock, WallClock};
use crate::wait::Wait;

use crate::limits::PUBLISH_BATCH;
/// Bits of an exec id that count the reports of one command.
const EXEC_N_BITS: u32 = 20;

/// Where output slots come from (the output ring; a queue in tests).
pub(crate) trait OutputSource {
    /// Shows up to `max` slots to `each`, in order, and consumes them; false when there were
    /// none. The ring's slots are shown where they lie: a slot released at once is never
    /// copied.
    fn take_each(&mut self, max: u64, each: impl FnMut(&OutSlot)) -> bool;
}

impl OutputSource for OutputPoller {
    fn take_each(&mut self, max: u64, mut each: impl FnMut(&OutSlot)) -> bool {
        match self.take(max) {
            Ok(mut guard) => {
                for s in &mut guard {
                    each(s);
                }
                true
            }
            Err(Polling::NoEvents | Polling::Shutdown) => false,
        }
    }
}

impl OutputSource for VecDeque<OutSlot> {
    fn take_each(&mut self, max: u64, mut each: impl FnMut(&OutSlot)) -> bool {
        let n = self.len().min(max as usize);
        self.drain(..n).for_each(|s| each(&s));
        n > 0
    }
}

/// Hashes the publisher's integer keys (order ids, account ids). The keys are the engine's
/// counters and the configuration's ids, never chosen by a client, so no random seed is needed
/// (std's SipHash cost a visible share of the publisher's time: one insert, one lookup and one
/// removal per order). An integer key hashes to itself in the low bits, which place it in the
/// table, so consecutive order ids fill consecutive buckets: a new order's insert touches the
/// cache lines the last ones did, where a well-spread hash missed the cache on every insert
/// into a table sized for every live order (`perf`: 12 % of the gateway thread). The top 7
/// bits, the table's tag, come from a Fibonacci product so that neighbours' tags differ.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

/// 2^64 / φ, odd: spreads consecutive ids over the product's high bits.
const FIBONACCI: u64 = 0x9E37_79B9_7F4A_7C15;

/// The bits of a hash that hashbrown keeps as a bucket's tag.
const TAG_BITS: u64 = 0xFE00_0000_0000_0000;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(FIBONACCI);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        let x = self.0 ^ n;
        self.0 = x ^ (x.wrapping_mul(FIBONACCI) & TAG_BITS);
    }
}

/// A map keyed by an id, hashed with [`IdHasher`].
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// Instruments and live orders' terms, as report building needs them.
pub(crate) struct Lookup {
    instruments: Vec<Option<InstrumentSpec>>,
    terms: IdMap<u64, OrderTerms>,
}

impl Lookup {
    /// The engine added, changed or (`live` false) removed `instrument`; `request` carries the
    /// spec when it was added or changed (a status change keeps the terms reports need).
    fn instrument_changed(&mut self, instrument: InstrumentId, live: bool, request: &CommandBody) {
        let i = instrument.0 as usize;
        if self.instruments.len() <= i {
            self.instruments.resize(i + 1, None);
        }
        match request {
            _ if !live => self.instruments[i] = None,
            CommandBody::AddInstrument(spec)
            | CommandBody::UpdateInstrument(spec)
            | CommandBody::ConfigureInstrument(spec) => {
                self.instruments[i] = Some(*spec);
            }
            _ => {}
        }
    }
}

impl ReportLookup for Lookup {
    fn instrument(&self, id: InstrumentId) -> Option<&InstrumentSpec> {
        self.instruments.get(id.0 as usize).and_then(|s| s.as_ref())
    }
    fn order_terms(&self, id: OrderId) -> Option<OrderTerms> {
        self.terms.get(&id.0).copied()
    }
}

/// The publisher's state.
pub(crate) struct Publisher {
    /// `memory` durability: output leaves without waiting for the journal.
    ungated: bool,
    held: VecDeque<OutSlot>,
    lookup: Lookup,
    /// Sessions configured for each account.
    routes: IdMap<u32, Vec<SessionRef>>,
    seq_published: u64,
    exec_seq: u64,
    exec_n: u64,
    reports: Vec<(AccountId, Report)>,
    /// The market-data feed's ring, when the feed is on.
    feed: Option<crate::feed::tap::FeedTap>,
    /// The audit log, written when an operator command's outcome is released.
    audit: Option<crate::audit::SharedAudit>,
}

impl Publisher {
    /// A publisher continuing after `last_seq`. `terms` are the restored engine's live orders
    /// (trades against them need their terms); the table is reserved for `max_orders` so it
    /// never grows in steady state.
    pub(crate) fn new(
        ungated: bool,
        instruments: Vec<Option<InstrumentSpec>>,
        mut terms: IdMap<u64, OrderTerms>,
        max_orders: usize,
        routes: IdMap<u32, Vec<SessionRef>>,
        last_seq: u64,
    ) -> Self {
        terms.reserve(max_orders.saturating_sub(terms.len()));
        Publisher {
            ungated,
            held: VecDeque::with_capacity(PUBLISH_BATCH as usize),
            lookup: Lookup { instruments, terms },
            routes,
            seq_published: last_seq,
            exec_seq: 0,
            exec_n: 0,
            reports: Vec::with_capacity(64),
            feed: None,
            audit: None,
        }
    }

    /// Forwards released output to the market-data feed from now on.
    pub(crate) fn set_feed(&mut self, tap: crate::feed::tap::FeedTap) {
        self.feed = Some(tap);
    }

    /// Writes operator commands' audit records to `audit` from now on.
    pub(crate) fn set_audit(&mut self, audit: crate::audit::SharedAudit) {
        self.audit = Some(audit);
    }

    /// Wakes the feed thread after a batch, if the feed is on.
    fn ring_feed(&mut self) {
        if let Some(feed) = self.feed.as_mut() {
            feed.ring();
        }
    }

    /// Highest sequence number whose output was fully released.
    pub(crate) fn seq_published(&self) -> u64 {
        self.seq_published
    }

    /// Whether something may be released now, without touching the ring (lets a caller skip
    /// the sessions' lock when there is nothing to release): the oldest held slot is durable,
    /// or nothing is held and the matcher has applied (`seq_applied`) a command past the last
    /// published one whose input is durable. The matcher counts a command applied just before
    /// its last slot, so a `true` may find that slot not yet there: the next call takes it.
    pub(crate) fn ready(&self, seq_applied: u64, seq_durable: u64) -> bool {
        match self.held.front() {
            Some(s) => self.may_leave(s, seq_durable),
            None => seq_applied.min(if self.ungated { u64::MAX } else { seq_durable }) > self.seq_published,
        }
    }

    fn may_leave(&self, slot: &OutSlot, seq_durable: u64) -> bool {
        self.ungated || slot.seq <= seq_durable
    }

    /// Discards what was held and what `source` has (shutdown, after every session closed);
    /// false when there was nothing.
    pub(crate) fn discard(&mut self, source: &mut impl OutputSource) -> bool {
        let had = !self.held.is_empty();
        self.held.clear();
        had | source.take_each(u64::MAX, |_| {})
    }

    /// Takes slots from `source` and releases, in order, every one whose input is durable
    /// (`seq ≤ seq_durable`, or always under `memory`): straight from the ring while nothing
    /// is held, the rest of a batch from the first slot that must wait into the held queue.
    /// True if anything was released.
    pub(crate) fn pump(
        &mut self,
        source: &mut impl OutputSource,
        seq_durable: u64,
        sink: &mut impl FnMut(SessionRef, &Report),
    ) -> bool {
        let mut moved = false;
        loop {
            while let Some(slot) = self.held.front() {
                if !self.may_leave(slot, seq_durable) {
                    self.ring_feed();
                    return moved;
                }
                let slot = self.held.pop_front().expect("a front slot");
                self.release(&slot, sink);
                moved = true;
            }
            // Nothing is held here, and seqs rise through the ring: once a slot must wait, so
            // must every later one.
            let took = source.take_each(PUBLISH_BATCH, |slot| {
                if self.may_leave(slot, seq_durable) {
                    self.release(slot, sink);
                    moved = true;
                } else {
                    self.held.push_back(*slot);
                }
            });
            if !took {
                self.ring_feed();
                return moved;
            }
        }
    }

    /// The pure step: one output slot whose input is durable → the reports it routes.
    pub(crate) fn release(&mut self, slot: &OutSlot, sink: &mut impl FnMut(SessionRef, &Report)) {
        if let Some(feed) = self.feed.as_mut() {
            feed.forward(slot);
        }
        let event = match slot.item {
            OutItem::Done => {
                self.seq_published = slot.seq;
                return;
            }
            OutItem::Event(e) => e,
        };
        if let (Event::Operator(outcome), CommandBody::Operator(c)) = (&event, &slot.request) {
            if let Some(audit) = &self.audit {
                audit.append(crate::audit::AuditEntry::new(slot.seq, slot.ts_ns, c, outcome));
            }
            return;
        }
        if let Event::Instrument { instrument, status } = event {
            return self.lookup.instrument_changed(instrument, status.is_some(), &slot.request);
        }
        if matches!(event, Event::Book(_) | Event::Account(_) | Event::Operator(_)) {
            return;
        }
        if let Event::Rejected(r) = &event
            && r.request == RequestKind::Admin
        {
            // Configuration commands have no client to tell.
            tracing::warn!(seq = slot.seq, request = ?slot.request, reason = ?r.reason, "configuration command refused");
            return;
        }
        if let Event::Accepted(v) | Event::Triggered(v) | Event::Replaced { order: v, .. } = &event {
            self.lookup.terms.insert(v.id.0, OrderTerms::from(v));
        }
        self.build_reports(slot, &event);
        for (account, report) in self.reports.drain(..) {
            for &to in self.routes.get(&account.0).map_or(&[][..], Vec::as_slice) {
                sink(to, &report);
            }
        }
        self.forget_dead_orders(&event);
    }

    fn build_reports(&mut self, slot: &OutSlot, event: &Event) {
        if self.exec_seq != slot.seq {
            self.exec_seq = slot.seq;
            self.exec_n = 0;
        }
        let first_exec_id = (slot.seq << EXEC_N_BITS) | self.exec_n;
        let mut ctx = ReportContext { transact_time_ns: slot.ts_ns, next_exec_id: first_exec_id };
        let reports = &mut self.reports;
        let res = event_reports(event, &slot.request, &self.lookup, &mut ctx, |a, r| reports.push((a, r)));
        self.exec_n = ctx.next_exec_id & ((1 << EXEC_N_BITS) - 1);
        if let Err(e) = res {
            tracing::error!(seq = slot.seq, error = %e, ?event, "cannot build a report");
        }
    }

    fn forget_dead_orders(&mut self, event: &Event) {
        match event {
            Event::Cancelled { order, .. } | Event::Expired { order, .. } => {
                self.lookup.terms.remove(&order.id.0);
            }
            Event::Trade(t) => {
                for f in [&t.taker, &t.maker] {
                    if f.leaves_lots == 0 {
                        self.lookup.terms.remove(&f.order_id.0);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The publisher at work: its state and the output ring's consumer, run by the gateway thread
/// between polls or by a thread of its own ([`PublisherStage::spawn`]).
pub(crate) struct PublisherStage {
    publisher: Publisher,
    source: OutputPoller,
    shared: Arc<Shared>,
}

impl PublisherStage {
    /// The stage; it reports progress in `shared.seq_published`.
    pub(crate) fn new(publisher: Publisher, source: OutputPoller, shared: Arc<Shared>) -> Self {
        shared.seq_published.store(publisher.seq_published(), Ordering::Release);
        PublisherStage { publisher, source, shared }
    }

    /// Releases durable output to the sessions and writes what they queued; true if anything
    /// moved. Takes the edge's lock only when something can be released.
    pub(crate) fn publish(&mut self, edge: &Mutex<Edge>) -> bool {
        // A failed (or fenced) appliance releases nothing more.
        if self.shared.failed.load(Ordering::Relaxed) {
            return false;
        }
        let seq_durable = self.shared.seq_durable.load(Ordering::Acquire);
        if !self.publisher.ready(self.shared.seq_applied.0.load(Ordering::Acquire), seq_durable) {
            return false;
        }
        // Read once per call: the metrics can be switched while the pipeline runs.
        let recording = self.shared.metrics.recording();
        let m = recording.then_some(&self.shared.metrics.publisher);
        let mut source = Observed { inner: &mut self.source, metrics: m };
        let mut edge = lock(edge);
        let now = WallClock.now_ns();
        let from = self.publisher.seq_published();
        let moved = self.publisher.pump(&mut source, seq_durable, &mut |to, r| {
            edge.deliver(to, r, now);
            if let Some(c) = m.and_then(|m| m.reports.get(to.protocol.0)) {
                c.add(1);
            }
        });
        edge.flush_all();
        drop(edge);
        let to = self.publisher.seq_published();
        if recording {
            record_sent(&self.shared.metrics, from, to);
        }
        self.shared.seq_published.store(to, Ordering::Release);
        moved
    }

    /// Discards output (shutdown, once every session is closed); false when there was none.
    pub(crate) fn discard(&mut self) -> bool {
        self.publisher.discard(&mut self.source)
    }

    /// Runs the stage on a thread of its own (`sable-publisher`). It wakes the receiver when a
    /// session asked for something only the receiver does (a close, a command to sequence).
    pub(crate) fn spawn(
        self,
        edge: Arc<Mutex<Edge>>,
        wait: Wait,
        waker: Arc<mio::Waker>,
    ) -> std::io::Result<PublisherThread> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("sable-publisher".into())
            .spawn(move || self.run(&edge, wait, &waker, &stop_flag))?;
        Ok(PublisherThread { stop, handle })
    }

    fn run(mut self, edge: &Mutex<Edge>, wait: Wait, waker: &mio::Waker, stop: &AtomicBool) -> Self {
        let _guard = FailOnPanic(Arc::clone(&self.shared));
        let mut rounds = 0u32;
        while !stop.load(Ordering::Acquire) {
            if self.publish(edge) {
                rounds = 0;
                if lock(edge).outbox_has_work() {
                    // A failed wake only delays the receiver until its next timer tick.
                    let _ = waker.wake();
                }
            } else {
                wait.idle(rounds);
                rounds = rounds.saturating_add(1);
            }
        }
        self
    }
}

/// The output ring as the publisher takes from it, counting what it sees: the time a command's
/// output is taken (sequenced → matched: the matcher reads no clock), trades and rejects.
struct Observed<'a, S> {
    inner: &'a mut S,
    metrics: Option<&'a crate::admin::recorder::PublisherMetrics>,
}

impl<S: OutputSource> OutputSource for Observed<'_, S> {
    fn take_each(&mut self, max: u64, mut each: impl FnMut(&OutSlot)) -> bool {
        let Some(m) = self.metrics else { return self.inner.take_each(max, each) };
        // One clock read per take that holds a command's last slot.
        let mut now = None;
        self.inner.take_each(max, |slot| {
            match &slot.item {
                OutItem::Done => {
                    let now_ns = *now.get_or_insert_with(|| WallClock.now_ns());
                    m.sequenced_to_matched.record(now_ns.saturating_sub(slot.ts_ns));
                }
                OutItem::Event(Event::Trade(_)) => m.trades.add(1),
                OutItem::Event(Event::Rejected(r)) if r.request != RequestKind::Admin => {
                    if let Some(c) = m.rejects.get(r.reason as usize) {
                        c.add(1);
                    }
                }
                OutItem::Event(_) => {}
            }
            each(slot);
        })
    }
}

/// After the reports of commands `from + 1 ..= to` were written to the sockets: sequenced →
/// sent for each client request among them, and order → ack for new orders and cancels.
fn record_sent(metrics: &crate::admin::recorder::Metrics, from: u64, to: u64) {
    let now_ns = WallClock.now_ns();
    let m = &metrics.publisher;
    let first = from.max(to.saturating_sub(crate::admin::STAMP_SLOTS as u64)) + 1;
    for seq in first..=to {
        let Some(stamp) = metrics.stamps.get(seq) else { continue };
        m.sequenced_to_sent.record(now_ns.saturating_sub(stamp.ts_ns));
        if stamp.kind <= 1 {
            m.order_to_ack.record(now_ns.saturating_sub(stamp.received_ns));
        }
    }
}

/// Fails the pipeline if the publisher thread unwinds, so the receiver stops instead of waiting
/// for output that will never be published.
struct FailOnPanic(Arc<Shared>);

impl Drop for FailOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.fail("the publisher thread panicked".into());
        }
    }
}

/// A publisher running on its own thread.
pub(crate) struct PublisherThread {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<PublisherStage>,
}

impl PublisherThread {
    /// Stops the thread and takes the stage back (None if the thread panicked).
    pub(crate) fn join(self) -> Option<PublisherStage> {
        self.stop.store(true, Ordering::Release);
        self.handle.join().ok()
    }
}

#[cfg(test)]
mod tests {
    use engine::{
        AccountSpec, ClOrdId, Command, CommandBody, Engine, EngineLimits, InstrumentId, NewOrder, Side, Symbol,
    };
    use rust_decimal::Decimal;

    use super::*;
    use crate::sbe::messages::ExecType;
    use crate::session::ProtocolId;

    const INST: InstrumentId = InstrumentId(1);
    const SBE_1: SessionRef = SessionRef { protocol: ProtocolId(0), index: 0 };
    const FIX_1: SessionRef = SessionRef { protocol: ProtocolId(1), index: 0 };
    const SBE_2: SessionRef = SessionRef { protocol: ProtocolId(0), index: 1 };

    fn spec() -> InstrumentSpec {
        InstrumentSpec::unlimited(INST, Symbol::new("DEMO").unwrap(), Decimal::new(1, 2), Decimal::ONE)
    }

    fn order(account: u32, cl: &str, side: Side, price_ticks: i64, qty_lots: u64) -> CommandBody {
        let cl_ord_id = ClOrdId::new(cl.as_bytes()).unwrap();
        CommandBody::NewOrder(NewOrder::limit(AccountId(account), cl_ord_id, INST, side, price_ticks, qty_lots))
    }

    /// An engine that applies commands as the matcher would and turns its events into the
    /// output slots the matcher would publish.
    struct Feed {
        engine: Engine,
        slots: VecDeque<OutSlot>,
    }

    impl Feed {
        fn new() -> Feed {
            let mut f = Feed { engine: Engine::new(EngineLimits::SMALL), slots: VecDeque::new() };
            f.apply(CommandBody::AddInstrument(spec()));
            for a in [1, 2] {
                f.apply(CommandBody::UpsertAccount(AccountSpec::unlimited(AccountId(a))));
            }
            f.slots.clear();
            f
        }

        fn apply(&mut self, body: CommandBody) -> u64 {
            let cmd = Command { seq: self.engine.seq() + 1, ts_ns: 1_000 * (self.engine.seq() + 1), body };
            let mut events = Vec::new();
            self.engine.apply(&cmd, &mut events).unwrap();
            let base = OutSlot { seq: cmd.seq, ts_ns: cmd.ts_ns, request: body, item: OutItem::Done };
            self.slots.extend(events.into_iter().map(|e| OutSlot { item: OutItem::Event(e), ..base }));
            self.slots.push_back(base);
            cmd.seq
        }
    }

    fn publisher(ungated: bool) -> Publisher {
        let routes = IdMap::from_iter([(1, vec![SBE_1, FIX_1]), (2, vec![SBE_2])]);
        Publisher::new(ungated, crate::reconcile::instrument_table(&[spec()]), IdMap::default(), 64, routes, 3)
    }

    fn exec(r: &Report) -> (u64, u8, u32) {
        match r {
            Report::Execution(m) => (m.exec_id.get(), m.exec_type, m.account.get()),
            other => panic!("not an execution report: {other:?}"),
        }
    }

    #[test]
    fn nothing_leaves_before_its_input_is_durable() {
        let mut feed = Feed::new();
        let seq = feed.apply(order(1, "b1", Side::Buy, 100, 5));
        let mut p = publisher(false);
        let mut got = Vec::new();
        assert!(!p.pump(&mut feed.slots, seq - 1, &mut |to, r| got.push((to, exec(r)))));
        assert!(got.is_empty());
        assert_eq!(p.seq_published(), 3);
        assert!(!p.ready(seq, seq - 1) && p.ready(seq, seq), "held until durable");
        assert!(p.pump(&mut feed.slots, seq, &mut |to, r| got.push((to, exec(r)))));
        let new = ExecType::New.to_u8();
        assert_eq!(got, vec![(SBE_1, (seq << 20, new, 1)), (FIX_1, (seq << 20, new, 1))]);
        assert_eq!(p.seq_published(), seq);
        assert!(!p.ready(seq, u64::MAX), "nothing left");
    }

    #[test]
    fn a_batch_durable_in_part_leaves_up_to_its_durable_seq_and_holds_the_rest() {
        let mut feed = Feed::new();
        let first = feed.apply(order(1, "b1", Side::Buy, 100, 5));
        let second = feed.apply(order(2, "s1", Side::Sell, 100, 3));
        let mut p = publisher(false);
        assert!(!p.ready(second, first - 1), "nothing held, nothing durable past the last published");
        assert!(p.ready(second, first));
        let mut got = Vec::new();
        assert!(p.pump(&mut feed.slots, first, &mut |to, r| got.push((to, exec(r).1))));
        let new = ExecType::New.to_u8();
        assert_eq!(got, vec![(SBE_1, new), (FIX_1, new)], "the first order's New only");
        assert_eq!(p.seq_published(), first);
        assert!(feed.slots.is_empty(), "the whole batch was taken: the second command's output is held");
        assert!(!p.ready(second, first) && p.ready(second, second));
        got.clear();
        assert!(p.pump(&mut feed.slots, second, &mut |to, r| got.push((to, exec(r).1))));
        let trade = ExecType::Trade.to_u8();
        assert_eq!(got, vec![(SBE_2, new), (SBE_2, trade), (SBE_1, trade), (FIX_1, trade)]);
        assert_eq!(p.seq_published(), second);
        assert!(!p.ready(second, u64::MAX), "nothing left");
    }

    #[test]
    fn consecutive_ids_hash_to_consecutive_places_with_spread_tags() {
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<IdHasher>::default();
        let hashes: Vec<u64> = (1_000_000u64..1_004_096).map(|id| build.hash_one(id)).collect();
        for (id, h) in (1_000_000u64..).zip(&hashes) {
            assert_eq!(h & !TAG_BITS, id, "the place bits are the id");
        }
        let tags: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert_eq!(tags.len(), 128, "4,096 neighbours use every tag");
    }

    #[test]
    fn memory_durability_does_not_wait() {
        let mut feed = Feed::new();
        feed.apply(order(2, "s1", Side::Sell, 100, 5));
        let mut p = publisher(true);
        let mut got = Vec::new();
        assert!(p.pump(&mut feed.slots, 0, &mut |to, r| got.push((to, exec(r).1))));
        assert_eq!(got, vec![(SBE_2, ExecType::New.to_u8())]);
    }

    #[test]
    fn a_trade_reaches_both_accounts_with_exec_ids_from_the_sequence() {
        let mut feed = Feed::new();
        feed.apply(order(1, "b1", Side::Buy, 100, 5));
        let seq = feed.apply(order(2, "s1", Side::Sell, 100, 3));
        let mut p = publisher(false);
        let mut got = Vec::new();
        p.pump(&mut feed.slots, seq, &mut |to, r| got.push((to, exec(r))));
        let (new, trade) = (ExecType::New.to_u8(), ExecType::Trade.to_u8());
        let ids: Vec<(SessionRef, u8, u32)> = got.iter().map(|(to, (_, t, a))| (*to, *t, *a)).collect();
        assert_eq!(
            &ids[2..],
            &[(SBE_2, new, 2), (SBE_2, trade, 2), (SBE_1, trade, 1), (FIX_1, trade, 1)],
            "the taker's New and fill, then the maker's fill to both of its sessions"
        );
        let exec_ids: Vec<u64> = got[2..].iter().map(|(_, (id, _, _))| *id).collect();
        let base = seq << 20;
        assert_eq!(exec_ids, vec![base, base + 1, base + 2, base + 2], "one exec id per report, shared by its copies");
    }

    #[test]
    fn configuration_commands_and_book_events_reach_no_session() {
        let mut feed = Feed::new();
        feed.apply(CommandBody::AddInstrument(spec())); // refused: the instrument exists
        let seq = feed.apply(CommandBody::Tick);
        let mut p = publisher(false);
        let mut n = 0;
        p.pump(&mut feed.slots, seq, &mut |_, _| n += 1);
        assert_eq!((n, p.seq_published()), (0, seq));
    }
}
