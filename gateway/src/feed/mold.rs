//! MoldUDP64 packets (pure): a 20-byte header — Session (10 ASCII bytes), Sequence Number (u64,
//! of the first message), Message Count (u16) — then message blocks of a u16 length and the
//! message. A count of 0 is a heartbeat (the sequence number is the next one to come); 0xFFFF
//! ends the session. A request packet (client → re-request server) is the same 20-byte header
//! whose count is the number of messages asked for.

/// Bytes of the packet header.
pub const HEADER_LEN: usize = 20;
/// Message count of an end-of-session packet.
pub const END_OF_SESSION: u16 = 0xFFFF;
/// Bytes of a session name.
pub const SESSION_LEN: usize = 10;

/// A session name: 10 ASCII bytes.
pub type SessionName = [u8; SESSION_LEN];

/// A packet that cannot be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoldError {
    /// Shorter than the header.
    #[error("packet of {0} bytes is shorter than the {HEADER_LEN}-byte header")]
    Short(usize),
    /// A message block runs past the end of the packet.
    #[error("message block {index} runs past the end of the packet")]
    Truncated {
        /// Block index within the packet.
        index: usize,
    },
}

/// A packet header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketHeader {
    /// Session name.
    pub session: SessionName,
    /// Sequence number of the first message (heartbeat, end of session: the next one).
    pub seq: u64,
    /// Message count (0 heartbeat, 0xFFFF end of session).
    pub count: u16,
}

impl PacketHeader {
    /// The 20 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..SESSION_LEN].copy_from_slice(&self.session);
        b[10..18].copy_from_slice(&self.seq.to_be_bytes());
        b[18..20].copy_from_slice(&self.count.to_be_bytes());
        b
    }

    /// Parses the first 20 bytes.
    pub fn parse(b: &[u8]) -> Result<PacketHeader, MoldError> {
        if b.len() < HEADER_LEN {
            return Err(MoldError::Short(b.len()));
        }
        Ok(PacketHeader {
            session: b[..SESSION_LEN].try_into().expect("length checked"),
            seq: u64::from_be_bytes(b[10..18].try_into().expect("length checked")),
            count: u16::from_be_bytes(b[18..20].try_into().expect("length checked")),
        })
    }
}

/// Splits a downstream packet into its header and message blocks.
pub fn parse_packet(b: &[u8]) -> Result<(PacketHeader, Vec<&[u8]>), MoldError> {
    let header = PacketHeader::parse(b)?;
    let n = if header.count == END_OF_SESSION { 0 } else { usize::from(header.count) };
    let mut blocks = Vec::with_capacity(n);
    let mut at = HEADER_LEN;
    for index in 0..n {
        let len_bytes = b.get(at..at + 2).ok_or(MoldError::Truncated { index })?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        blocks.push(b.get(at + 2..at + 2 + len).ok_or(MoldError::Truncated { index })?);
        at += 2 + len;
    }
    Ok((header, blocks))
}

/// Builds downstream packets in one preallocated buffer: start, push messages while they fit,
/// take the bytes.
pub struct PacketBuilder {
    buf: Vec<u8>,
    max_bytes: usize,
    count: u16,
}

impl PacketBuilder {
    /// A builder of packets of at most `max_bytes` (header included).
    pub fn new(max_bytes: usize) -> Self {
        PacketBuilder { buf: Vec::with_capacity(max_bytes), max_bytes, count: 0 }
    }

    /// Starts a packet whose first message will have sequence number `seq`.
    pub fn start(&mut self, session: &SessionName, seq: u64) {
        self.buf.clear();
        self.buf.extend_from_slice(&PacketHeader { session: *session, seq, count: 0 }.to_bytes());
        self.count = 0;
    }

    /// Messages in the packet so far.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// Bytes left for message blocks.
    pub fn room(&self) -> usize {
        self.max_bytes.saturating_sub(self.buf.len())
    }

    /// Appends one message block; false (nothing appended) when it does not fit.
    pub fn push(&mut self, msg: &[u8]) -> bool {
        if 2 + msg.len() > self.room() || self.count == END_OF_SESSION - 1 {
            return false;
        }
        self.buf.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(msg);
        self.count += 1;
        self.buf[18..20].copy_from_slice(&self.count.to_be_bytes());
        true
    }

    /// The packet's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The packet's messages so far, in order.
    pub fn blocks(&self) -> impl Iterator<Item = &[u8]> {
        let mut at = HEADER_LEN.min(self.buf.len());
        std::iter::from_fn(move || {
            let len = usize::from(u16::from_be_bytes(self.buf.get(at..at + 2)?.try_into().ok()?));
            let msg = self.buf.get(at + 2..at + 2 + len)?;
            at += 2 + len;
            Some(msg)
        })
    }
}

/// A heartbeat (count 0) announcing `next_seq`.
pub fn heartbeat(session: &SessionName, next_seq: u64) -> [u8; HEADER_LEN] {
    PacketHeader { session: *session, seq: next_seq, count: 0 }.to_bytes()
}

/// End of session (count 0xFFFF) after the last message `next_seq - 1`.
pub fn end_of_session(session: &SessionName, next_seq: u64) -> [u8; HEADER_LEN] {
    PacketHeader { session: *session, seq: next_seq, count: END_OF_SESSION }.to_bytes()
}

/// A re-request asking for `count` messages from `seq`.
pub fn request(session: &SessionName, seq: u64, count: u16) -> [u8; HEADER_LEN] {
    PacketHeader { session: *session, seq, count }.to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: SessionName = *b"20261206AA";

    #[test]
    fn a_packet_holds_blocks_until_the_maximum_and_parses_back() {
        let mut b = PacketBuilder::new(HEADER_LEN + 2 * (2 + 19));
        b.start(&S, 41);
        assert!(b.push(&[b'D'; 19]));
        assert!(b.push(&[b'D'; 19]));
        assert!(!b.push(&[b'D'; 1]), "no room for a third block");
        assert_eq!(b.bytes().len(), 62);
        let (h, blocks) = parse_packet(b.bytes()).expect("parses");
        assert_eq!(h, PacketHeader { session: S, seq: 41, count: 2 });
        assert_eq!(blocks, vec![&[b'D'; 19][..], &[b'D'; 19][..]]);
        assert_eq!(b.blocks().collect::<Vec<_>>(), blocks);
        b.start(&S, 43);
        assert_eq!(b.blocks().count(), 0);
    }

    #[test]
    fn heartbeats_and_end_of_session_are_bare_headers() {
        let hb = heartbeat(&S, 9);
        let (h, blocks) = parse_packet(&hb).expect("parses");
        assert_eq!((h.seq, h.count, blocks.len()), (9, 0, 0));
        let eos = end_of_session(&S, 9);
        let (h, blocks) = parse_packet(&eos).expect("parses");
        assert_eq!((h.seq, h.count, blocks.len()), (9, END_OF_SESSION, 0));
        assert_eq!(PacketHeader::parse(&request(&S, 5, 3)), Ok(PacketHeader { session: S, seq: 5, count: 3 }));
    }

    #[test]
    fn truncated_packets_are_errors() {
        let mut b = PacketBuilder::new(1400);
        b.start(&S, 1);
        assert!(b.push(&[1, 2, 3]));
        let bytes = b.bytes();
        assert_eq!(parse_packet(&bytes[..bytes.len() - 1]).map(|_| ()), Err(MoldError::Truncated { index: 0 }));
        assert_eq!(parse_packet(&bytes[..5]).map(|_| ()), Err(MoldError::Short(5)));
    }
}
