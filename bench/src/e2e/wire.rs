//! The wire protocol as the load generator sees it: the sender writes order `i` into a buffer
//! ([`OrderWriter`]), the receiver splits complete frames off a connection's receive buffer and
//! says what each one acknowledges ([`AckReader`]). Everything else (pacing, accounting,
//! latency) is protocol-neutral and lives in [`super::load`], which is generic over these two
//! traits: static dispatch, nothing allocated per message.
//!
//! - SBE: [`SbeOrders`] and [`SbeAcks`] (`gateway::sbe::codec`).
//! - FIX 4.4: [`FixOrders`] (a per-connection MsgSeqNum, SendingTime stamped at the send) and
//!   [`FixAcks`] (`gateway::fix::frame::next_message`, then `gateway::fix::message::parse`
//!   into one reused `FieldTable`).

use gateway::fix::frame::next_message;
use gateway::fix::message::{FieldTable, parse, parse_u64};
use gateway::sbe::codec::{Outbound, decode_outbound_frame, encode, encoded_len};
use gateway::sbe::messages::{ExecType, NewOrderSingle};

use super::flow;

/// What one server message means to the generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// A first-acknowledgement kind of message (ExecutionReport New or Rejected, or a
    /// BusinessMessageReject) for the order with this index (`None`: a ClOrdID the flow did
    /// not write).
    Ack {
        /// The order's index, from its ClOrdID.
        order: Option<u64>,
        /// Rejected rather than accepted.
        reject: bool,
        /// The engine's order id (OrderID 37), 0 when the message has none.
        order_id: u64,
    },
    /// ExecutionReport Trade.
    Trade,
    /// ExecutionReport Canceled (IOC remainders).
    Cancel,
    /// Anything else the session may send (heartbeats, other execution types).
    Other,
}

/// Writes the flow's orders in one protocol.
pub trait OrderWriter: Send + 'static {
    /// Most bytes one order takes (the sender's batch buffers hold this many per order).
    const MAX_ORDER_BYTES: usize;

    /// Writes order `i` of connection `c` at the start of `buf` (at least
    /// [`Self::MAX_ORDER_BYTES`] long), stamped `unix_ns` where the protocol carries a send
    /// time; returns its length.
    fn write_order(&mut self, c: usize, i: u64, unix_ns: i64, buf: &mut [u8]) -> usize;
}

/// Reads the server's messages in one protocol.
pub trait AckReader: Send + 'static {
    /// Splits the first complete message off `buf`: its length and meaning, `None` if more
    /// bytes are needed, `Err` if the connection is unusable (garbled bytes, a session-ending
    /// message).
    fn next_frame(&mut self, buf: &[u8]) -> Result<Option<(usize, Inbound)>, String>;
}

/// SBE NewOrderSingle frames, one SBE session and account per connection.
pub struct SbeOrders {
    connections: u64,
    accounts: Vec<u32>,
}

impl SbeOrders {
    /// Orders of a run over `accounts.len()` connections, connection `c` acting on
    /// `accounts[c]`.
    pub fn new(accounts: Vec<u32>) -> Self {
        SbeOrders { connections: accounts.len() as u64, accounts }
    }
}

impl OrderWriter for SbeOrders {
    const MAX_ORDER_BYTES: usize = encoded_len::<NewOrderSingle>();

    #[inline]
    fn write_order(&mut self, c: usize, i: u64, _unix_ns: i64, buf: &mut [u8]) -> usize {
        let order = flow::order(i, self.connections, self.accounts[c]);
        encode(&order, buf).expect("the buffer holds MAX_ORDER_BYTES")
    }
}

/// SBE server messages.
#[derive(Default)]
pub struct SbeAcks;

impl AckReader for SbeAcks {
    #[inline]
    fn next_frame(&mut self, buf: &[u8]) -> Result<Option<(usize, Inbound)>, String> {
        let Some((len, msg)) = decode_outbound_frame(buf).map_err(|e| format!("framing: {e}"))? else {
            return Ok(None);
        };
        let inbound = match msg.map_err(|e| format!("undecodable frame: {e}"))? {
            Outbound::ExecutionReport(er) => match ExecType::from_u8(er.exec_type) {
                Some(ExecType::New) => Inbound::Ack {
                    order: flow::parse_cl_ord_id(&er.cl_ord_id),
                    reject: false,
                    order_id: er.order_id.get(),
                },
                Some(ExecType::Rejected) => {
                    Inbound::Ack { order: flow::parse_cl_ord_id(&er.cl_ord_id), reject: true, order_id: 0 }
                }
                Some(ExecType::Trade) => Inbound::Trade,
                Some(ExecType::Canceled) => Inbound::Cancel,
                _ => Inbound::Other,
            },
            Outbound::BusinessMessageReject(m) => {
                Inbound::Ack { order: flow::parse_cl_ord_id(&m.cl_ord_id), reject: true, order_id: 0 }
            }
            Outbound::Terminate(_) => return Err("the appliance sent Terminate".into()),
            _ => Inbound::Other,
        };
        Ok(Some((len, inbound)))
    }
}

