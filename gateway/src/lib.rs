//! # sable-gateway: the network edge and the process
//!
//! Codecs are pure functions over byte slices (fuzzable without a network); sessions are
//! sans-IO state machines; the I/O thread owns the sockets.
//!
//! - [`sbe`]: the binary order-entry protocol (SBE 1.0 over the Simple Open Framing Header),
//!   mirroring `gateway/schema/sable-sbe.xml`, and its FIXP-style session
//!   ([`sbe::session`]).
//! - [`config`]: the TOML configuration with its embedded default.
//! - [`pipeline`]: the appliance wired in one function ([`pipeline::start`]): sequencer, input
//!   ring, journaler ∥ matcher, follower, output ring, publisher.
//! - [`server`]: the gateway I/O thread (mio), which is also the sequencer and the publisher.
//! - [`wait`]: the configurable wait strategy of idle pipeline threads.
//! - [`throttle`]: the per-session message throttle (GCRA).
//! - [`client`]: a small blocking SBE client (`sable client`, tests).

pub mod client;
pub mod config;
pub mod fix;
pub mod pipeline;
pub mod sbe;
pub mod server;
pub mod store;
pub mod throttle;
pub mod wait;
