//! The live dashboard in a real browser: headless Chromium loads `/dashboard#token=…` from a
//! running appliance, the page's script polls `/dashboard/data`, and the figures it shows move
//! when load arrives. A screenshot is kept as a test artifact (path printed).

mod obs_support;
#[path = "support/sbe_flow.rs"]
mod sbe_flow;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gateway::client::Client;
use gateway::sbe::messages::{ExecType, Side};
use obs_support::{READ_TOKEN, artifacts_dir, config, run_tool, start};
use sbe_flow::{er, order};

/// How long Chromium lets the page run (virtual time: network waits pause it) before it dumps
/// the DOM or takes the screenshot.
const BUDGET_MS: &str = "4000";

fn chromium(profile: &Path, url: &str, action: &str) -> String {
    let mut cmd = Command::new("chromium");
    cmd.args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1280,1000"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--virtual-time-budget={BUDGET_MS}"))
        .arg(action)
        .arg(url);
    run_tool(&mut cmd, None)
}

/// The text of the element with `id` in a dumped DOM.
fn element_text<'a>(dom: &'a str, id: &str) -> &'a str {
    let open = format!("id=\"{id}\"");
    let at = dom.find(&open).unwrap_or_else(|| panic!("no #{id} in the page:\n{dom}"));
    let start = at + dom[at..].find('>').expect("tag ends") + 1;
    let end = start + dom[start..].find('<').expect("text ends");
    &dom[start..end]
}

/// Orders from two sessions that cross, each waited for, until `stop`.
fn load(sbe: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut buyer = Client::login(sbe, 1, "demo", "demo").unwrap();
        let mut seller = Client::login(sbe, 2, "demo2", "demo2").unwrap();
        let mut n = 0u64;
        while !stop.load(Ordering::Acquire) {
            let (b, s) = (format!("lb{n}"), format!("ls{n}"));
            buyer.send(&order(&b, 1, Side::Buy, 10.0, 1)).unwrap();
            er(&mut buyer, &b, ExecType::New);
            seller.send(&order(&s, 2, Side::Sell, 10.0, 1)).unwrap();
            er(&mut seller, &s, ExecType::Trade);
            n += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        n
    })
}

#[test]
fn the_dashboard_shows_live_figures_that_move_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let (app, admin) = start(config(dir.path()));
    let url = format!("http://{admin}/dashboard#token={READ_TOKEN}");
    std::thread::sleep(Duration::from_millis(2_500)); // two samples of an idle appliance

    let idle = chromium(&dir.path().join("profile-idle"), &url, "--dump-dom");
    assert_eq!(element_text(&idle, "requests"), "0", "an idle appliance");
    assert!(idle.contains("class=\"ok\""), "an idle, ready appliance is normal:\n{idle}");
    let idle_samples: u64 = element_text(&idle, "samples").parse().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(app.local_addr(), Arc::clone(&stop));
    std::thread::sleep(Duration::from_millis(2_500));
    let busy = chromium(&dir.path().join("profile-busy"), &url, "--dump-dom");
    let shot = artifacts_dir().join("dashboard.png");
    chromium(&dir.path().join("profile-shot"), &url, &format!("--screenshot={}", shot.display()));
    stop.store(true, Ordering::Release);
    let orders = loader.join().expect("the load thread");

    let requests: u64 = element_text(&busy, "requests").parse().unwrap();
    assert!(requests > 0, "requests/s under load ({orders} order pairs sent)");
    assert_ne!(element_text(&busy, "reports"), "0");
    let samples: u64 = element_text(&busy, "samples").parse().unwrap();
    assert!(samples > idle_samples, "the history grows: {idle_samples} → {samples}");
    assert!(busy.contains("data-stage=\"ack\""), "the per-stage table is drawn");
    assert_eq!(element_text(&busy, "role"), "primary / 0");
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real screenshot");
    println!("dashboard screenshot: {}", shot.display());
    drop(app);
}
