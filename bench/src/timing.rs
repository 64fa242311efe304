//! Per-command timestamps. On x86-64 the time-stamp counter (`lfence; rdtsc` before,
//! `rdtscp; lfence` after, so the measured work cannot drift out of the window), calibrated
//! against `Instant`; elsewhere `Instant` itself.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::report::Percentiles;

/// A calibrated tick source.
#[derive(Clone, Copy, Debug)]
pub struct Ticker {
    /// Ticks per nanosecond.
    pub ticks_per_ns: f64,
    /// What the ticks are.
    pub kind: &'static str,
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::{__rdtscp, _mm_lfence, _rdtsc};

    pub const KIND: &str = "rdtsc (lfence;rdtsc .. rdtscp;lfence)";

    /// Timestamp taken before the measured work.
    #[inline(always)]
    pub fn start() -> u64 {
        // SAFETY: lfence and rdtsc have no preconditions on x86-64.
        unsafe {
            _mm_lfence();
            _rdtsc()
        }
    }

    /// Timestamp taken after the measured work.
    #[inline(always)]
    pub fn stop() -> u64 {
        let mut aux = 0u32;
        // SAFETY: rdtscp writes only `aux`; lfence has no preconditions.
        unsafe {
            let t = __rdtscp(&mut aux);
            _mm_lfence();
            t
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod imp {
    use std::sync::OnceLock;
    use std::time::Instant;

    pub const KIND: &str = "Instant (ns)";

    fn base() -> Instant {
        static BASE: OnceLock<Instant> = OnceLock::new();
        *BASE.get_or_init(Instant::now)
    }

    #[inline(always)]
    pub fn start() -> u64 {
        base().elapsed().as_nanos() as u64
    }

    #[inline(always)]
    pub fn stop() -> u64 {
        base().elapsed().as_nanos() as u64
    }
}

pub use imp::{start, stop};

impl Ticker {
    /// Calibrates the tick rate against `Instant` over about `window`.
    pub fn calibrate(window: Duration) -> Ticker {
        let (i0, t0) = (Instant::now(), start());
        while i0.elapsed() < window {
            std::hint::spin_loop();
        }
        let (t1, ns) = (stop(), i0.elapsed().as_nanos() as f64);
        Ticker { ticks_per_ns: (t1 - t0) as f64 / ns, kind: imp::KIND }
    }

    /// Converts ticks to nanoseconds.
    #[inline]
    pub fn ns(&self, ticks: u64) -> f64 {
        ticks as f64 / self.ticks_per_ns
    }
}

/// Minor page faults of the calling thread so far (Linux `/proc/thread-self/stat`), to show
/// first-touch faults landing inside measured work.
pub fn minor_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the parenthesised command name; minflt is field 10 overall.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(7)?.parse().ok()
}

/// Timestamps an empty window a million times: the floor under every per-command figure
/// (p50 and p99 in ns).
pub fn timer_overhead(ticker: &Ticker) -> (f64, f64) {
    let mut h = crate::report::histogram();
    for _ in 0..1_000_000 {
        let t0 = start();
        let t1 = stop();
        h.saturating_record((t1 - t0).max(1));
    }
    (ticker.ns(h.value_at_quantile(0.5)), ticker.ns(h.value_at_quantile(0.99)))
}

/// Timed windows at least this long (ns) are counted as interrupted by the machine: on the VM
/// this was measured on, an interruption costs 5-10 µs and essentially none cost 1-5 µs.
pub const INTERRUPTION_NS: u64 = 5_000;

/// What the machine adds to every timed window by itself, from [`noise_probe`].
#[derive(Clone, Copy, Debug)]
pub struct Noise {
    /// Percentiles of the probe's windows.
    pub percentiles: Percentiles,
    /// Probe windows of at least [`INTERRUPTION_NS`].
    pub interrupted: u64,
    /// Time spent inside the probe's windows, in ns.
    pub window_ns: f64,
}

impl Noise {
    /// Interruptions of at least [`INTERRUPTION_NS`] per second spent inside timed windows: a
    /// window of mean `m` ns is hit `rate * m * 1e-9` times on average, whatever runs in it.
    pub fn interruptions_per_s(&self) -> f64 {
        if self.window_ns > 0.0 { self.interrupted as f64 / (self.window_ns * 1e-9) } else { 0.0 }
    }
}

/// Values in `h` (ticks) of at least `ns` nanoseconds, to within the histogram's resolution.
pub fn count_at_least(h: &Histogram<u64>, ticker: &Ticker, ns: u64) -> u64 {
    let ticks = (ns as f64 * ticker.ticks_per_ns).ceil() as u64;
    // `count_between` clamps the upper bound to the largest value the histogram can hold.
    h.count_between(ticks.max(1), u64::MAX)
}

/// Times a fixed ~100 ns piece of work two million times: what this machine adds to any
/// per-command tail by itself (interrupts, hypervisor steal), independent of what is measured.
pub fn noise_probe(ticker: &Ticker) -> Noise {
    let mut h = crate::report::histogram();
    let mut x = 1u64;
    let mut window_ticks = 0u64;
    for _ in 0..2_000_000 {
        let t0 = start();
        for _ in 0..64 {
            x = std::hint::black_box(x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(7));
        }
        let t1 = stop();
        // Summed exactly rather than taken from the histogram, whose buckets round.
        window_ticks += t1 - t0;
        h.saturating_record((t1 - t0).max(1));
    }
    Noise {
        percentiles: Percentiles::from_ticks(&h, ticker),
        interrupted: count_at_least(&h, ticker, INTERRUPTION_NS),
        window_ns: ticker.ns(window_ticks),
    }
}

/// The percentiles of [`noise_probe`] alone.
pub fn jitter_probe(ticker: &Ticker) -> Percentiles {
    noise_probe(ticker).percentiles
}
