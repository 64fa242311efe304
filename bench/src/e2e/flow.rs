//! The order stream. Each connection repeats a cycle of ten orders on instrument 1 (`DEMO`,
//! tick 0.01, lot 1): eight GTC limit orders of one lot that rest (buys at 99.96..99.99, sells
//! at 100.01..100.04, alternating) and two IOC orders of four lots that cross (a buy at 100.10
//! and a sell at 99.90). Every IOC takes out at most as much as the cycle rested on the side it
//! hits, so the book stays a few levels deep however long the run: the matcher's work per order
//! stays constant, and acknowledgements include New, Trade and Canceled (IOC remainders).
//!
//! Orders are named by their global index `i` (`ClOrdId` = `i` in decimal); connection
//! `i % connections` sends order `i`, so the offered rate is spread evenly. [`shape`] says
//! what order `i` is; [`order`] writes it as SBE and [`fix_order`] as FIX 4.4, the same order.

use gateway::fix::frame::BEGIN_STRING;
use gateway::fix::writer::{WriteError, Writer};
use gateway::sbe::messages::{NewOrderSingle, OrdType, PRICE9_NULL, QTY4_NULL, SelfTradePrevention, Side, TimeInForce};

/// Orders in one cycle of a connection.
pub const CYCLE: u64 = 10;

/// Resting orders per cycle (the rest cross).
pub const RESTING_PER_CYCLE: u64 = 8;

/// `ClOrdId` width.
pub const CL_ORD_ID_LEN: usize = 20;

/// Price of `cents` hundredths as an SBE Price9.
const fn price9(cents: i64) -> i64 {
    cents * 10_000_000
}

/// One lot as an SBE Qty4 (lot size 1).
const QTY4_PER_LOT: u64 = 10_000;

/// `i` in decimal, NUL-padded.
#[inline]
pub fn cl_ord_id(i: u64) -> [u8; CL_ORD_ID_LEN] {
    let mut digits = [0u8; CL_ORD_ID_LEN];
    let mut n = i;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut out = [0u8; CL_ORD_ID_LEN];
    for k in 0..len {
        out[k] = digits[len - 1 - k];
    }
    out
}

/// Parses a `ClOrdId` written by [`cl_ord_id`]; `None` for anything else.
#[inline]
pub fn parse_cl_ord_id(field: &[u8; CL_ORD_ID_LEN]) -> Option<u64> {
    let mut n: u64 = 0;
    let mut len = 0;
    for &b in field {
        if b == 0 {
            break;
        }
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        len += 1;
    }
    (len > 0).then_some(n)
}

/// What order `i` of a connection's stream is, independent of the wire protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderShape {
    /// Buy or sell.
    pub side: Side,
    /// GTC (rests) or IOC (crosses).
    pub tif: TimeInForce,
    /// Limit price in hundredths (tick 0.01).
    pub price_cents: i64,
    /// Quantity in lots (lot size 1).
    pub qty_lots: u64,
}

/// The shape of order `i` of a run with `connections` connections.
#[inline]
pub fn shape(i: u64, connections: u64) -> OrderShape {
    let k = i / connections;
    let step = k % CYCLE;
    let (side, tif, price_cents, qty_lots) = match step {
        4 => (Side::Buy, TimeInForce::ImmediateOrCancel, 10_010, 4),
        9 => (Side::Sell, TimeInForce::ImmediateOrCancel, 9_990, 4),
        s => {
            // Steps 0..=3 and 5..=8: buy, sell, buy, sell.
            let r = if s < 4 { s } else { s - 5 };
            let level = (k / CYCLE % 4) as i64;
            if r % 2 == 0 {
                (Side::Buy, TimeInForce::GoodTillCancel, 9_999 - level, 1)
            } else {
                (Side::Sell, TimeInForce::GoodTillCancel, 10_001 + level, 1)
            }
        }
    };
    OrderShape { side, tif, price_cents, qty_lots }
}

/// Order `i` of a run with `connections` connections, for account `account`, as an SBE
/// NewOrderSingle.
#[inline]
pub fn order(i: u64, connections: u64, account: u32) -> NewOrderSingle {
    let s = shape(i, connections);
    NewOrderSingle {
        cl_ord_id: cl_ord_id(i),
        account: account.into(),
        security_id: 1u32.into(),
        side: s.side.to_u8(),
        ord_type: OrdType::Limit.to_u8(),
        time_in_force: s.tif.to_u8(),
        exec_inst: 0,
        self_trade_prevention: SelfTradePrevention::AccountDefault.to_u8(),
        price: price9(s.price_cents).into(),
        stop_px: PRICE9_NULL.into(),
        order_qty: (s.qty_lots * QTY4_PER_LOT).into(),
        display_qty: QTY4_NULL.into(),
        expire_time: 0u64.into(),
    }
}

