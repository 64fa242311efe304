//! The FIX client of the failover cycles: session `CLIENT2` (account 2, no credentials), one
//! resting sell at a time, resuming its session on the promoted node as a FIX engine does: a
//! Logon that continues its MsgSeqNum (no reset); when the server asks for a resend (the last
//! order before the kill, or the one sent right after the Logon, held back behind the gap), a
//! SequenceReset-GapFill over everything and the order still waiting for its acknowledgement
//! sent again under the same ClOrdID (the journal check then catches a duplicate); heartbeats
//! on test requests. Server resends (PossDup) are read like any report.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gateway::fix::frame::{BEGIN_STRING, next_message};
use gateway::fix::message::{FieldTable, parse};
use gateway::fix::writer::Writer;

/// The session's SenderCompID (the default configuration's second FIX session).
const SENDER: &str = "CLIENT2";
/// sable's CompID.
const TARGET: &str = "SABLE";
/// HeartBtInt asked for, seconds.
const HEART_BT_INT_S: u64 = 30;
/// Longest wait for a Logon reply or an acknowledgement.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// What one read of the connection brought.
enum Step {
    /// The acknowledgement (ExecutionReport New) of the order waited for.
    Acked,
    /// The server asked for a resend: gap-filled; the order waited for must be sent again.
    Resend,
    /// The Logon reply.
    LoggedOn,
    /// The server logged out (its text): answered with a Logout.
    LoggedOut(String),
    /// Anything else (handled).
    Other,
}

/// The FIX trader.
pub struct FixTrader {
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    table: FieldTable,
    /// Next MsgSeqNum to send.
    next_out: u64,
    next_cl: u64,
    /// ClOrdIDs acknowledged.
    pub acked: Vec<String>,
    /// ResendRequests the server sent after a Logon (a gap the in-flight order left).
    pub resend_requests: u64,
}

impl Default for FixTrader {
    fn default() -> Self {
        FixTrader {
            stream: None,
            buf: Vec::new(),
            table: FieldTable::default(),
            next_out: 1,
            next_cl: 0,
            acked: Vec::new(),
            resend_requests: 0,
        }
    }
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

impl FixTrader {
    /// Forgets the connection (the node it was on is gone).
    pub fn disconnect(&mut self) {
        self.stream = None;
        self.buf.clear();
    }

    /// Sends one message of type `ty` with `fields` after the standard header.
    fn send(&mut self, ty: &[u8], fields: &[(u32, &str)]) -> Result<(), String> {
        let mut out = [0u8; 512];
        let mut w = Writer::new(&mut out, BEGIN_STRING, ty);
        w.str(49, SENDER).str(56, TARGET).u64(34, self.next_out).timestamp_ms(52, now_ns());
        for (tag, v) in fields {
            w.str(*tag, v);
        }
        let n = w.finish().map_err(|e| format!("writing FIX: {e}"))?;
        self.next_out += 1;
        let s = self.stream.as_mut().ok_or("not connected")?;
        s.write_all(&out[..n]).map_err(|e| format!("sending FIX: {e}"))
    }

