//! The message blocks of `gateway/schema/sable-sbe.xml`, one `#[repr(C)]` zerocopy struct per
//! message, plus the wire enums and a field table per message.
//!
//! Every field is a byte array or a `zerocopy` little-endian integer, so the structs have
//! alignment 1 and no padding: a compile-time assertion checks that each struct's size equals
//! the schema's `blockLength`, and another that each field's size matches its schema type.
//! Enum and set fields are raw `u8` (a received byte may be anything until validated); the typed
//! wire enums ([`Side`], [`OrdType`], …) convert with `from_u8` / `to_u8`.
//!
//! [`SbeMessage::FIELDS`] lists every field with its schema name, offset and schema type. The
//! decoder validates with it (enum values, set bits, ASCII char fields) and the cross-check test
//! renders messages with it, so a field that is declared out of order or with the wrong type
//! shows up against the independent decoder.

use zerocopy::little_endian::{I64, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The schema's id (`messageSchema/@id`).
pub const SCHEMA_ID: u16 = 7301;
/// The schema's version (`messageSchema/@version`). Only this version is accepted, with exactly
/// the declared block lengths (version 2 added OrderCancelReject's OrdStatus).
pub const SCHEMA_VERSION: u16 = 2;

/// `Price9` null value: no price.
pub const PRICE9_NULL: i64 = i64::MIN;
/// `Qty4` null value: no quantity.
pub const QTY4_NULL: u64 = u64::MAX;
/// `OrderID` null value: no exchange order id.
pub const ORDER_ID_NULL: u64 = 0;
/// `TradeID` null value: not a trade.
pub const TRADE_ID_NULL: u64 = 0;
/// `RejectCode` null value: not a reject.
pub const REJECT_CODE_NULL: u16 = 0;
/// SBE null value of a `uint8`-encoded enum, used only by enum fields marked
/// `presence="optional"` (today: `ExecutionReport.Aggressor` on reports that are not trades).
pub const ENUM_U8_NULL: u8 = u8::MAX;

/// Price9 mantissa scale: a price is `mantissa × 10^-9`.
pub const PRICE9_SCALE: u32 = 9;
/// Qty4 mantissa scale: a quantity is `mantissa × 10^-4`.
pub const QTY4_SCALE: u32 = 4;

/// Template ids, one per message (`sbe:message/@id`).
pub mod template {
    /// `Negotiate`.
    pub const NEGOTIATE: u16 = 1;
    /// `NegotiationResponse`.
    pub const NEGOTIATION_RESPONSE: u16 = 2;
    /// `NegotiationReject`.
    pub const NEGOTIATION_REJECT: u16 = 3;
    /// `Establish`.
    pub const ESTABLISH: u16 = 4;
    /// `EstablishmentAck`.
    pub const ESTABLISHMENT_ACK: u16 = 5;
    /// `EstablishmentReject`.
    pub const ESTABLISHMENT_REJECT: u16 = 6;
    /// `Sequence`.
    pub const SEQUENCE: u16 = 7;
    /// `RetransmitRequest`.
    pub const RETRANSMIT_REQUEST: u16 = 8;
    /// `Retransmission`.
    pub const RETRANSMISSION: u16 = 9;
    /// `RetransmitReject`.
    pub const RETRANSMIT_REJECT: u16 = 10;
    /// `Terminate`.
    pub const TERMINATE: u16 = 11;
    /// `NewOrderSingle`.
    pub const NEW_ORDER_SINGLE: u16 = 101;
    /// `OrderCancelRequest`.
    pub const ORDER_CANCEL_REQUEST: u16 = 102;
    /// `OrderCancelReplaceRequest`.
    pub const ORDER_CANCEL_REPLACE_REQUEST: u16 = 103;
    /// `OrderMassCancelRequest`.
    pub const ORDER_MASS_CANCEL_REQUEST: u16 = 104;
    /// `OrderStatusRequest`.
    pub const ORDER_STATUS_REQUEST: u16 = 105;
    /// `ExecutionReport`.
    pub const EXECUTION_REPORT: u16 = 201;
    /// `OrderCancelReject`.
    pub const ORDER_CANCEL_REJECT: u16 = 202;
    /// `OrderMassCancelReport`.
    pub const ORDER_MASS_CANCEL_REPORT: u16 = 203;
    /// `BusinessMessageReject`.
    pub const BUSINESS_MESSAGE_REJECT: u16 = 204;
}

/// The SBE `messageHeader` composite that precedes every block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct MessageHeader {
    /// Length of the root block in bytes.
    pub block_length: U16,
    /// Which message follows.
    pub template_id: U16,
    /// Must be [`SCHEMA_ID`].
    pub schema_id: U16,
    /// Must be [`SCHEMA_VERSION`].
    pub version: U16,
}

const _: () = assert!(size_of::<MessageHeader>() == crate::sbe::frame::MESSAGE_HEADER_LEN_BYTES);

