//! SoupBinTCP 3.0 framing (pure): every packet is a u16 big-endian length (of what follows),
//! a packet type and its payload. Client → server: `L` login request (username 6, password
//! 10, requested session 10, requested sequence number 20, ASCII, padded), `R` heartbeat, `O`
//! logout. Server → client: `A` login accepted (session 10, sequence number 20), `J` login
//! rejected (reason 1), `S` sequenced data (one ITCH message), `H` heartbeat, `Z` end of
//! session.

/// Bytes of a login request's payload.
pub const LOGIN_LEN: usize = 46;
/// The ITCH message that ends a snapshot (as Nasdaq's GLIMPSE does): `G` and the feed's
/// sequence number, 20 ASCII digits, of the first message after the snapshot.
pub const END_OF_SNAPSHOT: u8 = b'G';

/// A login request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    /// Username (trimmed).
    pub username: String,
    /// Requested session (blank: the current one).
    pub session: [u8; 10],
    /// Requested sequence number; 0 asks for a snapshot first.
    pub seq: u64,
}

/// One server packet.
pub fn packet(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(3 + payload.len());
    p.extend_from_slice(&((payload.len() + 1) as u16).to_be_bytes());
    p.push(kind);
    p.extend_from_slice(payload);
    p
}

/// `A` login accepted for `session` at `seq`.
pub fn login_accepted(session: &[u8; 10], seq: u64) -> Vec<u8> {
    let mut payload = session.to_vec();
    payload.extend_from_slice(format!("{seq:>20}").as_bytes());
    packet(b'A', &payload)
}

/// The end-of-snapshot ITCH message: `G`, then `next_seq` as 20 ASCII digits.
pub fn end_of_snapshot(next_seq: u64) -> Vec<u8> {
    let mut m = vec![END_OF_SNAPSHOT];
    m.extend_from_slice(format!("{next_seq:>20}").as_bytes());
    m
}

/// Splits the next whole packet off `buf`: (type, payload, bytes used), or None if incomplete.
pub fn next_packet(buf: &[u8]) -> Option<(u8, &[u8], usize)> {
    let len = usize::from(u16::from_be_bytes([*buf.first()?, *buf.get(1)?]));
    if len == 0 || buf.len() < 2 + len {
        return None;
    }
    Some((buf[2], &buf[3..2 + len], 2 + len))
}

/// Parses a login request's payload; None if it is not one.
pub fn parse_login(payload: &[u8]) -> Option<Login> {
    if payload.len() != LOGIN_LEN {
        return None;
    }
    let text = |r: std::ops::Range<usize>| String::from_utf8_lossy(&payload[r]).trim().to_string();
    let seq_text = text(26..46);
    let seq = if seq_text.is_empty() { 0 } else { seq_text.parse().ok()? };
    Some(Login { username: text(0..6), session: payload[16..26].try_into().ok()?, seq })
}

/// A login request packet (the client side, for tests and tools).
pub fn login_request(username: &str, password: &str, session: &[u8; 10], seq: u64) -> Vec<u8> {
    let payload = format!("{username:<6.6}{password:<10.10}{}{seq:>20}", String::from_utf8_lossy(session));
    packet(b'L', payload.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_round_trips_and_packets_split() {
        let req = login_request("ann", "pw", b"          ", 0);
        let (kind, payload, used) = next_packet(&req).expect("whole");
        assert_eq!((kind, used), (b'L', req.len()));
        assert_eq!(parse_login(payload), Some(Login { username: "ann".into(), session: *b"          ", seq: 0 }));
        let req = login_request("ann", "pw", b"20261206SB", 42);
        assert_eq!(parse_login(&req[3..]).map(|l| l.seq), Some(42));
        assert_eq!(next_packet(&req[..10]), None);
        let a = login_accepted(b"20261206SB", 7);
        assert_eq!(&a[3..13], b"20261206SB");
        assert_eq!(std::str::from_utf8(&a[13..]).map(str::trim), Ok("7"));
    }
}
