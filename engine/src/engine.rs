//! The matcher: [`Engine::apply`] turns one sequenced command into events.
//!
//! Every path below either changes nothing and emits one `Rejected`, or validates everything
//! first and then mutates; no path half-applies a command.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use serde::{Deserialize, Serialize};

use crate::account::{AccountSpec, StpMode};
use crate::book::{Book, crosses};
use crate::command::{
    Cancel, Command, CommandBody, MassCancel, MassCancelTarget, NewOrder, OrdType, OrderRef, Replace, Side, TimeInForce,
};
use crate::event::{
    BookChange, CancelReason, Event, EventSink, ExpireReason, Fill, OrderView, Reject, RejectReason, RequestKind, Trade,
};
use crate::ids::{AccountId, ClOrdId, InstrumentId, OrderId, TradeId};
use crate::index::{OrderIndex, hash_client};
use crate::instrument::{InstrumentSpec, TradingStatus};
use crate::limits::EngineLimits;
use crate::order::{NIL, Order, OrderInit, OrderPool, Slot, indexed, may_rest, visible_slice};
use crate::price_level::LevelPool;

/// The caller broke the engine's input contract (a pipeline bug, not bad client input).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Commands must arrive with consecutive sequence numbers.
    #[error("command sequence {got}, expected {expected}")]
    OutOfSequence {
        /// The next sequence number the engine expects.
        expected: u64,
        /// What it got.
        got: u64,
    },
}

/// An account's configuration and its live-order accounting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Account {
    pub spec: AccountSpec,
    pub open_orders: u32,
    pub open_buy_nanos: u128,
    pub open_sell_nanos: u128,
    /// The kill switch is engaged: new orders are refused (an operator action).
    pub killed: bool,
}

/// A GTD order's expiry, ordered by (expiry, acceptance sequence).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct GtdEntry {
    pub expire_ns: u64,
    pub seq: u64,
    pub order_id: u64,
}

/// Smallest order capacity for which [`Engine::prefetch`] does anything. Below it the index
/// tables (about 14 bytes per order) fit in a core's L2 cache, the hints find their lines
/// already there, and their own work (hashing the next command's keys, probing its bucket) cost
/// more than they saved: about 11 % of throughput on the GOOG day at 65,536 orders. At 2,097,152
/// orders they make the 1M-order deep book about 65 % faster (`cargo run --release -p
/// bench --bin matcher`, engines `sable` and `sable_serial`).
pub const LOOKAHEAD_MIN_ORDERS: u32 = 1 << 18;

/// Live orders from which [`Engine::prefetch`] loads everything a command will touch; below it,
/// only a new order's client bucket. A book of a few thousand orders keeps its records, levels
/// and buckets in cache, and the full hints (a second ladder lookup, bucket guesses, hashing the
/// next commands' keys) cost more than they hide: with the full hints on, a 262,144-order engine
/// (the default configuration) ran the GOOG day at 9.8 M commands/s and the exchange-core mix at
/// 8.7; with the light hint below this count, 12.7 and 10.6 (2,097,152 orders: 9.4 → 12.3 and
/// 8.5 → 10.3), p99 lower too. With the threshold at 131,072 instead, a 60,000-order deep book
/// lost 11 %; at 4,000 and 16,000 orders the two were within noise (`matcher --workload
/// deep_book --deep-orders N --sable-max-orders 2097152`).
pub const LOOKAHEAD_FULL_LIVE: u32 = 1 << 13;

/// How many commands ahead of the one being applied [`Engine::prefetch`] has a use for.
pub const LOOKAHEAD: usize = 3;

/// The deterministic matching engine.
pub struct Engine {
    pub(crate) limits: EngineLimits,
    pub(crate) seq: u64,
    pub(crate) now_ns: u64,
    pub(crate) next_order_id: u64,
    pub(crate) next_trade_id: u64,
    pub(crate) orders: OrderPool,
    pub(crate) levels: LevelPool,
    pub(crate) index: OrderIndex,
    pub(crate) books: Vec<Option<Book>>,
    pub(crate) accounts: Vec<Option<Account>>,
    /// Expiry queue of live GTD orders; entries of orders that died earlier are skipped lazily
    /// and purged when the queue fills.
    pub(crate) gtd: BinaryHeap<Reverse<GtdEntry>>,
    /// Sessions whose kill switch is engaged (gateway keys), ascending; at most
    /// [`crate::limits::MAX_KILLED_SESSIONS`], allocated when created.
    pub(crate) killed_sessions: Vec<u64>,
    /// Operator commands applied so far (the audit log has one record for each).
    pub(crate) operator_commands: u64,
}

/// How a taker's matching ended.
enum Sweep {
    /// The taker is still live (it may have quantity left).
    Live,
    /// The taker was cancelled by self-trade prevention and released.
    Gone,
}

fn reject(
    out: &mut impl EventSink,
    request: RequestKind,
    account: AccountId,
    cl_ord_id: ClOrdId,
    instrument: InstrumentId,
    order_id: Option<OrderId>,
    reason: RejectReason,
) {
    out.push(Event::Rejected(Reject { request, account, cl_ord_id, instrument, order_id, order_cum_lots: 0, reason }));
}

fn admin_reject(out: &mut impl EventSink, instrument: InstrumentId, reason: RejectReason) {
    reject(out, RequestKind::Admin, AccountId(0), ClOrdId::default(), instrument, None, reason);
}

/// The account's live-order limits for an order that may become live with `notional`.
#[inline]
fn open_limits(acc: &Account, side: Side, notional: u128) -> Result<(), RejectReason> {
    if acc.open_orders >= acc.spec.limits.max_open_orders {
        return Err(RejectReason::AccountMaxOpenOrders);
    }
    match side {
        Side::Buy if acc.open_buy_nanos.saturating_add(notional) > acc.spec.limits.max_open_buy_notional_nanos => {
            Err(RejectReason::AccountOpenBuyNotional)
        }
        Side::Sell if acc.open_sell_nanos.saturating_add(notional) > acc.spec.limits.max_open_sell_notional_nanos => {
            Err(RejectReason::AccountOpenSellNotional)
        }
        _ => Ok(()),
    }
}

impl Engine {
    /// Creates an empty engine with all capacities preallocated.
    ///
    /// # Panics
    /// If `limits` are out of range ([`EngineLimits::validate`]; a configuration error caught
    /// at start-up).
    pub fn new(limits: EngineLimits) -> Self {
        if let Err(e) = limits.validate() {
            panic!("invalid engine limits: {e}");
        }
        Engine {
            limits,
            seq: 0,
            now_ns: 0,
            next_order_id: 1,
            next_trade_id: 1,
            orders: OrderPool::with_capacity(limits.max_orders),
            levels: LevelPool::with_capacity(limits.max_levels),
            index: OrderIndex::with_capacity(limits.max_orders),
            books: (0..limits.max_instruments).map(|_| None).collect(),
            accounts: vec![None; limits.max_accounts as usize],
            gtd: BinaryHeap::with_capacity(limits.max_orders as usize + 1),
            killed_sessions: Vec::with_capacity(crate::limits::MAX_KILLED_SESSIONS),
            operator_commands: 0,
        }
    }

    /// The engine's capacities.
    pub fn limits(&self) -> EngineLimits {
        self.limits
    }

