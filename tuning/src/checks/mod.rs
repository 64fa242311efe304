//! One function per knob, each returning a [`crate::Finding`]. Grouped by subject:
//! [`isolation`] (the matcher core and what may interrupt it), [`power`] (frequency and idle
//! states), [`memory`] (huge pages, swap, memlock), [`platform`] (NUMA, clocksource).

pub mod isolation;
pub mod memory;
pub mod platform;
pub mod power;

use crate::report::{Finding, Status};

/// The finding of a per-core knob when no matcher core is configured.
pub(crate) fn no_core(knob: &'static str, reason: &str) -> Finding {
    Finding::new(
        knob,
        Status::Fail,
        "no matcher core configured: nothing to check this knob for".into(),
        reason,
        "set pipeline.matcher_core in the configuration (or pass --core)".into(),
    )
}
