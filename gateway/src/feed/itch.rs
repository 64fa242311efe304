//! Nasdaq TotalView-ITCH 5.0 messages: the layouts of the specification, big-endian, encoded
//! into and decoded from byte slices (pure functions, no I/O).
//!
//! Every message starts with the common header: type (1 byte), Stock Locate (u16), Tracking
//! Number (u16), Timestamp (6 bytes, nanoseconds since midnight). sable fills them as:
//! Stock Locate = the instrument id, Tracking Number = the low 16 bits of the input sequence
//! number the message comes from (so a message can be tied to its journal record), Timestamp =
//! the command's own `ts_ns` modulo one UTC day (the sequencer's stamp, never a clock read).
//!
//! Prices are ITCH `Price(4)` (1/10,000 currency units) and quantities ITCH shares: see
//! [`crate::feed::translate`] for how sable's ticks and lots map onto them.

/// Bytes of the common header (type, locate, tracking, timestamp).
pub const HEADER_LEN: usize = 11;
/// Longest message sable sends (Trade, `P`).
pub const MAX_MESSAGE_LEN: usize = 44;
/// Nanoseconds in a day: timestamps count from midnight.
pub const NS_PER_DAY: u64 = 86_400_000_000_000;

/// The common header of every message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Stock Locate: sable's instrument id.
    pub stock_locate: u16,
    /// Tracking Number: low 16 bits of the input sequence number.
    pub tracking: u16,
    /// Nanoseconds since midnight (48 bits on the wire).
    pub timestamp_ns: u64,
}

/// The ITCH 5.0 messages sable publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// `S` System Event: `O` start of messages, `C` end of messages, ...
    SystemEvent {
        /// Header.
        h: Header,
        /// Event code.
        event_code: u8,
    },
    /// `R` Stock Directory (39 bytes). Round Lot Size carries sable's lot in shares; the
    /// fields sable has no use for carry the spec's "not available" values.
    StockDirectory {
        /// Header.
        h: Header,
        /// Symbol, left-justified, space padded.
        stock: [u8; 8],
        /// Shares per round lot.
        round_lot_size: u32,
    },
    /// `H` Stock Trading Action (25 bytes).
    TradingAction {
        /// Header.
        h: Header,
        /// Symbol.
        stock: [u8; 8],
        /// `H` halted, `P` paused, `Q` quotation only, `T` trading.
        state: u8,
        /// Reason (4 ASCII bytes; spaces when none).
        reason: [u8; 4],
    },
    /// `A` Add Order (36 bytes), or `F` with an MPID attribution (40 bytes).
    AddOrder {
        /// Header.
        h: Header,
        /// Order Reference Number.
        order_ref: u64,
        /// `B` or `S`.
        side: u8,
        /// Displayed shares.
        shares: u32,
        /// Symbol.
        stock: [u8; 8],
        /// Price(4).
        price: u32,
        /// MPID for `F`; `None` for `A`.
        attribution: Option<[u8; 4]>,
    },
    /// `E` Order Executed (31 bytes).
    Executed {
        /// Header.
        h: Header,
        /// Order Reference Number.
        order_ref: u64,
        /// Executed shares.
        shares: u32,
        /// Match Number (sable's trade id).
        match_number: u64,
    },
    /// `C` Order Executed With Price (36 bytes).
    ExecutedWithPrice {
        /// Header.
        h: Header,
        /// Order Reference Number.
        order_ref: u64,
        /// Executed shares.
        shares: u32,
        /// Match Number.
        match_number: u64,
        /// `Y` or `N`.
        printable: u8,
        /// Price(4).
        price: u32,
    },
    /// `X` Order Cancel (23 bytes): part of the displayed shares cancelled.
    Cancel {
        /// Header.
        h: Header,
        /// Order Reference Number.
        order_ref: u64,
        /// Cancelled shares.
        shares: u32,
    },
    /// `D` Order Delete (19 bytes).
    Delete {
        /// Header.
        h: Header,
        /// Order Reference Number.
        order_ref: u64,
    },
    /// `U` Order Replace (35 bytes).
    Replace {
        /// Header.
        h: Header,
        /// Original Order Reference Number.
        orig_ref: u64,
        /// New Order Reference Number.
        new_ref: u64,
        /// Shares.
        shares: u32,
        /// Price(4).
        price: u32,
    },
    /// `P` Trade, non-cross (44 bytes): an execution against an order not on the visible book.
    Trade {
        /// Header.
        h: Header,
        /// Order Reference Number (0 for non-displayed orders, as Nasdaq does).
        order_ref: u64,
        /// Side of the resting (non-displayed) order.
        side: u8,
        /// Shares.
        shares: u32,
        /// Symbol.
        stock: [u8; 8],
        /// Price(4).
        price: u32,
        /// Match Number.
        match_number: u64,
    },
}

