//! Full-state image: [`Engine::save`], [`Engine::load`] and [`Engine::state_hash`].
//!
//! The image is the engine's *logical* state in a canonical order — counters, accounts, every
//! book level by level in priority order with each order's full record, and the GTD queue
//! sorted — never memory layout (pool slots, free lists, hash buckets). Two engines that
//! processed the same commands have the same image whatever their slot history, a loaded engine
//! saves the identical image, and `state_hash` is the xxh3 of that image.

use std::cmp::Reverse;

use serde::{Deserialize, Serialize};

use crate::account::StpMode;
use crate::book::Book;
use crate::command::Side;
use crate::engine::{Account, Engine, GtdEntry};
use crate::event::OrderView;
use crate::ids::InstrumentId;
use crate::instrument::InstrumentSpec;
use crate::limits::{EngineLimits, LimitsError};
use crate::order::{NIL, Order, Slot};

/// Version of the image format; bumped on any change of the layout below.
pub const STATE_FORMAT_VERSION: u32 = 2;

#[derive(Serialize, Deserialize)]
struct OrderImage {
    view: OrderView,
    visible_lots: u64,
    post_only: bool,
    stp: StpMode,
}

#[derive(Serialize, Deserialize)]
struct BookImage {
    spec: InstrumentSpec,
    last_trade_ticks: Option<i64>,
    /// bids, asks, buy stops, sell stops; each best level first, orders in queue order.
    ladders: [Vec<Vec<OrderImage>>; 4],
}

#[derive(Serialize, Deserialize)]
struct Image {
    version: u32,
    limits: EngineLimits,
    seq: u64,
    now_ns: u64,
    next_order_id: u64,
    next_trade_id: u64,
    accounts: Vec<Account>,
    books: Vec<BookImage>,
    gtd: Vec<GtdEntry>,
    killed_sessions: Vec<u64>,
    operator_commands: u64,
}

const LADDERS: [(Side, bool); 4] = [(Side::Buy, false), (Side::Sell, false), (Side::Buy, true), (Side::Sell, true)];

