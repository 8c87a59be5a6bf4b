//! The transaction coordinator at the wire level: FindCoordinator,
//! InitProducerId with a transactional id, AddPartitionsToTxn and EndTxn,
//! checked against what Kafka 4.x's `TransactionCoordinator` and
//! `KafkaApis` answer (core/src/main/scala/kafka/coordinator/transaction/
//! TransactionCoordinator.scala, `handleInitProducerId`,
//! `handleAddPartitionsToTransaction`, `endTransaction`; the
//! PRODUCER_FENCED → INVALID_PRODUCER_EPOCH mapping by version in
//! KafkaApis). Requests go through `MockCluster::handle` on unbound
//! clusters, whose only time is what the test tells them.

mod common;

use std::time::{Duration, Instant};

use kring_mock::{MockCluster, TxnState};
use kring_protocol::error_code::ErrorCode;
use kring_protocol::messages::find_coordinator::FindCoordinatorRequest;

use common::txn::*;

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code();
const COORDINATOR_NOT_AVAILABLE: i16 = ErrorCode::COORDINATOR_NOT_AVAILABLE.code();
const NOT_COORDINATOR: i16 = ErrorCode::NOT_COORDINATOR.code();
const INVALID_PRODUCER_EPOCH: i16 = ErrorCode::INVALID_PRODUCER_EPOCH.code();
const INVALID_TXN_STATE: i16 = ErrorCode::INVALID_TXN_STATE.code();
const INVALID_PRODUCER_ID_MAPPING: i16 = ErrorCode::INVALID_PRODUCER_ID_MAPPING.code();
const INVALID_TRANSACTION_TIMEOUT: i16 = ErrorCode::INVALID_TRANSACTION_TIMEOUT.code();
const CONCURRENT_TRANSACTIONS: i16 = ErrorCode::CONCURRENT_TRANSACTIONS.code();
const OPERATION_NOT_ATTEMPTED: i16 = ErrorCode::OPERATION_NOT_ATTEMPTED.code();
const INVALID_REQUEST: i16 = ErrorCode::INVALID_REQUEST.code();
const PRODUCER_FENCED: i16 = ErrorCode::PRODUCER_FENCED.code();

fn cluster(brokers: i32) -> MockCluster {
    MockCluster::builder()
        .brokers(brokers)
        .topic("t", 3)
        .build_unbound()
        .unwrap()
}

/// A broker that does not coordinate `id`.
fn other_than(cluster: &MockCluster, id: &str) -> i32 {
    let c = coordinator(cluster, id);
    *cluster.broker_ids().iter().find(|b| **b != c).unwrap()
}

#[test]
fn find_coordinator_names_one_stable_running_broker_per_id() {
    let c = cluster(3);
    let ids: Vec<String> = (0..12).map(|i| format!("txn-{i}")).collect();
    let coords: Vec<i32> = ids.iter().map(|id| coordinator(&c, id)).collect();
    // Stable: every broker answers the same, every time.
    for b in c.broker_ids() {
        for (id, want) in ids.iter().zip(&coords) {
            assert_eq!(find(&c, b, id), (NONE, *want));
        }
    }
    // Spread: twelve ids do not all land on one broker.
    assert!(coords.iter().any(|x| *x != coords[0]), "{coords:?}");
    assert_eq!(c.transaction_coordinator("txn-0"), Some(coords[0]));
    // v4+: every key in `coordinator_keys`, each answered.
    let r = call(
        &c,
        1,
        4,
        &FindCoordinatorRequest {
            key_type: 1,
            coordinator_keys: ids.clone(),
            ..Default::default()
        },
    );
    let got: Vec<(String, i16, i32)> = r
        .coordinators
        .iter()
        .map(|k| (k.key.clone(), k.error_code, k.node_id))
        .collect();
    let want: Vec<(String, i16, i32)> = ids
        .iter()
        .zip(&coords)
        .map(|(id, n)| (id.clone(), NONE, *n))
        .collect();
    assert_eq!(got, want);
    // Its broker stopped: COORDINATOR_NOT_AVAILABLE, from any other broker.
    let stopped = coords[0];
    let asker = other_than(&c, "txn-0");
    c.stop_broker(stopped).unwrap();
    assert_eq!(find(&c, asker, "txn-0"), (COORDINATOR_NOT_AVAILABLE, -1));
    c.start_broker(stopped).unwrap();
    assert_eq!(find(&c, asker, "txn-0"), (NONE, stopped));
}

