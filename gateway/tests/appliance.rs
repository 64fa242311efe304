//! The appliance end to end, in-process: pipeline on 127.0.0.1:0, a temp data dir, `written`
//! durability, the yield-then-sleep wait strategy; real TCP clients. No timing assertions: every
//! wait is bounded so a bug fails the test instead of hanging it.

use std::time::{Duration, Instant};

use gateway::client::Client;
use gateway::config::{Config, DurabilityPolicy, WaitKind};
use gateway::pipeline::{self, Appliance};
use gateway::sbe::codec::{Outbound, decode_outbound};
use gateway::sbe::messages::{
    BusinessRejectReason, ExecType, OrdStatus, OrderCancelReplaceRequest, OrderCancelRequest, Side, TerminationCode,
    TimeInForce, char_field,
};
use zerocopy::little_endian::{I64, U32, U64};

#[path = "support/sbe_flow.rs"]
mod sbe_flow;

use sbe_flow::{WAIT, er, order, px, wait_for};

/// `pipeline.gateway_threads` of the tests that run in both gateway layouts.
const ONE_THREAD: u8 = 1;
const PUBLISHER_THREAD: u8 = 2;

fn start(dir: &std::path::Path) -> Appliance {
    start_threads(dir, ONE_THREAD)
}

fn start_threads(dir: &std::path::Path, gateway_threads: u8) -> Appliance {
    start_on(dir, DurabilityPolicy::Written, 1 << 20, gateway_threads)
}

fn start_on(
    dir: &std::path::Path,
    durability: DurabilityPolicy,
    outbound_buffer_bytes: usize,
    gateway_threads: u8,
) -> Appliance {
    let mut c = test_config(dir, durability, outbound_buffer_bytes, 4096);
    c.pipeline.gateway_threads = gateway_threads;
    pipeline::start(c.validate().expect("test config validates")).expect("appliance starts")
}

fn start_sized(
    dir: &std::path::Path,
    durability: DurabilityPolicy,
    outbound_buffer_bytes: usize,
    max_orders: u32,
) -> Appliance {
    pipeline::start(
        test_config(dir, durability, outbound_buffer_bytes, max_orders).validate().expect("test config validates"),
    )
    .expect("appliance starts")
}

fn test_config(
    dir: &std::path::Path,
    durability: DurabilityPolicy,
    outbound_buffer_bytes: usize,
    max_orders: u32,
) -> Config {
    let mut c = Config::default_config();
    c.server.listen = "127.0.0.1:0".into();
    c.fix.listen = "127.0.0.1:0".into();
    c.server.data_dir = dir.to_path_buf();
    c.pipeline.durability = durability;
    c.sessions_limits.outbound_buffer_bytes = outbound_buffer_bytes;
    c.pipeline.wait_strategy = WaitKind::Backoff;
    c.pipeline.input_ring_slots = 1024;
    c.pipeline.output_ring_slots = 4096;
    c.engine.max_orders = max_orders;
    c.engine.max_levels = 1024;
    c.engine.max_levels_per_side = 256;
    c.journal.segment_len_bytes = 1 << 20;
    c.snapshot.every_commands = 4;
    c
}

fn qty4(lots: u64) -> u64 {
    lots * 10_000
}

#[test]
fn orders_trade_cancel_replace_and_survive_a_restart() {
    trade_and_restart(ONE_THREAD, PUBLISHER_THREAD);
}

#[test]
fn with_a_publisher_thread_orders_trade_and_survive_a_restart() {
    trade_and_restart(PUBLISHER_THREAD, ONE_THREAD);
}

