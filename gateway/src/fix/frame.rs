//! FIX 4.4 framing: splits a receive buffer into whole tag=value messages.
//!
//! A message is
//!
//! ```text
//! 8=FIX.4.4<SOH>9=<BodyLength><SOH> ...body... 10=<NNN><SOH>
//! ```
//!
//! where BodyLength counts the bytes after the SOH that ends the `9=` field up to and including
//! the SOH before `10=`, and the checksum is the sum of every byte before `10=`, modulo 256, as
//! exactly three digits.
//!
//! [`next_message`] is a streaming splitter: give it whatever bytes have arrived and it returns
//! the first complete message, `None` when more bytes are needed, or [`Garbled`] with the number
//! of bytes to drop. FIX treats a garbled message (BodyLength that does not land on the
//! checksum, bad checksum, bytes that do not start with `8=FIX`) as never received: it is
//! neither rejected nor counted against the sequence number, and the receiver resynchronises at
//! the next `8=FIX`. A well-framed message with another BeginString (`8=FIX.4.2`, `8=FIXT.1.1`)
//! is *not* garbled: it is handed on, so the session can answer it as FIX specifies (Logout
//! "Incorrect BeginString", then disconnect).

/// The only BeginString sable speaks.
pub const BEGIN_STRING: &str = "FIX.4.4";

/// Every sable message starts with these bytes: BeginString, then the tag of BodyLength.
pub const MESSAGE_PREFIX: &[u8] = b"8=FIX.4.4\x019=";

/// Longest BeginString value framed (`FIX.4.4` is 7; `FIXT.1.1` 8).
pub const MAX_BEGIN_STRING_LEN_BYTES: usize = 16;

/// The field delimiter, SOH.
pub const SOH: u8 = 0x01;

/// Size of the trailing checksum field `10=NNN<SOH>` in bytes.
pub const CHECKSUM_FIELD_LEN_BYTES: usize = 7;

pub use crate::limits::MAX_MESSAGE_LEN_BYTES;

/// Most digits accepted in the BodyLength value (leading zeros included): enough for any
/// message up to [`MAX_MESSAGE_LEN_BYTES`] (asserted), with leading zeros to spare.
pub const MAX_BODY_LENGTH_DIGITS: usize = 6;
const _: () = assert!(10usize.pow(MAX_BODY_LENGTH_DIGITS as u32) > MAX_MESSAGE_LEN_BYTES);

/// Where a scan for the next message resumes: FIX receivers resynchronise at the next `8=FIX`.
const RESYNC_MARKER: &[u8] = b"8=FIX";

/// Why bytes at the head of the buffer cannot be a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GarbledReason {
    /// The buffer does not start with `8=FIX.4.4<SOH>9=`.
    #[error("message does not start with 8=FIX.4.4<SOH>9=")]
    BeginString,
    /// The BodyLength value is empty, not digits, or longer than
    /// [`MAX_BODY_LENGTH_DIGITS`].
    #[error("BodyLength (9) is not a number")]
    BodyLengthFormat,
    /// The message would be longer than [`MAX_MESSAGE_LEN_BYTES`].
    #[error("BodyLength {body_len} makes the message longer than {} bytes", MAX_MESSAGE_LEN_BYTES)]
    TooLong {
        /// The declared BodyLength.
        body_len: usize,
    },
    /// The byte BodyLength points at is not the start of `<SOH>10=`.
    #[error("BodyLength {body_len} does not end where CheckSum (10) starts")]
    BodyLength {
        /// The declared BodyLength.
        body_len: usize,
    },
    /// The CheckSum field is not three digits followed by SOH.
    #[error("CheckSum (10) is not three digits and SOH")]
    ChecksumFormat,
    /// The CheckSum value differs from the sum of the bytes.
    #[error("CheckSum {declared:03} differs from the computed {computed:03}")]
    Checksum {
        /// The value in the message.
        declared: u16,
        /// The sum of the bytes before `10=`, modulo 256.
        computed: u8,
    },
}

