//! The checker on the machine running the tests (a CI VM): it must say honestly what this host
//! lacks. Each expectation is derived from the host's files here, independently of the checker.

use std::path::PathBuf;
use std::time::Duration;

use tuning::{JitterOptions, Options, Status, check};

fn host_report(core: usize, jitter: Option<JitterOptions>) -> tuning::Report {
    check(&Options { root: PathBuf::from("/"), matcher_core: Some(core), jitter })
}

/// The last online CPU: never core 0 on a multi-core machine.
fn last_cpu() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) - 1
}

#[test]
fn isolation_is_reported_as_this_host_has_it() {
    let core = last_cpu();
    let r = host_report(core, None);
    let isolated = std::fs::read_to_string("/sys/devices/system/cpu/isolated").unwrap_or_default();
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let f = r.get("isolcpus").expect("isolcpus");
    if isolated.trim().is_empty() && !cmdline.contains("isolcpus=") {
        assert_eq!(f.status, Status::Fail, "nothing is isolated here: {}", f.observed);
    }
    let nohz = std::fs::read_to_string("/sys/devices/system/cpu/nohz_full").unwrap_or_default();
    if (nohz.trim().is_empty() || nohz.trim() == "(null)") && !cmdline.contains("nohz_full=") {
        assert_eq!(r.get("nohz_full").unwrap().status, Status::Fail);
        if !cmdline.contains("rcu_nocbs=") {
            assert_eq!(r.get("rcu_nocbs").unwrap().status, Status::Fail);
        }
    }
}

#[test]
fn what_a_vm_cannot_show_is_a_warn_never_a_pass() {
    let core = last_cpu();
    let r = host_report(core, None);
    let cpufreq = format!("/sys/devices/system/cpu/cpu{core}/cpufreq/scaling_governor");
    if !std::path::Path::new(&cpufreq).exists() {
        let f = r.get("cpu_governor").unwrap();
        assert_eq!(f.status, Status::Warn, "{}", f.observed);
        assert!(f.observed.contains("cannot verify"));
    }
    let cpuidle = format!("/sys/devices/system/cpu/cpu{core}/cpuidle");
    let has_states = std::fs::read_dir(&cpuidle)
        .is_ok_and(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("state")));
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let guest = cpuinfo.lines().any(|l| l.starts_with("flags") && l.split_whitespace().any(|w| w == "hypervisor"));
    if !has_states || guest {
        let f = r.get("c_states").unwrap();
        assert_eq!(f.status, Status::Warn, "{}", f.observed);
    }
    let cs =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource").unwrap_or_default();
    let want = match cs.trim() {
        "tsc" | "arch_sys_counter" => Status::Pass,
        "kvm-clock" | "hyperv_clocksource_tsc_page" | "" => Status::Warn,
        _ => Status::Fail,
    };
    assert_eq!(r.get("clocksource").unwrap().status, want, "clocksource {cs:?}");
}

#[test]
fn irqs_on_the_core_are_counted_from_proc_irq() {
    let core = last_cpu();
    let r = host_report(core, None);
    let mut on_core = 0;
    for e in std::fs::read_dir("/proc/irq").expect("/proc/irq").flatten() {
        let dir = e.path();
        if e.file_name().to_string_lossy().parse::<u32>().is_err() {
            continue;
        }
        let text = std::fs::read_to_string(dir.join("effective_affinity_list"))
            .or_else(|_| std::fs::read_to_string(dir.join("smp_affinity_list")))
            .unwrap_or_default();
        if tuning::cpulist::parse_list(&text).is_some_and(|s| s.contains(&core)) {
            on_core += 1;
        }
    }
    let f = r.get("irq_affinity").unwrap();
    if on_core > 0 {
        assert_eq!(f.status, Status::Fail);
        assert!(f.observed.starts_with(&format!("{on_core} of ")), "{}", f.observed);
    }
}

#[test]
fn the_jitter_probe_measures_and_judges_against_its_limit() {
    let core = last_cpu();
    let probe = |max_gap| Some(JitterOptions { duration: Duration::from_millis(100), max_gap });
    // Any real machine has gaps longer than 0 ns between clock reads now and then...
    let strict = host_report(core, probe(Duration::ZERO));
    let f = strict.get("jitter").unwrap();
    assert_eq!(f.status, Status::Fail, "{}", f.observed);
    assert!(f.observed.starts_with(&format!("core {core}: longest gap ")), "{}", f.observed);
    // ...and none of an hour.
    let lax = host_report(core, probe(Duration::from_secs(3600)));
    assert_eq!(lax.get("jitter").unwrap().status, Status::Pass, "{}", lax.get("jitter").unwrap().observed);
}

#[test]
fn the_json_report_of_this_host_parses_with_every_knob() {
    let r = host_report(last_cpu(), None);
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).expect("valid JSON");
    let n = v["findings"].as_array().expect("findings").len();
    assert_eq!(n, 13);
    let s = &v["summary"];
    let total: u64 = ["pass", "warn", "fail", "skip"].iter().map(|k| s[k].as_u64().unwrap()).sum();
    assert_eq!(total, 13);
    assert!(
        s["fail"].as_u64().unwrap() >= 1 || std::fs::read_to_string("/proc/cmdline").unwrap().contains("isolcpus=")
    );
}
