//! Kill/promote cycles of a primary and its hot standby as real `sable` processes on loopback.
//!
//! Each cycle: a client sends orders to the primary one at a time (durability `replicated`,
//! `on_standby_loss = "halt"`, so an acknowledged order is in both journals) and records every
//! acknowledgement; at a random moment the primary is SIGKILLed; the standby gets SIGUSR1
//! (promotion by hand, at the next epoch); the dead primary restarts as a standby on its own
//! data directory and rejoins: the promoted node tells it to cut the records it journaled that
//! nobody else received (never acknowledged: `halt`), and it follows from there, so the next
//! cycle runs the other way round; the client reconnects to the promoted node and sends an
//! order. The time from SIGKILL to that order's acknowledgement is the cycle's failover time:
//! promotion, the returning node rejoining (`halt` acknowledges nothing without a standby),
//! reconnection.
//!
//! A FIX client (session CLIENT2, [`crate::failover_fix`]) trades beside the SBE one and
//! resumes its session on the promoted node (no sequence reset).
//!
//! At the end the last primary is stopped with SIGTERM and checked offline: every order that
//! was acknowledged, over SBE or FIX, is in its journal exactly once, and replaying that
//! journal from scratch gives the state hash the process reported.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use engine::{CommandBody, Engine};
use gateway::client::Client;
use gateway::config::{Config, DEFAULT_TOML};
use gateway::sbe::codec::{Outbound, decode_outbound};
use gateway::sbe::messages::{
    ExecType, NewOrderSingle, OrdType, PRICE9_NULL, QTY4_NULL, SelfTradePrevention, Side, TimeInForce, char_field,
    char_field_str,
};
use journal::{Journal, JournalConfig};
use zerocopy::little_endian::{I64, U32, U64};

use crate::rng::Rng;

/// How long a process may take to say it is up, and a client to get an acknowledgement.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// What one run does.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `sable` binary.
    pub sable: PathBuf,
    /// Scratch directory (two data directories and the configurations).
    pub dir: PathBuf,
    /// Kill/promote cycles.
    pub cycles: u32,
    /// Orders sent before the kill, at most (the kill comes at a random one of them).
    pub max_orders_per_cycle: u64,
    /// Seed of the kill moments.
    pub seed: u64,
    /// Planned switchovers instead of kills: SIGUSR2 makes the primary step down and hand
    /// over; the standby promotes itself; the old primary rejoins as the standby.
    pub switchover: bool,
    /// Automatic failover: an `etcd` (from PATH) on loopback holds the leadership; nobody
    /// sends SIGUSR1, the standby promotes itself: it deposes the dead primary (revokes its lease: its
    /// reconnects are refused and it ran `halt`) and wins the election.
    pub etcd: bool,
    /// Leader lease TTL of the etcd runs, seconds (etcd counts whole seconds; it grants 1 only
    /// with the short raft timings [`Etcd::start`] sets).
    pub lease_ttl_s: u64,
}

/// A single-member etcd on loopback, its data in the run's scratch directory.
struct Etcd {
    _child: Proc,
    url: String,
}