#[test]
fn a_moved_coordinator_takes_the_state_and_the_old_one_answers_not_coordinator() {
    let c = cluster(3);
    let id = "mover";
    let pe = init(&c, id);
    assert_eq!(add(&c, id, pe, &[("t", 0)]), NONE);
    let old = coordinator(&c, id);
    let new = other_than(&c, id);
    c.move_transaction_coordinator(id, new).unwrap();
    assert_eq!(coordinator(&c, id), new);
    assert_eq!(c.transaction_coordinator(id), Some(new));
    // The old coordinator refuses every coordinator API for the id.
    assert_eq!(
        add_on(&c, old, 3, id, pe, &[("t", 1)])[0].2,
        NOT_COORDINATOR
    );
    assert_eq!(end_on(&c, old, 4, id, pe, true), NOT_COORDINATOR);
    assert_eq!(init_on(&c, old, 5, id, 60_000, None).0, NOT_COORDINATOR);
    // The new one carries on with the same transaction.
    assert_eq!(add_on(&c, new, 3, id, pe, &[("t", 1)])[0].2, NONE);
    let info = c.transaction_state(id).unwrap();
    assert_eq!(info.state, TxnState::Ongoing);
    assert_eq!(
        info.partitions,
        [("t".to_string(), 0), ("t".to_string(), 1)]
    );
    assert_eq!(info.coordinator, new);
    assert_eq!(end_on(&c, new, 4, id, pe, true), NONE);
    assert_eq!(
        c.move_transaction_coordinator(id, 99)
            .unwrap_err()
            .to_string(),
        "no broker with id 99"
    );
    // Its new broker stopped: not available until it is moved again.
    c.stop_broker(new).unwrap();
    assert_eq!(find(&c, old, id), (COORDINATOR_NOT_AVAILABLE, -1));
    c.move_transaction_coordinator(id, old).unwrap();
    assert_eq!(find(&c, old, id), (NONE, old));
}

#[test]
fn init_producer_id_keeps_the_producer_id_and_bumps_the_epoch() {
    let c = cluster(2);
    let id = "app";
    let coord = coordinator(&c, id);
    let (err, pid, epoch) = init_on(&c, coord, 5, id, 60_000, None);
    assert_eq!((err, epoch), (NONE, 0));
    for want in 1..4 {
        assert_eq!(init_on(&c, coord, 5, id, 60_000, None), (NONE, pid, want));
    }
    // Another id: another producer id.
    assert_ne!(init(&c, "other").0, pid);
    let info = c.transaction_state(id).unwrap();
    assert_eq!(
        (
            info.state,
            info.producer_id,
            info.producer_epoch,
            info.timeout_ms
        ),
        (TxnState::Empty, pid, 3, 60_000)
    );
    assert!(c.transaction_state("never").is_none());
    // Request-level refusals, in Kafka's order.
    let other = other_than(&c, id);
    assert_eq!(init_on(&c, other, 5, id, 60_000, None).0, NOT_COORDINATOR);
    assert_eq!(init_on(&c, coord, 5, "", 60_000, None).0, INVALID_REQUEST);
    assert_eq!(
        init_on(&c, coord, 5, id, 0, None).0,
        INVALID_TRANSACTION_TIMEOUT
    );
    assert_eq!(
        init_on(&c, other, 5, id, 900_001, None).0,
        INVALID_TRANSACTION_TIMEOUT
    );
    assert_eq!(init_on(&c, coord, 5, id, 900_000, None), (NONE, pid, 4));
    // Every version serves it.
    for v in 0..=5 {
        assert_eq!(init_on(&c, coord, v, id, 60_000, None).0, NONE, "v{v}");
    }
}

