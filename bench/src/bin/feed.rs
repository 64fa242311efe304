//! The market-data feed's costs.
//!
//! `cargo run --release -p bench --bin feed -- [--seconds S] [--rate MSGS_PER_S] [--orders N]`
//!
//! 1. **throughput** (`workload=feed_throughput`): the feed thread's work alone — engine events
//!    → ITCH messages → MoldUDP64 packets → `sendto` on loopback multicast — paced at `--rate`
//!    messages per second for `--seconds`, while a subscriber thread decodes every packet and
//!    counts gaps. The events are precomputed by a scratch engine from a random limit-order
//!    flow (adds, cancels, crosses) and replayed in a loop with shifted sequence numbers, so
//!    the engine's cost is not in it (the `matcher` benchmark has that). Prints messages/s
//!    sent and received, gaps, and the feed thread's CPU time per message
//!    (`CLOCK_THREAD_CPUTIME_ID`).
//! 2. **latency** (`workload=feed_latency`): the real appliance in-process on loopback, one SBE
//!    client sending limit orders closed-loop: order sent → its Add Order received by a
//!    subscriber (`engine=order_to_itch`), beside order sent → ExecutionReport New received
//!    (`engine=order_to_ack`, the TCP path through the same appliance), and the ack with the
//!    feed off (`engine=order_to_ack_feed_off`).
//!
//! Nothing asserts a time; the machine's load is printed with the results.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use engine::{
    AccountId, AccountSpec, Cancel, ClOrdId, Command, CommandBody, Engine, EngineLimits, Event, InstrumentId,
    InstrumentSpec, NewOrder, OrderId, OrderRef, Side, Symbol,
};
use gateway::feed::history::History;
use gateway::feed::itch::Message;
use gateway::feed::mold::parse_packet;
use gateway::feed::rebuild::SUFFIX;
use gateway::feed::session::FeedSession;
use gateway::feed::subscriber::{Book, Subscriber};
use gateway::feed::translate::Translator;
use hdrhistogram::Histogram;
use rust_decimal::Decimal;
use sable_bench::report::{Percentiles, histogram, summary_line};

/// Feed benchmarks.
#[derive(Parser)]
struct Args {
    /// Seconds of the throughput run (the target run is 60).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Messages per second the throughput run paces itself at.
    #[arg(long, default_value_t = 1_200_000)]
    rate: u64,
    /// Orders of the latency run.
    #[arg(long, default_value_t = 5_000)]
    orders: u64,
    /// Skip the latency run.
    #[arg(long)]
    no_latency: bool,
    /// Throughput run without `sendto`: the feed's own CPU per message (translation, numbering,
    /// retention, packing), apart from the kernel's.
    #[arg(long)]
    no_send: bool,
}

const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn main() {
    let args = Args::parse();
    println!("# feed benchmark: cpus={} loadavg={}", sable_bench::machine::cpus(), sable_bench::machine::loadavg());
    throughput(&args);
    if !args.no_latency {
        latency(&args, true);
        latency(&args, false);
    }
}

/// A command and the events it produced.
type Step = (Command, Vec<Event>);

/// The flow laid out as the feed's ring holds it: commands and their events contiguous in
/// memory, read in order (a `Vec` of events per command would make the harness chase a
/// pointer per command, a cache miss the feed thread does not have; it showed as a third of
/// the measured time once the feed's own costs were cut).
struct Flow {
    /// Each command and the range of its events in `events`.
    commands: Vec<(Command, std::ops::Range<usize>)>,
    /// Every command's events, in order.
    events: Vec<Event>,
}

fn flat_flow(commands: u64) -> Flow {
    let steps = flow(commands);
    let mut events = Vec::with_capacity(steps.iter().map(|(_, e)| e.len()).sum());
    let commands = steps
        .into_iter()
        .map(|(cmd, evs)| {
            let start = events.len();
            events.extend(evs);
            (cmd, start..events.len())
        })
        .collect();
    Flow { commands, events }
}

