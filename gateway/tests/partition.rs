//! A network partition made by the test (TCP proxies it cuts): the primary loses etcd and its
//! standby at once, while a client on the primary's side keeps sending orders. The primary,
//! under `degrade`, acknowledges alone for a while, then fails itself before its etcd lease
//! can have expired; the standby wins the election once it has and leads at the next epoch.
//! Every acknowledgement of the old epoch arrives before the new epoch's first.
//!
//! And a primary whose process is gone (the standby's link drops and its reconnects are
//! refused): under `halt` the standby deposes it (revokes its lease) and leads well before the
//! lease would have run out; under `degrade` it waits for the lease.

#[path = "support/etcd_and_proxy.rs"]
mod etcd_and_proxy;
#[path = "support/sbe_flow.rs"]
mod sbe_flow;
#[path = "support/small_appliance.rs"]
mod small_appliance;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use etcd_and_proxy::{Etcd, Proxy, wait_until};
use gateway::client::Client;
use gateway::config::{Config, DurabilityPolicy, StandbyLoss, Validated};
use gateway::election::{Election, Held, Won, ready_to_lead};
use gateway::pipeline;
use gateway::sbe::codec::{Outbound, decode_outbound};
use gateway::sbe::messages::{ExecType, Side};
use gateway::standby;
use sbe_flow::{er, order};

fn node_config(dir: &Path, etcd: &str, node: &str) -> Config {
    let mut c = small_appliance::config(dir);
    c.snapshot.every_commands = 5;
    c.election.etcd = etcd.to_owned();
    // 2 s: a loaded machine may delay one refresh by most of a second.
    c.election.lease_ttl_s = 2;
    c.election.node = node.to_owned();
    c
}