#[test]
fn a_new_instance_fences_the_old_epoch_on_every_api() {
    let c = cluster(2);
    let id = "fenced";
    let old = init(&c, id);
    let new = init(&c, id);
    assert_eq!(new, (old.0, old.1 + 1));
    let coord = coordinator(&c, id);
    for (v, want) in [
        (0, INVALID_PRODUCER_EPOCH),
        (1, INVALID_PRODUCER_EPOCH),
        (2, PRODUCER_FENCED),
        (3, PRODUCER_FENCED),
    ] {
        assert_eq!(
            add_on(&c, coord, v, id, old, &[("t", 0)])[0].2,
            want,
            "v{v}"
        );
    }
    assert_eq!(add(&c, id, new, &[("t", 0)]), NONE);
    for (v, want) in [
        (0, INVALID_PRODUCER_EPOCH),
        (1, INVALID_PRODUCER_EPOCH),
        (2, PRODUCER_FENCED),
        (4, PRODUCER_FENCED),
    ] {
        assert_eq!(end_on(&c, coord, v, id, old, true), want, "v{v}");
    }
    // A future epoch is no better (transaction version 1: exactly the
    // current one).
    assert_eq!(end(&c, id, (new.0, new.1 + 1), true), PRODUCER_FENCED);
    // The new instance's transaction is untouched by all that.
    assert_eq!(c.transaction_state(id).unwrap().state, TxnState::Ongoing);
    assert_eq!(end(&c, id, new, true), NONE);
}

#[test]
fn kip_360_bumps_the_current_epoch_and_fences_older_ones() {
    let c = cluster(1);
    let id = "resume";
    let (pid, e0) = init(&c, id);
    let (pid, e1) = {
        let (err, p, e) = init_on(&c, 1, 5, id, 60_000, Some((pid, e0)));
        assert_eq!(err, NONE);
        (p, e)
    };
    assert_eq!(e1, e0 + 1);
    // A retry of that bump (its answer was lost) gets the same epoch.
    assert_eq!(
        init_on(&c, 1, 5, id, 60_000, Some((pid, e0))),
        (NONE, pid, e1)
    );
    // The current epoch bumps again.
    assert_eq!(
        init_on(&c, 1, 4, id, 60_000, Some((pid, e1))),
        (NONE, pid, e1 + 1)
    );
    // Now e0 is neither current nor the one just bumped from: fenced
    // (INVALID_PRODUCER_EPOCH before v4), and so is another producer id.
    assert_eq!(
        init_on(&c, 1, 4, id, 60_000, Some((pid, e0))).0,
        PRODUCER_FENCED
    );
    assert_eq!(
        init_on(&c, 1, 3, id, 60_000, Some((pid, e0))).0,
        INVALID_PRODUCER_EPOCH
    );
    assert_eq!(
        init_on(&c, 1, 5, id, 60_000, Some((pid + 1, e1 + 1))).0,
        PRODUCER_FENCED
    );
    // Half a pair is malformed.
    assert_eq!(
        init_on(&c, 1, 5, id, 60_000, Some((pid, -1))).0,
        INVALID_REQUEST
    );
    assert_eq!(c.transaction_state(id).unwrap().producer_epoch, e1 + 1);
    // A KIP-360 init for an id the coordinator never saw is a first init.
    assert_eq!(init_on(&c, 1, 5, "fresh", 60_000, Some((77, 3))).2, 0);
}

