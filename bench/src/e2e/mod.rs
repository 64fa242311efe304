//! The end-to-end benchmark (`src/bin/e2e.rs`): the whole appliance in-process, driven over
//! loopback TCP by an open-loop load generator speaking SBE or FIX 4.4, next to the raw TCP
//! round trip it cannot beat.
//!
//! - [`appliance`]: a configuration built in code (one account, SBE session and FIX session per
//!   connection) and the in-process start on a scratch data directory.
//! - [`login`]: the FIXP handshake (Negotiate, Establish) over a plain socket.
//! - [`fix_login`]: the FIX 4.4 Logon (141=Y) over a plain socket.
//! - [`flow`]: the order stream: mostly resting orders, every fifth an IOC that crosses; the
//!   same orders written as SBE or as FIX.
//! - [`wire`]: the protocol as the generator sees it: write order `i`, classify a server
//!   message (SBE and FIX implementations).
//! - [`load`]: the open-loop generator (one sender thread, one mio receiver thread), generic
//!   over the protocol, and its accounting: latency from the intended send time, every
//!   order's New-or-reject counted.
//! - [`floor`]: the physical floor, a blocking TCP echo of one order-sized frame.
//! - [`threads`]: CPU time of every thread of the process, so the generator's share is visible,
//!   and of the appliance's threads per order.
//! - [`files`]: segment files the appliance creates during a run (journal and store rollovers).
//! - [`scrape`], [`windows`]: the metrics-cost arms: a `/metrics` scraper, and metrics switched
//!   on and off in alternating windows of one run.

pub mod appliance;
pub mod feed_probe;
pub mod files;
pub mod fix_login;
pub mod floor;
pub mod flow;
pub mod load;
pub mod login;
pub mod scrape;
pub mod threads;
pub mod windows;
pub mod wire;

use std::time::Instant;

/// Nanoseconds since a common origin, readable from every thread (`Instant`: vDSO
/// `clock_gettime(CLOCK_MONOTONIC)`, about 20 ns on a TSC clock source).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn new() -> Clock {
        Clock { origin: Instant::now() }
    }

    /// Nanoseconds since the origin.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// The clock source the kernel uses (`tsc`, `kvm-clock`, ...), which sets the cost and the
/// resolution of every timestamp here.
pub fn clock_source() -> String {
    std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}
