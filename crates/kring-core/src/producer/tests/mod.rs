//! Sim tests of the core: each file covers one concern.

mod accumulate;
mod basic;
mod fenced;
mod growth;
mod idempotence;
mod ledger;
mod lifecycle;
mod metadata;
mod offload;
mod protocol;
mod purge;
mod purge_on_wire;
mod readiness;
mod sasl;
mod sender;
mod split;
mod statistics;
mod status;

use std::time::Duration;

use crate::config::Config;
use crate::sim::{Sim, SimCluster};

/// A config for sims: idempotent defaults, fixed jitter seed.
pub(super) fn cfg() -> Config {
    Config {
        jitter_seed: 42,
        ..Config::default()
    }
}

/// A sim with `nodes` brokers and topic `t` with `partitions` partitions.
pub(super) fn sim_with(config: Config, nodes: i32, partitions: u32) -> Sim {
    let mut cluster = SimCluster::new(nodes);
    cluster.create_topic("t", partitions);
    Sim::new(config, cluster, kring_testclock::origin())
}

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
