//! The open-loop load generator: one sender thread paces orders to a schedule of intended send
//! times over all connections; one receiver thread reads every connection through mio and
//! matches each order's first acknowledgement (ExecutionReport New or Rejected, or a
//! BusinessMessageReject) to it by `ClOrdId`. The protocol (SBE or FIX) is a type parameter
//! ([`super::wire`]): the same pacing, accounting and timestamps for both.
//!
//! Latency is measured from the order's intended send time (`start + i / rate`), not from when
//! the sender got round to it: a stall anywhere (appliance, kernel, generator) delays every
//! order scheduled during it, and those orders are charged for the wait (the coordinated-
//! omission correction). The figure from the actual send time is kept too, as "uncorrected".
//! The gap between the two, and the send-lag histogram, show how much of the delay is the
//! generator's own scheduling on the shared machine.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};

use super::Clock;
use super::wire::{AckReader, Inbound, OrderWriter};
use crate::machine::SchedStat;
use crate::report;

/// Orders the sender takes from the schedule in one go when it is behind: bounds the bytes
/// batched into one write per connection.
pub const MAX_BATCH_ORDERS: usize = 256;

/// How long the receiver waits for outstanding acknowledgements after the last send.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors kept per run (a broken run would otherwise log one per order); the rest are counted.
pub const MAX_ERRORS_KEPT: usize = 32;

/// Receive buffer per connection.
const RECV_BUF_BYTES: usize = 1 << 20;

/// Timer slack the sender asks for (`/proc/thread-self/timerslack_ns`), in ns: a `nanosleep`
/// ends up to the slack late, 50 us by default, which would make sleeping useless for pacing
/// at 10 us intervals.
pub const SENDER_TIMER_SLACK_NS: u64 = 1_000;

/// Pacing with [`SENDER_TIMER_SLACK_NS`] in effect: the sender sleeps only when the next send is
/// further away than the first figure, and wakes the second figure early (a wake-up on a busy
/// VM still takes microseconds); closer than that it spins with `yield_now`, which hands the
/// core to any runnable appliance thread.
const PACING_FINE_NS: (u64, u64) = (40_000, 25_000);

/// The same with the default 50 us timer slack (if the kernel refused the change).
const PACING_COARSE_NS: (u64, u64) = (200_000, 120_000);

/// Asks for a fine timer slack on the calling thread; true if the kernel took it. The knob is
/// `/proc/<tid>/timerslack_ns` (it is not under `/proc/self/task/<tid>/`).
fn set_timer_slack(ns: u64) -> bool {
    let Some(tid) = std::fs::read_to_string("/proc/thread-self/stat")
        .ok()
        .and_then(|s| s.split(' ').next().and_then(|t| t.parse::<u32>().ok()))
    else {
        return false;
    };
    let path = format!("/proc/{tid}/timerslack_ns");
    std::fs::write(&path, ns.to_string()).is_ok()
        && std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == ns.to_string())
}

/// One run's parameters.
#[derive(Clone, Copy, Debug)]
pub struct LoadSpec {
    /// Offered orders per second over all connections.
    pub rate_per_s: u64,
    /// Orders in the run (`rate * seconds`).
    pub orders: u64,
    /// Connections.
    pub connections: usize,
    /// With windows (non-zero): the run's time cut into windows of this many ns by intended
    /// send time, each order's latency also recorded in its window's arm ([`window_arm`]).
    pub window_ns: u64,
}

/// The arm (0 or 1) of window `k`: A B B A, repeated, so that a drift over the run weighs on
/// both arms alike.
#[inline]
pub fn window_arm(k: u64) -> usize {
    [0, 1, 1, 0][(k % 4) as usize]
}

impl LoadSpec {
    /// Intended send time of order `i`, in ns after the run's start.
    #[inline]
    pub fn due_ns(&self, i: u64) -> u64 {
        (u128::from(i) * 1_000_000_000 / u128::from(self.rate_per_s)) as u64
    }
}

