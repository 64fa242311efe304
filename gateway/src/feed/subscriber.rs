//! The receiving side of the feed (`sable feed`, tests): joins the multicast group, numbers
//! what arrives, recovers gaps with MoldUDP64 re-requests, and keeps the book the messages
//! describe. Messages are handed on strictly in sequence order, each once.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use crate::feed::itch::Message;
use crate::feed::mold::{self, END_OF_SESSION, SessionName, parse_packet};

/// How long a subscriber waits for an answer before asking again for the same gap.
pub const REREQUEST_RETRY: Duration = Duration::from_millis(100);
/// Most messages one request asks for.
pub const REQUEST_MAX: u16 = crate::feed::MAX_REREQUEST_MESSAGES;
/// Most out-of-order messages held while a gap is recovered.
pub const MAX_PENDING: usize = 1 << 20;

/// One order on the book a subscriber keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookOrder {
    /// Stock locate (instrument).
    pub locate: u16,
    /// `B` or `S`.
    pub side: u8,
    /// Displayed shares.
    pub shares: u32,
    /// Price(4).
    pub price: u32,
    /// Arrival order (time priority within a price).
    pub arrival: u64,
}

/// The book the messages describe, order by order.
#[derive(Default)]
pub struct Book {
    orders: HashMap<u64, BookOrder>,
    /// Symbols by stock locate (from Stock Directory messages).
    pub symbols: HashMap<u16, String>,
    arrivals: u64,
}

/// A trade a message reported: (locate, shares, price, match number).
pub type Print = (u16, u32, u32, u64);

impl Book {
    /// Applies one message; the trade it reports, if any.
    pub fn apply(&mut self, m: &Message) -> Option<Print> {
        match *m {
            Message::StockDirectory { h, stock, .. } => {
                self.symbols.insert(h.stock_locate, String::from_utf8_lossy(&stock).trim_end().to_string());
            }
            Message::AddOrder { h, order_ref, side, shares, price, .. } => {
                self.add(order_ref, h.stock_locate, side, shares, price)
            }
            Message::Executed { order_ref, shares, match_number, .. } => {
                let o = self.reduce(order_ref, shares)?;
                return Some((o.locate, shares, o.price, match_number));
            }
            Message::ExecutedWithPrice { order_ref, shares, match_number, price, .. } => {
                let o = self.reduce(order_ref, shares)?;
                return Some((o.locate, shares, price, match_number));
            }
            Message::Cancel { order_ref, shares, .. } => {
                self.reduce(order_ref, shares);
            }
            Message::Delete { order_ref, .. } => {
                self.orders.remove(&order_ref);
            }
            Message::Replace { orig_ref, new_ref, shares, price, .. } => {
                if let Some(o) = self.orders.remove(&orig_ref) {
                    self.add(new_ref, o.locate, o.side, shares, price);
                }
            }
            Message::Trade { h, shares, price, match_number, .. } => {
                return Some((h.stock_locate, shares, price, match_number));
            }
            Message::SystemEvent { .. } | Message::TradingAction { .. } => {}
        }
        None
    }

    fn add(&mut self, order_ref: u64, locate: u16, side: u8, shares: u32, price: u32) {
        self.arrivals += 1;
        self.orders.insert(order_ref, BookOrder { locate, side, shares, price, arrival: self.arrivals });
    }

    fn reduce(&mut self, order_ref: u64, shares: u32) -> Option<BookOrder> {
        let o = self.orders.get_mut(&order_ref)?;
        o.shares = o.shares.saturating_sub(shares);
        let o = *o;
        if o.shares == 0 {
            self.orders.remove(&order_ref);
        }
        Some(o)
    }

    /// One side of one instrument, order by order: (price, shares), best price first, then
    /// time priority.
    pub fn side(&self, locate: u16, side: u8) -> Vec<(u32, u32)> {
        let mut v: Vec<&BookOrder> = self.orders.values().filter(|o| o.locate == locate && o.side == side).collect();
        v.sort_by_key(|o| (if side == b'B' { u32::MAX - o.price } else { o.price }, o.arrival));
        v.iter().map(|o| (o.price, o.shares)).collect()
    }

    /// Aggregated levels of one side: (price, shares, orders), best first.
    pub fn levels(&self, locate: u16, side: u8) -> Vec<(u32, u64, u32)> {
        let mut out: Vec<(u32, u64, u32)> = Vec::new();
        for (price, shares) in self.side(locate, side) {
            match out.last_mut() {
                Some(l) if l.0 == price => {
                    l.1 += u64::from(shares);
                    l.2 += 1;
                }
                _ => out.push((price, u64::from(shares), 1)),
            }
        }
        out
    }

    /// Orders on the book.
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    /// Whether the book is empty.
    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }
}

/// A feed subscriber.
pub struct Subscriber {
    multicast: mio::net::UdpSocket,
    unicast: mio::net::UdpSocket,
    poll: mio::Poll,
    events: mio::Events,
    rerequest: Option<SocketAddr>,
    session: Option<SessionName>,
    next: u64,
    pending: BTreeMap<u64, Vec<u8>>,
    asked: Option<(u64, Instant)>,
    known_end: u64,
    /// Drop every n-th multicast datagram on purpose (tests of gap recovery); 0 = none.
    pub drop_every: u64,
    received: u64,
    /// Datagrams dropped on purpose.
    pub dropped: u64,
    /// Re-requests sent.
    pub requests: u64,
    /// Whether the session ended (end-of-session packet seen).
    pub ended: bool,
    /// Heartbeats received.
    pub heartbeats: u64,
}