/// A random limit-order flow on one instrument through a scratch engine: adds near the
/// touch, cancels of live orders, crossing orders.
fn flow(commands: u64) -> Vec<Step> {
    let mut engine = Engine::new(EngineLimits::DEFAULT);
    let mut out = Vec::with_capacity(commands as usize);
    let spec = InstrumentSpec::unlimited(
        InstrumentId(1),
        Symbol::new("BENCH").expect("symbol"),
        Decimal::new(1, 2),
        Decimal::ONE,
    );
    let apply = |engine: &mut Engine, seq: u64, body: CommandBody, out: &mut Vec<Step>| {
        let cmd = Command { seq, ts_ns: 36_000_000_000_000 + seq * 1000, body };
        let mut events = Vec::new();
        engine.apply(&cmd, &mut events).expect("the flow applies");
        out.push((cmd, events));
    };
    apply(&mut engine, 1, CommandBody::AddInstrument(spec), &mut out);
    apply(&mut engine, 2, CommandBody::UpsertAccount(AccountSpec::unlimited(AccountId(1))), &mut out);
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut live: Vec<u64> = Vec::new();
    for seq in 3..commands {
        let r = next() % 100;
        let body = if r < 30 && !live.is_empty() {
            let id = live.swap_remove((next() % live.len() as u64) as usize);
            let cl = ClOrdId::new(format!("c{seq}").as_bytes()).expect("id");
            CommandBody::Cancel(Cancel { account: AccountId(1), order: OrderRef::Id(OrderId(id)), cl_ord_id: cl })
        } else {
            let side = if next() % 2 == 0 { Side::Buy } else { Side::Sell };
            let off = (next() % 10) as i64 - if r < 40 { 5 } else { 0 };
            let price = if side == Side::Buy { 10_000 - off } else { 10_001 + off };
            let cl = ClOrdId::new(format!("o{seq}").as_bytes()).expect("id");
            CommandBody::NewOrder(NewOrder::limit(AccountId(1), cl, InstrumentId(1), side, price, 1 + next() % 10))
        };
        apply(&mut engine, seq, body, &mut out);
        if let Some((_, events)) = out.last() {
            for e in events {
                if let Event::Accepted(v) = e {
                    live.push(v.id.0);
                }
            }
        }
        if live.len() > 50_000 {
            live.clear();
        }
    }
    out
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn throughput(args: &Args) {
    let steps = flat_flow(300_000);
    let port = UdpSocket::bind((LOOPBACK, 0)).and_then(|s| s.local_addr()).expect("port").port();
    let group = SocketAddrV4::new(Ipv4Addr::new(239, 255, 70, 2), port);
    let stop = Arc::new(AtomicBool::new(false));
    let sub = receiver(group, Arc::clone(&stop));
    let socket = UdpSocket::bind((LOOPBACK, 0)).expect("socket");
    {
        let s = socket2::SockRef::from(&socket);
        s.set_multicast_if_v4(&LOOPBACK).expect("multicast if");
        s.set_multicast_loop_v4(true).expect("multicast loop");
    }
    let history = Arc::new(Mutex::new(History::new(1 << 18)));
    let mut session = FeedSession::new(Translator::new(&[], 1 << 20), history, 1400, SUFFIX);
    let (mut sent_packets, mut send_errors) = (0u64, 0u64);
    let no_send = args.no_send;
    let mut send = |b: &[u8]| {
        sent_packets += 1;
        if !no_send && socket.send_to(b, group).is_err() {
            send_errors += 1;
        }
    };
    let started = Instant::now();
    let cpu0 = thread_cpu_ns();
    let mut round = 0u64;
    let end = Duration::from_secs(args.seconds);
    'run: loop {
        let shift = round * steps.commands.len() as u64;
        for (i, (cmd, events)) in steps.commands.iter().enumerate() {
            session.command(cmd.seq + shift, cmd.ts_ns, &cmd.body, &steps.events[events.clone()], &mut send);
            if i % 64 == 63 {
                session.flush(&mut send);
                // Pace: never ahead of `rate` messages per second.
                let due = Duration::from_secs_f64(session.next_seq() as f64 / args.rate as f64);
                let now = started.elapsed();
                if due > now {
                    std::thread::sleep(due - now);
                }
                if now >= end {
                    break 'run;
                }
            }
        }
        round += 1;
    }
    session.flush(&mut send);
    let cpu = thread_cpu_ns() - cpu0;
    let secs = started.elapsed().as_secs_f64();
    let messages = session.next_seq() - 1;
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Release);
    let (received, gaps, lost) = sub.join().expect("receiver");
    let p = Percentiles::default();
    println!(
        "{} sent_msgs_per_s={:.0} received_msgs_per_s={:.0} packets={sent_packets} send_errors={send_errors} \
         received={received} gaps={gaps} lost_msgs={lost} feed_cpu_ns_per_msg={:.1} target_rate={}",
        summary_line(
            "feed_throughput",
            if no_send { "sable_feed_no_send" } else { "sable_feed" },
            messages,
            messages as f64 / secs,
            &p
        ),
        messages as f64 / secs,
        received as f64 / secs,
        cpu as f64 / messages.max(1) as f64,
        args.rate
    );
}

/// Receives the throughput run's packets: (messages, gaps, messages lost).
fn receiver(group: SocketAddrV4, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(u64, u64, u64)> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).expect("socket");
    s.set_reuse_address(true).expect("reuse");
    s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, group.port())).into()).expect("bind");
    s.join_multicast_v4(group.ip(), &LOOPBACK).expect("join");
    let _ = s.set_recv_buffer_size(32 << 20);
    let socket: UdpSocket = s.into();
    socket.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
    std::thread::spawn(move || {
        let (mut next, mut received, mut gaps, mut lost) = (1u64, 0u64, 0u64, 0u64);
        let mut buf = vec![0u8; 2048];
        while !stop.load(Ordering::Acquire) {
            let Ok(n) = socket.recv(&mut buf) else { continue };
            let Ok((h, blocks)) = parse_packet(&buf[..n]) else { continue };
            if blocks.is_empty() {
                continue;
            }
            for b in &blocks {
                let _ = Message::decode(b);
            }
            if h.seq != next {
                gaps += 1;
                lost += h.seq.saturating_sub(next);
            }
            received += blocks.len() as u64;
            next = h.seq + blocks.len() as u64;
        }
        (received, gaps, lost)
    })
}

