//! The FIX data dictionary (QuickFIX XML format) and message validation.
//!
//! [`Dictionary::sable`] loads `gateway/fix/FIX44-sable.xml` (compiled in) once at start-up
//! into flat tables: fields sorted by tag (type, enum values), messages (allowed body tags,
//! required tags, repeating groups), header and trailer sets. [`Dictionary::validate`] then
//! checks one parsed [`Message`] without allocating.
//!
//! # Validation order
//!
//! Mirrors QuickFIX's `DataDictionary::validate`; the first failure is returned as a
//! [`SessionReject`] (the session answers with Reject 35=3):
//!
//! 1. BeginString equals the dictionary's (`FIX.4.4`), else 373=5 on tag 8 with the text
//!    "Incorrect BeginString" (FIX says: Logout; the framer already refuses anything else).
//! 2. If [`ValidationOptions::validate_fields_out_of_order`]: header fields come before any
//!    body field and trailer fields after every body field, else 373=14 on the first field out
//!    of place.
//! 3. MsgType is in the dictionary, else 373=11 (without RefTagID, as QuickFIX). (Call
//!    [`Dictionary::msg_type_support`] first to answer a valid FIX 4.4 MsgType that sable does
//!    not support with BusinessMessageReject 380=3 instead, as QuickFIX applications do.)
//! 4. Repeating-group structure: each instance starts with the group's delimiter (first)
//!    field, no field repeats inside an instance and, if fields out of order are checked,
//!    fields follow the definition's order; else 373=15 on the group's count tag (delimiter
//!    missing) or on the offending field.
//! 5. Every field, header first, then trailer, then body in wire order (group members right
//!    after their count field), so a malformed or out-of-range value is reported even when a
//!    required tag is also missing (`21=4` → 373=5, `38=+200.00` → 373=6):
//!    - a tag that is a number but no tag (`0`, `-1`: [`INVALID_TAG`]) → 373=0, RefTagID as
//!      written;
//!    - a tag repeated outside a group → 373=13;
//!    - an empty value (if [`ValidationOptions::validate_fields_have_values`]) → 373=4;
//!    - a value not of the field's type → 373=6; a value not in its enumeration → 373=5;
//!    - unless skipped by [`ValidationOptions::allow_unknown_msg_fields`] (tags < 5000) or
//!      [`ValidationOptions::validate_user_defined_fields`] (tags ≥ 5000): a tag not in the
//!      dictionary → 373=0; a body tag not defined for the message → 373=2; a NumInGroup
//!      value different from the number of instances → 373=16.
//! 6. Required fields: header, trailer, body (top level), then each group instance's; else
//!    373=1 on the first missing tag (in definition order).
//!
//! Deviations from QuickFIX, all stricter or FIX-conformant: header and trailer fields marked
//! `required="Y"` are enforced here (QuickFIX leaves most to the session); fields marked
//! required inside a group are required in every instance even when the group is optional;
//! group members must follow the definition's order when fields out of order are checked.
//! And one of order: every field's format and value (step 5) is checked before the required
//! fields (step 6), so a client hears first what is wrong with what it sent (issue #13);
//! QuickFIX 1.16 checks required fields first. QuickFIX's acceptance suite cannot tell the two
//! apart (none of its messages has both faults).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::fix::message::{
    Field, INVALID_TAG, MAX_TAG, Message, is_decimal, is_utc_timestamp, parse_bool, parse_date, parse_i64,
    parse_time_ns, parse_u64,
};

/// The sable dialect's dictionary, compiled in.
pub const SABLE_DICTIONARY_XML: &str = include_str!("../../fix/FIX44-sable.xml");

/// Tags at or above this are user-defined (FIX `UserMin`).
pub const USER_MIN_TAG: u32 = 5000;

pub use crate::limits::{MAX_DEFINITION_DEPTH, MAX_GROUP_MEMBERS};

/// Tags below this are tracked in a bitset when looking for repeated tags; others by a scan.
const DUPLICATE_BITSET_TAGS: u32 = 1024;

/// Tags below this are looked up in dense tables (field definition, header/trailer flags,
/// allowed-per-message bitsets); above it, by binary search. Covers every standard tag and the
/// user-defined range sable uses.
const DENSE_TAGS: u32 = 10_000;

/// Words of a per-message bitset over the dense tags.
const DENSE_WORDS: usize = DENSE_TAGS.div_ceil(64) as usize;

/// Flags of a dense tag entry.
const FLAG_HEADER: u8 = 1;
const FLAG_TRAILER: u8 = 2;

/// Every MsgType defined by FIX 4.4. One that is not in sable's dictionary is "unsupported"
/// (BusinessMessageReject 380=3); anything else is "invalid" (Reject 373=11).
pub const FIX44_MSG_TYPES: [&str; 93] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N",
    "P", "Q", "R", "S", "T", "V", "W", "X", "Y", "Z", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m",
    "n", "o", "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z", "AA", "AB", "AC", "AD", "AE", "AF", "AG", "AH",
    "AI", "AJ", "AK", "AL", "AM", "AN", "AO", "AP", "AQ", "AR", "AS", "AT", "AU", "AV", "AW", "AX", "AY", "AZ", "BA",
    "BB", "BC", "BD", "BE", "BF", "BG", "BH",
];

/// The FIX session-level (administrative) MsgTypes.
pub const ADMIN_MSG_TYPES: [&str; 7] = ["0", "1", "2", "3", "4", "5", "A"];

/// Whether `msg_type` is defined by FIX 4.4.
pub fn is_fix44_msg_type(msg_type: &[u8]) -> bool {
    FIX44_MSG_TYPES.iter().any(|t| t.as_bytes() == msg_type)
}

/// Whether `msg_type` is one of FIX's administrative messages (0–5, A).
pub fn is_admin_msg_type(msg_type: &[u8]) -> bool {
    ADMIN_MSG_TYPES.iter().any(|t| t.as_bytes() == msg_type)
}

/// SessionRejectReason (373), FIX 4.4, with QuickFIX's texts for Text (58).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionRejectReason {
    /// 0: the tag is not defined in the dictionary.
    InvalidTagNumber,
    /// 1: a required tag is missing.
    RequiredTagMissing,
    /// 2: the tag is defined but not for this message type.
    TagNotDefinedForMessageType,
    /// 3: undefined tag (QuickFIX reports 0 instead; kept for completeness).
    UndefinedTag,
    /// 4: the tag has an empty value.
    TagSpecifiedWithoutValue,
    /// 5: the value is not allowed (not in the enumeration).
    ValueIsIncorrect,
    /// 6: the value does not have the field's data format.
    IncorrectDataFormat,
    /// 7: decryption problem.
    DecryptionProblem,
    /// 8: signature problem.
    SignatureProblem,
    /// 9: SenderCompID / TargetCompID do not match the session.
    CompIdProblem,
    /// 10: SendingTime is too far from the receiver's clock.
    SendingTimeAccuracyProblem,
    /// 11: the MsgType is not valid.
    InvalidMsgType,
    /// 12: XML validation error.
    XmlValidationError,
    /// 13: a tag appears more than once.
    TagAppearsMoreThanOnce,
    /// 14: a header field after the body, or a body field after the trailer.
    TagSpecifiedOutOfRequiredOrder,
    /// 15: repeating group fields out of order.
    RepeatingGroupFieldsOutOfOrder,
    /// 16: NumInGroup differs from the number of instances.
    IncorrectNumInGroupCount,
    /// 17: a non-data value contains SOH.
    NonDataValueIncludesFieldDelimiter,
    /// 99: other.
    Other,
}

