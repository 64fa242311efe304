//! Configuration commands: what brings a restored engine to the configuration file's
//! instruments and accounts, sequenced and journaled before any client's command.

use engine::{CommandBody, Engine, InstrumentId, InstrumentSpec, Side};

use crate::config::Validated;
use crate::pipeline::PipelineError;

/// The configuration commands that bring a restored engine to the file's instruments and
/// accounts, sequenced and journaled before any client's command (so a replay sees them too):
///
/// - an instrument the engine lacks is added; one whose spec differs is updated, keeping its
///   trading status (a halt or close is market state set by command, not configuration);
/// - an account the engine lacks, or whose stp group, default mode or risk limits differ, is
///   upserted (its open orders and exposure stay);
/// - instruments and accounts the engine has but the file does not name are left as they are,
///   with a warning (they may hold orders).
///
/// A tick or lot size change on an instrument that still has orders would leave the gateway
/// converting prices on one grid and the engine matching on another, so start-up stops instead.
pub fn reconcile(engine: &Engine, cfg: &Validated) -> Result<Vec<CommandBody>, PipelineError> {
    let mut admin = Vec::new();
    for s in &cfg.instruments {
        let Some(current) = engine.instrument(s.id) else {
            admin.push(CommandBody::AddInstrument(*s));
            continue;
        };
        let wanted = InstrumentSpec { status: current.status, ..*s };
        if wanted == *current {
            continue;
        }
        if (wanted.tick_size, wanted.lot_size) != (current.tick_size, current.lot_size) && has_orders(engine, s.id) {
            return Err(PipelineError::Config(format!(
                "instrument {} ({}): tick size {} and lot size {} in the configuration, {} and {} in the data \
                 directory, which still holds orders for it; cancel them first or keep the old grid",
                s.id.0,
                s.symbol.as_str(),
                wanted.tick_size,
                wanted.lot_size,
                current.tick_size,
                current.lot_size
            )));
        }
        tracing::info!(instrument = s.id.0, symbol = s.symbol.as_str(), from = ?current, to = ?wanted, "configuration changes an instrument");
        admin.push(CommandBody::UpdateInstrument(wanted));
    }
    for a in &cfg.accounts {
        match engine.account_spec(a.account) {
            Some(current) if current == a => {}
            current => {
                if let Some(from) = current {
                    tracing::info!(account = a.account.0, ?from, to = ?a, "configuration changes an account");
                }
                admin.push(CommandBody::UpsertAccount(*a));
            }
        }
    }
    for id in engine.instrument_ids() {
        if !cfg.instruments.iter().any(|s| s.id == id) {
            tracing::warn!(
                instrument = id.0,
                "instrument in the data directory but not in the configuration; left as it is"
            );
        }
    }
    Ok(admin)
}

/// Whether any order (resting or a waiting stop) of the instrument is live.
fn has_orders(engine: &Engine, id: InstrumentId) -> bool {
    [Side::Buy, Side::Sell]
        .into_iter()
        .any(|side| [false, true].into_iter().any(|stops| !engine.orders_in_priority(id, side, stops).is_empty()))
}

/// The instruments of a validated configuration indexed by id, for the I/O thread's lookups.
pub fn instrument_table(instruments: &[InstrumentSpec]) -> Vec<Option<InstrumentSpec>> {
    let len = instruments.iter().map(|s| s.id.0 as usize + 1).max().unwrap_or(0);
    let mut table = vec![None; len];
    for s in instruments {
        table[s.id.0 as usize] = Some(*s);
    }
    table
}
