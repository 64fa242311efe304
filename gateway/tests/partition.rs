//! A network partition made by the test (TCP proxies it cuts): the primary loses etcd and its
//! standby at once, while a client on the primary's side keeps sending orders. The primary,
//! under `degrade`, acknowledges alone for a while, then fails itself before its etcd lease
//! can have expired; the standby wins the election once it has and leads at the next epoch.
//! Every acknowledgement of the old epoch arrives before the new epoch's first.

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
use gateway::config::{Config, DurabilityPolicy, StandbyLoss};
use gateway::election::{Election, ready_to_lead};
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

    let asked = AtomicBool::new(false);
    let won = loop {
        if let Some(won) = ready_to_lead(&standby, Some(&s_election), &asked, sdir.path()) {
            break won.expect("won in the election");
        }
        assert!(cut.elapsed() < Duration::from_secs(15), "the standby never won the election");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(won.epoch > primary.epoch(), "the new leader's epoch is newer");
    let held_new = s_election.keep(won).unwrap();
    let promoted = standby.promote_at(s, Some(won.epoch)).unwrap();
    held_new.attach(&promoted);
    let mut c = Client::login(promoted.local_addr(), 1, "demo", "demo").unwrap();
    c.send(&order("n0", 1, Side::Buy, 9.0, 1)).unwrap();
    er(&mut c, "n0", ExecType::New);
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
