//! The FIX 4.4 Logon over a plain socket: `35=A` with ResetSeqNumFlag (141=Y), so both
//! sequence numbers start at 1 whatever the session store holds, and the longest HeartBtInt the
//! default configuration allows.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gateway::fix::frame::{BEGIN_STRING, next_message};
use gateway::fix::message::{FieldTable, parse};
use gateway::fix::writer::Writer;

use super::wire::{FIX_TARGET_COMP_ID, fix_sender_comp_id};

/// HeartBtInt (108) asked for in the Logon, in seconds: the default `[fix] heartbeat_max_s`.
/// The appliance heartbeats only after that long without sending and test-requests only after
/// 1.2 times that long without receiving; during a run both directions carry orders and acks
/// far more often, so the run never needs heartbeats.
pub const HEART_BT_INT_S: u32 = 120;

/// The MsgSeqNum of the first order after [`login`] (the Logon took 1).
pub const FIRST_ORDER_SEQ: u64 = 2;

/// How long the Logon may take.
const LOGON_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects as connection `c`'s session (SenderCompID `BENCH<c+1>`, TargetCompID `SABLE`, no
/// credentials), logs on with 141=Y and waits for the Logon reply. Returns the socket
/// (blocking, `TCP_NODELAY`, no timeouts); the next MsgSeqNum to send is [`FIRST_ORDER_SEQ`].
pub fn login(addr: SocketAddr, c: usize) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect_timeout(&addr, LOGON_TIMEOUT).map_err(|e| format!("connecting: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let unix_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|e| e.to_string())?.as_nanos() as i64;
    let sender = fix_sender_comp_id(c);
    let mut out = [0u8; 256];
    let mut w = Writer::new(&mut out, BEGIN_STRING, b"A");
    w.str(49, &sender)
        .str(56, FIX_TARGET_COMP_ID)
        .u64(34, 1)
        .timestamp_ms(52, unix_ns)
        .u64(98, 0)
        .u64(108, u64::from(HEART_BT_INT_S))
        .bool(141, true);
    let n = w.finish().map_err(|e| format!("writing the Logon: {e}"))?;
    s.write_all(&out[..n]).map_err(|e| format!("sending the Logon: {e}"))?;

    let deadline = Instant::now() + LOGON_TIMEOUT;
    let mut buf = Vec::with_capacity(1024);
    let mut table = FieldTable::default();
    loop {
        match next_message(&buf) {
            Err(g) => return Err(format!("garbled reply to the Logon: {g}")),
            Ok(Some((len, bytes))) => {
                let msg = parse(bytes, &mut table).map_err(|e| format!("unparsable reply to the Logon: {e}"))?;
                let text = || msg.get(58).map(String::from_utf8_lossy).unwrap_or_default().into_owned();
                match msg.msg_type() {
                    b"A" if msg.get(141) == Some(b"Y") && msg.get_u64(34) == Ok(1) => {}
                    b"A" => return Err("the Logon reply did not confirm the sequence reset (141=Y, 34=1)".into()),
                    b"5" => return Err(format!("Logon refused with Logout: {}", text())),
                    other => {
                        return Err(format!("Logon answered with 35={}: {}", String::from_utf8_lossy(other), text()));
                    }
                }
                if buf.len() != len {
                    return Err("unexpected bytes after the Logon reply".into());
                }
                s.set_read_timeout(None).map_err(|e| e.to_string())?;
                return Ok(s);
            }
            Ok(None) => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("Logon timed out".into());
        }
        s.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        let mut chunk = [0u8; 1024];
        match s.read(&mut chunk) {
            Ok(0) => return Err("connection closed during the Logon".into()),
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e) => return Err(format!("reading the Logon reply: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn heart_bt_int_is_the_longest_the_default_allows() {
        let defaults = gateway::config::Config::default_config().fix.defaults;
        assert_eq!(super::HEART_BT_INT_S, defaults.heartbeat_max_s);
    }
}
