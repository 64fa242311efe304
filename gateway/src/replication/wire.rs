//! The replication stream's frames. Every frame is `len: u32` (the bytes after it), `kind: u8`,
//! `epoch: u32` (the sender's leadership epoch: a node refuses a peer of a lower epoch, and a
//! primary that hears of a higher one is superseded), then the payload; integers little-endian. Records travel exactly as the journal stores them
//! (header, body, zero padding), so the standby checks the same checksums and the same chain.
//!
//! | kind | direction | payload |
//! |---|---|---|
//! | `HELLO` | standby → primary | magic `SBLR`, version u16, next_seq u64 (the first record it wants), last_epoch u32 (its last record's epoch) |
//! | `WELCOME` | primary → standby | verify_every u64, written_seq u64, sync u8 (1: sync each batch before reporting) |
//! | `RECORDS` | primary → standby | whole journal records, back to back |
//! | `STATE_HASH` | primary → standby | seq u64, state_hash u64 |
//! | `HEARTBEAT` | primary → standby | written_seq u64 |
//! | `POSITION` | standby → primary | received u64, written u64, synced u64 |
//! | `REFUSE` | primary → standby | reason, UTF-8 |
//! | `SESSION_HELLO` | standby → primary | name (u8 length, UTF-8), next_seq u64 of its copy of that session store, then its last record's checksum u32 when the copy has records |
//! | `SESSION_RECORDS` | primary → standby | name, then whole records of that session store's journal |
//! | `SESSION_RESEED` | primary → standby | name, first_seq u64: drop the copy, the primary's store now starts there |
//! | `SESSION_RETAIN` | primary → standby | name, first_seq u64: the primary's store dropped its segments before it (retention) |
//! | `HANDOVER` | primary → standby | last_seq u64: a planned switchover; the primary stopped after seq last_seq, which the standby holds: promote |
//! | `TRUNCATE` | primary → standby | keep_through u64: the standby's records after it are not in the primary's history (a returning old primary's unreplicated suffix) |

use crate::replication::{MAX_FRAME_LEN_BYTES, PROTOCOL_VERSION};

/// `HELLO`'s magic: "SBLR".
pub(crate) const MAGIC: u32 = u32::from_le_bytes(*b"SBLR");
/// Bytes before a frame's payload: length, kind and epoch.
pub(crate) const FRAME_HEADER_LEN_BYTES: usize = 9;