    /// Sequence number of the last applied command (0 before the first).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The engine's time: the largest command timestamp seen.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Applies one command, writing its events to `out`.
    ///
    /// Before the command itself, GTD orders whose expiry is at or before the command's
    /// timestamp expire (in expiry, then acceptance order).
    pub fn apply<S: EventSink>(&mut self, cmd: &Command, out: &mut S) -> Result<(), ApplyError> {
        if cmd.seq != self.seq + 1 {
            return Err(ApplyError::OutOfSequence { expected: self.seq + 1, got: cmd.seq });
        }
        self.seq = cmd.seq;
        self.now_ns = self.now_ns.max(cmd.ts_ns);
        self.expire_gtd(out);
        match &cmd.body {
            CommandBody::NewOrder(o) => self.new_order(o, out),
            CommandBody::Cancel(c) => self.cancel(c, out),
            CommandBody::Replace(r) => self.replace(r, out),
            CommandBody::MassCancel(m) => self.mass_cancel(m, out),
            CommandBody::OrderStatus { account, order } => self.order_status(*account, *order, out),
            CommandBody::EndOfDay { instrument } => self.end_of_day(*instrument, out),
            CommandBody::Tick => {}
            CommandBody::AddInstrument(spec) => self.add_instrument(spec, out),
            CommandBody::UpdateInstrument(spec) => self.update_instrument(spec, out),
            CommandBody::ConfigureInstrument(spec) => self.configure_instrument(spec, out),
            CommandBody::SetTradingStatus { instrument, status } => self.set_status(*instrument, *status, out),
            CommandBody::RemoveInstrument { instrument } => self.remove_instrument(*instrument, out),
            CommandBody::UpsertAccount(spec) => self.upsert_account(spec, out),
            CommandBody::Operator(c) => self.operator(c, out),
        }
        Ok(())
    }

    /// Whether [`Engine::prefetch`] does anything for this engine (its capacity is at least
    /// [`LOOKAHEAD_MIN_ORDERS`]): a driver can skip looking ahead altogether when it does not.
    #[inline]
    pub fn looks_ahead(&self) -> bool {
        self.limits.max_orders >= LOOKAHEAD_MIN_ORDERS
    }

    /// A hint for a command `distance` places behind the one about to be applied (1: the next
    /// one): starts loading memory that command will touch, so that under a backlog the cache
    /// misses of the next commands overlap with the work of this one. Each distance loads what
    /// the previous one made reachable without waiting:
    ///
    /// - 3 and more: the index bucket that finds the order a cancel or replace names; a new
    ///   order's client bucket and the buckets of the ids it may get;
    /// - 2: the named order's record (its bucket has arrived by now); a new limit order's level;
    /// - 1: its queue neighbours, level and client bucket (read from the record); for a new
    ///   limit order, the tail of the level it would join.
    ///
    /// A matcher that sees several commands at once (a batch from the input ring) calls it for
    /// each of the next [`LOOKAHEAD`] commands, then applies the current one; each command thus
    /// gets every stage in turn. It reads nothing into the state and changes no behaviour:
    /// calling it or not, for any command, gives the same events and `state_hash`. It does
    /// nothing for engines smaller than [`LOOKAHEAD_MIN_ORDERS`], whose tables stay in cache,
    /// and only the new-order client bucket while fewer than [`LOOKAHEAD_FULL_LIVE`] orders live.
    #[inline]
    pub fn prefetch(&self, cmd: &Command, distance: usize) {
        if !self.looks_ahead() {
            return;
        }
        if self.orders.live() < LOOKAHEAD_FULL_LIVE {
            // A small book's records, levels and buckets are in cache already; only a new
            // order's client bucket is not (a fresh key lands on a random line of a table far
            // larger than L2), so that is the one line worth a hint.
            if let (LOOKAHEAD.., CommandBody::NewOrder(o)) = (distance, &cmd.body) {
                self.index.prefetch_client(hash_client(o.account.0, &o.cl_ord_id));
            }
            return;
        }
        match &cmd.body {
            CommandBody::NewOrder(o) => self.prefetch_new(o, distance),
            CommandBody::Cancel(Cancel { account, order, .. }) => self.prefetch_named(*account, order, None, distance),
            CommandBody::Replace(r) => self.prefetch_named(r.account, &r.order, Some(&r.cl_ord_id), distance),
            _ => {}
        }
    }

    /// [`Engine::prefetch`] for a new order: at 3 and more its client bucket and the id
    /// buckets it may get; at 2 the level it would join; at 1 that level's tail. Always
    /// inlined, like [`Engine::prefetch_named`].
    #[inline(always)]
    fn prefetch_new(&self, o: &NewOrder, distance: usize) {
        match distance {
            0 => {}
            1 => {
                if o.ord_type == OrdType::Limit
                    && let Some(bi) = self.book_index(o.instrument)
                {
                    self.prefetch_rest(bi, o.side, o.price_ticks);
                }
            }
            2 => {
                // The level it would join, so that at distance 1 its tail is one step away.
                if o.ord_type == OrdType::Limit
                    && let Some(bi) = self.book_index(o.instrument)
                    && let Some(level) =
                        self.books[bi].as_ref().and_then(|b| b.ladder(o.side, false).level_at(o.price_ticks))
                {
                    self.levels.prefetch(level);
                }
            }
            _ => {
                self.index.prefetch_client(hash_client(o.account.0, &o.cl_ord_id));
                if indexed(o.ord_type, o.tif) {
                    // The id it will get: the next one, or the one after if a new order comes
                    // first.
                    self.index.prefetch_id(self.next_order_id);
                    self.index.prefetch_id(self.next_order_id + 1);
                }
            }
        }
    }

    /// [`Engine::prefetch`] for a cancel or a replace (`new_cl_ord_id`: the replace's client
    /// id): at 3 and more the bucket that finds the named order; at 2 its record; at 1 its
    /// neighbours, level and client bucket. Always inlined: LLVM left it out of line, and the
    /// call added instructions to the path meant to hide latency (measured with cachegrind;
    /// numbers in the commit that split `prefetch`).
    #[inline(always)]
    fn prefetch_named(&self, account: AccountId, order: &OrderRef, new_cl_ord_id: Option<&ClOrdId>, distance: usize) {
        if distance == 0 {
            return;
        }
        if distance >= 3 {
            return match order {
                OrderRef::Id(id) => self.index.prefetch_id(id.0),
                OrderRef::Client(c) => self.index.prefetch_client(hash_client(account.0, c)),
            };
        }
        // A guess from the bucket's tag, never confirmed against the record: the hint
        // must not wait for the line it is about to load.
        let Some(slot) = (match order {
            OrderRef::Id(id) => self.index.candidate_id(id.0),
            OrderRef::Client(c) => self.index.candidate_client(hash_client(account.0, c)),
        }) else {
            return;
        };
        if distance == 2 {
            self.orders.prefetch_record(slot);
        } else {
            let o = self.orders.get(slot);
            self.orders.prefetch_links(o.prev);
            self.orders.prefetch_links(o.next);
            self.levels.prefetch(o.level);
            // A replace that keeps the client id leaves the client table alone: hashing
            // the key and loading its bucket would be work for nothing.
            if new_cl_ord_id != Some(&o.cl_ord_id) {
                self.index.prefetch_client(hash_client(o.account, &o.cl_ord_id));
            }
        }
    }

    // ---------------------------------------------------------------- lookups

    pub(crate) fn book_index(&self, id: InstrumentId) -> Option<usize> {
        let i = id.0 as usize;
        (i < self.books.len() && self.books[i].is_some()).then_some(i)
    }

    pub(crate) fn account(&self, id: AccountId) -> Option<&Account> {
        self.accounts.get(id.0 as usize).and_then(Option::as_ref)
    }

    fn account_mut(&mut self, id: u32) -> &mut Account {
        self.accounts[id as usize].as_mut().expect("orders only exist for configured accounts")
    }

