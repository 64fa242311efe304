//! Helpers of the observability tests: an appliance with the admin port on, a tiny HTTP/1.1
//! client (std sockets; the admin port speaks plain HTTP/1.1), and a parser of the Prometheus
//! text format good enough to read sample values back.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use gateway::admin::auth::{Scope, Token};
use gateway::config::{Config, SessionConfig, ThrottlePolicy};
use gateway::pipeline::Appliance;

#[path = "../support/small_appliance.rs"]
mod small_appliance;

/// The read-scope token of the test configuration.
pub const READ_TOKEN: &str = "read-token-0123456789";
/// The admin-scope token.
pub const ADMIN_TOKEN: &str = "admin-token-0123456789";

/// The test configuration with the admin port on 127.0.0.1:0, a read and an admin token, and
/// a third SBE session (id 3, account 1) throttled to 1 message/s with a burst of 1.
pub fn config(dir: &std::path::Path) -> Config {
    let mut c = small_appliance::config(dir);
    c.admin.listen = "127.0.0.1:0".into();
    c.feed.enabled = true;
    c.admin.tokens = vec![
        Token { name: "prometheus".into(), token: READ_TOKEN.into(), scope: Scope::Read },
        Token { name: "sre".into(), token: ADMIN_TOKEN.into(), scope: Scope::Admin },
    ];
    c.sessions.push(SessionConfig {
        session_id: 3,
        username: "slow".into(),
        password: "slow".into(),
        accounts: vec![1],
        throttle_per_s: 1,
        throttle_burst: 1,
        throttle_policy: ThrottlePolicy::Reject,
    });
    c
}

/// Starts an appliance on `cfg`.
pub fn start(cfg: Config) -> (Appliance, SocketAddr) {
    let app = gateway::pipeline::start(cfg.validate().expect("valid configuration")).expect("appliance starts");
    let admin = app.admin_addr().expect("the admin port runs with tokens configured");
    (app, admin)
}

/// An HTTP response.
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body.
    pub body: String,
}

/// One request (`Connection: close`), bounded by 10 s.
pub fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> Response {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to the admin port");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the response");
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete HTTP response");
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status code");
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    Response { status, body: if chunked { dechunk(body) } else { body.to_string() } }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

/// `GET /metrics` with the read token, as `series → value` (`name{labels}` exactly as written).
pub fn scrape(addr: SocketAddr) -> (String, BTreeMap<String, f64>) {
    let r = http(addr, "GET", "/metrics", Some(READ_TOKEN));
    assert_eq!(r.status, 200, "{}", r.body);
    let series = r
        .body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k.to_string(), v.parse::<f64>().expect("a numeric sample")))
        .collect();
    (r.body, series)
}

/// Scrapes until `ok` holds for the samples, up to 20 s (gauges move on 1 s timers).
pub fn scrape_until(
    addr: SocketAddr,
    what: &str,
    ok: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, m) = scrape(addr);
        if ok(&m) {
            return m;
        }
        if Instant::now() > deadline {
            let interesting: Vec<_> = m.iter().filter(|(k, _)| !k.contains("_bucket")).collect();
            panic!("timed out waiting for {what}: {interesting:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Where test artifacts go: `<target>/test-artifacts/`.
pub fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("create the artifacts dir");
    dir
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs a tool, failing the test with its output (and how to install it) when it fails.
pub fn run_tool(cmd: &mut std::process::Command, stdin: Option<&str>) -> String {
    use std::process::Stdio;
    let name = format!("{:?}", cmd.get_program());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: {e} (install it with gateway/scripts/install-obs-test-deps.sh)"));
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{name} failed:\n{text}");
    text
}
