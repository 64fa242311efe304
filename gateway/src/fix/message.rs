//! Zero-copy parsing of one framed FIX message into a caller-owned field table.
//!
//! [`parse`] splits a message (as returned by [`crate::fix::frame::next_message`]) into
//! `(tag, value range)` pairs in wire order, stored in a preallocated [`FieldTable`] of
//! [`MAX_FIELDS`] entries: nothing is allocated per message. Values stay in the receive buffer.
//!
//! Parsing checks only what every FIX message must satisfy, independently of any dictionary:
//! every field is `tag=value<SOH>` with a decimal tag (a number that is no tag, such as `0`,
//! `-1` or one above [`MAX_TAG`], is kept as [`INVALID_TAG`] for the dictionary to reject);
//! the first three fields are BeginString (8), BodyLength (9) and MsgType (35)
//! with a non-empty MsgType; the last is CheckSum (10). Length-prefixed data fields (such as
//! Signature 89 after SignatureLength 93) may contain SOH and are read by length.
//!
//! A message that fails here cannot be parsed into fields, so the session treats it as garbled
//! (ignored, like a framing error). Whether fields are allowed, required, well formed or in
//! range is the dictionary's job ([`crate::fix::dictionary`]).
//!
//! The typed getters read the first occurrence of a tag and report [`FieldError::Missing`] or
//! [`FieldError::Invalid`] so callers can map them to Reject reasons 1 and 6.

use crate::fix::tags::tag;
pub use crate::limits::MAX_FIELDS;

/// Largest tag number accepted. FIX tags are positive integers; user-defined tags go up to
/// 9999 and FIX 5.0 extensions stay well below this.
pub const MAX_TAG: u32 = 99_999;

/// The tag [`parse`] gives a field whose tag is a decimal number but no valid tag (`0`,
/// `-1`, `007`, above [`MAX_TAG`]): the dictionary rejects it as an invalid tag number
/// (373=0), and [`Message::tag_text`] returns the tag as it was written, for RefTagID (371).
pub const INVALID_TAG: u32 = u32::MAX;

/// Most fractional-second digits a UTCTimestamp may carry (nanoseconds).
pub const MAX_TIMESTAMP_FRACTION_DIGITS: usize = 9;

/// FIX 4.4 data fields whose value may contain SOH, each with the length field that must
/// immediately precede it: `(length tag, data tag)`.
pub const LENGTH_DATA_TAGS: [(u32, u32); 16] = [
    (90, 91),   // SecureDataLen, SecureData
    (93, 89),   // SignatureLength, Signature
    (95, 96),   // RawDataLength, RawData
    (212, 213), // XmlDataLen, XmlData
    (348, 349), // EncodedIssuerLen, EncodedIssuer
    (350, 351), // EncodedSecurityDescLen, EncodedSecurityDesc
    (352, 353), // EncodedListExecInstLen, EncodedListExecInst
    (354, 355), // EncodedTextLen, EncodedText
    (356, 357), // EncodedSubjectLen, EncodedSubject
    (358, 359), // EncodedHeadlineLen, EncodedHeadline
    (360, 361), // EncodedAllocTextLen, EncodedAllocText
    (362, 363), // EncodedUnderlyingIssuerLen, EncodedUnderlyingIssuer
    (364, 365), // EncodedUnderlyingSecurityDescLen, EncodedUnderlyingSecurityDesc
    (445, 446), // EncodedListStatusTextLen, EncodedListStatusText
    (618, 619), // EncodedLegIssuerLen, EncodedLegIssuer
    (621, 622), // EncodedLegSecurityDescLen, EncodedLegSecurityDesc
];

/// One field: its tag and where its value lies in the message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Field {
    /// The tag number.
    pub tag: u32,
    /// Offset of the value's first byte in the message.
    pub start: u32,
    /// Offset one past the value's last byte (the SOH's offset).
    pub end: u32,
}

/// Caller-owned storage for one parsed message's fields. Allocate one per session (or per
/// thread) at start-up and reuse it for every message.
#[derive(Clone, Debug)]
pub struct FieldTable {
    fields: [Field; MAX_FIELDS],
}