impl MessageHeader {
    /// The header for message type `M` in this schema version.
    pub fn of<M: SbeMessage>() -> Self {
        MessageHeader {
            block_length: U16::new(M::BLOCK_LENGTH),
            template_id: U16::new(M::TEMPLATE_ID),
            schema_id: U16::new(SCHEMA_ID),
            version: U16::new(SCHEMA_VERSION),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Schema descriptions (drive validation and the cross-check test)

/// A schema `<enum>`: its name and valid values.
#[derive(Debug)]
pub struct EnumSpec {
    /// The enum's schema name.
    pub name: &'static str,
    /// `(validValue name, wire value)` pairs.
    pub values: &'static [(&'static str, u8)],
}

impl EnumSpec {
    /// The name of wire value `v`, if the schema lists it.
    pub fn name_of(&self, v: u8) -> Option<&'static str> {
        self.values.iter().find(|(_, x)| *x == v).map(|(n, _)| *n)
    }
}

/// A schema `<set>` over `uint8`: its name and choices.
#[derive(Debug)]
pub struct SetSpec {
    /// The set's schema name.
    pub name: &'static str,
    /// `(choice name, bit position)` pairs.
    pub choices: &'static [(&'static str, u8)],
}

impl SetSpec {
    /// The bits the schema defines.
    pub const fn valid_mask(&self) -> u8 {
        let mut mask = 0u8;
        let mut i = 0;
        while i < self.choices.len() {
            mask |= 1 << self.choices[i].1;
            i += 1;
        }
        mask
    }
}

/// The schema type of one field, with its null value where the schema declares one.
#[derive(Debug)]
pub enum FieldKind {
    /// `uint16`.
    U16 {
        /// The type's nullValue, if any.
        null: Option<u16>,
    },
    /// `uint32`.
    U32,
    /// `uint64`.
    U64 {
        /// The type's nullValue, if any.
        null: Option<u64>,
    },
    /// `int64`.
    I64 {
        /// The type's nullValue, if any.
        null: Option<i64>,
    },
    /// ASCII `char[len]`, NUL-padded.
    Char {
        /// Length in bytes.
        len: usize,
    },
    /// A `uint8` enum.
    Enum {
        /// The enum.
        spec: &'static EnumSpec,
        /// Field is `presence="optional"`: [`ENUM_U8_NULL`] means absent.
        optional: bool,
    },
    /// A `uint8` set (bit field).
    Set(&'static SetSpec),
}

impl FieldKind {
    /// Encoded size in bytes.
    pub const fn size(&self) -> usize {
        match self {
            FieldKind::U16 { .. } => 2,
            FieldKind::U32 => 4,
            FieldKind::U64 { .. } | FieldKind::I64 { .. } => 8,
            FieldKind::Char { len } => *len,
            FieldKind::Enum { .. } | FieldKind::Set(_) => 1,
        }
    }
}

/// One field of a message block.
#[derive(Debug)]
pub struct FieldSpec {
    /// The field's schema name (`field/@name`).
    pub name: &'static str,
    /// Byte offset inside the block.
    pub offset: usize,
    /// Schema type.
    pub kind: FieldKind,
}

/// Who may send a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client to server only.
    ClientToServer,
    /// Server to client only.
    ServerToClient,
    /// Either peer (session heartbeats and termination).
    Both,
}

impl Direction {
    /// Whether a client may send this message.
    pub const fn from_client(self) -> bool {
        matches!(self, Direction::ClientToServer | Direction::Both)
    }

    /// Whether the server may send this message.
    pub const fn from_server(self) -> bool {
        matches!(self, Direction::ServerToClient | Direction::Both)
    }
}

/// A message block of the schema.
pub trait SbeMessage: FromBytes + IntoBytes + KnownLayout + Immutable + Unaligned + Copy {
    /// `sbe:message/@id`.
    const TEMPLATE_ID: u16;
    /// `sbe:message/@blockLength`; equals `size_of::<Self>()` (checked at compile time).
    const BLOCK_LENGTH: u16;
    /// `sbe:message/@name`.
    const NAME: &'static str;
    /// Who sends it.
    const DIRECTION: Direction;
    /// Every field in declaration order.
    const FIELDS: &'static [FieldSpec];
}

/// Schema types (`<types>`) as field kinds, named after the schema.
pub mod ty {
    use super::*;

