//! Allocation-free writing of FIX messages into a caller buffer.
//!
//! ```text
//! let mut w = Writer::new(&mut buf, "FIX.4.4", b"0");
//! w.str(49, "SABLE").str(56, "CLIENT").u64(34, 7).timestamp_ms(52, now_ns);
//! let len = w.finish()?;   // buf[..len] is the whole message, BodyLength and CheckSum filled in
//! ```
//!
//! The body (from `35=`) is written at an offset that leaves room for the longest
//! `8=<BeginString><SOH>9=<BodyLength><SOH>`; [`Writer::finish`] writes the real prefix just
//! before the body, moves the message to the start of the buffer and appends `10=NNN<SOH>`.
//! Errors are sticky: the first failure (buffer too small, SOH or nothing in a value, …) is
//! kept and returned by `finish`, so call sites chain without checking every field. Nothing
//! here panics or allocates.

use crate::fix::frame::{CHECKSUM_FIELD_LEN_BYTES, MAX_MESSAGE_LEN_BYTES, SOH, checksum};

/// Digits reserved for the BodyLength value: enough for [`MAX_MESSAGE_LEN_BYTES`].
pub const BODY_LENGTH_DIGITS: usize = 5;

/// A write buffer of this size holds any message up to [`MAX_MESSAGE_LEN_BYTES`]: the writer
/// needs a few bytes of headroom (BodyLength digits reserved but unused) beyond the message.
pub const WRITE_BUFFER_LEN_BYTES: usize = MAX_MESSAGE_LEN_BYTES + BODY_LENGTH_DIGITS;

/// Longest BeginString accepted (`FIXT.1.1` is 8 bytes).
pub const MAX_BEGIN_STRING_LEN_BYTES: usize = 16;

/// Most digits after the decimal point [`Writer::decimal`] accepts.
pub const MAX_DECIMAL_SCALE: u32 = 18;

/// Why a message could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The buffer is too small for the message.
    #[error("buffer too small")]
    BufferTooSmall,
    /// The message would exceed [`MAX_MESSAGE_LEN_BYTES`] (the peer's framer would drop it).
    #[error("message of {len} bytes exceeds the {} byte limit", MAX_MESSAGE_LEN_BYTES)]
    TooLong {
        /// The message's length.
        len: usize,
    },
    /// A value contains SOH, which would split it into two fields.
    #[error("value of tag {tag} contains SOH")]
    ValueContainsSoh {
        /// The field's tag.
        tag: u32,
    },
    /// A value is empty (peers reject empty fields with 373=4).
    #[error("value of tag {tag} is empty")]
    EmptyValue {
        /// The field's tag.
        tag: u32,
    },
    /// The BeginString is empty, too long or contains SOH.
    #[error("invalid BeginString")]
    BeginString,
    /// A decimal's scale is above [`MAX_DECIMAL_SCALE`].
    #[error("decimal scale {scale} of tag {tag} is above {}", MAX_DECIMAL_SCALE)]
    Scale {
        /// The field's tag.
        tag: u32,
        /// The scale given.
        scale: u32,
    },
    /// A tag of 0.
    #[error("tag 0 is not a FIX tag")]
    Tag,
    /// [`Writer::sort_fields_since`] was asked to order more than [`MAX_SORTED_FIELDS`]
    /// fields.
    #[error("more than {} fields to put in tag order", MAX_SORTED_FIELDS)]
    TooManyToSort,
}

/// Most fields [`Writer::sort_fields_since`] puts in order: its index is a fixed array on the
/// stack. sable's largest message body (an ExecutionReport) has about 30.
pub const MAX_SORTED_FIELDS: usize = 64;

/// Writes one message. See the module docs.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    begin_string: &'a str,
    body_start: usize,
    pos: usize,
    error: Option<WriteError>,
    /// Tag of the last field written.
    last_tag: u32,
    /// Where the last field with a lower tag than the one before it starts (0: none yet):
    /// [`Writer::sort_fields_since`] has nothing to do when that is not past its mark.
    last_descent: usize,
}

