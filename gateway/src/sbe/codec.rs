//! Strict decoding into borrowed views and allocation-free encoding.
//!
//! Decoding checks, in this order, and stops at the first failure:
//!
//! 1. the message holds an 8-byte header ([`DecodeError::Truncated`]);
//! 2. `schemaId` is 7301 ([`DecodeError::SchemaId`]) and `version` is
//!    [`SCHEMA_VERSION`](crate::sbe::messages::SCHEMA_VERSION) ([`DecodeError::Version`]);
//! 3. `templateId` is in the schema ([`DecodeError::UnknownTemplate`]) and may be sent in this
//!    direction ([`DecodeError::WrongDirection`]);
//! 4. `blockLength` equals the schema's ([`DecodeError::BlockLength`]; no longer blocks are
//!    accepted);
//! 5. the message is exactly header + block: shorter is [`DecodeError::Truncated`], longer is
//!    [`DecodeError::TrailingBytes`] (the schema has no repeating groups or var data);
//! 6. every field holds a value its schema type allows, in declaration order:
//!    [`DecodeError::InvalidEnum`], [`DecodeError::InvalidSetBits`],
//!    [`DecodeError::NonAsciiChar`], [`DecodeError::CharAfterPadding`].
//!
//! Integers are not range-checked here: what a number means (null, zero, off the tick grid) is
//! for [`crate::sbe::convert`] to judge against the instrument.

use zerocopy::{FromBytes, IntoBytes};

use crate::sbe::frame::{self, FrameError, MESSAGE_HEADER_LEN_BYTES, SOFH_LEN_BYTES};
use crate::sbe::messages::*;

/// Why a message was refused. Every variant names what was wrong; field errors name the field
/// as the schema spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The message is shorter than its header, or than header + block.
    #[error("message truncated: {needed} bytes needed, {got} present")]
    Truncated {
        /// Bytes the header (or header + block) needs.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// The header's `schemaId` is not this schema's.
    #[error("schemaId {found} is not {}", SCHEMA_ID)]
    SchemaId {
        /// The schema id found.
        found: u16,
    },
    /// The header's `version` is not this schema's.
    #[error("schema version {found} is not {}", SCHEMA_VERSION)]
    Version {
        /// The version found.
        found: u16,
    },
    /// No message of the schema has this template id.
    #[error("unknown templateId {template_id}")]
    UnknownTemplate {
        /// The template id found.
        template_id: u16,
    },
    /// The message exists but is not sent in this direction (e.g. an ExecutionReport from a
    /// client).
    #[error("{name} (templateId {template_id}) is not accepted in this direction")]
    WrongDirection {
        /// The template id found.
        template_id: u16,
        /// The message's schema name.
        name: &'static str,
    },
    /// The header's `blockLength` differs from the schema's.
    #[error("{name}: blockLength {found} differs from the schema's {expected}")]
    BlockLength {
        /// The message's schema name.
        name: &'static str,
        /// The schema's block length.
        expected: u16,
        /// The header's block length.
        found: u16,
    },
    /// Bytes follow the block inside the frame.
    #[error("{name}: {extra} bytes after the block")]
    TrailingBytes {
        /// The message's schema name.
        name: &'static str,
        /// How many.
        extra: usize,
    },
    /// An enum field holds a value the schema does not list.
    #[error("{message}.{field}: {value} is not a valid {enum_name}")]
    InvalidEnum {
        /// The message's schema name.
        message: &'static str,
        /// The field's schema name.
        field: &'static str,
        /// The enum's schema name.
        enum_name: &'static str,
        /// The value found.
        value: u8,
    },
    /// A set field has bits outside its choices.
    #[error("{message}.{field}: bits {bits:#010b} are not {set_name} choices")]
    InvalidSetBits {
        /// The message's schema name.
        message: &'static str,
        /// The field's schema name.
        field: &'static str,
        /// The set's schema name.
        set_name: &'static str,
        /// The offending bits only.
        bits: u8,
    },
    /// A char field holds a byte outside printable ASCII.
    #[error("{message}.{field}: byte {byte:#04x} at {position} is not printable ASCII")]
    NonAsciiChar {
        /// The message's schema name.
        message: &'static str,
        /// The field's schema name.
        field: &'static str,
        /// Index inside the field.
        position: usize,
        /// The byte.
        byte: u8,
    },
    /// A char field has a non-NUL byte after its NUL padding started.
    #[error("{message}.{field}: byte at {position} follows the NUL padding")]
    CharAfterPadding {
        /// The message's schema name.
        message: &'static str,
        /// The field's schema name.
        field: &'static str,
        /// Index inside the field.
        position: usize,
    },
}

