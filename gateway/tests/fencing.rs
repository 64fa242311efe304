//! Epochs, fencing and rejoin, in one process on loopback: a promoted standby leads at a new
//! epoch and fences the old primary; a returning old primary rejoins as a standby, cutting the
//! records its successor never received, but never one it may have acknowledged.

#[path = "support/sbe_flow.rs"]
mod sbe_flow;
#[path = "support/small_appliance.rs"]
mod small_appliance;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use gateway::NodeState;
use gateway::client::Client;
use gateway::config::{Config, DurabilityPolicy, StandbyLoss};
use gateway::pipeline::{self, Appliance};
use gateway::sbe::messages::{ExecType, Side};
use gateway::standby::{self, Standby};
use sbe_flow::{er, order, silent_for, trade, wait_until};

fn primary_config(dir: &Path, durability: DurabilityPolicy, loss: StandbyLoss) -> Config {
    let mut c = small_appliance::config(dir);
    c.pipeline.durability = durability;
    c.replication.listen = "127.0.0.1:0".into();
    c.replication.verify_every_commands = 3;
    c.replication.on_standby_loss = loss;
    c.replication.standby_timeout_ms = 300;
    c.snapshot.every_commands = 5;
    c
}

fn start_primary(dir: &Path, durability: DurabilityPolicy, loss: StandbyLoss) -> Appliance {
    pipeline::start(primary_config(dir, durability, loss).validate().unwrap()).expect("primary starts")
}

fn start_standby(dir: &Path, primary: SocketAddr) -> Standby {
    let mut c = small_appliance::config(dir);
    c.replication.primary = primary.to_string();
    c.snapshot.every_commands = 5;
    standby::start(c.validate().unwrap()).expect("standby starts")
}

/// Promotes `standby` (data in `dir`) to a primary whose predecessor was at `old_primary`.
fn promote(standby: Standby, dir: &Path, old_primary: SocketAddr) -> Appliance {
    let mut c = primary_config(dir, DurabilityPolicy::Written, StandbyLoss::Halt);
    c.replication.primary = old_primary.to_string();
    standby.promote(c.validate().unwrap()).expect("promoted")
}

/// A primary whose standby held `acked` and then went away; the primary journaled more that
/// nobody else has (acknowledged or not, as `loss` decides). Returns the primary's last seq
/// and the standby (stopped) with what it holds.
fn primary_runs_ahead_of_its_standby(pdir: &Path, sdir: &Path, loss: StandbyLoss) -> (u64, Standby) {
    let primary = start_primary(pdir, DurabilityPolicy::Replicated, loss);
    let repl = primary.replication_addr().unwrap();
    let standby = start_standby(sdir, repl);
    trade(primary.local_addr(), "a", 3);
    wait_until("the standby to hold everything", || standby.status().next_seq() > primary.written_seq());
    let held = standby.shutdown().unwrap().last_seq;
    let mut c = Client::login(primary.local_addr(), 1, "demo", "demo").expect("login");
    c.send(&order("ahead", 1, Side::Buy, 9.0, 1)).unwrap();
    if loss == StandbyLoss::Degrade {
        er(&mut c, "ahead", ExecType::New);
    }
    wait_until("the primary to journal the order", || primary.written_seq() > held);
    drop(c);
    let last = primary.written_seq();
    let stopped = primary.shutdown();
    if loss == StandbyLoss::Halt {
        let e = stopped.expect_err("the unacknowledged order cannot be published without a standby");
        assert!(e.to_string().contains("standby"), "{e}");
    } else {
        assert_eq!(stopped.unwrap().last_seq, last);
    }
    assert!(last > held);
    // The standby, restarted, holds exactly what it held; it is promoted below.
    let standby = start_standby(sdir, repl);
    assert_eq!(standby.status().next_seq(), held + 1);
    (last, standby)
}