/// Runs on `first` gateway threads, restarts on `then`.
fn trade_and_restart(first: u8, then: u8) {
    let dir = tempfile::tempdir().unwrap();
    let app = start_threads(dir.path(), first);
    let addr = app.local_addr();
    let mut c1 = Client::login(addr, 1, "demo", "demo").expect("session 1 logs in");
    let mut c2 = Client::login(addr, 2, "demo2", "demo2").expect("session 2 logs in");

    // A resting order is acknowledged.
    c1.send(&order("b1", 1, Side::Buy, 100.25, 10)).unwrap();
    let new = er(&mut c1, "b1", ExecType::New);
    assert_eq!(new.ord_status, OrdStatus::New.to_u8());
    assert_eq!(new.leaves_qty.get(), qty4(10));
    let b1_id = new.order_id.get();

    // A crossing order fills both sides at the resting price.
    c2.send(&order("s1", 2, Side::Sell, 100.20, 4)).unwrap();
    er(&mut c2, "s1", ExecType::New);
    let taker = er(&mut c2, "s1", ExecType::Trade);
    assert_eq!(taker.ord_status, OrdStatus::Filled.to_u8());
    assert_eq!(taker.last_px.get(), px(100.25).get());
    assert_eq!(taker.last_qty.get(), qty4(4));
    let maker = er(&mut c1, "b1", ExecType::Trade);
    assert_eq!(maker.ord_status, OrdStatus::PartiallyFilled.to_u8());
    assert_eq!(maker.leaves_qty.get(), qty4(6));
    assert_eq!(maker.trade_id.get(), taker.trade_id.get());

    // A replace the engine refuses (above the instrument's maximum quantity) leaves the order as
    // it was, and the reject says so: partially filled.
    let replace = |cl: &[u8], price: f64, lots: u64| OrderCancelReplaceRequest {
        cl_ord_id: char_field(cl).unwrap(),
        orig_cl_ord_id: char_field(b"b1").unwrap(),
        order_id: U64::new(0),
        account: U32::new(1),
        security_id: U32::new(1),
        price: px(price),
        // The codec requires every restated field; StopPx does not apply to a limit order.
        stop_px: I64::new(0),
        order_qty: U64::new(qty4(lots)),
    };
    c1.send(&replace(b"b1big", 100.25, 2_000_000)).unwrap();
    let (status, code, id) = wait_for(&mut c1, "OrderCancelReject for b1big", |m| match m {
        Outbound::OrderCancelReject(r) => Some((r.ord_status, r.reject_code.get(), r.order_id.get())),
        _ => None,
    });
    assert_eq!(status, OrdStatus::PartiallyFilled.to_u8());
    assert_eq!((code, id), (engine::RejectReason::QtyAboveMax as u16, b1_id));

    // Replace: new total 8 (4 filled), new price.
    let mut rp = replace(b"b1r", 100.10, 8);
    c1.send(&rp).unwrap();
    let replaced = er(&mut c1, "b1r", ExecType::Replaced);
    assert_eq!(replaced.order_id.get(), b1_id);
    assert_eq!(replaced.leaves_qty.get(), qty4(4));
    assert_eq!(replaced.price.get(), px(100.10).get());

    // Cancel it by its new client id.
    let cancel = OrderCancelRequest {
        cl_ord_id: char_field(b"b1c").unwrap(),
        orig_cl_ord_id: char_field(b"b1r").unwrap(),
        order_id: U64::new(0),
        account: U32::new(1),
        security_id: U32::new(1),
    };
    c1.send(&cancel).unwrap();
    let cancelled = er(&mut c1, "b1c", ExecType::Canceled);
    assert_eq!(cancelled.order_id.get(), b1_id);
    assert_eq!(cancelled.leaves_qty.get(), 0);

    // Replacing a dead order is refused with an OrderCancelReject.
    rp.cl_ord_id = char_field(b"b1x").unwrap();
    rp.orig_cl_ord_id = char_field(b"b1r").unwrap();
    c1.send(&rp).unwrap();
    let status = wait_for(&mut c1, "OrderCancelReject", |m| match m {
        Outbound::OrderCancelReject(r) => Some(r.ord_status),
        _ => None,
    });
    assert_eq!(status, OrdStatus::Rejected.to_u8(), "a dead order is unknown");

    // A session may act only on its own accounts.
    c1.send(&order("x1", 2, Side::Buy, 100.0, 1)).unwrap();
    let reason = wait_for(&mut c1, "BusinessMessageReject", |m| match m {
        Outbound::BusinessMessageReject(r) => Some(r.reason),
        _ => None,
    });
    assert_eq!(reason, BusinessRejectReason::NotAuthorized.to_u8());

    // A resting order to find again after the restart.
    c1.send(&order("b2", 1, Side::Buy, 99.00, 5)).unwrap();
    er(&mut c1, "b2", ExecType::New);

    // Garbage terminates only the offending session.
    c2.send_raw(&[0, 0, 0, 20, 0x12, 0x34, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]).unwrap();
    let code = wait_for(&mut c2, "Terminate", |m| match m {
        Outbound::Terminate(t) => Some(t.code),
        _ => None,
    });
    assert_eq!(code, TerminationCode::InvalidMessage.to_u8());
    let deadline = Instant::now() + WAIT;
    loop {
        match c2.recv(Duration::from_millis(100)) {
            Err(_) => break,
            Ok(_) => assert!(Instant::now() < deadline, "the offending connection was not closed"),
        }
    }
    c1.send(&order("b3", 1, Side::Buy, 98.00, 1)).unwrap();
    er(&mut c1, "b3", ExecType::New);

    drop(c1);
    let stopped = app.shutdown().expect("clean shutdown");
    assert!(stopped.last_seq > 0);

    // Restart on the same data directory: the same state, and the book still trades.
    let app = start_threads(dir.path(), then);
    assert_eq!(app.restored(), (stopped.last_seq, stopped.state_hash), "restore reproduces the state");
    let addr = app.local_addr();
    let mut c1 = Client::login(addr, 1, "demo", "demo").expect("session 1 logs in again");
    let mut c2 = Client::login(addr, 2, "demo2", "demo2").expect("session 2 logs in again");
    c2.send(&order("s2", 2, Side::Sell, 99.00, 5)).unwrap();
    let taker = er(&mut c2, "s2", ExecType::Trade);
    assert_eq!(taker.last_px.get(), px(99.00).get());
    let maker = er(&mut c1, "b2", ExecType::Trade);
    assert_eq!(maker.ord_status, OrdStatus::Filled.to_u8());
    drop((c1, c2));
    app.shutdown().expect("clean shutdown after restart");
}

