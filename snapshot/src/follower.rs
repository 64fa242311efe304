//! The follower: a second engine that applies the same commands on its own thread and takes the
//! snapshots, so the primary matcher never pauses for one.

use std::time::{SystemTime, UNIX_EPOCH};

use engine::{ApplyError, Command, CountingSink, Engine, EventSink};

use crate::store::{Retention, SnapshotError, SnapshotInfo, SnapshotStore};

/// Why the follower stopped.
#[derive(Debug, thiserror::Error)]
pub enum FollowerError {
    /// The command stream skipped or repeated a sequence number.
    #[error("follower: {0}")]
    Apply(#[from] ApplyError),
    /// Writing or pruning a snapshot failed.
    #[error("follower: {0}")]
    Snapshot(#[from] SnapshotError),
}

/// Applies commands and writes a snapshot every `every_commands`.
///
/// Feed it only commands that are durable in the journal: a snapshot must never contain a
/// command the journal could lose (restore skips such snapshots anyway).
pub struct Follower {
    engine: Engine,
    store: SnapshotStore,
    every_commands: u64,
    retention: Retention,
    sink: CountingSink,
    last_snapshot_seq: u64,
}

fn wall_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

impl Follower {
    /// A follower continuing from `engine` (usually what `restore` returned).
    pub fn new(engine: Engine, store: SnapshotStore, every_commands: u64, retention: Retention) -> Self {
        let last_snapshot_seq = engine.seq();
        Follower {
            engine,
            store,
            every_commands: every_commands.max(1),
            retention,
            sink: CountingSink::default(),
            last_snapshot_seq,
        }
    }

    /// The follower's engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, the follower done with (a promoted standby hands it to its pipeline).
    pub fn into_engine(self) -> Engine {
        self.engine
    }

    /// Applies one command; writes a snapshot (and prunes old ones) when one is due.
    pub fn apply(&mut self, cmd: &Command) -> Result<Option<SnapshotInfo>, FollowerError> {
        self.engine.apply(cmd, &mut self.sink)?;
        self.snapshot_if_due()
    }

    /// [`Follower::apply`], writing the command's events to `out` (a standby keeps the audit
    /// records of operator commands).
    pub fn apply_into(
        &mut self,
        cmd: &Command,
        out: &mut impl EventSink,
    ) -> Result<Option<SnapshotInfo>, FollowerError> {
        self.engine.apply(cmd, out)?;
        self.snapshot_if_due()
    }

    fn snapshot_if_due(&mut self) -> Result<Option<SnapshotInfo>, FollowerError> {
        if self.engine.seq() - self.last_snapshot_seq >= self.every_commands {
            return self.snapshot_now().map(Some);
        }
        Ok(None)
    }

    /// Writes a snapshot of the follower's state now and applies retention.
    pub fn snapshot_now(&mut self) -> Result<SnapshotInfo, FollowerError> {
        let now = wall_ns();
        let info = self.store.write(&self.engine, now)?;
        self.last_snapshot_seq = info.seq;
        self.store.retain(self.retention, now)?;
        Ok(info)
    }
}