/// What a run measured.
pub struct LoadResult {
    /// Ack time minus intended send time (ns), per order: the corrected latency.
    pub corrected: Histogram<u64>,
    /// Ack time minus actual send time (ns), per order.
    pub uncorrected: Histogram<u64>,
    /// Actual minus intended send time (ns), per order: how late the generator sent.
    pub send_lag: Histogram<u64>,
    /// Orders written to sockets.
    pub sent: u64,
    /// Orders whose first acknowledgement was an ExecutionReport New.
    pub acked_new: u64,
    /// Orders whose first acknowledgement was a reject (ExecutionReport Rejected or
    /// BusinessMessageReject).
    pub rejected: u64,
    /// Orders sent that got no acknowledgement before the drain timeout.
    pub lost: u64,
    /// Orders that got a second New or reject (must be 0).
    pub duplicates: u64,
    /// ExecutionReport Trade received (taker and maker sides).
    pub trades: u64,
    /// ExecutionReport Canceled received (IOC remainders).
    pub cancels: u64,
    /// Other server messages.
    pub other: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// From the first intended send to the last acknowledgement, in ns.
    pub span_ns: u64,
    /// Whether the sender gave up on the schedule (the run's time bound passed).
    pub sender_gave_up: bool,
    /// Whether the sender runs with [`SENDER_TIMER_SLACK_NS`] (else the default 50 us).
    pub sender_fine_timer: bool,
    /// CPU of the sender thread.
    pub sender_cpu: SchedStat,
    /// CPU of the receiver thread.
    pub receiver_cpu: SchedStat,
    /// Errors (closed connections, Terminate or Logout, undecodable frames), the first
    /// [`MAX_ERRORS_KEPT`] of them.
    pub errors: Vec<String>,
    /// Errors in all.
    pub error_count: u64,
    /// The engine order id each order's acknowledgement carried (by order index; 0: none).
    pub order_ids: Vec<u64>,
    /// With windows ([`LoadSpec::window_ns`]): the corrected latency of the orders due in arm
    /// 0's windows and in arm 1's.
    pub windows: [Histogram<u64>; 2],
    /// With a feed probe: order → ITCH Add Order (intended send time → arrival, ns) and how
    /// many Add Orders matched an order of the run ([`super::feed_probe`]).
    pub order_to_itch: Option<(Histogram<u64>, u64)>,
}

impl LoadResult {
    fn error(&mut self, e: String) {
        self.error_count += 1;
        if self.errors.len() < MAX_ERRORS_KEPT {
            self.errors.push(e);
        }
    }
}

/// Runs the load over the logged-in `streams` (one per connection, in connection order): the
/// sender writes orders with `writer`, the receiver reads the server's messages with `reader`;
/// with `feed` (the market-data group), a subscriber measures order → Add Order too; with
/// `on_window`, the sender calls it as it reaches each window ([`LoadSpec::window_ns`]).
/// Blocks until every order is acknowledged or the drain timeout passes after the last send;
/// the whole run is bounded by `time_bound`.
pub fn run<W: OrderWriter, R: AckReader>(
    spec: LoadSpec,
    streams: Vec<TcpStream>,
    (writer, reader): (W, R),
    feed: Option<std::net::SocketAddrV4>,
    on_window: Option<OnWindow>,
    time_bound: Duration,
) -> Result<LoadResult, String> {
    assert_eq!(streams.len(), spec.connections, "one stream per connection");
    assert!(spec.rate_per_s > 0 && spec.orders > 0, "rate and orders must be positive");
    let n = usize::try_from(spec.orders).map_err(|_| "too many orders".to_string())?;
    // Actual send time + 1 of each order (0: not sent yet), written by the sender before the
    // order's bytes reach the socket, read by the receiver when its acknowledgement arrives.
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let sent_total = Arc::new(AtomicU64::new(0));
    let sender_done = Arc::new(AtomicBool::new(false));

    let mut send_streams = Vec::with_capacity(streams.len());
    let mut recv_streams = Vec::with_capacity(streams.len());
    for s in streams {
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
        send_streams.push(s.try_clone().map_err(|e| e.to_string())?);
        recv_streams.push(mio::net::TcpStream::from_std(s));
    }

    let clock = Clock::new();
    let probe = feed.map(|group| super::feed_probe::FeedProbe::start(group, clock)).transpose()?;
    // Both threads start a little later so that thread creation is not in the first sends.
    let start_ns = clock.now_ns() + 20_000_000;
    let bound_ns = start_ns + time_bound.as_nanos() as u64;

    let sender = {
        let sent_at = Arc::clone(&sent_at);
        let sent_total = Arc::clone(&sent_total);
        let sender_done = Arc::clone(&sender_done);
        std::thread::Builder::new()
            .name("e2e-sender".into())
            .spawn(move || {
                let on_window = on_window.map(|f| (f, u64::MAX));
                let progress = Progress { sent_at: &sent_at, sent_total: &sent_total, on_window };
                let r = send_loop(spec, send_streams, writer, clock, start_ns, bound_ns, progress);
                sender_done.store(true, Ordering::Release);
                r
            })
            .map_err(|e| e.to_string())?
    };
    let receiver = {
        let sent_at = Arc::clone(&sent_at);
        let sent_total = Arc::clone(&sent_total);
        let sender_done = Arc::clone(&sender_done);
        std::thread::Builder::new()
            .name("e2e-receiver".into())
            .spawn(move || {
                receive_loop(spec, recv_streams, reader, clock, start_ns, &sent_at, &sent_total, &sender_done)
            })
            .map_err(|e| e.to_string())?
    };
    let sent = sender.join().map_err(|_| "the sender panicked".to_string())?;
    let mut result = receiver.join().map_err(|_| "the receiver panicked".to_string())?;
    let (sender_cpu, send_lag, gave_up, fine_timer, send_errors) = sent;
    result.sender_fine_timer = fine_timer;
    result.sender_cpu = sender_cpu;
    result.send_lag = send_lag;
    result.sender_gave_up = gave_up;
    for e in send_errors {
        result.error(e);
    }
    if let Some(probe) = probe {
        let arrivals = probe.finish();
        result.order_to_itch = Some(super::feed_probe::latency(&arrivals, &result.order_ids, start_ns, spec));
    }
    Ok(result)
}

