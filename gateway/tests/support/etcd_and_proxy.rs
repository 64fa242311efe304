//! An etcd of the test's own on loopback (the `etcd` binary, installed by
//! gateway/scripts/install-test-deps.sh), and a TCP proxy the test can cut: a network
//! partition made by the test itself. Include with
//! `#[path = "support/etcd_and_proxy.rs"] mod etcd_and_proxy;`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A single-member etcd with short raft timings (leases of 1 s are granted).
pub struct Etcd {
    child: Child,
    /// Its client URL.
    pub url: String,
    /// Its client address.
    pub addr: SocketAddr,
}

impl Etcd {
    /// Starts one with its data under `dir`; panics with the reason if `etcd` is missing.
    pub fn start(dir: &Path) -> Etcd {
        let (addr, peer) = (free_port(), free_port());
        let url = format!("http://{addr}");
        let mut child = Command::new("etcd")
            .arg("--data-dir")
            .arg(dir.join("etcd"))
            .args(["--listen-client-urls", &url, "--advertise-client-urls", &url])
            .args(["--listen-peer-urls", &format!("http://{peer}")])
            .args(["--initial-advertise-peer-urls", &format!("http://{peer}")])
            .args(["--initial-cluster", &format!("default=http://{peer}")])
            .args(["--heartbeat-interval", "10", "--election-timeout", "100"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("etcd: {e} (install it: bash gateway/scripts/install-test-deps.sh)"));
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if line.contains("ready to serve client requests") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(20)).expect("etcd serves within 20 s");
        Etcd { child, url, addr }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Forwards TCP connections to `target` until cut; once cut, every connection is closed and
/// new ones are closed on arrival.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    /// Set by [`Proxy::kill`]: the accepting thread returns, closing the listener.
    dead: Arc<AtomicBool>,
    accepting: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Proxy {
    /// A proxy in front of `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, conns) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
        let dead = Arc::new(AtomicBool::new(false));
        let (c, cs, d) = (Arc::clone(&cut), Arc::clone(&conns), Arc::clone(&dead));
        let accepting = std::thread::spawn(move || {
            for inbound in listener.incoming() {
                if d.load(Ordering::Acquire) {
                    return;
                }
                let Ok(inbound) = inbound else { continue };
                if c.load(Ordering::Acquire) {
                    continue; // dropped: closed on arrival
                }
                let Ok(outbound) = TcpStream::connect(target) else { continue };
                let mut list = cs.lock().unwrap();
                list.push(inbound.try_clone().unwrap());
                list.push(outbound.try_clone().unwrap());
                pipe(inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
                pipe(outbound, inbound);
            }
        });
        Proxy { addr, cut, conns, dead, accepting: Mutex::new(Some(accepting)) }
    }

    /// What the process behind it dying looks like: the listener closes first (connects are
    /// refused from then on), then every connection.
    pub fn kill(&self) {
        self.dead.store(true, Ordering::Release);
        let _ = TcpStream::connect(self.addr); // wakes the accepting thread
        if let Some(t) = self.accepting.lock().unwrap().take() {
            t.join().unwrap();
        }
        self.cut();
    }

    /// The partition: every connection through it closes, and new ones are refused.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::Release);
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// Polls `ready` every few milliseconds for up to `within`.
pub fn wait_until(what: &str, within: Duration, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
