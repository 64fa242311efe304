//! Order → market data (`--feed on`): a subscriber thread on the feed's multicast group stamps
//! every ITCH Add Order with the load's clock as it arrives; after the run each is matched to
//! its order through the engine order id the order's acknowledgement carried, and measured
//! from the order's intended send time, as the acknowledgement is (the coordinated-omission
//! correction of [`super::load`]). Orders that traded on arrival show no Add Order and are not
//! in it.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use gateway::feed::itch::Message;
use gateway::feed::subscriber::Subscriber;
use hdrhistogram::Histogram;

use super::Clock;
use super::load::LoadSpec;
use crate::report;

/// How long the subscriber waits in one poll (its stop flag is read between polls).
const POLL: Duration = Duration::from_millis(5);

/// After the last acknowledgement: how long the subscriber keeps reading for datagrams still
/// on their way (the feed sends only released output, after the acknowledgement's release).
pub const FEED_GRACE: Duration = Duration::from_millis(300);

/// The subscriber thread.
pub struct FeedProbe {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<(u64, u64)>>,
}

impl FeedProbe {
    /// Joins `group` on loopback and starts stamping Add Orders with `clock`.
    pub fn start(group: SocketAddrV4, clock: Clock) -> Result<FeedProbe, String> {
        let mut sub =
            Subscriber::join(group, Ipv4Addr::LOCALHOST, None).map_err(|e| format!("joining the feed: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("e2e-feed".into())
            .spawn(move || {
                let mut arrivals = Vec::with_capacity(1 << 20);
                while !flag.load(Ordering::Acquire) {
                    let _ = sub.poll(POLL, &mut |_, m| {
                        if let Message::AddOrder { order_ref, .. } = m {
                            arrivals.push((*order_ref, clock.now_ns()));
                        }
                    });
                }
                arrivals
            })
            .map_err(|e| e.to_string())?;
        Ok(FeedProbe { stop, thread })
    }

    /// Reads for [`FEED_GRACE`] more, stops, and returns (order ref, arrival ns) of every Add
    /// Order seen.
    pub fn finish(self) -> Vec<(u64, u64)> {
        std::thread::sleep(FEED_GRACE);
        self.stop.store(true, Ordering::Release);
        self.thread.join().unwrap_or_default()
    }
}

/// Order → Add Order latency: `arrivals` matched to orders by `order_ids` (order index → the
/// engine order id its acknowledgement carried, 0 for none), from each order's intended send
/// time. Returns the histogram and how many Add Orders matched an order of the run.
pub fn latency(arrivals: &[(u64, u64)], order_ids: &[u64], start_ns: u64, spec: LoadSpec) -> (Histogram<u64>, u64) {
    let index: HashMap<u64, u64> =
        order_ids.iter().enumerate().filter(|(_, id)| **id != 0).map(|(i, id)| (*id, i as u64)).collect();
    let mut h = report::histogram();
    let mut matched = 0;
    for (order_ref, at) in arrivals {
        if let Some(&i) = index.get(order_ref) {
            h.saturating_record(at.saturating_sub(start_ns + spec.due_ns(i)).max(1));
            matched += 1;
        }
    }
    (h, matched)
}
