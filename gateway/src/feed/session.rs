//! The feed's session: ITCH messages of each command numbered, retained and packed into
//! MoldUDP64 packets. A pure function of the output slots it is given (no clock, no socket):
//! the same slots give the same session names, sequence numbers and bytes, which is what lets
//! a restart or a promoted standby rebuild it by replaying the journal.
//!
//! One session per UTC day of the commands' timestamps: the first command of a new day closes
//! the old session (`S` `C`, then an end-of-session packet) and opens the next, numbered from
//! 1, with `S` `O`, the Stock Directory of every instrument and every visible order as an Add
//! Order, so a subscriber of the new session needs nothing from the old one.

use std::sync::{Arc, Mutex};

use crate::feed::history::History;
use crate::feed::itch::{MAX_MESSAGE_LEN, Message, NS_PER_DAY};
use crate::feed::mold::{self, PacketBuilder, SessionName};
use crate::feed::translate::Translator;
use crate::rings::{OutItem, OutSlot};

/// The session name of UTC day `day` (days since 1970-01-01): `YYYYMMDD` and a 2-byte suffix.
pub fn session_name(day: u64, suffix: [u8; 2]) -> SessionName {
    // Howard Hinnant's civil-from-days, for days ≥ 0.
    let z = day as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let text = format!("{:04}{:02}{:02}", y.clamp(0, 9999), m, d);
    let mut name = [b' '; mold::SESSION_LEN];
    name[..8].copy_from_slice(text.as_bytes());
    name[8..].copy_from_slice(&suffix);
    name
}

/// Numbers, retains and packs the feed's messages.
pub struct FeedSession {
    translator: Translator,
    history: Arc<Mutex<History>>,
    session: SessionName,
    suffix: [u8; 2],
    day: Option<u64>,
    next_seq: u64,
    cur_seq: u64,
    in_command: bool,
    msgs: Vec<Message>,
    builder: PacketBuilder,
}

impl FeedSession {
    /// A session builder over `translator`, retaining into `history`, packets of at most
    /// `max_datagram_bytes`; `suffix` ends the session names.
    pub fn new(
        translator: Translator,
        history: Arc<Mutex<History>>,
        max_datagram_bytes: usize,
        suffix: [u8; 2],
    ) -> Self {
        FeedSession {
            translator,
            history,
            session: *b"          ",
            suffix,
            day: None,
            next_seq: 1,
            cur_seq: 0,
            in_command: false,
            msgs: Vec::with_capacity(256),
            builder: PacketBuilder::new(max_datagram_bytes),
        }
    }

    /// The current session's name (blank before the first command).
    pub fn session(&self) -> SessionName {
        self.session
    }

    /// The sequence number the next message will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The input sequence number of the last command seen.
    pub fn input_seq(&self) -> u64 {
        self.cur_seq
    }

    /// The translator (its state: the book the feed shows).
    pub fn translator_mut(&mut self) -> &mut Translator {
        &mut self.translator
    }

    /// Takes one output slot; complete packets go to `send` (the last one only at [`flush`]).
    ///
    /// [`flush`]: FeedSession::flush
    pub(crate) fn on_slot(&mut self, slot: &OutSlot, send: &mut impl FnMut(&[u8])) {
        match &slot.item {
            OutItem::Event(e) => self.on_event(slot.seq, slot.ts_ns, &slot.request, e, send),
            OutItem::Done => self.on_done(slot.seq, slot.ts_ns, send),
        }
    }

    /// Takes one whole command and the events it produced, as the publisher would forward
    /// them (the journal replay and benchmarks use this; the feed thread gets slots).
    pub fn command(
        &mut self,
        seq: u64,
        ts_ns: u64,
        body: &engine::CommandBody,
        events: &[engine::Event],
        send: &mut impl FnMut(&[u8]),
    ) {
        // By reference: building a slot per event would copy the event and the body each time.
        for e in events {
            if crate::feed::tap::needed_event(e) {
                self.on_event(seq, ts_ns, body, e, send);
            }
        }
        self.on_done(seq, ts_ns, send);
    }