/// Symbol (55) of instrument 1, the one the SBE flow names by `SecurityID` 1.
pub const FIX_SYMBOL: &str = "DEMO";

/// Longest FIX NewOrderSingle [`fix_order`] writes, in bytes, with room to spare: the
/// header with a 20-digit MsgSeqNum and a 32-character CompID, a 20-digit ClOrdID, a 10-digit
/// account. The writer also needs its BodyLength reserve in the buffer, which this includes.
pub const FIX_ORDER_MAX_BYTES: usize = 320;

/// The standard header of one FIX message the client sends.
#[derive(Clone, Copy, Debug)]
pub struct FixHeader<'a> {
    /// SenderCompID (49): the client.
    pub sender_comp_id: &'a str,
    /// TargetCompID (56): sable.
    pub target_comp_id: &'a str,
    /// MsgSeqNum (34).
    pub msg_seq_num: u64,
    /// SendingTime (52), also used as TransactTime (60), in ns since the Unix epoch.
    pub sending_time_unix_ns: i64,
}

/// Writes order `i` of a run with `connections` connections, for account `account`, as a FIX
/// 4.4 NewOrderSingle (35=D) at the start of `buf`: the same order as [`order`] (ClOrdID `i`,
/// instrument 1 by Symbol, price in shortest decimal form, `100.1` for 10,010 cents). Returns
/// its length. Allocates nothing.
#[inline]
pub fn fix_order(
    i: u64,
    connections: u64,
    account: u32,
    header: &FixHeader<'_>,
    buf: &mut [u8],
) -> Result<usize, WriteError> {
    let s = shape(i, connections);
    // sable's SBE enums carry the FIX codes (Side 54: 1/2, TimeInForce 59: 1 GTC, 3 IOC).
    let side = b'0' + s.side.to_u8();
    let tif = b'0' + s.tif.to_u8();
    let mut w = Writer::new(buf, BEGIN_STRING, b"D");
    w.str(49, header.sender_comp_id)
        .str(56, header.target_comp_id)
        .u64(34, header.msg_seq_num)
        .timestamp_ms(52, header.sending_time_unix_ns)
        .u64(11, i)
        .u64(1, u64::from(account))
        .str(55, FIX_SYMBOL)
        .char(54, side)
        .timestamp_ms(60, header.sending_time_unix_ns)
        .u64(38, s.qty_lots)
        .char(40, b'2')
        .decimal(44, s.price_cents, 2)
        .char(59, tif);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cl_ord_ids_round_trip() {
        for i in [0, 1, 9, 10, 12345, u64::MAX] {
            assert_eq!(parse_cl_ord_id(&cl_ord_id(i)), Some(i));
        }
        assert_eq!(parse_cl_ord_id(&[0; CL_ORD_ID_LEN]), None);
    }

    #[test]
    fn orders_validate() {
        for i in 0..100 {
            let o = order(i, 3, 1);
            assert_eq!(gateway::sbe::codec::validate_fields(&o), Ok(()), "order {i}");
        }
    }

    #[test]
    fn fix_orders_validate_and_match_the_sbe_orders() {
        use gateway::fix::dictionary::{Dictionary, ValidationOptions};
        use gateway::fix::frame::next_message;
        use gateway::fix::message::{FieldTable, parse, parse_decimal};

        let dictionary = Dictionary::sable();
        let mut table = FieldTable::default();
        let mut buf = [0u8; FIX_ORDER_MAX_BYTES];
        for i in 0..100 {
            let header = FixHeader {
                sender_comp_id: "BENCH3",
                target_comp_id: "SABLE",
                msg_seq_num: i + 2,
                sending_time_unix_ns: 1_763_800_000_123_456_789,
            };
            let n = fix_order(i, 3, 7, &header, &mut buf).expect("fits");
            let (len, bytes) = next_message(&buf[..n]).expect("well framed").expect("whole");
            assert_eq!(len, n);
            let msg = parse(bytes, &mut table).expect("parses");
            assert_eq!(dictionary.validate(&msg, &ValidationOptions::default()), Ok(()), "order {i}");
            let sbe = order(i, 3, 7);
            assert_eq!(msg.get_u64(11), Ok(i));
            assert_eq!(msg.get_u64(1), Ok(7));
            assert_eq!(msg.get_u64(34), Ok(i + 2));
            assert_eq!(msg.get_char(54), Ok(b'0' + sbe.side));
            assert_eq!(msg.get_char(59), Ok(b'0' + sbe.time_in_force));
            assert_eq!(msg.get_u64(38), Ok(sbe.order_qty.get() / QTY4_PER_LOT));
            let px = parse_decimal(msg.get(44).expect("price")).expect("a decimal");
            assert!(px.scale <= 9);
            assert_eq!(i128::from(px.mantissa) * 10i128.pow(9 - px.scale), i128::from(sbe.price.get()), "order {i}");
        }
    }
}
