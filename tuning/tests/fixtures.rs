//! The checker on fixture trees that stand in for a tuned and an untuned host
//! (`tuning/fixtures/`, described in its README): the verdict of every knob, and why.

use std::path::PathBuf;

use tuning::{Options, Report, Status, check};

/// The knobs every report has, in order.
const KNOBS: [&str; 13] = [
    "matcher_core",
    "isolcpus",
    "nohz_full",
    "rcu_nocbs",
    "irq_affinity",
    "cpu_governor",
    "c_states",
    "transparent_hugepages",
    "swap",
    "numa",
    "clocksource",
    "memlock",
    "jitter",
];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

fn run(name: &str, core: Option<usize>) -> Report {
    check(&Options { root: fixture(name), matcher_core: core, jitter: None })
}

fn status(r: &Report, knob: &str) -> Status {
    r.get(knob).unwrap_or_else(|| panic!("no {knob} in the report")).status
}

fn observed<'a>(r: &'a Report, knob: &str) -> &'a str {
    &r.get(knob).expect("knob present").observed
}

#[test]
fn a_tuned_host_passes_every_knob_but_the_skipped_probe() {
    let r = run("tuned-host", Some(2));
    let knobs: Vec<&str> = r.findings.iter().map(|f| f.knob).collect();
    assert_eq!(knobs, KNOBS);
    for f in &r.findings {
        let want = if f.knob == "jitter" { Status::Skip } else { Status::Pass };
        assert_eq!(f.status, want, "{}: {}", f.knob, f.observed);
    }
    assert!(observed(&r, "isolcpus").contains("/sys/devices/system/cpu/isolated: 2-3"));
    assert!(observed(&r, "irq_affinity").contains("none of 6 IRQs"), "IRQ 25's effective affinity counts");
    assert!(observed(&r, "c_states").contains("PM QoS limit 1 us"), "C6 is kept out by the QoS limit");
    assert!(observed(&r, "numa").contains("core 2 on node 0"));
}

#[test]
fn a_core_outside_the_isolated_set_fails_isolation_on_the_same_host() {
    let r = run("tuned-host", Some(5));
    for knob in ["isolcpus", "nohz_full", "rcu_nocbs"] {
        assert_eq!(status(&r, knob), Status::Fail, "{knob}: {}", observed(&r, knob));
    }
    assert!(observed(&r, "isolcpus").contains("core 5 not covered"));
    // IRQ 25 may go to any CPU but is delivered to 0 (effective_affinity_list): what counts.
    assert_eq!(status(&r, "irq_affinity"), Status::Pass, "{}", observed(&r, "irq_affinity"));
    assert!(observed(&r, "numa").contains("eth0 on node 0"), "{}", observed(&r, "numa"));
    assert_eq!(status(&r, "numa"), Status::Warn);
    // cpu5 has no cpufreq or cpuidle files in the fixture: not verifiable, never a PASS.
    assert_eq!(status(&r, "cpu_governor"), Status::Warn);
    assert_eq!(status(&r, "c_states"), Status::Warn);
}

#[test]
fn an_untuned_host_fails_what_it_lacks() {
    let r = run("untuned-host", Some(2));
    let expected = [
        ("matcher_core", Status::Pass),
        ("isolcpus", Status::Fail),
        ("nohz_full", Status::Fail),
        ("rcu_nocbs", Status::Fail),
        ("irq_affinity", Status::Fail),
        ("cpu_governor", Status::Fail),
        ("c_states", Status::Fail),
        ("transparent_hugepages", Status::Warn),
        ("swap", Status::Fail),
        ("numa", Status::Warn),
        ("clocksource", Status::Fail),
        ("memlock", Status::Warn),
        ("jitter", Status::Skip),
    ];
    for (knob, want) in expected {
        assert_eq!(status(&r, knob), want, "{knob}: {}", observed(&r, knob));
    }
    assert!(observed(&r, "irq_affinity").starts_with("4 of 6 IRQs"), "{}", observed(&r, "irq_affinity"));
    assert!(observed(&r, "irq_affinity").contains("default_smp_affinity includes it"));
    assert!(observed(&r, "c_states").contains("C1E (10 us), C6 (133 us)"), "{}", observed(&r, "c_states"));
    assert!(observed(&r, "swap").contains("swappiness=60"));
    assert!(observed(&r, "numa").contains("eth0 on node 1") && observed(&r, "numa").contains("numa_balancing"));
    assert_eq!(observed(&r, "transparent_hugepages"), "enabled=never defrag=always");
    assert_eq!(observed(&r, "memlock"), "8388608 bytes");
    let s = r.summary();
    assert_eq!((s.pass, s.warn, s.fail, s.skip), (1, 3, 8, 1));
}

#[test]
fn without_a_matcher_core_every_per_core_knob_fails() {
    let r = run("tuned-host", None);
    for knob in
        ["matcher_core", "isolcpus", "nohz_full", "rcu_nocbs", "irq_affinity", "cpu_governor", "c_states", "numa"]
    {
        assert_eq!(status(&r, knob), Status::Fail, "{knob}");
        assert!(r.get(knob).unwrap().fix.contains("pipeline.matcher_core"));
    }
}

#[test]
fn a_missing_root_is_reported_as_unreadable_never_as_pass() {
    let r = run("no-such-host", Some(2));
    for f in &r.findings {
        assert_ne!(f.status, Status::Pass, "{}: {}", f.knob, f.observed);
    }
}

#[test]
fn rcu_nocbs_is_implied_by_nohz_full() {
    let dir = std::env::temp_dir().join(format!("sable-tuning-rcu-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("proc")).unwrap();
    std::fs::write(dir.join("proc/cmdline"), "ro nohz_full=1-3 isolcpus=1-3\n").unwrap();
    let r = check(&Options { root: dir.clone(), matcher_core: Some(2), jitter: None });
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(status(&r, "rcu_nocbs"), Status::Pass);
    assert!(observed(&r, "rcu_nocbs").contains("implied by nohz_full (nohz_full= on the kernel command line: 1-3)"));
    assert!(observed(&r, "isolcpus").contains("isolcpus= on the kernel command line"));
}

#[test]
fn json_has_every_knob_with_reason_and_fix() {
    let r = run("untuned-host", Some(2));
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).expect("valid JSON");
    let findings = v["findings"].as_array().expect("findings");
    let knobs: Vec<&str> = findings.iter().map(|f| f["knob"].as_str().unwrap()).collect();
    assert_eq!(knobs, KNOBS);
    for f in findings {
        assert!(["PASS", "WARN", "FAIL", "SKIP"].contains(&f["status"].as_str().unwrap()));
        assert!(!f["reason"].as_str().unwrap().is_empty() && !f["fix"].as_str().unwrap().is_empty());
    }
    assert_eq!(v["summary"]["fail"], 8);
    assert_eq!(v["matcher_core"], 2);
    let text = r.to_text();
    assert!(text.contains("FAIL  isolcpus") && text.contains("13 knobs: 1 PASS, 3 WARN, 8 FAIL, 1 SKIP"), "{text}");
}
