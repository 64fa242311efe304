//! The naive baseline as a benchmark participant: it runs the neutral ops directly.

use super::{Adapter, Book};
use crate::naive::NaiveBook;
use crate::ops::Op;

/// Runs [`NaiveBook`] with a reused scratch vector.
#[derive(Default)]
pub struct NaiveRunner {
    book: NaiveBook,
    removed: Vec<u64>,
}

impl Book for NaiveRunner {
    type Cmd = Op;

    #[inline]
    fn apply(&mut self, cmd: &Op) {
        self.removed.clear();
        self.book.apply(cmd, &mut self.removed);
    }

    fn trades(&self) -> u64 {
        self.book.trades()
    }

    fn rejects(&self) -> u64 {
        self.book.noops()
    }
}

/// The identity adapter.
#[derive(Default)]
pub struct NaiveAdapter;

impl Adapter for NaiveAdapter {
    type Book = NaiveRunner;
    const NAME: &'static str = "naive";

    fn translate(&mut self, op: &Op) -> Op {
        *op
    }

    fn new_book(&self) -> NaiveRunner {
        NaiveRunner { book: NaiveBook::new(), removed: Vec::with_capacity(64) }
    }

    fn describe(&self) -> String {
        "BTreeMap<price, VecDeque<id>> per side + std HashMap<id, order> (SipHash); cancel scans its \
         level's queue; amend = remove + re-match + re-add; native IOC and reduce"
            .into()
    }
}
