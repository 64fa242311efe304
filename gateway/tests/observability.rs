//! The admin port end to end, on a real appliance: every metric the issue names appears and
//! moves under a scripted flow (orders, a fill, rejects, throttled messages, a disconnect);
//! recording switched off while the appliance runs stands still and moves again when switched
//! on; tokens and scopes are enforced; health says why it is not ready; `promtool` accepts the
//! exposition and the shipped alert rules.

mod obs_support;
#[path = "support/sbe_flow.rs"]
mod sbe_flow;

use std::collections::BTreeMap;
use std::time::Duration;

use gateway::client::Client;
use gateway::config::DurabilityPolicy;
use gateway::sbe::codec::Outbound;
use gateway::sbe::messages::{ExecType, Side};
use obs_support::{ADMIN_TOKEN, READ_TOKEN, config, http, repo_root, run_tool, scrape, scrape_until, start};
use sbe_flow::{er, order, wait_for};

fn get(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    *m.get(series).unwrap_or_else(|| panic!("{series} is missing from /metrics"))
}

/// Sum of every series of metric `name` (all label sets; for histograms, `name_count` etc.).
fn total(m: &BTreeMap<String, f64>, name: &str) -> f64 {
    m.iter().filter(|(k, _)| k.split('{').next() == Some(name)).map(|(_, v)| v).sum()
}

const STAGES: [&str; 4] = ["sequenced", "matched", "durable", "sent"];

fn stage_count(m: &BTreeMap<String, f64>, stage: &str) -> f64 {
    get(m, &format!("sable_stage_latency_seconds_count{{stage=\"{stage}\"}}"))
}

/// An order, a fill, three rejects (engine, account, fields), throttled messages, a
/// disconnect and a failed logon; returns the two clients that stay logged on.
fn scripted_flow(sbe: std::net::SocketAddr) -> (Client, Client) {
    let mut buyer = Client::login(sbe, 1, "demo", "demo").unwrap();
    let mut seller = Client::login(sbe, 2, "demo2", "demo2").unwrap();
    buyer.send(&order("b1", 1, Side::Buy, 10.0, 5)).unwrap();
    er(&mut buyer, "b1", ExecType::New);
    seller.send(&order("s1", 2, Side::Sell, 10.0, 2)).unwrap();
    er(&mut seller, "s1", ExecType::Trade);
    // Engine reject: the client order id of a live order again.
    buyer.send(&order("b1", 1, Side::Buy, 9.0, 1)).unwrap();
    er(&mut buyer, "b1", ExecType::Rejected);
    // Refused by the gateway: an account the session may not act on; an unknown instrument.
    buyer.send(&order("b2", 2, Side::Buy, 9.0, 1)).unwrap();
    wait_for(&mut buyer, "the not-authorised reject", |m| {
        matches!(m, Outbound::BusinessMessageReject(_)).then_some(())
    });
    let mut unknown = order("b3", 1, Side::Buy, 9.0, 1);
    unknown.security_id = 999.into();
    buyer.send(&unknown).unwrap();
    er(&mut buyer, "b3", ExecType::Rejected);
    // Throttled: three orders back to back on a session allowed one a second.
    let mut slow = Client::login(sbe, 3, "slow", "slow").unwrap();
    for i in 0..3 {
        slow.send(&order(&format!("t{i}"), 1, Side::Buy, 8.0, 1)).unwrap();
    }
    wait_for(&mut slow, "the throttle's reject", |m| matches!(m, Outbound::BusinessMessageReject(_)).then_some(()));
    drop(slow); // a disconnect, without Terminate
    // A logon with a wrong password.
    assert!(Client::login(sbe, 1, "demo", "not-the-password").is_err(), "a wrong password is refused");
    (buyer, seller)
}