impl SessionRejectReason {
    /// The value of tag 373.
    pub const fn code(self) -> u32 {
        match self {
            Self::InvalidTagNumber => 0,
            Self::RequiredTagMissing => 1,
            Self::TagNotDefinedForMessageType => 2,
            Self::UndefinedTag => 3,
            Self::TagSpecifiedWithoutValue => 4,
            Self::ValueIsIncorrect => 5,
            Self::IncorrectDataFormat => 6,
            Self::DecryptionProblem => 7,
            Self::SignatureProblem => 8,
            Self::CompIdProblem => 9,
            Self::SendingTimeAccuracyProblem => 10,
            Self::InvalidMsgType => 11,
            Self::XmlValidationError => 12,
            Self::TagAppearsMoreThanOnce => 13,
            Self::TagSpecifiedOutOfRequiredOrder => 14,
            Self::RepeatingGroupFieldsOutOfOrder => 15,
            Self::IncorrectNumInGroupCount => 16,
            Self::NonDataValueIncludesFieldDelimiter => 17,
            Self::Other => 99,
        }
    }

    /// The reason for a value of tag 373.
    pub const fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            0 => Self::InvalidTagNumber,
            1 => Self::RequiredTagMissing,
            2 => Self::TagNotDefinedForMessageType,
            3 => Self::UndefinedTag,
            4 => Self::TagSpecifiedWithoutValue,
            5 => Self::ValueIsIncorrect,
            6 => Self::IncorrectDataFormat,
            7 => Self::DecryptionProblem,
            8 => Self::SignatureProblem,
            9 => Self::CompIdProblem,
            10 => Self::SendingTimeAccuracyProblem,
            11 => Self::InvalidMsgType,
            12 => Self::XmlValidationError,
            13 => Self::TagAppearsMoreThanOnce,
            14 => Self::TagSpecifiedOutOfRequiredOrder,
            15 => Self::RepeatingGroupFieldsOutOfOrder,
            16 => Self::IncorrectNumInGroupCount,
            17 => Self::NonDataValueIncludesFieldDelimiter,
            99 => Self::Other,
            _ => return None,
        })
    }

    /// QuickFIX's Text (58) for this reason.
    pub const fn text(self) -> &'static str {
        match self {
            Self::InvalidTagNumber => "Invalid tag number",
            Self::RequiredTagMissing => "Required tag missing",
            Self::TagNotDefinedForMessageType => "Tag not defined for this message type",
            Self::UndefinedTag => "Undefined Tag",
            Self::TagSpecifiedWithoutValue => "Tag specified without a value",
            Self::ValueIsIncorrect => "Value is incorrect (out of range) for this tag",
            Self::IncorrectDataFormat => "Incorrect data format for value",
            Self::DecryptionProblem => "Decryption problem",
            Self::SignatureProblem => "Signature problem",
            Self::CompIdProblem => "CompID problem",
            Self::SendingTimeAccuracyProblem => "SendingTime accuracy problem",
            Self::InvalidMsgType => "Invalid MsgType",
            Self::XmlValidationError => "XML Validation error",
            Self::TagAppearsMoreThanOnce => "Tag appears more than once",
            Self::TagSpecifiedOutOfRequiredOrder => "Tag specified out of required order",
            Self::RepeatingGroupFieldsOutOfOrder => "Repeating group fields out of order",
            Self::IncorrectNumInGroupCount => "Incorrect NumInGroup count for repeating group",
            Self::NonDataValueIncludesFieldDelimiter => "Non Data value includes field delimiter (SOH character)",
            Self::Other => "Other",
        }
    }
}

/// A session-level rejection: what the session puts in Reject (35=3) as 373, 371 and 58.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text} (373={}, 371={ref_tag:?})", reason.code())]
pub struct SessionReject {
    /// SessionRejectReason (373).
    pub reason: SessionRejectReason,
    /// RefTagID (371), when one tag is at fault.
    pub ref_tag: Option<u32>,
    /// Text (58).
    pub text: &'static str,
}

impl SessionReject {
    /// A rejection with the reason's standard text.
    pub const fn new(reason: SessionRejectReason, ref_tag: Option<u32>) -> Self {
        SessionReject { reason, ref_tag, text: reason.text() }
    }

    const fn tag(reason: SessionRejectReason, tag: u32) -> Self {
        Self::new(reason, Some(tag))
    }
}

/// Validation switches, named and defaulted as QuickFIX's session settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidationOptions {
    /// `ValidateFieldsOutOfOrder` (default Y): header fields first, trailer fields last,
    /// group members in definition order.
    pub validate_fields_out_of_order: bool,
    /// `ValidateFieldsHaveValues` (default Y): empty values are rejected (373=4).
    pub validate_fields_have_values: bool,
    /// `ValidateUserDefinedFields` (default Y): tags ≥ 5000 must be defined, and defined for
    /// the message.
    pub validate_user_defined_fields: bool,
    /// `AllowUnknownMsgFields` (default N): tags < 5000 that are unknown or not defined for
    /// the message are let through (their format is still checked when the tag is known).
    pub allow_unknown_msg_fields: bool,
}

impl Default for ValidationOptions {
    fn default() -> Self {
        ValidationOptions {
            validate_fields_out_of_order: true,
            validate_fields_have_values: true,
            validate_user_defined_fields: true,
            allow_unknown_msg_fields: false,
        }
    }
}

impl ValidationOptions {
    fn should_check_tag(&self, tag: u32) -> bool {
        if tag < USER_MIN_TAG { !self.allow_unknown_msg_fields } else { self.validate_user_defined_fields }
    }
}

/// How a MsgType relates to the dictionary, to pick the right answer to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgTypeSupport {
    /// In the dictionary.
    Supported,
    /// A FIX 4.4 message sable does not handle: answer BusinessMessageReject 380=3
    /// "Unsupported Message Type".
    Unsupported,
    /// Not a FIX 4.4 MsgType at all: answer Reject 373=11 "Invalid MsgType".
    Invalid,
}

