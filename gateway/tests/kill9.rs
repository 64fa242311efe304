//! Process-level drills against the real `sable` binary.
//!
//! SIGTERM: the appliance drains, tells its sessions, writes a final snapshot at the last
//! sequence number and exits 0.
//!
//! SIGKILL: several sessions stream 100k non-crossing orders into a real `sable`
//! process, which is SIGKILLed mid-stream. After it, every order the clients saw acknowledged
//! must be live in the recovered engine with its acknowledged terms (`written` durability
//! survives a process crash), and replaying the whole journal offline from scratch must give
//! the recovered state hash. The orders never cross, so "acknowledged state" is exactly "New,
//! with the acknowledged quantity".

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[path = "support/sbe_flow.rs"]
mod sbe_flow;

use engine::{AccountId, ClOrdId, Engine};
use gateway::client::Client;
use gateway::config::{Config, DEFAULT_TOML};
use gateway::sbe::codec::{Outbound, decode_outbound};
use gateway::sbe::messages::{ExecType, NewOrderSingle, Side};
use journal::{Journal, JournalConfig};
use snapshot::SnapshotStore;

const SESSIONS: u64 = 4;
const ORDERS_PER_SESSION: u64 = 25_000;
const KILL_AFTER_ACKS: u64 = 30_000;
const WINDOW: u64 = 200;

fn config_text(data_dir: &std::path::Path) -> String {
    let mut text = DEFAULT_TOML
        .replace("listen = \"127.0.0.1:9100\"", "listen = \"127.0.0.1:0\"")
        .replace("listen = \"127.0.0.1:9200\"", "listen = \"127.0.0.1:0\"")
        .replace("data_dir = \"./data\"", &format!("data_dir = {:?}", data_dir.display().to_string()))
        .replace("every_commands = 100000", "every_commands = 20000");
    for n in 3..=SESSIONS {
        text.push_str(&format!(
            "\n[[accounts]]\nid = {n}\n\n[[sessions]]\nsession_id = {n}\nusername = \"u{n}\"\npassword = \"p{n}\"\naccounts = [{n}]\n"
        ));
    }
    text
}

fn credentials(n: u64) -> (String, String) {
    match n {
        1 => ("demo".into(), "demo".into()),
        2 => ("demo2".into(), "demo2".into()),
        _ => (format!("u{n}"), format!("p{n}")),
    }
}

/// (account, cl_ord_id, order_id, qty_lots) of one acknowledged order.
type Ack = (u32, String, u64, u64);

fn order(n: u64, i: u64) -> (NewOrderSingle, String) {
    let cl = format!("s{n}-{i}");
    // Buys below 100, sells above: nothing ever trades.
    let (side, ticks) = if i.is_multiple_of(2) {
        (Side::Buy, 9_000 + (i % 999) as i64)
    } else {
        (Side::Sell, 10_001 + (i % 999) as i64)
    };
    (sbe_flow::order(&cl, n as u32, side, ticks as f64 * 0.01, 1 + i % 7), cl)
}

/// Sends this session's orders in windows and records every acknowledgement until the
/// connection dies (or all are acknowledged).
fn stream(addr: std::net::SocketAddr, n: u64, acks_total: Arc<AtomicU64>) -> Vec<Ack> {
    let (user, pass) = credentials(n);
    let mut c = Client::login(addr, n, &user, &pass).expect("login");
    let mut acks = Vec::new();
    let mut i = 0;
    'outer: while i < ORDERS_PER_SESSION {
        let end = (i + WINDOW).min(ORDERS_PER_SESSION);
        for k in i..end {
            if c.send(&order(n, k).0).is_err() {
                break 'outer;
            }
        }
        let mut got = 0;
        while got < end - i {
            let frame = match c.recv(Duration::from_secs(10)) {
                Ok(Some(f)) => f,
                Ok(None) => panic!("session {n}: no acknowledgement within 10 s while the server is up"),
                Err(_) => break 'outer,
            };
            let Ok(Outbound::ExecutionReport(r)) = decode_outbound(&frame[6..]) else { continue };
            assert_eq!(r.exec_type, ExecType::New.to_u8(), "non-crossing orders are only acknowledged");
            let cl = gateway::sbe::messages::char_field_str(&r.cl_ord_id).expect("ascii").to_string();
            acks.push((n as u32, cl, r.order_id.get(), r.order_qty.get() / 10_000));
            acks_total.fetch_add(1, Ordering::Relaxed);
            got += 1;
        }
        i = end;
    }
    acks
}

