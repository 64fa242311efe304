//! Stage: the market-data feed, on its own thread (`sable-feed`). Takes the output slots the
//! publisher forwards (`feed/tap.rs`), releases those whose input is durable (`seq ≤
//! seq_durable`, the publisher's gate, checked again here because under `memory` durability
//! the publisher does not wait), turns them into ITCH messages in MoldUDP64 packets
//! (`feed::session`) and sends them to the multicast group. Idle, it parks until woken or
//! until the next heartbeat is due (about once a second): it never spins.
//!
//! Beside it, when configured, the re-request server (`sable-feed-rereq`): a unicast UDP
//! socket that answers MoldUDP64 requests from the retained history.

use std::collections::VecDeque;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use disruptor::Polling;

use crate::feed::history::History;
use crate::feed::mold::{self, PacketBuilder, PacketHeader};
use crate::feed::session::FeedSession;
use crate::feed::tap::Doorbell;
use crate::feed::{FeedAddrs, GATE_RECHECK_US, MAX_REREQUEST_MESSAGES, REREQUEST_POLL_MS};
use crate::rings::{OutSlot, OutputPoller, Shared};

/// What the feed thread needs.
pub(crate) struct FeedStage {
    /// The feed's session state (rebuilt from the journal).
    pub(crate) session: FeedSession,
    /// The feed ring's consumer end.
    pub(crate) poller: OutputPoller,
    /// Positions (`seq_durable`).
    pub(crate) shared: Arc<Shared>,
    /// The sending socket (multicast options set).
    pub(crate) socket: UdpSocket,
    /// Where packets go.
    pub(crate) group: SocketAddrV4,
    /// Heartbeat period.
    pub(crate) heartbeat: Duration,
    /// Wake-ups from the tap.
    pub(crate) doorbell: Arc<Doorbell>,
    /// Snapshot requests of the SoupBinTCP port.
    pub(crate) snapshots: Arc<crate::stage::feed_snapshot::Snapshots>,
}

/// Opens the sending socket: multicast interface, TTL and loop as configured.
pub(crate) fn multicast_socket(addrs: &FeedAddrs, ttl: u32, loopback: bool) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_multicast_if_v4(&addrs.interface)?;
    s.set_multicast_ttl_v4(ttl)?;
    s.set_multicast_loop_v4(loopback)?;
    s.bind(&SocketAddr::from((addrs.interface, 0)).into())?;
    Ok(s.into())
}

/// The running feed: its thread and the re-request server's.
pub(crate) struct FeedThread {
    feed: JoinHandle<()>,
    rerequest: Option<(JoinHandle<()>, Arc<AtomicBool>)>,
    soup: Option<crate::stage::feed_snapshot::SoupThread>,
}

/// How often a joining owner wakes the feed thread until it ends.
const JOIN_POLL: Duration = Duration::from_millis(1);

impl FeedThread {
    /// Waits for the feed thread (it ends when the publisher's tap is dropped), then stops the
    /// re-request server.
    pub(crate) fn join(self) {
        // It may be parked for up to a heartbeat period: wake it until it has seen the end
        // (a step-down's handover waits for this process to exit).
        while !self.feed.is_finished() {
            self.feed.thread().unpark();
            std::thread::sleep(JOIN_POLL);
        }
        if self.feed.join().is_err() {
            tracing::error!("the feed thread panicked");
        }
        if let Some((h, stop)) = self.rerequest {
            stop.store(true, Ordering::Release);
            let _ = h.join();
        }
        if let Some(s) = self.soup {
            s.stop();
        }
    }

    /// The feed thread's handle, for the tap to unpark it.
    pub(crate) fn thread(&self) -> std::thread::Thread {
        self.feed.thread().clone()
    }
}

impl FeedStage {
    /// Spawns `sable-feed` and, with a socket, `sable-feed-rereq`.
    pub(crate) fn spawn(
        self,
        rerequest: Option<UdpSocket>,
        history: Arc<Mutex<History>>,
        max_datagram_bytes: usize,
    ) -> std::io::Result<FeedThread> {
        let rerequest = match rerequest {
            Some(socket) => {
                let stop = Arc::new(AtomicBool::new(false));
                let s = Arc::clone(&stop);
                let h = std::thread::Builder::new()
                    .name("sable-feed-rereq".into())
                    .spawn(move || serve_rerequests(&socket, &history, &s, max_datagram_bytes))?;
                Some((h, stop))
            }
            None => None,
        };
        let feed = std::thread::Builder::new().name("sable-feed".into()).spawn(move || self.run())?;
        Ok(FeedThread { feed, rerequest, soup: None })
    }