#[test]
fn a_returning_old_primary_cuts_its_unacknowledged_suffix_and_follows_the_new_one() {
    let (pdir, sdir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let old_repl = "127.0.0.1:9".parse().unwrap();
    let (old_last, standby) = primary_runs_ahead_of_its_standby(pdir.path(), sdir.path(), StandbyLoss::Halt);
    let promoted = promote(standby, sdir.path(), old_repl);
    assert_eq!(promoted.epoch(), 1, "a promotion leads at the next epoch");
    trade(promoted.local_addr(), "b", 2);
    assert!(promoted.written_seq() >= old_last, "the new primary's history overwrites the old suffix's seqs");

    let rejoined = start_standby(pdir.path(), promoted.replication_addr().unwrap());
    wait_until("the old primary to follow the new one", || {
        rejoined.status().attached() && rejoined.status().next_seq() > promoted.written_seq()
    });
    assert_eq!(rejoined.status().diverged(), None);
    let p = promoted.shutdown().unwrap();
    wait_until("the last records", || rejoined.status().next_seq() == p.last_seq + 1);
    let s = rejoined.shutdown().unwrap();
    assert_eq!(
        (s.last_seq, s.state_hash),
        (p.last_seq, p.state_hash),
        "the rejoined node holds the new primary's state"
    );
    let state = NodeState::load(pdir.path()).unwrap();
    assert_eq!((state.epoch, state.local_acks_from), (1, None), "it took the new epoch");
    let again =
        pipeline::start(primary_config(pdir.path(), DurabilityPolicy::Written, StandbyLoss::Halt).validate().unwrap());
    assert!(
        again.is_err_and(|e| e.to_string().contains("superseded")),
        "a rejoined node leads again only by promotion"
    );
}

#[test]
fn a_returning_old_primary_that_acknowledged_alone_refuses_to_cut() {
    let (pdir, sdir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let old_repl = "127.0.0.1:9".parse().unwrap();
    let (old_last, standby) = primary_runs_ahead_of_its_standby(pdir.path(), sdir.path(), StandbyLoss::Degrade);
    assert!(
        NodeState::load(pdir.path()).unwrap().local_acks_from.is_some(),
        "the degrade was recorded before its acks"
    );
    let promoted = promote(standby, sdir.path(), old_repl);
    trade(promoted.local_addr(), "b", 2);

    let rejoined = start_standby(pdir.path(), promoted.replication_addr().unwrap());
    wait_until("the refusal", || rejoined.status().diverged().is_some());
    let why = rejoined.status().diverged().unwrap();
    assert!(why.contains("may have been acknowledged"), "{why}");
    assert_eq!(rejoined.status().next_seq(), old_last + 1, "nothing was cut");
    drop(rejoined);
    promoted.shutdown().unwrap();
}

#[test]
fn a_promoted_standby_fences_a_live_old_primary() {
    let (pdir, sdir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let primary = start_primary(pdir.path(), DurabilityPolicy::Replicated, StandbyLoss::Degrade);
    let repl = primary.replication_addr().unwrap();
    let standby = start_standby(sdir.path(), repl);
    trade(primary.local_addr(), "a", 2);
    wait_until("the standby to hold everything", || standby.status().next_seq() > primary.written_seq());
    let mut client = Client::login(primary.local_addr(), 1, "demo", "demo").expect("login");

    // Promoted while the old primary still runs (a partition that heals, an operator's slip).
    let promoted = promote(standby, sdir.path(), repl);
    wait_until("the old primary to be fenced", || NodeState::load(pdir.path()).unwrap().superseded_by == Some(1));
    client.send(&order("late", 1, Side::Buy, 9.0, 1)).ok();
    assert!(silent_for(&mut client, "late", Duration::from_secs(1)), "a fenced primary acknowledges nothing");
    let stopped = primary.shutdown();
    assert!(stopped.is_err_and(|e| e.to_string().contains("superseded")), "the old primary stopped as superseded");
    let restart =
        pipeline::start(primary_config(pdir.path(), DurabilityPolicy::Written, StandbyLoss::Halt).validate().unwrap());
    assert!(restart.is_err_and(|e| e.to_string().contains("superseded")), "it refuses to lead again");
    promoted.shutdown().unwrap();
}

#[test]
fn a_step_down_hands_over_to_the_standby_with_nothing_lost() {
    let (pdir, sdir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let primary = start_primary(pdir.path(), DurabilityPolicy::Replicated, StandbyLoss::Halt);
    let repl = primary.replication_addr().unwrap();
    assert!(primary.can_step_down().is_err(), "no standby: nothing to hand over to");
    let standby = start_standby(sdir.path(), repl);
    wait_until("the standby to attach", || primary.can_step_down().is_ok());
    trade(primary.local_addr(), "a", 3);

    let started = Instant::now();
    let stepped = primary.step_down().expect("stepped down");
    wait_until("the handover", || standby.status().handed_over());
    assert_eq!(standby.status().next_seq(), stepped.last_seq + 1, "the standby holds every record");
    let promoted = promote(standby, sdir.path(), repl);
    assert_eq!(promoted.restored(), (stepped.last_seq, stepped.state_hash));
    trade(promoted.local_addr(), "b", 1);
    eprintln!("switchover: step-down → first acknowledgement from the new primary in {:?}", started.elapsed());
    assert_eq!(
        NodeState::load(pdir.path()).unwrap().superseded_by,
        Some(1),
        "the old primary leads again only by promotion"
    );
    promoted.shutdown().unwrap();
}

#[test]
fn sable_admin_step_down_reaches_the_primary_through_the_admin_port() {
    use gateway::admin::auth::{Scope, Token};
    use gateway::admin::cli::{AdminAction, AdminArgs, run};
    let (pdir, sdir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut c = primary_config(pdir.path(), DurabilityPolicy::Replicated, StandbyLoss::Halt);
    c.admin.listen = "127.0.0.1:0".into();
    c.admin.tokens = vec![
        Token { name: "sre".into(), token: "admin-token-0123456789".into(), scope: Scope::Admin },
        Token { name: "grafana".into(), token: "read-token-0123456789".into(), scope: Scope::Read },
    ];
    let primary = pipeline::start(c.validate().unwrap()).unwrap();
    let token_file = |token: &str| {
        let path = pdir.path().join(format!("{}.token", &token[..4]));
        std::fs::write(&path, format!("{token}\n")).unwrap();
        path
    };
    let args = |token: &str| AdminArgs {
        addr: Some(primary.admin_addr().expect("the admin port runs").to_string()),
        config: None,
        token_file: Some(token_file(token)),
        action: AdminAction::StepDown,
    };
    let refused = run(&args("admin-token-0123456789")).expect_err("no standby to take over");
    assert!(refused.contains("409"), "{refused}");
    let standby = start_standby(sdir.path(), primary.replication_addr().unwrap());
    wait_until("the standby to attach", || primary.can_step_down().is_ok());
    let read_only = run(&args("read-token-0123456789")).expect_err("a read token may not step down");
    assert!(read_only.contains("403"), "{read_only}");
    assert!(!primary.take_step_down_request());
    run(&args("admin-token-0123456789")).expect("step-down accepted");
    assert!(primary.take_step_down_request(), "the owner sees the request");
    let stepped = primary.step_down().expect("stepped down");
    wait_until("the handover", || standby.status().handed_over());
    assert_eq!(standby.status().next_seq(), stepped.last_seq + 1);
}
