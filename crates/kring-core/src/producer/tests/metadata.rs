//! Point 5: metadata — bootstrap, leaders, refresh triggers, KIP-951 hints.

use super::*;
use crate::delivery::DeliveryError;
use crate::error::SendError;
use kring_mock::{FaultAction, Lie};
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

/// The tests' config with `metadata.max.age.ms` at 1 s, so that a
/// periodic refresh (which brings a lie or its end) comes within a test.
fn refreshed_every_second() -> Config {
    Config {
        metadata_max_age: ms(1_000),
        ..cfg()
    }
}

/// Drives `sim` until `h` has its result (30 s of simulated time at the
/// most), which must be a success that came within `within`.
fn delivered_within(
    sim: &mut MockSim,
    h: &crate::DeliveryHandle,
    within: Duration,
) -> crate::RecordMetadata {
    let t0 = sim.now;
    sim.drive_until(1_000_000, |s| {
        h.try_result().is_some() || s.now - t0 > ms(30_000)
    });
    let md = h.try_result().expect("a result within 30 s");
    assert!(sim.now - t0 < within, "{:?}", sim.now - t0);
    md.expect("delivered")
}

/// A first non-blocking send to `topic`, which the producer does not know:
/// it asks for the topic's metadata and fails at once.
fn ask_about(sim: &MockSim, topic: &str) {
    let now = sim.now;
    let r = sim
        .shared
        .append(now, crate::RecordRef::plain(topic, b"v"), now);
    assert!(matches!(r, Err(SendError::MetadataTimeout { .. })), "{r:?}");
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
    // Nor later (a refresh would come after a backoff).
    sim.run_for(ms(1_000));
    assert_eq!(metadata_requests(&sim), m0, "the hint sufficed");
}

/// Node 0 is a broker like any other (many real clusters number theirs
/// from 0): it leads a partition, and a KIP-951 hint naming it is followed
/// at once, as one naming any other node is, without metadata.
#[test]
fn a_leader_hint_naming_node_zero_is_followed() {
    let mut sim = sim_on(cfg(), cluster(2, 1).first_node_id(0));
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    assert_eq!(produce_to(&sim, 0), 1, "node 0 leads t-0");
    let m0 = metadata_requests(&sim);
    sim.cluster.move_leader("t", 0, 1).unwrap();
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    assert_eq!(delivered_within(&mut sim, &h, ms(50)).offset, 1);
    sim.cluster.move_leader("t", 0, 0).unwrap();
    let h = sim.send("t", Some(0), None, Some(b"y")).unwrap();
    assert_eq!(delivered_within(&mut sim, &h, ms(50)).offset, 2);
    assert_eq!(
        produce_to(&sim, 0),
        3,
        "the first send, the refused one, and back"
    );
    sim.run_for(ms(1_000));
    assert_eq!(metadata_requests(&sim), m0, "the hints sufficed");
}

