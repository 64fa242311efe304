//! Findings and their rendering as text or JSON.

use serde::Serialize;

/// A knob's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Set as sable wants it.
    Pass,
    /// Not as sable wants it but not harmful enough to fail, or not verifiable on this host.
    Warn,
    /// Costs the matcher latency or correctness of the setup: fix before going live.
    Fail,
    /// Not checked (asked to skip).
    Skip,
}

impl Status {
    /// The upper-case label used in text and JSON.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// One knob's result.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Stable knob name (`isolcpus`, `irq_affinity`, …).
    pub knob: &'static str,
    /// The verdict.
    pub status: Status,
    /// What was found on the host.
    pub observed: String,
    /// Why the knob matters to sable.
    pub reason: String,
    /// How to set it (also given for PASS, so the report documents the setting).
    pub fix: String,
}

impl Finding {
    /// A finding; `reason` and `fix` are usually static texts of the check.
    pub fn new(knob: &'static str, status: Status, observed: String, reason: &str, fix: String) -> Self {
        Finding { knob, status, observed, reason: reason.to_string(), fix }
    }
}

/// Counts per status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// PASS findings.
    pub pass: usize,
    /// WARN findings.
    pub warn: usize,
    /// FAIL findings.
    pub fail: usize,
    /// SKIP findings.
    pub skip: usize,
}

/// Everything one run of the checker found.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The root the host files were read under.
    pub root: String,
    /// The matcher core checked.
    pub matcher_core: Option<usize>,
    /// One finding per knob.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Counts per status.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for f in &self.findings {
            match f.status {
                Status::Pass => s.pass += 1,
                Status::Warn => s.warn += 1,
                Status::Fail => s.fail += 1,
                Status::Skip => s.skip += 1,
            }
        }
        s
    }

    /// The finding for `knob`.
    pub fn get(&self, knob: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.knob == knob)
    }

    /// The report as JSON: `{"root", "matcher_core", "findings": [...], "summary": {...}}`.
    pub fn to_json(&self) -> String {
        let value = serde_json::json!({
            "root": self.root,
            "matcher_core": self.matcher_core,
            "findings": self.findings,
            "summary": self.summary(),
        });
        serde_json::to_string_pretty(&value).expect("a report always serialises")
    }

    /// The report as text, one block per knob.
    pub fn to_text(&self) -> String {
        let core = self.matcher_core.map_or_else(|| "none configured".to_string(), |c| c.to_string());
        let mut out = format!("sable tune check: host root {}, matcher core {core}\n\n", self.root);
        for f in &self.findings {
            out.push_str(&format!("{:<4}  {:<22} {}\n", f.status.label(), f.knob, f.observed));
            out.push_str(&format!("      why: {}\n", f.reason));
            if f.status != Status::Pass {
                out.push_str(&format!("      fix: {}\n", f.fix));
            }
        }
        let s = self.summary();
        out.push_str(&format!(
            "\n{} knobs: {} PASS, {} WARN, {} FAIL, {} SKIP\n",
            self.findings.len(),
            s.pass,
            s.warn,
            s.fail,
            s.skip
        ));
        out
    }
}