/// A field's data type as QuickFIX names it in the XML.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// INT: optional `-`, digits.
    Int,
    /// LENGTH: non-negative integer.
    Length,
    /// NUMINGROUP: non-negative integer.
    NumInGroup,
    /// SEQNUM: non-negative integer.
    SeqNum,
    /// TAGNUM: non-negative integer.
    TagNum,
    /// DAYOFMONTH: 1–31.
    DayOfMonth,
    /// FLOAT: decimal.
    Float,
    /// QTY: decimal.
    Qty,
    /// PRICE: decimal.
    Price,
    /// PRICEOFFSET: decimal.
    PriceOffset,
    /// AMT: decimal.
    Amt,
    /// PERCENTAGE: decimal.
    Percentage,
    /// CHAR: one character.
    Char,
    /// BOOLEAN: Y or N.
    Boolean,
    /// STRING: anything.
    String,
    /// MULTIPLECHARVALUE: single characters separated by single spaces.
    MultipleCharValue,
    /// MULTIPLEVALUESTRING / MULTIPLESTRINGVALUE: space-separated strings.
    MultipleValueString,
    /// CURRENCY (not checked beyond STRING).
    Currency,
    /// EXCHANGE (not checked beyond STRING).
    Exchange,
    /// COUNTRY (not checked beyond STRING).
    Country,
    /// MONTHYEAR: YYYYMM, YYYYMMDD or YYYYMMwN.
    MonthYear,
    /// UTCTIMESTAMP (and TIME): `YYYYMMDD-HH:MM:SS[.sss|.ssssss|.sssssssss]`.
    UtcTimestamp,
    /// UTCTIMEONLY: `HH:MM:SS[.fraction]`.
    UtcTimeOnly,
    /// UTCDATEONLY / UTCDATE: `YYYYMMDD`.
    UtcDateOnly,
    /// LOCALMKTDATE: `YYYYMMDD`.
    LocalMktDate,
    /// DATA: raw bytes (may contain SOH, read by its length field).
    Data,
    /// Any other type name: no format check.
    Unknown,
}

impl FieldType {
    /// Maps a QuickFIX XML type name.
    pub fn from_xml(name: &str) -> Self {
        match name {
            "INT" => Self::Int,
            "LENGTH" => Self::Length,
            "NUMINGROUP" => Self::NumInGroup,
            "SEQNUM" => Self::SeqNum,
            "TAGNUM" => Self::TagNum,
            "DAYOFMONTH" => Self::DayOfMonth,
            "FLOAT" => Self::Float,
            "QTY" | "QUANTITY" => Self::Qty,
            "PRICE" => Self::Price,
            "PRICEOFFSET" => Self::PriceOffset,
            "AMT" => Self::Amt,
            "PERCENTAGE" => Self::Percentage,
            "CHAR" => Self::Char,
            "BOOLEAN" => Self::Boolean,
            "STRING" => Self::String,
            "MULTIPLECHARVALUE" => Self::MultipleCharValue,
            "MULTIPLEVALUESTRING" | "MULTIPLESTRINGVALUE" => Self::MultipleValueString,
            "CURRENCY" => Self::Currency,
            "EXCHANGE" => Self::Exchange,
            "COUNTRY" => Self::Country,
            "MONTHYEAR" => Self::MonthYear,
            "UTCTIMESTAMP" | "TIME" => Self::UtcTimestamp,
            "UTCTIMEONLY" => Self::UtcTimeOnly,
            "UTCDATEONLY" | "UTCDATE" => Self::UtcDateOnly,
            "LOCALMKTDATE" => Self::LocalMktDate,
            "DATA" => Self::Data,
            _ => Self::Unknown,
        }
    }

    /// Whether `v` has this type's data format.
    pub fn is_valid(self, v: &[u8]) -> bool {
        match self {
            Self::Int => parse_i64(v).is_some(),
            Self::Length | Self::NumInGroup | Self::SeqNum | Self::TagNum => parse_u64(v).is_some(),
            Self::DayOfMonth => matches!(parse_u64(v), Some(1..=31)) && v.len() <= 2,
            Self::Float | Self::Qty | Self::Price | Self::PriceOffset | Self::Amt | Self::Percentage => is_decimal(v),
            Self::Char => v.len() == 1,
            Self::Boolean => parse_bool(v).is_some(),
            Self::MultipleCharValue => !v.is_empty() && v.split(|&b| b == b' ').all(|t| t.len() == 1 && t[0] != b' '),
            Self::MultipleValueString => !v.is_empty() && v.split(|&b| b == b' ').all(|t| !t.is_empty()),
            Self::MonthYear => is_month_year(v),
            Self::UtcTimestamp => is_utc_timestamp(v),
            Self::UtcTimeOnly => parse_time_ns(v).is_some(),
            Self::UtcDateOnly | Self::LocalMktDate => parse_date(v).is_some(),
            Self::String | Self::Currency | Self::Exchange | Self::Country | Self::Data | Self::Unknown => true,
        }
    }

    fn is_multiple(self) -> bool {
        matches!(self, Self::MultipleCharValue | Self::MultipleValueString)
    }
}

/// `YYYYMM`, `YYYYMMDD` or `YYYYMMwN` (week 1–5).
fn is_month_year(v: &[u8]) -> bool {
    if v.len() < 6 || !v[..6].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let month = u32::from(v[4] - b'0') * 10 + u32::from(v[5] - b'0');
    if !(1..=12).contains(&month) {
        return false;
    }
    match &v[6..] {
        [] => true,
        [b'w', w] => (b'1'..=b'5').contains(w),
        [_, _] => parse_date(v).is_some(),
        _ => false,
    }
}

