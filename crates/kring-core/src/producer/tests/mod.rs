//! Sim tests of the core: each file covers one concern.

mod accumulate;
mod async_wait;
mod basic;
mod epoch_chaos;
mod fenced;
mod growth;
mod idempotence;
mod idle_connections;
mod ledger;
mod lifecycle;
mod metadata;
mod offload;
mod partitioning;
mod produce;
mod produce_errors;
mod protocol;
mod purge;
mod purge_on_wire;
mod readiness;
mod recycle;
mod sasl;
mod sender;
mod split;
mod statistics;
mod status;
mod transactions;

use std::time::Duration;

use kring_mock::{
    Fault, FaultId, MockCluster, MockClusterBuilder, StoredRecord, UnknownProducerPolicy,
};
use kring_protocol::messages::ApiKey;
use kring_protocol::ErrorCode;

use crate::config::Config;
use crate::sim::Sim;

/// The core against kring-mock's own request dispatch.
pub(super) type MockSim = Sim<MockCluster>;

/// A config for sims: idempotent defaults, fixed jitter seed.
pub(super) fn cfg() -> Config {
    Config {
        jitter_seed: 42,
        ..Config::default()
    }
}

/// The tests' kring-mock cluster: `nodes` brokers (`mock-N:9092`), topic
/// `t` with `partitions` partitions led round-robin from broker 1, no
/// auto-creation (an unknown topic is UNKNOWN_TOPIC_OR_PARTITION), and
/// a non-zero first sequence from a producer a partition has no state for
/// refused with UNKNOWN_PRODUCER_ID, as brokers before KIP-360 did (the
/// tests that want today's acceptance say so).
pub(super) fn cluster(nodes: i32, partitions: u32) -> MockClusterBuilder {
    MockCluster::builder()
        .brokers(nodes)
        .topic("t", partitions as i32)
        .auto_create_topics(false)
        .unknown_producer_policy(UnknownProducerPolicy::Reject)
}

/// A sim with `nodes` brokers and topic `t` with `partitions` partitions,
/// against kring-mock's dispatch.
pub(super) fn sim_with(config: Config, nodes: i32, partitions: u32) -> MockSim {
    sim_on(config, cluster(nodes, partitions))
}

/// A sim against the cluster `builder` builds (unbound).
pub(super) fn sim_on(config: Config, builder: MockClusterBuilder) -> MockSim {
    let cluster = builder.build_unbound().expect("valid mock cluster");
    Sim::new(config, cluster, kring_testclock::origin())
}

/// Every record stored in partition `p` of topic `t`.
pub(super) fn log<P: TryInto<i32>>(sim: &MockSim, p: P) -> Vec<StoredRecord> {
    let p = p.try_into().ok().expect("a partition index");
    sim.cluster.records("t", p).expect("partition of t")
}

/// The next `times` Produce requests that write partition `p` of `t` fail
/// with `code` for that partition (nothing appended).
pub(super) fn fail_produce(sim: &MockSim, p: i32, code: ErrorCode, times: u32) -> FaultId {
    sim.cluster.inject(
        Fault::error(ApiKey::Produce, code)
            .on_partition("t", p)
            .times(times),
    )
}

/// The next Produce requests that write partition `p` of `t` fail with
/// `codes` in turn, one per request; later ones are applied. One counted
/// fault per code, each covering its predecessors' requests too: of the
/// faults that fire together, the earliest installed answers.
pub(super) fn fail_produce_in_turn(sim: &MockSim, p: i32, codes: &[ErrorCode]) {
    for (i, &code) in codes.iter().enumerate() {
        fail_produce(sim, p, code, i as u32 + 1);
    }
}

/// Stops broker `node`: connects are refused and requests on open
/// connections close them.
pub(super) fn stop(sim: &MockSim, node: i32) {
    sim.cluster.stop_broker(node).expect("a broker");
}

/// Starts broker `node` again.
pub(super) fn start(sim: &MockSim, node: i32) {
    sim.cluster.start_broker(node).expect("a broker");
}