#[test]
fn a_new_init_aborts_the_ongoing_transaction_before_answering() {
    let c = cluster(1);
    let id = "zombie";
    let old = init(&c, id);
    assert_eq!(add(&c, id, old, &[("t", 0), ("t", 1)]), NONE);
    assert_eq!(produce_txn(&c, id, old, ("t", 0), 0, &["doomed"]), NONE);
    // Kafka fences and aborts, then answers CONCURRENT_TRANSACTIONS.
    assert_eq!(
        init_on(&c, 1, 5, id, 60_000, None).0,
        CONCURRENT_TRANSACTIONS
    );
    let info = c.transaction_state(id).unwrap();
    assert_eq!(
        (info.state, info.producer_epoch),
        (TxnState::CompleteAbort, old.1 + 1)
    );
    assert!(info.partitions.is_empty());
    // ABORT markers in both partitions, under the fencing epoch.
    for p in 0..2 {
        let last = c.batches("t", p).unwrap().pop().unwrap();
        assert!(last.header.is_control(), "t/{p}");
        assert_eq!(last.header.producer_epoch, old.1 + 1);
    }
    // The retry bumps again.
    assert_eq!(
        init_on(&c, 1, 5, id, 60_000, None),
        (NONE, old.0, old.1 + 2)
    );
    assert!(committed_values(&c, "t", 0).is_empty());
    assert_eq!(all_values(&c, "t", 0), ["doomed"]);
    // The zombie can neither write nor commit.
    assert_eq!(end(&c, id, old, true), PRODUCER_FENCED);
    assert_eq!(
        produce_txn(&c, id, old, ("t", 0), 1, &["late"]),
        INVALID_PRODUCER_EPOCH
    );
}

#[test]
fn a_kip_360_init_during_a_transaction_aborts_it_and_its_retry_is_fenced() {
    // Kafka's fence resets the "last epoch", so the bump's retry no longer
    // matches: the client learns it was fenced.
    let c = cluster(1);
    let id = "bump";
    let pe = init(&c, id);
    assert_eq!(add(&c, id, pe, &[("t", 2)]), NONE);
    assert_eq!(
        init_on(&c, 1, 5, id, 60_000, Some(pe)).0,
        CONCURRENT_TRANSACTIONS
    );
    assert_eq!(init_on(&c, 1, 5, id, 60_000, Some(pe)).0, PRODUCER_FENCED);
    assert_eq!(
        c.transaction_state(id).unwrap().state,
        TxnState::CompleteAbort
    );
}

#[test]
fn add_partitions_begins_the_transaction_or_refuses_it_whole() {
    let c = cluster(2);
    let id = "adder";
    let pe = init(&c, id);
    let coord = coordinator(&c, id);
    // An unknown topic or partition: its error, the others not attempted,
    // nothing added.
    let r = add_on(&c, coord, 3, id, pe, &[("t", 0), ("nope", 0), ("t", 9)]);
    assert_eq!(
        r,
        [
            ("t".to_string(), 0, OPERATION_NOT_ATTEMPTED),
            ("t".to_string(), 9, UNKNOWN_TOPIC_OR_PARTITION),
            ("nope".to_string(), 0, UNKNOWN_TOPIC_OR_PARTITION),
        ]
    );
    assert_eq!(c.transaction_state(id).unwrap().state, TxnState::Empty);
    // Wrong producer id, unknown transactional id, empty id, not the
    // coordinator.
    assert_eq!(
        add(&c, id, (pe.0 + 1, pe.1), &[("t", 0)]),
        INVALID_PRODUCER_ID_MAPPING
    );
    assert_eq!(
        add_on(&c, coord, 3, "unknown", pe, &[("t", 0)])[0].2,
        if coordinator(&c, "unknown") == coord {
            INVALID_PRODUCER_ID_MAPPING
        } else {
            NOT_COORDINATOR
        }
    );
    assert_eq!(
        add_on(&c, coord, 3, "", pe, &[("t", 0)])[0].2,
        INVALID_REQUEST
    );
    let other = other_than(&c, id);
    assert_eq!(
        add_on(&c, other, 3, id, pe, &[("t", 0)])[0].2,
        NOT_COORDINATOR
    );
    // Every version adds; adding twice is fine.
    for v in 0..=3 {
        assert_eq!(
            add_on(&c, coord, v, id, pe, &[("t", i32::from(v) % 3)])[0].2,
            NONE,
            "v{v}"
        );
    }
    let info = c.transaction_state(id).unwrap();
    assert_eq!(info.state, TxnState::Ongoing);
    assert_eq!(info.partitions.len(), 3);
}