/// Why a dictionary could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DictionaryError {
    /// The text is not well-formed XML.
    #[error("dictionary XML: {0}")]
    Xml(String),
    /// The root is not `<fix>` or lacks `major`/`minor`, or `type` is not FIX/FIXT.
    #[error("dictionary root: {0}")]
    Root(&'static str),
    /// A required section (`fields`, `header`, `trailer`, `messages`) is missing.
    #[error("<{0}> section missing")]
    MissingSection(&'static str),
    /// An element lacks a required attribute.
    #[error("<{element}> lacks attribute {attribute}")]
    MissingAttribute {
        /// The element's name.
        element: &'static str,
        /// The attribute's name.
        attribute: &'static str,
    },
    /// A field number is not a tag in 1..=MAX_TAG.
    #[error("field {name}: number {number:?} is not a valid tag")]
    BadTag {
        /// The field's name.
        name: String,
        /// The number attribute.
        number: String,
    },
    /// Two fields share a name or a number.
    #[error("field {0} defined twice")]
    DuplicateField(String),
    /// A message, component or group refers to a field name not in `<fields>`.
    #[error("unknown field {0}")]
    UnknownField(String),
    /// A message or component refers to a component not in `<components>`.
    #[error("unknown component {0}")]
    UnknownComponent(String),
    /// Two messages share a MsgType.
    #[error("MsgType {0} defined twice")]
    DuplicateMsgType(String),
    /// A group has no members or more than [`MAX_GROUP_MEMBERS`], or its count field is not
    /// NUMINGROUP.
    #[error("group {0} is malformed (empty, too wide, or its count field is not NUMINGROUP)")]
    BadGroup(String),
    /// Components or groups nest deeper than [`MAX_DEFINITION_DEPTH`] (or refer to
    /// themselves).
    #[error("definitions nest deeper than {max} levels at {0}", max = MAX_DEFINITION_DEPTH)]
    TooDeep(String),
}

/// One field of the dictionary.
#[derive(Clone, Debug)]
struct FieldDef {
    tag: u32,
    name: String,
    ty: FieldType,
    /// Allowed values; empty = any value of the type.
    values: Vec<Box<[u8]>>,
}

/// A repeating group: its count tag and members in definition order (member 0 is the
/// delimiter that starts every instance).
#[derive(Clone, Debug)]
struct GroupDef {
    count_tag: u32,
    members: Vec<u32>,
    required_mask: u64,
    /// Nested groups, keyed by the member index of their count tag.
    nested: Vec<(usize, GroupDef)>,
}

impl GroupDef {
    fn member_index(&self, tag: u32) -> Option<usize> {
        self.members.iter().position(|&t| t == tag)
    }

    fn nested(&self, member: usize) -> Option<&GroupDef> {
        self.nested.iter().find(|(i, _)| *i == member).map(|(_, g)| g)
    }
}

/// One message type.
#[derive(Clone, Debug)]
struct MessageDef {
    msg_type: Box<[u8]>,
    name: String,
    admin: bool,
    /// Top-level body tags (fields, flattened components, group count tags), sorted.
    allowed: Vec<u32>,
    /// `allowed` as a bitset over the dense tags (the hot-path lookup).
    allowed_dense: Box<[u64]>,
    /// Required top-level body tags in definition order.
    required: Vec<u32>,
    groups: Vec<GroupDef>,
}

impl MessageDef {
    fn allows(&self, tag: u32) -> bool {
        if tag < DENSE_TAGS {
            self.allowed_dense[(tag / 64) as usize] & (1 << (tag % 64)) != 0
        } else {
            self.allowed.binary_search(&tag).is_ok()
        }
    }

    fn group(&self, tag: u32) -> Option<&GroupDef> {
        self.groups.iter().find(|g| g.count_tag == tag)
    }
}

/// A loaded data dictionary. Immutable after loading; share it by reference.
#[derive(Clone, Debug)]
pub struct Dictionary {
    begin_string: String,
    /// Sorted by tag.
    fields: Vec<FieldDef>,
    /// Header tags in definition order with their required flag.
    header: Vec<(u32, bool)>,
    /// Trailer tags in definition order with their required flag.
    trailer: Vec<(u32, bool)>,
    messages: Vec<MessageDef>,
    /// Per dense tag: index into `fields` + 1 (0 = not defined).
    dense_field: Box<[u16]>,
    /// Per dense tag: [`FLAG_HEADER`] / [`FLAG_TRAILER`].
    dense_flags: Box<[u8]>,
    /// Per single-byte MsgType: index into `messages` + 1 (0 = none).
    msg_by_byte: [u8; 256],
}

/// What a list of `<field>`, `<component>` and `<group>` children expands to.
#[derive(Default)]
struct Collected {
    tags: Vec<u32>,
    required: Vec<u32>,
    groups: Vec<GroupDef>,
}

/// Loading context: the document's fields and components by name.
struct Loader<'a, 'input> {
    tags_by_name: BTreeMap<&'a str, u32>,
    field_types: BTreeMap<u32, FieldType>,
    components: BTreeMap<&'a str, roxmltree::Node<'a, 'input>>,
}

fn attr<'a>(
    node: roxmltree::Node<'a, '_>,
    element: &'static str,
    attribute: &'static str,
) -> Result<&'a str, DictionaryError> {
    node.attribute(attribute).ok_or(DictionaryError::MissingAttribute { element, attribute })
}

fn is_required(node: roxmltree::Node<'_, '_>) -> bool {
    matches!(node.attribute("required"), Some("Y" | "y" | "true"))
}

impl<'a, 'input> Loader<'a, 'input> {
    fn tag(&self, name: &str) -> Result<u32, DictionaryError> {
        self.tags_by_name.get(name).copied().ok_or_else(|| DictionaryError::UnknownField(name.to_string()))
    }

    /// The definition of message `m` (MsgType `msg_type`): its top-level fields (sorted, and
    /// as a bitset over the dense tags), required fields and groups.
    fn message(&self, m: roxmltree::Node<'a, 'input>, msg_type: &str) -> Result<MessageDef, DictionaryError> {
        let mut c = Collected::default();
        self.collect(m, true, 0, &mut c)?;
        let mut allowed = c.tags;
        allowed.sort_unstable();
        let mut allowed_dense = vec![0u64; DENSE_WORDS].into_boxed_slice();
        for &t in allowed.iter().filter(|&&t| t < DENSE_TAGS) {
            allowed_dense[(t / 64) as usize] |= 1 << (t % 64);
        }
        let admin = match m.attribute("msgcat") {
            Some(cat) => cat == "admin",
            None => is_admin_msg_type(msg_type.as_bytes()),
        };
        Ok(MessageDef {
            msg_type: msg_type.as_bytes().to_vec().into_boxed_slice(),
            name: m.attribute("name").unwrap_or("").to_string(),
            admin,
            allowed,
            allowed_dense,
            required: c.required,
            groups: c.groups,
        })
    }