    fn stp_group(&self, account: u32) -> u32 {
        self.accounts[account as usize].as_ref().map_or(account, |a| a.spec.stp_group)
    }

    fn find_order(&self, account: AccountId, order: OrderRef) -> Option<Slot> {
        let slot = match order {
            OrderRef::Id(id) => self.index.find_id(&self.orders, id.0)?,
            OrderRef::Client(c) => self.index.find_client(&self.orders, account.0, &c)?,
        };
        (self.orders.get(slot).account == account.0).then_some(slot)
    }

    /// Starts loading what cancelling the order in `slot` touches (its queue neighbours and its
    /// index buckets): independent misses that then overlap (see [`crate::prefetch`]).
    #[inline]
    fn prefetch_removal(&mut self, slot: Slot) {
        let (prev, next) = (self.orders.get(slot).prev, self.orders.get(slot).next);
        self.orders.prefetch_links(prev);
        self.orders.prefetch_links(next);
        self.index.prefetch_order(&self.orders, slot);
    }

    /// Starts loading the tail of the level a limit order at `price_ticks` on `side` would join,
    /// unless it crosses (then it matches first and the tail may not be needed).
    #[inline]
    fn prefetch_rest(&self, bi: usize, side: Side, price_ticks: i64) {
        let book = self.books[bi].as_ref().expect("book exists");
        if book.ladder(side.opposite(), false).best().is_some_and(|b| crosses(side, price_ticks, b.price_ticks)) {
            return;
        }
        if let Some(level) = book.ladder(side, false).level_at(price_ticks) {
            self.orders.prefetch_links(self.levels.get(level).tail);
        }
    }

    /// Notional the order contributes to its account's open notional while it rests.
    fn resting_notional(&self, book: &Book, slot: Slot) -> u128 {
        let o = self.orders.get(slot);
        let price = if o.pending_stop() && o.ord_type() == OrdType::Stop { o.stop_ticks } else { o.price_ticks };
        book.notional_nanos(price, o.leaves_lots)
    }

    // ---------------------------------------------------------------- resting

    /// Whether resting at `price_ticks` on that ladder needs a level that cannot be had.
    #[inline]
    fn level_unavailable(&self, book: &Book, side: Side, stops: bool, price_ticks: i64) -> bool {
        let ladder = book.ladder(side, stops);
        // Capacity is almost never short: test it before looking the price up.
        (ladder.is_full() || !self.levels.has_free()) && self.level_short(book, side, stops, price_ticks)
    }

    /// [`Engine::level_unavailable`] once capacity is known to be short somewhere.
    fn level_short(&self, book: &Book, side: Side, stops: bool, price_ticks: i64) -> bool {
        let ladder = book.ladder(side, stops);
        match ladder.level_at(price_ticks) {
            Some(l) if self.levels.get(l).count > 0 => false,
            Some(_) => ladder.is_full(), // a tombstone to revive: needs only ladder room
            None => ladder.is_full() || (!self.levels.has_free() && !self.any_tombstones()),
        }
    }

    fn any_tombstones(&self) -> bool {
        self.books.iter().flatten().any(|b| b.tombstones() > 0)
    }

    /// Returns every tombstoned level to the pool (when the pool runs dry).
    fn compact_ladders(&mut self) {
        for book in self.books.iter_mut().flatten() {
            book.compact(&mut self.levels);
        }
    }

    /// Links the order at the back of its level (book, or stop ladder when pending) and counts it
    /// in its account. Fails only on level capacity.
    fn rest(&mut self, bi: usize, slot: Slot, out: &mut impl EventSink) -> Result<(), ()> {
        if !self.levels.has_free() {
            self.compact_ladders();
        }
        let book = self.books[bi].as_mut().expect("book exists");
        let o = self.orders.get_mut(slot);
        let stops = o.pending_stop();
        let side = o.side();
        let price = if stops { o.stop_ticks } else { o.price_ticks };
        o.visible_lots = if stops { o.leaves_lots } else { visible_slice(o.display_lots, o.leaves_lots) };
        let ladder = book.ladder_mut(side, stops);
        let level = match ladder.level_at(price) {
            Some(level) => {
                if self.levels.get(level).count == 0 {
                    if ladder.is_full() {
                        return Err(());
                    }
                    ladder.revive();
                }
                level
            }
            None => {
                if ladder.is_full() {
                    return Err(());
                }
                let Some(level) = self.levels.alloc(price) else { return Err(()) };
                ladder.insert(price, level, &mut self.levels);
                level
            }
        };
        self.levels.push_back(level, &mut self.orders, slot);
        let o = *self.orders.get(slot);
        let book = self.books[bi].as_ref().expect("book exists");
        let nanos = self.resting_notional(book, slot);
        let acc = self.account_mut(o.account);
        acc.open_orders += 1;
        match side {
            Side::Buy => acc.open_buy_nanos += nanos,
            Side::Sell => acc.open_sell_nanos += nanos,
        }
        if !stops {
            out.push(Event::Book(BookChange::Add {
                instrument: InstrumentId(o.instrument as u32),
                order_id: OrderId(o.id),
                side,
                price_ticks: o.price_ticks,
                qty_lots: o.visible_lots,
            }));
        }
        Ok(())
    }

    /// Reverses [`Engine::rest`]: unlinks the order, drops an emptied level and uncounts it.
    #[inline]
    fn unrest(&mut self, bi: usize, slot: Slot) {
        let book = self.books[bi].as_ref().expect("book exists");
        let nanos = self.resting_notional(book, slot);
        self.unrest_notional(bi, slot, nanos);
    }

    /// [`Engine::unrest`] for an order whose resting notional the caller already has.
    fn unrest_notional(&mut self, bi: usize, slot: Slot, nanos: u128) {
        let o = *self.orders.get(slot);
        let stops = o.pending_stop();
        let (level, empty) = self.levels.unlink(&mut self.orders, slot);
        if empty {
            self.books[bi].as_mut().expect("book exists").ladder_mut(o.side(), stops).emptied(level, &mut self.levels);
        }
        let acc = self.account_mut(o.account);
        acc.open_orders -= 1;
        match o.side() {
            Side::Buy => acc.open_buy_nanos -= nanos,
            Side::Sell => acc.open_sell_nanos -= nanos,
        }
    }

    /// Drops a dead order from the indexes and returns its slot.
    fn release(&mut self, slot: Slot) {
        if self.orders.get(slot).indexed() {
            self.index.remove(&self.orders, slot);
        }
        self.orders.free(slot);
    }

    fn done_view(&self, slot: Slot) -> OrderView {
        let mut v = self.orders.get(slot).view();
        v.leaves_lots = 0;
        v
    }

    /// Cancels a resting order (book or stop ladder) completely.
    pub(crate) fn cancel_resting(
        &mut self,
        bi: usize,
        slot: Slot,
        reason: CancelReason,
        request_cl_ord_id: ClOrdId,
        out: &mut impl EventSink,
    ) {
        let o = *self.orders.get(slot);
        self.unrest(bi, slot);
        out.push(Event::Cancelled {
            order: self.done_view(slot),
            cancelled_lots: o.leaves_lots,
            request_cl_ord_id,
            reason,
        });
        if !o.pending_stop() {
            out.push(Event::Book(BookChange::Delete {
                instrument: InstrumentId(o.instrument as u32),
                order_id: OrderId(o.id),
                side: o.side(),
                price_ticks: o.price_ticks,
            }));
        }
        self.release(slot);
    }

