//! The metrics-cost arm of the e2e benchmark: a Prometheus-like scraper that GETs `/metrics`
//! from the appliance's admin port once a second over a fresh connection (as Prometheus does
//! with keep-alive off) and records each scrape's latency, request sent to last byte read.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::report::{Percentiles, summary_line};

/// The bearer token the benchmark configures for its scraper (read scope).
pub const SCRAPE_TOKEN: &str = "bench-scrape-token-0123456789";

/// Time between scrapes: Prometheus' most aggressive common setting.
pub const SCRAPE_PERIOD: Duration = Duration::from_secs(1);

/// Scrapes taken: their latency, request sent to last byte read (ns), and the size of the
/// last exposition.
pub struct Scrapes {
    /// Latency of each scrape, ns.
    pub latency: Histogram<u64>,
    /// Bytes of the last exposition.
    pub bytes: usize,
}

impl Scrapes {
    /// None yet.
    pub fn new() -> Result<Scrapes, String> {
        let latency = Histogram::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())?;
        Ok(Scrapes { latency, bytes: 0 })
    }

    /// Scrapes `addr` once and records it.
    pub fn take(&mut self, addr: SocketAddr) -> Result<(), String> {
        let t0 = Instant::now();
        self.bytes = scrape_once(addr)?;
        self.latency.saturating_record(t0.elapsed().as_nanos() as u64);
        Ok(())
    }

    /// The `workload=metrics_scrape_<rate>_<protocol>` summary line.
    pub fn summary(&self, rate: u64, protocol: &str, engine: &str) -> String {
        let p = Percentiles::from_raw(&self.latency);
        let workload = format!("metrics_scrape_{rate}_{protocol}");
        format!("{} exposition_bytes={}", summary_line(&workload, engine, p.count, 0.0, &p), self.bytes)
    }
}

/// A scraper thread.
pub struct Scraper {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<Scrapes, String>>,
}

impl Scraper {
    /// Starts scraping `addr` every [`SCRAPE_PERIOD`], the first scrape at once.
    pub fn start(addr: SocketAddr) -> Scraper {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut scrapes = Scrapes::new()?;
            let mut next = Instant::now();
            while !flag.load(Ordering::Acquire) {
                let now = Instant::now();
                if now < next {
                    std::thread::sleep((next - now).min(Duration::from_millis(50)));
                    continue;
                }
                next += SCRAPE_PERIOD;
                scrapes.take(addr)?;
            }
            Ok(scrapes)
        });
        Scraper { stop, handle }
    }

    /// Stops; the scrapes taken.
    pub fn finish(self) -> Result<Scrapes, String> {
        self.stop.store(true, Ordering::Release);
        self.handle.join().map_err(|_| "the scraper panicked".to_string())?
    }
}

/// One scrape of `/metrics` over a fresh connection; the response's size in bytes.
fn scrape_once(addr: SocketAddr) -> Result<usize, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| format!("scrape: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let req = format!(
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {SCRAPE_TOKEN}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).map_err(|e| format!("scrape: {e}"))?;
    let mut body = Vec::with_capacity(64 * 1024);
    s.read_to_end(&mut body).map_err(|e| format!("scrape: {e}"))?;
    if !body.starts_with(b"HTTP/1.1 200") {
        return Err(format!("scrape: {}", String::from_utf8_lossy(&body[..body.len().min(80)])));
    }
    Ok(body.len())
}