/// An engine large enough to look ahead (`engine::LOOKAHEAD_MIN_ORDERS`): the matcher holds up
/// to three commands of a batch before applying each. A pipelined burst from two sessions, with
/// the last half of each side crossing the other, must be answered in full and in order.
#[test]
fn a_matcher_that_looks_ahead_answers_every_order_of_a_burst() {
    let dir = tempfile::tempdir().unwrap();
    let app = start_sized(dir.path(), DurabilityPolicy::Written, 1 << 22, engine::LOOKAHEAD_MIN_ORDERS);
    let addr = app.local_addr();
    let mut c1 = Client::login(addr, 1, "demo", "demo").expect("session 1 logs in");
    let mut c2 = Client::login(addr, 2, "demo2", "demo2").expect("session 2 logs in");
    const N: u64 = 400;
    // Sells at 10.00, sent without waiting; once they rest, buys at 10.00, sent without waiting,
    // each filling one sell. (The buys wait for the sells' acks because two connections' bytes
    // have no order between them: a gateway busy elsewhere may read the second one first.)
    for i in 0..N {
        c1.send(&order(&format!("s{i}"), 1, Side::Sell, 10.0, 1)).unwrap();
    }
    let mut maker_order_ids = Vec::new();
    for i in 0..N {
        let ack = er(&mut c1, &format!("s{i}"), ExecType::New);
        maker_order_ids.push(ack.order_id.get());
    }
    // Exchange ids follow arrival order: each session's burst reached the engine in order.
    assert!(maker_order_ids.windows(2).all(|w| w[0] < w[1]), "sells acknowledged out of order");
    for i in 0..N {
        c2.send(&order(&format!("b{i}"), 2, Side::Buy, 10.0, 1)).unwrap();
    }
    for i in 0..N {
        let fill = er(&mut c2, &format!("b{i}"), ExecType::Trade);
        assert_eq!(fill.ord_status, OrdStatus::Filled.to_u8(), "b{i}");
        assert_eq!(fill.last_px.get(), px(10.0).get());
    }
    for i in 0..N {
        let fill = er(&mut c1, &format!("s{i}"), ExecType::Trade);
        assert_eq!(fill.order_id.get(), maker_order_ids[i as usize], "s{i} fills in time priority");
        assert_eq!(fill.ord_status, OrdStatus::Filled.to_u8());
    }
    drop(app);
}