impl FieldTable {
    /// An empty table with room for [`MAX_FIELDS`] fields.
    pub const fn new() -> Self {
        FieldTable { fields: [Field { tag: 0, start: 0, end: 0 }; MAX_FIELDS] }
    }
}

impl Default for FieldTable {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a message could not be split into fields. Offsets are from the start of the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A field starts with `=`.
    #[error("empty tag at offset {offset}")]
    EmptyTag {
        /// Offset of the field.
        offset: usize,
    },
    /// A tag holds a non-digit, has a leading zero, is zero or is above [`MAX_TAG`].
    #[error("tag at offset {offset} is not a valid tag number")]
    TagNotNumeric {
        /// Offset of the field.
        offset: usize,
    },
    /// A field has no `=` before its SOH (or before the end of the message).
    #[error("missing '=' in field at offset {offset}")]
    MissingEquals {
        /// Offset of the field.
        offset: usize,
    },
    /// The last field does not end with SOH, or a data field is shorter than its declared
    /// length.
    #[error("field at offset {offset} is not terminated by SOH")]
    Unterminated {
        /// Offset of the field.
        offset: usize,
    },
    /// The message holds more than [`MAX_FIELDS`] fields.
    #[error("more than {} fields", MAX_FIELDS)]
    TooManyFields,
    /// The first three fields are not BeginString (8), BodyLength (9) and a non-empty MsgType
    /// (35).
    #[error("the message does not start with 8, 9 and a non-empty 35")]
    StandardHeader,
    /// The last field is not CheckSum (10).
    #[error("the message does not end with CheckSum (10)")]
    StandardTrailer,
    /// The message is longer than `u32::MAX` bytes (offsets are stored as u32).
    #[error("message too long to index")]
    TooLong,
}

/// Why a typed getter could not return a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// The tag is not in the message (Reject reason 1, Required tag missing, when the field
    /// is required).
    #[error("tag {0} missing")]
    Missing(u32),
    /// The value does not parse as the requested type (Reject reason 6, Incorrect data format
    /// for value).
    #[error("tag {0} has an incorrectly formatted value")]
    Invalid(u32),
}

/// Turns "missing" into `Ok(None)` for optional fields, keeping "invalid" an error.
pub trait OptionalField<T> {
    /// `Ok(Some(v))` for a value, `Ok(None)` for [`FieldError::Missing`], `Err` for
    /// [`FieldError::Invalid`].
    fn optional(self) -> Result<Option<T>, FieldError>;
}

