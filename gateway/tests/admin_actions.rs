//! Operator actions on the admin port, end to end on a real appliance: each action's effect on
//! the book and on the clients (SBE and FIX), its audit record, the audit trail after a
//! restart (byte for byte, also when rebuilt from the journal alone), the chain check catching
//! an edited record, and a reload rotating a password and an account limit without a restart.

// `obs_support` (admin port) and `raw_fix` (FIX client) each include the test configuration.
#![allow(clippy::duplicate_mod)]

mod obs_support;
#[path = "support/raw_fix.rs"]
mod raw_fix;
#[path = "support/sbe_flow.rs"]
mod sbe_flow;

use std::net::SocketAddr;
use std::time::Duration;

use gateway::client::Client;
use gateway::sbe::messages::{ExecType, Side};
use obs_support::{ADMIN_TOKEN, READ_TOKEN, config, http, start};
use sbe_flow::{er, order};
use serde_json::Value;

/// Kill switch engaged (the engine's `RejectReason::KillSwitch`).
const KILL_SWITCH: u16 = engine::RejectReason::KillSwitch as u16;

/// POSTs an admin action with the admin token; returns the status and the records.
fn act(admin: SocketAddr, path: &str) -> (u16, Vec<Value>) {
    let r = http(admin, "POST", path, Some(ADMIN_TOKEN));
    let records =
        serde_json::from_str::<Value>(&r.body).ok().and_then(|v| v["records"].as_array().cloned()).unwrap_or_default();
    (r.status, records)
}

/// The next ExecutionReport for `cl` (reports of the session's account for other orders are
/// passed over).
fn fix_report(fix: &mut raw_fix::Raw, cl: &str) -> raw_fix::Msg {
    loop {
        let m = fix.expect("8");
        if m.get(11) == Some(cl) {
            return m;
        }
    }
}

/// The audit log as the admin port lists it (read token), one JSON line per record.
fn audit(admin: SocketAddr, query: &str) -> Vec<Value> {
    let r = http(admin, "GET", &format!("/admin/audit{query}"), Some(READ_TOKEN));
    assert_eq!(r.status, 200, "{}", r.body);
    r.body.lines().map(|l| serde_json::from_str(l).expect("a JSON record")).collect()
}

#[test]
fn halt_and_resume_reach_clients_and_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let (app, admin) = start(config(dir.path()));
    let mut buyer = Client::login(app.local_addr(), 1, "demo", "demo").unwrap();
    let mut seller = Client::login(app.local_addr(), 2, "demo2", "demo2").unwrap();
    buyer.send(&order("b1", 1, Side::Buy, 10.0, 5)).unwrap();
    er(&mut buyer, "b1", ExecType::New);

    assert_eq!(http(admin, "POST", "/admin/instruments/1/halt", Some(READ_TOKEN)).status, 403, "admin scope only");
    let (status, records) = act(admin, "/admin/instruments/1/halt");
    assert_eq!(status, 200);
    let r = &records[0];
    assert_eq!(
        (r["by"].as_str(), r["action"].as_str(), r["target"].as_str()),
        (Some("sre"), Some("halt"), Some("instrument 1"))
    );
    assert_eq!((r["before"]["status"].as_str(), r["after"]["status"].as_str()), (Some("Open"), Some("Halted")));
    assert_eq!((r["before"]["live_orders"].as_u64(), r["result"].as_str()), (Some(1), Some("ok")));

    seller.send(&order("s1", 2, Side::Sell, 10.0, 2)).unwrap();
    let rej = er(&mut seller, "s1", ExecType::Rejected);
    assert_eq!(rej.reject_code.get(), engine::RejectReason::InstrumentNotOpen as u16);

    assert_eq!(act(admin, "/admin/instruments/1/resume").0, 200);
    seller.send(&order("s2", 2, Side::Sell, 10.0, 2)).unwrap();
    er(&mut seller, "s2", ExecType::Trade);

    let (status, records) = act(admin, "/admin/instruments/77/halt");
    assert_eq!(status, 422, "the engine refuses an unknown instrument");
    assert_eq!(records[0]["result"], "refused: unknown instrument");

    let halts = audit(admin, "?action=halt");
    assert_eq!(halts.len(), 2);
    assert_eq!(audit(admin, "").len(), 3);
    assert_eq!(audit(admin, "?action=resume")[0]["prev"], halts[0]["hash"], "the chain links consecutive records");
    drop(app);
}