/// Why a message could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The output buffer is too small.
    #[error("buffer of {got} bytes is too small; {needed} needed")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
}

/// Frame length of message `M`: SOFH + header + block.
pub const fn encoded_len<M: SbeMessage>() -> usize {
    SOFH_LEN_BYTES + MESSAGE_HEADER_LEN_BYTES + M::BLOCK_LENGTH as usize
}

/// Writes `msg` as a complete frame (SOFH + message header + block) at the start of `buf`.
/// Returns the frame length. Allocates nothing.
pub fn encode<M: SbeMessage>(msg: &M, buf: &mut [u8]) -> Result<usize, EncodeError> {
    let needed = encoded_len::<M>();
    let Some(out) = buf.get_mut(..needed) else {
        return Err(EncodeError::BufferTooSmall { needed, got: buf.len() });
    };
    debug_assert_eq!(validate_fields(msg), Ok(()), "encoding an invalid {}", M::NAME);
    let written = frame::write_sofh(out, MESSAGE_HEADER_LEN_BYTES + M::BLOCK_LENGTH as usize);
    debug_assert_eq!(written, Some(needed));
    let (_, rest) = out.split_at_mut(SOFH_LEN_BYTES);
    let (header, block) = rest.split_at_mut(MESSAGE_HEADER_LEN_BYTES);
    header.copy_from_slice(MessageHeader::of::<M>().as_bytes());
    block.copy_from_slice(msg.as_bytes());
    Ok(needed)
}

/// Reads and checks the message header: length, schema id and version.
pub fn decode_header(msg: &[u8]) -> Result<&MessageHeader, DecodeError> {
    let Ok((header, _)) = MessageHeader::ref_from_prefix(msg) else {
        return Err(DecodeError::Truncated { needed: MESSAGE_HEADER_LEN_BYTES, got: msg.len() });
    };
    if header.schema_id.get() != SCHEMA_ID {
        return Err(DecodeError::SchemaId { found: header.schema_id.get() });
    }
    if header.version.get() != SCHEMA_VERSION {
        return Err(DecodeError::Version { found: header.version.get() });
    }
    Ok(header)
}

/// Decodes `msg` (header + block, no SOFH) as message type `M`, whatever its direction.
/// The template id must be `M`'s.
pub fn decode_as<M: SbeMessage>(msg: &[u8]) -> Result<&M, DecodeError> {
    let header = decode_header(msg)?;
    let template_id = header.template_id.get();
    if template_id != M::TEMPLATE_ID {
        return Err(DecodeError::UnknownTemplate { template_id });
    }
    decode_body(header, msg)
}

/// Checks block length and total length, casts, and validates every field.
fn decode_body<'a, M: SbeMessage>(header: &MessageHeader, msg: &'a [u8]) -> Result<&'a M, DecodeError> {
    let found = header.block_length.get();
    if found != M::BLOCK_LENGTH {
        return Err(DecodeError::BlockLength { name: M::NAME, expected: M::BLOCK_LENGTH, found });
    }
    let needed = MESSAGE_HEADER_LEN_BYTES + M::BLOCK_LENGTH as usize;
    if msg.len() < needed {
        return Err(DecodeError::Truncated { needed, got: msg.len() });
    }
    if msg.len() > needed {
        return Err(DecodeError::TrailingBytes { name: M::NAME, extra: msg.len() - needed });
    }
    let Ok(body) = M::ref_from_bytes(&msg[MESSAGE_HEADER_LEN_BYTES..]) else {
        // Unreachable: the length was checked and `M` is `Unaligned`. Kept as an error, not a
        // panic, so the decoder has no panicking path at all.
        return Err(DecodeError::Truncated { needed, got: msg.len() });
    };
    validate_fields(body)?;
    Ok(body)
}