/// The API keys the core sends.
const KEYS: [ApiKey; 4] = [
    ApiKey::ApiVersions,
    ApiKey::Metadata,
    ApiKey::InitProducerId,
    ApiKey::Produce,
];

/// Makes broker `node` a black hole: every request it receives from now
/// on is swallowed (neither applied nor answered); the connection stays
/// open. Undo with [`heal`].
pub(super) fn black_hole(sim: &MockSim, node: i32) -> Vec<FaultId> {
    KEYS.iter()
        .map(|&k| {
            sim.cluster
                .inject(Fault::swallow(k).on_broker(node).always())
        })
        .collect()
}

/// Removes faults (a black hole, a standing delay).
pub(super) fn heal(sim: &MockSim, faults: Vec<FaultId>) {
    for f in faults {
        sim.cluster.remove_fault(f);
    }
}

/// Delays every response of broker `node` by `d` on top of the Sim's
/// 1 ms one-way latency (a distant or slow broker). Undo with [`heal`].
pub(super) fn slow(sim: &MockSim, node: i32, d: Duration) -> Vec<FaultId> {
    KEYS.iter()
        .map(|&k| {
            sim.cluster
                .inject(Fault::delay(k, d).on_broker(node).always())
        })
        .collect()
}

/// Requests of `key` received by every broker so far.
pub(super) fn requests(sim: &MockSim, key: ApiKey) -> u64 {
    sim.cluster.request_count(key.key())
}

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One record to partition 0 of `t`, delivered: the producer knows the
/// topic's metadata (and the log of partition 0 holds one record more).
pub(super) fn learn_metadata(sim: &mut MockSim) {
    sim.send("t", Some(0), None, Some(b"metadata first"))
        .unwrap();
    sim.drive();
}

/// Appends `value_len`-byte records to `t`'s partitions `0..partitions`
/// in turn, without blocking, until `buffer.memory` is full; returns how
/// many went in.
pub(super) fn fill_memory(sim: &MockSim, partitions: u32, value_len: usize) -> u32 {
    let v = vec![7u8; value_len];
    let mut sent = 0;
    while sim
        .shared
        .try_produce_now(sim.now, record_ref((sent % partitions) as i32, &v))
        .is_ok()
    {
        sent += 1;
    }
    sent
}

/// The size of a batch of exactly eight records like `rec`: as
/// `batch.size`, a batch is full (sealed) with its eighth record.
pub(super) fn eight_records_batch(rec: &crate::RecordRef<'_>) -> usize {
    let mut b = kring_protocol::record::RecordBatchBuilder::new(rec.timestamp_ms, 4096);
    for _ in 0..8 {
        b.append(rec.timestamp_ms, rec.key, rec.value, rec.headers);
    }
    b.size_in_bytes()
}

/// A record of `t` for `partition` as the append path takes it.
pub(super) fn record_ref(partition: i32, value: &[u8]) -> crate::RecordRef<'_> {
    crate::RecordRef {
        topic: "t",
        partition: Some(partition),
        key: None,
        value: Some(value),
        headers: &[],
        timestamp_ms: 1_700_000_000_000,
        context: 0,
    }
}

/// A real thread appending a `value_len`-byte record to `partition`,
/// blocking for `buffer.memory` for up to `max_block`, returned once it
/// waits (spinning on the pool's waiter count with yields, no sleeping);
/// its result (the partition, or the error) comes on the receiver.
pub(super) fn blocked_sender(
    sim: &MockSim,
    partition: i32,
    value_len: usize,
    max_block: Duration,
) -> (
    std::thread::JoinHandle<()>,
    std::sync::mpsc::Receiver<Result<i32, crate::error::SendError>>,
) {
    let shared = sim.shared.clone();
    let now = sim.now;
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let v = vec![8u8; value_len];
        let r = shared
            .append(now, record_ref(partition, &v), now + max_block)
            .map(|o| o.partition);
        let _ = tx.send(r);
    });
    while sim.shared.pool.waiters() == 0 {
        assert!(!t.is_finished(), "the sender did not block");
        std::thread::yield_now();
    }
    (t, rx)
}
