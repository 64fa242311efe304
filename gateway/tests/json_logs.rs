//! `[log] format = "json"`: `sable run` writes its log as one JSON object per line, with the
//! event's fields (session, seq, …) as keys.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn sable_run_logs_json_lines_with_fields() {
    let dir = tempfile::tempdir().unwrap();
    let text = gateway::config::DEFAULT_TOML
        .replace("listen = \"127.0.0.1:9100\"", "listen = \"127.0.0.1:0\"")
        .replace("listen = \"127.0.0.1:9200\"", "listen = \"127.0.0.1:0\"")
        .replace("data_dir = \"./data\"", &format!("data_dir = {:?}", dir.path().join("data").display().to_string()))
        .replace("format = \"text\"", "format = \"json\"");
    assert!(text.contains("format = \"json\""), "the default configuration has a [log] format key");
    let config = dir.path().join("sable.toml");
    std::fs::write(&config, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sable"))
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start sable");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut events = Vec::new();
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if !line.starts_with('{') {
            continue; // `sable:` status lines of the binary itself, not log events
        }
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let listening = v["fields"]["message"] == "listening";
        events.push(v);
        if listening {
            break;
        }
    }
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    assert!(status.success(), "sable exits cleanly on SIGTERM: {status}");
    let store = events
        .iter()
        .find(|e| e["fields"]["message"] == "session store opened")
        .unwrap_or_else(|| panic!("no session store line in {events:?}"));
    assert!(store["fields"]["session"].is_string() && store["fields"]["next_in"].is_u64(), "{store}");
    assert!(events.iter().all(|e| e["level"].is_string() && e["timestamp"].is_string() && e["target"].is_string()));
    assert!(events.iter().any(|e| e["fields"]["message"] == "listening"), "{events:?}");
}