    fn run(mut self) {
        let mut held: VecDeque<OutSlot> = VecDeque::with_capacity(crate::feed::FEED_BATCH as usize);
        let mut last_sent = Instant::now();
        let mut send_errors = 0u64;
        let (socket, group) = (&self.socket, self.group);
        let mut send = |b: &[u8]| {
            if let Err(e) = socket.send_to(b, group) {
                send_errors += 1;
                if send_errors.is_power_of_two() {
                    tracing::warn!(error = %e, send_errors, "feed: sending a datagram failed");
                }
            }
        };
        let mut shutdown = false;
        self.shared.metrics.feed.enabled.set(1);
        loop {
            let durable = self.shared.seq_durable.load(Ordering::Acquire);
            let (mut released, ended) = take_batch(&mut self.poller, &mut self.session, durable, &mut held, &mut send);
            shutdown |= ended;
            answer_snapshots(&self.snapshots, &mut self.session);
            let durable = self.shared.seq_durable.load(Ordering::Acquire);
            while let Some(slot) = held.front().filter(|s| s.seq <= durable) {
                self.session.on_slot(slot, &mut send);
                held.pop_front();
                released = true;
            }
            if released {
                self.session.flush(&mut send);
                let m = &self.shared.metrics.feed;
                m.sequence.set(self.session.next_seq() - 1);
                m.input_seq.set(self.session.input_seq());
                last_sent = Instant::now();
                continue;
            }
            if !held.is_empty() {
                if shutdown && self.shared.failure().is_some() {
                    // A stage failed: what is held will never be durable; it is not shown.
                    return;
                }
                // Output not yet durable (`memory` durability): look again shortly.
                std::thread::park_timeout(Duration::from_micros(GATE_RECHECK_US));
                continue;
            }
            if shutdown {
                return;
            }
            if last_sent.elapsed() >= self.heartbeat && self.session.input_seq() > 0 {
                send(&self.session.heartbeat());
                last_sent = Instant::now();
            }
            self.doorbell.sleeping.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if self.poller_has_work() {
                self.doorbell.sleeping.store(false, Ordering::SeqCst);
                continue;
            }
            std::thread::park_timeout(self.heartbeat.saturating_sub(last_sent.elapsed()).max(Duration::from_millis(1)));
            self.doorbell.sleeping.store(false, Ordering::SeqCst);
        }
    }

    fn poller_has_work(&self) -> bool {
        self.poller.has_available()
    }
}

/// Takes the next batch from the ring: slots whose input is durable go straight to the
/// session while nothing is held back (in order, so the gate is the same), the rest are copied
/// aside into `held`. Returns (something was released, the ring has shut down).
fn take_batch(
    poller: &mut OutputPoller,
    session: &mut FeedSession,
    durable: u64,
    held: &mut VecDeque<OutSlot>,
    send: &mut impl FnMut(&[u8]),
) -> (bool, bool) {
    let mut released = false;
    match poller.take(crate::feed::FEED_BATCH) {
        Ok(mut guard) => {
            for slot in &mut guard {
                if held.is_empty() && slot.seq <= durable {
                    session.on_slot(slot, send);
                    released = true;
                } else {
                    held.push_back(*slot);
                }
            }
            (released, false)
        }
        Err(Polling::NoEvents) => (false, false),
        Err(Polling::Shutdown) => (false, true),
    }
}

/// Takes a snapshot for the SoupBinTCP port when one is wanted and the feed is between two
/// commands (else at the next turn).
fn answer_snapshots(snapshots: &crate::stage::feed_snapshot::Snapshots, session: &mut FeedSession) {
    if !snapshots.wanted.swap(false, Ordering::AcqRel) {
        return;
    }
    let Some((name, next_seq, messages)) = session.snapshot() else {
        snapshots.wanted.store(true, Ordering::Release);
        return;
    };
    let snap = crate::stage::feed_snapshot::Snapshot { session: name, next_seq, messages };
    for tx in snapshots.waiting.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
        let _ = tx.send(snap.clone());
    }
}