/// A message that cannot be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ItchError {
    /// Fewer bytes than the message type's layout.
    #[error("message type {kind:?} needs {need} bytes, got {got}")]
    Short {
        /// Message type byte.
        kind: u8,
        /// Layout length.
        need: usize,
        /// Bytes given.
        got: usize,
    },
    /// A message type sable does not send.
    #[error("unknown message type {0:#04x}")]
    UnknownType(u8),
}

/// Writes big-endian fields into a fixed buffer.
struct Writer<'a> {
    buf: &'a mut [u8; MAX_MESSAGE_LEN],
    at: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf[self.at..self.at + b.len()].copy_from_slice(b);
        self.at += b.len();
        self
    }
    fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes(&[v])
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    fn header(&mut self, kind: u8, h: &Header) -> &mut Self {
        let ts = (h.timestamp_ns % NS_PER_DAY).to_be_bytes();
        self.u8(kind).u16(h.stock_locate).u16(h.tracking).bytes(&ts[2..])
    }
}

impl Message {
    /// The message type byte.
    pub fn kind(&self) -> u8 {
        match self {
            Message::SystemEvent { .. } => b'S',
            Message::StockDirectory { .. } => b'R',
            Message::TradingAction { .. } => b'H',
            Message::AddOrder { attribution: None, .. } => b'A',
            Message::AddOrder { attribution: Some(_), .. } => b'F',
            Message::Executed { .. } => b'E',
            Message::ExecutedWithPrice { .. } => b'C',
            Message::Cancel { .. } => b'X',
            Message::Delete { .. } => b'D',
            Message::Replace { .. } => b'U',
            Message::Trade { .. } => b'P',
        }
    }

    /// The header.
    pub fn header(&self) -> &Header {
        match self {
            Message::SystemEvent { h, .. }
            | Message::StockDirectory { h, .. }
            | Message::TradingAction { h, .. }
            | Message::AddOrder { h, .. }
            | Message::Executed { h, .. }
            | Message::ExecutedWithPrice { h, .. }
            | Message::Cancel { h, .. }
            | Message::Delete { h, .. }
            | Message::Replace { h, .. }
            | Message::Trade { h, .. } => h,
        }
    }

    /// Encodes into `buf`, returning the message's length.
    pub fn encode(&self, buf: &mut [u8; MAX_MESSAGE_LEN]) -> usize {
        let mut w = Writer { buf, at: 0 };
        w.header(self.kind(), self.header());
        match *self {
            Message::SystemEvent { event_code, .. } => w.u8(event_code),
            Message::StockDirectory { stock, round_lot_size, .. } => {
                // Market category, financial status: not available; round lots only: Y (sable
                // takes whole lots only); issue classification, sub-type: blank; authenticity:
                // P (live); short-sale threshold, IPO flag, LULD tier, ETP flag: blank; ETP
                // leverage factor 0; inverse indicator: N.
                w.bytes(&stock).u8(b' ').u8(b' ').u32(round_lot_size).u8(b'Y').u8(b' ').bytes(b"  ").u8(b'P');
                w.bytes(b"    ").u32(0).u8(b'N')
            }
            Message::TradingAction { stock, state, reason, .. } => w.bytes(&stock).u8(state).u8(b' ').bytes(&reason),
            Message::AddOrder { order_ref, side, shares, stock, price, attribution, .. } => {
                w.u64(order_ref).u8(side).u32(shares).bytes(&stock).u32(price);
                match attribution {
                    Some(mpid) => w.bytes(&mpid),
                    None => &mut w,
                }
            }
            Message::Executed { order_ref, shares, match_number, .. } => w.u64(order_ref).u32(shares).u64(match_number),
            Message::ExecutedWithPrice { order_ref, shares, match_number, printable, price, .. } => {
                w.u64(order_ref).u32(shares).u64(match_number).u8(printable).u32(price)
            }
            Message::Cancel { order_ref, shares, .. } => w.u64(order_ref).u32(shares),
            Message::Delete { order_ref, .. } => w.u64(order_ref),
            Message::Replace { orig_ref, new_ref, shares, price, .. } => {
                w.u64(orig_ref).u64(new_ref).u32(shares).u32(price)
            }
            Message::Trade { order_ref, side, shares, stock, price, match_number, .. } => {
                w.u64(order_ref).u8(side).u32(shares).bytes(&stock).u32(price).u64(match_number)
            }
        };
        w.at
    }