impl<T> OptionalField<T> for Result<T, FieldError> {
    fn optional(self) -> Result<Option<T>, FieldError> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(FieldError::Missing(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A parsed message: the message bytes and its fields in wire order. Cheap to copy.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    bytes: &'a [u8],
    fields: &'a [Field],
}

/// Splits `bytes` (one whole message, checksum field included) into fields stored in `table`.
pub fn parse<'a>(bytes: &'a [u8], table: &'a mut FieldTable) -> Result<Message<'a>, ParseError> {
    if u32::try_from(bytes.len()).is_err() {
        return Err(ParseError::TooLong);
    }
    let mut count = 0usize;
    let mut pos = 0usize;
    let mut data_len: Option<(u32, usize)> = None; // (data tag, length) armed by a length field
    while pos < bytes.len() {
        let offset = pos;
        let mut tag = 0u32;
        let mut digits = 0usize;
        loop {
            let Some(&b) = bytes.get(pos) else {
                return Err(ParseError::MissingEquals { offset });
            };
            match b {
                b'=' => break,
                crate::fix::frame::SOH => return Err(ParseError::MissingEquals { offset }),
                b'0'..=b'9' if !(digits == 0 && b == b'0') && tag <= MAX_TAG => {
                    tag = tag * 10 + u32::from(b - b'0');
                    digits += 1;
                }
                _ => {
                    // A number that is no tag (0, -1, 007, above MAX_TAG) is kept as a field
                    // with INVALID_TAG, so the session can reject it (373=0); anything else in
                    // a tag makes the message garbled.
                    pos = invalid_tag_end(bytes, offset)?;
                    tag = INVALID_TAG;
                    digits = 1;
                    break;
                }
            }
            pos += 1;
        }
        if digits == 0 {
            return Err(ParseError::EmptyTag { offset });
        }
        if tag > MAX_TAG && tag != INVALID_TAG {
            return Err(ParseError::TagNotNumeric { offset });
        }
        let start = pos + 1;
        let end = match data_len.take() {
            Some((data_tag, len)) if data_tag == tag => {
                let end = start.checked_add(len).ok_or(ParseError::Unterminated { offset })?;
                if bytes.get(end) != Some(&crate::fix::frame::SOH) {
                    return Err(ParseError::Unterminated { offset });
                }
                end
            }
            _ => match bytes[start.min(bytes.len())..].iter().position(|&c| c == crate::fix::frame::SOH) {
                Some(n) => start + n,
                None => return Err(ParseError::Unterminated { offset }),
            },
        };
        if count == MAX_FIELDS {
            return Err(ParseError::TooManyFields);
        }
        // Offsets fit: the message length was checked against u32 above.
        table.fields[count] = Field { tag, start: start as u32, end: end as u32 };
        count += 1;
        let data_tag = LENGTH_DATA_TAGS.iter().find(|(len_tag, _)| *len_tag == tag).map(|&(_, data_tag)| data_tag);
        data_len = data_tag.and_then(|t| Some((t, usize::try_from(parse_u64(&bytes[start..end])?).ok()?)));
        pos = end + 1;
    }
    let fields = &table.fields[..count];
    check_standard_header_and_trailer(fields)?;
    Ok(Message { bytes, fields })
}

/// Where the `=` of a tag at `offset` lies when the tag is a decimal number that is no valid
/// tag (`0`, `-1`, a leading zero, above [`MAX_TAG`]); otherwise why the field cannot be parsed.
#[cold]
fn invalid_tag_end(bytes: &[u8], offset: usize) -> Result<usize, ParseError> {
    let text = &bytes[offset..];
    let Some(eq) = text.iter().take_while(|&&c| c != crate::fix::frame::SOH).position(|&c| c == b'=') else {
        // Keep "no '='" winning over "bad tag" consistently.
        return Err(ParseError::MissingEquals { offset });
    };
    let digits = text[..eq].strip_prefix(b"-").unwrap_or(&text[..eq]);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::TagNotNumeric { offset });
    }
    Ok(offset + eq)
}

/// The first three fields are BeginString, BodyLength and a non-empty MsgType; the last is
/// CheckSum. (The tag and value scanning stays in [`parse`]: split into helpers, it ran about
/// a third more instructions per message.)
#[inline]
fn check_standard_header_and_trailer(fields: &[Field]) -> Result<(), ParseError> {
    let header_ok = fields.len() >= 4
        && fields[0].tag == tag::BEGIN_STRING
        && fields[1].tag == tag::BODY_LENGTH
        && fields[2].tag == tag::MSG_TYPE
        && fields[2].end > fields[2].start;
    if !header_ok {
        return Err(ParseError::StandardHeader);
    }
    if fields[fields.len() - 1].tag != tag::CHECKSUM {
        return Err(ParseError::StandardTrailer);
    }
    Ok(())
}