/// Starts `sable run --config FILE` and returns it with the address it listens on. A thread
/// keeps draining its stderr so the child never blocks on a full pipe.
fn spawn_sable(config_path: &std::path::Path) -> (std::process::Child, std::net::SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sable"))
        .args(["run", "--config"])
        .arg(config_path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sable");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("sable: listening on ") {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let addr =
        rx.recv_timeout(Duration::from_secs(30)).expect("sable reports its address").parse().expect("an address");
    (child, addr)
}

#[test]
fn sigterm_drains_takes_a_final_snapshot_and_exits_zero() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let config_path = dir.path().join("sable.toml");
    std::fs::write(&config_path, config_text(&data_dir)).expect("write config");
    let (mut child, addr) = spawn_sable(&config_path);

    // The example client: one order, its acknowledgement printed.
    let out = Command::new(env!("CARGO_BIN_EXE_sable"))
        .args(["client", "--config"])
        .arg(&config_path)
        .args(["--addr", &addr.to_string(), "--wait-ms", "200", "order", "--side", "buy", "--price", "80.25"])
        .args(["--qty", "10", "--symbol", "DEMO", "--cl-ord-id", "cli1"])
        .output()
        .expect("run sable client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "sable client failed: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("exec_type=New ord_status=New order_id=1 cl_ord_id=cli1"), "{stdout}");

    let mut c = Client::login(addr, 1, "demo", "demo").expect("login");
    for i in 0..10 {
        c.send(&order(1, i).0).expect("send");
    }
    let mut acked = 0;
    while acked < 10 {
        let frame = c.recv(Duration::from_secs(10)).expect("socket").expect("an acknowledgement within 10 s");
        if let Ok(Outbound::ExecutionReport(_)) = decode_outbound(&frame[6..]) {
            acked += 1;
        }
    }
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("run kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "sable did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "exit status {exit:?}");
    // The session was told, then closed.
    let mut saw_terminate = false;
    while let Ok(Some(frame)) = c.recv(Duration::from_secs(5)) {
        saw_terminate |= matches!(decode_outbound(&frame[6..]), Ok(Outbound::Terminate(_)));
    }
    assert!(saw_terminate, "sessions get Terminate(ShuttingDown)");
    let store = SnapshotStore::open(gateway::pipeline::snapshot_dir(&data_dir)).expect("snapshots");
    let newest = store.list().expect("list").last().map(|s| s.seq);
    // 5 configuration commands (instrument + 4 accounts), the client's order and 10 more.
    assert_eq!(newest, Some(5 + 1 + 10), "the final snapshot is at the last sequence number");
    let (_, engine) = store.load(16).expect("final snapshot loads");
    assert_eq!(engine.live_orders(), 11);
}

#[test]
fn every_acknowledged_order_survives_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let config_path = dir.path().join("sable.toml");
    std::fs::write(&config_path, config_text(&data_dir)).expect("write config");
    let cfg = Config::load(&config_path).expect("config parses").validate().expect("config validates");

    let (mut child, addr) = spawn_sable(&config_path);

    let acks_total = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (1..=SESSIONS)
        .map(|n| {
            let acks_total = Arc::clone(&acks_total);
            std::thread::spawn(move || stream(addr, n, acks_total))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while acks_total.load(Ordering::Relaxed) < KILL_AFTER_ACKS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL sable");
    let status = child.wait().expect("reap sable");
    assert!(!status.success(), "the process was killed, not stopped");
    let acks: Vec<Ack> = clients.into_iter().flat_map(|h| h.join().expect("client thread")).collect();
    assert!(acks.len() as u64 >= KILL_AFTER_ACKS.min(SESSIONS * ORDERS_PER_SESSION) / 2, "the stream was under way");
    eprintln!("{} orders acknowledged before SIGKILL", acks.len());

    // Recover as start-up does: newest snapshot + journal (a torn tail is cut).
    let journal = Journal::open_dir(
        gateway::pipeline::journal_dir(&data_dir),
        JournalConfig { segment_len_bytes: cfg.raw.journal.segment_len_bytes, ..JournalConfig::default() },
    )
    .expect("journal opens after a crash");
    let store = SnapshotStore::open(gateway::pipeline::snapshot_dir(&data_dir)).expect("snapshots");
    let (engine, report) = snapshot::restore(Some(&store), &journal, cfg.limits).expect("restore");
    eprintln!(
        "recovered seq {} from snapshot {:?} + {} records",
        engine.seq(),
        report.snapshot.map(|s| s.seq),
        report.replayed
    );
    for (account, cl, order_id, qty_lots) in &acks {
        let id = ClOrdId::new(cl.as_bytes()).expect("valid id");
        let v = engine
            .order_by_client(AccountId(*account), &id)
            .unwrap_or_else(|| panic!("acknowledged order {cl} of account {account} is lost"));
        assert_eq!((v.id.0, v.qty_lots, v.leaves_lots), (*order_id, *qty_lots, *qty_lots), "order {cl}");
    }

    // Offline replay of the whole journal from an empty engine reproduces the recovered state.
    let mut fresh = Engine::new(cfg.limits);
    snapshot::replay_journal(&mut fresh, &journal).expect("replay");
    assert_eq!(fresh.seq(), engine.seq());
    assert_eq!(fresh.state_hash(), engine.state_hash(), "replay and snapshot+replay agree");
    drop(journal);

    // And the appliance itself restarts from it.
    let app = gateway::pipeline::start(cfg).expect("restart after SIGKILL");
    assert_eq!(app.restored(), (engine.seq(), engine.state_hash()));
    app.shutdown().expect("clean shutdown");
}
