//! The jitter probe: a thread pinned to the matcher core reads the monotonic clock in a tight
//! loop for a bounded time and records the longest gap between two reads. On an isolated,
//! tickless core with no IRQs the gaps stay at tens of nanoseconds; every interruption (tick,
//! IRQ, another task, an SMI, the hypervisor) shows up as a gap. Run it with sable stopped:
//! it competes with a matcher pinned to the same core.

use std::time::{Duration, Instant};

use crate::report::{Finding, Status};
use crate::{JITTER_PROBE_MS_MAX, JitterOptions};

const WHY: &str = "what the matcher itself would see: the longest time the core was taken away \
    from a spinning thread";

/// What the probe measured.
#[derive(Clone, Copy, Debug)]
pub struct Measurement {
    /// Clock reads.
    pub reads: u64,
    /// Longest gap between consecutive reads.
    pub max_gap: Duration,
    /// Gaps longer than the limit.
    pub gaps_over_limit: u64,
}

/// Spins on `core` for `opts.duration` (at most [`JITTER_PROBE_MS_MAX`]). Errors if the thread
/// cannot be pinned there.
pub fn probe(core: usize, opts: JitterOptions) -> Result<Measurement, String> {
    let duration = opts.duration.min(Duration::from_millis(JITTER_PROBE_MS_MAX));
    std::thread::Builder::new()
        .name("sable-jitter".into())
        .spawn(move || {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                return Err(format!("cannot pin a thread to core {core} (not in this process's CPU set?)"));
            }
            let start = Instant::now();
            let mut last = start;
            let mut m = Measurement { reads: 0, max_gap: Duration::ZERO, gaps_over_limit: 0 };
            while last - start < duration {
                let now = Instant::now();
                let gap = now - last;
                m.max_gap = m.max_gap.max(gap);
                m.gaps_over_limit += u64::from(gap > opts.max_gap);
                m.reads += 1;
                last = now;
            }
            Ok(m)
        })
        .map_err(|e| format!("cannot start the probe thread: {e}"))?
        .join()
        .map_err(|_| "the probe thread panicked".to_string())?
}

/// The `jitter` finding: SKIP when `opts` is `None`.
pub fn finding(core: Option<usize>, opts: Option<JitterOptions>) -> Finding {
    let fix = "isolate the core (isolcpus, nohz_full, rcu_nocbs), move IRQs off it, performance \
        governor, shallow C-states; on a VM jitter is the hypervisor's and cannot be tuned away"
        .to_string();
    let Some(opts) = opts else {
        return Finding::new("jitter", Status::Skip, "probe skipped (--skip-jitter)".into(), WHY, fix);
    };
    let Some(core) = core else { return crate::checks::no_core("jitter", WHY) };
    let limit_us = opts.max_gap.as_micros();
    match probe(core, opts) {
        Err(e) => Finding::new("jitter", Status::Fail, e, WHY, fix),
        Ok(m) => {
            let observed = format!(
                "core {core}: longest gap {} us in {} ms ({} clock reads, {} gaps over {limit_us} us)",
                m.max_gap.as_micros(),
                opts.duration.as_millis(),
                m.reads,
                m.gaps_over_limit
            );
            let status = if m.max_gap <= opts.max_gap { Status::Pass } else { Status::Fail };
            Finding::new("jitter", status, observed, WHY, fix)
        }
    }
}