    /// `SessionID`.
    pub const SESSION_ID: FieldKind = FieldKind::U64 { null: None };
    /// `SeqNum`.
    pub const SEQ_NUM: FieldKind = FieldKind::U64 { null: None };
    /// `UTCTimestampNanos`.
    pub const UTC_TIMESTAMP_NANOS: FieldKind = FieldKind::U64 { null: None };
    /// `DeltaMillisecs`.
    pub const DELTA_MILLISECS: FieldKind = FieldKind::U32;
    /// `Count`.
    pub const COUNT: FieldKind = FieldKind::U32;
    /// `AccountID`.
    pub const ACCOUNT_ID: FieldKind = FieldKind::U32;
    /// `InstrumentID`.
    pub const INSTRUMENT_ID: FieldKind = FieldKind::U32;
    /// `OrderID` (null 0).
    pub const ORDER_ID: FieldKind = FieldKind::U64 { null: Some(ORDER_ID_NULL) };
    /// `ExecID`.
    pub const EXEC_ID: FieldKind = FieldKind::U64 { null: None };
    /// `TradeID` (null 0).
    pub const TRADE_ID: FieldKind = FieldKind::U64 { null: Some(TRADE_ID_NULL) };
    /// `RejectCode` (null 0).
    pub const REJECT_CODE: FieldKind = FieldKind::U16 { null: Some(REJECT_CODE_NULL) };
    /// `TemplateID`.
    pub const TEMPLATE_ID: FieldKind = FieldKind::U16 { null: None };
    /// `Price9` (null `i64::MIN`).
    pub const PRICE9: FieldKind = FieldKind::I64 { null: Some(PRICE9_NULL) };
    /// `Qty4` (null `u64::MAX`).
    pub const QTY4: FieldKind = FieldKind::U64 { null: Some(QTY4_NULL) };
    /// `ClOrdID`: `char[20]`.
    pub const CL_ORD_ID: FieldKind = FieldKind::Char { len: 20 };
    /// `Credential`: `char[20]`.
    pub const CREDENTIAL: FieldKind = FieldKind::Char { len: 20 };
    /// `Text`: `char[48]`.
    pub const TEXT: FieldKind = FieldKind::Char { len: 48 };

    /// A required enum field.
    pub const fn enumeration(spec: &'static EnumSpec) -> FieldKind {
        FieldKind::Enum { spec, optional: false }
    }

    /// An optional enum field (`presence="optional"`; [`ENUM_U8_NULL`] = absent).
    pub const fn optional_enumeration(spec: &'static EnumSpec) -> FieldKind {
        FieldKind::Enum { spec, optional: true }
    }
}

// ------------------------------------------------------------------------------------------
// Enums and sets

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $value:literal ),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $value, )*
        }

        impl $name {
            /// The schema's description of this enum.
            pub const SPEC: EnumSpec =
                EnumSpec { name: stringify!($name), values: &[ $( (stringify!($variant), $value) ),* ] };

            /// Parses a wire value; `None` for values the schema does not list.
            pub const fn from_u8(v: u8) -> Option<Self> {
                match v {
                    $( $value => Some(Self::$variant), )*
                    _ => None,
                }
            }

            /// The wire value.
            pub const fn to_u8(self) -> u8 {
                self as u8
            }

            /// The schema's name of this value.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => stringify!($variant), )*
                }
            }
        }
    };
}

wire_enum! {
    /// `Side` (FIX 54).
    Side {
        /// Buy.
        Buy = 1,
        /// Sell.
        Sell = 2,
    }
}

wire_enum! {
    /// `OrdType` (FIX 40).
    OrdType {
        /// Market.
        Market = 1,
        /// Limit.
        Limit = 2,
        /// Stop (becomes market).
        Stop = 3,
        /// Stop limit (becomes limit).
        StopLimit = 4,
    }
}

wire_enum! {
    /// `TimeInForce` (FIX 59).
    TimeInForce {
        /// Day.
        Day = 0,
        /// Good till cancel.
        GoodTillCancel = 1,
        /// Immediate or cancel.
        ImmediateOrCancel = 3,
        /// Fill or kill.
        FillOrKill = 4,
        /// Good till date (`ExpireTime`).
        GoodTillDate = 6,
    }
}

wire_enum! {
    /// `SelfTradePrevention` (FIX 7928).
    SelfTradePrevention {
        /// The account's configured default.
        AccountDefault = 0,
        /// Self-trades allowed.
        Allow = 1,
        /// Cancel the incoming order.
        CancelNewest = 2,
        /// Cancel the resting order.
        CancelOldest = 3,
        /// Cancel both.
        CancelBoth = 4,
        /// Decrement both, cancel what reaches zero.
        DecrementAndCancel = 5,
    }
}

wire_enum! {
    /// `MassCancelScope` (FIX 530).
    MassCancelScope {
        /// All of the account's orders.
        Account = 1,
        /// The account's orders in one instrument.
        AccountInstrument = 2,
    }
}

wire_enum! {
    /// `ExecType` (FIX 150, numeric).
    ExecType {
        /// Order accepted.
        New = 0,
        /// Order cancelled.
        Canceled = 4,
        /// Cancel/replace took effect.
        Replaced = 5,
        /// Request rejected.
        Rejected = 8,
        /// Order expired.
        Expired = 12,
        /// Order restated (open quantity reduced by self-trade prevention).
        Restated = 13,
        /// Trade.
        Trade = 15,
        /// Stop order triggered.
        Triggered = 16,
        /// Answer to an order status request.
        OrderStatus = 18,
    }
}