impl<'a> Message<'a> {
    /// The whole message, `8=` to the SOH after the checksum.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The fields in wire order.
    pub fn fields(&self) -> &'a [Field] {
        self.fields
    }

    /// The tag of `fields()[index]` as it was written (`-1` for an [`INVALID_TAG`] field).
    pub fn tag_text(&self, index: usize) -> &'a [u8] {
        let start = match index.checked_sub(1).and_then(|i| self.fields.get(i)) {
            Some(prev) => prev.end as usize + 1,
            None => 0,
        };
        let end = self.fields.get(index).map_or(start, |f| (f.start as usize).saturating_sub(1));
        self.bytes.get(start..end).unwrap_or(&[])
    }

    /// The value bytes of `field` (which must come from this message).
    pub fn value(&self, field: &Field) -> &'a [u8] {
        self.bytes.get(field.start as usize..field.end as usize).unwrap_or(&[])
    }

    /// `(tag, value)` pairs in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &'a [u8])> + '_ {
        self.fields.iter().map(|f| (f.tag, self.value(f)))
    }

    /// MsgType (35), never empty (checked by [`parse`]).
    pub fn msg_type(&self) -> &'a [u8] {
        self.value(&self.fields[2])
    }

    /// BeginString (8).
    pub fn begin_string(&self) -> &'a [u8] {
        self.value(&self.fields[0])
    }

    /// The value of the first occurrence of `tag`.
    pub fn get(&self, tag: u32) -> Option<&'a [u8]> {
        self.fields.iter().find(|f| f.tag == tag).map(|f| self.value(f))
    }

    /// Whether `tag` occurs in the message.
    pub fn has(&self, tag: u32) -> bool {
        self.fields.iter().any(|f| f.tag == tag)
    }

    /// How many times `tag` occurs.
    pub fn count(&self, tag: u32) -> usize {
        self.fields.iter().filter(|f| f.tag == tag).count()
    }

    fn required(&self, tag: u32) -> Result<&'a [u8], FieldError> {
        self.get(tag).ok_or(FieldError::Missing(tag))
    }

    /// The raw value, failing when missing.
    pub fn get_bytes(&self, tag: u32) -> Result<&'a [u8], FieldError> {
        self.required(tag)
    }

    /// The value as UTF-8 (FIX strings are ASCII; anything else is [`FieldError::Invalid`]).
    pub fn get_str(&self, tag: u32) -> Result<&'a str, FieldError> {
        std::str::from_utf8(self.required(tag)?).map_err(|_| FieldError::Invalid(tag))
    }

    /// An unsigned integer: digits only, fitting u64.
    pub fn get_u64(&self, tag: u32) -> Result<u64, FieldError> {
        parse_u64(self.required(tag)?).ok_or(FieldError::Invalid(tag))
    }

    /// A signed integer: optional `-`, then digits, fitting i64.
    pub fn get_i64(&self, tag: u32) -> Result<i64, FieldError> {
        parse_i64(self.required(tag)?).ok_or(FieldError::Invalid(tag))
    }

    /// A single-character value.
    pub fn get_char(&self, tag: u32) -> Result<u8, FieldError> {
        match self.required(tag)? {
            [c] => Ok(*c),
            _ => Err(FieldError::Invalid(tag)),
        }
    }

    /// A BOOLEAN: `Y` or `N`.
    pub fn get_bool(&self, tag: u32) -> Result<bool, FieldError> {
        parse_bool(self.required(tag)?).ok_or(FieldError::Invalid(tag))
    }

    /// A decimal (PRICE, QTY, AMT, FLOAT) as `(mantissa, scale)`: value = mantissa / 10^scale.
    pub fn get_decimal(&self, tag: u32) -> Result<Decimal, FieldError> {
        parse_decimal(self.required(tag)?).ok_or(FieldError::Invalid(tag))
    }

    /// A UTCTimestamp as nanoseconds since the Unix epoch.
    pub fn get_timestamp_ns(&self, tag: u32) -> Result<i64, FieldError> {
        parse_utc_timestamp_ns(self.required(tag)?).ok_or(FieldError::Invalid(tag))
    }

    /// MsgSeqNum (34).
    pub fn seq_num(&self) -> Result<u64, FieldError> {
        self.get_u64(tag::MSG_SEQ_NUM)
    }
}

/// An exact decimal read from the wire: value = `mantissa / 10^scale`. Not normalised:
/// "1.50" is (150, 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal {
    /// The digits as an integer, negative for negative values.
    pub mantissa: i64,
    /// Digits after the decimal point.
    pub scale: u32,
}