/// sable's TargetCompID as the benchmark's FIX sessions name it.
pub const FIX_TARGET_COMP_ID: &str = "SABLE";

/// The SenderCompID of connection `c`'s FIX session (`BENCH1`, `BENCH2`, ...).
pub fn fix_sender_comp_id(c: usize) -> String {
    format!("BENCH{}", c + 1)
}

/// FIX NewOrderSingle messages, one FIX session and account per connection, each with its own
/// MsgSeqNum.
pub struct FixOrders {
    connections: u64,
    accounts: Vec<u32>,
    sender_comp_ids: Vec<String>,
    next_seq: Vec<u64>,
}

impl FixOrders {
    /// Orders of a run over `accounts.len()` connections, connection `c` acting on
    /// `accounts[c]` as [`fix_sender_comp_id`]`(c)`, whose next MsgSeqNum is `next_seq[c]`
    /// (2 after a Logon with 141=Y).
    pub fn new(accounts: Vec<u32>, next_seq: Vec<u64>) -> Self {
        assert_eq!(accounts.len(), next_seq.len(), "one sequence number per connection");
        let sender_comp_ids = (0..accounts.len()).map(fix_sender_comp_id).collect();
        FixOrders { connections: accounts.len() as u64, accounts, sender_comp_ids, next_seq }
    }
}

impl OrderWriter for FixOrders {
    const MAX_ORDER_BYTES: usize = flow::FIX_ORDER_MAX_BYTES;

    #[inline]
    fn write_order(&mut self, c: usize, i: u64, unix_ns: i64, buf: &mut [u8]) -> usize {
        let header = flow::FixHeader {
            sender_comp_id: &self.sender_comp_ids[c],
            target_comp_id: FIX_TARGET_COMP_ID,
            msg_seq_num: self.next_seq[c],
            sending_time_unix_ns: unix_ns,
        };
        let n = flow::fix_order(i, self.connections, self.accounts[c], &header, &mut buf[..Self::MAX_ORDER_BYTES])
            .expect("FIX_ORDER_MAX_BYTES holds the longest order");
        self.next_seq[c] += 1;
        n
    }
}

/// FIX server messages, parsed into one reused field table.
#[derive(Default)]
pub struct FixAcks {
    table: FieldTable,
}

impl AckReader for FixAcks {
    #[inline]
    fn next_frame(&mut self, buf: &[u8]) -> Result<Option<(usize, Inbound)>, String> {
        let Some((len, bytes)) = next_message(buf).map_err(|g| format!("garbled FIX message: {g}"))? else {
            return Ok(None);
        };
        let msg = parse(bytes, &mut self.table).map_err(|e| format!("unparsable FIX message: {e}"))?;
        let order_of = |tag: u32| msg.get(tag).and_then(parse_u64);
        let inbound = match msg.msg_type() {
            b"8" => match msg.get(150) {
                Some(b"0") => Inbound::Ack { order: order_of(11), reject: false, order_id: order_of(37).unwrap_or(0) },
                Some(b"8") => Inbound::Ack { order: order_of(11), reject: true, order_id: 0 },
                Some(b"F") => Inbound::Trade,
                Some(b"4") => Inbound::Cancel,
                _ => Inbound::Other,
            },
            b"j" => Inbound::Ack { order: order_of(379), reject: true, order_id: 0 },
            b"5" => {
                let text = msg.get(58).map(String::from_utf8_lossy).unwrap_or_default();
                return Err(format!("the appliance sent Logout: {text}"));
            }
            // A session-level Reject names the message by MsgSeqNum, not ClOrdID: the order it
            // refused is never acknowledged, and counted lost.
            b"3" => {
                let field = |t: u32| msg.get(t).map(String::from_utf8_lossy).unwrap_or_default();
                return Err(format!(
                    "the appliance sent Reject: RefSeqNum {} SessionRejectReason {} RefTagID {}: {}",
                    field(45),
                    field(373),
                    field(371),
                    field(58)
                ));
            }
            _ => Inbound::Other,
        };
        Ok(Some((len, inbound)))
    }
}