/// Asks [`ready_to_lead`] every 20 ms until the standby has won the election; `None` after `wait`.
fn wait_to_lead(standby: &standby::Standby, election: &Election, dir: &Path, wait: Duration) -> Option<Won> {
    let (asked, since) = (AtomicBool::new(false), Instant::now());
    while since.elapsed() < wait {
        if let Some(won) = ready_to_lead(standby, Some(election), &asked, dir) {
            return Some(won.expect("won in the election"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Promotes `standby` at the epoch it won, keeping that lease, and has an order acknowledged
/// there.
fn promote_and_trade(
    standby: standby::Standby,
    cfg: Validated,
    election: &Election,
    won: Won,
    cl_ord_id: &str,
) -> (pipeline::Appliance, Held) {
    let held = election.keep(won).unwrap();
    let promoted = standby.promote_at(cfg, Some(won.epoch)).unwrap();
    held.attach(&promoted);
    let mut c = Client::login(promoted.local_addr(), 1, "demo", "demo").unwrap();
    c.send(&order(cl_ord_id, 1, Side::Buy, 9.0, 1)).unwrap();
    er(&mut c, cl_ord_id, ExecType::New);
    (promoted, held)
}

/// Sends orders one after another on `client` until `until`; the arrival time of every New.
fn keep_trading(mut client: Client, until: Instant) -> Vec<Instant> {
    let mut acks = Vec::new();
    let mut i = 0u64;
    while Instant::now() < until {
        if client.send(&order(&format!("o{i}"), 1, Side::Buy, 9.0, 1)).is_err() {
            break;
        }
        i += 1;
        let sent = Instant::now();
        while sent.elapsed() < Duration::from_millis(20) {
            match client.recv(Duration::from_millis(5)) {
                Ok(Some(frame)) => {
                    if let Ok(Outbound::ExecutionReport(r)) = decode_outbound(&frame[6..])
                        && r.exec_type == ExecType::New.to_u8()
                    {
                        acks.push(Instant::now());
                    }
                }
                Ok(None) => {}
                Err(_) => return acks,
            }
        }
    }
    acks
}

#[test]
fn a_cut_off_primary_acknowledges_nothing_after_the_new_epochs_first_acknowledgement() {
    let (edir, pdir, sdir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let etcd = Etcd::start(edir.path());
    let to_etcd = Proxy::start(etcd.addr);

    let mut p = node_config(pdir.path(), &format!("http://{}", to_etcd.addr), "a");
    p.pipeline.durability = DurabilityPolicy::Replicated;
    p.replication.listen = "127.0.0.1:0".into();
    p.replication.verify_every_commands = 3;
    p.replication.on_standby_loss = StandbyLoss::Degrade;
    p.replication.standby_timeout_ms = 200;
    let p = p.validate().unwrap();
    let p_election = Election::from_config(&p.raw.election).expect("election on");
    let won = p_election.lead(pdir.path()).expect("the first primary wins");
    let held = p_election.keep(won).unwrap();
    let primary = pipeline::start(p).unwrap();
    held.attach(&primary);
    let to_primary = Proxy::start(primary.replication_addr().unwrap());

    let mut s = node_config(sdir.path(), &etcd.url, "b");
    s.replication.primary = to_primary.addr.to_string();
    s.pipeline.durability = DurabilityPolicy::Written;
    let s = s.validate().unwrap();
    let s_election = Election::from_config(&s.raw.election).unwrap();
    let standby = standby::start(s.clone()).unwrap();
    wait_until("the standby to follow", Duration::from_secs(10), || standby.status().attached());

    let client = Client::login(primary.local_addr(), 1, "demo", "demo").unwrap();
    let old = std::thread::spawn(move || keep_trading(client, Instant::now() + Duration::from_secs(6)));
    std::thread::sleep(Duration::from_millis(300));
    let cut = Instant::now();
    to_etcd.cut();
    to_primary.cut();

    let won = wait_to_lead(&standby, &s_election, sdir.path(), Duration::from_secs(15))
        .expect("the standby never won the election");
    assert!(won.epoch > primary.epoch(), "the new leader's epoch is newer");
    let (promoted, _held) = promote_and_trade(standby, s, &s_election, won, "n0");
    let first_new = Instant::now();

    let old_acks = old.join().unwrap();
    let after_cut = old_acks.iter().filter(|&&t| t > cut).count();
    eprintln!(
        "partition: {} acknowledgements of the old epoch, {after_cut} after the cut; the new epoch's first {:?} after the cut",
        old_acks.len(),
        first_new - cut
    );
    assert!(after_cut > 0, "the cut-off primary degraded and acknowledged alone for a while: the test saw the danger");
    let last_old = *old_acks.last().expect("acknowledgements before the cut");
    eprintln!("partition: the old epoch's last acknowledgement {:?} after the cut", last_old - cut);
    assert!(last_old < first_new, "an old-epoch acknowledgement arrived after the new epoch's first");
    let stopped = primary.shutdown();
    assert!(stopped.is_err_and(|e| e.to_string().contains("lease")), "the old primary fenced itself");
    promoted.shutdown().unwrap();
}

/// How the standby loses its primary in [`primary_gone`].
#[derive(Clone, Copy)]
enum Loss {
    /// The primary's process dies: its port refuses connections.
    Died,
    /// A partition: connections are accepted and dropped, nothing is refused.
    CutOff,
}

/// A primary (lease 10 s) and its standby, the standby reaching it through a proxy; the
/// standby then loses it (`how`). How long the standby took to be ready to lead, if it was
/// within `wait`; and whether the old primary then fenced itself for the lost lease.
fn primary_gone(loss: StandbyLoss, how: Loss, wait: Duration) -> (Option<Duration>, bool) {
    let (edir, pdir, sdir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let etcd = Etcd::start(edir.path());
    let mut p = node_config(pdir.path(), &etcd.url, "a");
    p.election.lease_ttl_s = 10;
    p.pipeline.durability = DurabilityPolicy::Replicated;
    p.replication.listen = "127.0.0.1:0".into();
    p.replication.on_standby_loss = loss;
    let p = p.validate().unwrap();
    let p_election = Election::from_config(&p.raw.election).expect("election on");
    let held = p_election.keep(p_election.lead(pdir.path()).expect("the first primary wins")).unwrap();
    let primary = pipeline::start(p).unwrap();
    held.attach(&primary);
    let to_primary = Proxy::start(primary.replication_addr().unwrap());
    let mut s = node_config(sdir.path(), &etcd.url, "b");
    s.election.lease_ttl_s = 10;
    s.replication.primary = to_primary.addr.to_string();
    let s = s.validate().unwrap();
    let s_election = Election::from_config(&s.raw.election).unwrap();
    let standby = standby::start(s.clone()).unwrap();
    wait_until("the standby to follow", Duration::from_secs(10), || standby.status().attached());
    let mut c = Client::login(primary.local_addr(), 1, "demo", "demo").unwrap();
    c.send(&order("before", 1, Side::Buy, 9.0, 1)).unwrap();
    er(&mut c, "before", ExecType::New);

    let killed = Instant::now();
    match how {
        Loss::Died => to_primary.kill(),
        Loss::CutOff => to_primary.cut(),
    }
    let ready = wait_to_lead(&standby, &s_election, sdir.path(), wait);
    let took = killed.elapsed();
    let Some(won) = ready else {
        // A `halt` primary cut off from its standby cannot drain what it sequenced since (it
        // says so): its shutdown's result is not what these tests look at.
        let _ = primary.shutdown();
        return (None, false);
    };
    let (promoted, _held) = promote_and_trade(standby, s, &s_election, won, "after");
    // Its lease revoked, the old primary fails itself at its next refresh (every TTL/4).
    wait_until("the old primary to fence itself", Duration::from_secs(10), || primary.is_finished());
    let fenced = primary.shutdown().is_err_and(|e| e.to_string().contains("lease"));
    promoted.shutdown().unwrap();
    (Some(took), fenced)
}

#[test]
fn a_gone_primary_that_halts_is_deposed_before_its_lease_runs_out() {
    let (took, fenced) = primary_gone(StandbyLoss::Halt, Loss::Died, Duration::from_secs(5));
    let took = took.expect("the standby leads within half the 10 s lease");
    eprintln!("deposed: the standby was ready to lead {took:?} after the primary's port closed");
    assert!(fenced, "the old primary, its lease revoked, fenced itself");
}

#[test]
fn a_gone_primary_that_degrades_keeps_its_lease() {
    let (took, _) = primary_gone(StandbyLoss::Degrade, Loss::Died, Duration::from_secs(2));
    assert_eq!(took, None, "a degrading primary may have acknowledged alone: its lease is waited for");
}

#[test]
fn a_cut_off_primary_that_halts_keeps_its_lease() {
    let (took, _) = primary_gone(StandbyLoss::Halt, Loss::CutOff, Duration::from_secs(2));
    assert_eq!(took, None, "a partition refuses nothing: the primary may be alive, so its lease is waited for");
}