    /// Cancels the remainder of an order that is not resting (a taker) and releases it.
    fn cancel_taker(&mut self, slot: Slot, reason: CancelReason, out: &mut impl EventSink) {
        let o = *self.orders.get(slot);
        out.push(Event::Cancelled {
            order: self.done_view(slot),
            cancelled_lots: o.leaves_lots,
            request_cl_ord_id: o.cl_ord_id,
            reason,
        });
        self.release(slot);
    }

    fn expire_resting(&mut self, bi: usize, slot: Slot, reason: ExpireReason, out: &mut impl EventSink) {
        let o = *self.orders.get(slot);
        self.unrest(bi, slot);
        out.push(Event::Expired { order: self.done_view(slot), expired_lots: o.leaves_lots, reason });
        if !o.pending_stop() {
            out.push(Event::Book(BookChange::Delete {
                instrument: InstrumentId(o.instrument as u32),
                order_id: OrderId(o.id),
                side: o.side(),
                price_ticks: o.price_ticks,
            }));
        }
        self.release(slot);
    }

    // ---------------------------------------------------------------- new orders

    /// Checks a new order; on success returns its book index and the hash of its client key,
    /// which the index insert reuses.
    fn validate_new(&self, o: &NewOrder) -> Result<(usize, u64), RejectReason> {
        // The duplicate check and the index inserts miss the cache in a deep book: start both
        // buckets loading now, while the checks below run.
        let client_hash = hash_client(o.account.0, &o.cl_ord_id);
        self.index.prefetch_client(client_hash);
        if indexed(o.ord_type, o.tif) {
            self.index.prefetch_id(self.next_order_id);
        }
        let bi = self.book_index(o.instrument).ok_or(RejectReason::UnknownInstrument)?;
        let acc = self.account(o.account).ok_or(RejectReason::UnknownAccount)?;
        if acc.killed {
            return Err(RejectReason::KillSwitch);
        }
        let book = self.books[bi].as_ref().expect("book exists");
        if !book.is_open() {
            return Err(RejectReason::InstrumentNotOpen);
        }
        if o.qty_lots < book.spec.min_qty_lots.max(1) {
            return Err(RejectReason::QtyBelowMin);
        }
        if o.qty_lots > book.spec.max_qty_lots {
            return Err(RejectReason::QtyAboveMax);
        }
        if o.qty_lots > acc.spec.limits.max_order_qty_lots {
            return Err(RejectReason::AccountMaxOrderQty);
        }
        let can_rest = may_rest(o.ord_type, o.tif);
        if o.display_lots > 0 && (o.display_lots > o.qty_lots || !can_rest) {
            return Err(RejectReason::InvalidDisplayQty);
        }
        if o.post_only && !(o.ord_type == OrdType::Limit && can_rest) {
            return Err(RejectReason::InvalidPostOnly);
        }
        if o.tif == TimeInForce::Gtd && o.expire_ns <= self.now_ns {
            return Err(RejectReason::ExpireTimeInPast);
        }
        let notional = book.notional_nanos(self.notional_price(book, o)?, o.qty_lots);
        if notional > book.spec.max_notional_nanos {
            return Err(RejectReason::NotionalAboveMax);
        }
        if notional > acc.spec.limits.max_order_notional_nanos {
            return Err(RejectReason::AccountMaxOrderNotional);
        }
        let is_stop = matches!(o.ord_type, OrdType::Stop | OrdType::StopLimit);
        if can_rest || is_stop {
            open_limits(acc, o.side, notional)?;
        }
        if self.index.find_client_hashed(&self.orders, client_hash, o.account.0, &o.cl_ord_id).is_some() {
            return Err(RejectReason::DuplicateClOrdId);
        }
        if o.post_only
            && let Some(best) = book.ladder(o.side.opposite(), false).best()
            && crosses(o.side, o.price_ticks, best.price_ticks)
        {
            return Err(RejectReason::WouldTakeLiquidity);
        }
        if self.orders.live() >= self.orders.capacity() {
            return Err(RejectReason::OrderCapacity);
        }
        let level_needed = if is_stop {
            self.level_unavailable(book, o.side, true, o.stop_ticks)
        } else {
            can_rest && self.level_unavailable(book, o.side, false, o.price_ticks)
        };
        if level_needed {
            return Err(RejectReason::LevelCapacity);
        }
        Ok((bi, client_hash))
    }

    /// The price a new order's notional is checked at: its limit price, a stop-market order's
    /// stop, a market order's band edge (or, with no band, the furthest price a sweep reaches).
    /// Always inlined: LLVM left it out of line, and the call added instructions to every new
    /// order (measured with cachegrind; numbers in the commit that split `validate_new`).
    #[inline(always)]
    fn notional_price(&self, book: &Book, o: &NewOrder) -> Result<i64, RejectReason> {
        Ok(match o.ord_type {
            OrdType::Limit => {
                if !book.in_band(o.price_ticks) {
                    return Err(RejectReason::PriceOutsideBand);
                }
                o.price_ticks
            }
            OrdType::Market => {
                if book.spec.band_bps > 0 && book.reference_ticks().is_none() {
                    return Err(RejectReason::NoReferencePrice);
                }
                match book.band() {
                    Some((lo, hi)) => {
                        if o.side == Side::Buy {
                            hi
                        } else {
                            lo
                        }
                    }
                    None => book.unbounded_sweep_ticks(o.side, &self.levels),
                }
            }
            OrdType::Stop => o.stop_ticks,
            OrdType::StopLimit => o.price_ticks,
        })
    }

    fn new_order(&mut self, o: &NewOrder, out: &mut impl EventSink) {
        let (bi, client_hash) = match self.validate_new(o) {
            Ok(v) => v,
            Err(reason) => {
                return reject(out, RequestKind::NewOrder, o.account, o.cl_ord_id, o.instrument, None, reason);
            }
        };
        if o.ord_type == OrdType::Limit && self.looks_ahead() {
            // In a small engine the tail is in cache and the extra level lookup only costs.
            self.prefetch_rest(bi, o.side, o.price_ticks);
        }
        let stp = o.stp.unwrap_or_else(|| self.account(o.account).expect("validated").spec.default_stp);
        let id = self.next_order_id;
        self.next_order_id += 1;
        let slot = self
            .orders
            .alloc(&OrderInit {
                id,
                account: o.account,
                cl_ord_id: o.cl_ord_id,
                instrument: o.instrument.0 as u16,
                side: o.side,
                ord_type: o.ord_type,
                tif: o.tif,
                price_ticks: if matches!(o.ord_type, OrdType::Limit | OrdType::StopLimit) { o.price_ticks } else { 0 },
                stop_ticks: if matches!(o.ord_type, OrdType::Stop | OrdType::StopLimit) { o.stop_ticks } else { 0 },
                qty_lots: o.qty_lots,
                display_lots: o.display_lots,
                post_only: o.post_only,
                stp,
            })
            .expect("capacity validated");
        if indexed(o.ord_type, o.tif) {
            self.index.insert_new(&self.orders, slot, client_hash);
        }
        out.push(Event::Accepted(self.orders.get(slot).view()));

        if matches!(o.ord_type, OrdType::Stop | OrdType::StopLimit) {
            self.orders.get_mut(slot).set_pending_stop(true);
            self.rest(bi, slot, out).expect("level capacity validated");
        } else {
            self.execute(bi, slot, out);
        }
        if o.tif == TimeInForce::Gtd && self.orders.get(slot).id == id && self.orders.get(slot).level != NIL {
            self.push_gtd(GtdEntry { expire_ns: o.expire_ns, seq: self.seq, order_id: id });
        }
        self.run_triggers(bi, out);
    }

