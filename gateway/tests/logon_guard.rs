//! Failed-logon throttling on real sockets, SBE and FIX: after `logon_failures_before_lockout`
//! wrong passwords, even the right one is refused (with the same answer) until the lockout
//! ends; a session already logged on is not touched; the lockout ends by itself.

#[path = "support/raw_fix.rs"]
mod raw_fix;
#[path = "support/sbe_flow.rs"]
mod sbe_flow;

use std::time::{Duration, Instant};

use gateway::client::Client;
use gateway::config::Config;
use gateway::sbe::messages::{ExecType, Side};
use raw_fix::{Raw, start};
use sbe_flow::{er, order};

const FAILURES: u32 = 3;
const LOCKOUT: Duration = Duration::from_millis(600);

fn guarded(c: &mut Config) {
    c.sessions_limits.logon_failures_before_lockout = FAILURES;
    c.sessions_limits.logon_lockout_ms = LOCKOUT.as_millis() as u64;
}

/// Retries `attempt` until it succeeds, bounded.
fn eventually(what: &str, mut attempt: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !attempt() {
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sbe_wrong_passwords_lock_the_session_out_for_a_while_and_spare_a_live_session() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), guarded);
    let addr = app.local_addr();
    let mut live = Client::login(addr, 2, "demo2", "demo2").expect("session 2 logs on first");
    for _ in 0..FAILURES {
        assert!(Client::login(addr, 1, "demo", "wrong").is_err());
    }
    let locked_at = Instant::now();
    assert!(Client::login(addr, 1, "demo", "demo").is_err(), "the right password is refused while locked out");
    live.send(&order("live", 2, Side::Buy, 10.0, 1)).unwrap();
    er(&mut live, "live", ExecType::New);
    eventually("session 1 logging on again", || Client::login(addr, 1, "demo", "demo").is_ok());
    assert!(locked_at.elapsed() >= LOCKOUT / 2, "the lockout lasted: {:?}", locked_at.elapsed());
    drop(live);
    app.shutdown().unwrap();
}

#[test]
fn fix_wrong_passwords_lock_the_session_out_for_a_while_and_spare_a_live_session() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), guarded);
    let addr = app.fix_addr().unwrap();
    let mut live = Raw::connect(addr, "CLIENT2");
    live.logon(&[]);
    let logon = |password: &str| {
        let mut c = Raw::connect(addr, "CLIENT1");
        c.send("A", &[(98, "0"), (108, "30"), (553, "demo"), (554, password)]);
        let reply = loop {
            let m = c.recv(raw_fix::WAIT).expect("a Logon or a Logout");
            if m.ty() == "A" || m.ty() == "5" {
                break m;
            }
        };
        (reply.ty() == "A", reply.get(58).map(str::to_owned))
    };
    for _ in 0..FAILURES {
        assert_eq!(logon("wrong"), (false, Some("Invalid Username or Password".into())));
    }
    assert_eq!(logon("demo"), (false, Some("Invalid Username or Password".into())), "refused, and the same words");
    live.send("1", &[(112, "still-here")]);
    assert_eq!(live.expect("0").get(112), Some("still-here"), "the live session is not touched");
    eventually("CLIENT1 logging on again", || logon("demo").0);
    app.shutdown().unwrap();
}
