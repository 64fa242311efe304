//! A primary and a hot standby in one process, on loopback: catch-up and live following with
//! the same state, the `replicated` durability gate (halt and degrade), and a standby whose
//! history differs from the primary's. Every wait is bounded.

#[path = "support/sbe_flow.rs"]
mod sbe_flow;
#[path = "support/small_appliance.rs"]
mod small_appliance;

use std::net::SocketAddr;
use std::time::Duration;

use gateway::client::Client;
use gateway::config::{Config, DurabilityPolicy, StandbyLoss};
use gateway::pipeline::{self, Appliance};
use gateway::sbe::codec::Outbound;
use gateway::sbe::messages::{ExecType, RetransmitRequest, Side, TimeInForce, char_field};
use gateway::standby::{self, Standby};
use gateway::store::MIN_SEGMENT_LEN_BYTES;
use journal::{MmapStorage, Storage};
use sbe_flow::{er, order, silent_for, trade, wait_until, wait_until_within};
use zerocopy::little_endian::{U32, U64};

fn primary_config(dir: &std::path::Path, durability: DurabilityPolicy, loss: StandbyLoss, timeout_ms: u64) -> Config {
    let mut c = small_appliance::config(dir);
    c.pipeline.durability = durability;
    c.replication.listen = "127.0.0.1:0".into();
    c.replication.verify_every_commands = 3;
    c.replication.on_standby_loss = loss;
    c.replication.standby_timeout_ms = timeout_ms;
    c.snapshot.every_commands = 5;
    c
}

fn start_primary(dir: &std::path::Path, durability: DurabilityPolicy, loss: StandbyLoss) -> Appliance {
    let cfg = primary_config(dir, durability, loss, 300);
    pipeline::start(cfg.validate().expect("primary config validates")).expect("primary starts")
}

fn start_standby(dir: &std::path::Path, primary: SocketAddr) -> Standby {
    let mut c = small_appliance::config(dir);
    c.replication.primary = primary.to_string();
    c.snapshot.every_commands = 5;
    standby::start(c.validate().expect("standby config validates")).expect("standby starts")
}

