//! The market-data feed end to end: the appliance in-process on loopback multicast, real SBE
//! clients entering orders, subscribers on their own threads.
//!
//! - an independent decoder (PyPI `itchfeed`, installed by
//!   `gateway/scripts/install-feed-test-deps.sh`) decodes every message block sable sent,
//!   field by field as sable meant it;
//! - subscribers rebuild the book from the feed with datagrams dropped on purpose (recovered
//!   by re-request), and a late joiner converges while orders flow; both equal the engine's
//!   book;
//! - a SoupBinTCP login for sequence 0 gets a snapshot of the book, then the live stream, and
//!   the two together equal the engine's book;
//! - across a restart, and across a failover to a promoted standby, the feed continues the
//!   session with no gap and no repeat, and every message equals what an uninterrupted run
//!   (the journal replayed) sends.
//!
//! Randomised flows print their seed (`FEED_SEED=<n>` reruns one). No timing assertions;
//! every wait is bounded.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use engine::{InstrumentId, Side as EngineSide};
use gateway::client::Client;
use gateway::config::{Config, DurabilityPolicy};
use gateway::feed::itch::Message;
use gateway::feed::mold::{self, parse_packet};
use gateway::feed::subscriber::{Book, Subscriber};
use gateway::pipeline::{self, Appliance};
use gateway::sbe::codec::Outbound;
use gateway::sbe::messages::{OrderCancelReplaceRequest, OrderCancelRequest, Side, char_field};
use zerocopy::little_endian::{I64, U32, U64};

#[path = "support/sbe_flow.rs"]
mod sbe_flow;
#[path = "support/small_appliance.rs"]
mod small_appliance;

use sbe_flow::{order, px, wait_for};

/// Longest wait for subscribers to converge.
const CONVERGE: Duration = Duration::from_secs(30);
const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A port for this test's multicast group: one the kernel just handed out, so concurrent
/// tests (and other appliances on the default group) do not share it.
fn group_port() -> u16 {
    UdpSocket::bind((LOOPBACK, 0)).and_then(|s| s.local_addr()).expect("ephemeral port").port()
}

/// The shared small test configuration with the feed on this test's group, a re-request port,
/// more orders, longer journal segments, no snapshots and quick heartbeats.
fn config(dir: &Path, port: u16) -> Config {
    let mut c = small_appliance::config(dir);
    c.engine.max_orders = 8192;
    c.journal.segment_len_bytes = 1 << 22;
    c.snapshot.every_commands = 0;
    c.feed.enabled = true;
    c.feed.group = format!("239.255.70.1:{port}");
    c.feed.rerequest_listen = "127.0.0.1:0".into();
    c.feed.heartbeat_ms = 100;
    c
}

fn start(dir: &Path, port: u16) -> Appliance {
    pipeline::start(config(dir, port).validate().expect("test config validates")).expect("appliance starts")
}

fn feed_addrs(app: &Appliance) -> (SocketAddrV4, Option<SocketAddr>) {
    app.feed_addrs().expect("the feed is on")
}

/// A deterministic generator (xorshift64*), seeded from `FEED_SEED` or the clock; prints it.
struct Rng(u64);

impl Rng {
    fn seeded(test: &str) -> Rng {
        let seed = std::env::var("FEED_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1
        });
        println!("{test}: seed {seed} (FEED_SEED={seed} reruns it)");
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Two SBE clients entering a random flow of orders, cancels and replaces on instrument 1.
struct Flow {
    clients: [Client; 2],
    live: [Vec<String>; 2],
    n: u64,
}

impl Flow {
    fn connect(app: &Appliance) -> Flow {
        let addr = app.local_addr();
        let c1 = Client::login(addr, 1, "demo", "demo").expect("session 1 logs in");
        let c2 = Client::login(addr, 2, "demo2", "demo2").expect("session 2 logs in");
        Flow { clients: [c1, c2], live: [Vec::new(), Vec::new()], n: 0 }
    }