#[test]
fn kill_switches_cancel_everything_and_refuse_new_orders_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let (app, admin) = start(config(dir.path()));
    let mut buyer = Client::login(app.local_addr(), 1, "demo", "demo").unwrap();
    let mut seller = Client::login(app.local_addr(), 2, "demo2", "demo2").unwrap();
    for (cl, px) in [("b1", 9.0), ("b2", 9.5)] {
        buyer.send(&order(cl, 1, Side::Buy, px, 5)).unwrap();
        er(&mut buyer, cl, ExecType::New);
    }
    seller.send(&order("s1", 2, Side::Sell, 11.0, 5)).unwrap();
    er(&mut seller, "s1", ExecType::New);

    // Account 1: both orders cancelled, new ones refused; account 2 trades on.
    let (status, records) = act(admin, "/admin/kill/account/1");
    assert_eq!(status, 200);
    // Best first: b2 (9.5) before b1 (9.0).
    er(&mut buyer, "b2", ExecType::Canceled);
    er(&mut buyer, "b1", ExecType::Canceled);
    let r = &records[0];
    assert_eq!((r["action"].as_str(), r["cancelled"].as_u64()), (Some("kill_account"), Some(2)));
    assert_eq!((r["before"]["live_orders"].as_u64(), r["after"]["live_orders"].as_u64()), (Some(2), Some(0)));
    assert_eq!((r["before"]["kill_switch"].as_bool(), r["after"]["kill_switch"].as_bool()), (Some(false), Some(true)));
    buyer.send(&order("b3", 1, Side::Buy, 9.0, 1)).unwrap();
    assert_eq!(er(&mut buyer, "b3", ExecType::Rejected).reject_code.get(), KILL_SWITCH);
    seller.send(&order("s2", 2, Side::Sell, 12.0, 1)).unwrap();
    er(&mut seller, "s2", ExecType::New);
    assert_eq!(act(admin, "/admin/release/account/1").0, 200);
    buyer.send(&order("b4", 1, Side::Buy, 9.0, 1)).unwrap();
    er(&mut buyer, "b4", ExecType::New);

    // Session CLIENT1 (FIX, account 1): account 1's orders are cancelled and the FIX session
    // refused, while the SBE session on the same account goes on.
    let mut fix = raw_fix::Raw::connect(app.fix_addr().expect("FIX is on"), "CLIENT1");
    fix.logon(&[(553, "demo"), (554, "demo")]);
    let (status, records) = act(admin, "/admin/kill/session/CLIENT1");
    assert_eq!(status, 200);
    er(&mut buyer, "b4", ExecType::Canceled);
    let actions: Vec<&str> = records.iter().filter_map(|r| r["action"].as_str()).collect();
    assert_eq!(actions, ["kill_session", "mass_cancel"]);
    let new = [
        (11, "f1"),
        (1, "1"),
        (55, "DEMO"),
        (54, "1"),
        (60, "20261206-10:00:00"),
        (38, "3"),
        (40, "2"),
        (44, "9"),
        (59, "1"),
    ];
    fix.send("D", &new);
    let report = fix_report(&mut fix, "f1");
    assert_eq!((report.get(39), report.get(58)), (Some("8"), Some("27: kill switch engaged")), "{report:?}");
    buyer.send(&order("b5", 1, Side::Buy, 9.0, 1)).unwrap();
    er(&mut buyer, "b5", ExecType::New);
    assert_eq!(act(admin, "/admin/kill/session/NOBODY").0, 409, "an unknown session is refused, nothing sequenced");
    assert_eq!(act(admin, "/admin/release/session/CLIENT1").0, 200);
    fix.send(
        "D",
        &[
            (11, "f2"),
            (1, "1"),
            (55, "DEMO"),
            (54, "1"),
            (60, "20261206-10:00:00"),
            (38, "3"),
            (40, "2"),
            (44, "9"),
            (59, "1"),
        ],
    );
    assert_eq!(fix_report(&mut fix, "f2").get(39), Some("0"), "released: the FIX session's orders are taken again");

    // Mass cancel by instrument: every order in it, whoever owns it.
    let (status, records) = act(admin, "/admin/mass-cancel?instrument=1");
    assert_eq!(status, 200);
    assert_eq!(records[0]["after"]["live_orders"].as_u64(), Some(0));
    // Best first: s1 (11.0) before s2 (12.0).
    er(&mut seller, "s1", ExecType::Canceled);
    er(&mut seller, "s2", ExecType::Canceled);
    assert_eq!(http(admin, "POST", "/admin/mass-cancel", Some(ADMIN_TOKEN)).status, 400, "a scope is required");
    drop(app);
}