#[test]
fn bad_credentials_and_duplicate_sessions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path());
    let addr = app.local_addr();
    assert!(Client::login(addr, 1, "demo", "nope").is_err());
    let _c1 = Client::login(addr, 1, "demo", "demo").expect("first login");
    assert!(Client::login(addr, 1, "demo", "demo").is_err(), "a second connection of session 1 is refused");
    drop(_c1);
    app.shutdown().expect("clean shutdown");
}

#[test]
fn every_durability_policy_acknowledges_and_trades() {
    let policies = [DurabilityPolicy::Memory, DurabilityPolicy::Written, DurabilityPolicy::Fsync];
    for (policy, threads) in policies.into_iter().flat_map(|p| [(p, ONE_THREAD), (p, PUBLISHER_THREAD)]) {
        let dir = tempfile::tempdir().unwrap();
        let app = start_on(dir.path(), policy, 1 << 20, threads);
        let addr = app.local_addr();
        let mut c1 = Client::login(addr, 1, "demo", "demo").expect("login");
        let mut c2 = Client::login(addr, 2, "demo2", "demo2").expect("login");
        c1.send(&order("b1", 1, Side::Buy, 10.00, 3)).unwrap();
        er(&mut c1, "b1", ExecType::New);
        c2.send(&order("s1", 2, Side::Sell, 10.00, 3)).unwrap();
        assert_eq!(er(&mut c2, "s1", ExecType::Trade).ord_status, OrdStatus::Filled.to_u8(), "{policy:?} {threads}");
        assert_eq!(er(&mut c1, "b1", ExecType::Trade).ord_status, OrdStatus::Filled.to_u8(), "{policy:?} {threads}");
        drop((c1, c2));
        app.shutdown().expect("clean shutdown");
    }
}

#[test]
fn a_client_that_does_not_read_is_disconnected_and_others_carry_on() {
    slow_consumer(ONE_THREAD);
}

#[test]
fn with_a_publisher_thread_a_slow_consumer_is_disconnected_and_others_carry_on() {
    slow_consumer(PUBLISHER_THREAD);
}

fn slow_consumer(gateway_threads: u8) {
    let dir = tempfile::tempdir().unwrap();
    let app = start_on(dir.path(), DurabilityPolicy::Written, 4096, gateway_threads);
    let addr = app.local_addr();
    let mut slow = Client::login(addr, 1, "demo", "demo").expect("login");
    let mut fast = Client::login(addr, 2, "demo2", "demo2").expect("login");
    // Requests whose reports the slow client never reads. They are IOC and cannot cross, so
    // each is answered (New, then Cancelled) and none rests: the book stays empty for `fast`
    // however long the kernel's socket buffers take to fill.
    let sender = std::thread::spawn(move || {
        for i in 0..200_000u64 {
            let mut o = order(&format!("x{i}"), 1, Side::Buy, 90.0 + (i % 200) as f64 * 0.01, 1);
            o.time_in_force = TimeInForce::ImmediateOrCancel.to_u8();
            if slow.send(&o).is_err() {
                return (true, slow);
            }
        }
        (false, slow)
    });
    // Meanwhile the other session is served.
    fast.send(&order("f1", 2, Side::Sell, 120.00, 1)).unwrap();
    er(&mut fast, "f1", ExecType::New);
    let (send_failed, mut slow) = sender.join().expect("sender thread");
    // The server closed the slow connection: reading what the kernel buffered ends in EOF/reset.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut closed = send_failed;
    while !closed && Instant::now() < deadline {
        closed = slow.recv(Duration::from_millis(500)).is_err();
    }
    assert!(closed, "the slow consumer was not disconnected");
    fast.send(&order("f2", 2, Side::Sell, 121.00, 1)).unwrap();
    er(&mut fast, "f2", ExecType::New);
    drop(fast);
    app.shutdown().expect("clean shutdown");
}