    /// One random request, waiting for its answer (the other client's reports are read later).
    fn step(&mut self, rng: &mut Rng) {
        self.n += 1;
        let k = rng.below(2) as usize;
        let account = k as u32 + 1;
        let cl = format!("{}-{}", account, self.n);
        let price = 99.90 + rng.below(21) as f64 * 0.01;
        let lots = 1 + rng.below(20);
        let roll = rng.below(100);
        let c = &mut self.clients[k];
        if roll < 70 || self.live[k].is_empty() {
            let side = if rng.below(2) == 0 { Side::Buy } else { Side::Sell };
            c.send(&order(&cl, account, side, price, lots)).expect("send order");
            self.live[k].push(cl.clone());
        } else {
            let orig = self.live[k][rng.below(self.live[k].len() as u64) as usize].clone();
            let (cl_f, orig_f) = (char_field(cl.as_bytes()).unwrap(), char_field(orig.as_bytes()).unwrap());
            if roll < 85 {
                let cancel = OrderCancelRequest {
                    cl_ord_id: cl_f,
                    orig_cl_ord_id: orig_f,
                    order_id: U64::new(0),
                    account: U32::new(account),
                    security_id: U32::new(1),
                };
                c.send(&cancel).expect("send cancel");
            } else {
                let replace = OrderCancelReplaceRequest {
                    cl_ord_id: cl_f,
                    orig_cl_ord_id: orig_f,
                    order_id: U64::new(0),
                    account: U32::new(account),
                    security_id: U32::new(1),
                    price: px(price),
                    stop_px: I64::new(0),
                    order_qty: U64::new(lots * 10_000),
                };
                c.send(&replace).expect("send replace");
                self.live[k].push(cl.clone());
            }
        }
        let want = char_field::<20>(cl.as_bytes()).unwrap();
        wait_for(c, &format!("an answer to {cl}"), |m| match m {
            Outbound::ExecutionReport(r) if r.cl_ord_id == want => Some(()),
            Outbound::OrderCancelReject(r) if r.cl_ord_id == want => Some(()),
            _ => None,
        });
        self.drain(1 - k);
    }

    /// An order far from the touch, then a replace that only lowers its quantity (keeps its
    /// priority: an Order Cancel, `X`).
    fn reduce(&mut self) {
        self.n += 1;
        let (cl, cl2) = (format!("x-{}", self.n), format!("y-{}", self.n));
        let c = &mut self.clients[0];
        c.send(&order(&cl, 1, Side::Buy, 99.00, 10)).expect("send order");
        let replace = OrderCancelReplaceRequest {
            cl_ord_id: char_field(cl2.as_bytes()).unwrap(),
            orig_cl_ord_id: char_field(cl.as_bytes()).unwrap(),
            order_id: U64::new(0),
            account: U32::new(1),
            security_id: U32::new(1),
            price: px(99.00),
            stop_px: I64::new(0),
            order_qty: U64::new(4 * 10_000),
        };
        c.send(&replace).expect("send replace");
        let want = char_field::<20>(cl2.as_bytes()).unwrap();
        wait_for(c, &format!("an answer to {cl2}"), |m| match m {
            Outbound::ExecutionReport(r) if r.cl_ord_id == want => Some(()),
            _ => None,
        });
    }

    fn drain(&mut self, k: usize) {
        // Keep the other client's reports from piling up.
        let other = &mut self.clients[k];
        while let Ok(Some(_)) = other.recv(Duration::from_millis(0)) {}
    }
}

/// A subscriber on its own thread: every message in sequence, into a book and a log.
struct SubThread {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<(Subscriber, Book, BTreeMap<u64, Message>)>,
}

impl SubThread {
    fn spawn(group: SocketAddrV4, rerequest: Option<SocketAddr>, drop_every: u64) -> SubThread {
        let mut sub = Subscriber::join(group, LOOPBACK, rerequest).expect("subscriber joins");
        sub.drop_every = drop_every;
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let (mut book, mut log) = (Book::default(), BTreeMap::new());
            let mut on = |seq: u64, m: &Message| {
                book.apply(m);
                assert!(log.insert(seq, *m).is_none(), "message {seq} handed on twice");
            };
            let deadline = Instant::now() + CONVERGE * 4;
            let mut heartbeats_at_stop = None;
            while Instant::now() < deadline {
                sub.poll(Duration::from_millis(20), &mut on).expect("subscriber polls");
                if s.load(Ordering::Acquire) {
                    let at = *heartbeats_at_stop.get_or_insert(sub.heartbeats);
                    // Done once a heartbeat sent after the flow ended shows nothing missing.
                    if sub.heartbeats > at + 1 && sub.in_sync() {
                        break;
                    }
                }
            }
            (sub, book, log)
        });
        SubThread { stop, handle }
    }

    fn finish(self) -> (Subscriber, Book, BTreeMap<u64, Message>) {
        self.stop.store(true, Ordering::Release);
        self.handle.join().expect("subscriber thread")
    }
}

