//! The admin port: HTTP on localhost (by default) for SREs and their tools, served by axum on a
//! current-thread tokio runtime in a thread of its own (`sable-admin`), never on a pipeline
//! thread. Every data route needs a bearer token ([`auth`]); `admin` scope for actions.
//!
//! - `server.rs`: the listener, the runtime, the routing with scope checks ([`Routes`]).
//! - `auth.rs`: tokens, scopes, constant-time comparison.
//! - `recorder.rs` + `histogram.rs`: what the pipeline threads record (single-writer atomics).
//! - `metrics.rs`: `/metrics` in the Prometheus text format.
//! - `health.rs`: `/health/live`, `/health/ready`.
//! - `history.rs`: the per-second samples the dashboard plots (kept by the admin thread).
//! - `dashboard.rs` + `dashboard.html`: the live latency dashboard (`/dashboard`).
//! - `actions.rs`: admin-scope actions (POST routes); add new ones there.
//! - `desk.rs`: the queue that takes market actions to the gateway thread to be sequenced.
//! - `role.rs`: role and fencing epoch.
//! - `standby.rs`: the admin port of `sable standby` (role `standby`).
//! - `config.rs`: `[admin]`.

pub mod actions;
pub mod auth;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod desk;
pub mod health;
pub mod histogram;
pub mod history;
pub mod metrics;
pub mod recorder;
pub mod role;
pub mod server;
pub mod standby;

pub use server::{AdminContext, AdminServer, Routes};

use std::time::Duration;

/// Slots of the order → ack stamp table (`recorder::StampTable`): a command still in flight
/// when this many later ones were sequenced loses its order → ack sample (never a wrong one).
/// 16 Ki slots of 32 bytes: 512 KiB.
pub const STAMP_SLOTS: usize = 1 << 14;

/// How often the gateway thread takes the session gauges (logged on, throttled, refused): they
/// walk every session, so not per message.
pub const GAUGE_PERIOD_NS: u64 = 1_000_000_000;

/// Shortest token secret accepted: 16 bytes (128 bits if random).
pub const MIN_TOKEN_LEN_BYTES: usize = 16;

/// Most tokens configured at once (each request compares against all of them).
pub const MAX_TOKENS: usize = 64;

/// Seconds of per-second samples the dashboard can show (5 minutes).
pub const HISTORY_SECONDS: usize = 300;

/// How often the admin thread samples the recorders for the dashboard.
pub const SAMPLE_PERIOD: Duration = Duration::from_secs(1);

/// Order → ack p99 above which the dashboard shows an alert (also the shipped alert rule's).
pub const ALERT_ACK_P99_NS: u64 = 10_000_000;

/// Standby lag (records written here, not yet written there) above which the dashboard alerts.
pub const ALERT_STANDBY_LAG_RECORDS: u64 = 10_000;

/// How long an admin action waits for the gateway thread to sequence it, and then for its
/// audit records (durable and applied).
pub const DESK_TIMEOUT: Duration = Duration::from_secs(5);