/// A decoded frame; `Records` borrows the record bytes from the input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// The standby's greeting: where its journal ends and the epoch of its last record.
    Hello { version: u16, next_seq: u64, last_epoch: u32 },
    /// The primary's answer: how often state hashes come, how far its journal is written,
    /// whether the standby must sync before it reports (a `replicated+fsync` policy), and whether
    /// it halts without a standby (a `replicated` policy with `on_standby_loss = "halt"`: it
    /// acknowledges nothing its standby does not hold).
    Welcome { verify_every: u64, written_seq: u64, sync: bool, halts: bool },
    /// Journal records.
    Records(&'a [u8]),
    /// The primary's state hash after `seq`.
    StateHash { seq: u64, state_hash: u64 },
    /// The primary is alive; its journal's written position.
    Heartbeat { written_seq: u64 },
    /// How far the standby got.
    Position { received: u64, written: u64, synced: u64 },
    /// The primary will not serve this standby.
    Refuse(&'a str),
    /// The standby's copy of session store `name` needs records from `next_seq` on; its last
    /// record's checksum, if it has records (the primary re-seeds a copy whose history differs).
    SessionHello { name: &'a str, next_seq: u64, last_checksum: Option<u32> },
    /// Records of session store `name`.
    SessionRecords { name: &'a str, records: &'a [u8] },
    /// The primary's store `name` no longer holds what the copy needs: start over at `first_seq`.
    SessionReseed { name: &'a str, first_seq: u64 },
    /// The primary's store `name` now starts at `first_seq`: the copy drops what precedes it.
    SessionRetain { name: &'a str, first_seq: u64 },
    /// The standby's records after `keep_through` are not the primary's: it must cut them.
    Truncate { keep_through: u64 },
    /// The primary stepped down after `last_seq`: the standby (which holds it) takes over.
    Handover { last_seq: u64 },
}

const HELLO: u8 = 1;
const WELCOME: u8 = 2;
const RECORDS: u8 = 3;
const STATE_HASH: u8 = 4;
const HEARTBEAT: u8 = 5;
const POSITION: u8 = 6;
const REFUSE: u8 = 7;
const SESSION_HELLO: u8 = 8;
const SESSION_RECORDS: u8 = 9;
const SESSION_RESEED: u8 = 10;
const SESSION_RETAIN: u8 = 11;
const TRUNCATE: u8 = 12;
const HANDOVER: u8 = 13;

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    /// The length field is over [`MAX_FRAME_LEN_BYTES`] or under a frame's header.
    #[error("frame length {0} out of bounds (1..={MAX_FRAME_LEN_BYTES})")]
    Length(u32),
    /// Unknown kind byte.
    #[error("unknown frame kind {0}")]
    Kind(u8),
    /// The payload's size does not fit its kind.
    #[error("frame kind {kind} with a payload of {len} bytes")]
    Payload { kind: u8, len: usize },
    /// A HELLO without the magic.
    #[error("not a sable replication peer (bad magic)")]
    Magic,
    /// A REFUSE reason or a session name that is not UTF-8 (or is cut short).
    #[error("refusal reason or session name is not UTF-8 or is cut short")]
    Utf8,
}

/// Appends a frame sent at `epoch` to `out`.
pub(crate) fn encode(epoch: u32, frame: &Frame<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN_BYTES]);
    let kind = match *frame {
        Frame::Hello { version, next_seq, last_epoch } => {
            out.extend_from_slice(&MAGIC.to_le_bytes());
            out.extend_from_slice(&version.to_le_bytes());
            out.extend_from_slice(&next_seq.to_le_bytes());
            out.extend_from_slice(&last_epoch.to_le_bytes());
            HELLO
        }
        Frame::Truncate { keep_through } => put(out, &[keep_through], TRUNCATE),
        Frame::Handover { last_seq } => put(out, &[last_seq], HANDOVER),
        Frame::Welcome { verify_every, written_seq, sync, halts } => {
            put(out, &[verify_every, written_seq], WELCOME);
            out.push(u8::from(sync) | (u8::from(halts) << 1));
            WELCOME
        }
        Frame::Records(bytes) => {
            out.extend_from_slice(bytes);
            RECORDS
        }
        Frame::StateHash { seq, state_hash } => put(out, &[seq, state_hash], STATE_HASH),
        Frame::Heartbeat { written_seq } => put(out, &[written_seq], HEARTBEAT),
        Frame::Position { received, written, synced } => put(out, &[received, written, synced], POSITION),
        Frame::Refuse(reason) => {
            out.extend_from_slice(reason.as_bytes());
            REFUSE
        }
        Frame::SessionHello { name, next_seq, last_checksum } => {
            put_name(out, name);
            put(out, &[next_seq], SESSION_HELLO);
            if let Some(checksum) = last_checksum {
                out.extend_from_slice(&checksum.to_le_bytes());
            }
            SESSION_HELLO
        }
        Frame::SessionRecords { name, records } => {
            put_name(out, name);
            out.extend_from_slice(records);
            SESSION_RECORDS
        }
        Frame::SessionReseed { name, first_seq } => {
            put_name(out, name);
            put(out, &[first_seq], SESSION_RESEED)
        }
        Frame::SessionRetain { name, first_seq } => {
            put_name(out, name);
            put(out, &[first_seq], SESSION_RETAIN)
        }
    };
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4] = kind;
    out[start + 5..start + 9].copy_from_slice(&epoch.to_le_bytes());
}

/// A session name: one length byte, then the bytes (names are short: `store::validate_name`).
fn put_name(out: &mut Vec<u8>, name: &str) {
    let len = u8::try_from(name.len()).expect("session store names are under 256 bytes");
    out.push(len);
    out.extend_from_slice(name.as_bytes());
}

