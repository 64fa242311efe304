//! What the pipeline's threads record, grouped by the one thread that writes each group (so a
//! counter is a plain load and store, never a locked read-modify-write, and no two writers share
//! a cache line). The admin thread only reads. Nothing here does I/O, takes a lock, formats or
//! allocates on the recording side.
//!
//! Per-stage latencies are differences of wall-clock nanoseconds (the clock the sequencer
//! stamps `ts_ns` with), taken where each stage already is: the receiver when a read brought
//! the request, the journaler after its commit, the publisher when it takes a command's output
//! from the output ring ("matched": the matcher itself reads no clock) and after it wrote the
//! reports to the sockets ("sent").

use std::sync::atomic::{AtomicU64, Ordering};

use engine::{CommandBody, RejectReason};

use super::STAMP_SLOTS;
use super::histogram::Histogram;

/// A counter or gauge with one writer (loads and stores, `Relaxed`).
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n` (single writer).
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Sets the value (gauges).
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// The value (any thread).
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Order-entry protocols, as labelled (`protocol="sbe"|"fix"`), in the receiver's order.
pub const PROTOCOLS: [&str; 2] = ["sbe", "fix"];

/// Request types counted on the way in (`type=`), [`request_type`] gives the index.
pub const REQUEST_TYPES: [&str; 6] = ["new_order", "cancel", "replace", "mass_cancel", "order_status", "other"];

/// The `type=` index of a request.
pub fn request_type(body: &CommandBody) -> usize {
    match body {
        CommandBody::NewOrder(_) => 0,
        CommandBody::Cancel(_) => 1,
        CommandBody::Replace(_) => 2,
        CommandBody::MassCancel(_) => 3,
        CommandBody::OrderStatus { .. } => 4,
        _ => 5,
    }
}

/// Engine reject reasons are numbered from 1; slot 0 is unused.
pub const REJECT_REASONS: usize = RejectReason::TooManyKillSwitches as usize + 1;

/// Written by the gateway thread (receiver and sequencer; with two gateway threads, under the
/// edge's lock, which orders the writes).
#[derive(Default)]
#[repr(align(128))]
pub struct GatewayMetrics {
    /// Requests taken from the sessions, by protocol and [`REQUEST_TYPES`].
    pub requests: [[Counter; REQUEST_TYPES.len()]; PROTOCOLS.len()],
    /// Connections open now, by protocol.
    pub connections: [Counter; PROTOCOLS.len()],
    /// Connections accepted, by protocol.
    pub connections_accepted: [Counter; PROTOCOLS.len()],
    /// Configured sessions logged on now, by protocol (updated on the session timer).
    pub logged_on: [Counter; PROTOCOLS.len()],
    /// Application messages refused by the throttle, by protocol (session timer).
    pub throttled: [Counter; PROTOCOLS.len()],
    /// Logons refused for wrong credentials, by protocol (session timer).
    pub logon_failures: [Counter; PROTOCOLS.len()],
    /// Requests the gateway itself rejected with an execution report (never sequenced: fields
    /// that do not convert, such as an unknown instrument).
    pub gateway_rejects: Counter,
    /// Requests refused for naming an account the session may not act on (session timer).
    pub not_authorised: Counter,
    /// Highest sequence number stamped.
    pub seq_sequenced: Counter,
    /// Received → sequenced, per request a read brought.
    pub received_to_sequenced: Histogram,
}

/// Written by the publisher (the gateway thread, or `sable-publisher`).
#[derive(Default)]
#[repr(align(128))]
pub struct PublisherMetrics {
    /// Reports handed to sessions, by protocol.
    pub reports: [Counter; PROTOCOLS.len()],
    /// Engine rejects by [`RejectReason`] code.
    pub rejects: [Counter; REJECT_REASONS],
    /// Trades (fills) reported.
    pub trades: Counter,
    /// Sequenced → output taken from the output ring (the matcher is done with the command).
    pub sequenced_to_matched: Histogram,
    /// Sequenced → reports written to the sockets.
    pub sequenced_to_sent: Histogram,
    /// Received → acknowledgement written, for new orders and cancels (order → ack).
    pub order_to_ack: Histogram,
}

/// Written by the journaler (`sable-journal`).
#[derive(Default)]
#[repr(align(128))]
pub struct JournalMetrics {
    /// Record bytes appended (headers included).
    pub appended_bytes: Counter,
    /// Records appended.
    pub records: Counter,
    /// Commits (one per batch).
    pub commits: Counter,
    /// Failed appends or commits (the appliance stops on the first).
    pub failures: Counter,
    /// Duration of each commit (the write-out, or the sync under `fsync`).
    pub commit_duration: Histogram,
    /// Sequenced → durable locally at the policy's level.
    pub sequenced_to_durable: Histogram,
}

/// Written by the snapshot follower (`sable-follower`).
#[derive(Default)]
#[repr(align(128))]
pub struct SnapshotMetrics {
    /// Snapshots written (periodic and asked for).
    pub written: Counter,
    /// Snapshots that failed.
    pub failures: Counter,
    /// Sequence number of the last snapshot.
    pub last_seq: Counter,
}

/// Written by the feed thread (`sable-feed`).
#[derive(Default)]
#[repr(align(128))]
pub struct FeedMetrics {
    /// Whether the feed runs (1) or not (0).
    pub enabled: Counter,
    /// MoldUDP64 sequence number of the last message sent.
    pub sequence: Counter,
    /// Input sequence number of the last command the feed published.
    pub input_seq: Counter,
}

/// Written by the replicator (`sable-replicator`).
#[derive(Default)]
#[repr(align(128))]
pub struct ReplicationMetrics {
    /// Whether the replication port is configured (1) or not (0).
    pub enabled: Counter,
    /// A standby is attached (1) or not (0).
    pub standby_attached: Counter,
    /// The standby's last reported positions: received, written, synced.
    pub standby_received_seq: Counter,
    /// See `standby_received_seq`.
    pub standby_written_seq: Counter,
    /// See `standby_received_seq`.
    pub standby_synced_seq: Counter,
    /// Acknowledging at local durability because the standby was lost (1) or not (0).
    pub degraded: Counter,
}

/// Everything the pipeline records, in [`crate::rings::Shared`].
#[derive(Default)]
pub struct Metrics {
    /// Whether the stages record (`[admin] metrics` at start; [`Metrics::set_recording`] after).
    pub enabled: std::sync::atomic::AtomicBool,
    /// Gateway thread.
    pub gateway: GatewayMetrics,
    /// Publisher.
    pub publisher: PublisherMetrics,
    /// Journaler.
    pub journal: JournalMetrics,
    /// Snapshot follower.
    pub snapshots: SnapshotMetrics,
    /// Replicator.
    pub replication: ReplicationMetrics,
    /// Market-data feed.
    pub feed: FeedMetrics,
    /// Request stamps from the receiver to the publisher (order → ack).
    pub stamps: StampTable,
}

impl Metrics {
    /// Whether the stages record now. Each stage reads this once per batch (a plain load on
    /// x86, of a line nobody writes while it runs), so it can be switched while the pipeline
    /// runs: what a stage takes in after the switch is recorded, or not, as switched.
    #[inline]
    pub fn recording(&self) -> bool {
        self.enabled.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Switches recording on the pipeline threads on or off. Counters and histograms keep
    /// what they hold (while off they do not move); connection counts are kept either way.
    pub fn set_recording(&self, on: bool) {
        self.enabled.store(on, std::sync::atomic::Ordering::Release);
    }
}

/// When each in-flight command was received and stamped, by sequence number modulo
/// [`STAMP_SLOTS`], so the publisher can measure order → ack without carrying more in the
/// rings. The receiver writes, the publisher reads; a slot reused by a later command is told
/// apart by its sequence number (written last, read first and again after).
pub struct StampTable {
    slots: Box<[StampSlot]>,
}

#[derive(Default)]
struct StampSlot {
    seq: AtomicU64,
    received_ns: AtomicU64,
    ts_ns: AtomicU64,
    kind: AtomicU64,
}

/// What the receiver noted about one sequenced request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// When the read that brought it returned (wall clock, ns).
    pub received_ns: u64,
    /// The sequencer's timestamp.
    pub ts_ns: u64,
    /// Its [`REQUEST_TYPES`] index.
    pub kind: usize,
}

impl Default for StampTable {
    fn default() -> Self {
        StampTable { slots: (0..STAMP_SLOTS).map(|_| StampSlot::default()).collect() }
    }
}

impl StampTable {
    /// Receiver: what it knows of request `seq`.
    #[inline]
    pub fn put(&self, seq: u64, stamp: Stamp) {
        let s = &self.slots[seq as usize % STAMP_SLOTS];
        s.seq.store(0, Ordering::Release);
        s.received_ns.store(stamp.received_ns, Ordering::Relaxed);
        s.ts_ns.store(stamp.ts_ns, Ordering::Relaxed);
        s.kind.store(stamp.kind as u64, Ordering::Relaxed);
        s.seq.store(seq, Ordering::Release);
    }

    /// Publisher: the stamp of `seq`, if its slot still holds it.
    #[inline]
    pub fn get(&self, seq: u64) -> Option<Stamp> {
        let s = &self.slots[seq as usize % STAMP_SLOTS];
        if s.seq.load(Ordering::Acquire) != seq {
            return None;
        }
        let received_ns = s.received_ns.load(Ordering::Relaxed);
        let ts_ns = s.ts_ns.load(Ordering::Relaxed);
        let kind = s.kind.load(Ordering::Relaxed) as usize;
        std::sync::atomic::fence(Ordering::Acquire);
        (s.seq.load(Ordering::Relaxed) == seq).then_some(Stamp { received_ns, ts_ns, kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_is_found_until_its_slot_is_reused() {
        let t = StampTable::default();
        let stamp = Stamp { received_ns: 1_000, ts_ns: 1_200, kind: 0 };
        t.put(5, stamp);
        assert_eq!(t.get(5), Some(stamp));
        assert_eq!(t.get(6), None);
        t.put(5 + STAMP_SLOTS as u64, Stamp { kind: 1, ..stamp });
        assert_eq!(t.get(5), None, "reused by a later command");
    }

    #[test]
    fn counters_add_and_set() {
        let c = Counter::default();
        c.add(3);
        c.add(4);
        assert_eq!(c.get(), 7);
        c.set(2);
        assert_eq!(c.get(), 2);
    }
}