impl Etcd {
    fn start(dir: &Path) -> Result<Etcd, String> {
        let (client, peer) = (free_port()?, free_port()?);
        let url = format!("http://{client}");
        let mut child = Command::new("etcd")
            .arg("--data-dir")
            .arg(dir.join("etcd"))
            .args(["--listen-client-urls", &url, "--advertise-client-urls", &url])
            .args(["--listen-peer-urls", &format!("http://{peer}")])
            .args(["--initial-advertise-peer-urls", &format!("http://{peer}")])
            .args(["--initial-cluster", &format!("default=http://{peer}")])
            // Short raft timings on loopback: leases of 1 s are granted and expire on time.
            .args(["--heartbeat-interval", "10", "--election-timeout", "100"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning etcd (install it with gateway/scripts/install-test-deps.sh): {e}"))?;
        let lines = stderr_lines(&mut child, &dir.join("etcd.log"));
        let proc = Proc { child, lines };
        proc.wait_for("ready to serve client requests")?;
        Ok(Etcd { _child: proc, url })
    }
}

/// What a run measured and checked.
#[derive(Debug, Default)]
pub struct Outcome {
    /// SIGKILL (or SIGUSR2: step-down) of the primary → the first acknowledgement from the
    /// promoted standby, per cycle.
    pub failover: Vec<Duration>,
    /// Orders acknowledged over the run (SBE and FIX).
    pub acked: u64,
    /// Of them, over FIX (the session resumed on each promoted node).
    pub fix_acked: u64,
    /// ResendRequests the FIX client answered (its in-flight order left a gap).
    pub fix_resend_requests: u64,
    /// Acknowledged orders missing from the final primary's journal (must be 0).
    pub lost: u64,
    /// Orders in the journal more than once (must be 0).
    pub duplicated: u64,
    /// (reported by the process at SIGTERM, from an offline replay of its journal).
    pub state_hashes: (u64, u64),
}

/// One node's addresses and files.
struct Node {
    dir: PathBuf,
    sbe: SocketAddr,
    fix: SocketAddr,
    repl: SocketAddr,
}

impl Node {
    fn new(dir: PathBuf) -> Result<Node, String> {
        Ok(Node { dir, sbe: free_port()?, fix: free_port()?, repl: free_port()? })
    }

    /// Its configuration, following `peer`'s replication port when it is a standby.
    fn config_text(&self, peer: &Node, etcd: Option<(&str, u64)>) -> Result<String, String> {
        let mut text = DEFAULT_TOML.to_string();
        if let Some((url, lease_ttl_s)) = etcd {
            let node = self.dir.file_name().map_or("node".into(), |n| n.to_string_lossy().into_owned());
            let from = "etcd = \"\"";
            if !text.contains(from) {
                return Err(format!("the default configuration no longer has `{from}`"));
            }
            text = text.replacen(from, &format!("etcd = \"{url}\"\nnode = \"{node}\""), 1);
            text = text.replacen("lease_ttl_s = 2", &format!("lease_ttl_s = {lease_ttl_s}"), 1);
        }
        let data = self.dir.join("data");
        for (from, to) in [
            ("data_dir = \"./data\"", format!("data_dir = \"{}\"", data.display())),
            ("listen = \"127.0.0.1:9100\"", format!("listen = \"{}\"", self.sbe)),
            ("listen = \"127.0.0.1:9200\"", format!("listen = \"{}\"", self.fix)),
            ("durability = \"written\"", "durability = \"replicated\"".to_string()),
            ("listen = \"\"\n# Standby", format!("listen = \"{}\"\n# Standby", self.repl)),
            ("primary = \"127.0.0.1:9300\"", format!("primary = \"{}\"", peer.repl)),
            ("on_standby_loss = \"degrade\"", "on_standby_loss = \"halt\"".to_string()),
        ] {
            if !text.contains(from) {
                return Err(format!("the default configuration no longer has `{from}`"));
            }
            text = text.replacen(from, &to, 1);
        }
        Config::parse(&text).and_then(Config::validate).map_err(|e| format!("failover configuration: {e}"))?;
        Ok(text)
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("sable.toml")
    }

    /// Starts `sable <mode>` on this node and waits for the stderr line starting with `ready`.
    fn spawn(
        &self,
        sable: &Path,
        mode: &str,
        (peer, etcd): (&Node, Option<(&str, u64)>),
        ready: &str,
    ) -> Result<Proc, String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
        std::fs::write(self.config_path(), self.config_text(peer, etcd)?).map_err(|e| e.to_string())?;
        let mut child = Command::new(sable)
            .args([mode, "--config"])
            .arg(self.config_path())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", sable.display()))?;
        let lines = stderr_lines(&mut child, &self.dir.join("sable.log"));
        let proc = Proc { child, lines };
        proc.wait_for(ready)?;
        Ok(proc)
    }
}

/// A running `sable` process and its stderr, line by line.
struct Proc {
    child: Child,
    lines: Receiver<String>,
}

impl Proc {
    /// Waits for a stderr line containing `what`; returns it.
    fn wait_for(&self, what: &str) -> Result<String, String> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(what) => return Ok(line),
                Ok(_) => {}
                Err(_) => return Err(format!("no `{what}` from sable within {} s", STEP_TIMEOUT.as_secs())),
            }
        }
    }

    fn signal(&self, sig: i32) -> Result<(), String> {
        let pid = i32::try_from(self.child.id()).map_err(|e| e.to_string())?;
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        if unsafe { libc::kill(pid, sig) } != 0 {
            return Err(format!("kill({pid}, {sig}): {}", std::io::Error::last_os_error()));
        }
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child's stderr line by line, each also appended to `log` (the node's `sable.log`, for
/// reading after a failed run).
fn stderr_lines(child: &mut Child, log: &Path) -> Receiver<String> {
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut log = std::fs::OpenOptions::new().create(true).append(true).open(log).ok();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(f) = log.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn free_port() -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.local_addr().map_err(|e| e.to_string())
}

/// A resting buy that never trades (sells are never sent).
fn order(cl: &str, i: u64) -> NewOrderSingle {
    NewOrderSingle {
        cl_ord_id: char_field(cl.as_bytes()).expect("short ascii id"),
        account: U32::new(1),
        security_id: U32::new(1),
        side: Side::Buy.to_u8(),
        ord_type: OrdType::Limit.to_u8(),
        time_in_force: TimeInForce::GoodTillCancel.to_u8(),
        exec_inst: 0,
        self_trade_prevention: SelfTradePrevention::AccountDefault.to_u8(),
        price: I64::new((9_000 + (i % 900) as i64) * 10_000_000),
        stop_px: I64::new(PRICE9_NULL),
        order_qty: U64::new(10_000),
        display_qty: U64::new(QTY4_NULL),
        expire_time: U64::new(0),
    }
}

/// The order client: session 1, one order at a time.
struct Trader {
    client: Option<Client>,
    next: u64,
    acked: Vec<String>,
}

impl Trader {
    /// Sends the next order and waits for its acknowledgement; false if the connection broke.
    fn send_one(&mut self, addr: SocketAddr) -> Result<bool, String> {
        if self.client.is_none() {
            self.client = Client::login(addr, 1, "demo", "demo").ok();
        }
        let Some(c) = self.client.as_mut() else { return Ok(false) };
        let cl = format!("f{}", self.next);
        self.next += 1;
        if c.send(&order(&cl, self.next)).is_err() {
            self.client = None;
            return Ok(false);
        }
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = match c.recv(left) {
                Ok(Some(frame)) => frame,
                Ok(None) => return Err(format!("{cl}: no acknowledgement within {} s", STEP_TIMEOUT.as_secs())),
                Err(_) => {
                    self.client = None;
                    return Ok(false);
                }
            };
            if let Ok(Outbound::ExecutionReport(r)) = decode_outbound(&frame[6..])
                && char_field_str(&r.cl_ord_id) == Some(cl.as_str())
            {
                if r.exec_type != ExecType::New.to_u8() {
                    return Err(format!("{cl}: exec type {} instead of New", r.exec_type));
                }
                self.acked.push(cl);
                return Ok(true);
            }
        }
    }

    /// Reconnects to `addr` until an order is acknowledged there.
    fn until_acked(&mut self, addr: SocketAddr) -> Result<(), String> {
        retry_until_acked("", addr, || self.send_one(addr))
    }
}

