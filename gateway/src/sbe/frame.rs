//! Simple Open Framing Header (SOFH): a 4-byte big-endian message length that counts the 6-byte
//! header itself, then the 2-byte big-endian encoding type (0xEB50 = SBE 1.0 little-endian),
//! then one SBE message.
//!
//! [`next_frame`] is a streaming splitter: give it whatever bytes have arrived and it returns the
//! first complete frame, `None` when more bytes are needed, or an error as soon as the header
//! alone proves the stream is malformed (a session then closes: there is no way to resync).

/// Size of the Simple Open Framing Header in bytes.
pub const SOFH_LEN_BYTES: usize = 6;

/// Encoding type for SBE 1.0 little-endian messages.
pub const SBE_LE_ENCODING_TYPE: u16 = 0xEB50;

/// Size of the SBE message header (`messageHeader` composite) in bytes.
pub const MESSAGE_HEADER_LEN_BYTES: usize = 8;

/// Smallest acceptable frame: the SOFH plus an SBE message header.
pub const MIN_FRAME_LEN_BYTES: usize = SOFH_LEN_BYTES + MESSAGE_HEADER_LEN_BYTES;

pub use crate::limits::MAX_FRAME_LEN_BYTES;

/// A framing header that cannot start a valid frame. The stream cannot be resynchronised after
/// one of these: the session must close.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The encoding type is not SBE 1.0 little-endian.
    #[error("SOFH encoding type {found:#06x} is not SBE 1.0 little-endian ({:#06x})", SBE_LE_ENCODING_TYPE)]
    EncodingType {
        /// The encoding type found.
        found: u16,
    },
    /// The declared length cannot even hold the SOFH and an SBE message header.
    #[error("SOFH length {len} is below the minimum of {} bytes", MIN_FRAME_LEN_BYTES)]
    TooShort {
        /// The declared frame length.
        len: u32,
    },
    /// The declared length is above [`MAX_FRAME_LEN_BYTES`].
    #[error("SOFH length {len} is above the maximum of {} bytes", MAX_FRAME_LEN_BYTES)]
    TooLong {
        /// The declared frame length.
        len: u32,
    },
}

/// Splits the first frame off `buf`.
///
/// Returns `Ok(Some((frame_len, message)))` when a whole frame is present: `frame_len` bytes
/// (SOFH included) are consumed and `message` is the SBE message (header and block) without the
/// SOFH. Returns `Ok(None)` when more bytes are needed. Header errors are reported as soon as the
/// six SOFH bytes have arrived, without waiting for the body.
pub fn next_frame(buf: &[u8]) -> Result<Option<(usize, &[u8])>, FrameError> {
    let Some(sofh) = buf.first_chunk::<SOFH_LEN_BYTES>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([sofh[0], sofh[1], sofh[2], sofh[3]]);
    let encoding = u16::from_be_bytes([sofh[4], sofh[5]]);
    if encoding != SBE_LE_ENCODING_TYPE {
        return Err(FrameError::EncodingType { found: encoding });
    }
    // Compare as u32 so a huge declared length is an error on every platform, not a wrap.
    if len < MIN_FRAME_LEN_BYTES as u32 {
        return Err(FrameError::TooShort { len });
    }
    if len > MAX_FRAME_LEN_BYTES as u32 {
        return Err(FrameError::TooLong { len });
    }
    let frame_len = len as usize;
    match buf.get(SOFH_LEN_BYTES..frame_len) {
        Some(message) => Ok(Some((frame_len, message))),
        None => Ok(None),
    }
}

/// Writes a SOFH for a message of `message_len` bytes into the first six bytes of `out`.
///
/// Returns the frame length (`message_len + 6`), or `None` if `out` is shorter than the SOFH or
/// the frame would exceed [`MAX_FRAME_LEN_BYTES`].
pub fn write_sofh(out: &mut [u8], message_len: usize) -> Option<usize> {
    let frame_len = message_len.checked_add(SOFH_LEN_BYTES)?;
    if frame_len > MAX_FRAME_LEN_BYTES {
        return None;
    }
    let sofh = out.first_chunk_mut::<SOFH_LEN_BYTES>()?;
    sofh[..4].copy_from_slice(&(frame_len as u32).to_be_bytes());
    sofh[4..].copy_from_slice(&SBE_LE_ENCODING_TYPE.to_be_bytes());
    Some(frame_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: u32, encoding: u16, body: &[u8]) -> Vec<u8> {
        let mut v = len.to_be_bytes().to_vec();
        v.extend_from_slice(&encoding.to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn splits_a_complete_frame_and_leaves_the_rest() {
        let mut buf = frame(14, SBE_LE_ENCODING_TYPE, &[1, 2, 3, 4, 5, 6, 7, 8]);
        buf.extend_from_slice(&[0xAA, 0xBB]);
        let (len, msg) = next_frame(&buf).unwrap().unwrap();
        assert_eq!(len, 14);
        assert_eq!(msg, &[1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn needs_more_bytes_for_a_partial_header_or_body() {
        let buf = frame(20, SBE_LE_ENCODING_TYPE, &[0; 14]);
        for cut in 0..buf.len() {
            assert_eq!(next_frame(&buf[..cut]), Ok(None), "prefix of {cut} bytes");
        }
        assert!(next_frame(&buf).unwrap().is_some());
    }

    #[test]
    fn rejects_a_wrong_encoding_type_without_waiting_for_the_body() {
        let buf = frame(100, 0x5BE0, &[]);
        assert_eq!(next_frame(&buf), Err(FrameError::EncodingType { found: 0x5BE0 }));
        // Little-endian written encoding type is wrong too: the SOFH is big-endian.
        let buf = frame(100, 0x50EB, &[]);
        assert_eq!(next_frame(&buf), Err(FrameError::EncodingType { found: 0x50EB }));
    }

    #[test]
    fn rejects_lengths_outside_the_limits() {
        for len in [0u32, 5, 6, 13] {
            assert_eq!(next_frame(&frame(len, SBE_LE_ENCODING_TYPE, &[])), Err(FrameError::TooShort { len }));
        }
        for len in [MAX_FRAME_LEN_BYTES as u32 + 1, u32::MAX] {
            assert_eq!(next_frame(&frame(len, SBE_LE_ENCODING_TYPE, &[])), Err(FrameError::TooLong { len }));
        }
        let max = frame(MAX_FRAME_LEN_BYTES as u32, SBE_LE_ENCODING_TYPE, &[0; MAX_FRAME_LEN_BYTES - 6]);
        assert_eq!(next_frame(&max).unwrap().unwrap().0, MAX_FRAME_LEN_BYTES);
    }

    #[test]
    fn write_sofh_round_trips() {
        let mut out = [0u8; 16];
        assert_eq!(write_sofh(&mut out, 10), Some(16));
        assert_eq!(next_frame(&out).unwrap().unwrap().0, 16);
        assert_eq!(write_sofh(&mut out[..5], 10), None);
        assert_eq!(write_sofh(&mut out, MAX_FRAME_LEN_BYTES), None);
    }
}