impl Subscriber {
    /// Joins `group` on `interface`; gaps are asked of `rerequest` when given.
    pub fn join(group: SocketAddrV4, interface: Ipv4Addr, rerequest: Option<SocketAddr>) -> std::io::Result<Self> {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_address(true)?;
        s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, group.port())).into())?;
        s.join_multicast_v4(group.ip(), &interface)?;
        s.set_recv_buffer_size(8 << 20)?;
        let multicast: UdpSocket = s.into();
        let unicast = UdpSocket::bind((interface, 0))?;
        multicast.set_nonblocking(true)?;
        unicast.set_nonblocking(true)?;
        let mut multicast = mio::net::UdpSocket::from_std(multicast);
        let mut unicast = mio::net::UdpSocket::from_std(unicast);
        let poll = mio::Poll::new()?;
        poll.registry().register(&mut multicast, mio::Token(0), mio::Interest::READABLE)?;
        poll.registry().register(&mut unicast, mio::Token(1), mio::Interest::READABLE)?;
        Ok(Subscriber {
            multicast,
            unicast,
            poll,
            events: mio::Events::with_capacity(4),
            rerequest,
            session: None,
            next: 0,
            pending: BTreeMap::new(),
            asked: None,
            known_end: 0,
            drop_every: 0,
            received: 0,
            dropped: 0,
            requests: 0,
            ended: false,
            heartbeats: 0,
        })
    }

    /// The session followed, once a packet arrived.
    pub fn session(&self) -> Option<SessionName> {
        self.session
    }

    /// The sequence number of the next message expected (0 before the first packet).
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Whether every message announced so far has been handed on (no gap open).
    pub fn in_sync(&self) -> bool {
        self.session.is_some() && self.pending.is_empty() && self.known_end <= self.next
    }

    /// Receives for up to `timeout`, handing each message in sequence to `on_msg`; returns
    /// the messages handed on.
    pub fn poll(&mut self, timeout: Duration, on_msg: &mut impl FnMut(u64, &Message)) -> std::io::Result<usize> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65_536];
        let mut handed = 0;
        loop {
            while let Ok(n) = self.unicast.recv(&mut buf) {
                handed += self.packet(&buf[..n], on_msg);
            }
            while let Ok(n) = self.multicast.recv(&mut buf) {
                self.received += 1;
                if self.drop_every > 0 && self.received.is_multiple_of(self.drop_every) {
                    self.dropped += 1;
                    continue;
                }
                handed += self.packet(&buf[..n], on_msg);
            }
            self.ask()?;
            let now = Instant::now();
            if now >= deadline {
                return Ok(handed);
            }
            // Readiness is edge-triggered: both sockets were read until they would block.
            let wait = (deadline - now).min(REREQUEST_RETRY);
            match self.poll.poll(&mut self.events, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn packet(&mut self, bytes: &[u8], on_msg: &mut impl FnMut(u64, &Message)) -> usize {
        let Ok((h, blocks)) = parse_packet(bytes) else { return 0 };
        if self.session != Some(h.session) {
            // A new session (or the first one): numbering starts again from 1.
            self.session = Some(h.session);
            self.next = 1;
            self.pending.clear();
            self.known_end = 0;
            self.ended = false;
        }
        if h.count == END_OF_SESSION {
            self.ended = true;
        }
        if h.count == 0 {
            self.heartbeats += 1;
        }
        if blocks.is_empty() {
            // Heartbeat or end of session: `seq` is the next message to come.
            if h.seq > self.next {
                self.gap_to(h.seq);
            }
            return 0;
        }
        let mut handed = 0;
        for (i, block) in blocks.iter().enumerate() {
            let seq = h.seq + i as u64;
            if seq == self.next {
                handed += self.hand(block, on_msg);
                while let Some(b) = self.pending.remove(&self.next) {
                    handed += self.hand(&b, on_msg);
                }
            } else if seq > self.next && self.pending.len() < MAX_PENDING {
                self.pending.entry(seq).or_insert_with(|| block.to_vec());
                self.gap_to(seq);
            }
        }
        handed
    }

    fn hand(&mut self, block: &[u8], on_msg: &mut impl FnMut(u64, &Message)) -> usize {
        let seq = self.next;
        self.next += 1;
        match Message::decode(block) {
            Ok(m) => {
                on_msg(seq, &m);
                1
            }
            Err(_) => 0,
        }
    }

    fn gap_to(&mut self, seen: u64) {
        self.known_end = self.known_end.max(seen);
    }

    /// Asks for the missing messages `next..known_end` (at most [`REQUEST_MAX`]): at once
    /// when the gap is new or moved, again after [`REREQUEST_RETRY`] without an answer.
    fn ask(&mut self) -> std::io::Result<()> {
        let (Some(session), Some(to)) = (self.session, self.rerequest) else { return Ok(()) };
        let end = self.known_end.max(self.pending.keys().next().copied().unwrap_or(0));
        if end <= self.next {
            self.asked = None;
            return Ok(());
        }
        if let Some((from, at)) = self.asked
            && from == self.next
            && at.elapsed() < REREQUEST_RETRY
        {
            return Ok(());
        }
        let count = (end - self.next).min(u64::from(REQUEST_MAX)) as u16;
        self.unicast.send_to(&mold::request(&session, self.next, count), to)?;
        self.requests += 1;
        self.asked = Some((self.next, Instant::now()));
        Ok(())
    }
}