#[test]
fn the_audit_trail_survives_restarts_and_an_edited_record_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let (app, admin) = start(config(dir.path()));
    let mut seller = Client::login(app.local_addr(), 2, "demo2", "demo2").unwrap();
    seller.send(&order("s1", 2, Side::Sell, 11.0, 5)).unwrap();
    er(&mut seller, "s1", ExecType::New);
    for path in [
        "/admin/instruments/1/halt",
        "/admin/instruments/1/resume",
        "/admin/kill/account/2",
        "/admin/kill/session/demo",
    ] {
        assert_eq!(act(admin, path).0, 200, "{path}");
    }
    er(&mut seller, "s1", ExecType::Canceled);
    let before = audit(admin, "");
    assert_eq!(before.len(), 5, "halt, resume, kill account, kill session, its account's mass cancel");
    drop(seller);
    app.shutdown().expect("clean stop");
    let file = dir.path().join(gateway::audit::FILE_NAME);
    let bytes = std::fs::read(&file).unwrap();

    // A restart replays the same trail, and the kill switches hold.
    let (app, admin) = start(config(dir.path()));
    assert_eq!(audit(admin, ""), before);
    let mut seller = Client::login(app.local_addr(), 2, "demo2", "demo2").unwrap();
    seller.send(&order("s2", 2, Side::Sell, 11.0, 5)).unwrap();
    assert_eq!(er(&mut seller, "s2", ExecType::Rejected).reject_code.get(), KILL_SWITCH);
    let mut buyer = Client::login(app.local_addr(), 1, "demo", "demo").unwrap();
    buyer.send(&order("b1", 1, Side::Buy, 9.0, 1)).unwrap();
    assert_eq!(er(&mut buyer, "b1", ExecType::Rejected).reject_code.get(), KILL_SWITCH, "session demo stays killed");
    drop((seller, buyer));
    app.shutdown().expect("clean stop");

    // Without the file, the journal alone gives the same bytes.
    std::fs::remove_file(&file).unwrap();
    let (app, _) = start(config(dir.path()));
    app.shutdown().expect("clean stop");
    assert_eq!(std::fs::read(&file).unwrap(), bytes, "the audit log is a function of the journal");

    // An edited record: the chain check names its line and the appliance does not start.
    let text = String::from_utf8(bytes).unwrap();
    std::fs::write(&file, text.replacen("\"by\":\"sre\"", "\"by\":\"eve\"", 1)).unwrap();
    let err = gateway::pipeline::start(config(dir.path()).validate().unwrap()).err().expect("the start is refused");
    let why = err.to_string();
    assert!(why.contains("line 1") && why.contains("hash does not match"), "{why}");
    let cli = gateway::audit::read_verified(&file).unwrap_err().to_string();
    assert_eq!(cli, why.trim_start_matches("audit log: "), "`sable admin audit --file` reports the same");
}