#[test]
fn a_standby_catches_up_then_follows_live_and_ends_with_the_same_state() {
    let (pdir, sdir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let primary = start_primary(pdir.path(), DurabilityPolicy::Written, StandbyLoss::Degrade);
    let repl = primary.replication_addr().expect("replication is on");
    trade(primary.local_addr(), "early", 5);
    let standby = start_standby(sdir.path(), repl);
    wait_until("the standby to catch up", || standby.status().next_seq() > primary.written_seq());
    trade(primary.local_addr(), "live", 5);
    wait_until("the standby to follow", || standby.status().next_seq() > primary.written_seq());
    assert!(standby.status().attached());

    let p = primary.shutdown().expect("primary stops cleanly");
    wait_until("the last records", || standby.status().next_seq() == p.last_seq + 1);
    assert!(standby.status().verified_seq() >= 3, "state hashes were compared");
    assert_eq!(standby.status().diverged(), None);
    let s = standby.shutdown().expect("standby stops cleanly");
    assert_eq!((s.last_seq, s.state_hash), (p.last_seq, p.state_hash), "the standby holds the primary's state");

    // A restarted standby resumes from its own journal and snapshots, not from seq 1.
    let primary = start_primary(pdir.path(), DurabilityPolicy::Written, StandbyLoss::Degrade);
    let standby = start_standby(sdir.path(), primary.replication_addr().unwrap());
    assert_eq!(standby.status().next_seq(), p.last_seq + 1);
    trade(primary.local_addr(), "again", 2);
    wait_until("the restarted standby to follow", || standby.status().next_seq() > primary.written_seq());
    let p = primary.shutdown().unwrap();
    wait_until("the last records", || standby.status().next_seq() == p.last_seq + 1);
    assert_eq!(standby.shutdown().unwrap().state_hash, p.state_hash);
}

#[test]
fn replicated_acks_wait_for_the_standby_and_halt_without_one() {
    let (pdir, sdir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let primary = start_primary(pdir.path(), DurabilityPolicy::Replicated, StandbyLoss::Halt);
    let repl = primary.replication_addr().unwrap();
    let mut c = Client::login(primary.local_addr(), 1, "demo", "demo").expect("login");
    c.send(&order("b1", 1, Side::Buy, 10.0, 1)).unwrap();
    assert!(silent_for(&mut c, "b1", Duration::from_secs(1)), "no ack before a standby holds the order");
    let standby = start_standby(sdir.path(), repl);
    er(&mut c, "b1", ExecType::New);

    drop(standby);
    c.send(&order("b2", 1, Side::Buy, 10.0, 1)).unwrap();
    assert!(silent_for(&mut c, "b2", Duration::from_secs(1)), "halt: no ack while the standby is gone");
    let standby = start_standby(sdir.path(), repl);
    er(&mut c, "b2", ExecType::New);
    drop(c);
    let p = primary.shutdown().unwrap();
    wait_until("the last records", || standby.status().next_seq() == p.last_seq + 1);
    assert_eq!(standby.shutdown().unwrap().state_hash, p.state_hash);
}

#[test]
fn replicated_degrades_to_local_durability_after_the_timeout() {
    let pdir = tempfile::tempdir().unwrap();
    let primary = start_primary(pdir.path(), DurabilityPolicy::Replicated, StandbyLoss::Degrade);
    let mut c = Client::login(primary.local_addr(), 1, "demo", "demo").expect("login");
    c.send(&order("b1", 1, Side::Buy, 10.0, 1)).unwrap();
    er(&mut c, "b1", ExecType::New);
    drop(c);
    primary.shutdown().unwrap();
}

#[test]
fn a_standby_with_another_history_refuses_to_follow() {
    let (pdir, sdir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // The standby's data dir was a primary of its own once.
    let other = pipeline::start(small_appliance::config(sdir.path()).validate().unwrap()).unwrap();
    trade(other.local_addr(), "other", 1);
    let other = other.shutdown().unwrap();

    let primary = start_primary(pdir.path(), DurabilityPolicy::Written, StandbyLoss::Degrade);
    trade(primary.local_addr(), "main", 4);
    assert!(primary.written_seq() > other.last_seq, "the primary has a record where the standby's history goes on");
    let standby = start_standby(sdir.path(), primary.replication_addr().unwrap());
    wait_until("the divergence to be caught", || standby.status().diverged().is_some());
    let why = standby.status().diverged().unwrap();
    assert!(why.contains("does not continue this standby's journal"), "{why}");
    assert_eq!(standby.status().next_seq(), other.last_seq + 1, "nothing of the other history was taken");
    match standby.promote(small_appliance::config(sdir.path()).validate().unwrap()) {
        Err(e) => assert!(e.to_string().contains("refusing promotion"), "{e}"),
        Ok(_) => panic!("a diverged standby was promoted"),
    }
    primary.shutdown().unwrap();
}

#[test]
fn after_a_failover_clients_resume_their_sessions_and_get_what_they_missed() {
    let (pdir, sdir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let primary = start_primary(pdir.path(), DurabilityPolicy::Replicated, StandbyLoss::Halt);
    let standby = start_standby(sdir.path(), primary.replication_addr().unwrap());
    let mut c1 = Client::connect(primary.local_addr()).unwrap();
    c1.negotiate(1, "demo", "demo").unwrap();
    assert_eq!(c1.establish(1000).unwrap().next_seq_no.get(), 1);
    c1.send(&order("rest", 1, Side::Buy, 100.0, 5)).unwrap();
    er(&mut c1, "rest", ExecType::New);
    c1.terminate().unwrap();
    drop(c1);
    // While session 1 is away, session 2 fills part of its order: the fill is stored for it.
    trade_once(primary.local_addr());
    let p = primary.shutdown().expect("primary stops");
    wait_until("the last records", || standby.status().next_seq() == p.last_seq + 1);

    // Promotion by hand: the standby's data dir becomes a primary's.
    let promoted = standby.promote(small_appliance::config(sdir.path()).validate().unwrap()).expect("promoted");
    assert_eq!(promoted.restored(), (p.last_seq, p.state_hash), "the standby held the primary's state");
    let mut c1 = Client::connect(promoted.local_addr()).unwrap();
    c1.negotiate(1, "demo", "demo").unwrap();
    let ack = c1.establish(1000).unwrap();
    assert_eq!(ack.next_seq_no.get(), 3, "seen: the New (1); stored while away: the fill (2)");
    c1.send(&RetransmitRequest {
        session_id: U64::new(1),
        timestamp: U64::new(7),
        from_seq_no: U64::new(2),
        count: U32::new(1),
    })
    .unwrap();
    let fill = sbe_flow::wait_for(&mut c1, "the retransmitted fill", |m| match m {
        Outbound::ExecutionReport(r) => Some(**r),
        _ => None,
    });
    assert_eq!((fill.exec_type, fill.cl_ord_id), (ExecType::Trade.to_u8(), char_field::<20>(b"rest").unwrap()));
    drop(c1);
    promoted.shutdown().unwrap();
}

/// Session 2 sells 2 at 100 and sees the trade.
fn trade_once(addr: SocketAddr) {
    let mut c2 = Client::login(addr, 2, "demo2", "demo2").unwrap();
    c2.send(&order("hit", 2, Side::Sell, 100.0, 2)).unwrap();
    er(&mut c2, "hit", ExecType::Trade);
}

/// The oldest segment of session store `name` under `data_dir`.
fn oldest_store_segment(data_dir: &std::path::Path, name: &str) -> u64 {
    let storage = MmapStorage::open_read_only(data_dir.join("sessions").join(name)).unwrap();
    storage.list_segments().unwrap().first().copied().expect("a store has a segment")
}

#[test]
fn a_standby_copy_of_a_session_store_follows_its_retention() {
    let (pdir, sdir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let small_stores = |c: &mut Config| {
        c.sessions_limits.store_segment_bytes = MIN_SEGMENT_LEN_BYTES;
        c.sessions_limits.store_retained_bytes = 2 * MIN_SEGMENT_LEN_BYTES;
    };
    let mut cfg = primary_config(pdir.path(), DurabilityPolicy::Written, StandbyLoss::Degrade, 300);
    small_stores(&mut cfg);
    let primary = pipeline::start(cfg.validate().unwrap()).unwrap();
    let mut c = small_appliance::config(sdir.path());
    c.replication.primary = primary.replication_addr().unwrap().to_string();
    small_stores(&mut c);
    let standby = standby::start(c.clone().validate().unwrap()).unwrap();

    // IOC orders that cannot cross: each is answered twice (New, Cancelled), and none rests.
    let mut client = Client::login(primary.local_addr(), 1, "demo", "demo").unwrap();
    let orders = 2_000;
    for i in 0..orders {
        let mut o = order(&format!("r{i}"), 1, Side::Buy, 10.0, 1);
        o.time_in_force = TimeInForce::ImmediateOrCancel.to_u8();
        client.send(&o).unwrap();
    }
    er(&mut client, &format!("r{}", orders - 1), ExecType::Canceled);
    let primary_oldest = oldest_store_segment(pdir.path(), "sbe-1");
    assert!(primary_oldest > 1, "the primary's store dropped old segments");
    // The copy's segments are sealed and dropped by its store's background thread, which a
    // loaded CI machine runs late (10 s was once not enough there; 1 s is typical).
    let trimmed = || oldest_store_segment(sdir.path(), "sbe-1") >= primary_oldest;
    wait_until_within("the copy to drop them too", Duration::from_secs(60), trimmed);
    drop(client);
    let p = primary.shutdown().unwrap();
    wait_until("the last records", || standby.status().next_seq() == p.last_seq + 1);
    let promoted = standby.promote(c.validate().unwrap()).expect("the trimmed copy opens as a store");
    let mut client = Client::connect(promoted.local_addr()).unwrap();
    client.negotiate(1, "demo", "demo").unwrap();
    assert_eq!(client.establish(1000).unwrap().next_seq_no.get(), 2 * orders + 1, "every report was counted");
    drop(client);
    promoted.shutdown().unwrap();
}

#[test]
fn a_standby_whose_state_differs_is_caught_within_verify_every_commands() {
    let (pdir, sdir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let primary = start_primary(pdir.path(), DurabilityPolicy::Written, StandbyLoss::Degrade);
    // The same journal applied to an engine of another capacity is another state: the hash
    // covers the engine's limits (a standby configured unlike its primary).
    let mut c = small_appliance::config(sdir.path());
    c.replication.primary = primary.replication_addr().unwrap().to_string();
    c.engine.max_orders *= 2;
    let standby = standby::start(c.clone().validate().unwrap()).unwrap();
    trade(primary.local_addr(), "x", 3);
    wait_until("the divergence to be caught", || standby.status().diverged().is_some());
    let why = standby.status().diverged().unwrap();
    assert!(why.contains("differs"), "{why}");
    let verify_every = primary_config(pdir.path(), DurabilityPolicy::Written, StandbyLoss::Degrade, 300)
        .replication
        .verify_every_commands;
    assert!(why.contains(&format!("after seq {verify_every} ")), "caught at the first state hash: {why}");
    assert!(standby.promote(c.validate().unwrap()).is_err(), "a diverged standby is not promoted");
    primary.shutdown().unwrap();
}