    /// Runs an order as a taker: FOK check, sweep, then rest or cancel what is left.
    fn execute(&mut self, bi: usize, slot: Slot, out: &mut impl EventSink) {
        let o = *self.orders.get(slot);
        let limit = if o.is_marketable_type() {
            let book = self.books[bi].as_ref().expect("book exists");
            book.band().map(|(lo, hi)| if o.side() == Side::Buy { hi } else { lo })
        } else {
            Some(o.price_ticks)
        };
        if o.tif() == TimeInForce::Fok && self.fillable_lots(bi, slot, limit) < o.leaves_lots {
            return self.cancel_taker(slot, CancelReason::FokUnfilled, out);
        }
        if let Sweep::Gone = self.sweep(bi, slot, limit, out) {
            return;
        }
        let o = *self.orders.get(slot);
        if o.leaves_lots == 0 {
            self.release(slot);
        } else if o.may_rest() {
            if self.rest(bi, slot, out).is_err() {
                self.cancel_taker(slot, CancelReason::LevelCapacity, out);
            }
        } else {
            let reason = match o.tif() {
                _ if o.is_marketable_type() => CancelReason::MarketRemainder,
                TimeInForce::Fok => CancelReason::FokUnfilled,
                _ => CancelReason::IocRemainder,
            };
            self.cancel_taker(slot, reason, out);
        }
    }

    /// Quantity a FOK taker could fill right now, stopping where self-trade prevention would
    /// stop it. Within a level, an iceberg's refills queue behind everything present, so a
    /// blocking self order caps the level at the visible slices ahead of it.
    fn fillable_lots(&self, bi: usize, slot: Slot, limit: Option<i64>) -> u64 {
        let t = self.orders.get(slot);
        let group = self.stp_group(t.account);
        let mode = t.stp();
        let book = self.books[bi].as_ref().expect("book exists");
        let mut total: u64 = 0;
        for e in book.ladder(t.side().opposite(), false).iter_best_first(&self.levels) {
            if limit.is_some_and(|l| !crosses(t.side(), l, e.price_ticks)) || total >= t.leaves_lots {
                break;
            }
            let mut level_all: u64 = 0;
            let mut ahead_visible: u64 = 0;
            let mut cur = self.levels.get(e.level).head;
            while cur != NIL {
                let m = self.orders.get(cur);
                if mode != StpMode::Allow && self.stp_group(m.account) == group {
                    if mode != StpMode::CancelOldest {
                        return total.saturating_add(ahead_visible);
                    }
                } else {
                    level_all = level_all.saturating_add(m.leaves_lots);
                    ahead_visible = ahead_visible.saturating_add(m.visible_lots);
                }
                cur = m.next;
            }
            total = total.saturating_add(level_all);
        }
        total
    }

    /// Matches the taker against the opposite side while it crosses `limit` (`None`: any
    /// price). Trades happen at the resting price.
    fn sweep(&mut self, bi: usize, taker: Slot, limit: Option<i64>, out: &mut impl EventSink) -> Sweep {
        let t = *self.orders.get(taker);
        let side = t.side();
        let mode = t.stp();
        let group = self.stp_group(t.account);
        let instrument = InstrumentId(t.instrument as u32);
        loop {
            if self.orders.get(taker).leaves_lots == 0 {
                return Sweep::Live;
            }
            let book = self.books[bi].as_ref().expect("book exists");
            let Some(best) = book.ladder(side.opposite(), false).best() else { return Sweep::Live };
            if limit.is_some_and(|l| !crosses(side, l, best.price_ticks)) {
                return Sweep::Live;
            }
            let maker = self.levels.get(best.level).head;
            let m = *self.orders.get(maker);
            // The next maker in line, and the buckets this one leaves if the fill finishes it.
            self.orders.prefetch_links(m.next);
            if m.leaves_lots <= self.orders.get(taker).leaves_lots {
                self.index.prefetch_order(&self.orders, maker);
            }
            if mode != StpMode::Allow && self.stp_group(m.account) == group {
                match mode {
                    StpMode::CancelNewest => {
                        self.cancel_taker(taker, CancelReason::SelfTrade, out);
                        return Sweep::Gone;
                    }
                    StpMode::CancelOldest => {
                        self.cancel_resting(bi, maker, CancelReason::SelfTrade, m.cl_ord_id, out);
                        continue;
                    }
                    StpMode::CancelBoth => {
                        self.cancel_resting(bi, maker, CancelReason::SelfTrade, m.cl_ord_id, out);
                        self.cancel_taker(taker, CancelReason::SelfTrade, out);
                        return Sweep::Gone;
                    }
                    StpMode::DecrementAndCancel => {
                        if self.decrement(bi, taker, maker, out) {
                            return Sweep::Gone;
                        }
                        continue;
                    }
                    StpMode::Allow => unreachable!("checked above"),
                }
            }
            let qty = self.orders.get(taker).leaves_lots.min(m.visible_lots);
            self.fill(bi, taker, maker, best.level, best.price_ticks, qty, instrument, out);
        }
    }

    /// One trade of `qty_lots` at `price_ticks` between the taker and the head of `level`.
    #[allow(clippy::too_many_arguments)]
    fn fill(
        &mut self,
        bi: usize,
        taker: Slot,
        maker: Slot,
        level: Slot,
        price_ticks: i64,
        qty_lots: u64,
        instrument: InstrumentId,
        out: &mut impl EventSink,
    ) {
        let trade_id = TradeId(self.next_trade_id);
        self.next_trade_id += 1;
        {
            let m = self.orders.get_mut(maker);
            m.leaves_lots -= qty_lots;
            m.visible_lots -= qty_lots;
            m.add_cost(price_ticks, qty_lots);
        }
        self.levels.get_mut(level).visible_lots -= qty_lots;
        let t = self.orders.get_mut(taker);
        t.leaves_lots -= qty_lots;
        t.add_cost(price_ticks, qty_lots);
        let t = *t;
        let m = *self.orders.get(maker);
        let book = self.books[bi].as_mut().expect("book exists");
        book.last_trade_ticks = Some(price_ticks);
        let nanos = book.notional_nanos(price_ticks, qty_lots);
        let acc = self.account_mut(m.account);
        match m.side() {
            Side::Buy => acc.open_buy_nanos -= nanos,
            Side::Sell => acc.open_sell_nanos -= nanos,
        }
        let fill_of = |o: &crate::order::Order| Fill {
            order_id: OrderId(o.id),
            account: AccountId(o.account),
            cl_ord_id: o.cl_ord_id,
            leaves_lots: o.leaves_lots,
            cum_lots: o.cum_lots(),
            cum_cost: o.cum_cost(),
        };
        out.push(Event::Trade(Trade {
            trade_id,
            instrument,
            price_ticks,
            qty_lots,
            aggressor: t.side(),
            taker: fill_of(&t),
            maker: fill_of(&m),
        }));
        out.push(Event::Book(BookChange::Execute {
            instrument,
            order_id: OrderId(m.id),
            side: m.side(),
            price_ticks,
            qty_lots,
            trade_id,
        }));
        if m.visible_lots == 0 {
            self.after_slice_consumed(bi, maker, out);
        }
    }

