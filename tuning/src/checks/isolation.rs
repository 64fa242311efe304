//! The matcher core and what may interrupt it: scheduler isolation, the timer tick, RCU
//! callbacks and device interrupts.

use super::no_core;
use crate::cpulist::{CpuSet, format_list, parse_list, parse_mask};
use crate::host::Host;
use crate::report::{Finding, Status};

const WHY_CORE: &str = "the matcher busy-spins on one core of its own (pipeline.matcher_core); every \
    other check is about that core";
const WHY_ISOLCPUS: &str = "the scheduler must never place another task on the matcher core: one \
    preemption costs the matcher tens of microseconds";
const WHY_NOHZ: &str = "with one runnable task, nohz_full stops the periodic timer tick on the core \
    (about 1,000 interrupts a second otherwise)";
const WHY_RCU: &str = "RCU callbacks run on the CPU that queued them unless offloaded to kthreads \
    elsewhere (rcu_nocbs; nohz_full implies it)";
const WHY_IRQ: &str = "a device interrupt handled on the matcher core stops the matcher for its \
    handler's time; IRQs belong on the housekeeping cores";

/// Isolation flags `isolcpus=` may carry before its CPU list.
const ISOLCPUS_FLAGS: [&str; 3] = ["nohz", "domain", "managed_irq"];

/// `pipeline.matcher_core` is set and names an online CPU.
pub fn matcher_core(host: &Host, core: Option<usize>) -> Finding {
    let Some(core) = core else { return no_core("matcher_core", WHY_CORE) };
    let fix = "pick an online core that is not 0 and isolate it (tuning/kernel-cmdline.example)".to_string();
    match host.read("sys/devices/system/cpu/online").and_then(|t| parse_list(&t)) {
        None => Finding::new(
            "matcher_core",
            Status::Warn,
            format!("core {core}; cannot read the online CPUs"),
            WHY_CORE,
            fix,
        ),
        Some(online) if !online.contains(&core) => Finding::new(
            "matcher_core",
            Status::Fail,
            format!("core {core} is not online (online: {})", format_list(&online)),
            WHY_CORE,
            fix,
        ),
        Some(_) if core == 0 => Finding::new(
            "matcher_core",
            Status::Warn,
            "core 0: it keeps housekeeping work and interrupts that cannot move".into(),
            WHY_CORE,
            fix,
        ),
        Some(online) => Finding::new(
            "matcher_core",
            Status::Pass,
            format!("core {core} (online: {})", format_list(&online)),
            WHY_CORE,
            fix,
        ),
    }
}

/// The CPU list of an `isolcpus=` value, without its flags.
fn isolcpus_list(value: &str) -> Option<CpuSet> {
    let cpus: Vec<&str> = value.split(',').filter(|p| !ISOLCPUS_FLAGS.contains(p)).collect();
    parse_list(&cpus.join(","))
}

/// A set from sysfs (`file`), else from the kernel command line (`param`), with where it came from.
fn kernel_set(
    host: &Host,
    file: &str,
    param: &str,
    from_cmdline: fn(&str) -> Option<CpuSet>,
) -> Option<(CpuSet, String)> {
    if let Some(text) = host.read(file) {
        // nohz_full reads "(null)" when unset.
        let text = if text == "(null)" { String::new() } else { text };
        if let Some(set) = parse_list(&text) {
            return Some((set, format!("/{file}")));
        }
    }
    let value = host.cmdline_param(param)?;
    from_cmdline(&value).map(|set| (set, format!("{param}= on the kernel command line")))
}

fn covers(knob: &'static str, why: &str, core: usize, found: Option<(CpuSet, String)>, fix: String) -> Finding {
    match found {
        Some((set, source)) if set.contains(&core) => {
            Finding::new(knob, Status::Pass, format!("core {core} covered ({source}: {})", format_list(&set)), why, fix)
        }
        Some((set, source)) if !set.is_empty() => Finding::new(
            knob,
            Status::Fail,
            format!("core {core} not covered ({source}: {})", format_list(&set)),
            why,
            fix,
        ),
        _ => Finding::new(knob, Status::Fail, format!("not set; core {core} not covered"), why, fix),
    }
}