/// Calls `send_one` (which reconnects as needed and says whether its order was acknowledged)
/// every 2 ms until it is, for at most [`STEP_TIMEOUT`]; `what` names the protocol in the error.
pub(crate) fn retry_until_acked(
    what: &str,
    addr: SocketAddr,
    mut send_one: impl FnMut() -> Result<bool, String>,
) -> Result<(), String> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !send_one()? {
        if Instant::now() > deadline {
            return Err(format!("no {what}acknowledgement from {addr} within {} s", STEP_TIMEOUT.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// Runs the cycles; an `Err` is a failure to run, a non-zero `lost`/`duplicated` or differing
/// hashes in the outcome are failures of sable.
pub fn run(opts: &Options) -> Result<Outcome, String> {
    let mut rng = Rng::new(opts.seed);
    let (mut a, mut b) = (Node::new(opts.dir.join("a"))?, Node::new(opts.dir.join("b"))?);
    let etcd = if opts.etcd { Some(Etcd::start(&opts.dir)?) } else { None };
    let url = etcd.as_ref().map(|e| (e.url.as_str(), opts.lease_ttl_s));
    let mut primary = a.spawn(&opts.sable, "run", (&b, url), "sable: listening on")?;
    let mut standby = b.spawn(&opts.sable, "standby", (&a, url), "following the primary")?;
    let mut trader = Trader { client: None, next: 0, acked: Vec::new() };
    let mut fix = crate::failover_fix::FixTrader::default();
    let mut outcome = Outcome::default();
    for _ in 0..opts.cycles {
        let orders = 1 + rng.below(opts.max_orders_per_cycle);
        for _ in 0..orders {
            if !trader.send_one(a.sbe)? || !fix.send_one(a.fix)? {
                return Err("the primary dropped a client before the kill".into());
            }
        }
        fix.fire();
        let killed = Instant::now();
        if opts.switchover {
            primary.signal(libc::SIGUSR2)?;
            fix.answer_logout(STEP_TIMEOUT);
            primary.wait_for("sable: stepped down")?;
            let _ = primary.child.wait();
        } else {
            primary.signal(libc::SIGKILL)?;
            if !opts.etcd {
                standby.signal(libc::SIGUSR1)?;
            }
        }
        drop(primary);
        // The old primary rejoins as the new standby, keeping its journal: with `halt` the
        // promoted primary acknowledges once a standby holds the orders again.
        std::mem::swap(&mut a, &mut b);
        primary = standby;
        standby = b.spawn(&opts.sable, "standby", (&a, url), "following the primary")?;
        trader.client = None;
        trader.until_acked(a.sbe)?;
        outcome.failover.push(killed.elapsed());
        fix.disconnect();
        fix.until_acked(a.fix)?;
    }
    drop(standby);
    primary.signal(libc::SIGTERM)?;
    let stopped = primary.wait_for("sable: stopped at seq")?;
    let reported = parse_state_hash(&stopped)?;
    let _ = primary.child.wait();
    outcome.fix_acked = fix.acked.len() as u64;
    outcome.fix_resend_requests = fix.resend_requests;
    let acked: Vec<String> = trader.acked.into_iter().chain(fix.acked).collect();
    outcome.acked = acked.len() as u64;
    check_journal(&a, &acked, reported, &mut outcome)?;
    Ok(outcome)
}

fn parse_state_hash(line: &str) -> Result<u64, String> {
    let hex = line.split("state_hash ").nth(1).and_then(|s| s.split_whitespace().next());
    hex.and_then(|h| u64::from_str_radix(h, 16).ok()).ok_or_else(|| format!("no state hash in `{line}`"))
}

/// Counts each acknowledged order in the stopped node's journal and replays it from scratch.
fn check_journal(node: &Node, acked: &[String], reported: u64, outcome: &mut Outcome) -> Result<(), String> {
    let cfg = Config::parse(&std::fs::read_to_string(node.config_path()).map_err(|e| e.to_string())?)
        .and_then(Config::validate)
        .map_err(|e| e.to_string())?;
    let journal = Journal::open_dir(node.dir.join("data").join("journal"), JournalConfig::default())
        .map_err(|e| format!("opening the final journal: {e}"))?;
    let mut engine = Engine::new(cfg.limits);
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut sink = engine::CountingSink::default();
    for record in journal.read_from(journal.first_seq()).map_err(|e| e.to_string())? {
        let record = record.map_err(|e| e.to_string())?;
        let cmd = engine::Command::decode(record.body).map_err(|e| e.to_string())?;
        if let CommandBody::NewOrder(o) = &cmd.body {
            *seen.entry(o.cl_ord_id.as_str().to_owned()).or_default() += 1;
        }
        engine.apply(&cmd, &mut sink).map_err(|e| format!("replaying seq {}: {e}", cmd.seq))?;
    }
    outcome.lost = acked.iter().filter(|cl| !seen.contains_key(*cl)).count() as u64;
    outcome.duplicated = seen.values().filter(|n| **n > 1).count() as u64;
    outcome.state_hashes = (reported, engine.state_hash());
    Ok(())
}