    /// Expands the children of `node` (a message, component or group) into `out`.
    /// `required_ctx` is false inside an optional component: its fields are then optional
    /// (QuickFIX semantics).
    fn collect(
        &self,
        node: roxmltree::Node<'a, 'input>,
        required_ctx: bool,
        depth: usize,
        out: &mut Collected,
    ) -> Result<(), DictionaryError> {
        if depth > MAX_DEFINITION_DEPTH {
            return Err(DictionaryError::TooDeep(node.attribute("name").unwrap_or("?").to_string()));
        }
        for child in node.children().filter(roxmltree::Node::is_element) {
            match child.tag_name().name() {
                "field" => {
                    let tag = self.tag(attr(child, "field", "name")?)?;
                    push_unique(&mut out.tags, tag);
                    if required_ctx && is_required(child) {
                        push_unique(&mut out.required, tag);
                    }
                }
                "component" => {
                    let name = attr(child, "component", "name")?;
                    let comp = *self
                        .components
                        .get(name)
                        .ok_or_else(|| DictionaryError::UnknownComponent(name.to_string()))?;
                    self.collect(comp, required_ctx && is_required(child), depth + 1, out)?;
                }
                "group" => {
                    let name = attr(child, "group", "name")?;
                    let count_tag = self.tag(name)?;
                    if self.field_types.get(&count_tag) != Some(&FieldType::NumInGroup) {
                        return Err(DictionaryError::BadGroup(name.to_string()));
                    }
                    push_unique(&mut out.tags, count_tag);
                    if required_ctx && is_required(child) {
                        push_unique(&mut out.required, count_tag);
                    }
                    let mut inner = Collected::default();
                    // Required members are required in every instance, whether or not the
                    // group itself is required.
                    self.collect(child, true, depth + 1, &mut inner)?;
                    out.groups.push(group_def(name, count_tag, inner)?);
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The BeginString the `<fix>` root element describes (`type.major.minor`).
fn begin_string(root: roxmltree::Node<'_, '_>) -> Result<String, DictionaryError> {
    if root.tag_name().name() != "fix" {
        return Err(DictionaryError::Root("the root element is not <fix>"));
    }
    let kind = root.attribute("type").unwrap_or("FIX");
    if kind != "FIX" && kind != "FIXT" {
        return Err(DictionaryError::Root("type must be FIX or FIXT"));
    }
    let major = root.attribute("major").ok_or(DictionaryError::Root("major attribute missing"))?;
    let minor = root.attribute("minor").ok_or(DictionaryError::Root("minor attribute missing"))?;
    Ok(format!("{kind}.{major}.{minor}"))
}

/// What `<fields>` defines: the definitions sorted by tag, the tag of each name, the type of
/// each tag.
type Fields<'a> = (Vec<FieldDef>, BTreeMap<&'a str, u32>, BTreeMap<u32, FieldType>);

/// The field definitions of `<fields>`.
fn load_fields<'a>(section: roxmltree::Node<'a, '_>) -> Result<Fields<'a>, DictionaryError> {
    let mut fields: Vec<FieldDef> = Vec::new();
    let mut tags_by_name = BTreeMap::new();
    let mut field_types = BTreeMap::new();
    for f in section.children().filter(|n| n.is_element() && n.tag_name().name() == "field") {
        let name = attr(f, "field", "name")?;
        let number = attr(f, "field", "number")?;
        let tag = number
            .parse::<u32>()
            .ok()
            .filter(|t| (1..=MAX_TAG).contains(t))
            .ok_or_else(|| DictionaryError::BadTag { name: name.to_string(), number: number.to_string() })?;
        let ty = FieldType::from_xml(attr(f, "field", "type")?);
        if tags_by_name.insert(name, tag).is_some() || field_types.insert(tag, ty).is_some() {
            return Err(DictionaryError::DuplicateField(name.to_string()));
        }
        let mut values = Vec::new();
        for v in f.children().filter(|n| n.is_element() && n.tag_name().name() == "value") {
            values.push(attr(v, "value", "enum")?.as_bytes().to_vec().into_boxed_slice());
        }
        fields.push(FieldDef { tag, name: name.to_string(), ty, values });
    }
    fields.sort_by_key(|f| f.tag);
    Ok((fields, tags_by_name, field_types))
}

fn push_unique(v: &mut Vec<u32>, tag: u32) {
    if !v.contains(&tag) {
        v.push(tag);
    }
}

fn group_def(name: &str, count_tag: u32, inner: Collected) -> Result<GroupDef, DictionaryError> {
    if inner.tags.is_empty() || inner.tags.len() > MAX_GROUP_MEMBERS {
        return Err(DictionaryError::BadGroup(name.to_string()));
    }
    let index = |tag: u32| inner.tags.iter().position(|&t| t == tag);
    let mut required_mask = 1u64; // the delimiter starts every instance
    for &tag in &inner.required {
        if let Some(i) = index(tag) {
            required_mask |= 1 << i;
        }
    }
    let mut nested = Vec::with_capacity(inner.groups.len());
    for g in inner.groups {
        let i = index(g.count_tag).ok_or_else(|| DictionaryError::BadGroup(name.to_string()))?;
        nested.push((i, g));
    }
    Ok(GroupDef { count_tag, members: inner.tags, required_mask, nested })
}

impl Dictionary {
    /// sable's dictionary (`gateway/fix/FIX44-sable.xml`, compiled in).
    pub fn sable() -> Dictionary {
        Dictionary::from_xml(SABLE_DICTIONARY_XML).expect("the compiled-in dictionary loads (tested)")
    }

    /// sable's dictionary, loaded once per process and shared.
    pub fn sable_shared() -> &'static Dictionary {
        static DICTIONARY: OnceLock<Dictionary> = OnceLock::new();
        DICTIONARY.get_or_init(Dictionary::sable)
    }

    /// Loads a QuickFIX-format dictionary.
    pub fn from_xml(xml: &str) -> Result<Dictionary, DictionaryError> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| DictionaryError::Xml(e.to_string()))?;
        let root = doc.root_element();
        let begin_string = begin_string(root)?;
        let section = |name: &'static str| {
            root.children()
                .find(|n| n.is_element() && n.tag_name().name() == name)
                .ok_or(DictionaryError::MissingSection(name))
        };
        let (fields, tags_by_name, field_types) = load_fields(section("fields")?)?;
        let mut components = BTreeMap::new();
        if let Ok(section) = section("components") {
            for c in section.children().filter(|n| n.is_element() && n.tag_name().name() == "component") {
                components.insert(attr(c, "component", "name")?, c);
            }
        }
        let loader = Loader { tags_by_name, field_types, components };

        // Header and trailer (groups there are not supported by sable's validation).
        let non_body = |name: &'static str| -> Result<Vec<(u32, bool)>, DictionaryError> {
            let mut out = Vec::new();
            for f in section(name)?.children().filter(|n| n.is_element() && n.tag_name().name() == "field") {
                out.push((loader.tag(attr(f, "field", "name")?)?, is_required(f)));
            }
            Ok(out)
        };
        let header = non_body("header")?;
        let trailer = non_body("trailer")?;