/// The engine's book after shutdown (the final snapshot), one side of instrument 1, order by
/// order: (Price(4), shares). Tick 0.01 → × 100; lot 1 share.
fn engine_side(dir: &Path, side: EngineSide) -> Vec<(u32, u32)> {
    let store = snapshot::SnapshotStore::open(pipeline::snapshot_dir(dir)).expect("snapshot store");
    let newest = store.list().expect("snapshots").into_iter().map(|s| s.seq).max().expect("a final snapshot");
    let (_, engine) = store.load(newest).expect("final snapshot loads");
    engine
        .orders_in_priority(InstrumentId(1), side, false)
        .iter()
        .map(|o| ((o.price_ticks * 100) as u32, o.leaves_lots as u32))
        .collect()
}

#[test]
fn subscribers_rebuild_the_engine_book_with_drops_recovered_and_a_late_joiner() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), group_port());
    let (group, rerequest) = feed_addrs(&app);
    let lossy = SubThread::spawn(group, rerequest, 5);
    let mut flow = Flow::connect(&app);
    let mut rng = Rng::seeded("book");
    for _ in 0..300 {
        flow.step(&mut rng);
    }
    let late = SubThread::spawn(group, rerequest, 0);
    for _ in 0..300 {
        flow.step(&mut rng);
    }
    flow.reduce();
    std::thread::sleep(Duration::from_millis(300));
    let (lossy_sub, lossy_book, lossy_log) = lossy.finish();
    let (late_sub, late_book, late_log) = late.finish();
    drop(flow);
    app.shutdown().expect("clean shutdown");

    assert!(lossy_sub.dropped > 0 && lossy_sub.requests > 0, "datagrams were dropped and re-requested");
    assert!(lossy_sub.in_sync() && late_sub.in_sync(), "both subscribers caught up");
    assert_eq!(lossy_log.keys().copied().collect::<Vec<_>>(), (1..=lossy_log.len() as u64).collect::<Vec<_>>());
    assert_eq!(lossy_log, late_log, "the late joiner saw the same messages");
    for (side, byte) in [(EngineSide::Buy, b'B'), (EngineSide::Sell, b'S')] {
        let want = engine_side(dir.path(), side);
        assert_eq!(lossy_book.side(1, byte), want, "lossy subscriber's {side:?} side");
        assert_eq!(late_book.side(1, byte), want, "late joiner's {side:?} side");
    }
    let kinds: std::collections::BTreeSet<u8> = lossy_log.values().map(Message::kind).collect();
    for k in [b'S', b'R', b'H', b'A', b'E', b'X', b'D', b'U'] {
        assert!(kinds.contains(&k), "the flow produced a {:?} message", k as char);
    }
}

