//! # The binary order-entry protocol: SBE 1.0 over the Simple Open Framing Header
//!
//! `gateway/schema/sable-sbe.xml` is the single source of truth; this module mirrors it field for
//! field and `gateway/tests/sbe_schema.rs` checks the mirror against an independent SBE
//! implementation that reads the XML.
//!
//! A frame on the wire is
//!
//! ```text
//! | SOFH: length u32 BE (counts itself) | encoding 0xEB50 u16 BE | messageHeader (8 bytes, LE) | block |
//! ```
//!
//! - [`frame`]: splits a byte stream into frames ([`frame::next_frame`]), bounded by
//!   [`frame::MAX_FRAME_LEN_BYTES`].
//! - [`messages`]: one `#[repr(C)]` zerocopy struct per message block, the wire enums, and a
//!   field table per message ([`messages::SbeMessage::FIELDS`]) that drives validation.
//! - [`codec`]: strict decoding into borrowed views ([`codec::Inbound`], [`codec::Outbound`]) and
//!   allocation-free encoding into caller buffers.
//! - [`convert`]: wire messages ↔ engine commands and events (exact decimal ↔ tick conversion).
//!
//! **Invariants.** Decoding never panics and never allocates: every malformed input is a typed
//! [`codec::DecodeError`] or [`frame::FrameError`] naming the field and the reason. Block lengths
//! must equal the schema's (no extensions are accepted), and the frame must hold exactly
//! one message. Nothing here does I/O; sessions own the sockets.

pub mod codec;
pub mod convert;
pub mod frame;
pub mod messages;
pub mod session;
pub(crate) mod sessions;

pub use codec::{
    DecodeError, EncodeError, Inbound, Outbound, decode_as, decode_inbound, decode_inbound_frame, decode_outbound,
    decode_outbound_frame, encode, encoded_len,
};
pub use frame::{FrameError, MAX_FRAME_LEN_BYTES, next_frame};
pub use messages::SbeMessage;