/// A garbled message at the head of the buffer: drop `skip` bytes and call
/// [`next_message`] again. `skip` is at least 1 and at most the buffer's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("garbled FIX message ({reason}); skip {skip} bytes")]
pub struct Garbled {
    /// Bytes to discard: the whole message when its boundaries are known (checksum mismatch),
    /// otherwise up to the next `8=FIX` (or the end of the buffer, keeping a trailing partial
    /// `8=FIX`).
    pub skip: usize,
    /// What was wrong.
    pub reason: GarbledReason,
}

/// The FIX checksum of `bytes`: their sum modulo 256.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |sum, &b| sum.wrapping_add(b))
}

/// Splits the first message off `buf`.
///
/// Returns `Ok(Some((consumed, message)))` when a whole, well-framed message with a correct
/// checksum starts at `buf[0]`: `message` is `buf[..consumed]`, from `8=` to the SOH after the
/// checksum. Returns `Ok(None)` when the bytes so far are a valid beginning and more are needed.
/// Returns [`Garbled`] as soon as the head of the buffer cannot be a message.
pub fn next_message(buf: &[u8]) -> Result<Option<(usize, &[u8])>, Garbled> {
    let Some(prefix_len) = begin_string(buf)? else { return Ok(None) };
    let Some((body_start, body_len)) = body_length(buf, prefix_len)? else { return Ok(None) };
    let body_end = body_start + body_len;
    let total = body_end + CHECKSUM_FIELD_LEN_BYTES;
    if total > MAX_MESSAGE_LEN_BYTES {
        return Err(resync(buf, GarbledReason::TooLong { body_len }));
    }
    // Reject a misplaced checksum as early as its first bytes arrive, so a too-short
    // BodyLength does not wait for bytes that only prove the same thing.
    let expected_tail: &[u8] = b"10=";
    let tail = &buf[buf.len().min(body_end)..buf.len().min(body_end + 3)];
    if buf.len() >= body_end && (buf[body_end - 1] != SOH || tail != &expected_tail[..tail.len()]) {
        return Err(resync(buf, GarbledReason::BodyLength { body_len }));
    }
    let Some(message) = buf.get(..total) else {
        return Ok(None);
    };
    check_checksum(buf, message, body_end)?;
    Ok(Some((total, message)))
}

/// The head of a message: `8=FIX`, the rest of a printable BeginString of at most
/// [`MAX_BEGIN_STRING_LEN_BYTES`], SOH, `9=`. Returns the length of that prefix, `None` while
/// it is incomplete.
#[inline]
fn begin_string(buf: &[u8]) -> Result<Option<usize>, Garbled> {
    let head = &buf[..buf.len().min(RESYNC_MARKER.len())];
    if head != &RESYNC_MARKER[..head.len()] {
        return Err(resync(buf, GarbledReason::BeginString));
    }
    let value_start = 2;
    let mut soh = None;
    for (i, &b) in buf.iter().enumerate().skip(RESYNC_MARKER.len()) {
        if b == SOH {
            soh = Some(i);
            break;
        }
        if i - value_start >= MAX_BEGIN_STRING_LEN_BYTES || !(b.is_ascii_graphic()) {
            return Err(resync(buf, GarbledReason::BeginString));
        }
    }
    let Some(soh) = soh else { return Ok(None) };
    let tag = &buf[soh + 1..buf.len().min(soh + 3)];
    if tag != &b"9="[..tag.len()] {
        return Err(resync(buf, GarbledReason::BeginString));
    }
    let prefix_len = soh + 3;
    Ok((buf.len() > prefix_len).then_some(prefix_len))
}

/// The BodyLength value at `buf[pos..]`: at most [`MAX_BODY_LENGTH_DIGITS`] digits up to SOH.
/// Returns where the body starts and its length, `None` while the value is incomplete.
#[inline]
fn body_length(buf: &[u8], mut pos: usize) -> Result<Option<(usize, usize)>, Garbled> {
    let mut body_len = 0usize;
    let mut digits = 0usize;
    loop {
        let Some(&b) = buf.get(pos) else {
            return Ok(None);
        };
        match b {
            b'0'..=b'9' if digits < MAX_BODY_LENGTH_DIGITS => {
                body_len = body_len * 10 + usize::from(b - b'0');
                digits += 1;
            }
            SOH if digits > 0 => return Ok(Some((pos + 1, body_len))),
            _ => return Err(resync(buf, GarbledReason::BodyLengthFormat)),
        }
        pos += 1;
    }
}