/// A name and what follows it.
fn take_name(payload: &[u8]) -> Result<(&str, &[u8]), WireError> {
    let len = *payload.first().ok_or(WireError::Utf8)? as usize;
    let name = payload.get(1..1 + len).ok_or(WireError::Utf8)?;
    let name = std::str::from_utf8(name).map_err(|_| WireError::Utf8)?;
    Ok((name, &payload[1 + len..]))
}

fn put(out: &mut Vec<u8>, values: &[u64], kind: u8) -> u8 {
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    kind
}

/// A decoded frame and the epoch it was sent at.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Received<'a> {
    /// The sender's epoch.
    pub epoch: u32,
    /// The frame.
    pub frame: Frame<'a>,
    /// Bytes it took.
    pub len: usize,
}

/// The first frame of `bytes`, or `Ok(None)` if it is not whole yet.
pub(crate) fn decode(bytes: &[u8]) -> Result<Option<Received<'_>>, WireError> {
    let Some(head) = bytes.get(..FRAME_HEADER_LEN_BYTES) else { return Ok(None) };
    let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
    let epoch = u32::from_le_bytes(head[5..9].try_into().expect("4 bytes"));
    if (len as usize) < FRAME_HEADER_LEN_BYTES - 4 || len as usize > MAX_FRAME_LEN_BYTES {
        return Err(WireError::Length(len));
    }
    let total = 4 + len as usize;
    let Some(frame) = bytes.get(..total) else { return Ok(None) };
    let (kind, payload) = (frame[4], &frame[FRAME_HEADER_LEN_BYTES..]);
    let bad = || WireError::Payload { kind, len: payload.len() };
    let u = |i: usize| u64::from_le_bytes(payload[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let frame = match (kind, payload.len()) {
        (HELLO, 18) => {
            if u32::from_le_bytes(payload[..4].try_into().expect("4 bytes")) != MAGIC {
                return Err(WireError::Magic);
            }
            let version = u16::from_le_bytes(payload[4..6].try_into().expect("2 bytes"));
            let next_seq = u64::from_le_bytes(payload[6..14].try_into().expect("8 bytes"));
            Frame::Hello {
                version,
                next_seq,
                last_epoch: u32::from_le_bytes(payload[14..18].try_into().expect("4 bytes")),
            }
        }
        (TRUNCATE, 8) => Frame::Truncate { keep_through: u(0) },
        (HANDOVER, 8) => Frame::Handover { last_seq: u(0) },
        (WELCOME, 17) if payload[16] <= 0b11 => Frame::Welcome {
            verify_every: u(0),
            written_seq: u(1),
            sync: payload[16] & 1 == 1,
            halts: payload[16] & 0b10 != 0,
        },
        (RECORDS, _) => Frame::Records(payload),
        (STATE_HASH, 16) => Frame::StateHash { seq: u(0), state_hash: u(1) },
        (HEARTBEAT, 8) => Frame::Heartbeat { written_seq: u(0) },
        (POSITION, 24) => Frame::Position { received: u(0), written: u(1), synced: u(2) },
        (REFUSE, _) => Frame::Refuse(std::str::from_utf8(payload).map_err(|_| WireError::Utf8)?),
        (SESSION_HELLO | SESSION_RECORDS | SESSION_RESEED | SESSION_RETAIN, _) => session_frame(kind, payload)?,
        (HELLO | WELCOME | STATE_HASH | HEARTBEAT | POSITION | TRUNCATE | HANDOVER, _) => return Err(bad()),
        (other, _) => return Err(WireError::Kind(other)),
    };
    Ok(Some(Received { epoch, frame, len: total }))
}

fn session_frame(kind: u8, payload: &[u8]) -> Result<Frame<'_>, WireError> {
    let (name, rest) = take_name(payload)?;
    let bad = || WireError::Payload { kind, len: payload.len() };
    let seq = || rest.try_into().map(u64::from_le_bytes).map_err(|_| bad());
    Ok(match kind {
        SESSION_HELLO => {
            let next_seq = rest.get(..8).ok_or_else(bad)?.try_into().map(u64::from_le_bytes).map_err(|_| bad())?;
            let last_checksum = match rest.len() {
                8 => None,
                12 => Some(u32::from_le_bytes(rest[8..12].try_into().expect("4 bytes"))),
                _ => return Err(bad()),
            };
            Frame::SessionHello { name, next_seq, last_checksum }
        }
        SESSION_RESEED => Frame::SessionReseed { name, first_seq: seq()? },
        SESSION_RETAIN => Frame::SessionRetain { name, first_seq: seq()? },
        _ => Frame::SessionRecords { name, records: rest },
    })
}