#[test]
fn after_a_restart_the_feed_continues_the_session_as_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let port = group_port();
    let mut rng = Rng::seeded("restart");
    let app = start(dir.path(), port);
    let (group, first_rerequest) = feed_addrs(&app);
    // Re-requests go to whichever appliance is up: the subscriber is told the second one's
    // address by rejoining below; until then, the first one's.
    let sub = SubThread::spawn(group, first_rerequest, 0);
    let mut flow = Flow::connect(&app);
    for _ in 0..150 {
        flow.step(&mut rng);
    }
    std::thread::sleep(Duration::from_millis(300));
    let (_, _, before) = sub.finish();
    drop(flow);
    app.shutdown().expect("clean shutdown");

    let app = start(dir.path(), port);
    let (_, rerequest) = feed_addrs(&app);
    let sub = SubThread::spawn(group, rerequest, 0);
    let mut flow = Flow::connect(&app);
    for _ in 0..150 {
        flow.step(&mut rng);
    }
    std::thread::sleep(Duration::from_millis(300));
    let (after_sub, _, after) = sub.finish();
    drop(flow);
    app.shutdown().expect("clean shutdown");

    // What a primary that never stopped sends: the whole journal through the feed, once.
    let (session, uninterrupted) = replay_journal(dir.path());
    assert_eq!(after_sub.session(), Some(session), "the same session continues after the restart");
    let first_after = *after.keys().next().expect("messages after the restart");
    assert!(first_after <= before.len() as u64 + 1, "the restarted feed starts where the first stopped");
    let mut seen = before.clone();
    seen.extend(after.iter().map(|(k, v)| (*k, *v)));
    assert_eq!(seen.len(), uninterrupted.len(), "no gap, no repeat");
    assert_eq!(seen, uninterrupted, "every message as an uninterrupted run sends it");
    for (seq, m) in &after {
        if let Some(b) = before.get(seq) {
            assert_eq!(b, m, "message {seq} is the same from both runs");
        }
    }
}