/// Why an image could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not an image.
    #[error("malformed engine image: {0}")]
    Malformed(#[from] postcard::Error),
    /// Written by another format version.
    #[error("engine image version {found}, this build reads {expected}")]
    Version {
        /// Version in the image.
        found: u32,
        /// Version this build understands.
        expected: u32,
    },
    /// The image's capacities are out of the engine's range ([`EngineLimits::validate`]).
    #[error("engine image capacities: {0}")]
    Limits(#[from] LimitsError),
    /// The image decodes but violates an invariant (for example more orders than capacity).
    #[error("inconsistent engine image: {0}")]
    Inconsistent(String),
}

impl Engine {
    fn image(&self) -> Image {
        let books = self
            .books
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.as_ref().map(|b| (i, b)))
            .map(|(i, b)| BookImage {
                spec: b.spec,
                last_trade_ticks: b.last_trade_ticks,
                ladders: LADDERS.map(|(side, stops)| {
                    b.ladder(side, stops)
                        .iter_best_first(&self.levels)
                        .map(|e| {
                            let mut level = Vec::new();
                            let mut cur = self.levels.get(e.level).head;
                            while cur != NIL {
                                let o = self.orders.get(cur);
                                level.push(OrderImage {
                                    view: o.view(),
                                    visible_lots: o.visible_lots,
                                    post_only: o.post_only(),
                                    stp: o.stp(),
                                });
                                cur = o.next;
                            }
                            debug_assert!(!level.is_empty(), "instrument {i}: empty level on a ladder");
                            level
                        })
                        .collect()
                }),
            })
            .collect();
        let mut gtd: Vec<GtdEntry> = self
            .gtd
            .iter()
            .map(|Reverse(e)| *e)
            .filter(|e| self.index.find_id(&self.orders, e.order_id).is_some())
            .collect();
        gtd.sort_unstable();
        Image {
            version: STATE_FORMAT_VERSION,
            limits: self.limits,
            seq: self.seq,
            now_ns: self.now_ns,
            next_order_id: self.next_order_id,
            next_trade_id: self.next_trade_id,
            accounts: self.accounts.iter().flatten().copied().collect(),
            books,
            gtd,
            killed_sessions: self.killed_sessions.clone(),
            operator_commands: self.operator_commands,
        }
    }

    /// Serializes the complete state.
    pub fn save(&self) -> Vec<u8> {
        postcard::to_allocvec(&self.image()).expect("serializing to memory cannot fail")
    }

    /// Hash of the complete logical state (xxh3-64 of [`Engine::save`]'s image): equal for
    /// engines that applied the same commands, on any machine.
    pub fn state_hash(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&self.save())
    }

    /// Rebuilds an engine from [`Engine::save`]'s bytes, checking every invariant.
    pub fn load(bytes: &[u8]) -> Result<Engine, LoadError> {
        let image: Image = postcard::from_bytes(bytes)?;
        if image.version != STATE_FORMAT_VERSION {
            return Err(LoadError::Version { found: image.version, expected: STATE_FORMAT_VERSION });
        }
        let bad = |m: String| LoadError::Inconsistent(m);
        image.limits.validate()?;
        let mut e = Engine::new(image.limits);
        e.seq = image.seq;
        e.now_ns = image.now_ns;
        e.next_order_id = image.next_order_id;
        e.next_trade_id = image.next_trade_id;
        for a in image.accounts {
            let slot =
                e.accounts.get_mut(a.spec.account.0 as usize).ok_or_else(|| bad("account id out of range".into()))?;
            *slot = Some(a);
        }
        for b in image.books {
            let i = b.spec.id.0 as usize;
            if i >= e.books.len() {
                return Err(bad(format!("instrument {i} out of range")));
            }
            let tln = b.spec.tick_lot_nanos().ok_or_else(|| bad(format!("instrument {i}: bad spec")))?;
            let mut book = Book::new(b.spec, tln, e.limits.max_levels_per_side);
            book.last_trade_ticks = b.last_trade_ticks;
            for ((side, stops), levels) in LADDERS.into_iter().zip(b.ladders) {
                // Levels are imaged best first; the ladder is built worst first.
                for orders in levels.into_iter().rev() {
                    let first = orders.first().ok_or_else(|| bad(format!("instrument {i}: empty level")))?;
                    let price = if stops { first.view.stop_ticks } else { first.view.price_ticks };
                    let level = e.levels.alloc(price).ok_or_else(|| bad("level capacity".into()))?;
                    book.ladder_mut(side, stops)
                        .push_best(price, level)
                        .map_err(|()| bad(format!("instrument {i}: levels out of order or too many")))?;
                    for oi in orders {
                        let key = if stops { oi.view.stop_ticks } else { oi.view.price_ticks };
                        if oi.view.side != side || oi.view.instrument != InstrumentId(i as u32) || key != price {
                            return Err(bad(format!("order {} misplaced", oi.view.id.0)));
                        }
                        let mut o = Order::from_view(&oi.view, oi.visible_lots, oi.post_only, oi.stp);
                        o.set_pending_stop(stops);
                        let slot = e.orders.place(o).ok_or_else(|| bad("order capacity".into()))?;
                        e.levels.push_back(level, &mut e.orders, slot);
                        e.index.insert(&e.orders, slot);
                    }
                }
            }
            e.books[i] = Some(book);
        }
        for g in image.gtd {
            e.gtd.push(Reverse(g));
        }
        if image.killed_sessions.len() > crate::limits::MAX_KILLED_SESSIONS
            || !image.killed_sessions.is_sorted_by(|a, b| a < b)
        {
            return Err(bad("killed sessions: too many or not strictly ascending".into()));
        }
        e.killed_sessions.extend_from_slice(&image.killed_sessions);
        e.operator_commands = image.operator_commands;
        e.check_invariants().map_err(LoadError::Inconsistent)?;
        Ok(e)
    }

    /// Verifies the engine's internal consistency: books never crossed, level totals and counts
    /// equal their orders, indexes and account counters agree with the live orders, ids below
    /// their counters. O(orders); for tests, snapshot loading and audits.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut live = 0u32;
        // Per account: live orders, live buy notional, live sell notional.
        let mut per_account: Vec<(u32, u128, u128)> = vec![(0, 0, 0); self.accounts.len()];
        for (i, b) in self.books.iter().enumerate() {
            let Some(b) = b else { continue };
            live += self.check_book(i, b, &mut per_account)?;
        }
        if live != self.orders.live() || self.index.len() != live as usize {
            return Err(format!(
                "{live} orders on books, pool says {}, index {}",
                self.orders.live(),
                self.index.len()
            ));
        }
        self.index.check(&self.orders)?;
        for (id, a) in self.accounts.iter().enumerate() {
            let expect = per_account[id];
            let got = a.map_or((0, 0, 0), |a| (a.open_orders, a.open_buy_nanos, a.open_sell_nanos));
            if expect != got {
                return Err(format!("account {id}: counters {got:?}, orders say {expect:?}"));
            }
        }
        Ok(())
    }

    /// [`Engine::check_invariants`] for instrument `i`'s book: not crossed, each ladder in
    /// order, each level consistent. Returns the book's live orders, adding them to
    /// `per_account`.
    fn check_book(&self, i: usize, b: &Book, per_account: &mut [(u32, u128, u128)]) -> Result<u32, String> {
        if let (Some(bid), Some(ask)) = (b.bids.best(), b.asks.best())
            && bid.price_ticks >= ask.price_ticks
        {
            return Err(format!("instrument {i} crossed: bid {} >= ask {}", bid.price_ticks, ask.price_ticks));
        }
        let mut live = 0u32;
        for (side, stops) in LADDERS {
            let ladder = b.ladder(side, stops);
            ladder.check(&self.levels).map_err(|e| format!("instrument {i}: {e}"))?;
            let mut prev: Option<i64> = None;
            for e in ladder.iter_best_first(&self.levels) {
                if prev.is_some_and(|p| !ladder.better(p, e.price_ticks)) {
                    return Err(format!("instrument {i}: ladder out of order at {}", e.price_ticks));
                }
                prev = Some(e.price_ticks);
                let l = self.levels.get(e.level);
                if l.price_ticks != e.price_ticks || l.count == 0 {
                    return Err(format!("instrument {i}: level {} inconsistent", e.price_ticks));
                }
                let (mut count, mut visible, mut cur, mut prev_slot) = (0u32, 0u64, l.head, NIL);
                while cur != NIL {
                    let o = self.orders.get(cur);
                    self.check_order(cur, o, (e.level, l.price_ticks), (side, stops), prev_slot)?;
                    let acc = per_account.get_mut(o.account as usize).ok_or("order of unknown account")?;
                    acc.0 += 1;
                    let price = if stops && o.ord_type() == crate::command::OrdType::Stop {
                        o.stop_ticks
                    } else {
                        o.price_ticks
                    };
                    let n = b.notional_nanos(price, o.leaves_lots);
                    match side {
                        Side::Buy => acc.1 += n,
                        Side::Sell => acc.2 += n,
                    }
                    count += 1;
                    visible += o.visible_lots;
                    prev_slot = cur;
                    cur = o.next;
                }
                if count != l.count || visible != l.visible_lots || prev_slot != l.tail {
                    return Err(format!("instrument {i}: level {} totals wrong", e.price_ticks));
                }
                live += count;
            }
        }
        Ok(live)
    }

    /// [`Engine::check_invariants`] for the order in `slot`, queued after `prev_slot` at
    /// `(level, price)` of the `(side, stops)` ladder: linked there, in a live state, below the
    /// id counter, indexed under its id and its client key.
    fn check_order(
        &self,
        slot: Slot,
        o: &Order,
        (level, price): (Slot, i64),
        (side, stops): (Side, bool),
        prev_slot: Slot,
    ) -> Result<(), String> {
        let key = if stops { o.stop_ticks } else { o.price_ticks };
        if o.level != level || o.prev != prev_slot || key != price || o.side() != side {
            return Err(format!("order {} badly linked", o.id));
        }
        if o.pending_stop() != stops || o.leaves_lots == 0 || o.leaves_lots > o.qty_lots {
            return Err(format!("order {} has bad state", o.id));
        }
        if o.visible_lots == 0 || o.visible_lots > o.leaves_lots {
            return Err(format!("order {} visible {} of {}", o.id, o.visible_lots, o.leaves_lots));
        }
        if o.id == 0 || o.id >= self.next_order_id {
            return Err(format!("order id {} beyond counter", o.id));
        }
        if self.index.find_id(&self.orders, o.id) != Some(slot)
            || self.index.find_client(&self.orders, o.account, &o.cl_ord_id) != Some(slot)
        {
            return Err(format!("order {} not indexed", o.id));
        }
        Ok(())
    }
}