    /// Bytes of the encoded message ([`Message::encode`]'s length), without encoding it.
    pub fn encoded_len(&self) -> usize {
        Message::layout_len(self.kind()).expect("every message sable builds has a layout")
    }

    /// The layout length of message type `kind`, if sable sends it.
    pub fn layout_len(kind: u8) -> Option<usize> {
        Some(match kind {
            b'S' => 12,
            b'R' => 39,
            b'H' => 25,
            b'A' => 36,
            b'F' => 40,
            b'E' => 31,
            b'C' => 36,
            b'X' => 23,
            b'D' => 19,
            b'U' => 35,
            b'P' => 44,
            _ => return None,
        })
    }

    /// Decodes one message (the bytes of one MoldUDP64 message block).
    pub fn decode(b: &[u8]) -> Result<Message, ItchError> {
        let kind = *b.first().ok_or(ItchError::Short { kind: 0, need: 1, got: 0 })?;
        let need = Message::layout_len(kind).ok_or(ItchError::UnknownType(kind))?;
        if b.len() < need {
            return Err(ItchError::Short { kind, need, got: b.len() });
        }
        let r = Reader(b);
        let h = Header { stock_locate: r.u16(1), tracking: r.u16(3), timestamp_ns: r.u48(5) };
        Ok(match kind {
            b'S' => Message::SystemEvent { h, event_code: b[11] },
            b'R' => Message::StockDirectory { h, stock: r.arr(11), round_lot_size: r.u32(21) },
            b'H' => Message::TradingAction { h, stock: r.arr(11), state: b[19], reason: r.arr(21) },
            b'A' | b'F' => Message::AddOrder {
                h,
                order_ref: r.u64(11),
                side: b[19],
                shares: r.u32(20),
                stock: r.arr(24),
                price: r.u32(32),
                attribution: (kind == b'F').then(|| r.arr(36)),
            },
            b'E' => Message::Executed { h, order_ref: r.u64(11), shares: r.u32(19), match_number: r.u64(23) },
            b'C' => Message::ExecutedWithPrice {
                h,
                order_ref: r.u64(11),
                shares: r.u32(19),
                match_number: r.u64(23),
                printable: b[31],
                price: r.u32(32),
            },
            b'X' => Message::Cancel { h, order_ref: r.u64(11), shares: r.u32(19) },
            b'D' => Message::Delete { h, order_ref: r.u64(11) },
            b'U' => {
                Message::Replace { h, orig_ref: r.u64(11), new_ref: r.u64(19), shares: r.u32(27), price: r.u32(31) }
            }
            _ => Message::Trade {
                h,
                order_ref: r.u64(11),
                side: b[19],
                shares: r.u32(20),
                stock: r.arr(24),
                price: r.u32(32),
                match_number: r.u64(36),
            },
        })
    }
}

/// Reads big-endian fields at fixed offsets of a slice whose length was checked.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn arr<const N: usize>(&self, at: usize) -> [u8; N] {
        self.0[at..at + N].try_into().expect("length checked against the layout")
    }
    fn u16(&self, at: usize) -> u16 {
        u16::from_be_bytes(self.arr(at))
    }
    fn u32(&self, at: usize) -> u32 {
        u32::from_be_bytes(self.arr(at))
    }
    fn u64(&self, at: usize) -> u64 {
        u64::from_be_bytes(self.arr(at))
    }
    fn u48(&self, at: usize) -> u64 {
        let mut b = [0u8; 8];
        b[2..].copy_from_slice(&self.0[at..at + 6]);
        u64::from_be_bytes(b)
    }
}