#[test]
fn sable_admin_takes_each_action_to_the_admin_port() {
    use gateway::admin::cli::{AdminAction, AdminArgs, AuditArgs, SwitchKind, run};
    let dir = tempfile::tempdir().unwrap();
    let (app, admin) = start(config(dir.path()));
    let token_file = dir.path().join("admin.token");
    std::fs::write(&token_file, format!("{ADMIN_TOKEN}\n")).unwrap();
    let args = |action| AdminArgs {
        addr: Some(admin.to_string()),
        config: None,
        token_file: Some(token_file.clone()),
        action,
    };
    let actions = [
        AdminAction::Halt { instrument: 1 },
        AdminAction::Resume { instrument: 1 },
        AdminAction::Close { instrument: 1 },
        AdminAction::MassCancel { account: Some(1), instrument: Some(1), all: false },
        AdminAction::Kill { kind: SwitchKind::Account, name: "2".into() },
        AdminAction::Release { kind: SwitchKind::Account, name: "2".into() },
        AdminAction::Kill { kind: SwitchKind::Session, name: "demo2".into() },
        AdminAction::Release { kind: SwitchKind::Session, name: "demo2".into() },
    ];
    for action in actions {
        run(&args(action.clone())).unwrap_or_else(|e| panic!("{action:?}: {e}"));
    }
    let refused = run(&args(AdminAction::MassCancel { account: None, instrument: None, all: false })).unwrap_err();
    assert!(refused.contains("400"), "{refused}");
    let unknown = run(&args(AdminAction::Kill { kind: SwitchKind::Session, name: "no such".into() })).unwrap_err();
    assert!(unknown.contains("409"), "{unknown}");
    let listed: Vec<String> = audit(admin, "").iter().map(|r| r["action"].as_str().unwrap().to_owned()).collect();
    let expect = [
        "halt",
        "resume",
        "close",
        "mass_cancel",
        "kill_account",
        "release_account",
        "kill_session",
        "mass_cancel",
        "release_session",
    ];
    assert_eq!(listed, expect);
    run(&args(AdminAction::Audit(AuditArgs { action: Some("halt".into()), ..AuditArgs::default() }))).unwrap();
    let file = Some(dir.path().join(gateway::audit::FILE_NAME));
    run(&args(AdminAction::Audit(AuditArgs { file, ..AuditArgs::default() }))).expect("the file's chain verifies");
    drop(app);
}

#[test]
fn a_standby_keeps_the_same_audit_log_as_its_primary() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir.path().join("primary"));
    cfg.pipeline.durability = gateway::config::DurabilityPolicy::Replicated;
    cfg.replication.listen = "127.0.0.1:0".into();
    let (app, admin) = start(cfg);
    let mut scfg = config(&dir.path().join("standby"));
    scfg.replication.primary = app.replication_addr().expect("replication port").to_string();
    let standby = gateway::standby::start(scfg.validate().unwrap()).expect("standby starts");
    sbe_flow::wait_until("the standby attached", || standby.status().attached());
    for path in ["/admin/instruments/1/halt", "/admin/kill/account/2", "/admin/mass-cancel?all=true"] {
        assert_eq!(act(admin, path).0, 200, "{path}");
    }
    let file = |node: &str| dir.path().join(node).join(gateway::audit::FILE_NAME);
    let primary = std::fs::read(file("primary")).unwrap();
    sbe_flow::wait_until("the standby's audit log", || std::fs::read(file("standby")).is_ok_and(|b| b == primary));
    drop(standby);
    drop(app);
}

