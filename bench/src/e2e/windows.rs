//! Metrics on against off in one appliance, in one run. The load's time is cut into windows
//! by intended send time ([`super::load::LoadSpec::window_ns`]) that alternate A B B A
//! ([`super::load::window_arm`]); the sender switches recording as it reaches each window (arm
//! A off, arm B on) and every order's latency counts in the arm of the window it was due in.
//! Both arms share the process, its threads' placement on the CPUs, its caches and the
//! machine's drift over the run, which separate appliances (one per arm) do not: on a 2-vCPU VM
//! those differ by 7–9 % between identical arms.
//!
//! `/metrics` is scraped by a thread of its own, woken by the sender as it enters an arm B
//! window at least a second after the last scrape: with windows of a second or more, at the
//! start of each arm B window; with shorter ones, at the start of a B B pair, so that a scrape
//! (about a millisecond here) falls on arm B's windows. Short windows exist because a stall of
//! the machine (milliseconds on this VM) then spans windows of both arms instead of landing on
//! one: with 1 ms windows the arms' p99 agree within a few % where 1 s windows leave tens.
//!
//! The control (`control`): the same switching with arm B off too and nothing scraped, so the
//! two arms are identical and their difference is the method's own noise.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gateway::pipeline::MetricsSwitch;

use super::load::{OnWindow, window_arm};
use super::scrape::{SCRAPE_PERIOD, Scrapes};

/// Default window length, ms: shorter than the machine's stalls, longer than an order's
/// latency at the p50 (so that the switch an order was sent under is, mostly, the one each
/// stage sees for it).
pub const WINDOW_MS: u64 = 1;

/// What the run saw: the scrapes, and the windows the sender reached per arm.
pub struct Switched {
    /// The scrapes taken.
    pub scrapes: Scrapes,
    /// Windows reached, per arm.
    pub windows: [u64; 2],
}

/// The scraper thread and what the sender's switch counts.
pub struct Switcher {
    windows: Arc<[AtomicU64; 2]>,
    metrics: MetricsSwitch,
    scraper: JoinHandle<Result<Scrapes, String>>,
}

impl Switcher {
    /// Recording off until the first arm B window; the sender's switch (give it to
    /// [`super::load::run`]: the scraper ends when the load drops it) and the scraper of
    /// `admin`. With `control`, arm B is off too and nothing is scraped.
    pub fn start(
        metrics: MetricsSwitch,
        admin: SocketAddr,
        window: Duration,
        control: bool,
    ) -> Result<(Switcher, OnWindow), String> {
        metrics.set(false);
        let windows = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let (wake, woken) = mpsc::channel::<()>();
        let on_window: OnWindow = {
            let (metrics, windows) = (metrics.clone(), Arc::clone(&windows));
            let mut last_scrape: Option<Instant> = None;
            Box::new(move |k| {
                let arm = window_arm(k);
                metrics.set(arm == 1 && !control);
                windows[arm].fetch_add(1, Ordering::Relaxed);
                let starts_b = arm == 1 && (window >= SCRAPE_PERIOD || window_arm(k.wrapping_sub(1)) == 0);
                if starts_b && !control && last_scrape.is_none_or(|t| t.elapsed() >= SCRAPE_PERIOD) {
                    last_scrape = Some(Instant::now());
                    // The scraper only ends once this closure is dropped.
                    let _ = wake.send(());
                }
            })
        };
        let scraper = std::thread::Builder::new()
            .name("e2e-scraper".into())
            .spawn(move || scrape_when_woken(admin, &woken))
            .map_err(|e| format!("the scraper thread: {e}"))?;
        Ok((Switcher { windows, metrics, scraper }, on_window))
    }

    /// Waits for the scraper (the load has ended and dropped the switch); recording is left
    /// off. What the run saw.
    pub fn finish(self) -> Result<Switched, String> {
        self.metrics.set(false);
        let scrapes = self.scraper.join().map_err(|_| "the scraper panicked".to_string())??;
        let windows = [0, 1].map(|arm| self.windows[arm].load(Ordering::Relaxed));
        Ok(Switched { scrapes, windows })
    }
}

fn scrape_when_woken(admin: SocketAddr, woken: &mpsc::Receiver<()>) -> Result<Scrapes, String> {
    let mut scrapes = Scrapes::new()?;
    while woken.recv().is_ok() {
        scrapes.take(admin)?;
    }
    Ok(scrapes)
}