/// A symbol as ITCH's 8-byte Stock field: left-justified, space padded, cut at 8.
pub fn stock_field(symbol: &str) -> [u8; 8] {
    let mut out = [b' '; 8];
    for (o, c) in out.iter_mut().zip(symbol.bytes()) {
        *o = c;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h() -> Header {
        Header { stock_locate: 7, tracking: 0xBEEF, timestamp_ns: 34_200_000_000_123 }
    }

    fn samples() -> Vec<Message> {
        let stock = stock_field("AAPL");
        vec![
            Message::SystemEvent { h: h(), event_code: b'O' },
            Message::StockDirectory { h: h(), stock, round_lot_size: 100 },
            Message::TradingAction { h: h(), stock, state: b'T', reason: *b"    " },
            Message::AddOrder {
                h: h(),
                order_ref: 9,
                side: b'B',
                shares: 300,
                stock,
                price: 1_234_500,
                attribution: None,
            },
            Message::AddOrder {
                h: h(),
                order_ref: 9,
                side: b'S',
                shares: 1,
                stock,
                price: 1,
                attribution: Some(*b"SABL"),
            },
            Message::Executed { h: h(), order_ref: 9, shares: 100, match_number: 77 },
            Message::ExecutedWithPrice {
                h: h(),
                order_ref: 9,
                shares: 5,
                match_number: 78,
                printable: b'Y',
                price: 99,
            },
            Message::Cancel { h: h(), order_ref: 9, shares: 50 },
            Message::Delete { h: h(), order_ref: u64::MAX },
            Message::Replace { h: h(), orig_ref: 9, new_ref: 10, shares: 20, price: 30 },
            Message::Trade { h: h(), order_ref: 0, side: b'S', shares: 4, stock, price: 5, match_number: 6 },
        ]
    }

    #[test]
    fn every_message_has_its_spec_length_and_round_trips() {
        for m in samples() {
            let mut buf = [0u8; MAX_MESSAGE_LEN];
            let n = m.encode(&mut buf);
            assert_eq!(Some(n), Message::layout_len(m.kind()), "{m:?}");
            assert_eq!(n, m.encoded_len(), "{m:?}");
            assert_eq!(buf[0], m.kind());
            assert_eq!(Message::decode(&buf[..n]), Ok(m));
            assert!(matches!(Message::decode(&buf[..n - 1]), Err(ItchError::Short { .. })));
        }
    }

    #[test]
    fn add_order_bytes_are_big_endian_at_the_spec_offsets() {
        let m = Message::AddOrder {
            h: h(),
            order_ref: 0x0102_0304_0506_0708,
            side: b'B',
            shares: 0x0A0B_0C0D,
            stock: stock_field("MSFT"),
            price: 0x1122_3344,
            attribution: None,
        };
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let n = m.encode(&mut buf);
        let ts = 34_200_000_000_123u64.to_be_bytes();
        let mut want = vec![b'A', 0, 7, 0xBE, 0xEF];
        want.extend_from_slice(&ts[2..]);
        want.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, b'B', 0x0A, 0x0B, 0x0C, 0x0D]);
        want.extend_from_slice(b"MSFT    ");
        want.extend_from_slice(&[0x11, 0x22, 0x33, 0x44]);
        assert_eq!(&buf[..n], &want[..]);
    }

    #[test]
    fn timestamps_count_from_midnight() {
        let mut m = Message::Delete { h: h(), order_ref: 1 };
        if let Message::Delete { h, .. } = &mut m {
            h.timestamp_ns = 3 * NS_PER_DAY + 42;
        }
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let n = m.encode(&mut buf);
        assert_eq!(Message::decode(&buf[..n]).map(|d| d.header().timestamp_ns), Ok(42));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(Message::decode(&[]), Err(ItchError::Short { kind: 0, need: 1, got: 0 }));
        assert_eq!(Message::decode(b"Z123"), Err(ItchError::UnknownType(b'Z')));
    }
}