/// KIP-951 hints are trusted only with the two errors a Kafka broker sets
/// them for, NOT_LEADER_OR_FOLLOWER and FENCED_LEADER_EPOCH (as the Java
/// client's `Sender` does): a hint riding on any other error (here
/// NOT_ENOUGH_REPLICAS from the partition's real leader) says nothing
/// about leadership and must not move the partition, and the error asks
/// for no metadata.
#[test]
fn leader_hint_on_other_errors_is_ignored() {
    let mut sim = sim_with(cfg(), 2, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    assert_eq!(produce_to(&sim, 1), 1);
    let m0 = metadata_requests(&sim);
    let epoch = sim.cluster.leader_epoch("t", 0).unwrap();
    let hint = Lie::CurrentLeader {
        leader_id: 2,
        leader_epoch: epoch,
    };
    sim.cluster
        .inject(Fault::error(ApiKey::Produce, ErrorCode::NOT_ENOUGH_REPLICAS).on_broker(1));
    sim.cluster
        .inject(Fault::lie(ApiKey::Produce, hint).on_broker(1));
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    assert_eq!(h.wait().unwrap().offset, 1);
    assert_eq!(produce_to(&sim, 2), 0, "the hint was not followed");
    assert_eq!(produce_to(&sim, 1), 3, "retried at the leader");
    // Nor does the error: only stale-metadata errors (the Java client's
    // `InvalidMetadataException`s) ask for metadata (after a backoff).
    sim.run_for(ms(1_000));
    assert_eq!(metadata_requests(&sim), m0, "metadata asked for");
}

/// A KIP-951 hint naming another leader with an older leader epoch than
/// the one known (a stale answer, or a broker behind) is ignored, as a
/// metadata response with an older epoch is (KIP-320): the batch is
/// retried at the leader the newer epoch names, and nothing goes to the
/// hinted node.
#[test]
fn leader_hint_with_an_older_epoch_is_ignored() {
    let mut sim = sim_with(cfg(), 2, 1);
    // Two moves: t/0 back at node 1 with leader epoch 2, which the
    // producer learns.
    for n in [2, 1] {
        sim.cluster.move_leader("t", 0, n).unwrap();
    }
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    let epoch = sim.cluster.leader_epoch("t", 0).unwrap();
    assert!(epoch >= 1, "epoch {epoch}");
    let (to1, to2) = (produce_to(&sim, 1), produce_to(&sim, 2));
    let hint = Lie::CurrentLeader {
        leader_id: 2,
        leader_epoch: epoch - 1,
    };
    sim.cluster.inject(
        Fault::error(ApiKey::Produce, ErrorCode::NOT_LEADER_OR_FOLLOWER)
            .on_broker(1)
            .times(1),
    );
    sim.cluster
        .inject(Fault::lie(ApiKey::Produce, hint).on_broker(1).times(1));
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    assert_eq!(h.wait().unwrap().offset, 1);
    assert_eq!(produce_to(&sim, 2), to2, "the stale hint was followed");
    assert_eq!(produce_to(&sim, 1), to1 + 2, "retried at the leader");
}

/// FENCED_LEADER_EPOCH with a hint: followed, as with
/// NOT_LEADER_OR_FOLLOWER, without a metadata refresh.
#[test]
fn leader_hint_with_fenced_leader_epoch_is_followed() {
    let mut sim = sim_with(cfg(), 2, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    let m0 = metadata_requests(&sim);
    sim.cluster.move_leader("t", 0, 2).unwrap();
    let hint = Lie::CurrentLeader {
        leader_id: 2,
        leader_epoch: sim.cluster.leader_epoch("t", 0).unwrap(),
    };
    sim.cluster
        .inject(Fault::error(ApiKey::Produce, ErrorCode::FENCED_LEADER_EPOCH).on_broker(1));
    sim.cluster
        .inject(Fault::lie(ApiKey::Produce, hint).on_broker(1));
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    assert_eq!(h.wait().unwrap().offset, 1);
    assert_eq!(produce_to(&sim, 2), 1);
    // Nor later (a refresh would come after a backoff).
    sim.run_for(ms(1_000));
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

/// A broker whose metadata lags behind a leader change reports the old
/// leader at an older leader epoch: that entry is ignored (KIP-320, the
/// Java client's `Metadata.updateLatestMetadata`), and records keep going
/// to the leader the newer epoch names. Followed, the producer would send
/// to the old leader, be refused with NOT_LEADER_OR_FOLLOWER and come back
/// on every refresh. An entry without an epoch (-1, brokers before
/// KIP-320) cannot be compared and is taken.
#[test]
fn metadata_with_an_older_leader_epoch_is_ignored() {
    let config = refreshed_every_second();
    let mut sim = sim_with(config, 2, 1);
    sim.cluster.move_leader("t", 0, 2).unwrap();
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    assert_eq!(produce_to(&sim, 2), 1);
    let epoch = sim.cluster.leader_epoch("t", 0).unwrap();
    assert!(epoch >= 1, "epoch {epoch}");
    let lagging = |leader_epoch| {
        Fault::lie(
            ApiKey::Metadata,
            Lie::PartitionLeader {
                partition: 0,
                leader_id: 1,
                leader_epoch,
            },
        )
        .always()
    };
    let stale = sim.cluster.inject(lagging(epoch - 1));
    let m0 = metadata_requests(&sim);
    sim.run_for(ms(1_500));
    assert!(metadata_requests(&sim) > m0, "no refresh");
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    assert_eq!(h.wait().unwrap().offset, 1);
    assert_eq!(produce_to(&sim, 1), 0, "the stale leader was followed");
    assert_eq!(produce_to(&sim, 2), 2);

    // (The old leader answers NOT_LEADER_OR_FOLLOWER with a KIP-951 hint
    // naming node 2, which is followed.)
    sim.cluster.remove_fault(stale);
    let unversioned = sim.cluster.inject(lagging(-1));
    sim.run_for(ms(1_500));
    let h = sim.send("t", Some(0), None, Some(b"y")).unwrap();
    sim.drive_until(1_000_000, |_| h.try_result().is_some());
    sim.cluster.remove_fault(unversioned);
    assert_eq!(h.wait().unwrap().offset, 2);
    assert_eq!(
        produce_to(&sim, 1),
        1,
        "a leader without an epoch was not taken"
    );
    assert_eq!(log(&sim, 0).len(), 3);
}

/// The leader epoch a KIP-951 hint carries counts as known, as one from
/// metadata does: a lagging broker's metadata naming the old leader at
/// the epoch before is ignored after the hint was followed.
#[test]
fn a_leader_epoch_learned_from_a_hint_makes_older_metadata_stale() {
    let config = refreshed_every_second();
    let mut sim = sim_with(config, 2, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    let before = sim.cluster.leader_epoch("t", 0).unwrap();
    // The move is learned from node 1's NOT_LEADER_OR_FOLLOWER hint.
    sim.cluster.move_leader("t", 0, 2).unwrap();
    let stale = Lie::PartitionLeader {
        partition: 0,
        leader_id: 1,
        leader_epoch: before,
    };
    sim.cluster
        .inject(Fault::lie(ApiKey::Metadata, stale).always());
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive_until(1_000_000, |_| h.try_result().is_some());
    assert_eq!(h.wait().unwrap().offset, 1);
    assert_eq!(produce_to(&sim, 1), 2, "w, then x refused");
    let m0 = metadata_requests(&sim);
    sim.run_for(ms(1_500));
    assert!(metadata_requests(&sim) > m0, "no refresh");
    let h = sim.send("t", Some(0), None, Some(b"y")).unwrap();
    sim.drive_until(1_000_000, |_| h.try_result().is_some());
    assert_eq!(h.wait().unwrap().offset, 2);
    assert_eq!(produce_to(&sim, 1), 2, "the stale metadata was followed");
}

/// A partition whose leader is a broker the response does not list (a
/// broker behind, or a node that just left) has no usable leader: its
/// records wait, the producer asks again at the retry backoff's pace
/// (not at `metadata.max.age.ms`), and they are delivered once metadata
/// names a leader it knows.
#[test]
fn a_leader_the_response_does_not_list_is_no_leader() {
    let mut sim = sim_with(cfg(), 2, 1);
    let unlisted = sim.cluster.inject(
        Fault::lie(
            ApiKey::Metadata,
            Lie::PartitionLeader {
                partition: 0,
                leader_id: 7,
                leader_epoch: 0,
            },
        )
        .always(),
    );
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.run_for(ms(2_000));
    assert!(h.try_result().is_none());
    assert!(metadata_requests(&sim) >= 4, "{}", metadata_requests(&sim));
    assert_eq!(produce_to(&sim, 1) + produce_to(&sim, 2), 0);
    sim.cluster.remove_fault(unlisted);
    assert_eq!(delivered_within(&mut sim, &h, ms(2_000)).offset, 0);
}

/// A response listing only invalid partition indexes for a known topic
/// (a broken broker) tells nothing about it: the topic keeps its
/// partitions and leaders, and records sent to it are delivered at once.
#[test]
fn a_known_topic_listed_with_only_invalid_indexes_keeps_its_partitions() {
    let config = refreshed_every_second();
    let mut sim = sim_with(config, 2, 3);
    sim.send("t", Some(2), None, Some(b"w")).unwrap();
    sim.drive();
    let lie = Fault::lie(ApiKey::Metadata, Lie::PartitionIndex(i32::MAX));
    sim.cluster.inject(lie.always());
    let m0 = metadata_requests(&sim);
    sim.run_for(ms(1_500));
    assert!(metadata_requests(&sim) > m0, "no refresh");
    assert_eq!(sim.shared.partition_count("t"), Some(3));
    let h = sim.send("t", Some(2), None, Some(b"x")).unwrap();
    assert_eq!(delivered_within(&mut sim, &h, ms(100)).offset, 1);
}

/// A partition a response stops listing (a broker lagging behind, or the
/// topic being recreated) while a batch is buffered for it: the batch
/// waits, and the producer keeps asking at the retry backoff's pace, long
/// after any sender waited for metadata (`max.block.ms`), until metadata
/// lists the partition again; then it is delivered.
#[test]
fn a_batch_for_an_unlisted_partition_keeps_metadata_coming() {
    let config = Config {
        linger: ms(2_000),
        max_block: ms(100),
        metadata_max_age: ms(60_000),
        ..cfg()
    };
    let mut sim = sim_on(config, cluster(2, 3).topic("u", 1));
    let h = sim.send("t", Some(2), None, Some(b"x")).unwrap();
    sim.run_for(ms(1_000));
    assert!(h.try_result().is_none(), "lingers");
    let lie = sim
        .cluster
        .inject(Fault::lie(ApiKey::Metadata, Lie::PartitionsBelow(2)).always());
    let m0 = metadata_requests(&sim);
    // An unrelated topic's first send asks for metadata, which no longer
    // lists t/2.
    sim.send("u", Some(0), None, Some(b"u")).unwrap();
    sim.run_for(ms(3_000));
    assert!(h.try_result().is_none());
    assert!(
        metadata_requests(&sim) >= m0 + 4,
        "{m0} -> {}",
        metadata_requests(&sim)
    );
    sim.cluster.remove_fault(lie);
    assert_eq!(delivered_within(&mut sim, &h, ms(2_000)).offset, 0);
}

/// A partition waiting in the ready queue of a broker that is down, which
/// metadata then stops listing and later lists again under another
/// leader: it leaves the dead broker's queue when it is unlisted (that
/// queue is drained only over a ready connection to its broker), so the
/// new leader gets its records at once. Left there, they would wait for
/// the dead broker or their delivery timeout.
#[test]
fn a_partition_unlisted_while_queued_at_a_dead_broker_follows_its_next_leader() {
    // t/0 at node 1, t/1 at node 2.
    let mut sim = sim_with(cfg(), 2, 2);
    learn_metadata(&mut sim);
    sim.send("t", Some(1), None, Some(b"w")).unwrap();
    sim.drive();
    stop(&sim, 2);
    sim.disconnect_node(2);
    let lie = sim
        .cluster
        .inject(Fault::lie(ApiKey::Metadata, Lie::PartitionsBelow(1)).always());
    let h = sim.send("t", Some(1), None, Some(b"x")).unwrap();
    sim.run_for(ms(2_000));
    assert!(h.try_result().is_none());
    assert_eq!(sim.shared.partition_count("t"), Some(1), "t/1 unlisted");
    sim.cluster.move_leader("t", 1, 1).unwrap();
    sim.cluster.remove_fault(lie);
    assert_eq!(delivered_within(&mut sim, &h, ms(3_000)).offset, 1);
}

/// A partition that loses its leader gets no more keyless records (they
/// go to the partitions that have one, as the Java client's partitioner
/// chooses among available partitions), and gets them again once it has
/// a leader. Adaptive partitioning is off: it would avoid the partition
/// for its growing queue alone.
#[test]
fn keyless_records_avoid_a_partition_without_a_leader() {
    let config = Config {
        partitioner_adaptive: false,
        linger: ms(0),
        batch_size: 100,
        ..refreshed_every_second()
    };
    let mut sim = sim_with(config, 2, 2);
    sim.send("t", Some(1), None, Some(b"w")).unwrap();
    sim.drive();
    let leaderless = sim.cluster.inject(
        Fault::lie(
            ApiKey::Metadata,
            Lie::PartitionLeader {
                partition: 1,
                leader_id: -1,
                leader_epoch: 0,
            },
        )
        .always(),
    );
    sim.run_for(ms(1_500));
    let to = |sim: &mut MockSim, n: usize| -> Vec<i32> {
        let hs: Vec<_> = (0..n)
            .map(|_| sim.send("t", None, None, Some(&[7; 60])).unwrap())
            .collect();
        sim.run_for(ms(200));
        let mut parts: Vec<i32> = hs
            .iter()
            .map(|h| h.try_result().expect("delivered").unwrap().partition)
            .collect();
        parts.dedup();
        parts
    };
    assert_eq!(to(&mut sim, 20), [0], "only the partition with a leader");
    // A new leader, at a newer epoch.
    sim.cluster.remove_fault(leaderless);
    sim.cluster.move_leader("t", 1, 1).unwrap();
    sim.run_for(ms(1_500));
    let mut parts = to(&mut sim, 200);
    parts.sort_unstable();
    parts.dedup();
    assert_eq!(parts, [0, 1], "both again");
}

/// A broker advertised at a new address (it moved, or its
/// `advertised.listeners` changed): the connection to its old address is
/// closed and the producer connects to the new one. Nothing answers there,
/// so the record waits; when metadata names an address that answers, it
/// is delivered, once.
#[test]
fn a_broker_advertised_at_a_new_address_is_reached_there() {
    let config = refreshed_every_second();
    // t/0 at node 1, t/1 at node 2.
    let mut sim = sim_with(config, 2, 2);
    sim.send("t", Some(1), None, Some(b"w")).unwrap();
    sim.drive();
    assert_eq!(produce_to(&sim, 2), 1);
    let moved = Lie::BrokerAddress {
        node_id: 2,
        host: "mock-2-moved".into(),
        port: 9092,
    };
    let lie = sim
        .cluster
        .inject(Fault::lie(ApiKey::Metadata, moved).always());
    sim.run_for(ms(1_500));
    let h = sim.send("t", Some(1), None, Some(b"x")).unwrap();
    sim.run_for(ms(1_000));
    assert!(
        sim.connects.iter().any(|a| a == "mock-2-moved:9092"),
        "{:?}",
        sim.connects
    );
    assert!(h.try_result().is_none(), "sent to the old address");
    assert_eq!(produce_to(&sim, 2), 1);

    sim.cluster.remove_fault(lie);
    assert_eq!(delivered_within(&mut sim, &h, ms(30_000)).offset, 1);
    assert_eq!(log(&sim, 1).len(), 2);
}

/// An async send to a topic the producer has not asked about, made while
/// a metadata request for other topics is in flight: that request cannot
/// answer for it, so another is sent as soon as it returns (not at the
/// next `metadata.max.age.ms`), and the send goes on at once. The task
/// asks once; nothing re-asks for it while it waits.
#[test]
fn a_topic_wanted_while_metadata_is_in_flight_is_asked_for_next() {
    use std::task::Context;
    let mut sim = sim_on(cfg(), cluster(1, 1).topic("v", 1).topic("u", 1));
    learn_metadata(&mut sim);
    let m0 = metadata_requests(&sim);
    // A request for `t` and `v` (a first non-blocking send to `v`), its
    // answer 200 ms late.
    sim.cluster
        .inject(Fault::delay(ApiKey::Metadata, ms(200)).times(1));
    ask_about(&sim, "v");
    sim.run_for(ms(50));
    assert_eq!(metadata_requests(&sim), m0 + 1);
    let shared = sim.shared.clone();
    let t0 = sim.now;
    let mut task = shared.append_async(t0, t0 + Duration::from_secs(60));
    let rec = crate::RecordRef::plain("u", b"u");
    let mut cx = Context::from_waker(std::task::Waker::noop());
    assert!(task.poll_append(t0, &rec, &mut cx).is_pending());
    let appended = loop {
        assert!(sim.now - t0 < ms(10_000), "still waiting");
        if let std::task::Poll::Ready(r) = task.poll_append(sim.now, &rec, &mut cx) {
            break r;
        }
        if !sim.step() {
            sim.run_for(ms(10));
        }
    };
    let h = appended.expect("appended").delivery;
    sim.drive();
    assert_eq!(h.wait().unwrap().partition, 0);
    assert!(sim.now - t0 < ms(500), "{:?}", sim.now - t0);
    assert_eq!(metadata_requests(&sim), m0 + 2);
}

/// A topic answered with a retriable error (LEADER_NOT_AVAILABLE: just
/// created, its leaders not yet elected) is waited for, not failed: the
/// send goes on once the answer has leaders.
#[test]
fn a_topic_answered_leader_not_available_is_waited_for() {
    let mut sim = sim_on(cfg(), cluster(1, 1).topic("u", 1));
    learn_metadata(&mut sim);
    sim.cluster
        .inject(Fault::error(ApiKey::Metadata, ErrorCode::LEADER_NOT_AVAILABLE).times(2));
    let h = sim.send("u", Some(0), None, Some(b"u")).unwrap();
    sim.drive();
    assert_eq!(h.wait().unwrap().offset, 0);
    assert_eq!(sim.shared.topic_error("u"), None);
}

/// A known topic answered with an error while records are buffered for
/// it (a topic being moved, or a broker behind): its partitions are kept,
/// and metadata is asked for again at the retry backoff's pace (not at
/// `metadata.max.age.ms`) until an answer lists it, long after any sender
/// waited for it (`max.block.ms`).
#[test]
fn a_known_topic_answered_with_an_error_while_it_has_work_is_asked_again() {
    let config = Config {
        linger: ms(5_000),
        max_block: ms(100),
        ..refreshed_every_second()
    };
    let mut sim = sim_with(config, 1, 1);
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.run_for(ms(500));
    let refused = sim
        .cluster
        .inject(Fault::error(ApiKey::Metadata, ErrorCode::LEADER_NOT_AVAILABLE).always());
    let m0 = metadata_requests(&sim);
    // The periodic refresh finds the error, then the backoff's: about
    // 0.1 + 0.2 + 0.4 + 0.8 + 1 s; every `metadata.max.age.ms` would be 3.
    sim.run_for(ms(3_000));
    let asked = metadata_requests(&sim) - m0;
    assert!(asked >= 5, "{asked} requests in 3 s");
    assert_eq!(sim.shared.partition_count("t"), Some(1));
    sim.cluster.remove_fault(refused);
    sim.drive();
    assert_eq!(h.wait().unwrap().offset, 0);
}

/// A topic a sender waits for, listed with nothing usable (only invalid
/// partition indexes): still unknown, and asked for again at the retry
/// backoff's pace while the sender waits (one registration: an async
/// task's, which does not ask again by itself).
#[test]
fn a_wanted_topic_listed_with_nothing_usable_is_asked_for_again() {
    let mut sim = sim_on(cfg(), cluster(1, 1).topic("u", 1));
    learn_metadata(&mut sim);
    let lie = Fault::lie(ApiKey::Metadata, Lie::PartitionIndex(i32::MAX));
    sim.cluster.inject(lie.on_partition("u", 0).always());
    let m0 = metadata_requests(&sim);
    ask_about(&sim, "u");
    sim.run_for(ms(3_000));
    let asked = metadata_requests(&sim) - m0;
    assert!(asked >= 5, "{asked} requests in 3 s");
    assert_eq!(sim.shared.partition_count("u"), None);
}

/// `Shared::wait_for_metadata` (the driver's `partitions_for`): a known
/// topic's partition count at once; a name that is empty or longer than
/// the wire's `i16` length an `InvalidTopic` at once (the longest allowed
/// is asked for); an unknown topic a `MetadataTimeout` at the deadline.
#[test]
fn wait_for_metadata_answers_counts_and_typed_errors() {
    let mut sim = sim_with(cfg(), 1, 3);
    learn_metadata(&mut sim);
    let now = sim.now;
    let shared = sim.shared.clone();
    assert_eq!(shared.wait_for_metadata(now, "t", now), Ok(3));
    for name in [String::new(), "n".repeat(i16::MAX as usize + 1)] {
        assert!(
            matches!(
                shared.wait_for_metadata(now, &name, now),
                Err(SendError::InvalidTopic(_))
            ),
            "{} bytes",
            name.len()
        );
    }
    let longest = "n".repeat(i16::MAX as usize);
    assert!(matches!(
        shared.wait_for_metadata(now, &longest, now),
        Err(SendError::MetadataTimeout { .. })
    ));
    assert!(matches!(
        shared.wait_for_metadata(now, "u", now),
        Err(SendError::MetadataTimeout { .. })
    ));
}

/// A known topic a metadata response says nothing of but
/// UNKNOWN_TOPIC_OR_PARTITION (being deleted, or a broker behind) keeps
/// its partitions, past `topic.metadata.propagation` too: sends go on at
/// once (their batches retry until their delivery timeout), and nothing
/// fails the topic as if it had never existed.
#[test]
fn a_known_topic_stays_usable_when_a_response_does_not_know_it() {
    let mut sim = three_partitions_written();
    // Past `topic.metadata.propagation` (5 s) since `t` was first wanted.
    sim.run_for(ms(6_000));
    sim.cluster = MockCluster::builder()
        .brokers(1)
        .topic("other", 1)
        .auto_create_topics(false)
        .build_unbound()
        .unwrap();
    let m0 = metadata_requests(&sim);
    // A send to another topic asks for metadata, which does not know `t`.
    sim.send("other", Some(0), None, Some(b"o")).unwrap();
    sim.settle();
    assert!(metadata_requests(&sim) > m0, "asked");
    assert_eq!(sim.shared.partition_count("t"), Some(3));
    let now = sim.now;
    let o = sim
        .shared
        .try_produce_now(now, rec(Some(1), None))
        .expect("the topic is still usable");
    assert_eq!(o.partition, 1);
}

#[test]
fn periodic_refresh_every_metadata_max_age() {
    let mut sim = sim_with(cfg(), 1, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    let m0 = metadata_requests(&sim);
    sim.run_for(ms(300_000 * 3 + 1000));
    assert_eq!(metadata_requests(&sim) - m0, 3);
    assert_eq!(
        sim.core.stats().metadata_requests as usize,
        metadata_requests(&sim),
        "counted"
    );
}

/// Metadata requests that keep failing are retried at an exponentially
/// growing backoff, up to `retry.backoff.max.ms` (1 s), not every 100 ms:
/// each answer cut off (the connection lost with it), or each answer
/// undecodable.
#[test]
fn failing_metadata_requests_back_off_exponentially() {
    for fault in [
        Fault::cut_response(ApiKey::Metadata),
        Fault::corrupt_response(ApiKey::Metadata),
    ] {
        let mut sim = sim_with(cfg(), 1, 1);
        learn_metadata(&mut sim);
        sim.cluster.inject(fault.always());
        let m0 = metadata_requests(&sim);
        // A send to an unknown topic asks, and keeps asking.
        let now = sim.now;
        let r = sim
            .shared
            .append(now, crate::RecordRef::plain("u", b"u"), now);
        assert!(matches!(r, Err(SendError::MetadataTimeout { .. })));
        sim.run_for(ms(5_000));
        // About 0.1 + 0.2 + 0.4 + 0.8 + 1 + 1 + 1 s (with jitter): 7 to
        // 9; every 100 ms would be 50.
        let asked = metadata_requests(&sim) - m0;
        assert!((5..=12).contains(&asked), "{asked} requests in 5 s");
    }
}

/// A metadata request goes to the least loaded ready connection (the
/// Java client's `leastLoadedNode`): not behind Produce requests a slow
/// broker has yet to answer.
#[test]
fn metadata_goes_to_the_least_loaded_connection() {
    let config = Config {
        linger: ms(0),
        ..cfg()
    };
    // t/0 at node 1, t/1 at node 2; `u` unknown to the producer so far.
    let mut sim = sim_on(config, cluster(2, 2).topic("u", 1));
    for p in 0..2 {
        sim.send("t", Some(p), None, Some(b"w")).unwrap();
    }
    sim.drive();
    sim.cluster
        .inject(Fault::delay(ApiKey::Produce, ms(500)).on_broker(1));
    for v in [b"x", b"y"] {
        sim.send("t", Some(0), None, Some(v)).unwrap();
        sim.run_for(ms(5));
    }
    let in_flight_at_1 = sim
        .transmitted
        .iter()
        .filter(|r| r.1 == 1 && r.2 == ApiKey::Produce.key())
        .count();
    assert_eq!(in_flight_at_1, 3, "w, x, y");
    let sent = sim.transmitted.len();
    ask_about(&sim, "u");
    sim.run_for(ms(5));
    let to: Vec<i32> = sim.transmitted[sent..]
        .iter()
        .filter(|r| r.2 == ApiKey::Metadata.key())
        .map(|r| r.1)
        .collect();
    assert_eq!(to, [2], "sent to the idle broker");
}

/// A connection with `max.in.flight.requests.per.connection` requests in
/// flight carries no metadata request either: it waits for a slot.
#[test]
fn metadata_waits_for_a_slot_on_a_full_connection() {
    let config = Config {
        linger: ms(0),
        max_in_flight: 1,
        ..cfg()
    };
    let mut sim = sim_on(config, cluster(1, 1).topic("u", 1));
    learn_metadata(&mut sim);
    sim.cluster.inject(Fault::delay(ApiKey::Produce, ms(500)));
    sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.run_for(ms(5));
    let m0 = metadata_requests(&sim);
    ask_about(&sim, "u");
    sim.run_for(ms(300));
    assert_eq!(metadata_requests(&sim), m0, "sent past the in-flight limit");
    sim.run_for(ms(300));
    assert_eq!(metadata_requests(&sim), m0 + 1);
}

/// Steady traffic to partitions that have leaders asks for metadata only
/// every `metadata.max.age.ms`: records waiting in batches when a
/// response arrives are no reason to ask again.
#[test]
fn steady_traffic_asks_for_metadata_only_at_max_age() {
    let config = Config {
        linger: ms(50),
        ..refreshed_every_second()
    };
    let mut sim = sim_with(config, 2, 2);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    let m0 = metadata_requests(&sim);
    for i in 0..150 {
        sim.send("t", Some(i % 2), None, Some(b"x")).unwrap();
        sim.run_for(ms(20));
    }
    let asked = metadata_requests(&sim) - m0;
    assert!((2..=4).contains(&asked), "{asked} in 3 s");
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
    ask_about(&sim, "later");
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

/// The connection cause a send waiting for metadata reports is a failure
/// while no broker connection was ready: a broker refusing connections
/// while another connection is ready is not why metadata is missing, and
/// is not named. Once the last ready connection is lost, its failure is
/// named, also while a connection to another broker is still in its
/// handshake.
#[test]
fn a_connection_failure_is_the_metadata_cause_only_with_no_connection_ready() {
    let mut sim = sim_with(cfg(), 2, 2);
    let h = sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    h.wait().unwrap();
    sim.cluster.stop_broker(2).unwrap();
    sim.send("t", Some(1), None, Some(b"x")).unwrap();
    sim.run_for(ms(50));
    assert!(sim.connects.iter().any(|a| a == "mock-2:9092"));
    let cause = |sim: &MockSim, topic: &str| {
        let now = sim.now;
        match sim
            .shared
            .append(now, crate::RecordRef::plain(topic, b"v"), now)
        {
            Err(SendError::MetadataTimeout { last_error, .. }) => last_error,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(cause(&sim, "u"), None, "node 1's connection is ready");
    // Node 2 accepts again, but its ApiVersions answer takes 10 s.
    let slow = Fault::new(ApiKey::ApiVersions, FaultAction::Delay(ms(10_000)));
    sim.cluster.inject(slow.on_broker(2));
    sim.cluster.start_broker(2).unwrap();
    let c2 = |sim: &MockSim| sim.connects.iter().filter(|a| *a == "mock-2:9092").count();
    let tried = c2(&sim);
    sim.drive_until(100_000, |s| c2(s) > tried);
    sim.cluster.stop_broker(1).unwrap();
    sim.disconnect_node(1);
    sim.run_for(ms(50));
    let last = cause(&sim, "v");
    assert!(
        matches!(
            last,
            Some(crate::LastError::Disconnected { .. } | crate::LastError::Connect { .. })
        ),
        "{last:?}"
    );
}

/// A topic the brokers stop allowing (TOPIC_AUTHORIZATION_FAILED in
/// metadata: its ACLs changed) fails sends at once with that error, also
/// while its partition has an open batch with room.
#[test]
fn a_topic_no_longer_authorized_fails_sends_though_a_batch_is_open() {
    let config = Config {
        linger: ms(5_000),
        ..refreshed_every_second()
    };
    let mut sim = sim_with(config, 1, 1);
    learn_metadata(&mut sim);
    sim.send("t", Some(0), None, Some(b"open")).unwrap();
    sim.cluster
        .inject(Fault::error(ApiKey::Metadata, ErrorCode::TOPIC_AUTHORIZATION_FAILED).always());
    sim.run_for(ms(1_500));
    let now = sim.now;
    let r = sim.shared.append(now, record_ref(0, b"late"), now);
    assert!(
        matches!(
            r,
            Err(SendError::TopicError {
                error: ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                ..
            })
        ),
        "{:?}",
        r.map(|o| o.partition)
    );
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
                Some(crate::LastError::broker(
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
    // At once, also for a send that could wait (it waits only for a
    // partition the topic had): one past the last, far beyond, negative.
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let shared = sim.shared.clone();
    for p in [2, 5, i32::MAX, -1, i32::MIN] {
        sim.settle();
        let notices = sim.core.stats().notices;
        let mut a = shared.append_async(sim.now, sim.now + ms(60_000));
        match a.poll_append(sim.now, &rec(Some(p), None), &mut cx) {
            std::task::Poll::Ready(Err(SendError::InvalidPartition {
                partition,
                num_partitions: 2,
                ..
            })) => assert_eq!(partition, p),
            other => panic!("{p}: {other:?}"),
        }
        drop(a);
        sim.settle();
        // A partition beyond the count asks for fresh metadata (the topic
        // may have grown); a negative one cannot exist.
        let asked = sim.core.stats().notices - notices;
        assert_eq!(asked, u64::from(p >= 0), "{p}: {asked} notices");
    }
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

/// Without idempotence, `max_in_flight: 1` is what keeps a partition's
/// order across retries (the Java client mutes a partition while one of its
/// batches is in flight: `guaranteeMessageOrder`). Here batch A of t/0 is
/// in flight at node 1 (its answer, a retriable error, held back) when
/// metadata learned from an unrelated refresh moves t/0 to node 2: batch B,
/// sent after A, must not reach the new leader before A's retry does.
#[test]
fn non_idempotent_max_in_flight_one_keeps_order_across_a_leader_move() {
    let config = Config {
        enable_idempotence: false,
        max_in_flight: 1,
        ..cfg()
    };
    // t/0 led by node 1, t/1 by node 2 (so a connection to node 2 exists
    // and can carry the metadata request while node 1's is busy).
    let mut sim = sim_on(config, cluster(2, 2).topic("u", 1));
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.send("t", Some(1), None, Some(b"w")).unwrap();
    sim.drive();
    // A's request is applied-and-refused late: a retriable error, answered
    // 200 ms later.
    fail_produce(&sim, 0, ErrorCode::NOT_ENOUGH_REPLICAS, 1);
    sim.cluster
        .inject(Fault::delay(ApiKey::Produce, ms(200)).on_broker(1));
    let a = sim.send("t", Some(0), None, Some(b"A")).unwrap();
    sim.run_for(ms(20));
    assert_eq!(produce_to(&sim, 1), 2, "A is in flight at node 1");
    sim.cluster.move_leader("t", 0, 2).unwrap();
    let b = sim.send("t", Some(0), None, Some(b"B")).unwrap();
    // An unrelated send refreshes metadata, which names node 2 for t/0.
    sim.send("u", Some(0), None, Some(b"z")).unwrap();
    sim.drive();
    a.wait().unwrap();
    b.wait().unwrap();
    let values: Vec<Vec<u8>> = log(&sim, 0)
        .iter()
        .map(|r| r.value.clone().unwrap().to_vec())
        .collect();
    assert_eq!(
        values,
        vec![b"w".to_vec(), b"A".to_vec(), b"B".to_vec()],
        "A was sent before B"
    );
}

/// A topic deleted and created again under the same name restarts its
/// partitions' leader epochs at 0 (with a new topic id). Metadata whose
/// epoch is below the one known is ignored as stale (KIP-320), but not
/// across a topic id change: the Java client (`Metadata.updateLatestMetadata`,
/// KIP-516) and librdkafka take the new topic's leaders whatever their
/// epoch. Otherwise the producer keeps sending to the old leader, which
/// answers NOT_LEADER_OR_FOLLOWER (its hint also carrying the low epoch),
/// until the delivery timeout, for every record, indefinitely.
#[test]
fn recreated_topic_with_lower_leader_epochs_is_followed() {
    // The old t/0 at node 2, epoch 3; the recreated one at node 1, epoch 1
    // (created at node 2, then moved). Then the old t/0 at node 2, epoch
    // 1; the recreated one at node 1, epoch 0 (as created).
    recreated_topic_followed(&[2, 1, 2], true);
    recreated_topic_followed(&[2], false);
}

/// `recreated_topic_with_lower_leader_epochs_is_followed` with t/0 moved
/// along `old_moves` before, then recreated at node 2 and moved to node 1
/// (`moved`), or created at node 1 (behind a topic of two partitions).
fn recreated_topic_followed(old_moves: &[i32], moved: bool) {
    let config = Config {
        enable_idempotence: false,
        ..cfg()
    };
    let mut sim = sim_with(config, 2, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    // The producer learns the moves (a NOT_LEADER_OR_FOLLOWER hint or a
    // refresh).
    for &n in old_moves {
        sim.cluster.move_leader("t", 0, n).unwrap();
    }
    let old_leader = *old_moves.last().unwrap();
    let before = produce_to(&sim, old_leader);
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    assert_eq!(h.wait().unwrap().offset, 1);
    assert_eq!(produce_to(&sim, old_leader), before + 1);
    // The topic is deleted and created again: a new topic id, lower leader
    // epochs, another leader.
    // (kring-mock's topic ids count the topics a cluster created: another
    // topic first gives `t` a new id, as a real recreation does.)
    let recreated = MockCluster::builder()
        .brokers(2)
        .topic("other", if moved { 1 } else { 2 })
        .topic("t", 1)
        .auto_create_topics(false)
        .build_unbound()
        .unwrap();
    if moved {
        recreated.move_leader("t", 0, 1).unwrap();
    }
    let epoch = recreated.leader_epoch("t", 0).unwrap();
    assert!(epoch < old_moves.len() as i32, "{epoch}");
    assert_ne!(recreated.leader("t", 0), Some(old_leader));
    sim.cluster = recreated;
    let h = sim.send("t", Some(0), None, Some(b"y")).unwrap();
    let md = delivered_within(&mut sim, &h, ms(5_000));
    assert_eq!(md.offset, 0, "written to the recreated topic");
}

/// A broker going down for good (a controlled shutdown, then a long
/// restart): it answers a Produce request with NOT_LEADER_OR_FOLLOWER and a
/// KIP-951 hint naming the new leader, then closes the connection, both
/// read in one turn. The partition, still waiting in the old node's ready
/// queue for its next batches, must follow the hinted leader (as it does
/// when metadata moves it: `forward_moved`); the old node's queue is
/// drained only by a ready connection to it, which never comes. Here the
/// later metadata names the same leader the hint did, so nothing forwarded
/// it and the records waited out the delivery timeout (120 s).
#[test]
fn hinted_leader_is_followed_when_the_old_leader_then_disconnects() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let config = Config {
        linger: ms(0),
        batch_size: 100,
        ..cfg()
    };
    let mut sim = sim_with(config, 2, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    // The controller moved t/0 to node 2; the producer does not know yet.
    sim.cluster.move_leader("t", 0, 2).unwrap();
    // Node 1 answers its next Produce request (NOT_LEADER_OR_FOLLOWER with
    // a hint) and drops the connection at the next one: both reach the
    // producer at the same instant.
    let n = AtomicU32::new(0);
    sim.cluster.set_hook(ApiKey::Produce, move |info| {
        if info.broker_id == 1 && n.fetch_add(1, Ordering::Relaxed) == 1 {
            vec![FaultAction::DropBeforeApply]
        } else {
            vec![]
        }
    });
    let t0 = sim.now;
    let hs: Vec<_> = (0..10u8)
        .map(|i| {
            sim.send("t", Some(0), None, Some(&[i; 60][..]))
                .expect("appended")
        })
        .collect();
    // Node 1 is gone for good once it has read those requests.
    sim.settle();
    stop(&sim, 1);
    sim.drive_until(1_000_000, |s| {
        hs.iter().all(|h| h.try_result().is_some()) || s.now - t0 > ms(60_000)
    });
    for h in &hs {
        h.try_result().expect("a result within 60 s").unwrap();
    }
    assert!(sim.now - t0 < ms(5_000), "{:?}", sim.now - t0);
    assert_eq!(log(&sim, 0).len(), 11);
}

/// `t` deleted and created again with `partitions` partitions (a new
/// topic id: `other` is created first), on one broker.
fn recreated(partitions: i32) -> MockCluster {
    MockCluster::builder()
        .brokers(1)
        .topic("other", 1)
        .topic("t", partitions)
        .auto_create_topics(false)
        .build_unbound()
        .unwrap()
}

/// A sim of `t` with 3 partitions, one record written to each, without
/// idempotence (the clusters the tests switch to know no producer). `t`
/// never goes idle (`metadata.max.idle.ms` an hour): the tests wait out
/// the 300 s periodic refresh and want it to name `t`.
fn three_partitions_written() -> MockSim {
    three_partitions_written_lingering(cfg().linger)
}

/// [`three_partitions_written`] with `linger.ms` `linger`.
fn three_partitions_written_lingering(linger: Duration) -> MockSim {
    let config = Config {
        enable_idempotence: false,
        batch_size: 1024,
        linger,
        metadata_max_idle: ms(3_600_000),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 3);
    for p in 0..3 {
        sim.send("t", Some(p), None, Some(b"w")).unwrap();
    }
    sim.drive();
    sim
}

/// A record of `t` with `partition`, `key`, and a 100-byte value.
fn rec<'a>(partition: Option<i32>, key: Option<&'a [u8]>) -> crate::RecordRef<'a> {
    crate::RecordRef {
        key,
        partition,
        ..record_ref(0, &[5u8; 100])
    }
}

/// A topic deleted and created again with fewer partitions: once metadata
/// says so, a send to a partition the topic no longer has waits for
/// metadata that lists it, up to `max.block.ms`, asking again meanwhile,
/// then fails (`InvalidPartition` with the current count), as the Java
/// client's `waitOnMetadata` does; an async send the same way. The
/// partition table only grew, so the vanished partition kept its old
/// leader and stayed available to senders and the partitioner: the record
/// was accepted, refused by the broker as UNKNOWN_TOPIC_OR_PARTITION and
/// retried until the delivery timeout.
#[test]
fn partition_gone_after_recreation_with_fewer_partitions_fails_sends_after_max_block() {
    let mut sim = three_partitions_written();
    sim.cluster = recreated(2);
    // The periodic refresh (metadata.max.age.ms, 5 min) learns it.
    let m0 = requests(&sim, ApiKey::Metadata);
    sim.run_for(ms(301_000));
    assert!(requests(&sim, ApiKey::Metadata) > m0, "refreshed");
    assert_eq!(sim.shared.partition_count("t"), Some(2));
    let (t0, m1) = (sim.now, requests(&sim, ApiKey::Metadata));
    match sim.send("t", Some(2), None, Some(b"v")) {
        Err(SendError::InvalidPartition {
            partition: 2,
            num_partitions: 2,
            ..
        }) => {}
        Err(e) => panic!("{e:?}"),
        Ok(h) => {
            let t0 = sim.now;
            sim.drive();
            panic!(
                "accepted for a partition the topic no longer has: {:?} after {:?}",
                h.wait(),
                sim.now - t0
            );
        }
    }
    // The sim's send blocks up to 60 s.
    assert!(sim.now - t0 >= ms(60_000), "waited {:?}", sim.now - t0);
    let asked = requests(&sim, ApiKey::Metadata) - m1;
    assert!(asked >= 3, "kept asking while the send waited: {asked}");

    // Async: pending until the core's deadline queue ends the wait.
    let deadline = sim.now + ms(3_000);
    let shared = sim.shared.clone();
    let mut a = shared.append_async(sim.now, deadline);
    let r = rec(Some(2), None);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(a.poll_append(sim.now, &r, &mut cx).is_pending());
    sim.run_for(ms(3_000));
    match a.poll_append(sim.now, &r, &mut cx) {
        std::task::Poll::Ready(Err(SendError::InvalidPartition {
            partition: 2,
            num_partitions: 2,
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
}

/// Records still buffered for a partition the recreated topic no longer
/// has fail as soon as metadata shows the new topic id without it
/// (`UnknownPartition`, never sent), not at their delivery timeout.
#[test]
fn buffered_records_of_a_partition_gone_with_its_topic_fail_at_once() {
    // Lingering 10 s: the record waits in the accumulator.
    let mut sim = three_partitions_written_lingering(ms(10_000));
    let h = sim.send("t", Some(2), None, Some(b"v")).unwrap();
    let kept = sim.send("t", Some(1), None, Some(b"v")).unwrap();
    sim.cluster = recreated(2);
    let t0 = sim.now;
    // A send to another topic asks for metadata, which names `t`'s new id.
    sim.send("other", Some(0), None, Some(b"o")).unwrap();
    sim.settle();
    assert!(sim.now - t0 < ms(1_000), "{:?}", sim.now - t0);
    match h.try_result() {
        Some(Err(DeliveryError::UnknownPartition { partition: 2, .. })) => {}
        other => panic!("{other:?}"),
    }
    assert!(kept.try_result().is_none(), "partition 1 is kept");
    sim.drive();
    assert_eq!(kept.wait().unwrap().partition, 1);
}

/// After the topic shrank, keyed records hash over the partitions it has
/// now and keyless ones stick only to those (the Java client partitions
/// with the current cluster's count), also when they stuck to the last
/// partition, the one that went.
#[test]
fn after_a_shrink_records_land_only_on_listed_partitions() {
    let mut sim = three_partitions_written();
    let mut sticky = Vec::new();
    while sticky.last() != Some(&2) && sticky.len() < 500 {
        let now = sim.now;
        sticky.push(
            sim.shared
                .append(now, rec(None, None), now)
                .unwrap()
                .partition,
        );
    }
    assert_eq!(sticky.last(), Some(&2), "keyless records never went to t/2");
    sim.cluster = recreated(2);
    sim.run_for(ms(301_000));
    assert_eq!(sim.shared.partition_count("t"), Some(2));
    let keys: Vec<String> = (0..200).map(|i| format!("key-{i}")).collect();
    assert!(
        keys.iter()
            .any(|k| crate::partitioner::partition_for_key(k.as_bytes(), 3) == 2),
        "some key hashes to partition 2 of 3"
    );
    let mut handles = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        for r in [rec(None, Some(k.as_bytes())), rec(None, None)] {
            let now = sim.now;
            let o = sim.shared.append(now, r, now).unwrap();
            assert!(
                o.partition < 2,
                "record {i} went to partition {}",
                o.partition
            );
            if let Some(k) = r.key {
                let want = crate::partitioner::partition_for_key(k, 2);
                assert_eq!(o.partition as u32, want, "{k:?}");
            }
            handles.push(o.delivery);
        }
    }
    sim.drive();
    for h in handles {
        assert!(h.wait().unwrap().partition < 2);
    }
}

/// A partition increase seen through a broker that lags behind it: a
/// response lists fewer partitions than are known, then the larger count
/// comes back. A send to an explicit partition meanwhile waits for it (as
/// the Java client does) and goes through once it is listed again; it
/// does not fail at once.
#[test]
fn explicit_send_waits_out_a_broker_lagging_behind_a_partition_increase() {
    let mut sim = three_partitions_written();
    // The next three responses list partitions 0 and 1 only.
    let lie = Fault::lie(ApiKey::Metadata, Lie::PartitionsBelow(2));
    sim.cluster.inject(lie.on_partition("t", 0).times(3));
    sim.run_for(ms(301_000));
    assert_eq!(sim.shared.partition_count("t"), Some(2), "the lag is seen");
    let (t0, m0) = (sim.now, requests(&sim, ApiKey::Metadata));
    let h = sim.send("t", Some(2), None, Some(b"v")).unwrap();
    let asked = requests(&sim, ApiKey::Metadata) - m0;
    assert!(asked >= 2, "waited for metadata listing it: {asked}");
    assert!(sim.now - t0 < ms(60_000), "{:?}", sim.now - t0);
    assert_eq!(sim.shared.partition_count("t"), Some(3));
    sim.drive();
    assert_eq!(h.wait().unwrap().partition, 2);
}

/// [`explicit_send_waits_out_a_broker_lagging_behind_a_partition_increase`]
/// for an async send: pending while metadata lacks the partition, woken
/// and appended once it is listed again.
///
/// Twice: with the lagging metadata listing partitions 0 and 1, and 0
/// only (the partition waited for is then more than one past the end);
/// the I/O thread, parked, is woken to ask for metadata before the send
/// returns `Pending`.
#[test]
fn async_send_waits_out_a_broker_lagging_behind_a_partition_increase() {
    for listed in [2, 1] {
        async_send_waits_for_a_partition_listed_again(listed);
    }
}

fn async_send_waits_for_a_partition_listed_again(listed: i32) {
    use crate::test_wake::CountWake as Count;
    let mut sim = three_partitions_written();
    let lie = Fault::lie(ApiKey::Metadata, Lie::PartitionsBelow(listed));
    let lie = sim.cluster.inject(lie.on_partition("t", 0).always());
    sim.run_for(ms(301_000));
    assert_eq!(sim.shared.partition_count("t"), Some(listed as u32));
    let mut sim = super::async_wait::parked(sim);
    let io_wakes = super::async_wait::counted_io_waker(&sim);
    let count = std::sync::Arc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
    let waker = std::task::Waker::from(count.clone());
    let mut cx = std::task::Context::from_waker(&waker);
    let shared = sim.shared.clone();
    let mut a = shared.append_async(sim.now, sim.now + ms(60_000));
    let r = rec(Some(2), None);
    assert!(a.poll_append(sim.now, &r, &mut cx).is_pending());
    assert_eq!(io_wakes.load(std::sync::atomic::Ordering::SeqCst), 1);
    sim.run_for(ms(5_000));
    assert!(
        a.poll_append(sim.now, &r, &mut cx).is_pending(),
        "still lagging"
    );
    sim.cluster.remove_fault(lie);
    let woken = count.0.load(std::sync::atomic::Ordering::SeqCst);
    sim.run_for(ms(5_000));
    assert!(count.0.load(std::sync::atomic::Ordering::SeqCst) > woken);
    let o = match a.poll_append(sim.now, &r, &mut cx) {
        std::task::Poll::Ready(Ok(o)) => o,
        other => panic!("{other:?}"),
    };
    drop(a);
    assert_eq!(o.partition, 2);
    sim.drive();
    assert_eq!(o.delivery.wait().unwrap().partition, 2);
}

/// [`explicit_send_waits_out_a_broker_lagging_behind_a_partition_increase`]
/// with a real blocking sender: its thread blocks while metadata lacks the
/// partition and goes on once a response lists it again.
#[test]
fn blocked_sender_waits_out_a_broker_lagging_behind_a_partition_increase() {
    let mut sim = three_partitions_written();
    let lie = Fault::lie(ApiKey::Metadata, Lie::PartitionsBelow(2));
    let lie = sim.cluster.inject(lie.on_partition("t", 0).always());
    sim.run_for(ms(301_000));
    assert_eq!(sim.shared.partition_count("t"), Some(2));
    let shared = sim.shared.clone();
    let now = sim.now;
    let sender = std::thread::spawn(move || {
        shared
            .append(now, record_ref(2, b"v"), now + ms(60_000))
            .map(|o| o.delivery)
    });
    // It asks for metadata before it blocks (or appends at once).
    while !sender.is_finished() && sim.shared.notices.with(|n| n.list.len()).0 == 0 {
        std::thread::yield_now();
    }
    sim.run_for(ms(5_000));
    assert!(!sender.is_finished(), "blocked while metadata lacks it");
    sim.cluster.remove_fault(lie);
    for _ in 0..100_000 {
        if sender.is_finished() {
            break;
        }
        sim.run_for(ms(10));
        std::thread::yield_now();
    }
    let h = sender.join().unwrap().expect("appended");
    sim.drive();
    assert_eq!(h.wait().unwrap().partition, 2);
}

/// The topics each metadata request named, in order, from the frames the
/// Sim kept (`held_frames` must be on).
fn metadata_topics(sim: &MockSim) -> Vec<Vec<String>> {
    use kring_protocol::message::decode_request_frame;
    use kring_protocol::messages::RequestKind;
    let frames = sim.held_frames.as_ref().expect("held_frames on");
    frames
        .iter()
        .filter_map(|f| {
            let bytes = f.to_bytes().slice(4..);
            match decode_request_frame(bytes).expect("a request the core encoded") {
                (_, RequestKind::Metadata(m)) => Some(
                    m.topics
                        .expect("a topic list, never all topics")
                        .into_iter()
                        .map(|t| t.name.expect("named"))
                        .collect(),
                ),
                _ => None,
            }
        })
        .collect()
}

/// `metadata.max.idle.ms` 30 s and a refresh every 10 s over topics `t`
/// and `u` (one partition each, one broker), the frames kept.
fn two_topics_refreshed() -> MockSim {
    let config = Config {
        metadata_max_age: ms(10_000),
        metadata_max_idle: ms(30_000),
        ..cfg()
    };
    let mut sim = sim_on(config, cluster(1, 1).topic("u", 1));
    sim.held_frames = Some(Vec::new());
    sim
}

/// Java's `metadata.max.idle.ms`: a topic nothing was sent to for that
/// long is left out of metadata requests, while one still sent to stays;
/// a send to the idle topic brings it back at once: its record goes out
/// and the next metadata request (soon, not at the next periodic refresh)
/// names it again.
#[test]
fn an_idle_topic_is_left_out_of_metadata_requests_until_sent_to_again() {
    let mut sim = two_topics_refreshed();
    for topic in ["t", "u"] {
        let h = sim.send(topic, Some(0), None, Some(b"first")).unwrap();
        sim.drive();
        h.wait().unwrap();
    }
    assert!(
        metadata_topics(&sim)
            .iter()
            .any(|m| m.contains(&"u".into())),
        "u was asked about: {:?}",
        metadata_topics(&sim)
    );
    // `t` is sent to every 5 s for a minute; `u` is not.
    for _ in 0..12 {
        sim.run_for(ms(5_000));
        let h = sim.send("t", Some(0), None, Some(b"more")).unwrap();
        sim.drive();
        h.wait().unwrap();
    }
    let asked = metadata_topics(&sim);
    let last = asked.last().unwrap();
    assert_eq!(last, &["t".to_string()], "u left out: {asked:?}");
    // Refreshes went on naming t alone (u left out from 30–40 s after
    // its last send).
    let without_u = asked.iter().rev().take_while(|m| m == &last).count();
    assert!(without_u >= 2, "{asked:?}");

    let before = asked.len();
    let t0 = sim.now;
    let h = sim.send("u", Some(0), None, Some(b"again")).unwrap();
    sim.drive_until(100_000, |s| {
        h.try_result().is_some() && metadata_topics(s).len() > before
    });
    assert_eq!(h.wait().unwrap().offset, 1, "delivered after the first");
    let asked = metadata_topics(&sim);
    assert!(asked[before].contains(&"u".to_string()), "{asked:?}");
    assert!(sim.now - t0 < ms(2_000), "asked soon: {:?}", sim.now - t0);
    assert_eq!(log(&sim, 0).len(), 13);
    assert_eq!(sim.cluster.records("u", 0).unwrap().len(), 2);
}

/// A topic with a batch still retrying is not idle, however long ago it
/// was sent to: its leader may move, and only metadata would tell.
#[test]
fn a_topic_with_a_batch_retrying_is_not_idle() {
    let mut sim = two_topics_refreshed();
    let h = sim.send("u", Some(0), None, Some(b"first")).unwrap();
    sim.drive();
    h.wait().unwrap();
    let refusal = sim.cluster.inject(
        Fault::error(ApiKey::Produce, ErrorCode::NOT_ENOUGH_REPLICAS)
            .on_partition("u", 0)
            .always(),
    );
    let h = sim.send("u", Some(0), None, Some(b"stuck")).unwrap();
    sim.run_for(ms(80_000));
    assert!(h.try_result().is_none(), "still retrying");
    let asked = metadata_topics(&sim);
    assert!(asked.len() >= 8, "{asked:?}");
    assert!(
        asked
            .iter()
            .rev()
            .take(3)
            .all(|m| m.contains(&"u".to_string())),
        "u named while its batch retries: {asked:?}"
    );
    sim.cluster.remove_fault(refusal);
    sim.drive_until(1_000_000, |_| h.try_result().is_some());
    assert_eq!(h.wait().unwrap().offset, 1);
    // Done: idle 30 s later, and left out.
    sim.run_for(ms(50_000));
    let asked = metadata_topics(&sim);
    assert!(
        !asked.last().unwrap().contains(&"u".to_string()),
        "{asked:?}"
    );
}

/// A sender blocked waiting for a topic's metadata keeps that topic in
/// metadata requests past `metadata.max.idle.ms` (here 5 s, the minimum,
/// with brokers answering UNKNOWN_TOPIC_OR_PARTITION for a minute): the
/// topic is created 20 s in, and the sender goes on.
#[test]
fn a_topic_a_blocked_sender_waits_for_is_not_idle() {
    let config = Config {
        metadata_max_idle: ms(5_000),
        topic_metadata_propagation: ms(60_000),
        max_block: ms(60_000),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    sim.held_frames = Some(Vec::new());
    sim.run_for(ms(10));
    let shared = sim.shared.clone();
    let now = sim.now;
    let sender = std::thread::spawn(move || {
        shared
            .append(
                now,
                crate::RecordRef::plain("later", b"v"),
                now + ms(60_000),
            )
            .map(|o| o.delivery)
    });
    while !sender.is_finished() && sim.shared.notices.with(|n| n.list.len()).0 == 0 {
        std::thread::yield_now();
    }
    sim.run_for(ms(20_000));
    assert!(!sender.is_finished(), "blocked: the topic does not exist");
    sim.cluster.create_topic("later", 1).unwrap();
    let t0 = sim.now;
    while !sender.is_finished() && sim.now - t0 < ms(10_000) {
        sim.run_for(ms(10));
        std::thread::yield_now();
    }
    assert!(
        sender.is_finished(),
        "the topic's metadata came: {:?}",
        metadata_topics(&sim).last()
    );
    let h = sender.join().unwrap().expect("appended");
    sim.drive();
    h.wait().unwrap();
}

/// A topic found missing and then left alone goes idle like any other;
/// created later, the next send to it (which fails at once, the topic
/// being known as missing) asks for it again by name, and the send after
/// that uses it.
#[test]
fn an_idle_missing_topic_is_asked_for_again_when_wanted() {
    let config = Config {
        metadata_max_idle: ms(5_000),
        metadata_max_age: ms(10_000),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    sim.held_frames = Some(Vec::new());
    let missing = |r: Result<crate::DeliveryHandle, SendError>| match r {
        Err(SendError::TopicError { error, .. }) => {
            assert_eq!(error, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
        }
        other => panic!("{other:?}"),
    };
    missing(sim.send("nope", None, None, Some(b"v")));
    sim.run_for(ms(30_000));
    let asked = metadata_topics(&sim);
    assert!(asked.last().unwrap().is_empty(), "nope left out: {asked:?}");

    sim.cluster.create_topic("nope", 2).unwrap();
    missing(sim.send("nope", None, None, Some(b"v")));
    sim.run_for(ms(2_000));
    assert!(
        metadata_topics(&sim).last().unwrap() == &["nope".to_string()],
        "{:?}",
        metadata_topics(&sim)
    );
    let h = sim
        .send("nope", None, None, Some(b"v"))
        .expect("the topic exists now");
    sim.drive();
    h.wait().expect("delivered");
}

/// A topic idle while its partition's leader moved: the next send goes to
/// the leader kring last knew, is redirected, and lands once, in order
/// after the records before it (idempotence on, sequences kept while the
/// topic was idle).
#[test]
fn an_idle_topic_whose_leader_moved_meanwhile_is_delivered_once() {
    let config = Config {
        metadata_max_age: ms(10_000),
        metadata_max_idle: ms(5_000),
        ..cfg()
    };
    let mut sim = sim_on(config, cluster(2, 1));
    sim.held_frames = Some(Vec::new());
    for v in [b"a", b"b"] {
        let h = sim.send("t", Some(0), None, Some(v)).unwrap();
        sim.drive();
        h.wait().unwrap();
    }
    sim.run_for(ms(30_000));
    assert!(
        metadata_topics(&sim).last().unwrap().is_empty(),
        "t idle: {:?}",
        metadata_topics(&sim)
    );
    let leader = sim.cluster.leader("t", 0).unwrap();
    let other = if leader == 1 { 2 } else { 1 };
    sim.cluster.move_leader("t", 0, other).unwrap();
    let h = sim.send("t", Some(0), None, Some(b"c")).unwrap();
    assert_eq!(delivered_within(&mut sim, &h, ms(5_000)).offset, 2);
    let values: Vec<_> = log(&sim, 0).iter().map(|r| r.value.clone()).collect();
    assert_eq!(
        values,
        [
            Some(b"a".to_vec()),
            Some(b"b".to_vec()),
            Some(b"c".to_vec())
        ]
        .map(|v| v.map(bytes::Bytes::from))
    );
}