/// Order → Add Order on the feed, beside order → acknowledgement, through the real appliance.
fn latency(args: &Args, feed_on: bool) {
    use gateway::client::Client;
    use gateway::sbe::codec::{Outbound, decode_outbound};
    use gateway::sbe::messages::{
        ExecType, NewOrderSingle, OrdType, PRICE9_NULL, QTY4_NULL, SelfTradePrevention, TimeInForce, char_field,
    };
    use zerocopy::little_endian::{I64, U32, U64};

    let dir = tempfile::tempdir().expect("temp dir");
    let port = UdpSocket::bind((LOOPBACK, 0)).and_then(|s| s.local_addr()).expect("port").port();
    let mut c = gateway::config::Config::default_config();
    c.server.listen = "127.0.0.1:0".into();
    c.fix.listen = "127.0.0.1:0".into();
    c.server.data_dir = dir.path().to_path_buf();
    c.snapshot.every_commands = 0;
    c.feed.enabled = feed_on;
    c.feed.group = format!("239.255.70.3:{port}");
    let app = gateway::pipeline::start(c.validate().expect("config")).expect("appliance starts");
    let arrivals: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let sub = app.feed_addrs().map(|(group, _)| {
        let (arrivals, stop) = (Arc::clone(&arrivals), Arc::clone(&stop));
        let mut sub = Subscriber::join(group, LOOPBACK, None).expect("subscriber");
        std::thread::spawn(move || {
            let mut book = Book::default();
            while !stop.load(Ordering::Acquire) {
                let _ = sub.poll(Duration::from_millis(5), &mut |_, m| {
                    book.apply(m);
                    if let Message::AddOrder { order_ref, .. } = m {
                        arrivals.lock().expect("lock").insert(*order_ref, Instant::now());
                    }
                });
            }
        })
    });
    let mut client = Client::login(app.local_addr(), 1, "demo", "demo").expect("login");
    let (mut feed_h, mut ack_h): (Histogram<u64>, Histogram<u64>) = (histogram(), histogram());
    let mut sent: Vec<(u64, Instant)> = Vec::with_capacity(args.orders as usize);
    for i in 0..args.orders {
        let cl = format!("l{i}");
        let order = NewOrderSingle {
            cl_ord_id: char_field(cl.as_bytes()).expect("cl"),
            account: U32::new(1),
            security_id: U32::new(1),
            side: gateway::sbe::messages::Side::Buy.to_u8(),
            ord_type: OrdType::Limit.to_u8(),
            time_in_force: TimeInForce::GoodTillCancel.to_u8(),
            exec_inst: 0,
            self_trade_prevention: SelfTradePrevention::AccountDefault.to_u8(),
            price: I64::new(90_000_000_000 + (i % 100) as i64 * 10_000_000),
            stop_px: I64::new(PRICE9_NULL),
            order_qty: U64::new(10_000),
            display_qty: U64::new(QTY4_NULL),
            expire_time: U64::new(0),
        };
        let t0 = Instant::now();
        client.send(&order).expect("send");
        loop {
            let frame = client.recv(Duration::from_secs(10)).expect("recv").expect("a report");
            if let Ok(Outbound::ExecutionReport(r)) = decode_outbound(&frame[6..])
                && r.exec_type == ExecType::New.to_u8()
            {
                ack_h.saturating_record(t0.elapsed().as_nanos() as u64);
                sent.push((r.order_id.get(), t0));
                break;
            }
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Release);
    if let Some(h) = sub {
        h.join().expect("subscriber");
    }
    let arrivals = arrivals.lock().expect("lock");
    let mut missing = 0u64;
    for (id, t0) in &sent {
        match arrivals.get(id) {
            Some(t) => feed_h.saturating_record(t.duration_since(*t0).as_nanos() as u64),
            None => missing += 1,
        }
    }
    drop(client);
    app.shutdown().expect("shutdown");
    let n = args.orders;
    let ack = Percentiles::from_raw(&ack_h);
    let name = if feed_on { "order_to_ack" } else { "order_to_ack_feed_off" };
    println!("{} closed_loop=1 feed={feed_on}", summary_line("feed_latency", name, n, 0.0, &ack));
    if feed_on {
        let f = Percentiles::from_raw(&feed_h);
        println!(
            "{} closed_loop=1 missing={missing}",
            summary_line("feed_latency", "order_to_itch", n - missing, 0.0, &f)
        );
    }
}