/// Checks every enum, set and char field of `msg` against the schema.
pub fn validate_fields<M: SbeMessage>(msg: &M) -> Result<(), DecodeError> {
    let bytes = msg.as_bytes();
    for f in M::FIELDS {
        let raw = bytes.get(f.offset..f.offset + f.kind.size()).unwrap_or(&[]);
        match f.kind {
            FieldKind::Enum { spec, optional } => {
                let value = raw.first().copied().unwrap_or(0);
                let null_ok = optional && value == ENUM_U8_NULL;
                if !null_ok && spec.name_of(value).is_none() {
                    return Err(DecodeError::InvalidEnum {
                        message: M::NAME,
                        field: f.name,
                        enum_name: spec.name,
                        value,
                    });
                }
            }
            FieldKind::Set(spec) => {
                let value = raw.first().copied().unwrap_or(0);
                let bits = value & !spec.valid_mask();
                if bits != 0 {
                    return Err(DecodeError::InvalidSetBits {
                        message: M::NAME,
                        field: f.name,
                        set_name: spec.name,
                        bits,
                    });
                }
            }
            FieldKind::Char { .. } => check_chars(M::NAME, f.name, raw)?,
            FieldKind::U16 { .. } | FieldKind::U32 | FieldKind::U64 { .. } | FieldKind::I64 { .. } => {}
        }
    }
    Ok(())
}

/// Printable ASCII, then only NULs.
fn check_chars(message: &'static str, field: &'static str, raw: &[u8]) -> Result<(), DecodeError> {
    let text_len = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    if let Some(position) = raw[..text_len].iter().position(|&b| !is_char_field_byte(b)) {
        return Err(DecodeError::NonAsciiChar { message, field, position, byte: raw[position] });
    }
    if let Some(i) = raw[text_len..].iter().position(|&b| b != 0) {
        return Err(DecodeError::CharAfterPadding { message, field, position: text_len + i });
    }
    Ok(())
}

macro_rules! message_enum {
    (
        $(#[$meta:meta])* $enum_name:ident, $allowed:ident, $decode:ident, $decode_frame:ident;
        $( $variant:ident ),* $(,)?
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $enum_name<'a> {
            $(
                #[doc = concat!("`", stringify!($variant), "`.")]
                $variant(&'a $variant),
            )*
        }

        impl<'a> $enum_name<'a> {
            /// The message's template id.
            pub fn template_id(&self) -> u16 {
                match self {
                    $( Self::$variant(_) => $variant::TEMPLATE_ID, )*
                }
            }

            /// The message's schema name.
            pub fn name(&self) -> &'static str {
                match self {
                    $( Self::$variant(_) => $variant::NAME, )*
                }
            }

            /// Writes the message as a complete frame into `buf`; returns the frame length.
            pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
                match self {
                    $( Self::$variant(m) => encode(*m, buf), )*
                }
            }
        }

        /// Decodes one message (header + block, no SOFH) of the direction this enum covers.
        pub fn $decode(msg: &[u8]) -> Result<$enum_name<'_>, DecodeError> {
            let header = decode_header(msg)?;
            let template_id = header.template_id.get();
            $(
                if template_id == $variant::TEMPLATE_ID {
                    if !$variant::DIRECTION.$allowed() {
                        return Err(DecodeError::WrongDirection { template_id, name: $variant::NAME });
                    }
                    return decode_body::<$variant>(header, msg).map($enum_name::$variant);
                }
            )*
            match template_name(template_id) {
                Some(name) => Err(DecodeError::WrongDirection { template_id, name }),
                None => Err(DecodeError::UnknownTemplate { template_id }),
            }
        }

        /// Splits the first frame off `buf` and decodes its message.
        ///
        /// `Ok(None)`: more bytes needed. `Ok(Some((frame_len, result)))`: the frame is
        /// delimited, consume `frame_len` bytes whether or not its message decoded (a session
        /// may reject a bad message and read on). `Err`: the framing header itself is bad and
        /// the stream cannot continue.
        #[allow(clippy::type_complexity)]
        pub fn $decode_frame(buf: &[u8]) -> Result<Option<(usize, Result<$enum_name<'_>, DecodeError>)>, FrameError> {
            Ok(frame::next_frame(buf)?.map(|(len, msg)| (len, $decode(msg))))
        }
    };
}

message_enum! {
    /// A client-to-server message, borrowed from the receive buffer.
    Inbound, from_client, decode_inbound, decode_inbound_frame;
    Negotiate, Establish, Sequence, RetransmitRequest, Terminate,
    NewOrderSingle, OrderCancelRequest, OrderCancelReplaceRequest, OrderMassCancelRequest, OrderStatusRequest,
}

