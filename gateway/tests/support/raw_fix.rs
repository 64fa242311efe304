//! A raw FIX client for the socket tests (`fix_session.rs`, `fix_conformance.rs`): it numbers
//! and stamps messages like a FIX engine, but every rule can be broken on purpose. Everything it
//! receives is checked as a QuickFIX counterparty would: it parses, it validates against sable's
//! data dictionary, and its fields come in QuickFIX's order (8, 9, 35, the other header fields
//! in ascending tag order, the body in ascending tag order, 10).
//! Include with `#[path = "support/raw_fix.rs"] mod raw_fix;`.
#![allow(dead_code)]

#[path = "small_appliance.rs"]
mod small_appliance;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gateway::config::Config;
use gateway::fix::dictionary::{Dictionary, ValidationOptions};
use gateway::fix::frame::next_message;
use gateway::fix::message::{FieldTable, parse};
use gateway::fix::writer::Writer;
use gateway::pipeline::{self, Appliance};

pub const WAIT: Duration = Duration::from_secs(10);

pub fn start(dir: &std::path::Path, edit: impl FnOnce(&mut Config)) -> Appliance {
    let mut c = small_appliance::config(dir);
    edit(&mut c);
    pipeline::start(c.validate().expect("test config validates")).expect("appliance starts")
}

pub fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64
}

/// One received message: fields in wire order.
#[derive(Clone, Debug)]
pub struct Msg(pub Vec<(u32, String)>);

impl Msg {
    pub fn get(&self, tag: u32) -> Option<&str> {
        self.0.iter().find(|(t, _)| *t == tag).map(|(_, v)| v.as_str())
    }
    pub fn ty(&self) -> &str {
        self.get(35).unwrap_or("")
    }
    pub fn seq(&self) -> u64 {
        self.get(34).and_then(|v| v.parse().ok()).unwrap_or(0)
    }
}

/// A raw FIX client: it numbers and stamps messages like a FIX engine, but every rule can be
/// broken on purpose.
pub struct Raw {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
    /// Next MsgSeqNum to send.
    pub seq: u64,
    pub sender: String,
    pub target: String,
    /// Everything received, for failure messages.
    pub log: Vec<Msg>,
}

impl Raw {
    pub fn connect(addr: SocketAddr, sender: &str) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        Raw { stream, buf: Vec::new(), seq: 1, sender: sender.into(), target: "SABLE".into(), log: Vec::new() }
    }

    /// Builds a message with the standard header (and the given seq) and the body fields.
    pub fn build(&self, msg_type: &str, seq: u64, fields: &[(u32, &str)]) -> Vec<u8> {
        let mut buf = vec![0u8; 4096];
        let mut w = Writer::new(&mut buf, "FIX.4.4", msg_type.as_bytes());
        w.str(49, &self.sender).str(56, &self.target).u64(34, seq).timestamp_ms(52, now_ns());
        for (t, v) in fields {
            w.str(*t, v);
        }
        let n = w.finish().expect("message fits");
        buf.truncate(n);
        buf
    }

    pub fn send(&mut self, msg_type: &str, fields: &[(u32, &str)]) {
        let bytes = self.build(msg_type, self.seq, fields);
        self.seq += 1;
        self.send_raw(&bytes);
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    pub fn logon(&mut self, extra: &[(u32, &str)]) -> Msg {
        let mut f = vec![(98, "0"), (108, "30")];
        f.extend_from_slice(extra);
        self.send("A", &f);
        self.expect("A")
    }

    /// The next message, or None once the server closed the connection or `timeout` passed.
    pub fn recv(&mut self, timeout: Duration) -> Option<Msg> {
        let deadline = Instant::now() + timeout;
        loop {
            match next_message(&self.buf) {
                Ok(Some((len, bytes))) => {
                    let mut table = FieldTable::default();
                    let m = parse(bytes, &mut table).expect("server messages parse");
                    // Everything sable sends validates against its own data dictionary, as a
                    // QuickFIX counterparty loading it would check.
                    if let Err(rej) = Dictionary::sable_shared().validate(&m, &ValidationOptions::default()) {
                        panic!(
                            "sable sent a message its dictionary rejects ({rej}): {:?}",
                            String::from_utf8_lossy(bytes)
                        );
                    }
                    let msg = Msg(m.iter().map(|(t, v)| (t, String::from_utf8_lossy(v).into_owned())).collect());
                    assert_quickfix_order(&msg);
                    self.buf.drain(..len);
                    self.log.push(msg.clone());
                    return Some(msg);
                }
                Ok(None) => {}
                Err(g) => panic!("server sent a garbled message: {g}; buffer {:?}", String::from_utf8_lossy(&self.buf)),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left.min(Duration::from_millis(200)))).unwrap();
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => return None,
            }
        }
    }

    /// The next message of type `ty`, skipping heartbeats; panics with what arrived otherwise.
    pub fn expect(&mut self, ty: &str) -> Msg {
        let deadline = Instant::now() + WAIT;
        while let Some(m) = self.recv(deadline.saturating_duration_since(Instant::now())) {
            if m.ty() == ty {
                return m;
            }
            if m.ty() != "0" {
                panic!("expected 35={ty}, got {:?}", m.0);
            }
        }
        panic!("no 35={ty} within {WAIT:?}; received {:?}", self.log);
    }

    /// Waits until the server closes the connection.
    pub fn expect_closed(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "server did not close the connection; received {:?}", self.log);
            if self.recv(left).is_none() {
                return;
            }
        }
    }
}

/// QuickFIX's field order: 8, 9, 35, the other header fields in ascending tag order, the body
/// in ascending tag order, 10 (sable sends no repeating groups).
pub fn assert_quickfix_order(m: &Msg) {
    let tags: Vec<u32> = m.0.iter().map(|(t, _)| *t).collect();
    let n = tags.len();
    assert!(n >= 4 && tags[..3] == [8, 9, 35] && tags[n - 1] == 10, "standard header/trailer: {:?}", m.0);
    let inner = &tags[3..n - 1];
    let dict = Dictionary::sable_shared();
    let split = inner.iter().position(|t| !dict.is_header_field(*t)).unwrap_or(inner.len());
    let (header, body) = inner.split_at(split);
    assert!(header.windows(2).all(|w| w[0] < w[1]), "header not in ascending tag order: {:?}", m.0);
    assert!(body.windows(2).all(|w| w[0] <= w[1]), "body not in ascending tag order: {:?}", m.0);
    assert!(!body.iter().any(|t| dict.is_header_field(*t)), "header field inside the body: {:?}", m.0);
}

/// Recomputes BodyLength and CheckSum of a hand-edited message.
pub fn refix(msg: &[u8]) -> Vec<u8> {
    let body_start = msg.iter().enumerate().filter(|(_, b)| **b == 1).nth(1).unwrap().0 + 1;
    let trailer = msg.len() - 7;
    let body = &msg[body_start..trailer];
    let begin_end = msg.iter().position(|&b| b == 1).unwrap();
    let mut out = msg[..=begin_end].to_vec();
    out.extend_from_slice(format!("9={}\x01", body.len()).as_bytes());
    out.extend_from_slice(body);
    let sum = out.iter().map(|&b| u32::from(b)).sum::<u32>() % 256;
    out.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    out
}