/// The re-request server: answers each MoldUDP64 request of the current session from the
/// retained history, up to [`MAX_REREQUEST_MESSAGES`] messages, in packets like the live
/// ones, to the requester's address. Requests for another session or for messages no longer
/// retained get nothing (the subscriber then needs the snapshot).
fn serve_rerequests(socket: &UdpSocket, history: &Mutex<History>, stop: &AtomicBool, max_bytes: usize) {
    if let Err(e) = socket.set_read_timeout(Some(Duration::from_millis(REREQUEST_POLL_MS))) {
        tracing::error!(error = %e, "feed: re-request server cannot set a read timeout; not serving");
        return;
    }
    let mut buf = [0u8; 64];
    let mut builder = PacketBuilder::new(max_bytes);
    let mut packets: Vec<Vec<u8>> = Vec::new();
    while !stop.load(Ordering::Acquire) {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "feed: re-request receive failed");
                continue;
            }
        };
        let Ok(req) = PacketHeader::parse(&buf[..n]) else { continue };
        answer(&req, &history.lock().unwrap_or_else(|p| p.into_inner()), &mut builder, &mut packets);
        for p in packets.drain(..) {
            if let Err(e) = socket.send_to(&p, from) {
                tracing::warn!(error = %e, %from, "feed: re-request answer failed");
            }
        }
    }
}

/// The packets answering `req` from `history`.
pub(crate) fn answer(req: &PacketHeader, history: &History, builder: &mut PacketBuilder, out: &mut Vec<Vec<u8>>) {
    if req.session != history.session() || req.count == 0 || req.count == mold::END_OF_SESSION {
        return;
    }
    let last = req.seq.saturating_add(u64::from(req.count.min(MAX_REREQUEST_MESSAGES)));
    let mut seq = req.seq;
    builder.start(&req.session, seq);
    while seq < last {
        let Some(msg) = history.get(seq) else { break };
        if !builder.push(msg) {
            out.push(builder.bytes().to_vec());
            builder.start(&req.session, seq);
            continue;
        }
        seq += 1;
    }
    if builder.count() > 0 {
        out.push(builder.bytes().to_vec());
    }
}

/// A started feed: the publisher's tap, the threads, the bound addresses.
pub(crate) struct FeedStart {
    /// For the publisher ([`crate::stage::publisher::Publisher::set_feed`]).
    pub(crate) tap: crate::feed::tap::FeedTap,
    /// The threads, joined after the publisher is gone.
    pub(crate) thread: FeedThread,
    /// Where the packets go.
    pub(crate) group: SocketAddrV4,
    /// The bound re-request address, when on.
    pub(crate) rerequest: Option<SocketAddr>,
    /// The bound snapshot/replay address, when on.
    pub(crate) snapshot: Option<SocketAddr>,
}

/// The feed before its threads start: its history, and its session rebuilt from the journal
/// or (the journal no longer starts at 1) a translator waiting for the restored book.
pub(crate) struct Prepared {
    addrs: crate::feed::FeedAddrs,
    /// The publisher → feed ring, allocated here too (off the start-up's main thread).
    ring: (crate::rings::OutputPoller, crate::rings::OutputProducer),
    history: Arc<Mutex<History>>,
    session: Result<crate::feed::session::FeedSession, crate::feed::translate::Translator>,
}

/// With `[feed] enabled`: the feed's session rebuilt by replaying the journal from 1 into an
/// engine of its own. It reads only the journal, so it runs beside the restore.
pub(crate) fn prepare<S: journal::Storage>(
    cfg: &crate::config::Validated,
    journal: &journal::Journal<S>,
) -> Result<Option<Prepared>, crate::pipeline::PipelineError> {
    use crate::feed::{rebuild, session::FeedSession, translate::Translator};
    use crate::pipeline::PipelineError;
    let f = &cfg.raw.feed;
    let Some(addrs) = f.validate().map_err(|e| PipelineError::Config(e.to_string()))? else { return Ok(None) };
    let history = Arc::new(Mutex::new(History::new(f.retained_messages)));
    let translator = Translator::new(&f.attribution_map(), cfg.limits.max_orders as usize);
    let (poller, builder) =
        disruptor::build_single_producer(f.ring_slots, OutSlot::default, disruptor::BusySpin).new_event_poller();
    let ring = (poller, builder.build());
    if journal.first_seq() > 1 {
        return Ok(Some(Prepared { addrs, ring, history, session: Err(translator) }));
    }
    let mut s = FeedSession::new(translator, Arc::clone(&history), f.max_datagram_bytes, rebuild::SUFFIX);
    let replayed = rebuild::replay(journal, cfg.limits, &mut s, &mut |_| {})
        .map_err(|e| PipelineError::Stage(format!("feed: {e}")))?;
    tracing::info!(replayed, next_seq = s.next_seq(), "feed rebuilt from the journal");
    Ok(Some(Prepared { addrs, ring, history, session: Ok(s) }))
}

