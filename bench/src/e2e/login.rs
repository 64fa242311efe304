//! The FIXP handshake over a plain socket. `gateway::client::Client` does the same but keeps
//! its socket private; the generator needs the socket itself (one sender, one mio receiver).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use gateway::sbe::SbeMessage;
use gateway::sbe::codec::{Outbound, decode_outbound_frame, encode};
use gateway::sbe::messages::{Establish, Negotiate, char_field};

/// Keepalive asked for in Establish, in milliseconds: the longest the default configuration
/// allows, so that a run never needs client heartbeats (the sender never pauses that long).
pub const KEEPALIVE_MS: u32 = 60_000;

/// How long the handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

fn send<M: SbeMessage>(s: &mut TcpStream, msg: &M) -> Result<(), String> {
    let mut buf = [0u8; 256];
    let n = encode(msg, &mut buf).map_err(|e| format!("encoding {}: {e}", M::NAME))?;
    s.write_all(&buf[..n]).map_err(|e| format!("sending {}: {e}", M::NAME))
}

/// Reads one frame and returns its message's name (`Err` if none arrives in time).
fn recv_name(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<&'static str, String> {
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    loop {
        match decode_outbound_frame(buf) {
            Err(e) => return Err(format!("framing: {e}")),
            Ok(Some((len, msg))) => {
                let name = match msg {
                    Ok(Outbound::NegotiationResponse(_)) => "NegotiationResponse",
                    Ok(Outbound::EstablishmentAck(_)) => "EstablishmentAck",
                    Ok(other) => return Err(format!("handshake answered with {}", other.name())),
                    Err(e) => return Err(format!("decoding: {e}")),
                };
                buf.drain(..len);
                return Ok(name);
            }
            Ok(None) => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("handshake timed out".into());
        }
        s.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        let mut chunk = [0u8; 1024];
        match s.read(&mut chunk) {
            Ok(0) => return Err("connection closed during the handshake".into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("reading the handshake: {e}")),
        }
    }
}

/// Connects, negotiates and establishes; returns the socket (blocking, `TCP_NODELAY`, no
/// timeouts) ready for application messages starting at sequence number 1.
pub fn login(addr: SocketAddr, session_id: u64, user: &str, password: &str) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect_timeout(&addr, HANDSHAKE_TIMEOUT).map_err(|e| format!("connecting: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let cred = |v: &str| char_field::<20>(v.as_bytes()).map_err(|e| format!("credential: {e}"));
    let mut buf = Vec::with_capacity(1024);
    send(
        &mut s,
        &Negotiate {
            session_id: session_id.into(),
            timestamp: 1u64.into(),
            username: cred(user)?,
            password: cred(password)?,
        },
    )?;
    match recv_name(&mut s, &mut buf)? {
        "NegotiationResponse" => {}
        other => return Err(format!("Negotiate answered with {other}")),
    }
    send(
        &mut s,
        &Establish {
            session_id: session_id.into(),
            timestamp: 2u64.into(),
            keepalive_interval: KEEPALIVE_MS.into(),
            next_seq_no: 1u64.into(),
        },
    )?;
    match recv_name(&mut s, &mut buf)? {
        "EstablishmentAck" => {}
        other => return Err(format!("Establish answered with {other}")),
    }
    if !buf.is_empty() {
        return Err("unexpected bytes after EstablishmentAck".into());
    }
    s.set_read_timeout(None).map_err(|e| e.to_string())?;
    Ok(s)
}
