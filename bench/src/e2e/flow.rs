//! The order stream. Each connection repeats a cycle of ten orders on instrument 1 (`DEMO`,
//! tick 0.01, lot 1): eight GTC limit orders of one lot that rest (buys at 99.96..99.99, sells
//! at 100.01..100.04, alternating) and two IOC orders of four lots that cross (a buy at 100.10
//! and a sell at 99.90). Every IOC takes out at most as much as the cycle rested on the side it
//! hits, so the book stays a few levels deep however long the run: the matcher's work per order
//! stays constant, and acknowledgements include New, Trade and Canceled (IOC remainders).
//!
//! Orders are named by their global index `i` (`ClOrdId` = `i` in decimal); connection
//! `i % connections` sends order `i`, so the offered rate is spread evenly.

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

/// Order `i` of a run with `connections` connections, for account `account`.
#[inline]
pub fn order(i: u64, connections: u64, account: u32) -> NewOrderSingle {
    let k = i / connections;
    let step = k % CYCLE;
    let (side, tif, cents, lots) = match step {
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
    NewOrderSingle {
        cl_ord_id: cl_ord_id(i),
        account: account.into(),
        security_id: 1u32.into(),
        side: side.to_u8(),
        ord_type: OrdType::Limit.to_u8(),
        time_in_force: tif.to_u8(),
        exec_inst: 0,
        self_trade_prevention: SelfTradePrevention::AccountDefault.to_u8(),
        price: price9(cents).into(),
        stop_px: PRICE9_NULL.into(),
        order_qty: (lots * QTY4_PER_LOT).into(),
        display_qty: QTY4_NULL.into(),
        expire_time: 0u64.into(),
    }
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
}
