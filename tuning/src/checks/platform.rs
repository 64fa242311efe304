//! Platform: NUMA placement of the matcher core and the clocksource.

use super::no_core;
use crate::cpulist::parse_list;
use crate::host::Host;
use crate::report::{Finding, Status};

const WHY_NUMA: &str = "memory and the client NIC on another NUMA node than the matcher core add \
    a cross-socket hop to every access; automatic NUMA balancing migrates pages under the matcher";
const WHY_CLOCK: &str = "sable stamps every command with the time; with tsc, clock_gettime is a \
    few nanoseconds in the vDSO, with hpet or acpi_pm it is a system call of about a microsecond";

/// Clocksources read in the vDSO from an invariant counter.
const GOOD_CLOCKSOURCES: [&str; 2] = ["tsc", "arch_sys_counter"];
/// Paravirtual clocksources: vDSO-readable, but a VM's.
const VM_CLOCKSOURCES: [&str; 2] = ["kvm-clock", "hyperv_clocksource_tsc_page"];

/// The matcher core's NUMA node; on a multi-node host, no NIC on another node and no
/// automatic NUMA balancing.
pub fn numa(host: &Host, core: Option<usize>) -> Finding {
    let Some(core) = core else { return no_core("numa", WHY_NUMA) };
    let fix = "choose a matcher core on the client NIC's node (cat /sys/class/net/IF/device/numa_node); \
        bind memory with NUMAPolicy=bind and NUMAMask=<node> in the unit; kernel.numa_balancing=0"
        .to_string();
    let nodes: Vec<(usize, String)> = host
        .list("sys/devices/system/node")
        .into_iter()
        .filter_map(|n| n.strip_prefix("node").and_then(|i| i.parse().ok()).map(|i: usize| (i, n.clone())))
        .collect();
    if nodes.is_empty() {
        return Finding::new(
            "numa",
            Status::Warn,
            "no NUMA information in /sys/devices/system/node".into(),
            WHY_NUMA,
            fix,
        );
    }
    let node_of_core = nodes.iter().find_map(|(i, n)| {
        host.read(&format!("sys/devices/system/node/{n}/cpulist"))
            .and_then(|t| parse_list(&t))
            .filter(|s| s.contains(&core))
            .map(|_| *i)
    });
    let Some(node) = node_of_core else {
        return Finding::new("numa", Status::Warn, format!("core {core} is on no listed node"), WHY_NUMA, fix);
    };
    if nodes.len() == 1 {
        return Finding::new("numa", Status::Pass, format!("one node: core {core} on node {node}"), WHY_NUMA, fix);
    }
    let mut problems = Vec::new();
    for iface in host.list("sys/class/net") {
        let nic_node: Option<i64> =
            host.read(&format!("sys/class/net/{iface}/device/numa_node")).and_then(|t| t.parse().ok());
        if let Some(n) = nic_node.filter(|n| *n >= 0 && *n as usize != node) {
            problems.push(format!("{iface} on node {n}"));
        }
    }
    if host.read("proc/sys/kernel/numa_balancing").is_some_and(|t| t != "0") {
        problems.push("kernel.numa_balancing is on".into());
    }
    let base = format!("{} nodes: core {core} on node {node}", nodes.len());
    if problems.is_empty() {
        return Finding::new("numa", Status::Pass, base, WHY_NUMA, fix);
    }
    Finding::new("numa", Status::Warn, format!("{base}; {}", problems.join("; ")), WHY_NUMA, fix)
}

/// The clocksource is an invariant counter read in the vDSO.
pub fn clocksource(host: &Host) -> Finding {
    let fix = "if the TSC is invariant (constant_tsc and nonstop_tsc in /proc/cpuinfo): kernel \
        command line clocksource=tsc tsc=reliable"
        .to_string();
    let Some(cs) = host.read("sys/devices/system/clocksource/clocksource0/current_clocksource") else {
        return Finding::new("clocksource", Status::Warn, "cannot read the current clocksource".into(), WHY_CLOCK, fix);
    };
    let (status, note) = if GOOD_CLOCKSOURCES.contains(&cs.as_str()) {
        (Status::Pass, "")
    } else if VM_CLOCKSOURCES.contains(&cs.as_str()) {
        (Status::Warn, ": a hypervisor's clock, read in the vDSO but not the bare-metal TSC")
    } else {
        (Status::Fail, ": clock_gettime is a system call")
    };
    Finding::new("clocksource", status, format!("{cs}{note}"), WHY_CLOCK, fix)
}
