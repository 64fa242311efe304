//! The feed after a restart or a promotion: the journal replayed through a scratch engine
//! into the same [`FeedSession`] the live feed uses, discarding the packets. The session
//! name, the next sequence number, the retained history and the book the feed shows come out
//! exactly as a primary that never stopped has them, because all of them are a function of
//! the journal's commands alone (their events, sequence numbers and timestamps).
//!
//! This needs the journal from its first command. When older segments were archived, the feed
//! starts from the restored engine instead (the newest snapshot the journal continues, then
//! the journal): its session names end in [`RESEEDED_SUFFIX`] so subscribers see a new
//! session rather than numbers that might not match the old one.

use engine::{Command, Engine, EngineLimits, Event, InstrumentSpec, OrderView, Side};
use journal::{Journal, Storage};

use crate::feed::session::FeedSession;

/// Session name suffix of a feed rebuilt from the whole journal.
pub const SUFFIX: [u8; 2] = *b"SB";
/// Session name suffix of a feed started from a snapshot (the journal no longer starts at 1).
pub const RESEEDED_SUFFIX: [u8; 2] = *b"RS";

/// Why the feed could not be rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// Reading the journal failed.
    #[error("journal: {0}")]
    Journal(#[from] journal::JournalError),
    /// A record is not a command the engine applies.
    #[error("journal record {seq}: {reason}")]
    BadRecord {
        /// The record.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Replays the whole journal (it starts at seq 1) into `session` through a fresh engine,
/// handing the packets it would have sent to `send` (the start-up rebuild discards them; a
/// test compares them with what a subscriber received). Returns the commands replayed.
pub fn replay<S: Storage>(
    journal: &Journal<S>,
    limits: EngineLimits,
    session: &mut FeedSession,
    send: &mut impl FnMut(&[u8]),
) -> Result<u64, RebuildError> {
    let mut engine = Engine::new(limits);
    let mut events: Vec<Event> = Vec::with_capacity(1024);
    let mut n = 0;
    for rec in journal.read_from(1)? {
        let rec = rec?;
        let bad = |reason: String| RebuildError::BadRecord { seq: rec.seq, reason };
        let cmd = Command::decode(rec.body).map_err(|e| bad(e.to_string()))?;
        events.clear();
        engine.apply(&cmd, &mut events).map_err(|e| bad(e.to_string()))?;
        session.command(cmd.seq, cmd.ts_ns, &cmd.body, &events, send);
        n += 1;
    }
    session.flush(send);
    Ok(n)
}

/// Seeds `session` with what a restored engine shows (the journal does not reach back to 1):
/// every instrument's directory entry and every resting order's visible slice, as the opening
/// of the next session. Iceberg slices are estimated from the display quantity.
pub fn seed(engine: &Engine, session: &mut FeedSession) {
    let ids: Vec<_> = engine.instrument_ids().collect();
    let t = session.translator_mut();
    for id in ids {
        let Some(spec): Option<&InstrumentSpec> = engine.instrument(id) else { continue };
        t.seed_instrument(spec);
        for side in [Side::Buy, Side::Sell] {
            for v in engine.orders_in_priority(id, side, false) {
                let v: OrderView = v;
                let visible = if v.display_lots == 0 { v.leaves_lots } else { v.display_lots.min(v.leaves_lots) };
                t.seed_order(&v, visible);
            }
        }
    }
}
