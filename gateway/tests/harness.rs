//! `gateway::harness`: the pipeline driven without sockets, as the `stages` benchmark drives
//! it. Commands submitted before the release wait in the input ring (the matcher holds at its
//! gate); after it they are applied, journaled and released, and a normal start on the same
//! data dir restores every one of them.

use std::path::Path;
use std::time::{Duration, Instant};

use engine::{AccountId, ClOrdId, CommandBody, InstrumentId, NewOrder, Side};
use gateway::harness::Harness;
use gateway::pipeline;

#[path = "support/small_appliance.rs"]
mod small_appliance;

/// More orders than the journaler commits at once (`JOURNAL_COMMIT_EVERY_RECORDS`).
const ORDERS: u64 = 6_000;

fn config(dir: &Path) -> gateway::config::Validated {
    let mut c = small_appliance::config(dir);
    c.pipeline.input_ring_slots = 8192;
    c.pipeline.output_ring_slots = 32_768;
    c.engine.max_orders = 8192;
    c.validate().expect("test config validates")
}

/// Resting limit orders on both sides of instrument 1 that never cross.
fn order(i: u64) -> CommandBody {
    let (side, price) = if i.is_multiple_of(2) {
        (Side::Buy, 10_000 - (i % 50) as i64)
    } else {
        (Side::Sell, 10_100 + (i % 50) as i64)
    };
    CommandBody::NewOrder(NewOrder::limit(AccountId(1), ClOrdId::from_u64(i + 1), InstrumentId(1), side, price, 1))
}

fn wait_until(what: &str, h: &Harness, done: impl Fn(&Harness) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(h) {
        assert!(h.failure().is_none(), "pipeline failed: {:?}", h.failure());
        assert!(Instant::now() < deadline, "{what} did not happen within 60 s");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_burst_waits_for_the_release_then_is_applied_journaled_released_and_restored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut h = Harness::start(config(dir.path())).expect("harness starts");
    let mut last = 0;
    for i in 0..ORDERS {
        last = h.submit(order(i)).expect("the ring holds the burst");
    }
    let first_order = last - ORDERS + 1;
    // The journaler is not gated: the burst becomes durable while the matcher waits.
    wait_until("journaling the burst", &h, |h| h.durable() >= last);
    assert!(h.applied() < first_order, "the matcher applied seq {} before its release", h.applied());
    assert!(h.published() < first_order, "output was published before the matcher ran");

    h.release();
    wait_until("publishing the burst", &h, |h| h.published() >= last);
    assert_eq!(h.applied(), last);
    h.stop().expect("stops cleanly");

    let app = pipeline::start(config(dir.path())).expect("appliance starts on the harness's data dir");
    assert_eq!(app.restored().0, last, "a restart restores every command the harness journaled");
    app.shutdown().expect("shuts down");
    let store = snapshot::SnapshotStore::open(pipeline::snapshot_dir(dir.path())).expect("snapshot store");
    let newest = store.list().expect("snapshots").into_iter().map(|s| s.seq).max().expect("a final snapshot");
    let (_, engine) = store.load(newest).expect("final snapshot loads");
    let resting: usize =
        [Side::Buy, Side::Sell].iter().map(|s| engine.orders_in_priority(InstrumentId(1), *s, false).len()).sum();
    assert_eq!(resting as u64, ORDERS, "every order of the burst rests in the restored book");
}

#[test]
fn a_harness_dropped_before_its_release_still_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut h = Harness::start(config(dir.path())).expect("harness starts");
    h.submit(order(0)).expect("the ring takes it");
    // Dropping it must open the gate, or the input ring's stages could never join.
    drop(h);
}