/// `isolcpus` (domain isolation) covers the matcher core.
pub fn isolcpus(host: &Host, core: Option<usize>) -> Finding {
    let Some(core) = core else { return no_core("isolcpus", WHY_ISOLCPUS) };
    let found = kernel_set(host, "sys/devices/system/cpu/isolated", "isolcpus", isolcpus_list);
    let fix =
        format!("kernel command line: isolcpus=managed_irq,domain,{core} (tuning/kernel-cmdline.example), reboot");
    covers("isolcpus", WHY_ISOLCPUS, core, found, fix)
}

/// `nohz_full` covers the matcher core.
pub fn nohz_full(host: &Host, core: Option<usize>) -> Finding {
    let Some(core) = core else { return no_core("nohz_full", WHY_NOHZ) };
    let found = kernel_set(host, "sys/devices/system/cpu/nohz_full", "nohz_full", parse_list);
    let fix = format!("kernel command line: nohz_full={core} (tuning/kernel-cmdline.example), reboot");
    covers("nohz_full", WHY_NOHZ, core, found, fix)
}

/// `rcu_nocbs` (or `nohz_full`, which implies it) covers the matcher core.
pub fn rcu_nocbs(host: &Host, core: Option<usize>) -> Finding {
    let Some(core) = core else { return no_core("rcu_nocbs", WHY_RCU) };
    let fix = format!("kernel command line: rcu_nocbs={core} rcu_nocb_poll (tuning/kernel-cmdline.example), reboot");
    let explicit = host.cmdline_param("rcu_nocbs").and_then(|v| parse_list(&v)).map(|s| (s, "rcu_nocbs=".to_string()));
    if explicit.as_ref().is_some_and(|(s, _)| s.contains(&core)) {
        return covers("rcu_nocbs", WHY_RCU, core, explicit, fix);
    }
    let nohz = kernel_set(host, "sys/devices/system/cpu/nohz_full", "nohz_full", parse_list);
    if let Some((set, source)) = nohz.filter(|(s, _)| s.contains(&core)) {
        let observed = format!("core {core} covered: implied by nohz_full ({source}: {})", format_list(&set));
        return Finding::new("rcu_nocbs", Status::Pass, observed, WHY_RCU, fix);
    }
    covers("rcu_nocbs", WHY_RCU, core, explicit, fix)
}

/// No IRQ is delivered to the matcher core, and new IRQs do not default to it.
pub fn irq_affinity(host: &Host, core: Option<usize>) -> Finding {
    let Some(core) = core else { return no_core("irq_affinity", WHY_IRQ) };
    let fix = format!(
        "stop irqbalance or set IRQBALANCE_BANNED_CPULIST={core}; write the housekeeping cores to \
         /proc/irq/default_smp_affinity and each /proc/irq/N/smp_affinity_list; isolcpus=managed_irq \
         keeps managed IRQs off the core"
    );
    let irqs: Vec<String> = host.list("proc/irq").into_iter().filter(|n| n.parse::<u32>().is_ok()).collect();
    if irqs.is_empty() {
        return Finding::new("irq_affinity", Status::Warn, "cannot read /proc/irq".into(), WHY_IRQ, fix);
    }
    let mut on_core = Vec::new();
    for irq in &irqs {
        // Where the IRQ is really delivered, when the kernel says; else the requested affinity.
        let text = host
            .read(&format!("proc/irq/{irq}/effective_affinity_list"))
            .or_else(|| host.read(&format!("proc/irq/{irq}/smp_affinity_list")));
        if text.and_then(|t| parse_list(&t)).is_some_and(|s| s.contains(&core)) {
            on_core.push(irq.as_str());
        }
    }
    let default_on_core =
        host.read("proc/irq/default_smp_affinity").and_then(|t| parse_mask(&t)).is_some_and(|s| s.contains(&core));
    if on_core.is_empty() && !default_on_core {
        let observed = format!("none of {} IRQs may be delivered to core {core}", irqs.len());
        return Finding::new("irq_affinity", Status::Pass, observed, WHY_IRQ, fix);
    }
    let shown: Vec<&str> = on_core.iter().take(12).copied().collect();
    let more = if on_core.len() > shown.len() { ", …" } else { "" };
    let default = if default_on_core { "; default_smp_affinity includes it" } else { "" };
    let observed = format!(
        "{} of {} IRQs may be delivered to core {core} ({}{more}){default}",
        on_core.len(),
        irqs.len(),
        shown.join(" ")
    );
    Finding::new("irq_affinity", Status::Fail, observed, WHY_IRQ, fix)
}
