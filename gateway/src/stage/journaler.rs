//! Stage: the journaler. Appends every sequenced command to the journal in ring order and, at
//! the end of each batch, commits at the configured level and publishes `seq_durable`, the
//! position the publisher releases output up to. It runs beside the matcher, never in front of
//! it: only the release of output waits for it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use engine::Command;
use journal::{Durability, Journal, MmapStorage};

use crate::rings::{Shared, Slot};

/// The journaler's state, living on its own thread.
pub(crate) struct Journaler {
    journal: Journal<MmapStorage>,
    level: Durability,
    shared: Arc<Shared>,
    buf: [u8; Command::MAX_ENCODED_LEN],
    dead: bool,
}

impl Journaler {
    /// A journaler committing at `level`.
    pub(crate) fn new(journal: Journal<MmapStorage>, level: Durability, shared: Arc<Shared>) -> Self {
        Journaler { journal, level, shared, buf: [0; Command::MAX_ENCODED_LEN], dead: false }
    }

    /// One input slot; commits at the end of a batch (group commit). A failure stops the
    /// journaler for good and fails the appliance: nothing after it may be acknowledged.
    pub(crate) fn on_slot(&mut self, slot: &Slot, end_of_batch: bool) {
        // After any stage's failure (a fenced primary's included) nothing more is journaled.
        if self.dead || self.shared.failed.load(Ordering::Relaxed) {
            self.dead = true;
            return;
        }
        let cmd = &slot.command;
        let res = match cmd.encode(&mut self.buf) {
            Ok(bytes) => {
                self.journal.append(cmd.seq, cmd.ts_ns, Command::RECORD_KIND, bytes).map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        let res = res.and_then(|()| if end_of_batch { self.commit() } else { Ok(()) });
        if let Err(e) = res {
            self.dead = true;
            self.shared.fail(format!("journal write of seq {}: {e}", cmd.seq));
        }
    }

    fn commit(&mut self) -> Result<(), String> {
        self.journal.commit(self.level).map_err(|e| e.to_string())?;
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