wire_enum! {
    /// `OrdStatus` (FIX 39, numeric).
    OrdStatus {
        /// Open, nothing filled.
        New = 0,
        /// Open, partly filled.
        PartiallyFilled = 1,
        /// Completely filled.
        Filled = 2,
        /// Cancelled.
        Canceled = 4,
        /// Rejected.
        Rejected = 8,
        /// Expired.
        Expired = 12,
    }
}

wire_enum! {
    /// `CxlRejResponseTo` (FIX 434).
    CxlRejResponseTo {
        /// Answer to an OrderCancelRequest.
        Cancel = 1,
        /// Answer to an OrderCancelReplaceRequest.
        Replace = 2,
        /// Answer to an OrderStatusRequest.
        Status = 3,
    }
}

wire_enum! {
    /// `FlowType` (FIXP).
    FlowType {
        /// No application messages.
        None = 0,
        /// Messages can be retransmitted.
        Recoverable = 1,
        /// Messages carry sequence numbers and are processed at most once.
        Idempotent = 2,
    }
}

wire_enum! {
    /// `NegotiationRejectCode`.
    NegotiationRejectCode {
        /// Other.
        Unspecified = 0,
        /// Bad credentials.
        Credentials = 1,
        /// The session id is in use.
        DuplicateSession = 2,
        /// The session was already negotiated.
        AlreadyNegotiated = 3,
    }
}

wire_enum! {
    /// `EstablishRejectCode`.
    EstablishRejectCode {
        /// Other.
        Unspecified = 0,
        /// Establish before Negotiate.
        Unnegotiated = 1,
        /// The session is already established.
        AlreadyEstablished = 2,
        /// Keepalive interval out of range.
        KeepaliveInterval = 3,
        /// Bad credentials.
        Credentials = 4,
    }
}

wire_enum! {
    /// `RetransmitRejectCode`.
    RetransmitRejectCode {
        /// The range is not available.
        OutOfRange = 0,
        /// Too many messages or requests.
        RequestLimitExceeded = 1,
    }
}

wire_enum! {
    /// `TerminationCode`.
    TerminationCode {
        /// Orderly end.
        Finished = 0,
        /// Other.
        Unspecified = 1,
        /// The peer sent nothing within the keepalive interval.
        KeepaliveExpired = 2,
        /// The peer sent a malformed message.
        InvalidMessage = 3,
        /// The peer did not read fast enough.
        SlowConsumer = 4,
        /// The peer exceeded its message rate.
        Throttled = 5,
        /// The server is shutting down.
        ShuttingDown = 6,
    }
}

wire_enum! {
    /// `BusinessRejectReason` (FIX 380).
    BusinessRejectReason {
        /// Other.
        Other = 0,
        /// Unsupported message type.
        UnsupportedMessageType = 3,
        /// Not authorised.
        NotAuthorized = 6,
        /// Rate limit exceeded.
        Throttled = 99,
    }
}

/// `ExecInst` (FIX 18): a `uint8` set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecInst;

impl ExecInst {
    /// `PostOnly` (choice bit 0): reject instead of taking liquidity.
    pub const POST_ONLY: u8 = 1 << 0;
    /// The schema's description of this set.
    pub const SPEC: SetSpec = SetSpec { name: "ExecInst", choices: &[("PostOnly", 0)] };
}

// ------------------------------------------------------------------------------------------
// Messages