/// The CheckSum field of a whole `message` (its `10=` at `body_end`): three digits, SOH, and
/// the sum of the bytes before it.
#[inline]
fn check_checksum(buf: &[u8], message: &[u8], body_end: usize) -> Result<(), Garbled> {
    let field = &message[body_end + 3..];
    let mut declared = 0u16;
    for &d in &field[..3] {
        if !d.is_ascii_digit() {
            return Err(resync(buf, GarbledReason::ChecksumFormat));
        }
        declared = declared * 10 + u16::from(d - b'0');
    }
    if field[3] != SOH {
        return Err(resync(buf, GarbledReason::ChecksumFormat));
    }
    let computed = checksum(&message[..body_end]);
    if declared != u16::from(computed) {
        // The boundaries are right (BodyLength landed on `10=`), so the whole message goes.
        return Err(Garbled { skip: message.len(), reason: GarbledReason::Checksum { declared, computed } });
    }
    Ok(())
}

/// Builds a [`Garbled`] whose skip reaches the next possible message start after `buf[0]`.
fn resync(buf: &[u8], reason: GarbledReason) -> Garbled {
    Garbled { skip: resync_skip(buf), reason }
}

/// Bytes before the next `8=FIX` after `buf[0]`; a trailing partial `8=FIX` is kept, since the
/// rest of it may still arrive. Always at least 1 (for a non-empty buffer), so callers progress.
pub fn resync_skip(buf: &[u8]) -> usize {
    if buf.is_empty() {
        return 0;
    }
    for i in 1..buf.len() {
        let rest = &buf[i..];
        let n = rest.len().min(RESYNC_MARKER.len());
        if rest[..n] == RESYNC_MARKER[..n] {
            return i;
        }
    }
    buf.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames `body` (which must end with SOH) with a correct BodyLength and checksum.
    fn framed(body: &str) -> Vec<u8> {
        let mut m = format!("8=FIX.4.4\x019={}\x01{}", body.len(), body).into_bytes();
        let sum = checksum(&m);
        m.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
        m
    }

    #[test]
    fn splits_one_message_and_leaves_the_rest() {
        let msg = framed("35=0\x0149=A\x0156=B\x0134=1\x0152=20240101-00:00:00\x01");
        let mut buf = msg.clone();
        buf.extend_from_slice(b"8=FIX");
        let (n, m) = next_message(&buf).unwrap().unwrap();
        assert_eq!(n, msg.len());
        assert_eq!(m, &msg[..]);
        assert_eq!(next_message(&buf[n..]), Ok(None));
    }

    #[test]
    fn every_prefix_needs_more_bytes() {
        let msg = framed("35=0\x0134=1\x01");
        for cut in 0..msg.len() {
            assert_eq!(next_message(&msg[..cut]), Ok(None), "prefix of {cut} bytes");
        }
    }

    #[test]
    fn checksum_mismatch_skips_the_whole_message() {
        let mut msg = framed("35=0\x0134=1\x01");
        let n = msg.len();
        msg[n - 2] = if msg[n - 2] == b'9' { b'0' } else { msg[n - 2] + 1 };
        let err = next_message(&msg).unwrap_err();
        assert_eq!(err.skip, n);
        assert!(matches!(err.reason, GarbledReason::Checksum { .. }));
    }

    #[test]
    fn wrong_body_length_resyncs_at_next_begin_string() {
        let good = framed("35=0\x0134=1\x01");
        let mut buf = b"8=FIX.4.4\x019=3\x0135=0\x0134=1\x0110=000\x01".to_vec();
        let bad_len = buf.len();
        buf.extend_from_slice(&good);
        let err = next_message(&buf).unwrap_err();
        assert_eq!(err.reason, GarbledReason::BodyLength { body_len: 3 });
        assert_eq!(err.skip, bad_len);
        assert_eq!(next_message(&buf[err.skip..]).unwrap().unwrap().1, &good[..]);
    }

    #[test]
    fn garbage_before_a_message_is_skipped() {
        let good = framed("35=0\x0134=1\x01");
        let mut buf = b"xx8=FIX.4.2\x01".to_vec();
        buf.extend_from_slice(&good);
        let mut rest = &buf[..];
        loop {
            match next_message(rest) {
                Ok(Some((_, m))) => {
                    assert_eq!(m, &good[..]);
                    break;
                }
                Ok(None) => panic!("message not found"),
                Err(g) => rest = &rest[g.skip..],
            }
        }
    }

    #[test]
    fn resync_keeps_a_trailing_partial_begin_string() {
        assert_eq!(resync_skip(b"abc8=F"), 3);
        assert_eq!(resync_skip(b"abc"), 3);
        assert_eq!(resync_skip(b"8"), 1);
        assert_eq!(resync_skip(b""), 0);
    }

    #[test]
    fn bad_body_length_values_are_garbled() {
        for buf in [&b"8=FIX.4.4\x019=\x01"[..], b"8=FIX.4.4\x019=1x", b"8=FIX.4.4\x019=1234567"] {
            assert_eq!(next_message(buf).unwrap_err().reason, GarbledReason::BodyLengthFormat, "{buf:?}");
        }
        let err = next_message(b"8=FIX.4.4\x019=9999\x01").unwrap_err();
        assert_eq!(err.reason, GarbledReason::TooLong { body_len: 9999 });
        // Another BeginString is framed (the session answers it with Logout), bytes that are
        // no BeginString at all are garbled.
        let other = framed("35=0\x01");
        let other = String::from_utf8(other).unwrap().replacen("FIX.4.4", "FIX.4.2", 1);
        let sum = checksum(&other.as_bytes()[..other.len() - 7]);
        let other = format!("{}{sum:03}\x01", &other[..other.len() - 4]);
        assert_eq!(next_message(other.as_bytes()).unwrap().map(|(n, _)| n), Some(other.len()));
        assert_eq!(next_message(b"8=FIX 4.4\x019=5\x01").unwrap_err().reason, GarbledReason::BeginString);
        assert_eq!(next_message(b"8=FIX.4.4\x0135=5\x01").unwrap_err().reason, GarbledReason::BeginString);
        assert_eq!(next_message(b"8=FIX.4.4.4.4.4.4.4.4.4\x019=5").unwrap_err().reason, GarbledReason::BeginString);
    }

    #[test]
    fn checksum_field_must_be_three_digits_and_soh() {
        let msg = framed("35=0\x01");
        let n = msg.len();
        let mut bad = msg.clone();
        bad[n - 3] = b'a';
        assert_eq!(next_message(&bad).unwrap_err().reason, GarbledReason::ChecksumFormat);
        let mut bad = msg.clone();
        bad[n - 1] = b'|';
        assert_eq!(next_message(&bad).unwrap_err().reason, GarbledReason::ChecksumFormat);
    }

    #[test]
    fn largest_message_is_accepted() {
        let overhead = MESSAGE_PREFIX.len() + 5 + CHECKSUM_FIELD_LEN_BYTES;
        let text = "x".repeat(MAX_MESSAGE_LEN_BYTES - overhead - "35=0\x0158=\x01".len());
        let msg = framed(&format!("35=0\x0158={text}\x01"));
        assert_eq!(msg.len(), MAX_MESSAGE_LEN_BYTES);
        assert_eq!(next_message(&msg).unwrap().unwrap().0, MAX_MESSAGE_LEN_BYTES);
        let msg = framed(&format!("35=0\x0158=x{text}\x01"));
        assert!(matches!(next_message(&msg).unwrap_err().reason, GarbledReason::TooLong { .. }));
    }
}