#[test]
fn heartbeats_keep_a_session_alive_and_silence_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path());
    let addr = app.local_addr();

    // A client that answers the server's Sequence heartbeats (Client::recv does) stays up
    // through several keepalive intervals.
    let mut live = Client::connect(addr).unwrap();
    live.negotiate(1, "demo", "demo").unwrap();
    live.establish(1000).unwrap();
    let quiet_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < quiet_until {
        if let Ok(Some(frame)) = live.recv(Duration::from_millis(100)) {
            let msg = decode_outbound(&frame[6..]).unwrap();
            assert!(matches!(msg, Outbound::Sequence(_)), "only heartbeats while idle, got {msg:?}");
        }
    }
    live.send(&order("h1", 1, Side::Buy, 50.0, 1)).unwrap();
    er(&mut live, "h1", ExecType::New);

    // A client that sends nothing for two intervals is terminated.
    let mut silent = Client::connect(addr).unwrap();
    silent.negotiate(2, "demo2", "demo2").unwrap();
    silent.establish(100).unwrap();
    // Not reading means not answering heartbeats either (Client::recv answers them).
    std::thread::sleep(Duration::from_millis(1000));
    let deadline = Instant::now() + WAIT;
    let code = loop {
        assert!(Instant::now() < deadline, "the silent session was not terminated");
        match silent.recv(Duration::from_millis(200)) {
            Ok(Some(frame)) => {
                if let Ok(Outbound::Terminate(t)) = decode_outbound(&frame[6..]) {
                    break t.code;
                }
            }
            Ok(None) => {}
            Err(e) => panic!("connection ended without a Terminate: {e}"),
        }
    };
    assert_eq!(code, TerminationCode::KeepaliveExpired.to_u8());
    drop(live);
    app.shutdown().expect("clean shutdown");
}

#[test]
fn gtd_orders_expire_without_other_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path());
    let mut c = Client::login(app.local_addr(), 1, "demo", "demo").expect("session 1 logs in");
    let now_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mut gtd = order("g1", 1, Side::Buy, 99.0, 3);
    gtd.time_in_force = TimeInForce::GoodTillDate.to_u8();
    gtd.expire_time = U64::new(now_ns + 1_200_000_000);
    c.send(&gtd).unwrap();
    er(&mut c, "g1", ExecType::New);
    // Nothing else is sent: the appliance's own Tick must carry engine time past the expiry.
    let expired = er(&mut c, "g1", ExecType::Expired);
    assert_eq!(expired.ord_status, OrdStatus::Expired.to_u8());
    assert_eq!(expired.leaves_qty.get(), 0);
    drop(c);
    app.shutdown().expect("clean shutdown");
}

/// Counts application messages (what the server sequences) among `frames`.
fn is_application(m: &Outbound<'_>) -> bool {
    matches!(
        m,
        Outbound::ExecutionReport(_)
            | Outbound::OrderCancelReject(_)
            | Outbound::OrderMassCancelReport(_)
            | Outbound::BusinessMessageReject(_)
    )
}

#[test]
fn sbe_sequences_persist_and_missed_reports_are_retransmitted_after_a_restart() {
    sequences_persist(ONE_THREAD);
}

#[test]
fn with_a_publisher_thread_sbe_sequences_persist_and_missed_reports_are_retransmitted() {
    sequences_persist(PUBLISHER_THREAD);
}