type SendOutcome = (SchedStat, Histogram<u64>, bool, bool, Vec<String>);

/// Writes all of `buf` to a non-blocking socket, yielding while the socket buffer is full.
fn write_all(s: &mut TcpStream, mut buf: &[u8]) -> Result<(), std::io::Error> {
    while !buf.is_empty() {
        match s.write(buf) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(k) => buf = &buf[k..],
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => std::thread::yield_now(),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Nanoseconds since the Unix epoch now (for the send times protocols carry).
fn unix_now_ns() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Called by the sender with the number of the window it has just reached (from 0), before
/// it sends that window's first order ([`LoadSpec::window_ns`]).
pub type OnWindow = Box<dyn FnMut(u64) + Send>;

/// What the sender tells the others as it goes.
struct Progress<'a> {
    /// Actual send time + 1 per order.
    sent_at: &'a [AtomicU64],
    /// Orders sent.
    sent_total: &'a AtomicU64,
    /// Told each window as the sender reaches it, and the last one told.
    on_window: Option<(OnWindow, u64)>,
}

impl Progress<'_> {
    /// The sender is about to send order `next`.
    fn reached(&mut self, spec: &LoadSpec, next: u64) {
        if let Some((on_window, last)) = self.on_window.as_mut()
            && let Some(k) = spec.due_ns(next).checked_div(spec.window_ns)
            && *last != k
        {
            *last = k;
            on_window(k);
        }
    }
}