#[test]
fn every_metric_appears_and_moves_under_a_scripted_flow() {
    let dir = tempfile::tempdir().unwrap();
    let (app, admin) = start(config(dir.path()));
    let (_, before) = scrape(admin);
    let _clients = scripted_flow(app.local_addr());
    let after = scrape_until(admin, "the flow's counters and the session gauges", |m| {
        get(m, "sable_throttled_messages_total{protocol=\"sbe\"}") >= 1.0
            && get(m, "sable_sessions_logged_on{protocol=\"sbe\"}") == 2.0
            && get(m, "sable_rejects_total{reason=\"not_authorised\"}") >= 1.0
            && get(m, "sable_logon_failures_total{protocol=\"sbe\"}") >= 1.0
            && get(m, "sable_connections{protocol=\"sbe\"}") == 2.0
    });
    let moved = |series: &str, by: f64| {
        let (b, a) = (get(&before, series), get(&after, series));
        assert!(a - b >= by, "{series}: {b} → {a}, expected to move by at least {by}");
    };
    // b1, s1, the duplicate b1 and t0: the refused ones are counted as rejects and throttled.
    moved("sable_requests_received_total{protocol=\"sbe\",type=\"new_order\"}", 4.0);
    moved("sable_execution_reports_sent_total{protocol=\"sbe\"}", 4.0);
    moved("sable_trades_total", 1.0);
    moved("sable_rejects_total{reason=\"duplicate_cl_ord_id\"}", 1.0);
    moved("sable_rejects_total{reason=\"not_authorised\"}", 1.0);
    moved("sable_rejects_total{reason=\"gateway\"}", 1.0);
    moved("sable_throttled_messages_total{protocol=\"sbe\"}", 1.0);
    moved("sable_logon_failures_total{protocol=\"sbe\"}", 1.0);
    moved("sable_connections_accepted_total{protocol=\"sbe\"}", 3.0);
    assert_eq!(get(&after, "sable_connections{protocol=\"sbe\"}"), 2.0, "the throttled client disconnected");
    moved("sable_journal_appended_bytes_total", 100.0);
    moved("sable_journal_records_total", 5.0);
    moved("sable_journal_commits_total", 1.0);
    moved("sable_journal_commit_duration_seconds_count", 1.0);
    moved("sable_sequence_number{stage=\"sequenced\"}", 5.0);
    moved("sable_sequence_number{stage=\"published\"}", 5.0);
    moved("sable_order_ack_latency_seconds_count", 4.0);
    for stage in STAGES {
        assert!(stage_count(&after, stage) > stage_count(&before, stage), "stage {stage} recorded nothing");
    }
    let info = "sable_build_info{version=\"".to_string() + env!("CARGO_PKG_VERSION") + "\",role=\"primary\"}";
    assert_eq!(get(&after, &info), 1.0);
    for gauge in [
        "sable_epoch",
        "sable_ready",
        "sable_input_ring_used_slots",
        "sable_input_ring_capacity_slots",
        "sable_output_ring_pending_commands",
        "sable_snapshots_written_total",
        "sable_replication_enabled",
        "sable_standby_attached",
        "sable_replication_lag_records",
        "sable_journal_failures_total",
    ] {
        get(&after, gauge);
    }
    assert_eq!(get(&after, "sable_feed_enabled"), 1.0, "the feed runs (obs_support turns it on)");
    moved("sable_feed_sequence_number", 1.0);
    moved("sable_feed_input_sequence_number", 1.0);
    assert_eq!(get(&after, "sable_input_ring_capacity_slots"), 1024.0);
    assert_eq!(get(&after, "sable_ready"), 1.0);
    // The ack histogram's buckets are cumulative and end at the count.
    let ack_inf = get(&after, "sable_order_ack_latency_seconds_bucket{le=\"+Inf\"}");
    assert_eq!(ack_inf, get(&after, "sable_order_ack_latency_seconds_count"));
    assert!(total(&after, "sable_order_ack_latency_seconds_bucket") > ack_inf, "finer buckets hold values too");
    drop(app);
}

/// The per-order series the stages record (each moves by one per acknowledged new order).
const PER_ORDER: [&str; 4] = [
    "sable_requests_received_total{protocol=\"sbe\",type=\"new_order\"}",
    "sable_execution_reports_sent_total{protocol=\"sbe\"}",
    "sable_journal_records_total",
    "sable_order_ack_latency_seconds_count",
];

