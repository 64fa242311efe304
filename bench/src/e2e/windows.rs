//! Metrics on against off in one appliance, in one run. The load's time is cut into windows
//! by intended send time ([`super::load::LoadSpec::window_ns`]) that alternate A B B A
//! ([`super::load::window_arm`]); the sender switches recording as it reaches each window (arm
//! A off, arm B on) and every order's latency counts in the arm of the window it was due in.
//! Both arms share the process, its threads' placement on the CPUs, its caches and the
//! machine's drift over the run, which separate appliances (one per arm) do not: on a 2-vCPU VM
//! those differ by 7–9 % between identical arms.
//!
//! `/metrics` is scraped once a second by a thread of its own. With windows of at least
//! [`SCRAPE_IN_ARM_B_FROM`] it scrapes only in arm B windows (at the start of each and every
//! second within), so arm B is "recorded and scraped" and arm A "off". Shorter windows are
//! shorter than a scrape's reach, so the scrapes fall on both arms alike and the comparison is
//! recording on against off, both scraped; those windows exist because a stall of the machine
//! (milliseconds on this VM) then spans windows of both arms instead of landing on one.
//!
//! The control (`control`): the same switching with arm B off too, so the two arms are
//! identical and their difference is the method's own noise.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gateway::pipeline::MetricsSwitch;
use hdrhistogram::Histogram;

use super::load::{OnWindow, window_arm};
use super::scrape::{SCRAPE_PERIOD, scrape_once};

/// Default window length, ms: one scrape per arm-B window at Prometheus' most aggressive
/// common interval.
pub const WINDOW_MS: u64 = 1000;

/// Windows this long or longer are scraped in arm B only.
pub const SCRAPE_IN_ARM_B_FROM: Duration = Duration::from_millis(100);

/// How often the scraper looks at the window the sender reached.
const FOLLOW_EVERY: Duration = Duration::from_millis(1);

/// What the run saw: the scrapes' latency (ns), the last exposition's size, and the windows
/// the sender reached per arm.
pub struct Switched {
    /// Scrape latencies, request to last byte (ns).
    pub scrapes: Histogram<u64>,
    /// Bytes of the last exposition.
    pub bytes: usize,
    /// Windows reached, per arm.
    pub windows: [u64; 2],
}

/// The scraper thread and what the sender's switch counts.
pub struct Switcher {
    stop: Arc<AtomicBool>,
    windows: Arc<[AtomicU64; 2]>,
    metrics: MetricsSwitch,
    handle: JoinHandle<Result<(Histogram<u64>, usize), String>>,
}

impl Switcher {
    /// Recording off until the first arm B window; the sender's switch (give it to
    /// [`super::load::run`]) and the scraper of `admin`. With `control`, arm B is off too and,
    /// with long windows, nothing is scraped.
    pub fn start(
        metrics: MetricsSwitch,
        admin: SocketAddr,
        window: Duration,
        control: bool,
    ) -> Result<(Switcher, OnWindow), String> {
        metrics.set(false);
        let reached = Arc::new(AtomicU64::new(0));
        let windows = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let on_window: OnWindow = {
            let (metrics, reached, windows) = (metrics.clone(), Arc::clone(&reached), Arc::clone(&windows));
            Box::new(move |k| {
                let arm = window_arm(k);
                metrics.set(arm == 1 && !control);
                windows[arm].fetch_add(1, Ordering::Relaxed);
                reached.store(k + 1, Ordering::Release);
            })
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let scrape = match (control, window >= SCRAPE_IN_ARM_B_FROM) {
            (true, true) => Scrape::Never,
            (false, true) => Scrape::InArmB(reached),
            (_, false) => Scrape::Always,
        };
        let handle = std::thread::Builder::new()
            .name("e2e-scraper".into())
            .spawn(move || scrape_while(admin, &scrape, &flag))
            .map_err(|e| format!("the scraper thread: {e}"))?;
        Ok((Switcher { stop, windows, metrics, handle }, on_window))
    }

    /// Stops (recording is left off); what the run saw.
    pub fn finish(self) -> Result<Switched, String> {
        self.stop.store(true, Ordering::Release);
        self.metrics.set(false);
        let (scrapes, bytes) = self.handle.join().map_err(|_| "the scraper panicked".to_string())??;
        let windows = [0, 1].map(|arm| self.windows[arm].load(Ordering::Relaxed));
        Ok(Switched { scrapes, bytes, windows })
    }
}

/// When the scraper scrapes.
enum Scrape {
    /// Never (the control with long windows).
    Never,
    /// In arm B windows (the sender's window + 1 here, 0 before the first).
    InArmB(Arc<AtomicU64>),
    /// Every second whatever the window.
    Always,
}

fn scrape_while(admin: SocketAddr, when: &Scrape, stop: &AtomicBool) -> Result<(Histogram<u64>, usize), String> {
    let mut scrapes = Histogram::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())?;
    let mut bytes = 0;
    let (mut current, mut next) = (0, Instant::now());
    while !stop.load(Ordering::Acquire) {
        let due = match when {
            Scrape::Never => false,
            Scrape::Always => Instant::now() >= next,
            Scrape::InArmB(reached) => {
                let w = reached.load(Ordering::Acquire);
                if w != current {
                    (current, next) = (w, Instant::now());
                }
                w > 0 && window_arm(w - 1) == 1 && Instant::now() >= next
            }
        };
        if due {
            next = Instant::now() + SCRAPE_PERIOD;
            let t0 = Instant::now();
            bytes = scrape_once(admin)?;
            scrapes.saturating_record(t0.elapsed().as_nanos() as u64);
        }
        std::thread::sleep(FOLLOW_EVERY);
    }
    Ok((scrapes, bytes))
}
