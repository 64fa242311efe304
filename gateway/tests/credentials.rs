//! Hashed credentials on real sockets, SBE and FIX: a session whose password is an Argon2 PHC
//! string (`sable passwd`) logs on with the password and only with it, its sequence numbers
//! untouched by refused attempts; a FIX client that sends an order right behind its Logon (before
//! the reply, while the password is verified on the auth thread) gets the Logon reply first and
//! then its order's report; a credential reload swaps passwords without touching live sessions,
//! and an invalid file changes nothing.

#[path = "support/raw_fix.rs"]
mod raw_fix;
#[path = "support/sbe_flow.rs"]
mod sbe_flow;

use gateway::client::Client;
use gateway::config::{Config, DEFAULT_TOML};
use gateway::credentials::hash_password;
use gateway::sbe::messages::{ExecType, Side};
use raw_fix::Raw;
use sbe_flow::{er, order};

fn fix_order(cl: &str) -> Vec<(u32, String)> {
    [(11, cl), (1, "1"), (55, "DEMO"), (54, "1"), (60, "20261122-10:00:00.000"), (38, "1"), (40, "2")]
        .into_iter()
        .chain([(44, "99"), (59, "1")])
        .map(|(t, v)| (t, v.to_string()))
        .collect()
}

fn refs(v: &[(u32, String)]) -> Vec<(u32, &str)> {
    v.iter().map(|(t, s)| (*t, s.as_str())).collect()
}

/// The demo configuration's text with SBE session 1's and FIX CLIENT1's passwords replaced.
fn config_text(sbe1: &str, client1: &str) -> String {
    let text = DEFAULT_TOML.replacen("password = \"demo\"\n", &format!("password = \"{sbe1}\"\n"), 1);
    let text = text.replacen("password = \"demo\"\n", &format!("password = \"{client1}\"\n"), 1);
    assert!(!text.contains("password = \"demo\"\n"), "both demo passwords replaced");
    text
}

fn start(dir: &std::path::Path, text: &str) -> gateway::pipeline::Appliance {
    let parsed = Config::parse(text).expect("config parses");
    raw_fix::start(dir, |c| {
        c.sessions = parsed.sessions;
        c.fix_sessions = parsed.fix_sessions;
    })
}

/// A FIX Logon of CLIENT1 with `password` and MsgSeqNum `seq`: the reply's type and text.
fn fix_logon(addr: std::net::SocketAddr, password: &str, seq: u64) -> (String, Option<String>, Raw) {
    let mut c = Raw::connect(addr, "CLIENT1");
    c.seq = seq;
    c.send("A", &[(98, "0"), (108, "30"), (553, "demo"), (554, password)]);
    let reply = loop {
        let m = c.recv(raw_fix::WAIT).expect("a Logon or a Logout");
        if m.ty() == "A" || m.ty() == "5" {
            break m;
        }
    };
    (reply.ty().to_string(), reply.get(58).map(str::to_owned), c)
}

#[test]
fn hashed_passwords_log_on_only_with_the_password_and_orders_behind_a_logon_wait_their_turn() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&hash_password(b"sbe-secret").unwrap(), &hash_password(b"fix-secret").unwrap());
    let app = start(dir.path(), &text);

    let sbe = app.local_addr();
    assert!(Client::login(sbe, 1, "demo", "wrong").is_err(), "a wrong password is refused");
    assert!(Client::login(sbe, 1, "demo", "demo").is_err(), "the old plain one too");
    let mut c = Client::login(sbe, 1, "demo", "sbe-secret").expect("the password logs on");
    c.send(&order("s1", 1, Side::Sell, 101.0, 1)).unwrap();
    er(&mut c, "s1", ExecType::New);

    let fix = app.fix_addr().unwrap();
    for wrong in ["wrong", "demo", "fix-secreT"] {
        let (ty, text, _) = fix_logon(fix, wrong, 1);
        assert_eq!((ty.as_str(), text.as_deref()), ("5", Some("Invalid Username or Password")));
    }
    // The Logon and an order in one write: the order is held until the Logon is answered.
    let mut f = Raw::connect(fix, "CLIENT1");
    let mut bytes = f.build("A", 1, &[(98, "0"), (108, "30"), (553, "demo"), (554, "fix-secret")]);
    bytes.extend_from_slice(&f.build("D", 2, &refs(&fix_order("f1"))));
    f.seq = 3;
    f.send_raw(&bytes);
    let reply = f.expect("A");
    // CLIENT1 trades account 1 too: the SBE order's report was stored for it (seq 1) while it
    // was away; the refused Logons consumed nothing.
    assert_eq!(reply.seq(), 2, "refused Logons consumed no sequence number");
    f.send("2", &[(7, "1"), (16, "1")]);
    let (mut seen, mut done) = (Vec::new(), false);
    while let Some(m) = f.recv(raw_fix::WAIT) {
        seen.push((m.ty().to_string(), m.seq(), m.get(11).map(str::to_owned), m.get(43).map(str::to_owned)));
        let resent = seen.iter().any(|(ty, seq, cl, dup)| {
            (ty, *seq, cl.as_deref(), dup.as_deref()) == (&"8".into(), 1, Some("s1"), Some("Y"))
        });
        let acked = seen.iter().any(|(ty, seq, cl, _)| (ty, *seq, cl.as_deref()) == (&"8".into(), 3, Some("f1")));
        if resent && acked {
            done = true;
            break;
        }
    }
    assert!(done, "the stored report resent as seq 1, the order acked as seq 3: {seen:?}");
    app.shutdown().unwrap();
}