macro_rules! sbe_message {
    (
        $(#[$meta:meta])*
        $name:ident { id: $id:expr, block: $block:expr, dir: $dir:ident }
        { $( $field:ident : $ty:ty = $wire:literal ($tag:literal) as $kind:expr ),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
        #[repr(C)]
        pub struct $name {
            $(
                #[doc = concat!("`", $wire, "` (tag ", stringify!($tag), ").")]
                pub $field: $ty,
            )*
        }

        impl SbeMessage for $name {
            const TEMPLATE_ID: u16 = $id;
            const BLOCK_LENGTH: u16 = $block;
            const NAME: &'static str = stringify!($name);
            const DIRECTION: Direction = Direction::$dir;
            const FIELDS: &'static [FieldSpec] = &[
                $( FieldSpec { name: $wire, offset: core::mem::offset_of!($name, $field), kind: $kind }, )*
            ];
        }

        const _: () = {
            assert!(size_of::<$name>() == $block as usize, "struct size must equal the schema's blockLength");
            $( assert!(size_of::<$ty>() == ($kind).size(), concat!("field ", $wire, " has the wrong size")); )*
        };
    };
}

type Chars20 = [u8; 20];
type Chars48 = [u8; 48];

sbe_message! {
    /// `Negotiate` (1): the client opens a session with its credentials.
    Negotiate { id: template::NEGOTIATE, block: 56, dir: ClientToServer } {
        session_id: U64 = "SessionId" (35523) as ty::SESSION_ID,
        timestamp: U64 = "Timestamp" (39561) as ty::UTC_TIMESTAMP_NANOS,
        username: Chars20 = "Username" (553) as ty::CREDENTIAL,
        password: Chars20 = "Password" (554) as ty::CREDENTIAL,
    }
}

sbe_message! {
    /// `NegotiationResponse` (2): the server accepts a Negotiate.
    NegotiationResponse { id: template::NEGOTIATION_RESPONSE, block: 17, dir: ServerToClient } {
        session_id: U64 = "SessionId" (35523) as ty::SESSION_ID,
        request_timestamp: U64 = "RequestTimestamp" (39562) as ty::UTC_TIMESTAMP_NANOS,
        server_flow: u8 = "ServerFlow" (39565) as ty::enumeration(&FlowType::SPEC),
    }
}

sbe_message! {
    /// `NegotiationReject` (3): the server refuses a Negotiate.
    NegotiationReject { id: template::NEGOTIATION_REJECT, block: 17, dir: ServerToClient } {
        session_id: U64 = "SessionId" (35523) as ty::SESSION_ID,
        request_timestamp: U64 = "RequestTimestamp" (39562) as ty::UTC_TIMESTAMP_NANOS,
        code: u8 = "Code" (39567) as ty::enumeration(&NegotiationRejectCode::SPEC),
    }
}

sbe_message! {
    /// `Establish` (4): the client starts the application flow.
    Establish { id: template::ESTABLISH, block: 28, dir: ClientToServer } {
        session_id: U64 = "SessionId" (35523) as ty::SESSION_ID,
        timestamp: U64 = "Timestamp" (39561) as ty::UTC_TIMESTAMP_NANOS,
        keepalive_interval: U32 = "KeepaliveInterval" (39569) as ty::DELTA_MILLISECS,
        next_seq_no: U64 = "NextSeqNo" (39570) as ty::SEQ_NUM,
    }
}

sbe_message! {
    /// `EstablishmentAck` (5): the server accepts an Establish.
    EstablishmentAck { id: template::ESTABLISHMENT_ACK, block: 36, dir: ServerToClient } {
        session_id: U64 = "SessionId" (35523) as ty::SESSION_ID,
        request_timestamp: U64 = "RequestTimestamp" (39562) as ty::UTC_TIMESTAMP_NANOS,
        keepalive_interval: U32 = "KeepaliveInterval" (39569) as ty::DELTA_MILLISECS,
        next_seq_no: U64 = "NextSeqNo" (39570) as ty::SEQ_NUM,
        last_processed_seq_no: U64 = "LastProcessedSeqNo" (39571) as ty::SEQ_NUM,
    }
}

sbe_message! {
    /// `EstablishmentReject` (6): the server refuses an Establish.
    EstablishmentReject { id: template::ESTABLISHMENT_REJECT, block: 17, dir: ServerToClient } {
        session_id: U64 = "SessionId" (35523) as ty::SESSION_ID,
        request_timestamp: U64 = "RequestTimestamp" (39562) as ty::UTC_TIMESTAMP_NANOS,
        code: u8 = "Code" (39572) as ty::enumeration(&EstablishRejectCode::SPEC),
    }
}

sbe_message! {
    /// `Sequence` (7): heartbeat announcing the sender's next sequence number (either peer).
    Sequence { id: template::SEQUENCE, block: 8, dir: Both } {
        next_seq_no: U64 = "NextSeqNo" (39570) as ty::SEQ_NUM,
    }
}

sbe_message! {
    /// `RetransmitRequest` (8): the client asks for server messages again.
    RetransmitRequest { id: template::RETRANSMIT_REQUEST, block: 28, dir: ClientToServer } {
        session_id: U64 = "SessionId" (35523) as ty::SESSION_ID,
        timestamp: U64 = "Timestamp" (39561) as ty::UTC_TIMESTAMP_NANOS,
        from_seq_no: U64 = "FromSeqNo" (39573) as ty::SEQ_NUM,
        count: U32 = "Count" (39574) as ty::COUNT,
    }
}

sbe_message! {
    /// `Retransmission` (9): `count` retransmitted messages follow.
    Retransmission { id: template::RETRANSMISSION, block: 28, dir: ServerToClient } {
        session_id: U64 = "SessionId" (35523) as ty::SESSION_ID,
        request_timestamp: U64 = "RequestTimestamp" (39562) as ty::UTC_TIMESTAMP_NANOS,
        next_seq_no: U64 = "NextSeqNo" (39570) as ty::SEQ_NUM,
        count: U32 = "Count" (39574) as ty::COUNT,
    }
}

sbe_message! {
    /// `RetransmitReject` (10): the server refuses a RetransmitRequest.
    RetransmitReject { id: template::RETRANSMIT_REJECT, block: 17, dir: ServerToClient } {
        session_id: U64 = "SessionId" (35523) as ty::SESSION_ID,
        request_timestamp: U64 = "RequestTimestamp" (39562) as ty::UTC_TIMESTAMP_NANOS,
        code: u8 = "Code" (39575) as ty::enumeration(&RetransmitRejectCode::SPEC),
    }
}

sbe_message! {
    /// `Terminate` (11): either peer ends the session.
    Terminate { id: template::TERMINATE, block: 57, dir: Both } {
        session_id: U64 = "SessionId" (35523) as ty::SESSION_ID,
        code: u8 = "Code" (39576) as ty::enumeration(&TerminationCode::SPEC),
        reason: Chars48 = "Reason" (58) as ty::TEXT,
    }
}

sbe_message! {
    /// `NewOrderSingle` (101): enter an order.
    NewOrderSingle { id: template::NEW_ORDER_SINGLE, block: 73, dir: ClientToServer } {
        cl_ord_id: Chars20 = "ClOrdId" (11) as ty::CL_ORD_ID,
        account: U32 = "Account" (1) as ty::ACCOUNT_ID,
        security_id: U32 = "SecurityId" (48) as ty::INSTRUMENT_ID,
        side: u8 = "Side" (54) as ty::enumeration(&Side::SPEC),
        ord_type: u8 = "OrdType" (40) as ty::enumeration(&OrdType::SPEC),
        time_in_force: u8 = "TimeInForce" (59) as ty::enumeration(&TimeInForce::SPEC),
        exec_inst: u8 = "ExecInst" (18) as FieldKind::Set(&ExecInst::SPEC),
        self_trade_prevention: u8 = "SelfTradePrevention" (7928) as ty::enumeration(&SelfTradePrevention::SPEC),
        price: I64 = "Price" (44) as ty::PRICE9,
        stop_px: I64 = "StopPx" (99) as ty::PRICE9,
        order_qty: U64 = "OrderQty" (38) as ty::QTY4,
        display_qty: U64 = "DisplayQty" (1138) as ty::QTY4,
        expire_time: U64 = "ExpireTime" (126) as ty::UTC_TIMESTAMP_NANOS,
    }
}

sbe_message! {
    /// `OrderCancelRequest` (102): cancel one order, named by `OrderId` or `OrigClOrdId`.
    OrderCancelRequest { id: template::ORDER_CANCEL_REQUEST, block: 56, dir: ClientToServer } {
        cl_ord_id: Chars20 = "ClOrdId" (11) as ty::CL_ORD_ID,
        orig_cl_ord_id: Chars20 = "OrigClOrdId" (41) as ty::CL_ORD_ID,
        order_id: U64 = "OrderId" (37) as ty::ORDER_ID,
        account: U32 = "Account" (1) as ty::ACCOUNT_ID,
        security_id: U32 = "SecurityId" (48) as ty::INSTRUMENT_ID,
    }
}

sbe_message! {
    /// `OrderCancelReplaceRequest` (103): change an order's prices and total quantity.
    OrderCancelReplaceRequest { id: template::ORDER_CANCEL_REPLACE_REQUEST, block: 80, dir: ClientToServer } {
        cl_ord_id: Chars20 = "ClOrdId" (11) as ty::CL_ORD_ID,
        orig_cl_ord_id: Chars20 = "OrigClOrdId" (41) as ty::CL_ORD_ID,
        order_id: U64 = "OrderId" (37) as ty::ORDER_ID,
        account: U32 = "Account" (1) as ty::ACCOUNT_ID,
        security_id: U32 = "SecurityId" (48) as ty::INSTRUMENT_ID,
        price: I64 = "Price" (44) as ty::PRICE9,
        stop_px: I64 = "StopPx" (99) as ty::PRICE9,
        order_qty: U64 = "OrderQty" (38) as ty::QTY4,
    }
}

sbe_message! {
    /// `OrderMassCancelRequest` (104): cancel all of an account's orders (optionally in one
    /// instrument).
    OrderMassCancelRequest { id: template::ORDER_MASS_CANCEL_REQUEST, block: 29, dir: ClientToServer } {
        cl_ord_id: Chars20 = "ClOrdId" (11) as ty::CL_ORD_ID,
        account: U32 = "Account" (1) as ty::ACCOUNT_ID,
        security_id: U32 = "SecurityId" (48) as ty::INSTRUMENT_ID,
        scope: u8 = "Scope" (530) as ty::enumeration(&MassCancelScope::SPEC),
    }
}

sbe_message! {
    /// `OrderStatusRequest` (105): report one order's state.
    OrderStatusRequest { id: template::ORDER_STATUS_REQUEST, block: 36, dir: ClientToServer } {
        orig_cl_ord_id: Chars20 = "OrigClOrdId" (41) as ty::CL_ORD_ID,
        order_id: U64 = "OrderId" (37) as ty::ORDER_ID,
        account: U32 = "Account" (1) as ty::ACCOUNT_ID,
        security_id: U32 = "SecurityId" (48) as ty::INSTRUMENT_ID,
    }
}

sbe_message! {
    /// `ExecutionReport` (201): an order's state changed (or a request about it was rejected).
    ExecutionReport { id: template::EXECUTION_REPORT, block: 152, dir: ServerToClient } {
        order_id: U64 = "OrderId" (37) as ty::ORDER_ID,
        exec_id: U64 = "ExecId" (17) as ty::EXEC_ID,
        cl_ord_id: Chars20 = "ClOrdId" (11) as ty::CL_ORD_ID,
        orig_cl_ord_id: Chars20 = "OrigClOrdId" (41) as ty::CL_ORD_ID,
        account: U32 = "Account" (1) as ty::ACCOUNT_ID,
        security_id: U32 = "SecurityId" (48) as ty::INSTRUMENT_ID,
        exec_type: u8 = "ExecType" (150) as ty::enumeration(&ExecType::SPEC),
        ord_status: u8 = "OrdStatus" (39) as ty::enumeration(&OrdStatus::SPEC),
        side: u8 = "Side" (54) as ty::enumeration(&Side::SPEC),
        ord_type: u8 = "OrdType" (40) as ty::enumeration(&OrdType::SPEC),
        time_in_force: u8 = "TimeInForce" (59) as ty::enumeration(&TimeInForce::SPEC),
        aggressor: u8 = "Aggressor" (1057) as ty::optional_enumeration(&Side::SPEC),
        reject_code: U16 = "RejectCode" (103) as ty::REJECT_CODE,
        price: I64 = "Price" (44) as ty::PRICE9,
        stop_px: I64 = "StopPx" (99) as ty::PRICE9,
        order_qty: U64 = "OrderQty" (38) as ty::QTY4,
        last_px: I64 = "LastPx" (31) as ty::PRICE9,
        last_qty: U64 = "LastQty" (32) as ty::QTY4,
        leaves_qty: U64 = "LeavesQty" (151) as ty::QTY4,
        cum_qty: U64 = "CumQty" (14) as ty::QTY4,
        avg_px: I64 = "AvgPx" (6) as ty::PRICE9,
        trade_id: U64 = "TradeId" (1003) as ty::TRADE_ID,
        transact_time: U64 = "TransactTime" (60) as ty::UTC_TIMESTAMP_NANOS,
    }
}

sbe_message! {
    /// `OrderCancelReject` (202): a cancel, replace or status request failed.
    OrderCancelReject { id: template::ORDER_CANCEL_REJECT, block: 64, dir: ServerToClient } {
        order_id: U64 = "OrderId" (37) as ty::ORDER_ID,
        cl_ord_id: Chars20 = "ClOrdId" (11) as ty::CL_ORD_ID,
        orig_cl_ord_id: Chars20 = "OrigClOrdId" (41) as ty::CL_ORD_ID,
        account: U32 = "Account" (1) as ty::ACCOUNT_ID,
        response_to: u8 = "ResponseTo" (434) as ty::enumeration(&CxlRejResponseTo::SPEC),
        reject_code: U16 = "RejectCode" (102) as ty::REJECT_CODE,
        transact_time: U64 = "TransactTime" (60) as ty::UTC_TIMESTAMP_NANOS,
        ord_status: u8 = "OrdStatus" (39) as ty::enumeration(&OrdStatus::SPEC),
    }
}

sbe_message! {
    /// `OrderMassCancelReport` (203): outcome of a mass cancel.
    OrderMassCancelReport { id: template::ORDER_MASS_CANCEL_REPORT, block: 43, dir: ServerToClient } {
        cl_ord_id: Chars20 = "ClOrdId" (11) as ty::CL_ORD_ID,
        account: U32 = "Account" (1) as ty::ACCOUNT_ID,
        security_id: U32 = "SecurityId" (48) as ty::INSTRUMENT_ID,
        scope: u8 = "Scope" (530) as ty::enumeration(&MassCancelScope::SPEC),
        reject_code: U16 = "RejectCode" (532) as ty::REJECT_CODE,
        total_affected_orders: U32 = "TotalAffectedOrders" (533) as ty::COUNT,
        transact_time: U64 = "TransactTime" (60) as ty::UTC_TIMESTAMP_NANOS,
    }
}

sbe_message! {
    /// `BusinessMessageReject` (204): an application message could not be processed at all.
    BusinessMessageReject { id: template::BUSINESS_MESSAGE_REJECT, block: 79, dir: ServerToClient } {
        ref_seq_num: U64 = "RefSeqNum" (45) as ty::SEQ_NUM,
        ref_template_id: U16 = "RefTemplateId" (372) as ty::TEMPLATE_ID,
        reason: u8 = "Reason" (380) as ty::enumeration(&BusinessRejectReason::SPEC),
        cl_ord_id: Chars20 = "ClOrdId" (11) as ty::CL_ORD_ID,
        text: Chars48 = "Text" (58) as ty::TEXT,
    }
}

// ------------------------------------------------------------------------------------------
// Char fields

/// Why a string cannot go into a fixed ASCII char field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CharFieldError {
    /// Longer than the field.
    #[error("text of {len} bytes does not fit a {max}-byte field")]
    TooLong {
        /// The text's length.
        len: usize,
        /// The field's length.
        max: usize,
    },
    /// A byte outside printable ASCII (0x20..=0x7e).
    #[error("byte {byte:#04x} at {position} is not printable ASCII")]
    NotAscii {
        /// Index of the byte.
        position: usize,
        /// The byte.
        byte: u8,
    },
}