#[test]
fn a_promoted_standby_continues_the_feed_as_the_primary_would_have() {
    use gateway::config::StandbyLoss;
    let (pdir, sdir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let port = group_port();
    let mut rng = Rng::seeded("failover");
    let mut pc = config(pdir.path(), port);
    pc.pipeline.durability = DurabilityPolicy::Replicated;
    pc.replication.listen = "127.0.0.1:0".into();
    pc.replication.on_standby_loss = StandbyLoss::Halt;
    pc.replication.verify_every_commands = 0;
    let primary = pipeline::start(pc.validate().expect("primary config")).expect("primary starts");
    let mut sc = config(sdir.path(), port);
    sc.replication.primary = primary.replication_addr().expect("replication on").to_string();
    let standby = gateway::standby::start(sc.validate().expect("standby config")).expect("standby starts");
    let (group, rerequest) = feed_addrs(&primary);
    let sub = SubThread::spawn(group, rerequest, 0);
    let mut flow = Flow::connect(&primary);
    for _ in 0..120 {
        flow.step(&mut rng);
    }
    std::thread::sleep(Duration::from_millis(300));
    let (_, _, before) = sub.finish();
    drop(flow);
    let p = primary.shutdown().expect("primary stops");
    let deadline = Instant::now() + CONVERGE;
    while standby.status().next_seq() != p.last_seq + 1 {
        assert!(Instant::now() < deadline, "the standby caught up");
        std::thread::sleep(Duration::from_millis(5));
    }

    let promoted = standby.promote(config(sdir.path(), port).validate().expect("config")).expect("promoted");
    let (_, rerequest) = feed_addrs(&promoted);
    let sub = SubThread::spawn(group, rerequest, 0);
    let mut flow = Flow::connect(&promoted);
    for _ in 0..120 {
        flow.step(&mut rng);
    }
    std::thread::sleep(Duration::from_millis(300));
    let (after_sub, _, after) = sub.finish();
    drop(flow);
    promoted.shutdown().expect("clean shutdown");

    let (session, uninterrupted) = replay_journal(sdir.path());
    assert_eq!(after_sub.session(), Some(session), "the promoted standby continues the session");
    let mut seen = before.clone();
    seen.extend(after.iter().map(|(k, v)| (*k, *v)));
    assert_eq!(seen.len(), uninterrupted.len(), "no gap, no repeat across the failover");
    assert_eq!(seen, uninterrupted, "every message as an uninterrupted primary sends it");
}

#[test]
fn a_soupbintcp_snapshot_then_the_live_stream_rebuild_the_engine_book() {
    use gateway::feed::soup;
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), group_port());
    c.feed.snapshot_listen = "127.0.0.1:0".into();
    let app = pipeline::start(c.validate().expect("config")).expect("appliance starts");
    let mut flow = Flow::connect(&app);
    let mut rng = Rng::seeded("soup");
    for _ in 0..150 {
        flow.step(&mut rng);
    }
    let mut tcp = std::net::TcpStream::connect(app.feed_snapshot_addr().expect("snapshot port on")).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(&soup::login_request("test", "", b"          ", 0)).unwrap();
    let (mut buf, mut book) = (Vec::new(), Book::default());
    let (mut accepted, mut snapshot_next, mut live, mut heartbeats) = (false, None, 0u64, 0u32);
    let mut more = true;
    let deadline = Instant::now() + CONVERGE;
    while heartbeats < 2 || more {
        assert!(Instant::now() < deadline, "the snapshot port went quiet");
        while let Some((kind, payload, used)) = soup::next_packet(&buf) {
            match kind {
                b'A' => accepted = true,
                b'H' => heartbeats += 1,
                b'S' if payload.first() == Some(&soup::END_OF_SNAPSHOT) => {
                    snapshot_next = std::str::from_utf8(&payload[1..]).ok().and_then(|t| t.trim().parse::<u64>().ok());
                }
                b'S' => {
                    book.apply(&Message::decode(payload).expect("ITCH message"));
                    live += u64::from(snapshot_next.is_some());
                }
                other => panic!("unexpected packet {:?}", other as char),
            }
            buf.drain(..used);
        }
        if more && snapshot_next.is_some() {
            // The live stream while orders keep flowing, once the snapshot is complete.
            for _ in 0..100 {
                flow.step(&mut rng);
            }
            more = false;
            heartbeats = 0;
        }
        let mut chunk = [0u8; 4096];
        let n = tcp.read(&mut chunk).expect("the port answers");
        assert!(n > 0, "the port closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
    assert!(accepted, "login accepted");
    assert!(snapshot_next.is_some_and(|n| n > 1), "the snapshot says which sequence number it represents");
    assert!(live > 0, "live messages followed the snapshot");
    drop((flow, tcp));
    app.shutdown().expect("clean shutdown");
    for (side, byte) in [(EngineSide::Buy, b'B'), (EngineSide::Sell, b'S')] {
        assert_eq!(book.side(1, byte), engine_side(dir.path(), side), "snapshot + live, {side:?} side");
    }
}

/// The feed of the whole journal, as `feed::rebuild::replay` produces it: (session, seq → message).
fn replay_journal(dir: &Path) -> (mold::SessionName, BTreeMap<u64, Message>) {
    use gateway::feed::{history::History, rebuild, session::FeedSession, translate::Translator};
    let cfg = config(dir, 1).validate().expect("config");
    let journal =
        journal::Journal::open_dir(pipeline::journal_dir(dir), journal::JournalConfig::default()).expect("journal");
    let history = Arc::new(std::sync::Mutex::new(History::new(1 << 16)));
    let mut s = FeedSession::new(Translator::new(&[], 8192), history, 1400, rebuild::SUFFIX);
    let mut out = BTreeMap::new();
    rebuild::replay(&journal, cfg.limits, &mut s, &mut |p: &[u8]| {
        let (h, blocks) = parse_packet(p).expect("replayed packets parse");
        for (i, b) in blocks.iter().enumerate() {
            out.insert(h.seq + i as u64, Message::decode(b).expect("replayed messages decode"));
        }
    })
    .expect("replay");
    (s.session(), out)
}

#[test]
fn an_independent_itch_decoder_reads_every_message_as_sable_meant_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = group_port();
    let app = start(dir.path(), port);
    let (group, _) = feed_addrs(&app);
    let capture = capture_thread(group);
    let mut flow = Flow::connect(&app);
    let mut rng = Rng::seeded("itchfeed");
    for _ in 0..200 {
        flow.step(&mut rng);
    }
    std::thread::sleep(Duration::from_millis(500));
    drop(flow);
    app.shutdown().expect("clean shutdown");
    let datagrams = capture.finish();

    let path = dir.path().join("capture.bin");
    let mut bytes = Vec::new();
    let mut ours = Vec::new();
    for d in &datagrams {
        bytes.extend_from_slice(&(d.len() as u32).to_be_bytes());
        bytes.extend_from_slice(d);
        let (h, blocks) = parse_packet(d).expect("sable's packets parse");
        for (i, b) in blocks.iter().enumerate() {
            ours.push((h.seq + i as u64, Message::decode(b).expect("sable's messages decode")));
        }
    }
    std::fs::write(&path, &bytes).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/feed_support/itch_decode.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(&python).arg(&script).arg(&path).output().expect("python3 runs");
    assert!(
        out.status.success(),
        "itchfeed decoding failed (run gateway/scripts/install-feed-test-deps.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(theirs.len(), ours.len(), "itchfeed decoded every message block");
    assert!(ours.len() >= 100, "a real flow was captured ({} messages)", ours.len());
    for ((seq, m), t) in ours.iter().zip(&theirs) {
        assert_eq!(t["seq"].as_u64(), Some(*seq));
        check_fields(m, t);
    }
}

/// itchfeed's field names and values against the message sable encoded.
fn check_fields(m: &Message, t: &serde_json::Value) {
    let ctx = format!("{m:?} vs {t}");
    let num = |k: &str| t[k].as_u64().unwrap_or_else(|| panic!("{k} missing: {ctx}"));
    let text = |k: &str| t[k].as_str().unwrap_or_else(|| panic!("{k} missing: {ctx}")).to_string();
    let h = m.header();
    assert_eq!(text("type").as_bytes()[0], m.kind(), "{ctx}");
    assert_eq!(num("stock_locate"), u64::from(h.stock_locate), "{ctx}");
    assert_eq!(num("tracking_number"), u64::from(h.tracking), "{ctx}");
    assert_eq!(num("timestamp"), h.timestamp_ns, "{ctx}");
    let s = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    match *m {
        Message::SystemEvent { event_code, .. } => assert_eq!(text("event_code"), s(&[event_code]), "{ctx}"),
        Message::StockDirectory { stock, round_lot_size, .. } => {
            assert_eq!((text("stock"), num("round_lot_size")), (s(&stock), u64::from(round_lot_size)), "{ctx}");
        }
        Message::TradingAction { stock, state, .. } => {
            assert_eq!((text("stock"), text("trading_state")), (s(&stock), s(&[state])), "{ctx}");
        }
        Message::AddOrder { order_ref, side, shares, stock, price, .. } => {
            let got =
                (num("order_reference_number"), text("buy_sell_indicator"), num("shares"), text("stock"), num("price"));
            assert_eq!(got, (order_ref, s(&[side]), u64::from(shares), s(&stock), u64::from(price)), "{ctx}");
        }
        Message::Executed { order_ref, shares, match_number, .. } => {
            let got = (num("order_reference_number"), num("executed_shares"), num("match_number"));
            assert_eq!(got, (order_ref, u64::from(shares), match_number), "{ctx}");
        }
        Message::Cancel { order_ref, shares, .. } => {
            assert_eq!(
                (num("order_reference_number"), num("cancelled_shares")),
                (order_ref, u64::from(shares)),
                "{ctx}"
            );
        }
        Message::Delete { order_ref, .. } => assert_eq!(num("order_reference_number"), order_ref, "{ctx}"),
        Message::Replace { orig_ref, new_ref, shares, price, .. } => {
            let got = (num("order_reference_number"), num("new_order_reference_number"), num("shares"), num("price"));
            assert_eq!(got, (orig_ref, new_ref, u64::from(shares), u64::from(price)), "{ctx}");
        }
        Message::ExecutedWithPrice { .. } | Message::Trade { .. } => panic!("not produced by this flow: {ctx}"),
    }
}

/// Captures every datagram sent to `group` until finished.
struct Capture {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<Vec<u8>>>,
}

fn capture_thread(group: SocketAddrV4) -> Capture {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    s.set_reuse_address(true).unwrap();
    s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, group.port())).into()).unwrap();
    s.join_multicast_v4(group.ip(), &LOOPBACK).unwrap();
    let socket: UdpSocket = s.into();
    socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let st = Arc::clone(&stop);
    let handle = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65_536];
        while !st.load(Ordering::Acquire) {
            if let Ok(n) = socket.recv(&mut buf) {
                let (h, _) = parse_packet(&buf[..n]).expect("sable's packets parse");
                if h.count != 0 && h.count != mold::END_OF_SESSION {
                    out.push(buf[..n].to_vec());
                }
            }
        }
        out
    });
    Capture { stop, handle }
}

impl Capture {
    fn finish(self) -> Vec<Vec<u8>> {
        self.stop.store(true, Ordering::Release);
        self.handle.join().expect("capture thread")
    }
}
