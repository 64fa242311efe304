//! `sable tune …`: the subcommands, mounted in the `sable` binary. The binary resolves the
//! matcher core from its configuration file (this crate knows no configuration format) and
//! calls [`run_check`].

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::{JITTER_MAX_GAP_US_DEFAULT, JITTER_PROBE_MS_DEFAULT, JITTER_PROBE_MS_MAX, JitterOptions, Options, Status};

/// `sable tune …`.
#[derive(clap::Subcommand, Debug)]
pub enum TuneCmd {
    /// Check the host's tuning for the matcher core: PASS/WARN/FAIL per knob with the reason
    /// and the fix. Exits 1 if any knob FAILs.
    Check(CheckArgs),
}

/// Arguments of `sable tune check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// sable's configuration file, for `pipeline.matcher_core` (the built-in default has none).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The matcher core to check; overrides the configuration's.
    #[arg(long)]
    pub core: Option<usize>,
    /// Read /proc and /sys under this directory instead of / (another host's copy, fixtures).
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Skip the jitter probe (it measures this machine, whatever --root says).
    #[arg(long)]
    pub skip_jitter: bool,
    /// How long the jitter probe spins on the matcher core, in milliseconds.
    #[arg(long, default_value_t = JITTER_PROBE_MS_DEFAULT, value_parser = clap::value_parser!(u64).range(1..=JITTER_PROBE_MS_MAX))]
    pub jitter_ms: u64,
    /// Longest gap between two clock reads the jitter probe accepts, in microseconds.
    #[arg(long, default_value_t = JITTER_MAX_GAP_US_DEFAULT)]
    pub jitter_max_us: u64,
}

/// Runs the check for `matcher_core` and writes the report to `out`. `Ok(true)` when no knob
/// failed.
pub fn run_check(args: &CheckArgs, matcher_core: Option<usize>, out: &mut dyn Write) -> Result<bool, String> {
    let jitter = (!args.skip_jitter).then(|| JitterOptions {
        duration: Duration::from_millis(args.jitter_ms),
        max_gap: Duration::from_micros(args.jitter_max_us),
    });
    let report = crate::check(&Options { root: args.root.clone(), matcher_core, jitter });
    let text = if args.json { report.to_json() } else { report.to_text() };
    writeln!(out, "{text}").map_err(|e| format!("writing the report: {e}"))?;
    Ok(report.findings.iter().all(|f| f.status != Status::Fail))
}