impl<'a> Writer<'a> {
    /// Starts a message of `msg_type` (written first in the body, as `35=`) with
    /// `begin_string` (e.g. [`crate::fix::frame::BEGIN_STRING`]). `buf` needs up to
    /// [`BODY_LENGTH_DIGITS`] bytes more than the finished message; one of
    /// [`WRITE_BUFFER_LEN_BYTES`] always suffices.
    pub fn new(buf: &'a mut [u8], begin_string: &'a str, msg_type: &[u8]) -> Self {
        let body_start = 2 + begin_string.len() + 1 + 2 + BODY_LENGTH_DIGITS + 1;
        let mut w =
            Writer { buf, begin_string, body_start, pos: body_start, error: None, last_tag: 0, last_descent: 0 };
        if begin_string.is_empty() || begin_string.len() > MAX_BEGIN_STRING_LEN_BYTES || begin_string.contains('\x01') {
            w.error = Some(WriteError::BeginString);
        }
        w.bytes(35, msg_type);
        w
    }

    fn fail(&mut self, e: WriteError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// Appends `tag=value<SOH>` in one bounds check. `value` is trusted: non-empty and free
    /// of SOH (the typed appenders below format it themselves).
    #[inline]
    fn field(&mut self, tag: u32, value: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if tag == 0 {
            return self.fail(WriteError::Tag);
        }
        if tag < self.last_tag {
            self.last_descent = self.pos;
        }
        self.last_tag = tag;
        let mut b = itoa::Buffer::new();
        let t = b.format(tag).as_bytes();
        let len = t.len() + 1 + value.len() + 1;
        match self.buf.get_mut(self.pos..self.pos + len) {
            Some(dst) => {
                dst[..t.len()].copy_from_slice(t);
                dst[t.len()] = b'=';
                dst[t.len() + 1..len - 1].copy_from_slice(value);
                dst[len - 1] = SOH;
                self.pos += len;
            }
            None => self.fail(WriteError::BufferTooSmall),
        }
    }

    /// Appends `tag=value` with raw bytes. The value must be non-empty and free of SOH.
    pub fn bytes(&mut self, tag: u32, value: &[u8]) -> &mut Self {
        if value.is_empty() {
            self.fail(WriteError::EmptyValue { tag });
        } else if value.contains(&SOH) {
            self.fail(WriteError::ValueContainsSoh { tag });
        }
        self.field(tag, value);
        self
    }

    /// Appends a string field.
    pub fn str(&mut self, tag: u32, value: &str) -> &mut Self {
        self.bytes(tag, value.as_bytes())
    }

    /// Appends an unsigned integer.
    pub fn u64(&mut self, tag: u32, value: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let n = format_u64(value, &mut digits);
        self.field(tag, &digits[..n]);
        self
    }

    /// Appends a signed integer.
    pub fn i64(&mut self, tag: u32, value: i64) -> &mut Self {
        let mut out = [0u8; 21];
        let mut n = 0;
        if value < 0 {
            out[0] = b'-';
            n = 1;
        }
        n += format_u64(value.unsigned_abs(), &mut out[n..]);
        self.field(tag, &out[..n]);
        self
    }

    /// Appends a one-character field (CHAR).
    pub fn char(&mut self, tag: u32, value: u8) -> &mut Self {
        self.bytes(tag, &[value])
    }

    /// Appends a BOOLEAN: `Y` or `N`.
    pub fn bool(&mut self, tag: u32, value: bool) -> &mut Self {
        self.bytes(tag, if value { b"Y" } else { b"N" })
    }

    /// Appends the exact decimal `mantissa / 10^scale` in its shortest form: no trailing
    /// zeros after the point, no point for whole numbers (1012500000, 9 → `1.0125`;
    /// -5, 0 → `-5`; 0, 4 → `0`).
    pub fn decimal(&mut self, tag: u32, mantissa: i64, scale: u32) -> &mut Self {
        if scale > MAX_DECIMAL_SCALE {
            self.fail(WriteError::Scale { tag, scale });
            return self;
        }
        let mut out = [0u8; 48];
        let n = format_decimal(mantissa, scale, &mut out);
        self.field(tag, &out[..n]);
        self
    }

    /// Appends a UTCTimestamp with milliseconds, `YYYYMMDD-HH:MM:SS.sss`, from nanoseconds
    /// since the Unix epoch (truncated toward the past).
    pub fn timestamp_ms(&mut self, tag: u32, unix_ns: i64) -> &mut Self {
        let mut out = [0u8; 27];
        let n = format_timestamp(unix_ns, 3, &mut out);
        self.field(tag, &out[..n]);
        self
    }

    /// Appends a UTCTimestamp with milliseconds through a [`TimestampCache`].
    pub fn timestamp_ms_cached(&mut self, tag: u32, unix_ns: i64, cache: &mut TimestampCache) -> &mut Self {
        self.field(tag, cache.ms(unix_ns));
        self
    }

    /// Appends a UTCTimestamp with nanoseconds, `YYYYMMDD-HH:MM:SS.sssssssss` (FIX 5.0
    /// precision; only for peers that accept it).
    pub fn timestamp_ns(&mut self, tag: u32, unix_ns: i64) -> &mut Self {
        let mut out = [0u8; 27];
        let n = format_timestamp(unix_ns, 9, &mut out);
        self.field(tag, &out[..n]);
        self
    }

    /// Bytes of body written so far (from `35=`).
    pub fn body_len(&self) -> usize {
        self.pos - self.body_start
    }

    /// Where the next field goes: pass it to [`Writer::sort_fields_since`] later.
    pub fn mark(&self) -> usize {
        self.pos
    }

    /// Puts the fields written since `mark` in ascending tag order, keeping the order of equal
    /// tags (QuickFIX writes header and body fields that way, and conformance tests compare
    /// field order). For messages without repeating groups; the buffer's unused tail is the
    /// scratch space, so nothing is allocated. Fields written in order already (no tag since
    /// `mark` lower than the one before it) are left as they are, unread.
    pub fn sort_fields_since(&mut self, mark: usize) -> &mut Self {
        if self.error.is_some() || mark >= self.pos || self.last_descent <= mark {
            return self;
        }
        let (start, end) = (mark, self.pos);
        let mut index = [(0u32, 0usize, 0usize); MAX_SORTED_FIELDS];
        let mut n = 0;
        let mut p = start;
        while p < end {
            let eq = p + self.buf[p..end].iter().position(|&b| b == b'=').unwrap_or(end - p);
            let soh = eq + self.buf[eq..end].iter().position(|&b| b == SOH).unwrap_or(end - eq);
            if n == MAX_SORTED_FIELDS {
                self.fail(WriteError::TooManyToSort);
                return self;
            }
            let tag = self.buf[p..eq].iter().fold(0u32, |t, &d| t.wrapping_mul(10).wrapping_add(u32::from(d - b'0')));
            index[n] = (tag, p, soh + 1);
            n += 1;
            p = soh + 1;
        }
        // Insertion sort: stable, and the lists are short.
        for i in 1..n {
            let mut j = i;
            while j > 0 && index[j - 1].0 > index[j].0 {
                index.swap(j - 1, j);
                j -= 1;
            }
        }
        let len = end - start;
        if self.buf.len() < end + len {
            self.fail(WriteError::BufferTooSmall);
            return self;
        }
        let mut out = end;
        for &(_, from, to) in &index[..n] {
            self.buf.copy_within(from..to, out);
            out += to - from;
        }
        self.buf.copy_within(end..end + len, start);
        (self.last_tag, self.last_descent) = (index[n - 1].0, 0);
        self
    }

    /// Completes the message: BodyLength, BeginString, CheckSum. Returns its length; the
    /// message is `buf[..len]`.
    pub fn finish(self) -> Result<usize, WriteError> {
        let Writer { buf, begin_string, body_start, pos, error, .. } = self;
        if let Some(e) = error {
            return Err(e);
        }
        let body_len = pos - body_start;
        let mut digits = [0u8; 20];
        let nd = format_u64(body_len as u64, &mut digits);
        let prefix_len = 2 + begin_string.len() + 1 + 2 + nd + 1;
        let len = prefix_len + body_len + CHECKSUM_FIELD_LEN_BYTES;
        if len > MAX_MESSAGE_LEN_BYTES {
            return Err(WriteError::TooLong { len });
        }
        if buf.len() < body_start + body_len + CHECKSUM_FIELD_LEN_BYTES || nd > BODY_LENGTH_DIGITS {
            return Err(WriteError::BufferTooSmall);
        }
        // Write the prefix right before the body, then slide the message to the start.
        let from = body_start - prefix_len;
        let mut p = from;
        for part in [&b"8="[..], begin_string.as_bytes(), &[SOH], b"9=", &digits[..nd], &[SOH]] {
            buf[p..p + part.len()].copy_from_slice(part);
            p += part.len();
        }
        buf.copy_within(from..pos, 0);
        let end = prefix_len + body_len;
        let sum = checksum(&buf[..end]);
        let tail = [b'1', b'0', b'=', b'0' + sum / 100, b'0' + sum / 10 % 10, b'0' + sum % 10, SOH];
        buf[end..end + CHECKSUM_FIELD_LEN_BYTES].copy_from_slice(&tail);
        Ok(len)
    }
}

/// Writes the decimal digits of `v` into `out`; returns how many. `out` must hold 20 bytes
/// (or as many as `v` has digits).
#[inline]
fn format_u64(v: u64, out: &mut [u8]) -> usize {
    let mut b = itoa::Buffer::new();
    let digits = b.format(v).as_bytes();
    out[..digits.len()].copy_from_slice(digits);
    digits.len()
}

/// Writes `mantissa / 10^scale` in shortest exact form; `out` holds at least 48 bytes and
/// `scale <= MAX_DECIMAL_SCALE`.
fn format_decimal(mantissa: i64, scale: u32, out: &mut [u8]) -> usize {
    let mut digits = [0u8; 20];
    let nd = format_u64(mantissa.unsigned_abs(), &mut digits);
    // Trim trailing zeros of the fraction.
    let mut scale = scale as usize;
    let mut nd_used = nd;
    while scale > 0 && nd_used > 1 && digits[nd_used - 1] == b'0' {
        nd_used -= 1;
        scale -= 1;
    }
    if nd_used == 1 && digits[0] == b'0' {
        out[0] = b'0';
        return 1;
    }
    let mut n = 0;
    if mantissa < 0 {
        out[0] = b'-';
        n = 1;
    }
    if scale == 0 {
        out[n..n + nd_used].copy_from_slice(&digits[..nd_used]);
        return n + nd_used;
    }
    if nd_used > scale {
        let int_len = nd_used - scale;
        out[n..n + int_len].copy_from_slice(&digits[..int_len]);
        n += int_len;
        out[n] = b'.';
        n += 1;
        out[n..n + scale].copy_from_slice(&digits[int_len..nd_used]);
        n + scale
    } else {
        out[n] = b'0';
        out[n + 1] = b'.';
        n += 2;
        for _ in 0..scale - nd_used {
            out[n] = b'0';
            n += 1;
        }
        out[n..n + nd_used].copy_from_slice(&digits[..nd_used]);
        n + nd_used
    }
}

/// Formats UTCTimestamps with milliseconds, redoing the calendar arithmetic only when the
/// second changes (a session writes two per report, thousands per second).
#[derive(Clone, Debug, Default)]
pub struct TimestampCache {
    second: Option<i64>,
    text: [u8; 21],
}

impl TimestampCache {
    /// `YYYYMMDD-HH:MM:SS.sss` of `unix_ns`, as [`Writer::timestamp_ms`] writes it.
    pub fn ms(&mut self, unix_ns: i64) -> &[u8] {
        let second = unix_ns.div_euclid(1_000_000_000);
        if self.second != Some(second) {
            let mut out = [0u8; 27];
            let n = format_timestamp(unix_ns, 3, &mut out);
            debug_assert_eq!(n, 21);
            self.text.copy_from_slice(&out[..21]);
            self.second = Some(second);
        }
        let ms = unix_ns.rem_euclid(1_000_000_000) / 1_000_000;
        self.text[18] = b'0' + (ms / 100) as u8;
        self.text[19] = b'0' + (ms / 10 % 10) as u8;
        self.text[20] = b'0' + (ms % 10) as u8;
        &self.text
    }
}

/// Civil date (year, month 1–12, day 1–31) of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift to 0000-03-01 so the leap day ends the year, then split into 400-year eras.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1st, 0..=365
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Writes `YYYYMMDD-HH:MM:SS` and `frac_digits` (3 or 9) fractional digits; `out` holds 27
/// bytes. Every i64 instant has a 4-digit year (1677–2262).
fn format_timestamp(unix_ns: i64, frac_digits: u32, out: &mut [u8]) -> usize {
    const NS_PER_DAY: i64 = 86_400_000_000_000;
    let days = unix_ns.div_euclid(NS_PER_DAY);
    let ns_of_day = unix_ns.rem_euclid(NS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let secs = ns_of_day / 1_000_000_000;
    let frac = (ns_of_day % 1_000_000_000) / 10i64.pow(9 - frac_digits);
    let mut put = |at: usize, v: i64, width: usize| {
        let mut v = v;
        for i in (0..width).rev() {
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year, 4);
    put(4, i64::from(month), 2);
    put(6, i64::from(day), 2);
    put(9, secs / 3600, 2);
    put(12, secs / 60 % 60, 2);
    put(15, secs % 60, 2);
    put(18, frac, frac_digits as usize);
    out[8] = b'-';
    out[11] = b':';
    out[14] = b':';
    out[17] = b'.';
    18 + frac_digits as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_of(msg: &[u8]) -> Vec<String> {
        msg.split(|&b| b == SOH).filter(|f| !f.is_empty()).map(|f| String::from_utf8_lossy(f).into_owned()).collect()
    }

    #[test]
    fn sort_fields_since_orders_by_tag_keeping_equal_tags_in_order() {
        let mut buf = [0u8; WRITE_BUFFER_LEN_BYTES * 2];
        let mut w = Writer::new(&mut buf, "FIX.4.4", b"8");
        w.u64(34, 7).str(49, "S").str(52, "T").str(56, "C");
        let mark = w.mark();
        w.str(58, "text").u64(37, 1).str(11, "a").u64(1003, 9).str(11, "b").char(54, b'1');
        w.sort_fields_since(mark);
        let n = w.finish().unwrap();
        let got = fields_of(&buf[..n]);
        let want = [
            "8=FIX.4.4",
            "9=60",
            "35=8",
            "34=7",
            "49=S",
            "52=T",
            "56=C",
            "11=a",
            "11=b",
            "37=1",
            "54=1",
            "58=text",
            "1003=9",
        ];
        assert_eq!(got[..want.len()], want);
        assert_eq!(got.len(), want.len() + 1, "then the checksum: {got:?}");
    }

    #[test]
    fn sort_fields_since_sorts_only_what_is_out_of_order_after_the_mark() {
        let body = |fields: &[(u32, &str)]| {
            let mut buf = [0u8; WRITE_BUFFER_LEN_BYTES * 2];
            let mut w = Writer::new(&mut buf, "FIX.4.4", b"8");
            w.u64(34, 7).str(56, "C");
            let mark = w.mark();
            for &(t, v) in fields {
                w.str(t, v);
            }
            w.sort_fields_since(mark);
            let n = w.finish().unwrap();
            fields_of(&buf[..n])[5..].to_vec()
        };
        // In order after the mark, though lower than the header's last tag: left as written.
        assert_eq!(body(&[(1, "a"), (6, "b"), (6, "c"), (60, "d")])[..4], ["1=a", "6=b", "6=c", "60=d"]);
        // The last field out of order: sorted, equal tags in the order written.
        assert_eq!(body(&[(1, "a"), (6, "b"), (60, "d"), (6, "c")])[..4], ["1=a", "6=b", "6=c", "60=d"]);
    }

    #[test]
    fn sort_fields_since_is_bounded() {
        let mut buf = [0u8; WRITE_BUFFER_LEN_BYTES * 2];
        let mut w = Writer::new(&mut buf, "FIX.4.4", b"0");
        let mark = w.mark();
        for t in (1..=MAX_SORTED_FIELDS as u32 + 1).rev() {
            w.u64(t + 100, u64::from(t));
        }
        w.sort_fields_since(mark);
        assert_eq!(w.finish(), Err(WriteError::TooManyToSort));
        let mut small = [0u8; 64];
        let mut w = Writer::new(&mut small, "FIX.4.4", b"0");
        let mark = w.mark();
        w.str(112, "a-test-request-id-long-enough").str(58, "x");
        w.sort_fields_since(mark);
        assert_eq!(w.finish(), Err(WriteError::BufferTooSmall), "no scratch room is an error, not a panic");
    }

    #[test]
    fn the_timestamp_cache_writes_what_the_writer_writes() {
        let mut cache = TimestampCache::default();
        for ns in [
            0i64,
            999_999_999,
            1_000_000_000,
            1_763_800_000_123_456_789,
            1_763_800_000_999_000_000,
            1_763_800_001_000_000_001,
            1_763_800_000_500_000_000,
        ] {
            let mut a = [0u8; 64];
            let mut w = Writer::new(&mut a, "FIX.4.4", b"0");
            w.timestamp_ms(52, ns);
            let na = w.finish().unwrap();
            let mut b = [0u8; 64];
            let mut w = Writer::new(&mut b, "FIX.4.4", b"0");
            w.timestamp_ms_cached(52, ns, &mut cache);
            let nb = w.finish().unwrap();
            assert_eq!(a[..na], b[..nb], "{ns}");
        }
    }
    use crate::fix::frame::next_message;
    use crate::fix::message::{days_from_civil, parse_utc_timestamp_ns};

    fn dec(m: i64, s: u32) -> String {
        let mut out = [0u8; 48];
        let n = format_decimal(m, s, &mut out);
        String::from_utf8(out[..n].to_vec()).unwrap()
    }

    #[test]
    fn decimals_are_shortest_and_exact() {
        assert_eq!(dec(1_012_500_000, 9), "1.0125");
        assert_eq!(dec(-1_012_500_000, 9), "-1.0125");
        assert_eq!(dec(0, 9), "0");
        assert_eq!(dec(5, 0), "5");
        assert_eq!(dec(500, 2), "5");
        assert_eq!(dec(5, 3), "0.005");
        assert_eq!(dec(-5, 18), "-0.000000000000000005");
        assert_eq!(dec(i64::MIN, 0), "-9223372036854775808");
        assert_eq!(dec(i64::MIN, 18), "-9.223372036854775808");
        assert_eq!(dec(1200, 1), "120");
        assert_eq!(dec(1000, 0), "1000");
    }

    #[test]
    fn timestamps_round_trip() {
        let mut out = [0u8; 27];
        for ns in [0i64, 1_709_251_199_999_000_000, -1, i64::MIN, i64::MAX, 951_782_400_123_000_000] {
            let n = format_timestamp(ns, 9, &mut out);
            assert_eq!(parse_utc_timestamp_ns(&out[..n]), Some(ns), "{}", String::from_utf8_lossy(&out[..n]));
            let n = format_timestamp(ns, 3, &mut out);
            // Truncating i64::MIN to milliseconds leaves the i64 range: parsing then says so.
            let ms = i64::try_from(i128::from(ns.div_euclid(1_000_000)) * 1_000_000).ok();
            assert_eq!(parse_utc_timestamp_ns(&out[..n]), ms);
        }
        let n = format_timestamp(1_704_164_645_678_000_000, 3, &mut out);
        assert_eq!(&out[..n], b"20240102-03:04:05.678");
        for days in [-719_468i64, -1, 0, 59, 10_957, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn writes_a_framed_message() {
        let mut buf = [0u8; 256];
        let mut w = Writer::new(&mut buf, "FIX.4.4", b"0");
        w.str(49, "S").str(56, "T").u64(34, 1).i64(58, -3).char(54, b'1').bool(43, false);
        let n = w.finish().unwrap();
        let expect_body = "35=0\x0149=S\x0156=T\x0134=1\x0158=-3\x0154=1\x0143=N\x01";
        let head = format!("8=FIX.4.4\x019={}\x01{expect_body}", expect_body.len());
        assert_eq!(&buf[..head.len()], head.as_bytes());
        assert_eq!(next_message(&buf[..n]).unwrap().unwrap().0, n);
    }

    #[test]
    fn the_largest_message_fits_the_recommended_buffer() {
        let mut buf = vec![0u8; WRITE_BUFFER_LEN_BYTES];
        // 8=FIX.4.4|9=8168|35=0|58=...|10=NNN| is exactly MAX_MESSAGE_LEN_BYTES.
        let text = "x".repeat(MAX_MESSAGE_LEN_BYTES - 10 - 7 - 5 - 4 - 7);
        let mut w = Writer::new(&mut buf, "FIX.4.4", b"0");
        w.str(58, &text);
        assert_eq!(w.finish(), Ok(MAX_MESSAGE_LEN_BYTES));
        assert_eq!(next_message(&buf[..MAX_MESSAGE_LEN_BYTES]).unwrap().unwrap().0, MAX_MESSAGE_LEN_BYTES);
    }

    #[test]
    fn errors_instead_of_panics() {
        for size in 0..40 {
            let mut buf = vec![0u8; size];
            let mut w = Writer::new(&mut buf, "FIX.4.4", b"0");
            w.str(49, "SENDER").str(56, "TARGET");
            assert_eq!(w.finish(), Err(WriteError::BufferTooSmall), "size {size}");
        }
        let mut buf = [0u8; 256];
        let mut w = Writer::new(&mut buf, "FIX.4.4", b"0");
        w.str(58, "a\x01b").str(49, "");
        assert_eq!(w.finish(), Err(WriteError::ValueContainsSoh { tag: 58 }));
        let mut w = Writer::new(&mut buf, "FIX.4.4", b"0");
        w.str(49, "");
        assert_eq!(w.finish(), Err(WriteError::EmptyValue { tag: 49 }));
        let mut w = Writer::new(&mut buf, "FIX.4.4", b"0");
        w.decimal(44, 1, 19);
        assert_eq!(w.finish(), Err(WriteError::Scale { tag: 44, scale: 19 }));
        assert_eq!(Writer::new(&mut buf, "", b"0").finish(), Err(WriteError::BeginString));
        assert_eq!(Writer::new(&mut buf, "FIX.4.4", b"").finish(), Err(WriteError::EmptyValue { tag: 35 }));
        let mut big = vec![0u8; 20_000];
        let mut w = Writer::new(&mut big, "FIX.4.4", b"0");
        w.str(58, &"x".repeat(MAX_MESSAGE_LEN_BYTES));
        assert!(matches!(w.finish(), Err(WriteError::TooLong { .. })));
    }
}