    /// A resting order's visible slice reached zero: refill an iceberg at the back of its level
    /// or remove a finished order.
    fn after_slice_consumed(&mut self, bi: usize, maker: Slot, out: &mut impl EventSink) {
        let m = *self.orders.get(maker);
        if m.leaves_lots > 0 {
            // The order stays counted in its account; only its queue position changes.
            let (level, _) = self.levels.unlink(&mut self.orders, maker);
            let o = self.orders.get_mut(maker);
            o.visible_lots = visible_slice(o.display_lots, o.leaves_lots);
            self.levels.push_back(level, &mut self.orders, maker);
            let o = self.orders.get(maker);
            out.push(Event::Book(BookChange::Add {
                instrument: InstrumentId(o.instrument as u32),
                order_id: OrderId(o.id),
                side: o.side(),
                price_ticks: o.price_ticks,
                qty_lots: o.visible_lots,
            }));
        } else {
            self.unrest(bi, maker);
            self.release(maker);
        }
    }

    /// Self-trade decrement: both orders lose the overlap without a trade. Returns true if the
    /// taker is gone.
    fn decrement(&mut self, bi: usize, taker: Slot, maker: Slot, out: &mut impl EventSink) -> bool {
        let m = *self.orders.get(maker);
        let qty = self.orders.get(taker).leaves_lots.min(m.visible_lots);
        if qty == m.leaves_lots {
            self.cancel_resting(bi, maker, CancelReason::SelfTrade, m.cl_ord_id, out);
        } else {
            let book = self.books[bi].as_ref().expect("book exists");
            let nanos = book.notional_nanos(m.price_ticks, qty);
            let acc = self.account_mut(m.account);
            match m.side() {
                Side::Buy => acc.open_buy_nanos -= nanos,
                Side::Sell => acc.open_sell_nanos -= nanos,
            }
            let o = self.orders.get_mut(maker);
            o.leaves_lots -= qty;
            o.qty_lots -= qty;
            o.visible_lots -= qty;
            self.levels.get_mut(m.level).visible_lots -= qty;
            let o = *self.orders.get(maker);
            out.push(Event::Reduced { order: o.view(), reduced_lots: qty });
            if o.visible_lots == 0 {
                // An iceberg's slice is gone but its reserve is not: it leaves and re-enters.
                out.push(Event::Book(BookChange::Delete {
                    instrument: InstrumentId(o.instrument as u32),
                    order_id: OrderId(o.id),
                    side: o.side(),
                    price_ticks: o.price_ticks,
                }));
                self.after_slice_consumed(bi, maker, out);
            } else {
                out.push(Event::Book(BookChange::Modify {
                    instrument: InstrumentId(o.instrument as u32),
                    order_id: OrderId(o.id),
                    side: o.side(),
                    price_ticks: o.price_ticks,
                    qty_lots: o.visible_lots,
                }));
            }
        }
        let t = self.orders.get(taker);
        if t.leaves_lots == qty {
            self.cancel_taker(taker, CancelReason::SelfTrade, out);
            return true;
        }
        let t = self.orders.get_mut(taker);
        t.leaves_lots -= qty;
        t.qty_lots -= qty;
        out.push(Event::Reduced { order: t.view(), reduced_lots: qty });
        false
    }

    // ---------------------------------------------------------------- stops

    /// Triggers every stop whose condition holds, one at a time: buy stops (lowest stop first)
    /// before sell stops (highest first), FIFO within a stop price; each triggered order runs
    /// completely, and may move the last price, before the next check.
    #[inline]
    fn run_triggers(&mut self, bi: usize, out: &mut impl EventSink) {
        // Most books hold no stops: settle that without a call.
        let book = self.books[bi].as_ref().expect("book exists");
        if book.buy_stops.best().is_some() || book.sell_stops.best().is_some() {
            self.run_stop_triggers(bi, out);
        }
    }

    fn run_stop_triggers(&mut self, bi: usize, out: &mut impl EventSink) {
        loop {
            let book = self.books[bi].as_ref().expect("book exists");
            if !book.is_open() {
                return;
            }
            let Some(last) = book.last_trade_ticks else { return };
            let next = match (book.buy_stops.best(), book.sell_stops.best()) {
                (Some(e), _) if e.price_ticks <= last => e.level,
                (_, Some(e)) if e.price_ticks >= last => e.level,
                _ => return,
            };
            let slot = self.levels.get(next).head;
            self.trigger(bi, slot, out);
        }
    }

    fn trigger(&mut self, bi: usize, slot: Slot, out: &mut impl EventSink) {
        self.unrest(bi, slot);
        let o = self.orders.get_mut(slot);
        o.set_pending_stop(false);
        o.visible_lots = visible_slice(o.display_lots, o.leaves_lots);
        let o = *o;
        out.push(Event::Triggered(o.view()));
        let book = self.books[bi].as_ref().expect("book exists");
        if o.ord_type() == OrdType::StopLimit && !book.in_band(o.price_ticks) {
            return self.cancel_taker(slot, CancelReason::PriceOutsideBand, out);
        }
        self.execute(bi, slot, out);
    }

    // ---------------------------------------------------------------- cancel / replace

    fn cancel(&mut self, c: &Cancel, out: &mut impl EventSink) {
        let Some(slot) = self.find_order(c.account, c.order) else {
            return reject(
                out,
                RequestKind::Cancel,
                c.account,
                c.cl_ord_id,
                InstrumentId(0),
                None,
                RejectReason::UnknownOrder,
            );
        };
        self.prefetch_removal(slot);
        let bi = self.orders.get(slot).instrument as usize;
        self.cancel_resting(bi, slot, CancelReason::Requested, c.cl_ord_id, out);
    }

    /// Checks a replace; on success returns the order's current resting notional (which the
    /// replace then takes off its account).
    fn validate_replace(&self, r: &Replace, slot: Slot) -> Result<u128, RejectReason> {
        let o = self.orders.get(slot);
        let book = self.books[o.instrument as usize].as_ref().expect("live orders have books");
        let acc = self.account(AccountId(o.account)).expect("live orders have accounts");
        if !book.is_open() {
            return Err(RejectReason::InstrumentNotOpen);
        }
        if r.cl_ord_id != o.cl_ord_id && self.index.find_client(&self.orders, o.account, &r.cl_ord_id).is_some() {
            return Err(RejectReason::DuplicateClOrdId);
        }
        let old_open = self.resting_notional(book, slot);
        if r.qty_lots <= o.cum_lots() {
            return Ok(old_open); // replaced to or below the filled quantity: cancels
        }
        if r.qty_lots < book.spec.min_qty_lots {
            return Err(RejectReason::QtyBelowMin);
        }
        if r.qty_lots > book.spec.max_qty_lots {
            return Err(RejectReason::QtyAboveMax);
        }
        if r.qty_lots > acc.spec.limits.max_order_qty_lots {
            return Err(RejectReason::AccountMaxOrderQty);
        }
        if o.display_lots > r.qty_lots {
            return Err(RejectReason::InvalidDisplayQty);
        }
        let has_limit = matches!(o.ord_type(), OrdType::Limit | OrdType::StopLimit);
        let new_price = if has_limit { r.price_ticks } else { o.price_ticks };
        let new_stop = if o.pending_stop() { r.stop_ticks } else { o.stop_ticks };
        if !o.pending_stop() && new_price != o.price_ticks && !book.in_band(new_price) {
            return Err(RejectReason::PriceOutsideBand);
        }
        let notional_price = if o.pending_stop() && o.ord_type() == OrdType::Stop { new_stop } else { new_price };
        let notional = book.notional_nanos(notional_price, r.qty_lots);
        if notional > book.spec.max_notional_nanos {
            return Err(RejectReason::NotionalAboveMax);
        }
        if notional > acc.spec.limits.max_order_notional_nanos {
            return Err(RejectReason::AccountMaxOrderNotional);
        }
        let new_open = book.notional_nanos(notional_price, r.qty_lots - o.cum_lots());
        match o.side() {
            Side::Buy
                if (acc.open_buy_nanos - old_open).saturating_add(new_open)
                    > acc.spec.limits.max_open_buy_notional_nanos =>
            {
                return Err(RejectReason::AccountOpenBuyNotional);
            }
            Side::Sell
                if (acc.open_sell_nanos - old_open).saturating_add(new_open)
                    > acc.spec.limits.max_open_sell_notional_nanos =>
            {
                return Err(RejectReason::AccountOpenSellNotional);
            }
            _ => {}
        }
        if o.post_only()
            && let Some(best) = book.ladder(o.side().opposite(), false).best()
            && crosses(o.side(), new_price, best.price_ticks)
        {
            return Err(RejectReason::WouldTakeLiquidity);
        }
        let key_price = if o.pending_stop() { new_stop } else { new_price };
        let old_key = if o.pending_stop() { o.stop_ticks } else { o.price_ticks };
        if key_price != old_key && self.level_unavailable(book, o.side(), o.pending_stop(), key_price) {
            // The old level may free up when the order leaves it, but do not count on it.
            return Err(RejectReason::LevelCapacity);
        }
        Ok(old_open)
    }

