//! # sable-tuning: is this host tuned for sable's matcher?
//!
//! [`check`] reads the host's `/proc` and `/sys` and reports, per knob, PASS / WARN / FAIL
//! (or SKIP) with what it saw, why the knob matters and how to fix it: isolation of the
//! matcher core (isolcpus, nohz_full, rcu_nocbs), IRQ affinity away from it, the CPU governor
//! and C-states, transparent huge pages, swap, NUMA placement, the clocksource, the memlock
//! limit, and a short jitter probe on the matcher core. `sable tune check` is the command
//! ([`cli`]); the files that make a host pass live beside this crate (`tuning/tuned/`,
//! `tuning/sysctl.d/`, `tuning/kernel-cmdline.example`).
//!
//! **Invariants:** every file read goes through [`host::Host`], rooted at a directory (`/` on a
//! real host, a fixture tree in tests), so the verdicts are tested on hosts this machine is not;
//! nothing is written; what cannot be read is a WARN that says so, never a PASS. The jitter
//! probe is the only thing that runs on the real machine whatever the root, spins for at most
//! [`JITTER_PROBE_MS_MAX`] and can be skipped.

pub mod checks;
pub mod cli;
pub mod cpulist;
pub mod host;
pub mod jitter;
pub mod report;

use std::path::PathBuf;
use std::time::Duration;

pub use report::{Finding, Report, Status};

/// Default limit on the jitter probe's longest gap between two clock reads, in microseconds.
pub const JITTER_MAX_GAP_US_DEFAULT: u64 = 20;
/// Default length of the jitter probe, in milliseconds.
pub const JITTER_PROBE_MS_DEFAULT: u64 = 1000;
/// Longest jitter probe allowed: it busy-spins a core, so it stays short.
pub const JITTER_PROBE_MS_MAX: u64 = 1000;

/// What to check.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where the host's `/proc` and `/sys` are (`/` on the host itself).
    pub root: PathBuf,
    /// The core the matcher thread is pinned to (`pipeline.matcher_core`).
    pub matcher_core: Option<usize>,
    /// The jitter probe's settings; `None` skips it (fixture runs: it measures this machine).
    pub jitter: Option<JitterOptions>,
}

/// Settings of the jitter probe.
#[derive(Clone, Copy, Debug)]
pub struct JitterOptions {
    /// How long to spin.
    pub duration: Duration,
    /// Longest acceptable gap between consecutive clock reads.
    pub max_gap: Duration,
}

/// Runs every check and returns the report (one finding per knob, in a fixed order).
pub fn check(opts: &Options) -> Report {
    let host = host::Host::new(&opts.root);
    let core = opts.matcher_core;
    let findings = vec![
        checks::isolation::matcher_core(&host, core),
        checks::isolation::isolcpus(&host, core),
        checks::isolation::nohz_full(&host, core),
        checks::isolation::rcu_nocbs(&host, core),
        checks::isolation::irq_affinity(&host, core),
        checks::power::cpu_governor(&host, core),
        checks::power::c_states(&host, core),
        checks::memory::transparent_hugepages(&host),
        checks::memory::swap(&host),
        checks::platform::numa(&host, core),
        checks::platform::clocksource(&host),
        checks::memory::memlock(&host),
        jitter::finding(core, opts.jitter),
    ];
    Report { root: opts.root.display().to_string(), matcher_core: core, findings }
}
