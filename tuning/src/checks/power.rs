//! Frequency scaling and idle states of the matcher core.

use super::no_core;
use crate::host::Host;
use crate::report::{Finding, Status};

/// Deepest C-state exit latency allowed on the matcher core, in microseconds: POLL and C1
/// (about 1–2 µs) pass, C1E and deeper (10 µs to hundreds) fail.
pub const MAX_CSTATE_EXIT_LATENCY_US: u64 = 2;

/// `/dev/cpu_dma_latency` value meaning "no constraint" (PM_QOS_DEFAULT_VALUE, 2000 s).
const PM_QOS_NO_CONSTRAINT_US: i32 = 2_000_000_000;

const WHY_GOVERNOR: &str = "a frequency-scaling governor lowers the clock of an idle-looking core and \
    raises it late; sable wants the core at full speed all the time (governor performance)";
const WHY_CSTATES: &str = "waking a core from a deep idle state takes tens to hundreds of \
    microseconds; cores sable uses should sleep no deeper than C1";

/// The matcher core's cpufreq governor is `performance`.
pub fn cpu_governor(host: &Host, core: Option<usize>) -> Finding {
    let Some(core) = core else { return no_core("cpu_governor", WHY_GOVERNOR) };
    let fix = "tuned-adm profile sable (tuning/tuned/sable), or cpupower frequency-set -g performance; \
        BIOS: performance power profile"
        .to_string();
    let file = format!("sys/devices/system/cpu/cpu{core}/cpufreq/scaling_governor");
    match host.read(&file) {
        None => Finding::new(
            "cpu_governor",
            Status::Warn,
            format!(
                "no cpufreq for cpu{core} (/{file} absent): frequency is not under the kernel's control here (a VM, or the firmware decides); cannot verify"
            ),
            WHY_GOVERNOR,
            fix,
        ),
        Some(g) if g == "performance" => {
            Finding::new("cpu_governor", Status::Pass, format!("cpu{core}: performance"), WHY_GOVERNOR, fix)
        }
        Some(g) => Finding::new("cpu_governor", Status::Fail, format!("cpu{core}: {g}"), WHY_GOVERNOR, fix),
    }
}

/// The exit-latency limit the cpuidle governor honours for `core`, in microseconds, if any:
/// the per-CPU resume-latency QoS and the global `/dev/cpu_dma_latency` request.
fn latency_limit_us(host: &Host, core: usize) -> Option<u64> {
    let per_cpu =
        host.read(&format!("sys/devices/system/cpu/cpu{core}/power/pm_qos_resume_latency_us")).and_then(|t| {
            match t.as_str() {
                "n/a" => Some(0), // no idle state allowed at all
                "0" => None,      // no constraint
                v => v.parse().ok(),
            }
        });
    let global = host
        .read_bytes("dev/cpu_dma_latency")
        .filter(|b| b.len() == 4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .filter(|v| (0..PM_QOS_NO_CONSTRAINT_US).contains(v))
        .map(|v| v as u64);
    per_cpu.into_iter().chain(global).min()
}

/// No idle state deeper than [`MAX_CSTATE_EXIT_LATENCY_US`] is usable on the matcher core.
pub fn c_states(host: &Host, core: Option<usize>) -> Finding {
    let Some(core) = core else { return no_core("c_states", WHY_CSTATES) };
    let fix = format!(
        "tuned-adm profile sable (PM QoS latency limit), or kernel command line \
         intel_idle.max_cstate=1 processor.max_cstate=1, or echo 1 > \
         /sys/devices/system/cpu/cpu{core}/cpuidle/stateN/disable for each deeper state"
    );
    let dir = format!("sys/devices/system/cpu/cpu{core}/cpuidle");
    let states: Vec<String> = host.list(&dir).into_iter().filter(|n| n.starts_with("state")).collect();
    if states.is_empty() {
        let observed = format!(
            "no cpuidle states for cpu{core} (/{dir} absent): idling is not under the kernel's control here (a VM: the hypervisor decides); cannot verify"
        );
        return Finding::new("c_states", Status::Warn, observed, WHY_CSTATES, fix);
    }
    let limit = latency_limit_us(host, core);
    let mut usable_deep = Vec::new();
    for s in &states {
        let name = host.read(&format!("{dir}/{s}/name")).unwrap_or_else(|| s.clone());
        let latency: u64 = host.read(&format!("{dir}/{s}/latency")).and_then(|t| t.parse().ok()).unwrap_or(u64::MAX);
        let disabled = host.read(&format!("{dir}/{s}/disable")).is_some_and(|t| t == "1");
        let allowed = !disabled && limit.is_none_or(|l| latency <= l);
        if allowed && latency > MAX_CSTATE_EXIT_LATENCY_US {
            usable_deep.push(format!("{name} ({latency} us)"));
        }
    }
    let qos = limit.map_or_else(|| "no PM QoS limit".to_string(), |l| format!("PM QoS limit {l} us"));
    if usable_deep.is_empty() {
        let observed = format!("cpu{core}: no usable state exits slower than {MAX_CSTATE_EXIT_LATENCY_US} us ({qos})");
        if is_guest(host) {
            let observed = format!(
                "{observed}; but these are a guest's idle states: the hypervisor host's C-states decide and cannot be seen from here"
            );
            return Finding::new("c_states", Status::Warn, observed, WHY_CSTATES, fix);
        }
        return Finding::new("c_states", Status::Pass, observed, WHY_CSTATES, fix);
    }
    let observed = format!("cpu{core} may enter {} ({qos})", usable_deep.join(", "));
    Finding::new("c_states", Status::Fail, observed, WHY_CSTATES, fix)
}

/// Whether this is a virtual machine guest (the CPU's `hypervisor` flag, or the guest-only
/// `haltpoll` cpuidle driver).
fn is_guest(host: &Host) -> bool {
    let flagged = host
        .read("proc/cpuinfo")
        .is_some_and(|t| t.lines().any(|l| l.starts_with("flags") && l.split_whitespace().any(|w| w == "hypervisor")));
    flagged || host.read("sys/devices/system/cpu/cpuidle/current_driver").is_some_and(|d| d == "haltpoll")
}
