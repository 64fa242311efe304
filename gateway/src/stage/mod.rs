//! The gateway's pipeline stages, one job per file. Each is wired in
//! [`crate::pipeline::start`]; they share ring types from [`crate::rings`] and never import
//! each other's internals (the receiver drives the sequencer and the publisher through their
//! public methods).

pub(crate) mod feed;
pub(crate) mod feed_snapshot;
pub(crate) mod journaler;
pub(crate) mod matcher;
pub(crate) mod publisher;
pub(crate) mod receiver;
pub(crate) mod replicator;
pub(crate) mod sequencer;
