//! With FIX turned off (`fix.listen = ""`) while `[[fix_sessions]]` are still configured, the
//! reports of accounts those sessions trade reach the SBE sessions, and nothing is routed to
//! the absent FIX protocol (it used to panic the gateway thread at the first such report).

#[path = "support/sbe_flow.rs"]
mod sbe_flow;
#[path = "support/small_appliance.rs"]
mod small_appliance;

use gateway::client::Client;
use gateway::sbe::messages::{ExecType, Side};

#[test]
fn reports_of_accounts_shared_with_fix_sessions_flow_when_fix_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small_appliance::config(dir.path());
    cfg.fix.listen = String::new();
    assert!(cfg.fix_sessions.iter().any(|f| f.accounts.contains(&1)), "a FIX session trades account 1");
    let app = gateway::pipeline::start(cfg.validate().unwrap()).unwrap();
    assert!(app.fix_addr().is_none());
    let mut c = Client::login(app.local_addr(), 1, "demo", "demo").expect("logs on");
    c.send(&sbe_flow::order("o1", 1, Side::Buy, 99.0, 1)).unwrap();
    sbe_flow::er(&mut c, "o1", ExecType::New);
    c.send(&sbe_flow::order("o2", 1, Side::Buy, 98.0, 1)).unwrap();
    sbe_flow::er(&mut c, "o2", ExecType::New);
    assert!(!app.is_finished(), "the gateway thread is alive");
    app.shutdown().expect("clean shutdown");
}