/// Whether `b` may appear in a char field (printable ASCII, space included).
pub const fn is_char_field_byte(b: u8) -> bool {
    matches!(b, 0x20..=0x7e)
}

/// Builds a NUL-padded char field from `text`, refusing text that does not fit or is not
/// printable ASCII.
pub fn char_field<const N: usize>(text: &[u8]) -> Result<[u8; N], CharFieldError> {
    if text.len() > N {
        return Err(CharFieldError::TooLong { len: text.len(), max: N });
    }
    if let Some(position) = text.iter().position(|&b| !is_char_field_byte(b)) {
        return Err(CharFieldError::NotAscii { position, byte: text[position] });
    }
    let mut out = [0u8; N];
    out[..text.len()].copy_from_slice(text);
    Ok(out)
}

/// Builds a char field for free text (reasons, logs): truncates to the field and replaces bytes
/// outside printable ASCII with `?`. Never fails.
pub fn char_field_lossy<const N: usize>(text: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, &b) in out.iter_mut().zip(text) {
        *o = if is_char_field_byte(b) { b } else { b'?' };
    }
    out
}

/// The text of a char field: the bytes before the first NUL. `None` if they are not ASCII
/// (cannot happen for a decoded message, which was validated).
pub fn char_field_str(field: &[u8]) -> Option<&str> {
    let len = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let text = &field[..len];
    if text.iter().all(|&b| is_char_field_byte(b)) { std::str::from_utf8(text).ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_tables_are_contiguous_and_cover_the_block() {
        fn check<M: SbeMessage>() {
            let mut at = 0;
            for f in M::FIELDS {
                assert_eq!(f.offset, at, "{}.{}", M::NAME, f.name);
                at += f.kind.size();
            }
            assert_eq!(at, M::BLOCK_LENGTH as usize, "{}", M::NAME);
            assert_eq!(size_of::<M>(), M::BLOCK_LENGTH as usize);
        }
        check::<Negotiate>();
        check::<NegotiationResponse>();
        check::<NegotiationReject>();
        check::<Establish>();
        check::<EstablishmentAck>();
        check::<EstablishmentReject>();
        check::<Sequence>();
        check::<RetransmitRequest>();
        check::<Retransmission>();
        check::<RetransmitReject>();
        check::<Terminate>();
        check::<NewOrderSingle>();
        check::<OrderCancelRequest>();
        check::<OrderCancelReplaceRequest>();
        check::<OrderMassCancelRequest>();
        check::<OrderStatusRequest>();
        check::<ExecutionReport>();
        check::<OrderCancelReject>();
        check::<OrderMassCancelReport>();
        check::<BusinessMessageReject>();
    }

    #[test]
    fn enums_round_trip_and_refuse_unknown_values() {
        for v in 0..=u8::MAX {
            match Side::from_u8(v) {
                Some(s) => assert_eq!(s.to_u8(), v),
                None => assert!(!matches!(v, 1 | 2)),
            }
        }
        assert_eq!(TimeInForce::from_u8(6), Some(TimeInForce::GoodTillDate));
        assert_eq!(TimeInForce::from_u8(2), None);
        assert_eq!(ExecType::Trade.name(), "Trade");
        assert_eq!(ExecType::SPEC.name_of(15), Some("Trade"));
        assert_eq!(ExecInst::SPEC.valid_mask(), 0b1);
    }

    #[test]
    fn char_fields_are_ascii_and_nul_padded() {
        let f: [u8; 20] = char_field(b"abc 1").unwrap();
        assert_eq!(&f[..6], b"abc 1\0");
        assert_eq!(char_field_str(&f), Some("abc 1"));
        assert_eq!(char_field::<4>(b"abcde"), Err(CharFieldError::TooLong { len: 5, max: 4 }));
        assert_eq!(char_field::<4>(b"a\xe9"), Err(CharFieldError::NotAscii { position: 1, byte: 0xe9 }));
        assert_eq!(&char_field_lossy::<4>(b"a\nbcdef"), b"a?bc");
    }
}
