//! The feed after a restart or a promotion: the journal replayed through a scratch engine
//! into the same [`FeedSession`] the live feed uses, discarding the packets. The session
//! name, the next sequence number, the retained history and the book the feed shows come out
//! exactly as a primary that never stopped has them, because all of them are a function of
//! the journal's commands alone (their events, sequence numbers and timestamps).
//!
//! This needs the journal from its first command. When older segments were archived, the feed
//! starts from the restored engine instead (the newest snapshot the journal continues, then
//! the journal): its session names end in [`RESEEDED_SUFFIX`] so subscribers see a new
//! session rather than numbers that might not match the old one.

use engine::{Command, Engine, EngineLimits, Event, InstrumentSpec, OrderView, Side};
use journal::{Journal, Storage};

use crate::feed::session::FeedSession;

/// Session name suffix of a feed rebuilt from the whole journal.
pub const SUFFIX: [u8; 2] = *b"SB";
/// Session name suffix of a feed started from a snapshot (the journal no longer starts at 1).
pub const RESEEDED_SUFFIX: [u8; 2] = *b"RS";

/// Why the feed could not be rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// Reading the journal failed.
    #[error("journal: {0}")]
    Journal(#[from] journal::JournalError),
    /// A record is not a command the engine applies.
    #[error("journal record {seq}: {reason}")]
    BadRecord {
        /// The record.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Replays the whole journal (it starts at seq 1) into `session` through a fresh engine,
/// handing the packets it would have sent to `send` (the start-up rebuild discards them; a
/// test compares them with what a subscriber received). Returns the commands replayed.
pub fn replay<S: Storage>(
    journal: &Journal<S>,
    limits: EngineLimits,
    session: &mut FeedSession,
    send: &mut impl FnMut(&[u8]),
) -> Result<u64, RebuildError> {
    let mut engine = Engine::new(scratch_limits(limits, journal.next_seq().saturating_sub(journal.first_seq())));
    let mut events: Vec<Event> = Vec::with_capacity(1024);
    let mut n = 0;
    for rec in journal.read_from(1)? {
        let rec = rec?;
        let bad = |reason: String| RebuildError::BadRecord { seq: rec.seq, reason };
        let cmd = Command::decode(rec.body).map_err(|e| bad(e.to_string()))?;
        events.clear();
        engine.apply(&cmd, &mut events).map_err(|e| bad(e.to_string()))?;
        session.command(cmd.seq, cmd.ts_ns, &cmd.body, &events, send);
        n += 1;
    }
    session.flush(send);
    Ok(n)
}

/// The replay engine's capacities for a journal of `records`: a record adds at most one order
/// and one price level (a replace one more for a moment), so tables larger than the records
/// plus that margin are never reached, and the engine emits exactly what one of the
/// configured size does, including its "book full" rejects when the configured size is the
/// smaller. Building a full-size engine costs tens of milliseconds on every start and
/// promotion; this one costs what the journal holds.
fn scratch_limits(limits: EngineLimits, records: u64) -> EngineLimits {
    let room = u32::try_from(records.saturating_add(SCRATCH_MARGIN)).unwrap_or(u32::MAX);
    EngineLimits {
        max_orders: limits.max_orders.min(room),
        max_levels: limits.max_levels.min(room),
        max_levels_per_side: limits.max_levels_per_side.min(room),
        ..limits
    }
}

/// Orders and levels the replay engine holds beyond the journal's record count.
const SCRATCH_MARGIN: u64 = 2;

/// Seeds `session` with what a restored engine shows (the journal does not reach back to 1):
/// every instrument's directory entry and every resting order's visible slice, as the opening
/// of the next session. Iceberg slices are estimated from the display quantity.
pub fn seed(engine: &Engine, session: &mut FeedSession) {
    let ids: Vec<_> = engine.instrument_ids().collect();
    let t = session.translator_mut();
    for id in ids {
        let Some(spec): Option<&InstrumentSpec> = engine.instrument(id) else { continue };
        t.seed_instrument(spec);
        for side in [Side::Buy, Side::Sell] {
            for v in engine.orders_in_priority(id, side, false) {
                let v: OrderView = v;
                let visible = if v.display_lots == 0 { v.leaves_lots } else { v.display_lots.min(v.leaves_lots) };
                t.seed_order(&v, visible);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use engine::{
        AccountId, AccountSpec, Cancel, ClOrdId, CommandBody, InstrumentId, NewOrder, OrderId, OrderRef, Replace,
        RiskLimits, StpMode, Symbol, TradingStatus,
    };
    use rust_decimal::Decimal;

    use super::*;

    /// A deterministic flow of orders, crosses, cancels and replaces over many price levels.
    fn flow(n: u64) -> Vec<CommandBody> {
        let spec = InstrumentSpec {
            id: InstrumentId(1),
            symbol: Symbol::new("T").expect("symbol"),
            tick_size: Decimal::ONE,
            lot_size: Decimal::ONE,
            min_qty_lots: 1,
            max_qty_lots: 1_000,
            max_notional_nanos: u128::MAX,
            band_bps: 0,
            reference_ticks: None,
            status: TradingStatus::Open,
        };
        let account = AccountSpec {
            account: AccountId(1),
            stp_group: 1,
            default_stp: StpMode::Allow,
            limits: RiskLimits::UNLIMITED,
        };
        let mut out = vec![CommandBody::AddInstrument(spec), CommandBody::UpsertAccount(account)];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = i + 1;
            let side = if x & 1 == 0 { Side::Buy } else { Side::Sell };
            let price = 1_000 + (x >> 8) as i64 % 60 - 30;
            let order = OrderRef::Id(OrderId(1 + (x >> 20) % id));
            out.push(match (x >> 40) % 5 {
                0 => CommandBody::Cancel(Cancel { account: AccountId(1), order, cl_ord_id: ClOrdId::from_u64(id) }),
                1 => CommandBody::Replace(Replace {
                    account: AccountId(1),
                    order,
                    cl_ord_id: ClOrdId::from_u64(id),
                    price_ticks: price,
                    stop_ticks: 0,
                    qty_lots: 1 + (x >> 50) % 9,
                }),
                _ => CommandBody::NewOrder(NewOrder::limit(
                    AccountId(1),
                    ClOrdId::from_u64(id),
                    InstrumentId(1),
                    side,
                    price,
                    1 + (x >> 50) % 9,
                )),
            });
        }
        out
    }

    fn events(limits: EngineLimits, flow: &[CommandBody]) -> Vec<Event> {
        let mut engine = Engine::new(limits);
        let mut all = Vec::new();
        for (i, body) in flow.iter().enumerate() {
            let seq = i as u64 + 1;
            engine.apply(&Command { seq, ts_ns: seq, body: *body }, &mut all).expect("applies");
        }
        all
    }

    #[test]
    fn the_scratch_engine_emits_what_the_configured_one_does() {
        let flow = flow(3_000);
        let records = flow.len() as u64;
        // Larger than the journal (the scratch engine is smaller), and smaller (book-full and
        // level rejects happen in both alike).
        let large = EngineLimits { max_orders: 1 << 16, max_levels: 1 << 14, ..EngineLimits::SMALL };
        let small = EngineLimits { max_orders: 40, max_levels: 20, max_levels_per_side: 12, ..EngineLimits::SMALL };
        for limits in [large, small] {
            let scratch = scratch_limits(limits, records);
            assert!(scratch.max_orders <= limits.max_orders && scratch.max_orders as u64 <= records + SCRATCH_MARGIN);
            assert_eq!(events(scratch, &flow), events(limits, &flow), "limits {limits:?}");
        }
        let rejects = events(small, &flow).iter().filter(|e| matches!(e, Event::Rejected(_))).count();
        assert!(rejects > 0, "the small configuration must reach its capacity in this flow");
    }

    #[test]
    fn a_journal_of_only_resting_orders_fills_the_scratch_engine_without_a_reject() {
        // Every record after the set-up rests at a price of its own: orders and levels reach the
        // record count, the most a journal can ask of the scratch engine.
        let mut flow = flow(0);
        flow.extend((0..2_000u64).map(|i| {
            CommandBody::NewOrder(NewOrder::limit(
                AccountId(1),
                ClOrdId::from_u64(i + 1),
                InstrumentId(1),
                Side::Buy,
                10_000 - i as i64,
                1,
            ))
        }));
        let limits = EngineLimits {
            max_orders: 1 << 16,
            max_levels: 1 << 14,
            max_levels_per_side: 1 << 14,
            ..EngineLimits::SMALL
        };
        let scratch = scratch_limits(limits, flow.len() as u64);
        let got = events(scratch, &flow);
        assert!(!got.iter().any(|e| matches!(e, Event::Rejected(_))), "the scratch engine ran out of room");
        assert_eq!(got, events(limits, &flow));
    }
}
