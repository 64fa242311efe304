//! sable benchmarks and load generators.
//!
//! The `matcher` benchmark (`src/bin/matcher.rs`) runs engine-neutral workloads ([`ops`],
//! [`workloads`]) through sable and peer order books ([`engines`]) side by side; [`naive`] is the
//! baseline book and the reference every engine's trade count is checked against.
//!
//! The `durability` benchmark (`src/bin/durability.rs`) measures the journal, the snapshot
//! follower and restore ([`durability`]). Both print through [`report`] and describe the
//! machine through [`machine`].

pub mod durability;
pub mod e2e;
pub mod engines;
pub mod failover;
pub mod failover_fix;
pub mod lobster;
pub mod machine;
pub mod naive;
pub mod ops;
pub mod report;
pub mod rng;
pub mod timing;
pub mod wait;
pub mod workloads;
