//! # sable-gateway: the network edge
//!
//! Codecs are pure functions over byte slices (fuzzable without a network); sessions own
//! sockets. This crate will also wire the pipeline and hold the `sable` binary.
//!
//! - [`sbe`]: the binary order-entry protocol (SBE 1.0 over the Simple Open Framing Header),
//!   mirroring `gateway/schema/sable-sbe.xml`.

pub mod sbe;