#[test]
fn reload_rotates_a_password_an_account_limit_and_instruments_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sable.toml");
    std::fs::write(&file, gateway::config::DEFAULT_TOML).unwrap();
    let (app, admin) = start(config(dir.path()));
    app.desk().set_config_path(&file);
    let mut seller = Client::login(app.local_addr(), 2, "demo2", "demo2").unwrap();
    seller.send(&order("s1", 2, Side::Sell, 11.0, 50)).unwrap();
    er(&mut seller, "s1", ExecType::New);
    assert_eq!(act(admin, "/admin/instruments/1/halt").0, 200);

    std::fs::write(&file, rotate(gateway::config::DEFAULT_TOML, "0.01")).unwrap();
    let r = http(admin, "POST", "/admin/reload", Some(ADMIN_TOKEN));
    assert_eq!(r.status, 200, "{}", r.body);
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["records"][0]["action"], "reload");
    let target = "1 session credentials changed, 1 accounts changed, 2 instruments changed";
    assert_eq!(body["records"][0]["target"], target);

    // Account 2's new limit applies; instrument 1 got its new terms but stays halted; the new
    // instrument 2 trades at once.
    let mut big = order("s2", 2, Side::Sell, 11.0, 50);
    big.security_id = 2.into();
    seller.send(&big).unwrap();
    assert_eq!(
        er(&mut seller, "s2", ExecType::Rejected).reject_code.get(),
        engine::RejectReason::AccountMaxOrderQty as u16
    );
    seller.send(&order("s3", 2, Side::Sell, 11.0, 5)).unwrap();
    let halted = er(&mut seller, "s3", ExecType::Rejected).reject_code.get();
    assert_eq!(halted, engine::RejectReason::InstrumentNotOpen as u16, "a reload keeps the halt");
    let mut new = order("s4", 2, Side::Sell, 11.0, 5);
    new.security_id = 2.into();
    seller.send(&new).unwrap();
    er(&mut seller, "s4", ExecType::New);

    // Passwords: the old one is refused, the new one taken.
    drop(seller);
    std::thread::sleep(Duration::from_millis(200));
    assert!(Client::login(app.local_addr(), 2, "demo2", "demo2").is_err(), "the old password is refused");
    Client::login(app.local_addr(), 2, "demo2", "rotated-0123").expect("the new password is taken");

    // A new tick size on an instrument is not applied while running: the reload says so.
    std::fs::write(&file, rotate(gateway::config::DEFAULT_TOML, "0.05")).unwrap();
    let r = http(admin, "POST", "/admin/reload", Some(ADMIN_TOKEN));
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        body["records"][0]["target"],
        "0 session credentials changed, 0 accounts changed, 0 instruments changed"
    );
    let later = body["later"].to_string();
    assert!(later.contains("instrument 1 (DEMO): a new tick or lot size waits for a restart"), "{later}");
    assert_eq!(audit(admin, "?by=sre&action=reload").len(), 2);
    drop(app);
}

/// The default configuration with session `demo2`'s password, account 2's largest order and
/// instrument 1's largest quantity and tick size changed, and instrument 2 (`NEWCO`) added.
fn rotate(toml: &str, tick: &str) -> String {
    let mut out = String::new();
    let mut section = String::new();
    let mut account = 0;
    for line in toml.lines() {
        if line.starts_with('[') {
            section = line.to_owned();
        }
        if section == "[[accounts]]" && line.starts_with("id = ") {
            account = line[5..].trim().parse().unwrap_or(0);
        }
        let line = match (section.as_str(), line) {
            ("[[sessions]]", "password = \"demo2\"") => "password = \"rotated-0123\"".to_owned(),
            ("[[accounts]]", l) if account == 2 && l.starts_with("max_open_orders") => {
                format!("{l}\nmax_order_qty_lots = 10")
            }
            ("[[instruments]]", l) if l.starts_with("max_qty_lots") => "max_qty_lots = 999999".to_owned(),
            ("[[instruments]]", l) if l.starts_with("tick_size") => format!("tick_size = \"{tick}\""),
            (_, l) => l.to_owned(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("\n[[instruments]]\nid = 2\nsymbol = \"NEWCO\"\ntick_size = \"0.01\"\nlot_size = \"1\"\n");
    out.push_str("min_qty_lots = 1\nmax_qty_lots = 1000\nmax_notional = \"100000000\"\nband_bps = 0\n");
    out
}
