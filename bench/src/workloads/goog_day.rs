//! The GOOG 2012-06-21 full day from LOBSTER as a neutral stream (`bench/data/`), looped until
//! the requested number of commands is reached. Order ids are re-mapped to fresh ones on every
//! loop (and every ADD/IOC gets its own), and the book is reset between loops by cancelling what
//! is left in an untimed segment, so every loop starts from the same empty book.

use std::collections::HashMap;

use super::builder::StreamBuilder;
use crate::lobster::{Action, parse_stream};
use crate::ops::{Op, Side, Workload};

/// Loads the stream at `path` and loops it `ceil(min_commands / day)` times (at least once).
pub fn load(path: &std::path::Path, min_commands: u64) -> Result<Workload, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let day = parse_stream(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if day.is_empty() {
        return Err(format!("{}: empty stream", path.display()));
    }
    let loops = min_commands.div_ceil(day.len() as u64).max(1);
    let mut b = StreamBuilder::new();
    let mut skipped = 0u64;
    for _ in 0..loops {
        let mut ids: HashMap<i64, u64> = HashMap::with_capacity(day.len());
        b.begin(true, day.len());
        for c in &day {
            let side = match c.side {
                engine::Side::Buy => Side::Buy,
                engine::Side::Sell => Side::Sell,
            };
            // An order id this loop never added names no order: give it a fresh id no engine
            // knows, so the command still reaches every engine as a no-op.
            let known = |b: &mut StreamBuilder, lobster_id: i64| match ids.get(&lobster_id) {
                Some(&id) => id,
                None => b.new_id(),
            };
            match c.action {
                Action::Add | Action::Ioc if c.qty == 0 || c.price <= 0 => skipped += 1,
                Action::Add => {
                    let id = b.new_id();
                    ids.insert(c.order_id, id);
                    b.push(Op::Add { id, side, price_ticks: c.price, qty_lots: c.qty });
                }
                Action::Ioc => {
                    let id = b.new_id();
                    b.push(Op::Ioc { id, side, price_ticks: c.price, qty_lots: c.qty });
                }
                Action::Cancel => {
                    let id = known(&mut b, c.order_id);
                    b.push(Op::Cancel { id });
                }
                Action::Reduce => {
                    let id = known(&mut b, c.order_id);
                    let op = b.reduce_op(id, c.qty);
                    b.push(op);
                }
            }
        }
        b.drain();
    }
    let notes = vec![format!(
        "goog_day: {} ({} commands per day{}), looped {} times with fresh order ids per loop; the book is \
         reset between loops (remaining orders cancelled, untimed)",
        path.display(),
        day.len(),
        if skipped > 0 {
            format!(", {} zero-qty/non-positive-price orders skipped", skipped / loops)
        } else {
            String::new()
        },
        loops
    )];
    Ok(b.finish("goog_day", 0, 1, notes))
}