fn sequences_persist(gateway_threads: u8) {
    let dir = tempfile::tempdir().unwrap();
    let app = start_threads(dir.path(), gateway_threads);
    let addr = app.local_addr();
    let mut c1 = Client::connect(addr).unwrap();
    c1.negotiate(1, "demo", "demo").unwrap();
    let ack = c1.establish(1000).unwrap();
    assert_eq!(ack.next_seq_no.get(), 1, "a fresh session starts at 1");
    c1.send(&order("rest", 1, Side::Buy, 100.0, 5)).unwrap();
    er(&mut c1, "rest", ExecType::New);
    c1.terminate().unwrap();
    drop(c1);
    // While session 1 is away, session 2 fills part of its order.
    let mut c2 = Client::login(addr, 2, "demo2", "demo2").unwrap();
    c2.send(&order("hit", 2, Side::Sell, 100.0, 2)).unwrap();
    er(&mut c2, "hit", ExecType::Trade);
    drop(c2);
    app.shutdown().expect("clean shutdown");

    let app = start_threads(dir.path(), gateway_threads);
    let mut c1 = Client::connect(app.local_addr()).unwrap();
    c1.negotiate(1, "demo", "demo").unwrap();
    let ack = c1.establish(1000).unwrap();
    // Seen before: seq 1 (the New). Stored while away: seq 2 (the fill).
    assert_eq!(ack.next_seq_no.get(), 3, "the outbound sequence continued across the restart");
    assert!(ack.last_processed_seq_no.get() >= 1, "the server remembers what it processed: {ack:?}");

    // Too far, and too many: RetransmitReject with the reason.
    let req = |from: u64, count: u32| gateway::sbe::messages::RetransmitRequest {
        session_id: U64::new(1),
        timestamp: U64::new(7),
        from_seq_no: U64::new(from),
        count: U32::new(count),
    };
    for (from, count, code) in [
        (2, 5, gateway::sbe::messages::RetransmitRejectCode::OutOfRange),
        (1, 0, gateway::sbe::messages::RetransmitRejectCode::RequestLimitExceeded),
        (1, 1_000_000, gateway::sbe::messages::RetransmitRejectCode::RequestLimitExceeded),
    ] {
        c1.send(&req(from, count)).unwrap();
        let got = wait_for(&mut c1, "RetransmitReject", |m| match m {
            Outbound::RetransmitReject(r) => Some(r.code),
            _ => None,
        });
        assert_eq!(got, code.to_u8(), "from {from} count {count}");
    }

    c1.send(&req(2, 1)).unwrap();
    let (next, count) = wait_for(&mut c1, "Retransmission", |m| match m {
        Outbound::Retransmission(r) => Some((r.next_seq_no.get(), r.count.get())),
        _ => None,
    });
    assert_eq!((next, count), (2, 1));
    let fill = wait_for(&mut c1, "the retransmitted fill", |m| match m {
        Outbound::ExecutionReport(r) => Some(**r),
        other => {
            assert!(!is_application(other), "only the retransmitted message may follow: {other:?}");
            None
        }
    });
    assert_eq!(fill.exec_type, ExecType::Trade.to_u8());
    assert_eq!(fill.cl_ord_id, char_field::<20>(b"rest").unwrap());
    assert_eq!((fill.last_qty.get(), fill.leaves_qty.get()), (qty4(2), qty4(3)));

    // New messages carry on from 3.
    c1.send(&order("more", 1, Side::Buy, 99.0, 1)).unwrap();
    er(&mut c1, "more", ExecType::New);
    c1.send(&req(1, 3)).unwrap();
    let header = wait_for(&mut c1, "Retransmission", |m| match m {
        Outbound::Retransmission(r) => Some((r.next_seq_no.get(), r.count.get())),
        _ => None,
    });
    assert_eq!(header, (1, 3));
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let k = wait_for(&mut c1, "retransmitted messages", |m| match m {
            Outbound::ExecutionReport(r) => Some((r.exec_type, r.cl_ord_id)),
            _ => None,
        });
        kinds.push(k);
    }
    assert_eq!(
        kinds,
        vec![
            (ExecType::New.to_u8(), char_field::<20>(b"rest").unwrap()),
            (ExecType::Trade.to_u8(), char_field::<20>(b"rest").unwrap()),
            (ExecType::New.to_u8(), char_field::<20>(b"more").unwrap()),
        ]
    );
    app.shutdown().unwrap();
}