    /// Connects and logs on, continuing the session's sequence numbers; false if the node
    /// does not take the connection or the Logon.
    fn logon(&mut self, addr: SocketAddr) -> Result<bool, String> {
        let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else { return Ok(false) };
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        self.stream = Some(s);
        self.buf.clear();
        let hb = HEART_BT_INT_S.to_string();
        if self.send(b"A", &[(98, "0"), (108, &hb)]).is_err() {
            self.disconnect();
            return Ok(false);
        }
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            match self.read_step(None, deadline) {
                Ok(Step::LoggedOn) => return Ok(true),
                Ok(Step::LoggedOut(text)) => {
                    self.disconnect();
                    return if text.is_empty() { Ok(false) } else { Err(format!("Logon refused: {text}")) };
                }
                Ok(_) => {}
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Broken) => {
                    self.disconnect();
                    return Ok(false);
                }
            }
        }
    }

    /// Sends the next order and waits for its acknowledgement; false if the connection broke.
    pub fn send_one(&mut self, addr: SocketAddr) -> Result<bool, String> {
        if self.stream.is_none() && !self.logon(addr)? {
            return Ok(false);
        }
        let cl = format!("x{}", self.next_cl);
        self.next_cl += 1;
        let px = format!("{}.{:02}", 200 + self.next_cl % 100, self.next_cl % 100);
        let deadline = Instant::now() + STEP_TIMEOUT;
        'send: loop {
            if self.send_order(&cl, "10", &px).is_err() {
                self.disconnect();
                return Ok(false);
            }
            loop {
                match self.read_step(Some(&cl), deadline) {
                    Ok(Step::Acked) => {
                        self.acked.push(cl);
                        return Ok(true);
                    }
                    Ok(Step::Resend) => continue 'send,
                    Ok(Step::LoggedOut(_)) => {
                        self.disconnect();
                        return Ok(false);
                    }
                    Ok(_) => {}
                    Err(Failure::Fatal(e)) => return Err(format!("{cl}: {e}")),
                    Err(Failure::Broken) => {
                        self.disconnect();
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// Sends one more order without waiting for it (in flight when the primary is killed: it
    /// may or may not be journaled, and it is never counted as acknowledged).
    pub fn fire(&mut self) {
        let cl = format!("x{}", self.next_cl);
        self.next_cl += 1;
        if self.stream.is_some() && self.send_order(&cl, "1", "299.99").is_err() {
            self.disconnect();
        }
    }

    /// A resting limit sell of account 2 (it never crosses the SBE client's buys).
    fn send_order(&mut self, cl: &str, qty: &str, px: &str) -> Result<(), String> {
        let t = fix_time();
        let order =
            [(11, cl), (1, "2"), (55, "DEMO"), (54, "2"), (60, t.as_str()), (38, qty), (40, "2"), (44, px), (59, "1")];
        self.send(b"D", &order)
    }

    /// Reads until the server logs out (a stepping-down primary says goodbye and waits for
    /// the reply), answering it; gives up after `timeout` or when the connection closes.
    pub fn answer_logout(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.stream.is_some() {
            match self.read_step(None, deadline) {
                Ok(Step::LoggedOut(_)) | Err(_) => self.disconnect(),
                Ok(_) => {}
            }
        }
    }

    /// Reconnects to `addr` until an order is acknowledged there.
    pub fn until_acked(&mut self, addr: SocketAddr) -> Result<(), String> {
        crate::failover::retry_until_acked("FIX ", addr, || self.send_one(addr))
    }

    /// Reads until one whole message is handled.
    fn read_step(&mut self, waiting_for: Option<&str>, deadline: Instant) -> Result<Step, Failure> {
        loop {
            if let Some((len, step)) = self.handle_buffered(waiting_for)? {
                self.buf.drain(..len);
                return Ok(step);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Failure::Fatal("no answer from the server in time".into()));
            }
            let s = self.stream.as_mut().ok_or(Failure::Broken)?;
            s.set_read_timeout(Some(left)).map_err(|_| Failure::Broken)?;
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk) {
                Ok(0) => return Err(Failure::Broken),
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => return Err(Failure::Broken),
            }
        }
    }

    /// Handles the first whole message in the buffer: its length and what it was.
    fn handle_buffered(&mut self, waiting_for: Option<&str>) -> Result<Option<(usize, Step)>, Failure> {
        let (len, bytes) = match next_message(&self.buf) {
            Ok(Some((len, bytes))) => (len, bytes.to_vec()),
            Ok(None) => return Ok(None),
            Err(g) => return Err(Failure::Fatal(format!("garbled FIX from the server: {g}"))),
        };
        let mut table = std::mem::take(&mut self.table);
        let step = self.handle_message(&bytes, &mut table, waiting_for);
        self.table = table;
        Ok(Some((len, step?)))
    }

    /// Handles one parsed message.
    fn handle_message(
        &mut self,
        bytes: &[u8],
        table: &mut FieldTable,
        waiting_for: Option<&str>,
    ) -> Result<Step, Failure> {
        let msg = parse(bytes, table).map_err(|e| Failure::Fatal(format!("unparsable FIX: {e}")))?;
        let field = |t| msg.get(t).map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
        let broken = |_: String| Failure::Broken;
        let step = match msg.msg_type() {
            b"A" => Step::LoggedOn,
            b"5" => {
                // Answer at once, as a FIX engine does: a stepping-down primary waits for it.
                let _ = self.send(b"5", &[]);
                Step::LoggedOut(field(58))
            }
            b"8" if waiting_for == Some(field(11).as_str()) && field(150) == "0" => Step::Acked,
            b"8" if waiting_for == Some(field(11).as_str()) => {
                return Err(Failure::Fatal(format!("ExecType {} ({})", field(150), field(58))));
            }
            b"1" => {
                let id = field(112);
                self.send(b"0", &[(112, &id)]).map_err(broken)?;
                Step::Other
            }
            b"2" => {
                self.resend_requests += 1;
                self.gap_fill(&field(7)).map_err(broken)?;
                if waiting_for.is_some() { Step::Resend } else { Step::Other }
            }
            _ => Step::Other,
        };
        Ok(step)
    }

    /// Answers a ResendRequest from `begin`: one SequenceReset-GapFill up to the next MsgSeqNum.
    fn gap_fill(&mut self, begin: &str) -> Result<(), String> {
        let begin: u64 = begin.parse().map_err(|_| format!("ResendRequest BeginSeqNo {begin:?}"))?;
        let (next, sending) = (self.next_out, fix_time());
        self.next_out = begin;
        let r = self.send(b"4", &[(43, "Y"), (122, &sending), (123, "Y"), (36, &next.to_string())]);
        self.next_out = next;
        r
    }
}

/// Why reading failed.
enum Failure {
    /// The connection is gone (the node died): reconnect.
    Broken,
    /// The server answered wrongly, or not in time: the run fails.
    Fatal(String),
}

/// Now as a FIX UTCTimestamp with milliseconds.
fn fix_time() -> String {
    let mut out = [0u8; 64];
    let mut w = Writer::new(&mut out, BEGIN_STRING, b"0");
    w.timestamp_ms(60, now_ns());
    let n = w.finish().unwrap_or(0);
    let text = String::from_utf8_lossy(&out[..n]).into_owned();
    text.split('\u{1}').find_map(|f| f.strip_prefix("60=")).unwrap_or("").to_owned()
}
