//! A latency histogram one thread records into and any thread reads: a fixed log-linear array
//! of `AtomicU64` buckets (8 per power of two, so every bucket is within 12.5 % of its values),
//! written with plain loads and stores (single writer: no read-modify-write, no lock, no
//! allocation). Readers take a [`HistogramSnapshot`] (not one instant: a bucket recorded during
//! the copy may or may not be in it, which a once-a-second view does not mind) and compute
//! percentiles from it, or differences between two snapshots (the dashboard's per-second view).

use std::sync::atomic::{AtomicU64, Ordering};

/// Sub-buckets per power of two, as bits: 8 sub-buckets.
const SUB_BITS: u32 = 3;
/// Sub-buckets per power of two.
const SUB: usize = 1 << SUB_BITS;
/// Values at or above 2^`MAX_BITS` ns (about 18 minutes) land in the last bucket.
const MAX_BITS: u32 = 40;
/// Number of buckets: exact below `SUB`, then `SUB` per power of two up to 2^`MAX_BITS`.
pub const BUCKETS: usize = (MAX_BITS as usize - SUB_BITS as usize + 1) * SUB;

/// The bucket of `value_ns`.
pub fn bucket_of(value_ns: u64) -> usize {
    let v = value_ns.min((1 << MAX_BITS) - 1);
    if v < SUB as u64 {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    let sub = ((v >> shift) as usize) & (SUB - 1);
    (shift as usize + 1) * SUB + sub
}

/// The smallest value above bucket `i` (its exclusive upper edge), in ns.
pub fn bucket_upper_ns(i: usize) -> u64 {
    if i < SUB {
        return i as u64 + 1;
    }
    let shift = (i / SUB - 1) as u32;
    ((SUB + i % SUB) as u64 + 1) << shift
}

/// A single-writer latency histogram in nanoseconds.
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records one value. Only one thread may record into a histogram (loads and stores, no
    /// read-modify-write): the owner of the stage it measures.
    #[inline]
    pub fn record(&self, value_ns: u64) {
        let b = &self.buckets[bucket_of(value_ns)];
        b.store(b.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.sum_ns.store(self.sum_ns.load(Ordering::Relaxed).wrapping_add(value_ns), Ordering::Relaxed);
        if value_ns > self.max_ns.load(Ordering::Relaxed) {
            self.max_ns.store(value_ns, Ordering::Relaxed);
        }
    }

    /// A copy of the counts (reader side; allocates).
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect(),
            sum_ns: self.sum_ns.load(Ordering::Relaxed),
            max_ns: self.max_ns.load(Ordering::Relaxed),
        }
    }
}

/// A histogram's counts at one time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Count per bucket.
    pub counts: Vec<u64>,
    /// Sum of every recorded value, in ns.
    pub sum_ns: u64,
    /// Largest value ever recorded, in ns.
    pub max_ns: u64,
}

impl HistogramSnapshot {
    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// What was recorded since `earlier` (counts and sum; max is the highest bucket's edge).
    pub fn since(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        let counts: Vec<u64> = if earlier.counts.len() == self.counts.len() {
            self.counts.iter().zip(&earlier.counts).map(|(a, b)| a.saturating_sub(*b)).collect()
        } else {
            self.counts.clone()
        };
        let max_ns = counts.iter().rposition(|c| *c > 0).map_or(0, |i| bucket_upper_ns(i).min(self.max_ns.max(1)));
        HistogramSnapshot { counts, sum_ns: self.sum_ns.wrapping_sub(earlier.sum_ns), max_ns }
    }

    /// The value at quantile `q` (0..=1): the upper edge of the bucket holding it, capped by the
    /// largest value seen; 0 when empty.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_upper_ns(i).min(self.max_ns.max(1));
            }
        }
        self.max_ns
    }

    /// Values below `edge_ns` (exact when `edge_ns` is a bucket edge).
    pub fn count_below(&self, edge_ns: u64) -> u64 {
        self.counts.iter().enumerate().take_while(|(i, _)| bucket_upper_ns(*i) <= edge_ns).map(|(_, c)| c).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_within_an_eighth() {
        let mut previous_upper = 0;
        for i in 0..BUCKETS {
            let upper = bucket_upper_ns(i);
            assert!(upper > previous_upper, "bucket {i}");
            assert_eq!(bucket_of(upper - 1), i, "the last value of bucket {i} is in it");
            assert_eq!(bucket_of(previous_upper), i, "the first value of bucket {i} is in it");
            if i >= SUB {
                let lower = previous_upper;
                assert!((upper - lower) * 8 <= lower, "bucket {i} is {lower}..{upper}");
            }
            previous_upper = upper;
        }
    }

    #[test]
    fn quantiles_tell_p99_from_p999() {
        let h = Histogram::default();
        for _ in 0..9_880 {
            h.record(1_000);
        }
        for _ in 0..100 {
            h.record(50_000);
        }
        for _ in 0..20 {
            h.record(2_000_000);
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 10_000);
        let (p50, p99, p999) = (s.quantile_ns(0.5), s.quantile_ns(0.99), s.quantile_ns(0.999));
        assert!((1_000..1_125).contains(&p50), "p50 {p50}");
        assert!((50_000..56_250).contains(&p99), "p99 {p99}");
        assert!((2_000_000..2_250_000).contains(&p999), "p99.9 {p999}");
        assert_eq!(s.max_ns, 2_000_000);
        assert_eq!(s.count_below(bucket_upper_ns(bucket_of(1_000))), 9_880);
    }

    #[test]
    fn since_gives_what_was_recorded_in_between() {
        let h = Histogram::default();
        h.record(100);
        let a = h.snapshot();
        h.record(7_000);
        h.record(7_000);
        let d = h.snapshot().since(&a);
        assert_eq!((d.count(), d.sum_ns), (2, 14_000));
        assert!((7_000..7_900).contains(&d.quantile_ns(0.5)));
        assert!(d.max_ns >= 7_000);
    }
}
