//! SBE order flow for the in-process appliance tests: a limit order, and bounded waits for
//! the reports. Include with `#[path = "support/sbe_flow.rs"] mod sbe_flow;`.

#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gateway::client::Client;
use gateway::sbe::codec::{Outbound, decode_outbound};
use gateway::sbe::messages::{
    ExecType, ExecutionReport, NewOrderSingle, OrdType, PRICE9_NULL, QTY4_NULL, SelfTradePrevention, Side, TimeInForce,
    char_field,
};
use zerocopy::little_endian::{I64, U32, U64};

/// Longest wait for any one report.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn px(p: f64) -> I64 {
    I64::new((p * 1e9).round() as i64)
}

pub fn order(cl: &str, account: u32, side: Side, price: f64, qty: u64) -> NewOrderSingle {
    NewOrderSingle {
        cl_ord_id: char_field(cl.as_bytes()).unwrap(),
        account: U32::new(account),
        security_id: U32::new(1),
        side: side.to_u8(),
        ord_type: OrdType::Limit.to_u8(),
        time_in_force: TimeInForce::GoodTillCancel.to_u8(),
        exec_inst: 0,
        self_trade_prevention: SelfTradePrevention::AccountDefault.to_u8(),
        price: px(price),
        stop_px: I64::new(PRICE9_NULL),
        order_qty: U64::new(qty * 10_000),
        display_qty: U64::new(QTY4_NULL),
        expire_time: U64::new(0),
    }
}

/// Reads frames until `pick` accepts one (skipping heartbeats and others), bounded by `WAIT`.
pub fn wait_for<T>(c: &mut Client, what: &str, mut pick: impl FnMut(&Outbound<'_>) -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out waiting for {what}");
        let frame = match c.recv(left) {
            Ok(Some(f)) => f,
            Ok(None) => panic!("timed out waiting for {what}"),
            Err(e) => panic!("waiting for {what}: {e}"),
        };
        let msg = decode_outbound(&frame[6..]).expect("server frames decode");
        if let Some(t) = pick(&msg) {
            return t;
        }
    }
}

pub fn er(c: &mut Client, cl: &str, exec_type: ExecType) -> ExecutionReport {
    let cl_field: [u8; 20] = char_field(cl.as_bytes()).unwrap();
    wait_for(c, &format!("{} for {cl}", exec_type.name()), |m| match m {
        Outbound::ExecutionReport(r) if r.cl_ord_id == cl_field && r.exec_type == exec_type.to_u8() => Some(**r),
        _ => None,
    })
}

/// True if no execution report for `cl` arrives within `quiet` (a closed connection brings
/// none either).
pub fn silent_for(c: &mut Client, cl: &str, quiet: Duration) -> bool {
    let cl_field: [u8; 20] = char_field(cl.as_bytes()).unwrap();
    let deadline = Instant::now() + quiet;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        match c.recv(left) {
            Ok(Some(frame)) => {
                if let Ok(Outbound::ExecutionReport(r)) = decode_outbound(&frame[6..])
                    && r.cl_ord_id == cl_field
                {
                    return false;
                }
            }
            Ok(None) | Err(_) => return true,
        }
    }
}

/// Polls `ready` every few milliseconds for up to [`WAIT`].
pub fn wait_until(what: &str, ready: impl Fn() -> bool) {
    wait_until_within(what, WAIT, ready);
}

/// [`wait_until`] with its own bound (work a loaded machine's background threads do late).
pub fn wait_until_within(what: &str, bound: Duration, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + bound;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Two sessions trade `rounds` times; every order acknowledged.
pub fn trade(addr: SocketAddr, prefix: &str, rounds: usize) {
    let mut c1 = Client::login(addr, 1, "demo", "demo").expect("session 1 logs in");
    let mut c2 = Client::login(addr, 2, "demo2", "demo2").expect("session 2 logs in");
    for i in 0..rounds {
        let (b, s) = (format!("{prefix}b{i}"), format!("{prefix}s{i}"));
        c1.send(&order(&b, 1, Side::Buy, 10.0 + i as f64 * 0.01, 2)).unwrap();
        er(&mut c1, &b, ExecType::New);
        c2.send(&order(&s, 2, Side::Sell, 10.0, 1)).unwrap();
        er(&mut c2, &s, ExecType::Trade);
    }
}