/// Parses an unsigned decimal integer: one or more ASCII digits, no sign, fitting u64.
pub fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut n = 0u64;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// Parses a signed decimal integer: optional `-`, one or more digits, fitting i64.
pub fn parse_i64(v: &[u8]) -> Option<i64> {
    match v.split_first() {
        Some((b'-', digits)) => {
            let n = parse_u64(digits)?;
            if n == 1u64 << 63 { Some(i64::MIN) } else { i64::try_from(n).ok().map(|n| -n) }
        }
        _ => i64::try_from(parse_u64(v)?).ok(),
    }
}

/// Parses a FIX BOOLEAN: `Y` is true, `N` is false.
pub fn parse_bool(v: &[u8]) -> Option<bool> {
    match v {
        b"Y" => Some(true),
        b"N" => Some(false),
        _ => None,
    }
}

/// Whether `v` has FIX decimal syntax (PRICE, QTY, AMT, FLOAT…): optional `-`, digits,
/// optional `.` and digits, at least one digit in all, no exponent, no `+`. As in QuickFIX,
/// "1." and ".5" are accepted.
pub fn is_decimal(v: &[u8]) -> bool {
    let v = v.strip_prefix(b"-").unwrap_or(v);
    let mut digits = 0usize;
    let mut dot = false;
    for &b in v {
        match b {
            b'0'..=b'9' => digits += 1,
            b'.' if !dot => dot = true,
            _ => return false,
        }
    }
    digits > 0
}

/// Parses a FIX decimal into an exact [`Decimal`]. `None` when the syntax is wrong (see
/// [`is_decimal`]) or the digits do not fit an i64 mantissa.
pub fn parse_decimal(v: &[u8]) -> Option<Decimal> {
    if !is_decimal(v) {
        return None;
    }
    let (negative, body) = match v.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, v),
    };
    let mut mantissa = 0i64;
    let mut scale = 0u32;
    let mut after_dot = false;
    for &b in body {
        if b == b'.' {
            after_dot = true;
            continue;
        }
        let d = i64::from(b - b'0');
        mantissa = mantissa.checked_mul(10)?;
        mantissa = if negative { mantissa.checked_sub(d)? } else { mantissa.checked_add(d)? };
        if after_dot {
            scale += 1;
        }
    }
    Some(Decimal { mantissa, scale })
}

/// Parses `N` ASCII digits into a number.
fn digits_n(v: &[u8]) -> Option<u32> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u32, |n, &b| b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0')))
}

/// Days in `month` (1–12) of `year` in the proleptic Gregorian calendar.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1–12, day 1–31).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Shift the year to start in March so the leap day is the last day of the year, then
    // count 400-year eras of 146097 days.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses a UTCDateOnly / LocalMktDate `YYYYMMDD` into (year, month, day), checking the
/// calendar.
pub fn parse_date(v: &[u8]) -> Option<(i64, u32, u32)> {
    if v.len() != 8 {
        return None;
    }
    let year = i64::from(digits_n(&v[..4])?);
    let month = digits_n(&v[4..6])?;
    let day = digits_n(&v[6..8])?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some((year, month, day))
}

/// Parses a UTCTimeOnly `HH:MM:SS` with an optional fraction of 3, 6 or 9 digits into
/// nanoseconds since midnight. Second 60 (a leap second) is accepted.
pub fn parse_time_ns(v: &[u8]) -> Option<i64> {
    if v.len() < 8 || v[2] != b':' || v[5] != b':' {
        return None;
    }
    let h = digits_n(&v[..2])?;
    let m = digits_n(&v[3..5])?;
    let s = digits_n(&v[6..8])?;
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let frac_ns = match &v[8..] {
        [] => 0,
        [b'.', frac @ ..] if matches!(frac.len(), 3 | 6 | 9) => {
            let f = digits_n(frac)?;
            i64::from(f) * 10i64.pow((MAX_TIMESTAMP_FRACTION_DIGITS - frac.len()) as u32)
        }
        _ => return None,
    };
    Some((i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s)) * 1_000_000_000 + frac_ns)
}

