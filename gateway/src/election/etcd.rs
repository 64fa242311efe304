//! The few etcd v3 calls leadership needs, over etcd's own JSON gateway (`POST /v3/...`, the
//! gRPC API's documented JSON mapping; keys and values base64): lease grant, keep-alive and
//! revoke, a range read, and one compare-and-swap transaction. Blocking, with a timeout per
//! call, on the election thread only: never on a pipeline thread.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

/// Why an etcd call failed.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// The request did not complete (connection, timeout, HTTP status).
    #[error("etcd at {endpoint}: {why}")]
    Transport {
        /// The endpoint called.
        endpoint: String,
        /// What went wrong.
        why: String,
    },
    /// The answer was not what the API promises.
    #[error("etcd answered unexpectedly: {0}")]
    Answer(String),
}

/// A key's value, the revision that last changed it and the lease it is attached to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    /// The value.
    pub value: Vec<u8>,
    /// `mod_revision`: the compare of a compare-and-swap.
    pub mod_revision: i64,
    /// The lease id the key is attached to (0: none).
    pub lease: i64,
}

/// A client of one etcd endpoint (`http://host:port`).
#[derive(Clone, Debug)]
pub struct Etcd {
    endpoint: String,
    agent: ureq::Agent,
}

impl Etcd {
    /// A client whose every call gives up after `timeout`.
    pub fn new(endpoint: &str, timeout: Duration) -> Etcd {
        let agent = ureq::AgentBuilder::new().timeout(timeout).build();
        Etcd { endpoint: endpoint.trim_end_matches('/').to_owned(), agent }
    }

    fn call(&self, path: &str, body: Value) -> Result<Value, EtcdError> {
        let url = format!("{}/v3/{path}", self.endpoint);
        let transport = |why: String| EtcdError::Transport { endpoint: self.endpoint.clone(), why };
        let answer = self.agent.post(&url).send_json(body).map_err(|e| transport(e.to_string()))?;
        answer.into_json::<Value>().map_err(|e| transport(format!("reading the answer: {e}")))
    }

    /// Grants a lease of `ttl_s` seconds; its id.
    pub fn grant(&self, ttl_s: u64) -> Result<i64, EtcdError> {
        let answer = self.call("lease/grant", json!({ "TTL": ttl_s }))?;
        int(&answer["ID"]).ok_or_else(|| EtcdError::Answer(format!("lease grant: {answer}")))
    }

    /// Refreshes lease `id`; its remaining TTL in seconds (0: it has expired).
    pub fn keep_alive(&self, id: i64) -> Result<i64, EtcdError> {
        let answer = self.call("lease/keepalive", json!({ "ID": id.to_string() }))?;
        Ok(int(&answer["result"]["TTL"]).unwrap_or(0))
    }

    /// Revokes lease `id` (its keys go at once).
    pub fn revoke(&self, id: i64) -> Result<(), EtcdError> {
        self.call("lease/revoke", json!({ "ID": id.to_string() })).map(|_| ())
    }

    /// The value of `key`, if it exists.
    pub fn get(&self, key: &str) -> Result<Option<Versioned>, EtcdError> {
        let answer = self.call("kv/range", json!({ "key": B64.encode(key) }))?;
        let Some(kv) = answer["kvs"].get(0) else { return Ok(None) };
        let value = kv["value"].as_str().map_or(Ok(Vec::new()), |v| B64.decode(v));
        let value = value.map_err(|e| EtcdError::Answer(format!("value of {key}: {e}")))?;
        let mod_revision = int(&kv["mod_revision"]).ok_or_else(|| EtcdError::Answer(format!("range: {kv}")))?;
        Ok(Some(Versioned { value, mod_revision, lease: int(&kv["lease"]).unwrap_or(0) }))
    }

    /// One transaction: if `absent` does not exist and `cas` still has `cas_revision` (0: does
    /// not exist either), put `absent` = `absent_value` under `lease` and `cas` = `cas_value`.
    /// True if it applied.
    pub fn create_and_swap(
        &self,
        (absent, absent_value, lease): (&str, &[u8], i64),
        (cas, cas_value, cas_revision): (&str, &[u8], i64),
    ) -> Result<bool, EtcdError> {
        let cas_compare = if cas_revision == 0 {
            json!({ "target": "CREATE", "key": B64.encode(cas), "create_revision": "0" })
        } else {
            json!({ "target": "MOD", "key": B64.encode(cas), "mod_revision": cas_revision.to_string() })
        };
        let body = json!({
            "compare": [
                { "target": "CREATE", "key": B64.encode(absent), "create_revision": "0" },
                cas_compare,
            ],
            "success": [
                { "request_put": { "key": B64.encode(absent), "value": B64.encode(absent_value), "lease": lease.to_string() } },
                { "request_put": { "key": B64.encode(cas), "value": B64.encode(cas_value) } },
            ],
        });
        let answer = self.call("kv/txn", body)?;
        if let Some(err) = answer.get("error") {
            return Err(EtcdError::Answer(format!("txn: {err}")));
        }
        Ok(answer["succeeded"].as_bool().unwrap_or(false))
    }
}

/// etcd's JSON mapping writes 64-bit integers as strings.
fn int(v: &Value) -> Option<i64> {
    v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_i64())
}
