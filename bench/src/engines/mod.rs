//! The benchmarked books behind one interface. Each has an adapter that translates the neutral
//! [`Op`]s into the book's own commands once, before timing, and a book whose `apply` is the only
//! thing measured. Dispatch is static: the timing loop is monomorphised per book.

pub mod matchcore;
pub mod naive;
pub mod orderbook_rs;
pub mod sable;

use crate::ops::{Op, Workload};

/// A book under test.
pub trait Book {
    /// The book's native command, produced by its adapter.
    type Cmd;
    /// Applies one command (the measured call).
    fn apply(&mut self, cmd: &Self::Cmd);
    /// Whether the book wants [`Book::prepare`] before each timed `apply` (checked once per
    /// segment, so books that do not pay nothing for it).
    fn looks_ahead(&self) -> bool {
        false
    }
    /// Called right before each timed `apply` with the commands that follow it, as a matcher
    /// draining a batch from its input ring sees them (only if [`Book::looks_ahead`]).
    #[inline]
    fn prepare(&self, _ahead: &[Self::Cmd]) {}
    /// Trades (maker fills) so far.
    fn trades(&self) -> u64;
    /// Commands the book refused or found nothing to act on.
    fn rejects(&self) -> u64;
}

/// Applies `cmds` to `book` one by one, recording each command's service time (ticks) in
/// `hist`: a timestamp pair around every `apply`, with the book's lookahead hint inside the
/// window, as a matcher draining a batch would run it.
pub fn time_each<B: Book>(book: &mut B, cmds: &[B::Cmd], hist: &mut hdrhistogram::Histogram<u64>) {
    let looks_ahead = book.looks_ahead();
    for (i, c) in cmds.iter().enumerate() {
        let t0 = crate::timing::start();
        if looks_ahead {
            book.prepare(&cmds[i + 1..]);
        }
        book.apply(c);
        let t1 = crate::timing::stop();
        hist.saturating_record((t1 - t0).max(1));
    }
}

/// The names `list` selects from `all`: `all`, or a comma-separated list of them (`what` names
/// the kind in the error, e.g. `engine`).
pub fn pick(list: &str, all: &[&'static str], what: &str) -> Result<Vec<&'static str>, String> {
    if list == "all" {
        return Ok(all.to_vec());
    }
    list.split(',')
        .map(|n| {
            all.iter().copied().find(|a| *a == n.trim()).ok_or_else(|| format!("unknown {what} {n:?}; one of {all:?}"))
        })
        .collect()
}

/// Translates neutral ops for one book and creates fresh instances of it.
pub trait Adapter {
    /// The book.
    type Book: Book;
    /// Name in the output.
    const NAME: &'static str;
    /// Translates one op. Called once per op, in stream order, before any timing.
    fn translate(&mut self, op: &Op) -> <Self::Book as Book>::Cmd;
    /// A fresh, empty book ready for the first translated command.
    fn new_book(&self) -> Self::Book;
    /// How the adapter maps the ops (printed once per workload).
    fn describe(&self) -> String;
}

/// Translates a whole workload, segment by segment.
pub fn translate_all<A: Adapter>(adapter: &mut A, w: &Workload) -> Vec<Vec<<A::Book as Book>::Cmd>> {
    w.segments.iter().map(|s| s.ops.iter().map(|op| adapter.translate(op)).collect()).collect()
}
