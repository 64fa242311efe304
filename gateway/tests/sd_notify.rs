//! The real `sable` process under a stand-in for systemd's notification socket: the test binds
//! a Unix datagram socket, starts `sable run` with `NOTIFY_SOCKET` and `WATCHDOG_USEC` pointing
//! at it, and reads what sable sends.
//!
//! - `READY=1` comes only when the listeners accept connections, and before any watchdog ping.
//! - An idle appliance keeps pinging, every gap shorter than `WATCHDOG_USEC` (what systemd
//!   requires), for longer than the watchdog's silence limit; SIGTERM sends `STOPPING=1`.
//! - With the matcher stalled (the debug-build fault hook `SABLE_FAULT_STALL_MATCHER_AFTER_MS`,
//!   `gateway/src/fault.rs`), the pings stop while the process lives on: systemd would kill it.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gateway::config::DEFAULT_TOML;
use gateway::service::SILENCE_LIMIT;

/// A datagram from sable, with when it arrived.
struct Message {
    at: Instant,
    text: String,
}

impl Message {
    fn has(&self, line: &str) -> bool {
        self.text.lines().any(|l| l == line)
    }

    fn status(&self) -> Option<&str> {
        self.text.lines().find_map(|l| l.strip_prefix("STATUS="))
    }
}

struct Sable {
    child: Child,
    sock: UnixDatagram,
    addr: std::sync::mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl Sable {
    /// Starts sable on a fresh data dir with the watchdog at `watchdog`, plus `env`.
    fn start(watchdog: Duration, env: &[(&str, &str)]) -> Sable {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("sable.toml");
        std::fs::write(&config, config_text(&dir.path().join("data"))).expect("write config");
        let sock_path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&sock_path).expect("bind the notify socket");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sable"));
        cmd.args(["run", "--config"]).arg(&config);
        cmd.env("NOTIFY_SOCKET", &sock_path).env("WATCHDOG_USEC", watchdog.as_micros().to_string());
        cmd.env("RUST_LOG", "warn").env_remove("WATCHDOG_PID").envs(env.iter().copied());
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn sable");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, addr) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("sable: listening on ") {
                    let _ = tx.send(a.trim().to_string());
                }
            }
        });
        Sable { child, sock, addr, _dir: dir }
    }

    /// The next datagram within `timeout`, or `None`.
    fn recv(&self, timeout: Duration) -> Option<Message> {
        self.sock.set_read_timeout(Some(timeout.max(Duration::from_millis(1)))).expect("set timeout");
        let mut buf = [0u8; 4096];
        match self.sock.recv(&mut buf) {
            Ok(n) => Some(Message { at: Instant::now(), text: String::from_utf8_lossy(&buf[..n]).into_owned() }),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => None,
            Err(e) => panic!("notify socket: {e}"),
        }
    }

    /// Everything that arrives until `until`.
    fn collect_until(&self, until: Instant) -> Vec<Message> {
        let mut got = Vec::new();
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            if let Some(m) = self.recv(left) {
                got.push(m);
            }
        }
        got
    }

    /// Waits for READY=1 (the first message) and checks the SBE listener accepts connections.
    fn await_ready(&self) -> Instant {
        let first = self.recv(Duration::from_secs(60)).expect("a notification within 60 s");
        assert!(first.has("READY=1"), "the first notification is READY=1, got {:?}", first.text);
        assert!(first.status().is_some_and(|s| s.starts_with("running: SBE on ")), "{:?}", first.text);
        let addr: std::net::SocketAddr = self
            .addr
            .recv_timeout(Duration::from_secs(5))
            .expect("the address is printed")
            .parse()
            .expect("an address");
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).expect("the listener accepts once READY");
        first.at
    }
}

impl Drop for Sable {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_text(data_dir: &Path) -> String {
    DEFAULT_TOML
        .replace("listen = \"127.0.0.1:9100\"", "listen = \"127.0.0.1:0\"")
        .replace("listen = \"127.0.0.1:9200\"", "listen = \"127.0.0.1:0\"")
        .replace("data_dir = \"./data\"", &format!("data_dir = {:?}", data_dir.display().to_string()))
}

fn pings(messages: &[Message]) -> Vec<Instant> {
    messages.iter().filter(|m| m.has("WATCHDOG=1")).map(|m| m.at).collect()
}

#[test]
fn ready_after_the_listeners_accept_then_an_idle_appliance_keeps_pinging_until_stopping() {
    let watchdog = Duration::from_secs(2);
    let mut sable = Sable::start(watchdog, &[]);
    let ready_at = sable.await_ready();
    let watch = SILENCE_LIMIT + Duration::from_secs(3);
    let messages = sable.collect_until(ready_at + watch);
    let pings = pings(&messages);
    assert!(pings.len() as u128 >= watch.as_millis() / watchdog.as_millis(), "{} pings in {watch:?}", pings.len());
    let mut last = ready_at;
    for at in pings {
        assert!(at - last < watchdog, "a gap of {:?} between pings; systemd would kill after {watchdog:?}", at - last);
        last = at;
    }
    assert!(Instant::now() - last < watchdog, "pings stopped");

    let term = Command::new("kill").args(["-TERM", &sable.child.id().to_string()]).status().expect("run kill");
    assert!(term.success());
    let stopping = sable.collect_until(Instant::now() + Duration::from_secs(5));
    assert!(stopping.iter().any(|m| m.has("STOPPING=1")), "STOPPING=1 on SIGTERM");
    let deadline = Instant::now() + Duration::from_secs(60);
    while sable.child.try_wait().expect("wait").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(sable.child.try_wait().expect("wait").is_some_and(|s| s.success()), "sable exits 0 after SIGTERM");
}

#[test]
#[cfg_attr(not(debug_assertions), ignore = "the stall hook exists only in builds with debug assertions")]
fn a_stalled_matcher_stops_the_pings_while_the_process_lives_on() {
    let watchdog = Duration::from_secs(1);
    let stall_after = Duration::from_secs(3);
    let mut sable = Sable::start(watchdog, &[("SABLE_FAULT_STALL_MATCHER_AFTER_MS", "3000")]);
    let ready_at = sable.await_ready();

    // Before the stall: pings as usual.
    let before = pings(&sable.collect_until(ready_at + stall_after - Duration::from_millis(500)));
    assert!(before.len() >= 3, "{} pings before the stall", before.len());

    // The stall is reported in STATUS, and from then on no ping comes.
    let deadline = Instant::now() + Duration::from_secs(20);
    let stalled = loop {
        let m = sable.recv(deadline.saturating_duration_since(Instant::now())).expect("a STATUS=stalled within 20 s");
        if m.status().is_some_and(|s| s.starts_with("stalled: matcher stalled at seq")) {
            break m.at;
        }
    };
    let quiet = 3 * watchdog;
    let after = pings(&sable.collect_until(stalled + quiet));
    assert!(after.is_empty(), "{} pings after the stall was reported", after.len());
    assert!(sable.child.try_wait().expect("wait").is_none(), "the stalled process is still running");
}
