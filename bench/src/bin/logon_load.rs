//! Order→ack latency of a logged-on SBE session, alone and while other connections keep
//! failing logons against a session whose password is an Argon2 hash: the verifications run on
//! the `sable-auth` thread, so the gateway thread (and the orders it carries) should not wait
//! for them. Closed loop (one order in flight), in-process appliance on 127.0.0.1.
//!
//! `cargo run --release -p bench --bin logon_load -- --orders 5000 --logon-threads 4`
//! prints one summary line per phase (`workload=order_ack_alone`, then
//! `workload=order_ack_under_hashed_logons` with `logons_per_s=`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use gateway::client::Client;
use gateway::config::{Config, DurabilityPolicy, WaitKind};
use gateway::sbe::codec::{Outbound, decode_outbound};
use gateway::sbe::messages::{
    NewOrderSingle, OrdType, PRICE9_NULL, QTY4_NULL, SelfTradePrevention, Side, TimeInForce, char_field,
};
use sable_bench::report::{Percentiles, histogram, summary_line};
use zerocopy::little_endian::{I64, U32, U64};

#[derive(Parser)]
struct Args {
    /// Orders per phase.
    #[arg(long, default_value_t = 5000)]
    orders: u64,
    /// Connections failing logons at once in the second phase.
    #[arg(long, default_value_t = 4)]
    logon_threads: usize,
    /// `sessions_limits.logon_failures_before_lockout` (0: off, every logon is verified).
    #[arg(long, default_value_t = 0)]
    failures_before_lockout: u32,
}

fn order(n: u64) -> NewOrderSingle {
    NewOrderSingle {
        cl_ord_id: char_field(format!("b{n}").as_bytes()).expect("fits"),
        account: U32::new(2),
        security_id: U32::new(1),
        side: Side::Buy.to_u8(),
        ord_type: OrdType::Limit.to_u8(),
        time_in_force: TimeInForce::ImmediateOrCancel.to_u8(),
        exec_inst: 0,
        self_trade_prevention: SelfTradePrevention::AccountDefault.to_u8(),
        price: I64::new(90_000_000_000),
        stop_px: I64::new(PRICE9_NULL),
        order_qty: U64::new(10_000),
        display_qty: U64::new(QTY4_NULL),
        expire_time: U64::new(0),
    }
}

/// Sends `orders` IOC orders (nothing rests: the book stays empty) one at a time; each waits
/// for its first execution report.
fn phase(c: &mut Client, first: u64, orders: u64) -> (hdrhistogram::Histogram<u64>, Duration) {
    let mut h = histogram();
    let start = Instant::now();
    for n in first..first + orders {
        let o = order(n);
        let want = o.cl_ord_id;
        let sent = Instant::now();
        c.send(&o).expect("send");
        loop {
            let frame = c.recv(Duration::from_secs(10)).expect("recv").expect("a report within 10 s");
            if let Ok(Outbound::ExecutionReport(er)) = decode_outbound(&frame[6..])
                && er.cl_ord_id == want
            {
                break;
            }
        }
        h.saturating_record(sent.elapsed().as_nanos() as u64);
    }
    (h, start.elapsed())
}

fn main() {
    let args = Args::parse();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = Config::default_config();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.fix.listen = String::new();
    cfg.server.data_dir = dir.path().to_path_buf();
    cfg.pipeline.durability = DurabilityPolicy::Written;
    cfg.pipeline.wait_strategy = WaitKind::Backoff;
    cfg.sessions_limits.logon_failures_before_lockout = args.failures_before_lockout;
    cfg.sessions[0].password = gateway::credentials::hash_password(b"bench-secret").expect("hash");
    let app = gateway::pipeline::start(cfg.validate().expect("valid")).expect("starts");
    let addr = app.local_addr();
    let mut c = Client::login(addr, 2, "demo2", "demo2").expect("session 2 logs on");
    println!("load average: {}", sable_bench::machine::loadavg());
    let _ = phase(&mut c, 0, args.orders / 10); // warm-up
    let (h, took) = phase(&mut c, 1_000_000, args.orders);
    let rate = args.orders as f64 / took.as_secs_f64();
    println!("{}", summary_line("order_ack_alone", "sable", args.orders, rate, &Percentiles::from_raw(&h)));

    let stop = Arc::new(AtomicBool::new(false));
    let logons = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..args.logon_threads)
        .map(|_| {
            let (stop, logons) = (Arc::clone(&stop), Arc::clone(&logons));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let refused = Client::connect(addr).and_then(|mut w| w.negotiate(1, "demo", "wrong")).is_err();
                    assert!(refused, "a wrong password is refused");
                    logons.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let before = logons.load(Ordering::Relaxed);
    let (h, took) = phase(&mut c, 2_000_000, args.orders);
    let logons_per_s = (logons.load(Ordering::Relaxed) - before) as f64 / took.as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("logon thread");
    }
    let rate = args.orders as f64 / took.as_secs_f64();
    let line = summary_line("order_ack_under_hashed_logons", "sable", args.orders, rate, &Percentiles::from_raw(&h));
    let (threads, lockout) = (args.logon_threads, args.failures_before_lockout);
    println!("{line} logon_threads={threads} failures_before_lockout={lockout} logons_per_s={logons_per_s:.0}");
    drop(c);
    app.shutdown().expect("clean shutdown");
}