    /// An event of command `seq`.
    fn on_event(
        &mut self,
        seq: u64,
        ts_ns: u64,
        request: &engine::CommandBody,
        e: &engine::Event,
        send: &mut impl FnMut(&[u8]),
    ) {
        if seq != self.cur_seq {
            self.begin(seq, ts_ns, send);
        }
        self.in_command = true;
        self.translator.event(e, request, &mut self.msgs);
    }

    /// The end of command `seq`: its messages are numbered and packed.
    fn on_done(&mut self, seq: u64, ts_ns: u64, send: &mut impl FnMut(&[u8])) {
        if seq != self.cur_seq {
            self.begin(seq, ts_ns, send);
        }
        self.translator.end(&mut self.msgs);
        self.commit(send);
        self.in_command = false;
    }

    fn begin(&mut self, seq: u64, ts_ns: u64, send: &mut impl FnMut(&[u8])) {
        self.cur_seq = seq;
        self.translator.begin(seq, ts_ns);
        let day = ts_ns / NS_PER_DAY;
        if self.day == Some(day) {
            return;
        }
        if self.day.is_some() {
            self.msgs.push(self.translator.end_of_messages());
            self.commit(send);
            self.flush(send);
            send(&mold::end_of_session(&self.session, self.next_seq));
        }
        self.day = Some(day);
        self.session = session_name(day, self.suffix);
        self.next_seq = 1;
        self.history.lock().unwrap_or_else(|p| p.into_inner()).reset(self.session);
        self.translator.opening(true, &mut self.msgs);
    }

    /// Numbers and packs the messages gathered so far: in the open packet if all of them fit,
    /// else in a new one (and more when they fill one). They are retained when their packet is
    /// sent ([`FeedSession::send_packet`]): the history's lock is taken once a packet, not once
    /// a command.
    fn commit(&mut self, send: &mut impl FnMut(&[u8])) {
        if self.msgs.is_empty() {
            return;
        }
        let total: usize = self.msgs.iter().map(|m| 2 + m.encoded_len()).sum();
        if self.builder.count() > 0 && total > self.builder.room() {
            self.flush(send);
        }
        // Taken and put back so `send_packet` can borrow `self`; the capacity stays.
        let mut msgs = std::mem::take(&mut self.msgs);
        for m in msgs.drain(..) {
            let mut buf = [0u8; MAX_MESSAGE_LEN];
            let n = m.encode(&mut buf);
            let msg = &buf[..n];
            if self.builder.count() == 0 {
                self.builder.start(&self.session, self.next_seq);
            }
            if !self.builder.push(msg) {
                self.send_packet(send);
                let pushed = self.builder.push(msg);
                debug_assert!(pushed, "a message always fits an empty packet");
            }
            self.next_seq += 1;
        }
        self.msgs = msgs;
    }

    /// Retains the open packet's messages, sends it and starts the next: a message is in the
    /// history before any subscriber can miss it.
    fn send_packet(&mut self, send: &mut impl FnMut(&[u8])) {
        {
            let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
            for msg in self.builder.blocks() {
                history.push(msg);
            }
            assert_eq!(history.next_seq(), self.next_seq, "retained history and the feed agree on numbering");
        }
        send(self.builder.bytes());
        self.builder.start(&self.session, self.next_seq);
    }

    /// The book the feed shows, as messages (every instrument's `R` and `H`, every visible
    /// order's `A` in priority order), with the session and the sequence number of the next
    /// message: what the snapshot port sends. None in the middle of a command.
    pub fn snapshot(&mut self) -> Option<(SessionName, u64, Vec<Vec<u8>>)> {
        if self.in_command || !self.msgs.is_empty() {
            return None;
        }
        self.translator.opening(false, &mut self.msgs);
        let encoded = self
            .msgs
            .drain(..)
            .map(|m| {
                let mut buf = [0u8; MAX_MESSAGE_LEN];
                let n = m.encode(&mut buf);
                buf[..n].to_vec()
            })
            .collect();
        Some((self.session, self.next_seq, encoded))
    }