        let mut messages: Vec<MessageDef> = Vec::new();
        for m in section("messages")?.children().filter(|n| n.is_element() && n.tag_name().name() == "message") {
            let msg_type = attr(m, "message", "msgtype")?;
            if messages.iter().any(|d| &*d.msg_type == msg_type.as_bytes()) {
                return Err(DictionaryError::DuplicateMsgType(msg_type.to_string()));
            }
            messages.push(loader.message(m, msg_type)?);
        }
        let mut dictionary = Dictionary {
            begin_string,
            fields,
            header,
            trailer,
            messages,
            dense_field: Box::default(),
            dense_flags: Box::default(),
            msg_by_byte: [0; 256],
        };
        dictionary.build_dense_tables()?;
        Ok(dictionary)
    }

    /// Fills the lookup tables of the hot path: field definitions and header/trailer flags by
    /// tag below [`DENSE_TAGS`], single-byte MsgTypes by byte.
    fn build_dense_tables(&mut self) -> Result<(), DictionaryError> {
        if self.fields.len() >= usize::from(u16::MAX) {
            return Err(DictionaryError::Root("too many fields"));
        }
        let mut dense_field = vec![0u16; DENSE_TAGS as usize].into_boxed_slice();
        for (i, f) in self.fields.iter().enumerate().filter(|(_, f)| f.tag < DENSE_TAGS) {
            dense_field[f.tag as usize] = (i + 1) as u16;
        }
        let mut dense_flags = vec![0u8; DENSE_TAGS as usize].into_boxed_slice();
        for (list, flag) in [(&self.header, FLAG_HEADER), (&self.trailer, FLAG_TRAILER)] {
            for &(t, _) in list.iter().filter(|(t, _)| *t < DENSE_TAGS) {
                dense_flags[t as usize] |= flag;
            }
        }
        if self.messages.len() >= 255 {
            return Err(DictionaryError::Root("too many messages"));
        }
        for (i, m) in self.messages.iter().enumerate() {
            if let [b] = *m.msg_type {
                self.msg_by_byte[usize::from(b)] = (i + 1) as u8;
            }
        }
        self.dense_field = dense_field;
        self.dense_flags = dense_flags;
        Ok(())
    }

    /// The BeginString this dictionary describes, e.g. `FIX.4.4`.
    pub fn begin_string(&self) -> &str {
        &self.begin_string
    }

    #[inline]
    fn field_def(&self, tag: u32) -> Option<&FieldDef> {
        if tag < DENSE_TAGS {
            let i = self.dense_field[tag as usize];
            return (i != 0).then(|| &self.fields[usize::from(i) - 1]);
        }
        self.fields.binary_search_by_key(&tag, |f| f.tag).ok().map(|i| &self.fields[i])
    }

    #[inline]
    fn message_def(&self, msg_type: &[u8]) -> Option<&MessageDef> {
        if let [b] = msg_type {
            let i = self.msg_by_byte[usize::from(*b)];
            return (i != 0).then(|| &self.messages[usize::from(i) - 1]);
        }
        self.messages.iter().find(|m| &*m.msg_type == msg_type)
    }

    #[inline]
    fn flags(&self, tag: u32) -> Option<u8> {
        (tag < DENSE_TAGS).then(|| self.dense_flags[tag as usize])
    }

    /// Whether `tag` is defined.
    pub fn is_field(&self, tag: u32) -> bool {
        self.field_def(tag).is_some()
    }

    /// The type of `tag`.
    pub fn field_type(&self, tag: u32) -> Option<FieldType> {
        self.field_def(tag).map(|f| f.ty)
    }

    /// The name of `tag`.
    pub fn field_name(&self, tag: u32) -> Option<&str> {
        self.field_def(tag).map(|f| f.name.as_str())
    }

    /// The tag of the field called `name`.
    pub fn field_tag(&self, name: &str) -> Option<u32> {
        self.fields.iter().find(|f| f.name == name).map(|f| f.tag)
    }

    /// Whether `value` is allowed for `tag` by its enumeration (every token for
    /// multiple-value types). True for fields without an enumeration; false for unknown tags.
    pub fn is_field_value(&self, tag: u32, value: &[u8]) -> bool {
        self.field_def(tag).is_some_and(|f| value_in_enum(f, value))
    }

    /// The enumerated values of `tag` (empty when any value of the type is allowed).
    pub fn field_values(&self, tag: u32) -> impl Iterator<Item = &[u8]> {
        self.field_def(tag).into_iter().flat_map(|f| f.values.iter().map(|v| &**v))
    }

    /// Whether `tag` is a header field.
    #[inline]
    pub fn is_header_field(&self, tag: u32) -> bool {
        match self.flags(tag) {
            Some(f) => f & FLAG_HEADER != 0,
            None => self.header.iter().any(|&(t, _)| t == tag),
        }
    }

    /// Whether `tag` is a trailer field.
    #[inline]
    pub fn is_trailer_field(&self, tag: u32) -> bool {
        match self.flags(tag) {
            Some(f) => f & FLAG_TRAILER != 0,
            None => self.trailer.iter().any(|&(t, _)| t == tag),
        }
    }

    /// The MsgTypes of the dictionary, in definition order.
    pub fn msg_types(&self) -> impl Iterator<Item = &[u8]> {
        self.messages.iter().map(|m| &*m.msg_type)
    }

    /// Whether `msg_type` is in the dictionary.
    pub fn has_msg_type(&self, msg_type: &[u8]) -> bool {
        self.message_def(msg_type).is_some()
    }

    /// The dictionary's name for `msg_type` (e.g. `NewOrderSingle`).
    pub fn msg_type_name(&self, msg_type: &[u8]) -> Option<&str> {
        self.message_def(msg_type).map(|m| m.name.as_str())
    }

    /// Whether `msg_type` is an administrative message: `msgcat="admin"` in the dictionary,
    /// or one of FIX's 0–5, A when the dictionary does not define it.
    pub fn is_admin(&self, msg_type: &[u8]) -> bool {
        match self.message_def(msg_type) {
            Some(m) => m.admin,
            None => is_admin_msg_type(msg_type),
        }
    }

    /// Whether `msg_type` is supported, a FIX 4.4 type sable does not support, or invalid.
    pub fn msg_type_support(&self, msg_type: &[u8]) -> MsgTypeSupport {
        if self.has_msg_type(msg_type) {
            MsgTypeSupport::Supported
        } else if is_fix44_msg_type(msg_type) {
            MsgTypeSupport::Unsupported
        } else {
            MsgTypeSupport::Invalid
        }
    }

    /// Whether `tag` may appear at the top level of the body of `msg_type` (group members are
    /// not top-level; group count tags are).
    pub fn is_msg_field(&self, msg_type: &[u8], tag: u32) -> bool {
        self.message_def(msg_type).is_some_and(|m| m.allows(tag))
    }

    /// The required top-level body tags of `msg_type`, in definition order.
    pub fn required_fields(&self, msg_type: &[u8]) -> &[u32] {
        self.message_def(msg_type).map_or(&[], |m| &m.required)
    }

    /// The top-level body tags of `msg_type`, sorted.
    pub fn msg_fields(&self, msg_type: &[u8]) -> &[u32] {
        self.message_def(msg_type).map_or(&[], |m| &m.allowed)
    }

    /// The repeating groups of `msg_type`: `(count tag, members in order)`, nested groups not
    /// listed.
    pub fn groups(&self, msg_type: &[u8]) -> impl Iterator<Item = (u32, &[u32])> {
        self.message_def(msg_type).into_iter().flat_map(|m| m.groups.iter().map(|g| (g.count_tag, &g.members[..])))
    }

    /// Validates `msg` against the dictionary; see the module docs for the order of checks.
    /// Allocates nothing.
    pub fn validate(&self, msg: &Message<'_>, opts: &ValidationOptions) -> Result<(), SessionReject> {
        use SessionRejectReason as R;
        let fields = msg.fields();

        // 1. BeginString.
        if msg.begin_string() != self.begin_string.as_bytes() {
            return Err(SessionReject { text: "Incorrect BeginString", ..SessionReject::tag(R::ValueIsIncorrect, 8) });
        }

        // 2. Header first, trailer last.
        if opts.validate_fields_out_of_order {
            self.check_field_order(fields)?;
        }

        // 3. MsgType.
        let def = self.message_def(msg.msg_type()).ok_or(SessionReject::new(R::InvalidMsgType, None))?;

        let walk = Walk { dict: self, msg, opts };
        // 4. Group structure; learn which fields are top-level. Without a group count tag of
        //    this message type in it (the common case), every field is top-level.
        let any_group = !def.groups.is_empty() && fields.iter().any(|f| def.group(f.tag).is_some());
        let top = if any_group {
            walk.body(def, Pass::Structure)?
        } else if fields.len() >= u128::BITS as usize {
            u128::MAX
        } else {
            (1u128 << fields.len()) - 1
        };

        // 5. Every field: header, trailer, then body (groups in place).
        self.check_fields(&walk, def, top)?;

        // 6. Required fields.
        self.check_required(msg, def, top)?;
        if any_group {
            walk.body(def, Pass::Required)?;
        }
        Ok(())
    }

    /// Validation step 2: header fields before any other, trailer fields after every other.
    #[inline]
    fn check_field_order(&self, fields: &[Field]) -> Result<(), SessionReject> {
        let (mut in_body, mut in_trailer) = (false, false);
        for f in fields {
            if self.is_header_field(f.tag) {
                if in_body || in_trailer {
                    return Err(SessionReject::tag(SessionRejectReason::TagSpecifiedOutOfRequiredOrder, f.tag));
                }
            } else if self.is_trailer_field(f.tag) {
                in_trailer = true;
            } else {
                if in_trailer {
                    return Err(SessionReject::tag(SessionRejectReason::TagSpecifiedOutOfRequiredOrder, f.tag));
                }
                in_body = true;
            }
        }
        Ok(())
    }

    /// Validation step 6 (outside groups): the required header and trailer fields, and the
    /// message's required top-level fields (`top`: mask of the top-level field indexes).
    #[inline]
    fn check_required(&self, msg: &Message<'_>, def: &MessageDef, top: u128) -> Result<(), SessionReject> {
        let fields = msg.fields();
        for &(tag, required) in self.header.iter().chain(&self.trailer) {
            if required && !msg.has(tag) {
                return Err(SessionReject::tag(SessionRejectReason::RequiredTagMissing, tag));
            }
        }
        let mut present = [0u64; DUPLICATE_BITSET_TAGS as usize / 64];
        for (i, f) in fields.iter().enumerate() {
            if f.tag < DUPLICATE_BITSET_TAGS && top & (1 << i) != 0 {
                present[(f.tag / 64) as usize] |= 1 << (f.tag % 64);
            }
        }
        for &tag in &def.required {
            let found = if tag < DUPLICATE_BITSET_TAGS {
                present[(tag / 64) as usize] & (1 << (tag % 64)) != 0
            } else {
                fields.iter().enumerate().any(|(i, f)| f.tag == tag && top & (1 << i) != 0)
            };
            if !found {
                return Err(SessionReject::tag(SessionRejectReason::RequiredTagMissing, tag));
            }
        }
        Ok(())
    }

    /// Validation step 5: every field once (header, trailer, then the body with its groups in
    /// place), well formed, and, as the options ask, defined and allowed for the message.
    #[inline]
    fn check_fields(&self, walk: &Walk<'_, '_, '_>, def: &MessageDef, top: u128) -> Result<(), SessionReject> {
        use SessionRejectReason as R;
        let (msg, fields) = (walk.msg, walk.msg.fields());
        let mut seen = [0u64; DUPLICATE_BITSET_TAGS as usize / 64];
        let mut check_repeat = |i: usize, tag: u32| -> Result<(), SessionReject> {
            let repeated = if tag < DUPLICATE_BITSET_TAGS {
                let (word, bit) = ((tag / 64) as usize, 1u64 << (tag % 64));
                let r = seen[word] & bit != 0;
                seen[word] |= bit;
                r
            } else {
                fields[..i].iter().enumerate().any(|(j, f)| f.tag == tag && top & (1 << j) != 0)
            };
            if repeated { Err(SessionReject::tag(R::TagAppearsMoreThanOnce, tag)) } else { Ok(()) }
        };
        for (i, f) in fields.iter().enumerate() {
            if self.is_header_field(f.tag) {
                check_repeat(i, f.tag)?;
                walk.field(f.tag, msg.value(f))?;
            }
        }
        for (i, f) in fields.iter().enumerate() {
            if self.is_trailer_field(f.tag) {
                check_repeat(i, f.tag)?;
                walk.field(f.tag, msg.value(f))?;
            }
        }
        let mut i = 0;
        while i < fields.len() {
            let f = &fields[i];
            if top & (1 << i) == 0 || self.is_header_field(f.tag) || self.is_trailer_field(f.tag) {
                i += 1;
                continue;
            }
            if f.tag == INVALID_TAG {
                return Err(SessionReject::tag(R::InvalidTagNumber, INVALID_TAG));
            }
            check_repeat(i, f.tag)?;
            let value = msg.value(f);
            walk.field(f.tag, value)?;
            i += 1;
            if walk.opts.should_check_tag(f.tag) {
                if !self.is_field(f.tag) {
                    return Err(SessionReject::tag(R::InvalidTagNumber, f.tag));
                }
                if !def.allows(f.tag) {
                    return Err(SessionReject::tag(R::TagNotDefinedForMessageType, f.tag));
                }
            }
            if let Some(g) = def.group(f.tag) {
                i = walk.group_with_count(g, value, i)?;
            }
        }
        Ok(())
    }
}

