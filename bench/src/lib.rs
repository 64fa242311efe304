//! sable benchmarks and load generators.
//!
//! The `matcher` benchmark (`src/bin/matcher.rs`) runs engine-neutral workloads ([`ops`],
//! [`workloads`]) through sable and peer order books ([`engines`]) side by side; [`naive`] is the
//! baseline book and the reference every engine's trade count is checked against.

pub mod engines;
pub mod lobster;
pub mod naive;
pub mod ops;
pub mod rng;
pub mod timing;
pub mod workloads;