fn send_loop<W: OrderWriter>(
    spec: LoadSpec,
    mut streams: Vec<TcpStream>,
    mut writer: W,
    clock: Clock,
    start_ns: u64,
    bound_ns: u64,
    mut progress: Progress<'_>,
) -> SendOutcome {
    let (sent_at, sent_total) = (progress.sent_at, progress.sent_total);
    // Wall-clock time of the run clock's zero: a protocol's send time (FIX SendingTime) is
    // this plus the monotonic clock, one `clock_gettime` per order, not two.
    let unix_at_zero_ns = unix_now_ns() - clock.now_ns() as i64;
    let fine_timer = set_timer_slack(SENDER_TIMER_SLACK_NS);
    let (sleep_threshold_ns, sleep_margin_ns) = if fine_timer { PACING_FINE_NS } else { PACING_COARSE_NS };
    let cpu0 = SchedStat::now().unwrap_or_default();
    let mut lag = report::histogram();
    let mut errors = Vec::new();
    let conns = spec.connections as u64;
    let mut bufs: Vec<Vec<u8>> =
        (0..spec.connections).map(|_| vec![0u8; MAX_BATCH_ORDERS * W::MAX_ORDER_BYTES]).collect();
    let mut fill = vec![0usize; spec.connections];
    let mut dead = vec![false; spec.connections];
    let mut next: u64 = 0;
    let mut gave_up = false;
    while next < spec.orders {
        let due = start_ns + spec.due_ns(next);
        let mut now = clock.now_ns();
        while now < due {
            let ahead = due - now;
            if ahead > sleep_threshold_ns {
                std::thread::sleep(Duration::from_nanos(ahead - sleep_margin_ns));
            } else {
                std::thread::yield_now();
            }
            now = clock.now_ns();
        }
        if now > bound_ns {
            gave_up = true;
            break;
        }
        progress.reached(&spec, next);
        // Everything due by now, up to the batch limit, goes out in one write per connection.
        let mut batch = 0;
        while next < spec.orders && batch < MAX_BATCH_ORDERS && start_ns + spec.due_ns(next) <= now {
            let c = (next % conns) as usize;
            let at = fill[c];
            // The batch buffer holds MAX_BATCH_ORDERS orders of MAX_ORDER_BYTES.
            fill[c] = at + writer.write_order(c, next, unix_at_zero_ns + now as i64, &mut bufs[c][at..]);
            lag.saturating_record((now - (start_ns + spec.due_ns(next))).max(1));
            sent_at[next as usize].store(now + 1, Ordering::Release);
            next += 1;
            batch += 1;
        }
        for c in 0..spec.connections {
            if fill[c] == 0 {
                continue;
            }
            if !dead[c]
                && let Err(e) = write_all(&mut streams[c], &bufs[c][..fill[c]])
            {
                dead[c] = true;
                errors.push(format!("connection {c}: send failed: {e}"));
            }
            fill[c] = 0;
        }
        sent_total.store(next, Ordering::Release);
    }
    let cpu = SchedStat::now().unwrap_or_default().since(cpu0);
    (cpu, lag, gave_up, fine_timer, errors)
}

struct Conn {
    stream: mio::net::TcpStream,
    buf: Vec<u8>,
    len: usize,
    open: bool,
}