fn value_in_enum(f: &FieldDef, value: &[u8]) -> bool {
    if f.values.is_empty() {
        return true;
    }
    let allowed = |v: &[u8]| f.values.iter().any(|a| &**a == v);
    if f.ty.is_multiple() { value.split(|&b| b == b' ').all(allowed) } else { allowed(value) }
}

/// Which checks a walk over the body performs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Group instance structure (373=15); returns the top-level mask.
    Structure,
    /// Required members of each group instance (373=1).
    Required,
    /// Field values inside groups (373=4, 6, 5) and NumInGroup counts (373=16).
    Fields,
}

struct Walk<'d, 'm, 'o> {
    dict: &'d Dictionary,
    msg: &'m Message<'m>,
    opts: &'o ValidationOptions,
}

impl Walk<'_, '_, '_> {
    /// Walks the body's top level, descending into groups. Returns a mask of the field
    /// indexes that are not inside a group (header and trailer fields included).
    fn body(&self, def: &MessageDef, pass: Pass) -> Result<u128, SessionReject> {
        let fields = self.msg.fields();
        let mut top = 0u128;
        let mut i = 0;
        while i < fields.len() {
            top |= 1 << i;
            let tag = fields[i].tag;
            i += 1;
            let group = def.group(tag).filter(|_| !self.dict.is_header_field(tag) && !self.dict.is_trailer_field(tag));
            if let Some(g) = group {
                i = self.group(g, i, pass)?.0;
            }
        }
        Ok(top)
    }

    /// Checks one field's value: empty (373=4), format (373=6), enumeration (373=5).
    fn field(&self, tag: u32, value: &[u8]) -> Result<(), SessionReject> {
        use SessionRejectReason as R;
        if self.opts.validate_fields_have_values && value.is_empty() {
            return Err(SessionReject::tag(R::TagSpecifiedWithoutValue, tag));
        }
        if let Some(f) = self.dict.field_def(tag) {
            if !f.ty.is_valid(value) {
                return Err(SessionReject::tag(R::IncorrectDataFormat, tag));
            }
            if !value_in_enum(f, value) {
                return Err(SessionReject::tag(R::ValueIsIncorrect, tag));
            }
        }
        Ok(())
    }

    /// At a NumInGroup field whose value was checked: compares the count with the instances
    /// (373=16), then checks the members. Returns the index after the group.
    fn group_with_count(&self, g: &GroupDef, count: &[u8], start: usize) -> Result<usize, SessionReject> {
        let (_, instances) = self.group(g, start, Pass::Structure)?;
        if self.opts.should_check_tag(g.count_tag) && parse_u64(count) != Some(u64::from(instances)) {
            return Err(SessionReject::tag(SessionRejectReason::IncorrectNumInGroupCount, g.count_tag));
        }
        Ok(self.group(g, start, Pass::Fields)?.0)
    }

    /// Walks the instances of group `g` starting at field index `start` (just after the
    /// count field). Returns the index of the first field after the group and the number of
    /// instances.
    fn group(&self, g: &GroupDef, start: usize, pass: Pass) -> Result<(usize, u32), SessionReject> {
        use SessionRejectReason as R;
        let fields = self.msg.fields();
        let mut i = start;
        let mut instances = 0u32;
        let mut seen = 0u64;
        let mut last = 0usize;
        while let Some(f) = fields.get(i) {
            let Some(m) = g.member_index(f.tag) else { break };
            if m == 0 {
                if instances > 0 && pass == Pass::Required {
                    self.instance_complete(g, seen)?;
                }
                instances += 1;
                seen = 0;
            } else {
                if instances == 0 {
                    return Err(SessionReject::tag(R::RepeatingGroupFieldsOutOfOrder, g.count_tag));
                }
                if seen & (1 << m) != 0 || (self.opts.validate_fields_out_of_order && m < last) {
                    return Err(SessionReject::tag(R::RepeatingGroupFieldsOutOfOrder, f.tag));
                }
            }
            seen |= 1 << m;
            last = m;
            i += 1;
            let value = self.msg.value(f);
            if pass == Pass::Fields {
                self.field(f.tag, value)?;
            }
            if let Some(nested) = g.nested(m) {
                i = if pass == Pass::Fields {
                    self.group_with_count(nested, value, i)?
                } else {
                    self.group(nested, i, pass)?.0
                };
            }
        }
        if instances > 0 && pass == Pass::Required {
            self.instance_complete(g, seen)?;
        }
        Ok((i, instances))
    }

    fn instance_complete(&self, g: &GroupDef, seen: u64) -> Result<(), SessionReject> {
        let missing = g.required_mask & !seen;
        if missing == 0 {
            return Ok(());
        }
        let tag = g.members[missing.trailing_zeros() as usize];
        Err(SessionReject::tag(SessionRejectReason::RequiredTagMissing, tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::message::{FieldTable, parse};

    fn msg(s: &str) -> Vec<u8> {
        s.replace('|', "\x01").into_bytes()
    }

    fn check(dict: &Dictionary, s: &str) -> Result<(), SessionReject> {
        let bytes = msg(s);
        let mut t = FieldTable::new();
        let m = parse(&bytes, &mut t).expect("test message parses");
        dict.validate(&m, &ValidationOptions::default())
    }

    const HDR: &str = "8=FIX.4.4|9=1|35=D|49=C|56=S|34=2|52=20240102-03:04:05.678|";

    #[test]
    fn sable_dictionary_loads() {
        let d = Dictionary::sable();
        assert_eq!(d.begin_string(), "FIX.4.4");
        let types: Vec<&[u8]> = d.msg_types().collect();
        for t in ["0", "1", "2", "3", "4", "5", "A", "D", "F", "G", "H", "q", "8", "9", "r", "j"] {
            assert!(types.contains(&t.as_bytes()), "{t}");
            assert!(is_fix44_msg_type(t.as_bytes()), "{t}");
            assert_eq!(d.is_admin(t.as_bytes()), is_admin_msg_type(t.as_bytes()), "{t}");
        }
        assert_eq!(types.len(), 16);
        assert_eq!(d.field_type(18), Some(FieldType::MultipleCharValue));
        assert_eq!(d.field_tag("SelfTradePrevention"), Some(8000));
        assert!(d.is_msg_field(b"D", 453));
        assert!(!d.is_msg_field(b"D", 448));
        assert_eq!(d.groups(b"D").next(), Some((453, &[448, 447, 452][..])));
        assert_eq!(d.msg_type_support(b"D"), MsgTypeSupport::Supported);
        assert_eq!(d.msg_type_support(b"R"), MsgTypeSupport::Unsupported);
        assert_eq!(d.msg_type_support(b"ZZ"), MsgTypeSupport::Invalid);
        assert!(d.required_fields(b"D").contains(&55), "Instrument is required on D, so is Symbol");
        assert!(!d.required_fields(b"q").contains(&55));
    }

    #[test]
    fn reason_codes_round_trip() {
        for code in 0..=100 {
            if let Some(r) = SessionRejectReason::from_code(code) {
                assert_eq!(r.code(), code);
            }
        }
    }

    #[test]
    fn a_valid_order_passes() {
        let d = Dictionary::sable();
        let body =
            "11=a|453=2|448=X|447=D|452=3|448=Y|1=7|55=ES|54=1|60=20240102-03:04:05|38=1|40=2|44=1.5|18=6|10=000|";
        assert_eq!(check(&d, &format!("{HDR}{body}")), Ok(()));
    }

    #[test]
    fn bad_dictionaries_are_errors() {
        assert!(matches!(Dictionary::from_xml("<fix"), Err(DictionaryError::Xml(_))));
        assert_eq!(Dictionary::from_xml("<x/>").unwrap_err(), DictionaryError::Root("the root element is not <fix>"));
        let no_fields = r#"<fix major="4" minor="4"><header/><trailer/><messages/></fix>"#;
        assert_eq!(Dictionary::from_xml(no_fields).unwrap_err(), DictionaryError::MissingSection("fields"));
        let unknown =
            r#"<fix major="4" minor="4"><fields/><header><field name="X"/></header><trailer/><messages/></fix>"#;
        assert_eq!(Dictionary::from_xml(unknown).unwrap_err(), DictionaryError::UnknownField("X".into()));
        let cyclic = r#"<fix major="4" minor="4"><fields><field number="1" name="A" type="STRING"/></fields>
            <header/><trailer/><messages><message name="M" msgtype="M"><component name="C"/></message></messages>
            <components><component name="C"><component name="C"/></component></components></fix>"#;
        assert!(matches!(Dictionary::from_xml(cyclic), Err(DictionaryError::TooDeep(_))));
    }
}