    /// Sends the open packet, if any.
    pub fn flush(&mut self, send: &mut impl FnMut(&[u8])) {
        if self.builder.count() > 0 {
            self.send_packet(send);
        }
    }

    /// A heartbeat announcing the next sequence number.
    pub fn heartbeat(&self) -> [u8; mold::HEADER_LEN] {
        mold::heartbeat(&self.session, self.next_seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_the_utc_date() {
        assert_eq!(&session_name(0, *b"SB"), b"19700101SB");
        // 2026-12-06 is day 20793.
        assert_eq!(&session_name(20_793, *b"SB"), b"20261206SB");
        assert_eq!(&session_name(11_016, *b"SB"), b"20000229SB");
    }
}

#[cfg(test)]
mod packing_tests {
    use super::*;
    use crate::feed::mold::{END_OF_SESSION, parse_packet};
    use engine::{BookChange, CommandBody, Event, InstrumentId, OrderId, Side};

    fn add(id: u64) -> Event {
        Event::Book(BookChange::Add {
            instrument: InstrumentId(1),
            order_id: OrderId(id),
            side: Side::Buy,
            price_ticks: 100,
            qty_lots: 1,
        })
    }

    fn session(max: usize) -> FeedSession {
        let history = Arc::new(Mutex::new(History::new(1024)));
        FeedSession::new(Translator::new(&[], 64), history, max, *b"SB")
    }

    #[test]
    fn a_command_is_never_split_when_it_fits_a_packet_and_numbering_is_gap_free() {
        // Room for 4 Add Orders (2 + 36 bytes each) after the header.
        let mut s = session(mold::HEADER_LEN + 4 * 38);
        let mut packets: Vec<Vec<u8>> = Vec::new();
        let mut send = |p: &[u8]| packets.push(p.to_vec());
        let ts = 5 * NS_PER_DAY;
        // The first command also opens the session: S (12 bytes).
        s.command(1, ts, &CommandBody::Tick, &[], &mut send);
        s.command(2, ts, &CommandBody::Tick, &[add(1), add(2)], &mut send);
        // Three adds do not fit beside the S and two adds: a new packet holds all three.
        s.command(3, ts, &CommandBody::Tick, &[add(3), add(4), add(5)], &mut send);
        s.flush(&mut send);
        let parsed: Vec<_> =
            packets.iter().map(|p| parse_packet(p).map(|(h, b)| (h.seq, b.len())).expect("parses")).collect();
        assert_eq!(parsed, vec![(1, 3), (4, 3)]);
        assert_eq!(s.next_seq(), 7);
        assert!(packets.iter().all(|p| p.len() <= mold::HEADER_LEN + 4 * 38));
    }

    #[test]
    fn a_new_utc_day_ends_the_session_and_opens_the_next_with_the_book() {
        let mut s = session(1400);
        let mut packets: Vec<Vec<u8>> = Vec::new();
        let mut send = |p: &[u8]| packets.push(p.to_vec());
        s.command(1, NS_PER_DAY + 1, &CommandBody::Tick, &[add(1)], &mut send);
        s.flush(&mut send);
        let first = s.session();
        s.command(2, 2 * NS_PER_DAY + 1, &CommandBody::Tick, &[], &mut send);
        s.flush(&mut send);
        assert_ne!(s.session(), first);
        let headers: Vec<_> = packets.iter().map(|p| parse_packet(p).expect("parses").0).collect();
        // Day 1: S O + A; then S C; end of session at 4; day 2 from 1: S O + the resting A again.
        assert_eq!(
            headers.iter().map(|h| (h.seq, h.count)).collect::<Vec<_>>(),
            vec![(1, 2), (3, 1), (4, END_OF_SESSION), (1, 2)]
        );
        assert_eq!(headers[3].session, s.session());
    }
}