/// Parses a UTCTimestamp `YYYYMMDD-HH:MM:SS[.sss|.ssssss|.sssssssss]` into nanoseconds since
/// the Unix epoch. `None` when the format or the calendar is wrong, or the instant is outside
/// the i64 nanosecond range (years 1677–2262).
pub fn parse_utc_timestamp_ns(v: &[u8]) -> Option<i64> {
    if v.len() < 17 || v[8] != b'-' {
        return None;
    }
    let (year, month, day) = parse_date(&v[..8])?;
    let time_ns = parse_time_ns(&v[9..])?;
    let ns = i128::from(days_from_civil(year, month, day)) * 86_400_000_000_000 + i128::from(time_ns);
    i64::try_from(ns).ok()
}

/// Whether `v` is a UTCTimestamp by format and calendar, whatever its year.
pub fn is_utc_timestamp(v: &[u8]) -> bool {
    v.len() >= 17 && v[8] == b'-' && parse_date(&v[..8]).is_some() && parse_time_ns(&v[9..]).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &str) -> Vec<u8> {
        s.replace('|', "\x01").into_bytes()
    }

    #[test]
    fn parses_fields_in_wire_order() {
        let bytes = msg("8=FIX.4.4|9=20|35=D|11=abc|44=1.5|58=|10=000|");
        let mut table = FieldTable::new();
        let m = parse(&bytes, &mut table).unwrap();
        let tags: Vec<u32> = m.fields().iter().map(|f| f.tag).collect();
        assert_eq!(tags, [8, 9, 35, 11, 44, 58, 10]);
        assert_eq!(m.msg_type(), b"D");
        assert_eq!(m.get(11), Some(&b"abc"[..]));
        assert_eq!(m.get(58), Some(&b""[..]));
        assert_eq!(m.get_decimal(44), Ok(Decimal { mantissa: 15, scale: 1 }));
        assert_eq!(m.get_u64(9), Ok(20));
        assert_eq!(m.get_u64(11), Err(FieldError::Invalid(11)));
        assert_eq!(m.get_u64(34), Err(FieldError::Missing(34)));
        assert_eq!(m.get_u64(34).optional(), Ok(None));
        assert_eq!(m.get_u64(11).optional(), Err(FieldError::Invalid(11)));
    }

    #[test]
    fn numbers_that_are_no_tag_parse_as_invalid_tags_with_their_text() {
        let bytes = msg("8=FIX.4.4|9=1|35=0|0=a|-1=b|011=c|9999999=d|58=e|10=000|");
        let mut t = FieldTable::new();
        let m = parse(&bytes, &mut t).unwrap();
        let got: Vec<(u32, &[u8], &[u8])> =
            (3..m.fields().len() - 1).map(|i| (m.fields()[i].tag, m.tag_text(i), m.value(&m.fields()[i]))).collect();
        let want: [(u32, &[u8], &[u8]); 5] = [
            (INVALID_TAG, b"0", b"a"),
            (INVALID_TAG, b"-1", b"b"),
            (INVALID_TAG, b"011", b"c"),
            (INVALID_TAG, b"9999999", b"d"),
            (58, b"58", b"e"),
        ];
        assert_eq!(got, want);
        assert_eq!(m.tag_text(0), b"8");
    }

    #[test]
    fn parse_errors() {
        let mut t = FieldTable::new();
        let cases: [(&str, ParseError); 8] = [
            ("8=FIX.4.4|9=1|35=0|=x|10=000|", ParseError::EmptyTag { offset: 19 }),
            ("8=FIX.4.4|9=1|35=0|1a=x|10=000|", ParseError::TagNotNumeric { offset: 19 }),
            ("8=FIX.4.4|9=1|35=0|-=x|10=000|", ParseError::TagNotNumeric { offset: 19 }),
            ("8=FIX.4.4|9=1|35=0|1-1=x|10=000|", ParseError::TagNotNumeric { offset: 19 }),
            ("8=FIX.4.4|9=1|35=0|58|10=000|", ParseError::MissingEquals { offset: 19 }),
            ("8=FIX.4.4|9=1|35=0|10=000", ParseError::Unterminated { offset: 19 }),
            ("8=FIX.4.4|9=1|34=0|35=0|10=000|", ParseError::StandardHeader),
            ("8=FIX.4.4|9=1|35=0|10=000|58=x|", ParseError::StandardTrailer),
        ];
        for (s, e) in cases {
            assert_eq!(parse(&msg(s), &mut t).unwrap_err(), e, "{s}");
        }
        assert_eq!(parse(&msg("8=FIX.4.4|9=1|35=|10=000|"), &mut t).unwrap_err(), ParseError::StandardHeader);
    }

    #[test]
    fn too_many_fields() {
        let mut s = String::from("8=FIX.4.4|9=1|35=0|");
        for _ in 0..MAX_FIELDS - 4 {
            s.push_str("58=x|");
        }
        s.push_str("10=000|");
        let mut t = FieldTable::new();
        assert_eq!(parse(&msg(&s), &mut t).unwrap().fields().len(), MAX_FIELDS);
        s.insert_str(19, "58=x|");
        assert_eq!(parse(&msg(&s), &mut t).unwrap_err(), ParseError::TooManyFields);
    }

    #[test]
    fn data_fields_are_read_by_length() {
        let bytes = msg("8=FIX.4.4|9=1|35=0|93=3|89=a|b|10=000|");
        let mut t = FieldTable::new();
        let m = parse(&bytes, &mut t).unwrap();
        assert_eq!(m.get(89), Some(&b"a\x01b"[..]));
        let bytes = msg("8=FIX.4.4|9=1|35=0|93=9|89=a|b|10=000|");
        assert!(matches!(parse(&bytes, &mut t), Err(ParseError::Unterminated { .. })));
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_utc_timestamp_ns(b"19700101-00:00:00"), Some(0));
        assert_eq!(parse_utc_timestamp_ns(b"19700101-00:00:01.5"), None);
        assert_eq!(parse_utc_timestamp_ns(b"19700101-00:00:01.500"), Some(1_500_000_000));
        assert_eq!(parse_utc_timestamp_ns(b"19700101-00:00:01.000001"), Some(1_000_001_000));
        assert_eq!(parse_utc_timestamp_ns(b"19700101-00:00:01.000000001"), Some(1_000_000_001));
        assert_eq!(parse_utc_timestamp_ns(b"20240229-23:59:60"), Some(1_709_251_200_000_000_000));
        assert_eq!(parse_utc_timestamp_ns(b"20230229-12:00:00"), None);
        assert_eq!(parse_utc_timestamp_ns(b"20231301-12:00:00"), None);
        assert_eq!(parse_utc_timestamp_ns(b"20230101-24:00:00"), None);
        assert_eq!(parse_utc_timestamp_ns(b"20230101 12:00:00"), None);
        assert_eq!(parse_utc_timestamp_ns(b"19691231-23:59:59.999"), Some(-1_000_000));
        assert_eq!(parse_utc_timestamp_ns(b"99991231-23:59:59"), None);
        assert!(is_utc_timestamp(b"99991231-23:59:59"));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"-"), None);
        assert_eq!(parse_u64(b"+1"), None);
        for ok in [&b"1"[..], b"-1", b"1.", b".5", b"-0.25", b"001"] {
            assert!(is_decimal(ok), "{ok:?}");
        }
        for bad in [&b""[..], b"-", b".", b"1e5", b"+1", b"1.2.3", b"1,5", b" 1"] {
            assert!(!is_decimal(bad), "{bad:?}");
        }
        assert_eq!(parse_decimal(b"-1.0125"), Some(Decimal { mantissa: -10125, scale: 4 }));
        assert_eq!(parse_decimal(b"-9223372036854775808"), Some(Decimal { mantissa: i64::MIN, scale: 0 }));
        assert_eq!(parse_decimal(b"99999999999999999999"), None);
    }
}
