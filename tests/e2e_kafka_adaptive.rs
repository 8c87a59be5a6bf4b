//! Adaptive sticky partitioning (KIP-794, `partitioner.adaptive.partitioning.enable`,
//! on by default as in the Java client) on Apache Kafka 4.4.0: while one
//! of three brokers is stalled (SIGSTOP, its connections open but
//! unanswered), keyless records go mostly to the partitions of the other
//! two, whose batches do not queue up. Every record is still delivered
//! exactly once when the broker comes back.
//!
//! With the choice made uniform, the stalled broker's two partitions of
//! six would take about a third of the records sent during the stall
//! (`KRING_TEST_ADAPTIVE=0` runs it with the setting off: 0.34 of the
//! records then, against 0.09–0.10 with it on, in four runs).

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kring::{Acks, DeliveryFuture, Record};
use kring_testcluster::{ClusterConfig, KafkaCluster};

const TOPIC: &str = "adaptive-sticky";
const STALL: Duration = Duration::from_secs(3);

#[test]
fn keyless_records_avoid_a_stalled_broker() {
    support::trace::init();
    let c = KafkaCluster::start(ClusterConfig::new(3))
        .unwrap_or_else(|e| panic!("cannot start a 3-node Kafka cluster: {e}"));
    c.create_topic(TOPIC, 6, 1, &[]).unwrap();
    let leaders: Vec<i32> = (0..6).map(|p| c.leader_of(TOPIC, p).unwrap()).collect();
    let adaptive = std::env::var("KRING_TEST_ADAPTIVE").map_or(true, |v| v != "0");
    let p = support::producer_builder()
        .bootstrap(&c.bootstrap())
        .acks(Acks::Leader)
        .batch_size(2048)
        .linger(Duration::from_millis(5))
        .partitioner_adaptive_partitioning_enable(adaptive)
        .build()
        .expect("producer");
    p.wait_for_metadata(TOPIC, Duration::from_secs(60))
        .expect("metadata");
    let mut n = 0u64;
    let send = |n: &mut u64| {
        let v = value(*n);
        *n += 1;
        (v.clone(), p.send(Record::new(TOPIC, &v[..])).expect("send"))
    };
    let mut before: Vec<(Vec<u8>, DeliveryFuture)> = Vec::new();
    for _ in 0..2_000 {
        before.push(send(&mut n));
    }
    assert!(p.flush_timeout(Duration::from_secs(60)), "flushed");

    // The stalled broker leads two of the six partitions (leaders are
    // spread evenly over the three nodes when the topic is created).
    let stalled = leaders[0];
    assert_eq!(
        leaders.iter().filter(|&&l| l == stalled).count(),
        2,
        "leaders {leaders:?}"
    );
    c.pause(stalled);
    let start = Instant::now();
    let mut during: Vec<(Vec<u8>, DeliveryFuture)> = Vec::new();
    while start.elapsed() < STALL {
        for _ in 0..20 {
            during.push(send(&mut n));
        }
        // About 10,000 records a second: the stalled partitions' queues
        // grow while the others' are sent every few milliseconds.
        std::thread::sleep(Duration::from_millis(2));
    }
    c.resume(stalled);

    let mut per_partition: HashMap<i32, u64> = HashMap::new();
    let mut on_stalled = 0u64;
    let mut reported: HashMap<(i32, i64), Vec<u8>> = HashMap::new();
    for (i, (v, f)) in before.iter().chain(&during).enumerate() {
        let md = f
            .wait_timeout(Duration::from_secs(120))
            .expect("a result")
            .unwrap_or_else(|e| panic!("not delivered: {e}"));
        assert!(
            reported
                .insert((md.partition, md.offset), v.clone())
                .is_none(),
            "two records reported at {}/{}",
            md.partition,
            md.offset
        );
        if i >= before.len() {
            *per_partition.entry(md.partition).or_default() += 1;
            if leaders[md.partition as usize] == stalled {
                on_stalled += 1;
            }
        }
    }
    let share = on_stalled as f64 / during.len() as f64;
    eprintln!(
        "adaptive={adaptive}: {} records during the stall, {on_stalled} ({share:.3}) to node \
         {stalled}'s partitions; per partition {per_partition:?}",
        during.len()
    );
    if adaptive {
        assert!(
            share < 0.18,
            "the stalled broker's partitions took {share:.3} of the records"
        );
    }
    assert!(p.close_timeout(Duration::from_secs(60)), "closed");

    // Every record once, at the partition and offset reported.
    let read = support::read_java(&c.bootstrap(), TOPIC, 6);
    assert_eq!(read.len(), reported.len(), "records in the log");
    for r in &read {
        assert_eq!(
            reported.get(&(r.partition, r.offset)),
            r.value.as_ref(),
            "record at {}/{}",
            r.partition,
            r.offset
        );
    }
}

/// Record `n`'s value: its number, padded to 200 bytes.
fn value(n: u64) -> Vec<u8> {
    let mut v = format!("r{n}-").into_bytes();
    v.resize(200, b'.');
    v
}