message_enum! {
    /// A server-to-client message, borrowed from the receive buffer (for clients and tests).
    Outbound, from_server, decode_outbound, decode_outbound_frame;
    NegotiationResponse, NegotiationReject, EstablishmentAck, EstablishmentReject, Sequence, Retransmission,
    RetransmitReject, Terminate, ExecutionReport, OrderCancelReject, OrderMassCancelReport, BusinessMessageReject,
}

/// The schema name of a template id, if the schema has it.
pub fn template_name(template_id: u16) -> Option<&'static str> {
    Some(match template_id {
        template::NEGOTIATE => Negotiate::NAME,
        template::NEGOTIATION_RESPONSE => NegotiationResponse::NAME,
        template::NEGOTIATION_REJECT => NegotiationReject::NAME,
        template::ESTABLISH => Establish::NAME,
        template::ESTABLISHMENT_ACK => EstablishmentAck::NAME,
        template::ESTABLISHMENT_REJECT => EstablishmentReject::NAME,
        template::SEQUENCE => Sequence::NAME,
        template::RETRANSMIT_REQUEST => RetransmitRequest::NAME,
        template::RETRANSMISSION => Retransmission::NAME,
        template::RETRANSMIT_REJECT => RetransmitReject::NAME,
        template::TERMINATE => Terminate::NAME,
        template::NEW_ORDER_SINGLE => NewOrderSingle::NAME,
        template::ORDER_CANCEL_REQUEST => OrderCancelRequest::NAME,
        template::ORDER_CANCEL_REPLACE_REQUEST => OrderCancelReplaceRequest::NAME,
        template::ORDER_MASS_CANCEL_REQUEST => OrderMassCancelRequest::NAME,
        template::ORDER_STATUS_REQUEST => OrderStatusRequest::NAME,
        template::EXECUTION_REPORT => ExecutionReport::NAME,
        template::ORDER_CANCEL_REJECT => OrderCancelReject::NAME,
        template::ORDER_MASS_CANCEL_REPORT => OrderMassCancelReport::NAME,
        template::BUSINESS_MESSAGE_REJECT => BusinessMessageReject::NAME,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use zerocopy::FromZeros;
    use zerocopy::little_endian::{I64, U32, U64};

    use super::*;

    fn nos() -> NewOrderSingle {
        NewOrderSingle {
            cl_ord_id: char_field(b"ord-1").unwrap(),
            account: U32::new(7),
            security_id: U32::new(3),
            side: Side::Sell.to_u8(),
            ord_type: OrdType::Limit.to_u8(),
            time_in_force: TimeInForce::GoodTillCancel.to_u8(),
            exec_inst: ExecInst::POST_ONLY,
            self_trade_prevention: SelfTradePrevention::CancelOldest.to_u8(),
            price: I64::new(101_250_000_000),
            stop_px: I64::new(PRICE9_NULL),
            order_qty: U64::new(5_0000),
            display_qty: U64::new(QTY4_NULL),
            expire_time: U64::new(0),
        }
    }

    fn framed<M: SbeMessage>(m: &M) -> Vec<u8> {
        let mut buf = vec![0u8; encoded_len::<M>()];
        assert_eq!(encode(m, &mut buf), Ok(buf.len()));
        buf
    }

    /// Decodes a full frame as inbound.
    fn inbound(frame: &[u8]) -> Result<Inbound<'_>, DecodeError> {
        decode_inbound(&frame[SOFH_LEN_BYTES..])
    }

    /// Rewrites the SOFH length after a test changed the frame's size.
    fn refit(frame: &mut [u8]) {
        let len = frame.len() as u32;
        frame[..4].copy_from_slice(&len.to_be_bytes());
    }

    #[test]
    fn new_order_single_round_trips() {
        let m = nos();
        let frame = framed(&m);
        assert_eq!(frame.len(), 6 + 8 + 73);
        let (len, decoded) = decode_inbound_frame(&frame).unwrap().unwrap();
        let decoded = decoded.unwrap();
        assert_eq!(len, frame.len());
        assert_eq!(decoded, Inbound::NewOrderSingle(&m));
        assert_eq!(decoded.template_id(), 101);
        assert_eq!(decoded.name(), "NewOrderSingle");
        let mut again = vec![0u8; 256];
        assert_eq!(decoded.encode(&mut again), Ok(frame.len()));
        assert_eq!(&again[..frame.len()], &frame[..]);
    }

    #[test]
    fn execution_report_round_trips_outbound() {
        let mut er = ExecutionReport::new_zeroed();
        er.order_id = U64::new(42);
        er.cl_ord_id = char_field(b"c1").unwrap();
        er.exec_type = ExecType::Trade.to_u8();
        er.ord_status = OrdStatus::PartiallyFilled.to_u8();
        er.side = Side::Buy.to_u8();
        er.ord_type = OrdType::Limit.to_u8();
        er.time_in_force = TimeInForce::Day.to_u8();
        er.aggressor = ENUM_U8_NULL;
        let frame = framed(&er);
        let (_, decoded) = decode_outbound_frame(&frame).unwrap().unwrap();
        let decoded = decoded.unwrap();
        assert_eq!(decoded, Outbound::ExecutionReport(&er));
        // The same bytes are not a valid client message.
        assert_eq!(inbound(&frame), Err(DecodeError::WrongDirection { template_id: 201, name: "ExecutionReport" }));
    }

    #[test]
    fn session_messages_decode_in_both_directions() {
        let s = Sequence { next_seq_no: U64::new(9) };
        let frame = framed(&s);
        assert_eq!(inbound(&frame), Ok(Inbound::Sequence(&s)));
        assert_eq!(decode_outbound(&frame[6..]), Ok(Outbound::Sequence(&s)));
        let neg = Negotiate::new_zeroed();
        let frame = framed(&neg);
        assert_eq!(
            decode_outbound(&frame[6..]),
            Err(DecodeError::WrongDirection { template_id: 1, name: "Negotiate" })
        );
    }

    #[test]
    fn rejects_unknown_template() {
        let mut frame = framed(&nos());
        frame[8..10].copy_from_slice(&999u16.to_le_bytes());
        assert_eq!(inbound(&frame), Err(DecodeError::UnknownTemplate { template_id: 999 }));
        assert_eq!(decode_as::<Sequence>(&frame[6..]), Err(DecodeError::UnknownTemplate { template_id: 999 }));
    }

    #[test]
    fn rejects_schema_and_version_mismatch() {
        let mut frame = framed(&nos());
        frame[10..12].copy_from_slice(&7302u16.to_le_bytes());
        assert_eq!(inbound(&frame), Err(DecodeError::SchemaId { found: 7302 }));
        let mut frame = framed(&nos());
        // A version-1 client (before OrderCancelReject's OrdStatus) is refused, as is a later one.
        for version in [1u16, 3] {
            frame[12..14].copy_from_slice(&version.to_le_bytes());
            assert_eq!(inbound(&frame), Err(DecodeError::Version { found: version }));
        }
    }

    #[test]
    fn rejects_a_block_length_other_than_the_schemas() {
        // Longer block with matching length: still refused.
        let mut frame = framed(&nos());
        frame[6..8].copy_from_slice(&74u16.to_le_bytes());
        frame.push(0);
        refit(&mut frame);
        assert_eq!(inbound(&frame), Err(DecodeError::BlockLength { name: "NewOrderSingle", expected: 73, found: 74 }));
        let mut frame = framed(&nos());
        frame[6..8].copy_from_slice(&72u16.to_le_bytes());
        assert_eq!(inbound(&frame), Err(DecodeError::BlockLength { name: "NewOrderSingle", expected: 73, found: 72 }));
    }

    #[test]
    fn rejects_truncated_and_overlong_messages() {
        let mut frame = framed(&nos());
        frame.truncate(6 + 8 + 40);
        refit(&mut frame);
        assert_eq!(decode_inbound_frame(&frame), Ok(Some((54, Err(DecodeError::Truncated { needed: 81, got: 48 })))));
        assert_eq!(decode_inbound(&frame[6..10]), Err(DecodeError::Truncated { needed: 8, got: 4 }));
        let mut frame = framed(&nos());
        frame.extend_from_slice(&[0, 0, 0]);
        refit(&mut frame);
        assert_eq!(inbound(&frame), Err(DecodeError::TrailingBytes { name: "NewOrderSingle", extra: 3 }));
    }

    #[test]
    fn frame_errors_surface_through_the_frame_decoder() {
        let mut frame = framed(&nos());
        frame[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        assert_eq!(decode_inbound_frame(&frame), Err(FrameError::EncodingType { found: 0x1234 }));
        let mut frame = framed(&nos());
        frame[..4].copy_from_slice(&600u32.to_be_bytes());
        assert_eq!(decode_inbound_frame(&frame), Err(FrameError::TooLong { len: 600 }));
        let frame = framed(&nos());
        assert_eq!(decode_inbound_frame(&frame[..50]), Ok(None));
    }

    #[test]
    fn rejects_every_invalid_enum_value() {
        let cases: [(usize, &str, &str, u8); 4] = [
            (28, "Side", "Side", 3),
            (29, "OrdType", "OrdType", 0),
            (30, "TimeInForce", "TimeInForce", 2),
            (32, "SelfTradePrevention", "SelfTradePrevention", 6),
        ];
        for (offset, field, enum_name, value) in cases {
            let mut frame = framed(&nos());
            frame[14 + offset] = value;
            assert_eq!(
                inbound(&frame),
                Err(DecodeError::InvalidEnum { message: "NewOrderSingle", field, enum_name, value }),
                "{field}"
            );
        }
        let mut m = OrderMassCancelRequest::new_zeroed();
        m.scope = 3;
        assert_eq!(
            inbound(&framed_unchecked(&m)),
            Err(DecodeError::InvalidEnum {
                message: "OrderMassCancelRequest",
                field: "Scope",
                enum_name: "MassCancelScope",
                value: 3
            })
        );
        // The optional Aggressor accepts the null value and nothing else outside Side.
        let mut er = ExecutionReport::new_zeroed();
        er.exec_type = ExecType::New.to_u8();
        er.side = 1;
        er.ord_type = 2;
        er.aggressor = 0;
        assert!(matches!(
            decode_outbound(&framed_unchecked(&er)[6..]),
            Err(DecodeError::InvalidEnum { field: "Aggressor", value: 0, .. })
        ));
    }

    #[test]
    fn rejects_set_bits_outside_the_choices() {
        let mut frame = framed(&nos());
        frame[14 + 31] = 0b1000_0011;
        assert_eq!(
            inbound(&frame),
            Err(DecodeError::InvalidSetBits {
                message: "NewOrderSingle",
                field: "ExecInst",
                set_name: "ExecInst",
                bits: 0b1000_0010
            })
        );
    }

    #[test]
    fn rejects_non_ascii_and_unpadded_char_fields() {
        let mut frame = framed(&nos());
        frame[14 + 2] = 0xC3;
        assert_eq!(
            inbound(&frame),
            Err(DecodeError::NonAsciiChar { message: "NewOrderSingle", field: "ClOrdId", position: 2, byte: 0xC3 })
        );
        let mut frame = framed(&nos());
        frame[14 + 1] = b'\n';
        assert!(matches!(inbound(&frame), Err(DecodeError::NonAsciiChar { byte: b'\n', .. })));
        let mut frame = framed(&nos());
        frame[14 + 10] = b'x'; // "ord-1\0\0\0\0\0x..."
        assert_eq!(
            inbound(&frame),
            Err(DecodeError::CharAfterPadding { message: "NewOrderSingle", field: "ClOrdId", position: 10 })
        );
        // A full-length field without padding is fine.
        let mut m = nos();
        m.cl_ord_id = *b"ABCDEFGHIJKLMNOPQRST";
        assert!(inbound(&framed(&m)).is_ok());
    }

    #[test]
    fn encode_refuses_a_short_buffer() {
        let mut buf = [0u8; 80];
        assert_eq!(encode(&nos(), &mut buf), Err(EncodeError::BufferTooSmall { needed: 87, got: 80 }));
    }

    /// Frames a message without the debug validation in `encode` (for invalid test input).
    fn framed_unchecked<M: SbeMessage>(m: &M) -> Vec<u8> {
        let mut buf = vec![0u8; encoded_len::<M>()];
        frame::write_sofh(&mut buf, 8 + M::BLOCK_LENGTH as usize).unwrap();
        buf[6..14].copy_from_slice(MessageHeader::of::<M>().as_bytes());
        buf[14..].copy_from_slice(m.as_bytes());
        buf
    }
}