    fn replace(&mut self, r: &Replace, out: &mut impl EventSink) {
        let Some(slot) = self.find_order(r.account, r.order) else {
            return reject(
                out,
                RequestKind::Replace,
                r.account,
                r.cl_ord_id,
                InstrumentId(0),
                None,
                RejectReason::UnknownOrder,
            );
        };
        let o = *self.orders.get(slot);
        let bi = o.instrument as usize;
        let old_open = match self.validate_replace(r, slot) {
            Ok(n) => n,
            Err(reason) => {
                // The order stays as it was; the reject says what it is (FIX OrdStatus).
                return out.push(Event::Rejected(Reject {
                    request: RequestKind::Replace,
                    account: r.account,
                    cl_ord_id: r.cl_ord_id,
                    instrument: InstrumentId(o.instrument as u32),
                    order_id: Some(OrderId(o.id)),
                    order_cum_lots: o.cum_lots(),
                    reason,
                }));
            }
        };
        if r.qty_lots <= o.cum_lots() {
            return self.cancel_resting(bi, slot, CancelReason::ReplacedToFilled, r.cl_ord_id, out);
        }
        let stops = o.pending_stop();
        let new_price =
            if matches!(o.ord_type(), OrdType::Limit | OrdType::StopLimit) { r.price_ticks } else { o.price_ticks };
        let new_stop = if stops { r.stop_ticks } else { o.stop_ticks };
        let same_key =
            if stops { new_stop == o.stop_ticks && new_price == o.price_ticks } else { new_price == o.price_ticks };
        let new_leaves = r.qty_lots - o.cum_lots();
        if r.cl_ord_id != o.cl_ord_id {
            self.index.remove_client(&self.orders, slot);
            self.orders.get_mut(slot).cl_ord_id = r.cl_ord_id;
            self.index.insert_client(&self.orders, slot);
        }
        if same_key && r.qty_lots <= o.qty_lots {
            self.reduce_in_place(bi, slot, r.qty_lots, new_leaves, o.cl_ord_id, out);
            return;
        }
        self.unrest_notional(bi, slot, old_open);
        self.reenter_replaced(bi, slot, &o, r.qty_lots, (new_price, new_stop), out);
    }

    /// A replace that loses time priority: the order `o` (as it was) takes its new terms
    /// (`qty_lots`, `(price_ticks, stop_ticks)`), leaves its level and re-enters, matching
    /// first if it now crosses.
    fn reenter_replaced(
        &mut self,
        bi: usize,
        slot: Slot,
        o: &Order,
        qty_lots: u64,
        (new_price, new_stop): (i64, i64),
        out: &mut impl EventSink,
    ) {
        let stops = o.pending_stop();
        let new_leaves = qty_lots - o.cum_lots();
        let n = self.orders.get_mut(slot);
        n.price_ticks = new_price;
        n.stop_ticks = new_stop;
        n.qty_lots = qty_lots;
        n.leaves_lots = new_leaves;
        n.visible_lots = visible_slice(n.display_lots, new_leaves);
        out.push(Event::Replaced { order: n.view(), orig_cl_ord_id: o.cl_ord_id, priority_kept: false });
        if !stops {
            out.push(Event::Book(BookChange::Delete {
                instrument: InstrumentId(o.instrument as u32),
                order_id: OrderId(o.id),
                side: o.side(),
                price_ticks: o.price_ticks,
            }));
        }
        let book = self.books[bi].as_ref().expect("book exists");
        if stops {
            self.rest(bi, slot, out).expect("level capacity validated");
        } else if book
            .ladder(o.side().opposite(), false)
            .best()
            .is_some_and(|b| crosses(o.side(), new_price, b.price_ticks))
        {
            self.execute(bi, slot, out);
        } else if self.rest(bi, slot, out).is_err() {
            // The common amend: nothing to match, so straight back into the book, which is what
            // `execute` concludes after looking (a resting order is never FOK, never marketable).
            self.cancel_taker(slot, CancelReason::LevelCapacity, out);
        }
        self.run_triggers(bi, out);
    }

    /// A replace that only lowers the quantity keeps time priority.
    fn reduce_in_place(
        &mut self,
        bi: usize,
        slot: Slot,
        qty_lots: u64,
        leaves_lots: u64,
        orig: ClOrdId,
        out: &mut impl EventSink,
    ) {
        let book = self.books[bi].as_ref().expect("book exists");
        let before = self.resting_notional(book, slot);
        let o = self.orders.get_mut(slot);
        let old_visible = o.visible_lots;
        o.qty_lots = qty_lots;
        o.leaves_lots = leaves_lots;
        o.visible_lots = o.visible_lots.min(leaves_lots);
        let o = *o;
        self.levels.get_mut(o.level).visible_lots -= old_visible - o.visible_lots;
        let after = self.resting_notional(book, slot);
        let acc = self.account_mut(o.account);
        match o.side() {
            Side::Buy => acc.open_buy_nanos = acc.open_buy_nanos - before + after,
            Side::Sell => acc.open_sell_nanos = acc.open_sell_nanos - before + after,
        }
        out.push(Event::Replaced { order: o.view(), orig_cl_ord_id: orig, priority_kept: true });
        if !o.pending_stop() && o.visible_lots != old_visible {
            out.push(Event::Book(BookChange::Modify {
                instrument: InstrumentId(o.instrument as u32),
                order_id: OrderId(o.id),
                side: o.side(),
                price_ticks: o.price_ticks,
                qty_lots: o.visible_lots,
            }));
        }
    }

    fn order_status(&mut self, account: AccountId, order: OrderRef, out: &mut impl EventSink) {
        match self.find_order(account, order) {
            Some(slot) => out.push(Event::Status(self.orders.get(slot).view())),
            None => {
                let cl = match order {
                    OrderRef::Client(c) => c,
                    OrderRef::Id(_) => ClOrdId::default(),
                };
                reject(out, RequestKind::OrderStatus, account, cl, InstrumentId(0), None, RejectReason::UnknownOrder);
            }
        }
    }

    // ---------------------------------------------------------------- bulk

