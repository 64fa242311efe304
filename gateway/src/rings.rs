//! What the pipeline's stages share: the two rings' slot types and ends, and the few atomics the stages signal each other with. Stages import from here and
//! never from each other, so no two stage files depend on one another.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use disruptor::{EventPoller, SingleConsumerBarrier, SingleProducer, SingleProducerBarrier};
use engine::{Command, CommandBody, Engine, Event};

/// One input ring slot: a sequenced command. Who sent it is not carried: reports are routed
/// by account, and the journal records commands only.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    /// The command; `command.seq` and `command.ts_ns` were stamped once by the sequencer.
    pub command: Command,
}

impl Default for Slot {
    fn default() -> Self {
        Slot { command: Command { seq: 0, ts_ns: 0, body: CommandBody::Tick } }
    }
}

/// What an output slot carries.
#[derive(Clone, Copy, Debug)]
pub enum OutItem {
    /// One engine event of the command.
    Event(Event),
    /// The command is fully applied (last slot of every command).
    Done,
}

/// One output ring slot: an engine event tagged with the input it came from.
#[derive(Clone, Copy, Debug)]
pub struct OutSlot {
    /// Input sequence number.
    pub seq: u64,
    /// Input timestamp.
    pub ts_ns: u64,
    /// The command's body (rejects need the request's terms).
    pub request: CommandBody,
    /// The event, or the end-of-command marker.
    pub item: OutItem,
}

impl Default for OutSlot {
    fn default() -> Self {
        OutSlot { seq: 0, ts_ns: 0, request: CommandBody::Tick, item: OutItem::Done }
    }
}

/// The input ring's producer end, owned by the sequencer.
pub type InputProducer = SingleProducer<Slot, SingleConsumerBarrier>;

/// The output ring's producer end, owned by the matcher.
pub type OutputProducer = SingleProducer<OutSlot, SingleConsumerBarrier>;

/// The output ring's consumer end, polled by the publisher.
pub type OutputPoller = EventPoller<OutSlot, SingleProducerBarrier>;

/// State the stages signal each other with (atomics only on the hot path).
#[derive(Default)]
pub struct Shared {
    /// Highest sequence number durable at the configured policy's level: what the publisher
    /// may release. Without a standby the journaler writes it; with a `replicated` policy it is
    /// the lower of `seq_local` and `seq_replica` (see [`Shared::set_local_durable`]).
    pub seq_durable: AtomicU64,
    /// Highest sequence number in the local journal's page cache (journaler writes; the
    /// replicator streams up to it).
    pub seq_written: AtomicU64,
    /// With a `replicated` policy: durable locally at the policy's level (journaler writes).
    pub seq_local: AtomicU64,
    /// With a `replicated` policy: held by the standby at the policy's level, or `u64::MAX`
    /// while degraded to local durability (replicator writes).
    pub seq_replica: AtomicU64,
    /// Whether the policy waits for a standby (set once at start).
    pub needs_standby: AtomicBool,
    /// When the journaler last raised `seq_written`, in [`mono_ns`] (written just before it).
    pub written_at_ns: AtomicU64,
    /// Replication lag: the journaler writing a record → the standby reporting it written,
    /// nanoseconds (the replicator records; readers clone it).
    pub replication_lag: Mutex<Option<hdrhistogram::Histogram<u64>>>,
    /// A planned switchover was asked for: on stop, the replicator hands over to the standby.
    pub handover: AtomicBool,
    /// The admin port asked for a step-down (`POST /admin/step-down`); the owner acts on it.
    pub step_down_requested: AtomicBool,
    /// The replicator told the standby to take over (after it held everything).
    pub handed_over: AtomicBool,
    /// Whether a standby is attached to the replicator now (replicator writes).
    pub standby_attached: AtomicBool,
    /// This node's leadership epoch (set once at start; `replication/fence.rs`).
    pub epoch: AtomicU32,
    /// The snapshot follower's state hashes, (seq, hash), newest last, a bounded number kept:
    /// the replicator sends them to the standby to compare.
    pub state_hashes: Mutex<std::collections::VecDeque<(u64, u64)>>,
    /// Highest sequence number whose output the publisher fully released (publisher writes).
    pub seq_published: AtomicU64,
    /// Set by the owner to stop the appliance.
    pub stop: AtomicBool,
    /// Set by a stage that failed; the receiver reads `failure` and stops.
    pub failed: AtomicBool,
    /// What failed (written once, off the hot path).
    pub failure: Mutex<Option<String>>,
    /// The matcher's engine, handed back when the matcher thread ends.
    pub engine_back: Mutex<Option<Engine>>,
    /// Sequence number of the last command the matcher applied: the matcher's progress, read by
    /// the service watchdog (`service.rs`). On a cache line of its own: the matcher writes it per
    /// command, and no other stage's signal should share that line.
    pub seq_applied: PaddedU64,
    /// What the stages record for the admin port (each group written by one thread).
    pub metrics: crate::admin::recorder::Metrics,
    /// Role and fencing epoch (health, metrics, dashboard read them).
    pub role: crate::admin::role::RoleState,
    /// Set by the admin port (`POST /admin/snapshot`); the snapshot follower takes a snapshot
    /// at its next command and clears it.
    pub snapshot_requested: AtomicBool,
}

/// Monotonic nanoseconds since the first call in this process: one origin for every thread.
pub fn mono_ns() -> u64 {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64
}

/// An atomic counter alone on its cache line (128 bytes: adjacent-line prefetch pairs lines).
#[derive(Default)]
#[repr(align(128))]
pub struct PaddedU64(pub AtomicU64);

impl Shared {
    /// Records the first failure of any stage and raises the flag.
    pub fn fail(&self, what: String) {
        let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(what);
        }
        self.failed.store(true, Ordering::Release);
    }

    /// The journaler's position: durable locally at the policy's level.
    pub fn set_local_durable(&self, seq: u64) {
        if !self.needs_standby.load(Ordering::Relaxed) {
            self.seq_durable.store(seq, Ordering::Release);
            return;
        }
        self.seq_local.store(seq, Ordering::SeqCst);
        self.release_min();
    }

    /// The replicator's position: held by the standby (or `u64::MAX`: degraded).
    pub fn set_replica_durable(&self, seq: u64) {
        self.seq_replica.store(seq, Ordering::SeqCst);
        self.release_min();
    }

    /// Both writers store their own position, then raise `seq_durable` to the lower of the two.
    /// SeqCst: of two concurrent updates at least one sees the other's store, so the last one
    /// leaves `seq_durable` at the true minimum; `fetch_max` keeps it from going back.
    fn release_min(&self) {
        let min = self.seq_local.load(Ordering::SeqCst).min(self.seq_replica.load(Ordering::SeqCst));
        self.seq_durable.fetch_max(min, Ordering::AcqRel);
    }

    /// The failure, once a stage raised the flag.
    pub fn failure(&self) -> Option<String> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        Some(self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_default())
    }
}