/// Starts a prepared feed: seeds its session from the restored engine when the journal did
/// not reach back to 1, opens its sockets and starts its threads.
pub(crate) fn start(
    cfg: &crate::config::Validated,
    prepared: Option<Prepared>,
    engine: &engine::Engine,
    shared: &Arc<Shared>,
) -> Result<Option<FeedStart>, crate::pipeline::PipelineError> {
    use crate::feed::{rebuild, session::FeedSession, tap};
    use crate::pipeline::PipelineError;
    let Some(Prepared { addrs, ring: (poller, producer), history, session }) = prepared else { return Ok(None) };
    let f = &cfg.raw.feed;
    let io = |what| move |source| PipelineError::Io { what, source };
    let session = session.unwrap_or_else(|translator| {
        tracing::warn!("feed: the journal no longer starts at 1; starting a new feed session from the restored book");
        let mut s = FeedSession::new(translator, Arc::clone(&history), f.max_datagram_bytes, rebuild::RESEEDED_SUFFIX);
        rebuild::seed(engine, &mut s);
        s
    });
    let socket = multicast_socket(&addrs, f.ttl, f.loopback).map_err(io("opening the feed's multicast socket"))?;
    let (rerequest_socket, rerequest) = match addrs.rerequest {
        Some(a) => {
            let s = UdpSocket::bind(a).map_err(io("binding the feed's re-request address"))?;
            let bound = s.local_addr().map_err(io("binding the feed's re-request address"))?;
            (Some(s), Some(bound))
        }
        None => (None, None),
    };
    let doorbell = Arc::new(tap::Doorbell::default());
    let snapshots = Arc::new(crate::stage::feed_snapshot::Snapshots::default());
    let soup_listener = match addrs.snapshot {
        Some(a) => Some(std::net::TcpListener::bind(a).map_err(io("binding the feed's snapshot address"))?),
        None => None,
    };
    let snapshot = match &soup_listener {
        Some(l) => Some(l.local_addr().map_err(io("binding the feed's snapshot address"))?),
        None => None,
    };
    let stage = FeedStage {
        session,
        poller,
        shared: Arc::clone(shared),
        socket,
        group: addrs.group,
        heartbeat: Duration::from_millis(f.heartbeat_ms),
        doorbell: Arc::clone(&doorbell),
        snapshots: Arc::clone(&snapshots),
    };
    let soup_history = Arc::clone(&history);
    let mut thread =
        stage.spawn(rerequest_socket, history, f.max_datagram_bytes).map_err(io("spawning the feed threads"))?;
    if let Some(l) = soup_listener {
        let soup = crate::stage::feed_snapshot::spawn(l, soup_history, snapshots, thread.thread())
            .map_err(io("spawning the feed's snapshot port"))?;
        thread.soup = Some(soup);
    }
    let tap = tap::FeedTap::new(producer, doorbell, thread.thread());
    tracing::info!(group = %addrs.group, rerequest = ?rerequest, "market-data feed on");
    Ok(Some(FeedStart { tap, thread, group: addrs.group, rerequest, snapshot }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_answered_from_history_in_packets_of_the_limit() {
        let mut history = History::new(100);
        let session = *b"20261206SB";
        history.reset(session);
        for i in 0..50u8 {
            history.push(&[b'D'; 19].map(|b| b ^ i));
        }
        // Room for 3 Order Deletes (2 + 19 bytes) per packet.
        let mut builder = PacketBuilder::new(mold::HEADER_LEN + 3 * 21);
        let mut out = Vec::new();
        answer(&PacketHeader { session, seq: 10, count: 7 }, &history, &mut builder, &mut out);
        let got: Vec<_> =
            out.iter().map(|p| mold::parse_packet(p).map(|(h, b)| (h.seq, b.len())).expect("parses")).collect();
        assert_eq!(got, vec![(10, 3), (13, 3), (16, 1)]);
        let (_, blocks) = mold::parse_packet(&out[0]).expect("parses");
        assert_eq!(blocks[0], history.get(10).expect("retained"));
        // Beyond what exists, another session, a heartbeat-like count: nothing or only what exists.
        out.clear();
        answer(&PacketHeader { session, seq: 49, count: 5 }, &history, &mut builder, &mut out);
        assert_eq!(out.len(), 1);
        out.clear();
        answer(&PacketHeader { session: *b"OTHERSESSN", seq: 1, count: 5 }, &history, &mut builder, &mut out);
        answer(&PacketHeader { session, seq: 1, count: 0 }, &history, &mut builder, &mut out);
        answer(&PacketHeader { session, seq: 60, count: 5 }, &history, &mut builder, &mut out);
        assert!(out.is_empty());
    }
}
