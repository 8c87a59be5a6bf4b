//! Point 5: metadata — bootstrap, leaders, refresh triggers, KIP-951 hints.

use super::*;
use crate::error::SendError;
use kring_protocol::messages::ApiKey;
use kring_protocol::ErrorCode;

/// Metadata requests the brokers received.
fn metadata_requests(sim: &MockSim) -> usize {
    requests(sim, ApiKey::Metadata) as usize
}

/// Produce requests the core sent to `node`.
fn produce_to(sim: &MockSim, node: i32) -> usize {
    sim.transmitted
        .iter()
        .filter(|r| r.2 == ApiKey::Produce.key() && r.1 == node)
        .count()
}

#[test]
fn bootstrap_then_broker_connections() {
    let mut sim = sim_with(cfg(), 3, 3);
    for p in 0..3 {
        sim.send("t", Some(p), None, Some(b"x")).unwrap();
    }
    sim.drive();
    for n in 1..=3 {
        assert_eq!(produce_to(&sim, n), 1, "node {n}");
    }
    // The bootstrap connection was closed once brokers were known.
    assert!(!sim.closes.is_empty());
}

#[test]
fn leader_move_with_kip951_hint_skips_backoff_and_metadata() {
    let mut sim = sim_with(cfg(), 2, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    assert_eq!(produce_to(&sim, 1), 1);
    let m0 = metadata_requests(&sim);
    sim.cluster.move_leader("t", 0, 2).unwrap();
    let t0 = sim.now;
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive_until(10_000, |_| h.try_result().is_some());
    assert_eq!(h.wait().unwrap().offset, 1);
    assert_eq!(produce_to(&sim, 2), 1);
    // No retry backoff (100 ms): linger 5 ms, a few 1 ms round trips and a
    // new connection.
    assert!(sim.now - t0 < ms(50), "{:?}", sim.now - t0);
    assert_eq!(metadata_requests(&sim), m0, "the hint sufficed");
}

#[test]
fn leader_move_without_hints_refreshes_metadata() {
    let mut sim = sim_with(cfg(), 2, 1);
    // No KIP-951 hints: the brokers serve Produce up to v9, as before
    // Kafka 3.7.
    sim.cluster.set_max_version(ApiKey::Produce, Some(9));
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    let m0 = metadata_requests(&sim);
    sim.cluster.move_leader("t", 0, 2).unwrap();
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    assert_eq!(h.wait().unwrap().offset, 1);
    assert!(
        metadata_requests(&sim) > m0,
        "NOT_LEADER_OR_FOLLOWER refreshed metadata"
    );
    assert_eq!(produce_to(&sim, 2), 1);
}

#[test]
fn periodic_refresh_every_metadata_max_age() {
    let mut sim = sim_with(cfg(), 1, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    let m0 = metadata_requests(&sim);
    sim.run_for(ms(300_000 * 3 + 1000));
    assert_eq!(metadata_requests(&sim) - m0, 3);
}

#[test]
fn connection_loss_refreshes_metadata() {
    let mut sim = sim_with(cfg(), 1, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    let m0 = metadata_requests(&sim);
    sim.disconnect_node(1);
    sim.run_for(ms(2000));
    assert!(metadata_requests(&sim) > m0);
}

#[test]
fn unknown_topic_waits_for_creation() {
    let mut sim = sim_with(cfg(), 1, 1);
    sim.run_for(ms(10));
    // The topic does not exist yet; it appears 2 s later.
    let now = sim.now;
    let r = sim.shared.append(
        now,
        crate::RecordRef {
            topic: "later",
            partition: None,
            key: None,
            value: Some(b"v"),
            headers: &[],
            timestamp_ms: 0,
            context: 0,
        },
        now,
    );
    assert!(matches!(r, Err(SendError::MetadataTimeout { .. })));
    sim.run_for(ms(2000));
    assert_eq!(
        sim.shared.topic_error("later"),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
    );
    let polls = metadata_requests(&sim);
    assert!(
        polls >= 3,
        "UNKNOWN_TOPIC_OR_PARTITION keeps being retried: {polls}"
    );
    sim.cluster.create_topic("later", 2).unwrap();
    let h = sim.send("later", None, None, Some(b"v")).unwrap();
    sim.drive();
    h.wait().unwrap();
}

/// A propagation window longer than the wait: the send waits out its block
/// deadline (the MockSim's 60 s) naming the brokers' error, as the Java client
/// does.
#[test]
fn missing_topic_fails_after_max_block_within_the_propagation_window() {
    let mut sim = sim_with(
        Config {
            topic_metadata_propagation: ms(120_000),
            ..cfg()
        },
        1,
        1,
    );
    let t0 = sim.now;
    match sim.send("nope", None, None, Some(b"v")) {
        Err(SendError::MetadataTimeout {
            topic, last_error, ..
        }) => {
            assert_eq!(&*topic, "nope");
            assert_eq!(
                last_error,
                Some(crate::LastError::Broker(
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                ))
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(sim.now - t0 >= ms(60_000), "waited max.block.ms");
    // Retries were spaced by the backoff (up to 1 s), not a tight loop.
    let n = metadata_requests(&sim);
    assert!((55..=80).contains(&n), "{n} metadata requests in 60 s");
}

/// Past `topic.metadata.propagation.max.ms` (default 5 s) from its first
/// use, a topic the brokers keep reporting as UNKNOWN_TOPIC_OR_PARTITION is
/// missing: the waiting send fails then, later sends fail at once (without
/// waiting), and once the topic is created a send uses it.
#[test]
fn missing_topic_fails_after_the_propagation_window_then_recovers() {
    let mut sim = sim_with(cfg(), 1, 1);
    let t0 = sim.now;
    let missing = |r: Result<crate::DeliveryHandle, SendError>| match r {
        Err(SendError::TopicError { topic, error }) => {
            assert_eq!(&*topic, "nope");
            assert_eq!(error, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
        }
        other => panic!("{other:?}"),
    };
    missing(sim.send("nope", None, None, Some(b"v")));
    let waited = sim.now - t0;
    assert!(
        waited >= ms(5_000) && waited < ms(7_000),
        "failed after {waited:?}, the window is 5 s"
    );
    // Retries within the window were spaced by the backoff.
    let n = metadata_requests(&sim);
    assert!((4..=15).contains(&n), "{n} metadata requests in {waited:?}");

    // Later sends fail without waiting, also for an explicit partition.
    let t1 = sim.now;
    missing(sim.send("nope", None, None, Some(b"v")));
    missing(sim.send("nope", Some(0), None, Some(b"v")));
    assert_eq!(sim.now, t1, "a known-missing topic fails at once");
    // ... and ask for metadata again, spaced by the backoff, not per send.
    sim.run_for(ms(2_000));
    let asked = metadata_requests(&sim) - n;
    assert!(
        (1..=3).contains(&asked),
        "{asked} refreshes after 2 failed sends"
    );
    sim.run_for(ms(10_000));
    assert_eq!(
        metadata_requests(&sim) - n,
        asked,
        "no polling while nobody sends to the missing topic"
    );

    // Created meanwhile: the next send's refresh finds it.
    sim.cluster.create_topic("nope", 2).unwrap();
    missing(sim.send("nope", None, None, Some(b"v")));
    sim.run_for(ms(2_000));
    let h = sim
        .send("nope", None, None, Some(b"v"))
        .expect("the topic exists now");
    sim.drive();
    h.wait().expect("delivered");
}

#[test]
fn auto_created_topic() {
    let auto = MockCluster::builder()
        .auto_create_topics(true)
        .default_partitions(3);
    let mut sim = sim_on(cfg(), auto);
    let h = sim.send("fresh", Some(2), None, Some(b"v")).unwrap();
    sim.drive();
    assert_eq!(h.wait().unwrap().partition, 2);
}

#[test]
fn explicit_partition_out_of_range_fails() {
    let mut sim = sim_with(cfg(), 1, 2);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    match sim.send("t", Some(5), None, Some(b"v")) {
        Err(SendError::InvalidPartition {
            partition: 5,
            num_partitions: 2,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        sim.send("t", Some(-1), None, Some(b"v")),
        Err(SendError::InvalidPartition { partition: -1, .. })
    ));
}

/// A partition waiting in a dead leader's ready queue follows its new
/// leader as soon as metadata names it. Found against Apache Kafka
/// (tests/e2e_kafka_failover.rs, SIGKILL of a leader): the batches of the
/// moved partitions waited in the dead node's queue, which only a ready
/// connection to that node drains, so nothing was sent to the new leader
/// until the dead node came back (over a minute).
#[test]
fn queued_partition_follows_its_new_leader_while_the_old_one_is_down() {
    let mut sim = sim_with(cfg(), 2, 1);
    // No KIP-951 hints: the brokers serve Produce up to v9, as before
    // Kafka 3.7.
    sim.cluster.set_max_version(ApiKey::Produce, Some(9));
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    assert_eq!(produce_to(&sim, 1), 1);
    // Node 1 dies (refuses connections from now on); the controller moves
    // its partition to node 2.
    stop(&sim, 1);
    sim.disconnect_node(1);
    sim.cluster.move_leader("t", 0, 2).unwrap();
    let t0 = sim.now;
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive_until(100_000, |s| {
        h.try_result().is_some() || s.now - t0 > ms(20_000)
    });
    let r = h.try_result().expect("a result within 20 s");
    assert_eq!(r.unwrap().offset, 1);
    assert_eq!(produce_to(&sim, 2), 1);
    // Reconnect backoff and a metadata round trip, not the delivery timeout.
    assert!(sim.now - t0 < ms(5_000), "{:?}", sim.now - t0);
}
