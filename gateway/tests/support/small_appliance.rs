//! The configuration the in-process appliance tests start from: the embedded default on
//! 127.0.0.1:0 (both listeners), a scratch data dir, `written` durability, the default
//! `backoff` wait strategy (nothing busy-spins in tests), and small rings and capacities.
//! Include with `#[path = "support/small_appliance.rs"] mod small_appliance;`.

use gateway::config::{Config, DurabilityPolicy, WaitKind};

/// The test configuration for data dir `dir`.
pub fn config(dir: &std::path::Path) -> Config {
    let mut c = Config::default_config();
    c.server.listen = "127.0.0.1:0".into();
    c.fix.listen = "127.0.0.1:0".into();
    c.server.data_dir = dir.to_path_buf();
    c.pipeline.durability = DurabilityPolicy::Written;
    c.pipeline.wait_strategy = WaitKind::Backoff;
    c.pipeline.input_ring_slots = 1024;
    c.pipeline.output_ring_slots = 4096;
    c.engine.max_orders = 4096;
    c.engine.max_levels = 1024;
    c.engine.max_levels_per_side = 256;
    c.journal.segment_len_bytes = 1 << 20;
    c
}
