//! # sable-gateway: the network edge and the process
//!
//! Codecs are pure functions over byte slices (fuzzable without a network); sessions are
//! sans-IO state machines behind one contract ([`session`]); only the receiver touches sockets.
//!
//! - [`pipeline`]: the appliance wired in one function ([`pipeline::start`]), stage by stage
//!   (`stage/`: receiver, sequencer, journaler, matcher, publisher), sharing the ring types of
//!   `rings.rs`.
//! - `session/`: the session contract every protocol follows, and the rules they share
//!   (throttle, accounts, cancel-on-disconnect).
//! - [`sbe`]: the binary order-entry protocol (SBE 1.0 over the Simple Open Framing Header),
//!   mirroring `gateway/schema/sable-sbe.xml`, its FIXP-style session ([`sbe::session`]) and
//!   its sessions behind the contract (`sbe/sessions.rs`).
//! - [`fix`]: FIX 4.4: framing, parsing, the data dictionary, the session layer, and its
//!   sessions behind the contract (`fix/sessions.rs`).
//! - [`store`]: the per-session persistent store (sequence numbers, sent messages).
//! - [`config`]: the TOML configuration with its embedded default.
//! - [`wait`]: the configurable wait strategy of idle pipeline threads.
//! - [`throttle`]: the per-session message throttle (GCRA).
//! - [`client`]: a small blocking SBE client (`sable client`, tests).
//! - [`admin`]: the admin port (health, `/metrics`, dashboard, admin actions) and the
//!   recorders the pipeline threads write.
//! - [`logging`]: log lines as text or JSON (`[log] format`).
//! - [`feed`]: the market-data feed: ITCH 5.0 over MoldUDP64 multicast, re-requests, the
//!   subscriber side.
//! - [`service`]: running under systemd (`Type=notify`): readiness, stopping, and a watchdog
//!   that pings only while the pipeline makes progress.

pub mod admin;
pub mod audit;
pub mod client;
pub mod config;
mod edge;
pub mod election;
#[cfg(debug_assertions)]
mod fault;
pub mod feed;
pub mod fix;
pub mod harness;
mod limits;
pub mod logging;
pub mod pipeline;
mod reconcile;
mod replication;
mod rings;
pub mod sbe;
pub mod service;
mod session;
/// Session credentials: hashing (`sable passwd`), checking, reloading.
pub use session::credentials;
mod stage;
pub mod standby;
pub mod store;
pub(crate) mod throttle;
pub mod tls;
pub(crate) mod wait;

pub use replication::fence::NodeState;