#[test]
fn recording_switched_off_while_running_stands_still_and_moves_again_when_switched_on() {
    let dir = tempfile::tempdir().unwrap();
    let (app, admin) = start(config(dir.path()));
    let mut buyer = Client::login(app.local_addr(), 1, "demo", "demo").unwrap();
    let switch = app.metrics_switch();
    switch.set(false);
    let (_, before) = scrape(admin);
    buyer.send(&order("b1", 1, Side::Buy, 10.0, 5)).unwrap();
    er(&mut buyer, "b1", ExecType::New);
    let _seller = Client::login(app.local_addr(), 2, "demo2", "demo2").unwrap();
    // The report reached the client, so every stage is done with the order.
    let (_, off) = scrape(admin);
    for series in PER_ORDER {
        assert_eq!(get(&off, series), get(&before, series), "{series} moved while recording was off");
    }
    assert_eq!(get(&off, "sable_connections{protocol=\"sbe\"}"), 2.0, "connections are counted either way");
    switch.set(true);
    buyer.send(&order("b2", 1, Side::Buy, 10.0, 5)).unwrap();
    er(&mut buyer, "b2", ExecType::New);
    let on = scrape_until(admin, "the second order's series", |m| {
        PER_ORDER.iter().all(|series| get(m, series) > get(&off, series))
    });
    // Ticks are journaled too, and account 1's reports go to every session that may act on it
    // (the throttled session 3 too), so only these two count exactly one per order.
    for series in [PER_ORDER[0], PER_ORDER[3]] {
        assert_eq!(get(&on, series), get(&off, series) + 1.0, "{series}: one order while on");
    }
    drop(app);
}

#[test]
fn tokens_and_scopes_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let (app, admin) = start(config(dir.path()));
    for path in ["/metrics", "/health/ready", "/health/live", "/dashboard/data"] {
        assert_eq!(http(admin, "GET", path, None).status, 401, "{path} without a token");
        assert_eq!(http(admin, "GET", path, Some("wrong-token-0123456789")).status, 401, "{path}, wrong token");
        assert_eq!(http(admin, "GET", path, Some(READ_TOKEN)).status, 200, "{path} with the read token");
    }
    assert_eq!(http(admin, "POST", "/admin/snapshot", None).status, 401);
    assert_eq!(http(admin, "POST", "/admin/snapshot", Some(READ_TOKEN)).status, 403, "an action needs admin scope");
    let (_, before) = scrape(admin);
    assert_eq!(http(admin, "POST", "/admin/snapshot", Some(ADMIN_TOKEN)).status, 202);
    let written = get(&before, "sable_snapshots_written_total");
    scrape_until(admin, "the snapshot asked for", |m| get(m, "sable_snapshots_written_total") > written);
    // The dashboard page itself holds no data and needs no token.
    let page = http(admin, "GET", "/dashboard", None);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("/dashboard/data") && !page.body.contains("http://") && !page.body.contains("https://"));
    drop(app);
}

#[test]
fn health_says_why_it_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.pipeline.durability = DurabilityPolicy::Replicated;
    cfg.replication.listen = "127.0.0.1:0".into();
    let (app, admin) = start(cfg);
    let r = http(admin, "GET", "/health/ready", Some(READ_TOKEN));
    assert_eq!(r.status, 503, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["ready"], false);
    assert_eq!((v["role"].as_str(), v["epoch"].as_u64()), (Some("primary"), Some(0)));
    let reasons = v["reasons"].to_string();
    assert!(reasons.contains("no standby attached"), "{reasons}");
    assert_eq!(http(admin, "GET", "/health/live", Some(READ_TOKEN)).status, 200);
    let (_, m) = scrape(admin);
    assert_eq!((get(&m, "sable_ready"), get(&m, "sable_replication_enabled")), (0.0, 1.0));
    drop(app);

    let dir = tempfile::tempdir().unwrap();
    let (app, admin) = start(config(dir.path()));
    let r = http(admin, "GET", "/health/ready", Some(READ_TOKEN));
    assert_eq!(r.status, 200, "{}", r.body);
    drop(app);
}