#[allow(clippy::too_many_arguments)]
fn receive_loop<R: AckReader>(
    spec: LoadSpec,
    streams: Vec<mio::net::TcpStream>,
    mut reader: R,
    clock: Clock,
    start_ns: u64,
    sent_at: &[AtomicU64],
    sent_total: &AtomicU64,
    sender_done: &AtomicBool,
) -> LoadResult {
    let cpu0 = SchedStat::now().unwrap_or_default();
    let mut r = LoadResult {
        corrected: report::histogram(),
        uncorrected: report::histogram(),
        send_lag: report::histogram(),
        sent: 0,
        acked_new: 0,
        rejected: 0,
        lost: 0,
        duplicates: 0,
        trades: 0,
        cancels: 0,
        other: 0,
        bytes_in: 0,
        span_ns: 0,
        sender_gave_up: false,
        sender_fine_timer: false,
        sender_cpu: SchedStat::default(),
        receiver_cpu: SchedStat::default(),
        errors: Vec::new(),
        error_count: 0,
        order_ids: vec![0; spec.orders as usize],
        windows: [report::histogram(), report::histogram()],
        order_to_itch: None,
    };
    let mut acks = vec![0u8; spec.orders as usize];
    let mut acked: u64 = 0;
    let mut last_ack_ns = start_ns;
    let mut poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => {
            r.error(format!("creating the poller: {e}"));
            return r;
        }
    };
    let mut conns: Vec<Conn> = Vec::with_capacity(streams.len());
    for (c, mut stream) in streams.into_iter().enumerate() {
        if let Err(e) = poll.registry().register(&mut stream, Token(c), Interest::READABLE) {
            r.error(format!("registering connection {c}: {e}"));
        }
        conns.push(Conn { stream, buf: vec![0u8; RECV_BUF_BYTES], len: 0, open: true });
    }
    let mut events = Events::with_capacity(64);
    let mut drain_deadline: Option<u64> = None;
    loop {
        if sender_done.load(Ordering::Acquire) {
            let sent = sent_total.load(Ordering::Acquire);
            if acked >= sent {
                break;
            }
            let now = clock.now_ns();
            let deadline = *drain_deadline.get_or_insert(now + DRAIN_TIMEOUT.as_nanos() as u64);
            if now > deadline || conns.iter().all(|c| !c.open) {
                break;
            }
        }
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(20))) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            r.error(format!("poll: {e}"));
            break;
        }
        for ev in events.iter() {
            let c = ev.token().0;
            let conn = &mut conns[c];
            // Edge-triggered: read until the socket is empty.
            while conn.open {
                if conn.len == conn.buf.len() {
                    r.error(format!("connection {c}: a frame larger than the receive buffer"));
                    conn.open = false;
                    break;
                }
                match conn.stream.read(&mut conn.buf[conn.len..]) {
                    Ok(0) => {
                        r.error(format!("connection {c}: closed by the appliance"));
                        conn.open = false;
                    }
                    Ok(k) => {
                        conn.len += k;
                        r.bytes_in += k as u64;
                        let now = clock.now_ns();
                        let used = handle_frames(
                            &mut reader,
                            &conn.buf[..conn.len],
                            c,
                            now,
                            start_ns,
                            spec,
                            sent_at,
                            &mut acks,
                            &mut acked,
                            &mut r,
                        );
                        match used {
                            Ok(used) => {
                                if used > 0 {
                                    last_ack_ns = now;
                                }
                                conn.buf.copy_within(used..conn.len, 0);
                                conn.len -= used;
                            }
                            Err(e) => {
                                r.error(format!("connection {c}: {e}"));
                                conn.open = false;
                            }
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        r.error(format!("connection {c}: read failed: {e}"));
                        conn.open = false;
                    }
                }
            }
        }
    }
    r.sent = sent_total.load(Ordering::Acquire);
    r.lost = acks[..r.sent as usize].iter().filter(|&&a| a == 0).count() as u64;
    r.span_ns = last_ack_ns.saturating_sub(start_ns);
    r.receiver_cpu = SchedStat::now().unwrap_or_default().since(cpu0);
    r
}

/// Consumes the complete frames at the start of `buf`; returns the bytes used.
#[allow(clippy::too_many_arguments)]
fn handle_frames<R: AckReader>(
    reader: &mut R,
    mut buf: &[u8],
    c: usize,
    now: u64,
    start_ns: u64,
    spec: LoadSpec,
    sent_at: &[AtomicU64],
    acks: &mut [u8],
    acked: &mut u64,
    r: &mut LoadResult,
) -> Result<usize, String> {
    let mut used = 0;
    while let Some((len, msg)) = reader.next_frame(buf)? {
        let first_ack_of = match msg {
            Inbound::Ack { order, reject, order_id } => {
                if let Some(slot) = order.and_then(|i| r.order_ids.get_mut(i as usize)) {
                    *slot = order_id;
                }
                Some((order, reject))
            }
            Inbound::Trade => {
                r.trades += 1;
                None
            }
            Inbound::Cancel => {
                r.cancels += 1;
                None
            }
            Inbound::Other => {
                r.other += 1;
                None
            }
        };
        if let Some((id, reject)) = first_ack_of {
            match id {
                Some(i) if i < spec.orders && (i % spec.connections as u64) as usize == c => {
                    let slot = &mut acks[i as usize];
                    if *slot == 0 {
                        *acked += 1;
                        if reject {
                            r.rejected += 1;
                        } else {
                            r.acked_new += 1;
                        }
                        let latency = now.saturating_sub(start_ns + spec.due_ns(i)).max(1);
                        r.corrected.saturating_record(latency);
                        if let Some(k) = spec.due_ns(i).checked_div(spec.window_ns) {
                            r.windows[window_arm(k)].saturating_record(latency);
                        }
                        let sent = sent_at[i as usize].load(Ordering::Acquire);
                        if sent > 0 {
                            r.uncorrected.saturating_record(now.saturating_sub(sent - 1).max(1));
                        }
                    } else {
                        r.duplicates += 1;
                    }
                    *slot = slot.saturating_add(1);
                }
                _ => r.error(format!("connection {c}: an acknowledgement for an order it did not send")),
            }
        }
        used += len;
        buf = &buf[len..];
    }
    Ok(used)
}