#[test]
fn end_txn_follows_kafkas_state_rules() {
    let c = cluster(1);
    let id = "ender";
    let pe = init(&c, id);
    // Nothing begun.
    assert_eq!(end(&c, id, pe, true), INVALID_TXN_STATE);
    assert_eq!(end(&c, id, pe, false), INVALID_TXN_STATE);
    assert_eq!(end(&c, "nobody", pe, true), INVALID_PRODUCER_ID_MAPPING);
    assert_eq!(
        end(&c, id, (pe.0 + 1, pe.1), true),
        INVALID_PRODUCER_ID_MAPPING
    );
    assert_eq!(end_on(&c, 1, 4, "", pe, true), INVALID_REQUEST);
    // Commit, then its retry: NONE, no second marker; abort: invalid.
    assert_eq!(add(&c, id, pe, &[("t", 0)]), NONE);
    assert_eq!(end(&c, id, pe, true), NONE);
    let markers = c.batches("t", 0).unwrap().len();
    assert_eq!(markers, 1);
    assert_eq!(end(&c, id, pe, true), NONE);
    assert_eq!(c.batches("t", 0).unwrap().len(), markers);
    assert_eq!(end(&c, id, pe, false), INVALID_TXN_STATE);
    assert_eq!(
        c.transaction_state(id).unwrap().state,
        TxnState::CompleteCommit
    );
    // Abort, then its retry, then commit.
    assert_eq!(add(&c, id, pe, &[("t", 0)]), NONE);
    assert_eq!(end(&c, id, pe, false), NONE);
    assert_eq!(end(&c, id, pe, false), NONE);
    assert_eq!(end(&c, id, pe, true), INVALID_TXN_STATE);
    assert_eq!(
        c.transaction_state(id).unwrap().state,
        TxnState::CompleteAbort
    );
    // Every version ends.
    for v in 0..=4 {
        assert_eq!(add(&c, id, pe, &[("t", 1)]), NONE);
        assert_eq!(end_on(&c, 1, v, id, pe, v % 2 == 0), NONE, "v{v}");
    }
}

#[test]
fn held_markers_make_the_coordinator_answer_concurrent_transactions() {
    let c = cluster(1);
    let id = "slow";
    let pe = init(&c, id);
    assert_eq!(add(&c, id, pe, &[("t", 0)]), NONE);
    assert_eq!(produce_txn(&c, id, pe, ("t", 0), 0, &["a"]), NONE);
    c.hold_transaction_markers(true);
    assert_eq!(end(&c, id, pe, true), NONE);
    assert_eq!(
        c.transaction_state(id).unwrap().state,
        TxnState::PrepareCommit
    );
    assert_eq!(c.last_stable_offset("t", 0), Some(0));
    // The retry waits, the opposite is invalid, the next transaction and
    // a new instance wait.
    assert_eq!(end(&c, id, pe, true), CONCURRENT_TRANSACTIONS);
    assert_eq!(end(&c, id, pe, false), INVALID_TXN_STATE);
    assert_eq!(add(&c, id, pe, &[("t", 1)]), CONCURRENT_TRANSACTIONS);
    assert_eq!(
        init_on(&c, 1, 5, id, 60_000, None).0,
        CONCURRENT_TRANSACTIONS
    );
    assert!(committed_values(&c, "t", 0).is_empty());
    // Released: the markers land and the transaction completes.
    c.hold_transaction_markers(false);
    assert_eq!(
        c.transaction_state(id).unwrap().state,
        TxnState::CompleteCommit
    );
    assert_eq!(committed_values(&c, "t", 0), ["a"]);
    assert_eq!(end(&c, id, pe, true), NONE);
    assert_eq!(add(&c, id, pe, &[("t", 1)]), NONE);
}