#[test]
fn a_standby_reports_its_role_and_the_primary_becomes_ready_once_it_attaches() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir.path().join("primary"));
    cfg.pipeline.durability = DurabilityPolicy::Replicated;
    cfg.replication.listen = "127.0.0.1:0".into();
    let (app, primary_admin) = start(cfg);
    let mut scfg = config(&dir.path().join("standby"));
    scfg.replication.primary = app.replication_addr().expect("replication port").to_string();
    let scfg = scfg.validate().unwrap();
    let standby = gateway::standby::start(scfg.clone()).expect("standby starts");
    let promote = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let admin = gateway::admin::standby::StandbyAdmin::start(&scfg, standby.status_handle(), promote.clone())
        .unwrap()
        .expect("tokens");
    let standby_admin = admin.local_addr();
    let ready = |addr, role: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let r = http(addr, "GET", "/health/ready", Some(READ_TOKEN));
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(v["role"], role);
            if r.status == 200 {
                return v;
            }
            assert!(std::time::Instant::now() < deadline, "{role} not ready: {}", r.body);
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert_eq!(ready(primary_admin, "primary")["standby_attached"], true);
    assert_eq!(ready(standby_admin, "standby")["standby_attached"], true);
    let (_, m) = scrape(standby_admin);
    let info = "sable_build_info{version=\"".to_string() + env!("CARGO_PKG_VERSION") + "\",role=\"standby\"}";
    assert_eq!((get(&m, &info), get(&m, "sable_standby_attached")), (1.0, 1.0));
    // Market actions go to the primary; promotion to a standby (the flag SIGUSR1 raises).
    assert_eq!(http(standby_admin, "POST", "/admin/instruments/1/halt", Some(ADMIN_TOKEN)).status, 409);
    assert_eq!(http(primary_admin, "POST", "/admin/promote", Some(ADMIN_TOKEN)).status, 409);
    assert_eq!(http(standby_admin, "POST", "/admin/promote", Some(READ_TOKEN)).status, 403);
    assert!(!promote.load(std::sync::atomic::Ordering::Acquire));
    assert_eq!(http(standby_admin, "POST", "/admin/promote", Some(ADMIN_TOKEN)).status, 202);
    assert!(promote.load(std::sync::atomic::Ordering::Acquire), "POST /admin/promote raises the promotion flag");
    admin.stop();
    drop(standby);
    drop(app);
}

#[test]
fn promtool_accepts_the_exposition_and_the_shipped_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (app, admin) = start(config(dir.path()));
    let _clients = scripted_flow(app.local_addr());
    std::thread::sleep(Duration::from_millis(200));
    let (text, _) = scrape(admin);
    run_tool(std::process::Command::new("promtool").args(["check", "metrics"]), Some(&text));
    let docs = repo_root().join("docs/observability");
    run_tool(std::process::Command::new("promtool").arg("check").arg("rules").arg(docs.join("alerts.yml")), None);
    // --syntax-only: the token file the scrape names exists only on a real Prometheus host.
    let config = docs.join("prometheus.yml");
    run_tool(std::process::Command::new("promtool").args(["check", "config", "--syntax-only"]).arg(config), None);
    let grafana: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(docs.join("grafana-dashboard.json")).unwrap()).unwrap();
    // Every metric the Grafana panels and the alert rules query is one sable exports.
    let exported: Vec<&str> =
        text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()).collect();
    let rules = std::fs::read_to_string(docs.join("alerts.yml")).unwrap();
    for expr in grafana["panels"].as_array().unwrap().iter().flat_map(|p| p["targets"].as_array().unwrap()) {
        check_names(expr["expr"].as_str().unwrap(), &exported);
    }
    check_names(&rules, &exported);
    drop(app);
}

/// Every `sable_…` name in `text` is an exported family (histogram series by their family).
fn check_names(text: &str, exported: &[&str]) {
    for (i, _) in text.match_indices("sable_") {
        let name: String = text[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let family = ["_bucket", "_count", "_sum"].iter().fold(name.as_str(), |n, s| n.strip_suffix(s).unwrap_or(n));
        assert!(exported.contains(&family) || exported.contains(&name.as_str()), "{name} is not exported");
    }
}
