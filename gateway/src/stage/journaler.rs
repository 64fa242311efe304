//! Stage: the journaler. Appends every sequenced command to the journal in ring order and, at
//! the end of each batch, commits at the configured level and publishes `seq_durable`, the
//! position the publisher releases output up to. It runs beside the matcher, never in front of
//! it: only the release of output waits for it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use engine::Command;
use journal::{Durability, Journal, MmapStorage};

use crate::limits::JOURNAL_COMMIT_EVERY_RECORDS;
use crate::rings::{Shared, Slot};
use crate::stage::sequencer::{Clock, WallClock};

/// The journaler's state, living on its own thread.
pub(crate) struct Journaler {
    journal: Journal<MmapStorage>,
    level: Durability,
    shared: Arc<Shared>,
    buf: [u8; Command::MAX_ENCODED_LEN],
    dead: bool,
    /// Whether the records of the commit in progress are recorded: read at its first record
    /// (the metrics can be switched while the pipeline runs).
    metrics: bool,
    /// Timestamps of the batch's commands, for their sequenced → durable latency at the commit
    /// (reserved for a whole ring: a batch never holds more).
    batch_ts_ns: Vec<u64>,
    /// Records appended since the last commit.
    uncommitted: usize,
}

impl Journaler {
    /// A journaler committing at `level`.
    pub(crate) fn new(
        journal: Journal<MmapStorage>,
        level: Durability,
        shared: Arc<Shared>,
        ring_slots: usize,
    ) -> Self {
        let metrics = shared.metrics.recording();
        let batch_ts_ns = Vec::with_capacity(ring_slots);
        Journaler {
            journal,
            level,
            shared,
            buf: [0; Command::MAX_ENCODED_LEN],
            dead: false,
            metrics,
            batch_ts_ns,
            uncommitted: 0,
        }
    }

    /// One input slot; commits at the end of a batch (group commit), or after
    /// [`JOURNAL_COMMIT_EVERY_RECORDS`] within a long one. A failure stops the
    /// journaler for good and fails the appliance: nothing after it may be acknowledged.
    pub(crate) fn on_slot(&mut self, slot: &Slot, end_of_batch: bool) {
        // After any stage's failure (a fenced primary's included) nothing more is journaled.
        if self.dead || self.shared.failed.load(Ordering::Relaxed) {
            self.dead = true;
            return;
        }
        if self.uncommitted == 0 {
            self.metrics = self.shared.metrics.recording();
        }
        let cmd = &slot.command;
        let res = match cmd.encode(&mut self.buf) {
            Ok(bytes) => {
                let len = bytes.len();
                let res = self.journal.append(cmd.seq, cmd.ts_ns, Command::RECORD_KIND, bytes);
                if self.metrics && res.is_ok() {
                    let m = &self.shared.metrics.journal;
                    m.appended_bytes.add((len + journal::RECORD_HEADER_LEN_BYTES) as u64);
                    m.records.add(1);
                    if self.batch_ts_ns.len() < self.batch_ts_ns.capacity() {
                        self.batch_ts_ns.push(cmd.ts_ns);
                    }
                }
                res.map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        self.uncommitted += 1;
        let due = end_of_batch || self.uncommitted >= JOURNAL_COMMIT_EVERY_RECORDS;
        let res = res.and_then(|()| if due { self.commit() } else { Ok(()) });
        if let Err(e) = res {
            self.shared.metrics.journal.failures.add(1);
            self.dead = true;
            self.shared.fail(format!("journal write of seq {}: {e}", cmd.seq));
        }
    }

    fn commit(&mut self) -> Result<(), String> {
        self.uncommitted = 0;
        let started_ns = if self.metrics { WallClock.now_ns() } else { 0 };
        self.journal.commit(self.level).map_err(|e| e.to_string())?;
        if self.metrics {
            let now_ns = WallClock.now_ns();
            let m = &self.shared.metrics.journal;
            m.commits.add(1);
            m.commit_duration.record(now_ns.saturating_sub(started_ns));
            for ts_ns in self.batch_ts_ns.drain(..) {
                m.sequenced_to_durable.record(now_ns.saturating_sub(ts_ns));
            }
        }
        let durable = match self.level {
            Durability::Written => self.journal.written_seq(),
            Durability::Fsync => self.journal.synced_seq(),
        };
        self.shared.written_at_ns.store(crate::rings::mono_ns(), Ordering::Release);
        self.shared.seq_written.store(self.journal.written_seq(), Ordering::Release);
        self.shared.set_local_durable(durable);
        Ok(())
    }
}