#[test]
fn a_transaction_past_its_timeout_is_aborted_on_the_clusters_clock() {
    let c = cluster(1);
    let id = "sleepy";
    let t0 = Instant::now();
    c.advance_clock_to(t0);
    let coord = coordinator(&c, id);
    let (err, pid, epoch) = init_on(&c, coord, 5, id, 1_000, None);
    assert_eq!(err, NONE);
    // The timeout runs from the first AddPartitionsToTxn, not the init.
    c.advance_clock_to(t0 + Duration::from_secs(5));
    assert_eq!(add(&c, id, (pid, epoch), &[("t", 0)]), NONE);
    assert_eq!(produce_txn(&c, id, (pid, epoch), ("t", 0), 0, &["x"]), NONE);
    c.advance_clock_to(t0 + Duration::from_millis(6_000));
    assert_eq!(c.transaction_state(id).unwrap().state, TxnState::Ongoing);
    // Older than its timeout: aborted with the epoch bumped.
    c.advance_clock_to(t0 + Duration::from_millis(6_001));
    let info = c.transaction_state(id).unwrap();
    assert_eq!(
        (info.state, info.producer_epoch),
        (TxnState::CompleteAbort, epoch + 1)
    );
    assert_eq!(c.last_stable_offset("t", 0), Some(2));
    assert!(committed_values(&c, "t", 0).is_empty());
    // The producer learns it was fenced.
    assert_eq!(end(&c, id, (pid, epoch), true), PRODUCER_FENCED);
    assert_eq!(
        init_on(&c, coord, 5, id, 1_000, None),
        (NONE, pid, epoch + 2)
    );
}

#[test]
fn the_sasl_screens_time_drives_the_timeout_too() {
    // A harness that screens every request (kring-core's Sim) keeps the
    // coordinator on its clock without calling anything else.
    let c = cluster(1);
    let id = "screened";
    let t0 = Instant::now();
    let pe = init(&c, id);
    c.advance_clock_to(t0);
    assert_eq!(add(&c, id, pe, &[("t", 0)]), NONE);
    let mut session = kring_mock::SaslSession::default();
    let _ = c.screen_sasl(&mut session, t0 + Duration::from_secs(61), &[0, 0]);
    assert_eq!(
        c.transaction_state(id).unwrap().state,
        TxnState::CompleteAbort
    );
}

#[test]
fn an_exhausted_epoch_rotates_to_a_new_producer_id() {
    // Kafka's `isEpochExhausted` (epoch ≥ i16::MAX - 1): the next init
    // gets a new producer id at epoch 0.
    let c = cluster(1);
    let id = "old-timer";
    let (pid, _) = init(&c, id);
    let mut last = (pid, 0);
    while last.1 < i16::MAX - 1 {
        let (err, p, e) = init_on(&c, 1, 5, id, 60_000, None);
        assert_eq!((err, p), (NONE, pid));
        last = (p, e);
    }
    let (err, rotated, epoch) = init_on(&c, 1, 5, id, 60_000, Some(last));
    assert_eq!(err, NONE);
    assert_ne!(rotated, pid);
    assert_eq!(epoch, 0);
    // The old producer id is fenced for anything but a retry of that.
    assert_eq!(
        init_on(&c, 1, 5, id, 60_000, Some(last)),
        (NONE, rotated, 0)
    );
    assert_eq!(add(&c, id, last, &[("t", 0)]), INVALID_PRODUCER_ID_MAPPING);
    assert_eq!(add(&c, id, (rotated, 0), &[("t", 0)]), NONE);
}