#[test]
fn a_reload_swaps_passwords_spares_live_sessions_and_refuses_an_invalid_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sable.toml");
    let text = config_text(&hash_password(b"old-sbe").unwrap(), "old-fix");
    let app = start(dir.path(), &text);
    let (sbe, fix) = (app.local_addr(), app.fix_addr().unwrap());
    let mut live_sbe = Client::login(sbe, 1, "demo", "old-sbe").expect("logs on");
    let (ty, _, mut live_fix) = fix_logon(fix, "old-fix", 1);
    assert_eq!(ty, "A");

    std::fs::write(&path, config_text("$argon2id$not-a-hash", "x")).unwrap();
    assert!(app.reload(&path).is_err(), "an invalid file is refused");
    std::fs::write(&path, config_text(&hash_password(b"new-sbe").unwrap(), &hash_password(b"new-fix").unwrap()))
        .unwrap();
    let report = app.reload(&path).expect("reloads");
    assert_eq!(report.changed, vec!["sbe session 1".to_string(), "fix session CLIENT1->SABLE".to_string()]);
    assert_eq!(report.unchanged, 2);

    live_sbe.send(&order("l1", 1, Side::Sell, 101.0, 1)).unwrap();
    er(&mut live_sbe, "l1", ExecType::New);
    live_fix.send("1", &[(112, "still-here")]);
    // CLIENT1 trades account 1 too, so the SBE order's report may come first.
    let heartbeat = std::iter::from_fn(|| live_fix.recv(raw_fix::WAIT)).find(|m| m.ty() == "0");
    assert_eq!(heartbeat.and_then(|m| m.get(112).map(str::to_owned)).as_deref(), Some("still-here"));
    drop((live_sbe, live_fix));

    // The next logons need the new passwords (retried: the old connections close meanwhile).
    let deadline = std::time::Instant::now() + raw_fix::WAIT;
    let sbe_ok = loop {
        match Client::login(sbe, 1, "demo", "new-sbe") {
            Ok(c) => break c,
            Err(_) if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(50)),
            Err(e) => panic!("the new SBE password is refused: {e}"),
        }
    };
    drop(sbe_ok);
    let fix_reply = loop {
        let (ty, text, _) = fix_logon(fix, "new-fix", 3);
        if ty == "A" || std::time::Instant::now() > deadline {
            break (ty, text);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(fix_reply.0, "A", "the new FIX password logs on: {fix_reply:?}");
    assert!(Client::login(sbe, 1, "demo", "old-sbe").is_err(), "the old SBE password is refused");
    let (ty, text, _) = fix_logon(fix, "old-fix", 4);
    assert_eq!((ty.as_str(), text.as_deref()), ("5", Some("Invalid Username or Password")));
    app.shutdown().unwrap();
}

#[test]
fn sable_passwd_prints_a_salted_hash_of_the_password_on_stdin() {
    let run = || {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sable"))
            .arg("passwd")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sable passwd runs");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"correct horse\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let (a, b) = (run(), run());
    assert!(a.starts_with("$argon2id$"), "{a}");
    assert_ne!(a, b, "salted: two hashes of one password differ");
    assert!(gateway::credentials::verify_password(&a, b"correct horse"), "the newline is not part of it");
    assert!(!gateway::credentials::verify_password(&a, b"correct horse\n"));
    assert!(gateway::credentials::Credential::new("u", &a).is_ok(), "the configuration accepts it");
}