/// The HELLO a standby at `next_seq`, whose last record has `last_epoch`, sends.
pub(crate) fn hello(next_seq: u64, last_epoch: u32) -> Frame<'static> {
    Frame::Hello { version: PROTOCOL_VERSION, next_seq, last_epoch }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn round_trip(frame: Frame<'_>) {
        let mut out = Vec::new();
        encode(7, &frame, &mut out);
        out.extend_from_slice(b"next");
        let got = decode(&out).unwrap().expect("whole");
        assert_eq!(got, Received { epoch: 7, frame, len: out.len() - 4 });
    }

    #[test]
    fn every_frame_round_trips() {
        round_trip(hello(42, 3));
        round_trip(Frame::Truncate { keep_through: 99 });
        round_trip(Frame::Handover { last_seq: 12 });
        round_trip(Frame::Welcome { verify_every: 10_000, written_seq: 7, sync: true, halts: false });
        round_trip(Frame::Welcome { verify_every: 1, written_seq: 0, sync: false, halts: true });
        round_trip(Frame::Records(&[1, 2, 3, 4]));
        round_trip(Frame::StateHash { seq: 9, state_hash: u64::MAX });
        round_trip(Frame::Heartbeat { written_seq: 3 });
        round_trip(Frame::Position { received: 5, written: 4, synced: 3 });
        round_trip(Frame::Refuse("seq 1 is no longer in the primary's journal"));
        round_trip(Frame::SessionHello { name: "fix-CLIENT1-SABLE", next_seq: 12, last_checksum: Some(0xfeed) });
        round_trip(Frame::SessionHello { name: "sbe-1", next_seq: 1, last_checksum: None });
        round_trip(Frame::SessionRecords { name: "sbe-1", records: &[9, 8, 7] });
        round_trip(Frame::SessionReseed { name: "sbe-2", first_seq: 4097 });
        round_trip(Frame::SessionRetain { name: "sbe-2", first_seq: 8193 });
    }

    #[test]
    fn bad_frames_are_named() {
        let mut out = Vec::new();
        encode(0, &Frame::Heartbeat { written_seq: 3 }, &mut out);
        out[4] = 99;
        assert_eq!(decode(&out), Err(WireError::Kind(99)));
        out[4] = POSITION;
        assert_eq!(decode(&out), Err(WireError::Payload { kind: POSITION, len: 8 }));
        let too_long = (MAX_FRAME_LEN_BYTES as u32 + 1).to_le_bytes();
        assert_eq!(
            decode(&[too_long[0], too_long[1], too_long[2], too_long[3], 3, 0, 0, 0, 0]),
            Err(WireError::Length(too_long_u32()))
        );
        let mut hello_bytes = Vec::new();
        encode(0, &hello(1, 0), &mut hello_bytes);
        hello_bytes[FRAME_HEADER_LEN_BYTES] ^= 1;
        assert_eq!(decode(&hello_bytes), Err(WireError::Magic));
    }

    fn too_long_u32() -> u32 {
        MAX_FRAME_LEN_BYTES as u32 + 1
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic_and_prefixes_wait(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
            let mut out = Vec::new();
            encode(1, &Frame::Position { received: 1, written: 2, synced: 3 }, &mut out);
            for cut in 0..out.len() {
                prop_assert_eq!(decode(&out[..cut]), Ok(None));
            }
        }
    }
}
