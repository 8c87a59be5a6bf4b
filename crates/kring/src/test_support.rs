//! What the producer's end-to-end tests (`*_tests.rs` beside this file)
//! share: a one-broker kring-mock cluster and a builder pointed at it.

use kring_mock::MockCluster;

use crate::{Producer, ProducerBuilder};

/// Produce API key, for fault injection.
pub(crate) const PRODUCE: i16 = 0;
/// Metadata API key, for fault injection.
pub(crate) const METADATA: i16 = 3;

/// One broker with topic `t` of `partitions` partitions.
pub(crate) fn cluster(partitions: i32) -> MockCluster {
    MockCluster::builder()
        .brokers(1)
        .topic("t", partitions)
        .build()
        .expect("mock cluster")
}

/// A producer builder bootstrapped at `c`.
pub(crate) fn builder(c: &MockCluster) -> ProducerBuilder {
    Producer::builder().bootstrap(&c.bootstrap_servers())
}
