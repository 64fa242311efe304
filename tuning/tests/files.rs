//! The tuning files (`tuning/sysctl.d/`, `tuning/tuned/sable/`, `tuning/kernel-cmdline.example`):
//! every setting has its reason above it, every sysctl names a key this kernel has, the core
//! lists agree, and the example command line makes the checker pass the isolation knobs.

use std::path::{Path, PathBuf};

use tuning::{Options, Status, check};

/// The matcher core of the example host (systemd/install.sh writes `matcher_core = 2`).
const EXAMPLE_CORE: usize = 2;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `(line number, key, value)` of every setting, each checked to sit in a block that starts
/// with a comment (a blank line or a `[section]` ends a block).
fn settings(rel: &str) -> Vec<(usize, String, String)> {
    let mut commented = false;
    let mut out = Vec::new();
    let mut bare = Vec::new();
    for (n, line) in read(rel).lines().enumerate() {
        let line = line.trim();
        if line.starts_with('#') {
            commented = true;
        } else if line.is_empty() || line.starts_with('[') {
            commented = false;
        } else {
            let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("{rel}:{}: not key=value: {line}", n + 1));
            if !commented {
                bare.push(format!("{rel}:{}: {line}", n + 1));
            }
            out.push((n + 1, k.trim().to_string(), v.trim().to_string()));
        }
    }
    assert!(bare.is_empty(), "settings without a reason above them:\n{}", bare.join("\n"));
    out
}

fn sysctl_exists(key: &str) -> bool {
    Path::new("/proc/sys").join(key.replace('.', "/")).exists()
}

#[test]
fn every_sysctl_has_a_reason_and_names_a_real_key() {
    let all = settings("sysctl.d/90-sable.conf");
    assert!(all.len() >= 5);
    for (n, key, _) in all {
        assert!(sysctl_exists(&key), "sysctl.d/90-sable.conf:{n}: no /proc/sys entry for {key}");
    }
}

#[test]
fn the_tuned_profile_explains_every_setting_and_agrees_with_the_command_line() {
    let all = settings("tuned/sable/tuned.conf");
    let get = |k: &str| all.iter().find(|(_, key, _)| key == k).map(|(_, _, v)| v.clone());
    for (n, key, _) in &all {
        if key.contains('.') && !key.starts_with('/') {
            assert!(sysctl_exists(key), "tuned.conf:{n}: no /proc/sys entry for {key}");
        }
    }
    let cmdline = example_cmdline();
    let isolcpus = param(&cmdline, "isolcpus").expect("isolcpus in the example");
    let isolated = isolcpus.rsplit(',').next().expect("a cpu list").to_string();
    assert_eq!(get("isolated_cores").as_deref(), Some(isolated.as_str()), "tuned isolates what the kernel does");
    assert_eq!(get("banned_cpus").as_deref(), Some(isolated.as_str()), "irqbalance avoids the isolated cores");
    assert_eq!(get("governor").as_deref(), Some("performance"));
    let latency: u64 = get("force_latency").expect("force_latency").parse().expect("a number");
    assert!(latency <= tuning::checks::power::MAX_CSTATE_EXIT_LATENCY_US, "the profile's limit passes the checker");
}

/// The command line in `kernel-cmdline.example`: its one line that is not a comment.
fn example_cmdline() -> String {
    let text = read("kernel-cmdline.example");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 1, "one command line in the example");
    lines[0].to_string()
}

fn param(cmdline: &str, name: &str) -> Option<String> {
    cmdline.split_whitespace().find_map(|w| w.strip_prefix(&format!("{name}="))).map(str::to_string)
}

#[test]
fn the_example_command_line_passes_the_isolation_checks_for_the_example_core() {
    let cmdline = example_cmdline();
    let text = read("kernel-cmdline.example");
    // Each parameter heads an entry (`#   name=value ...`) followed by its reason.
    let heads: Vec<&str> = text.lines().filter(|l| l.starts_with("#   ") && !l.starts_with("#    ")).collect();
    for word in cmdline.split_whitespace() {
        assert!(heads.iter().any(|h| h.split_whitespace().any(|w| w == word)), "{word} is explained");
    }
    let root: PathBuf = std::env::temp_dir().join(format!("sable-tuning-cmdline-{}", std::process::id()));
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::write(root.join("proc/cmdline"), format!("BOOT_IMAGE=/vmlinuz ro {cmdline}\n")).unwrap();
    let r = check(&Options { root: root.clone(), matcher_core: Some(EXAMPLE_CORE), jitter: None });
    std::fs::remove_dir_all(&root).unwrap();
    for knob in ["isolcpus", "nohz_full", "rcu_nocbs"] {
        let f = r.get(knob).unwrap();
        assert_eq!(f.status, Status::Pass, "{knob}: {}", f.observed);
    }
}
