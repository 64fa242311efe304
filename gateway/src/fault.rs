//! Fault injection for tests of the process under a service manager. Compiled only into builds
//! with debug assertions (the test and `cargo run` builds), never into a release build — the one
//! `systemd/install.sh` installs — so no environment variable can switch it on in production.
//!
//! - [`STALL_MATCHER_AFTER_MS`]: the matcher blocks for good on the first command it applies
//!   that many milliseconds after it applied its first one (a stalled matcher, for the
//!   watchdog test `gateway/tests/sd_notify.rs`). The thread sleeps; it does not spin.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Environment variable: stall the matcher this many milliseconds after its first command.
pub(crate) const STALL_MATCHER_AFTER_MS: &str = "SABLE_FAULT_STALL_MATCHER_AFTER_MS";

/// How long the stalled matcher sleeps between looks at nothing (it never resumes).
const STALL_SLEEP: Duration = Duration::from_secs(1);

/// When the matcher should stall, if the fault was asked for (read once, at the first command).
static STALL_AT: OnceLock<Option<Instant>> = OnceLock::new();

/// Called by the matcher before each command: blocks forever once the stall is due.
pub(crate) fn matcher_gate() {
    let due = STALL_AT.get_or_init(|| {
        let ms: u64 = std::env::var(STALL_MATCHER_AFTER_MS).ok()?.parse().ok()?;
        tracing::warn!(after_ms = ms, "fault injection: the matcher will stall ({STALL_MATCHER_AFTER_MS})");
        Some(Instant::now() + Duration::from_millis(ms))
    });
    if due.is_some_and(|at| Instant::now() >= at) {
        tracing::warn!("fault injection: matcher stalled");
        loop {
            std::thread::sleep(STALL_SLEEP);
        }
    }
}