/// Length of a typical FIX order of the run: order 12,345 of connection 1 at MsgSeqNum 6,174
/// (the floor's frame size for the FIX path; the real ones differ by a few digits).
pub fn fix_order_bytes_typical() -> usize {
    let mut buf = [0u8; flow::FIX_ORDER_MAX_BYTES];
    let header = flow::FixHeader {
        sender_comp_id: "BENCH1",
        target_comp_id: FIX_TARGET_COMP_ID,
        msg_seq_num: 6_174,
        sending_time_unix_ns: 1_763_800_000_000_000_000,
    };
    flow::fix_order(12_345, 2, 1, &header, &mut buf).expect("FIX_ORDER_MAX_BYTES holds the longest order")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_fix_order_fits() {
        let mut buf = [0u8; flow::FIX_ORDER_MAX_BYTES];
        let comp = "B".repeat(gateway::config::MAX_COMP_ID_LEN);
        let header = flow::FixHeader {
            sender_comp_id: &comp,
            target_comp_id: &comp,
            msg_seq_num: u64::MAX,
            sending_time_unix_ns: i64::MAX,
        };
        for i in [u64::MAX - 4, u64::MAX] {
            assert!(flow::fix_order(i, 1, u32::MAX, &header, &mut buf).is_ok());
        }
    }

    fn fix(msg_type: &[u8], fields: &[(u32, &str)]) -> Vec<u8> {
        let mut buf = vec![0u8; 1024];
        let mut w = gateway::fix::writer::Writer::new(&mut buf, "FIX.4.4", msg_type);
        w.str(49, "SABLE").str(56, "BENCH1").u64(34, 9).timestamp_ms(52, 1_763_800_000_000_000_000);
        for (t, v) in fields {
            w.str(*t, v);
        }
        let n = w.finish().expect("fits");
        buf.truncate(n);
        buf
    }

    #[test]
    fn fix_messages_are_classified() {
        let mut r = FixAcks::default();
        let mut read = |bytes: &[u8]| r.next_frame(bytes).map(|f| f.map(|(len, m)| (len == bytes.len(), m)));
        let ack = |order, reject| Ok(Some((true, Inbound::Ack { order, reject, order_id: 0 })));
        let new_with_id = Ok(Some((true, Inbound::Ack { order: Some(42), reject: false, order_id: 9 })));
        assert_eq!(read(&fix(b"8", &[(11, "42"), (150, "0"), (39, "0"), (37, "9")])), new_with_id);
        assert_eq!(read(&fix(b"8", &[(11, "42"), (150, "0"), (39, "0")])), ack(Some(42), false));
        assert_eq!(read(&fix(b"8", &[(11, "42"), (150, "8"), (39, "8")])), ack(Some(42), true));
        assert_eq!(read(&fix(b"8", &[(11, "x1"), (150, "0")])), ack(None, false));
        assert_eq!(read(&fix(b"j", &[(45, "3"), (372, "D"), (379, "7"), (380, "6")])), ack(Some(7), true));
        assert_eq!(read(&fix(b"8", &[(11, "42"), (150, "F")])), Ok(Some((true, Inbound::Trade))));
        assert_eq!(read(&fix(b"8", &[(11, "42"), (150, "4")])), Ok(Some((true, Inbound::Cancel))));
        assert_eq!(read(&fix(b"0", &[])), Ok(Some((true, Inbound::Other))));
        assert!(read(&fix(b"5", &[(58, "bye")])).is_err_and(|e| e.contains("bye")));
        assert!(read(&fix(b"3", &[(45, "5"), (373, "10")])).is_err());
        let whole = fix(b"0", &[]);
        assert_eq!(read(&whole[..whole.len() - 1]), Ok(None));
        let mut bad = whole.clone();
        *bad.last_mut().unwrap() = b'x';
        assert!(read(&bad).is_err(), "a garbled message ends the connection");
        assert!(read(b"garbage").is_err());
    }

    #[test]
    fn fix_orders_carry_per_connection_sequence_numbers() {
        let mut w = FixOrders::new(vec![1, 2], vec![2, 5]);
        let mut buf = vec![0u8; 3 * FixOrders::MAX_ORDER_BYTES];
        let n0 = w.write_order(0, 0, 1_763_800_000_000_000_000, &mut buf);
        let n1 = w.write_order(1, 1, 1_763_800_000_000_000_000, &mut buf[n0..]);
        let n2 = w.write_order(0, 2, 1_763_800_000_000_000_000, &mut buf[n0 + n1..]);
        assert_eq!(w.next_seq, vec![4, 6]);
        let mut table = FieldTable::default();
        let mut at = 0;
        for (n, seq, sender) in [(n0, 2, "BENCH1"), (n1, 5, "BENCH2"), (n2, 3, "BENCH1")] {
            let msg = parse(&buf[at..at + n], &mut table).expect("parses");
            assert_eq!((msg.get_u64(34), msg.get(49)), (Ok(seq), Some(sender.as_bytes())));
            at += n;
        }
        assert!(fix_order_bytes_typical() < FixOrders::MAX_ORDER_BYTES);
    }
}
