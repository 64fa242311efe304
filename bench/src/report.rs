//! Percentiles and the one-line summary every benchmark prints, so that the `matcher` and
//! `durability` benchmarks read, and are parsed, the same way:
//!
//! `workload=<name> engine=<name> commands=<n> ops_per_s=<x> p50_ns=<x> p99_ns=<x> p9999_ns=<x> max_ns=<x>`
//! followed by benchmark-specific `key=value` fields.

use hdrhistogram::Histogram;

use crate::timing::Ticker;

/// Largest value the histograms hold (ticks, ns or counts): 2^40, over five minutes of ticks
/// at 3.5 GHz. Larger values are clamped by `saturating_record`.
pub const MAX_TRACKED: u64 = 1 << 40;

/// An empty histogram with three significant digits, for ticks, ns or counts.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKED, 3).expect("constant bounds are valid")
}

/// The quantiles every benchmark reports, in nanoseconds (or in the histogram's unit for
/// [`Percentiles::from_raw`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50_ns: f64,
    /// 90th percentile.
    pub p90_ns: f64,
    /// 99th percentile.
    pub p99_ns: f64,
    /// 99.9th percentile.
    pub p999_ns: f64,
    /// 99.99th percentile.
    pub p9999_ns: f64,
    /// Largest value.
    pub max_ns: f64,
    /// Mean.
    pub mean_ns: f64,
}

impl Percentiles {
    /// Quantiles of a histogram of ticks, converted with `ticker`.
    pub fn from_ticks(h: &Histogram<u64>, ticker: &Ticker) -> Self {
        Self::convert(h, |v| ticker.ns(v))
    }

    /// Quantiles of a histogram already in nanoseconds (or of plain counts).
    pub fn from_raw(h: &Histogram<u64>) -> Self {
        Self::convert(h, |v| v as f64)
    }

    fn convert(h: &Histogram<u64>, ns: impl Fn(u64) -> f64) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        let q = |x: f64| ns(h.value_at_quantile(x));
        Percentiles {
            count: h.len(),
            p50_ns: q(0.5),
            p90_ns: q(0.9),
            p99_ns: q(0.99),
            p999_ns: q(0.999),
            p9999_ns: q(0.9999),
            max_ns: ns(h.max()),
            mean_ns: ns(h.mean() as u64),
        }
    }

    /// `p50 X  p90 X  p99 X  p99.9 X  p99.99 X  max X  (mean X)`, values rounded to whole units.
    pub fn describe(&self) -> String {
        format!(
            "p50 {:.0}  p90 {:.0}  p99 {:.0}  p99.9 {:.0}  p99.99 {:.0}  max {:.0}  (mean {:.0})",
            self.p50_ns, self.p90_ns, self.p99_ns, self.p999_ns, self.p9999_ns, self.max_ns, self.mean_ns
        )
    }
}

/// The machine-readable summary line, without trailing fields; callers append ` key=value`s.
pub fn summary_line(workload: &str, engine: &str, commands: u64, ops_per_s: f64, p: &Percentiles) -> String {
    format!(
        "workload={workload} engine={engine} commands={commands} ops_per_s={ops_per_s:.0} p50_ns={:.0} p99_ns={:.0} \
         p9999_ns={:.0} max_ns={:.0}",
        p.p50_ns, p.p99_ns, p.p9999_ns, p.max_ns
    )
}