/// The rejection code of the ExecutionReport rejecting `cl`.
fn rejected(c: &mut Client, cl: &str) -> u16 {
    er(c, cl, ExecType::Rejected).reject_code.get()
}

#[test]
fn configuration_changes_reach_an_existing_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let config = || test_config(dir.path(), DurabilityPolicy::Written, 1 << 20, 4096);
    let app = pipeline::start(config().validate().unwrap()).expect("appliance starts");
    let mut c1 = Client::login(app.local_addr(), 1, "demo", "demo").expect("session 1 logs in");
    c1.send(&order("big", 1, Side::Buy, 99.00, 500)).unwrap();
    er(&mut c1, "big", ExecType::New);
    drop(c1);
    let stopped = app.shutdown().expect("clean shutdown");

    // The operator lowers account 1's order size limit and instrument 1's maximum quantity.
    let mut changed = config();
    changed.accounts.iter_mut().find(|a| a.id == 1).unwrap().max_order_qty_lots = Some(100);
    changed.instruments.iter_mut().find(|i| i.id == 1).unwrap().max_qty_lots = 300;
    let app = pipeline::start(changed.clone().validate().unwrap()).expect("appliance restarts");
    assert_eq!(app.restored(), (stopped.last_seq, stopped.state_hash), "restore reproduces the old state first");
    let mut c1 = Client::login(app.local_addr(), 1, "demo", "demo").expect("session 1 logs in again");
    let mut c2 = Client::login(app.local_addr(), 2, "demo2", "demo2").expect("session 2 logs in again");
    c1.send(&order("a150", 1, Side::Buy, 98.00, 150)).unwrap();
    assert_eq!(rejected(&mut c1, "a150"), engine::RejectReason::AccountMaxOrderQty as u16, "the new account limit");
    c2.send(&order("i400", 2, Side::Buy, 98.00, 400)).unwrap();
    assert_eq!(rejected(&mut c2, "i400"), engine::RejectReason::QtyAboveMax as u16, "the new instrument limit");
    c2.send(&order("i250", 2, Side::Buy, 98.00, 250)).unwrap();
    er(&mut c2, "i250", ExecType::New);
    // What rested before the change is untouched: it still trades in full.
    c2.send(&order("hit", 2, Side::Sell, 99.00, 250)).unwrap();
    let maker = er(&mut c1, "big", ExecType::Trade);
    assert_eq!(maker.leaves_qty.get(), qty4(250));
    drop((c1, c2));
    let stopped = app.shutdown().expect("clean shutdown");

    // The changes were journaled: the same file restarts to the same state with nothing to apply.
    let app = pipeline::start(changed.clone().validate().unwrap()).expect("appliance restarts again");
    assert_eq!(app.restored(), (stopped.last_seq, stopped.state_hash));
    let mut c1 = Client::login(app.local_addr(), 1, "demo", "demo").expect("session 1 logs in a third time");
    c1.send(&order("a101", 1, Side::Buy, 98.00, 101)).unwrap();
    assert_eq!(rejected(&mut c1, "a101"), engine::RejectReason::AccountMaxOrderQty as u16);
    drop(c1);
    app.shutdown().expect("clean shutdown");

    // A new tick size while the instrument still has orders would put the gateway and the engine
    // on different price grids: start-up refuses, saying why.
    let mut regrid = changed;
    regrid.instruments.iter_mut().find(|i| i.id == 1).unwrap().tick_size = rust_decimal::Decimal::new(5, 2);
    match pipeline::start(regrid.validate().unwrap()) {
        Err(e) => assert!(e.to_string().contains("tick size"), "{e}"),
        Ok(app) => {
            app.shutdown().ok();
            panic!("a grid change under live orders was accepted");
        }
    }
}
