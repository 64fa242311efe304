//! What an operator installs and runs beside the appliance: the systemd units (`systemd/`),
//! the install and uninstall scripts, and `sable tune check` (`tuning/`).
//!
//! The unit checks use `systemd-analyze` from Debian's `systemd` package, which
//! `gateway/scripts/install-test-deps.sh` installs; without it these tests fail (never skip).
//! `systemd-analyze verify` checks that ExecStart's binary exists, so each unit is verified as a
//! copy whose ExecStart points at the `sable` binary cargo built for this test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gateway::config::Config;

/// The exposure score `systemd-analyze security` must stay below (issue 17).
const MAX_EXPOSURE: f64 = 2.0;
/// Where the units say the binary is installed.
const INSTALLED_BINARY: &str = "/usr/local/bin/sable";
const UNITS: [&str; 2] = ["sable.service", "sable-standby.service"];
/// Unit keys that are their own documentation.
const SELF_EXPLAINING: [&str; 2] = ["Description=", "Documentation="];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_path_buf()
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e} (gateway/scripts/install-ops-test-deps.sh installs it)"))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A copy of `unit` in `dir` whose ExecStart runs the binary cargo built.
fn unit_copy(unit: &str, dir: &Path) -> PathBuf {
    let source = std::fs::read_to_string(repo().join("systemd").join(unit)).expect("read the unit");
    assert!(source.contains(&format!("ExecStart={INSTALLED_BINARY} ")), "{unit} runs {INSTALLED_BINARY}");
    let path = dir.join(unit);
    std::fs::write(&path, source.replace(INSTALLED_BINARY, env!("CARGO_BIN_EXE_sable"))).expect("write the copy");
    path
}

#[test]
fn every_unit_verifies_without_a_warning() {
    let dir = tempfile::tempdir().expect("temp dir");
    for unit in UNITS {
        let path = unit_copy(unit, dir.path());
        let out = run(Command::new("systemd-analyze").arg("verify").arg(&path));
        let said = text(&out);
        // verify exits 0 on unknown keys and unparsable values, but says so: any line about our
        // unit (its name, its path or the binary) is a failure.
        let ours: Vec<&str> = said.lines().filter(|l| l.contains("sable")).collect();
        assert!(out.status.success() && ours.is_empty(), "systemd-analyze verify {unit}:\n{said}");
    }
}

#[test]
fn every_unit_scores_below_the_exposure_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    for unit in UNITS {
        let path = unit_copy(unit, dir.path());
        let out = run(Command::new("systemd-analyze").args(["security", "--offline=true", "--no-pager"]).arg(&path));
        let said = text(&out);
        let score: f64 = said
            .lines()
            .find_map(|l| l.split_once(&format!("Overall exposure level for {unit}: ")))
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no exposure score for {unit}:\n{said}"));
        assert!(score < MAX_EXPOSURE, "{unit}: exposure {score} (limit {MAX_EXPOSURE}):\n{said}");
        for must in ["User=", "CapabilityBoundingSet=", "NoNewPrivileges=", "ProtectSystem=", "PrivateTmp="] {
            let line = said.lines().find(|l| l.contains(must)).unwrap_or_else(|| panic!("{must} not assessed"));
            assert!(line.contains('✓'), "{unit}: {line}");
        }
    }
}

#[test]
fn every_unit_setting_has_its_reason_in_a_comment() {
    for unit in UNITS {
        let source = std::fs::read_to_string(repo().join("systemd").join(unit)).expect("read the unit");
        let mut commented = false;
        let mut bare = Vec::new();
        for (n, line) in source.lines().enumerate() {
            let line = line.trim();
            if line.starts_with('#') {
                commented = true;
            } else if line.is_empty() || line.starts_with('[') {
                commented = false;
            } else if !commented && !SELF_EXPLAINING.iter().any(|k| line.starts_with(k)) {
                // A setting must sit in a block of settings that starts with its reason.
                bare.push(format!("{unit}:{}: {line}", n + 1));
            }
        }
        assert!(bare.is_empty(), "settings without a reason above them:\n{}", bare.join("\n"));
        for must in ["Type=notify", "WatchdogSec=", "StateDirectory=", "CPUAffinity=", "LimitMEMLOCK=", "Restart="] {
            assert!(source.lines().any(|l| l.starts_with(must)), "{unit} sets {must}");
        }
        assert!(source.contains("User=sable") && !source.contains("User=root"), "{unit} runs as the sable user");
    }
}