    /// Visits the resting orders of one book in a fixed order (bids, asks, buy stops, sell
    /// stops; each best level first, FIFO within a level) and removes those `pick` selects
    /// with `remove`. Returns how many were removed.
    pub(crate) fn sweep_book(
        &mut self,
        bi: usize,
        pick: impl Fn(&crate::order::Order) -> bool,
        mut remove: impl FnMut(&mut Self, Slot),
    ) -> u32 {
        let mut count = 0;
        for (side, stops) in [(Side::Buy, false), (Side::Sell, false), (Side::Buy, true), (Side::Sell, true)] {
            // Best (last entry) first, skipping tombstones. Removing orders only empties levels
            // or pops them off the end, so the entries below the current one keep their indexes.
            let mut i = self.books[bi].as_ref().expect("book exists").ladder(side, stops).entry_count();
            while i > 0 {
                i -= 1;
                let ladder = self.books[bi].as_ref().expect("book exists").ladder(side, stops);
                if i >= ladder.entry_count() || self.levels.get(ladder.entry(i).level).count == 0 {
                    continue;
                }
                let mut cur = self.levels.get(ladder.entry(i).level).head;
                while cur != NIL {
                    let o = *self.orders.get(cur);
                    if pick(&o) {
                        remove(self, cur);
                        count += 1;
                    }
                    cur = o.next;
                }
            }
        }
        count
    }

    pub(crate) fn books_in(&self, instrument: Option<InstrumentId>) -> std::ops::Range<usize> {
        match instrument {
            Some(i) => i.0 as usize..i.0 as usize + 1,
            None => 0..self.books.len(),
        }
    }

    fn mass_cancel(&mut self, m: &MassCancel, out: &mut impl EventSink) {
        let (account, instrument) = match m.target {
            MassCancelTarget::Account(a, i) => (Some(a), i),
            MassCancelTarget::Instrument(i) => (None, Some(i)),
            MassCancelTarget::All => (None, None),
        };
        let bad = if account.is_some_and(|a| self.account(a).is_none()) {
            Some(RejectReason::UnknownAccount)
        } else if instrument.is_some_and(|i| self.book_index(i).is_none()) {
            Some(RejectReason::UnknownInstrument)
        } else {
            None
        };
        if let Some(reason) = bad {
            let inst = instrument.unwrap_or_default();
            return reject(out, RequestKind::MassCancel, m.account, m.cl_ord_id, inst, None, reason);
        }
        let mut cancelled = 0;
        for bi in self.books_in(instrument) {
            if self.books[bi].is_none() {
                continue;
            }
            cancelled += self.sweep_book(
                bi,
                |o| account.is_none_or(|a| o.account == a.0),
                |e, slot| e.cancel_resting(bi, slot, CancelReason::MassCancel, m.cl_ord_id, out),
            );
        }
        out.push(Event::MassCancelled { account: m.account, cl_ord_id: m.cl_ord_id, target: m.target, cancelled });
    }

    fn end_of_day(&mut self, instrument: Option<InstrumentId>, out: &mut impl EventSink) {
        if let Some(i) = instrument
            && self.book_index(i).is_none()
        {
            return admin_reject(out, i, RejectReason::UnknownInstrument);
        }
        for bi in self.books_in(instrument) {
            if self.books[bi].is_some() {
                self.sweep_book(
                    bi,
                    |o| o.tif() == TimeInForce::Day,
                    |e, slot| e.expire_resting(bi, slot, ExpireReason::Day, out),
                );
            }
        }
    }

    fn push_gtd(&mut self, entry: GtdEntry) {
        if self.gtd.len() == self.gtd.capacity() {
            let (orders, index) = (&self.orders, &self.index);
            self.gtd.retain(|Reverse(e)| index.find_id(orders, e.order_id).is_some());
        }
        assert!(self.gtd.len() < self.gtd.capacity(), "GTD queue holds at most one entry per live order");
        self.gtd.push(Reverse(entry));
    }

    fn expire_gtd(&mut self, out: &mut impl EventSink) {
        while let Some(Reverse(top)) = self.gtd.peek().copied() {
            if top.expire_ns > self.now_ns {
                return;
            }
            self.gtd.pop();
            if let Some(slot) = self.index.find_id(&self.orders, top.order_id) {
                let bi = self.orders.get(slot).instrument as usize;
                self.expire_resting(bi, slot, ExpireReason::Gtd, out);
            }
        }
    }

    // ---------------------------------------------------------------- administration

    fn add_instrument(&mut self, spec: &InstrumentSpec, out: &mut impl EventSink) {
        let i = spec.id.0 as usize;
        if i >= self.books.len() {
            return admin_reject(out, spec.id, RejectReason::IdOutOfRange);
        }
        if self.books[i].is_some() {
            return admin_reject(out, spec.id, RejectReason::InstrumentExists);
        }
        let (Ok(()), Some(tln)) = (spec.validate(), spec.tick_lot_nanos()) else {
            return admin_reject(out, spec.id, RejectReason::InvalidSpec);
        };
        self.books[i] = Some(Book::new(*spec, tln, self.limits.max_levels_per_side));
        out.push(Event::Instrument { instrument: spec.id, status: Some(spec.status) });
    }

    fn update_instrument(&mut self, spec: &InstrumentSpec, out: &mut impl EventSink) {
        let Some(bi) = self.book_index(spec.id) else {
            return admin_reject(out, spec.id, RejectReason::UnknownInstrument);
        };
        let (Ok(()), Some(tln)) = (spec.validate(), spec.tick_lot_nanos()) else {
            return admin_reject(out, spec.id, RejectReason::InvalidSpec);
        };
        let book = self.books[bi].as_mut().expect("book exists");
        let grid_changed = book.spec.tick_size != spec.tick_size || book.spec.lot_size != spec.lot_size;
        if grid_changed && !book.is_empty() {
            return admin_reject(out, spec.id, RejectReason::InstrumentHasOrders);
        }
        book.spec = *spec;
        book.tick_lot_nanos = tln;
        out.push(Event::Instrument { instrument: spec.id, status: Some(spec.status) });
    }

    fn configure_instrument(&mut self, spec: &InstrumentSpec, out: &mut impl EventSink) {
        match self.instrument(spec.id) {
            None => self.add_instrument(spec, out),
            Some(current) => {
                let kept = InstrumentSpec { status: current.status, ..*spec };
                self.update_instrument(&kept, out);
            }
        }
    }

    fn set_status(&mut self, instrument: InstrumentId, status: TradingStatus, out: &mut impl EventSink) {
        let Some(bi) = self.book_index(instrument) else {
            return admin_reject(out, instrument, RejectReason::UnknownInstrument);
        };
        self.books[bi].as_mut().expect("book exists").spec.status = status;
        out.push(Event::Instrument { instrument, status: Some(status) });
    }

    fn remove_instrument(&mut self, instrument: InstrumentId, out: &mut impl EventSink) {
        let Some(bi) = self.book_index(instrument) else {
            return admin_reject(out, instrument, RejectReason::UnknownInstrument);
        };
        if !self.books[bi].as_ref().expect("book exists").is_empty() {
            return admin_reject(out, instrument, RejectReason::InstrumentHasOrders);
        }
        self.books[bi] = None;
        out.push(Event::Instrument { instrument, status: None });
    }

    fn upsert_account(&mut self, spec: &AccountSpec, out: &mut impl EventSink) {
        let Some(entry) = self.accounts.get_mut(spec.account.0 as usize) else {
            return reject(
                out,
                RequestKind::Admin,
                spec.account,
                ClOrdId::default(),
                InstrumentId(0),
                None,
                RejectReason::IdOutOfRange,
            );
        };
        match entry {
            Some(a) => a.spec = *spec,
            None => {
                *entry =
                    Some(Account { spec: *spec, open_orders: 0, open_buy_nanos: 0, open_sell_nanos: 0, killed: false })
            }
        }
        out.push(Event::Account(spec.account));
    }
}