#[test]
fn install_then_uninstall_into_a_root() {
    let root = tempfile::tempdir().expect("temp dir");
    let install = run(Command::new("bash")
        .arg(repo().join("systemd/install.sh"))
        .args(["--tuning", "--binary", env!("CARGO_BIN_EXE_sable"), "--root"])
        .arg(root.path()));
    assert!(install.status.success(), "install.sh:\n{}", text(&install));
    let r = root.path();
    for file in [
        "usr/local/bin/sable",
        "etc/systemd/system/sable.service",
        "etc/systemd/system/sable-standby.service",
        "usr/local/share/doc/sable/README.md",
        "etc/sysctl.d/90-sable.conf",
        "etc/tuned/sable/tuned.conf",
    ] {
        assert!(r.join(file).is_file(), "{file} installed");
    }
    // The example configuration parses, keeps its data in the unit's state directory, and names
    // the matcher core the unit's CPUAffinity allows.
    let cfg = Config::load(&r.join("etc/sable/sable.toml")).expect("the example configuration parses");
    assert_eq!(cfg.server.data_dir, Path::new("/var/lib/sable"));
    assert_eq!(cfg.pipeline.matcher_core, Some(2));
    let standby = Config::load(&r.join("etc/sable/sable-standby.toml")).expect("the standby's parses");
    assert_eq!(standby.server.data_dir, Path::new("/var/lib/sable-standby"));

    // A second install keeps an edited configuration.
    std::fs::write(r.join("etc/sable/sable.toml"), "# edited\n").expect("edit");
    let again = run(Command::new("bash")
        .arg(repo().join("systemd/install.sh"))
        .args(["--binary", env!("CARGO_BIN_EXE_sable"), "--root"])
        .arg(r));
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(std::fs::read_to_string(r.join("etc/sable/sable.toml")).unwrap(), "# edited\n");

    let uninstall = run(Command::new("bash").arg(repo().join("systemd/uninstall.sh")).arg("--root").arg(r));
    assert!(uninstall.status.success(), "{}", text(&uninstall));
    assert!(!r.join("usr/local/bin/sable").exists() && !r.join("etc/systemd/system/sable.service").exists());
    assert!(r.join("etc/sable/sable.toml").exists(), "configuration kept without --purge");
    let purge = run(Command::new("bash").arg(repo().join("systemd/uninstall.sh")).args(["--purge", "--root"]).arg(r));
    assert!(purge.status.success(), "{}", text(&purge));
    assert!(!r.join("etc/sable").exists(), "--purge removes the configuration");
}

fn tune_check(args: &[&str]) -> (Option<i32>, String) {
    let out = run(Command::new(env!("CARGO_BIN_EXE_sable")).args(["tune", "check"]).args(args));
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn tune_check_exits_zero_on_a_tuned_host_and_one_on_an_untuned_one() {
    let fixtures = repo().join("tuning/fixtures");
    let tuned = fixtures.join("tuned-host");
    let untuned = fixtures.join("untuned-host");
    let (code, json) = tune_check(&["--root", tuned.to_str().unwrap(), "--core", "2", "--skip-jitter", "--json"]);
    assert_eq!(code, Some(0), "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON on stdout");
    assert_eq!(v["summary"]["fail"], 0);
    assert_eq!(v["summary"]["skip"], 1);

    let (code, text) = tune_check(&["--root", untuned.to_str().unwrap(), "--core", "2", "--skip-jitter"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("FAIL  isolcpus") && text.contains("fix: kernel command line: isolcpus=managed_irq,domain,2")
    );

    // The core comes from the configuration when --core is not given.
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("sable.toml");
    let body = gateway::config::DEFAULT_TOML.replace("# matcher_core = 1", "matcher_core = 5");
    std::fs::write(&config, body).expect("write config");
    let (code, json) = tune_check(&[
        "--root",
        tuned.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--skip-jitter",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON on stdout");
    assert_eq!(v["matcher_core"], 5);
    assert_eq!(code, Some(1), "core 5 is not isolated on the tuned host");
}
