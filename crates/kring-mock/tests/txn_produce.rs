//! Transactional records at the wire level: Produce's KIP-890 part 1
//! verification (Kafka 4.x `ReplicaManager.appendRecords` and
//! `AddPartitionsToTxnManager`: INVALID_TXN_STATE up to v10,
//! TRANSACTION_ABORTABLE from v11, coordinator errors as
//! NOT_ENOUGH_REPLICAS), markers, what read_committed readers see
//! (`MockCluster::read_committed` and Fetch isolation level 1), fault
//! injection on the transaction APIs, and one transaction over TCP.

mod common;

use kring_mock::{Fault, MockCluster, TxnState};
use kring_protocol::error_code::ErrorCode;
use kring_protocol::messages::end_txn::EndTxnRequest;
use kring_protocol::messages::init_producer_id::InitProducerIdRequest;
use kring_protocol::messages::ApiKey;
use kring_protocol::record::{decode_batches, DecodeOptions};

use common::txn::*;
use common::Client;

const NONE: i16 = 0;
const INVALID_TXN_STATE: i16 = ErrorCode::INVALID_TXN_STATE.code();
const TRANSACTION_ABORTABLE: i16 = ErrorCode::TRANSACTION_ABORTABLE.code();
const INVALID_PRODUCER_EPOCH: i16 = ErrorCode::INVALID_PRODUCER_EPOCH.code();
const INVALID_PRODUCER_ID_MAPPING: i16 = ErrorCode::INVALID_PRODUCER_ID_MAPPING.code();
const NOT_ENOUGH_REPLICAS: i16 = ErrorCode::NOT_ENOUGH_REPLICAS.code();
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 =
    ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED.code();
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER.code();
const OPERATION_NOT_ATTEMPTED: i16 = ErrorCode::OPERATION_NOT_ATTEMPTED.code();

fn cluster(brokers: i32) -> MockCluster {
    MockCluster::builder()
        .brokers(brokers)
        .topic("t", 2)
        .build_unbound()
        .unwrap()
}

#[test]
fn produce_verifies_the_partition_was_added() {
    let c = cluster(2);
    let id = "verify";
    // The coordinator is not t/0's leader, so the leader can ask it while
    // it is stopped.
    let leader = c.leader("t", 0).unwrap();
    c.move_transaction_coordinator(id, 3 - leader).unwrap();
    let pe = init(&c, id);
    let batch = |seq| values_batch(&["v"], (pe.0, pe.1, seq), true);
    // Not added: INVALID_TXN_STATE up to v10, TRANSACTION_ABORTABLE on v11.
    assert_eq!(
        produce_on(&c, 10, Some(id), ("t", 0), batch(0)).0,
        INVALID_TXN_STATE
    );
    assert_eq!(
        produce_on(&c, 3, Some(id), ("t", 0), batch(0)).0,
        INVALID_TXN_STATE
    );
    assert_eq!(
        produce_on(&c, 11, Some(id), ("t", 0), batch(0)).0,
        TRANSACTION_ABORTABLE
    );
    assert_eq!(add(&c, id, pe, &[("t", 0)]), NONE);
    // Added, but t/1 is not.
    assert_eq!(
        produce_txn(&c, id, pe, ("t", 1), 0, &["v"]),
        TRANSACTION_ABORTABLE
    );
    // No transactional id with transactional records: refused whole.
    assert_eq!(
        produce_on(&c, 11, None, ("t", 0), batch(0)).0,
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    );
    // Another producer id, an unknown transactional id, another epoch.
    let other = values_batch(&["v"], (pe.0 + 100, pe.1, 0), true);
    assert_eq!(
        produce_on(&c, 11, Some(id), ("t", 0), other).0,
        INVALID_PRODUCER_ID_MAPPING
    );
    assert_eq!(
        produce_on(&c, 11, Some("unknown"), ("t", 0), batch(0)).0,
        INVALID_PRODUCER_ID_MAPPING
    );
    let stale = values_batch(&["v"], (pe.0, pe.1 + 1, 0), true);
    assert_eq!(
        produce_on(&c, 11, Some(id), ("t", 0), stale).0,
        INVALID_PRODUCER_EPOCH
    );
    // The coordinator stopped: a retriable NOT_ENOUGH_REPLICAS.
    c.stop_broker(3 - leader).unwrap();
    assert_eq!(
        produce_on(&c, 11, Some(id), ("t", 0), batch(0)).0,
        NOT_ENOUGH_REPLICAS
    );
    c.start_broker(3 - leader).unwrap();
    // Nothing of that landed; now it goes in.
    assert_eq!(c.high_watermark("t", 0), Some(0));
    assert_eq!(produce_on(&c, 11, Some(id), ("t", 0), batch(0)), (NONE, 0));
    // Later batches of the open transaction are not verified again; the
    // idempotent checks still apply.
    assert_eq!(produce_txn(&c, id, pe, ("t", 0), 1, &["w"]), NONE);
    assert_eq!(
        produce_txn(&c, id, pe, ("t", 0), 5, &["x"]),
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    // A non-transactional batch of the same producer while its
    // transaction is open here: INVALID_TXN_STATE.
    let plain = values_batch(&["p"], (pe.0, pe.1, 2), false);
    assert_eq!(
        produce_on(&c, 11, None, ("t", 0), plain).0,
        INVALID_TXN_STATE
    );
    let stored = c.records("t", 0).unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|r| r.producer_id == pe.0));
}

#[test]
fn a_transaction_being_completed_is_not_enough_replicas_for_produce() {
    let c = cluster(1);
    let id = "held";
    let pe = init(&c, id);
    assert_eq!(add(&c, id, pe, &[("t", 0), ("t", 1)]), NONE);
    assert_eq!(produce_txn(&c, id, pe, ("t", 0), 0, &["a"]), NONE);
    c.hold_transaction_markers(true);
    assert_eq!(end(&c, id, pe, true), NONE);
    // t/1 has no open transaction of the producer: verified, and the
    // coordinator is busy.
    assert_eq!(
        produce_txn(&c, id, pe, ("t", 1), 1, &["b"]),
        NOT_ENOUGH_REPLICAS
    );
    c.hold_transaction_markers(false);
    assert_eq!(
        c.transaction_state(id).unwrap().state,
        TxnState::CompleteCommit
    );
}

/// ListOffsets v7 LATEST of t/0 at `isolation`.
fn latest(c: &MockCluster, isolation: i8) -> i64 {
    use kring_protocol::messages::list_offsets::{
        ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
    };
    let req = ListOffsetsRequest {
        replica_id: -1,
        isolation_level: isolation,
        topics: vec![ListOffsetsTopic {
            name: "t".into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                current_leader_epoch: -1,
                timestamp: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = call(c, c.leader("t", 0).unwrap(), 7, &req);
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

#[test]
fn commit_makes_records_visible_to_read_committed() {
    let c = cluster(1);
    let id = "committer";
    let pe = init(&c, id);
    assert_eq!(produce_plain(&c, ("t", 0), &["before"]), NONE);
    assert_eq!(add(&c, id, pe, &[("t", 0), ("t", 1)]), NONE);
    assert_eq!(produce_txn(&c, id, pe, ("t", 0), 0, &["a", "b"]), NONE);
    assert_eq!(produce_plain(&c, ("t", 0), &["during"]), NONE);
    assert_eq!(produce_txn(&c, id, pe, ("t", 0), 2, &["c"]), NONE);
    // Open: read_committed stops at the transaction's first offset.
    assert_eq!(c.last_stable_offset("t", 0), Some(1));
    assert_eq!(c.high_watermark("t", 0), Some(5));
    assert_eq!(committed_values(&c, "t", 0), ["before"]);
    assert_eq!(all_values(&c, "t", 0), ["before", "a", "b", "during", "c"]);
    // ListOffsets LATEST: the LSO for read_committed, else the HW.
    assert_eq!((latest(&c, 1), latest(&c, 0)), (1, 5));
    assert_eq!(end(&c, id, pe, true), NONE);
    assert_eq!((latest(&c, 1), latest(&c, 0)), (6, 6));
    assert_eq!(
        committed_values(&c, "t", 0),
        ["before", "a", "b", "during", "c"]
    );
    assert_eq!(c.last_stable_offset("t", 0), Some(6));
    // A COMMIT marker in each partition of the transaction, t/1 included
    // though nothing was written there.
    for (p, offset) in [(0, 5), (1, 0)] {
        let m = c.batches("t", p).unwrap().pop().unwrap();
        assert_eq!(m.base_offset, offset);
        assert!(m.header.is_control() && m.header.is_transactional());
        assert_eq!((m.header.producer_id, m.header.producer_epoch), pe);
        assert_eq!(m.header.base_sequence, -1);
        let b = decode_batches(m.bytes.clone(), &DecodeOptions::default())
            .unwrap()
            .remove(0);
        let r = b.records(&DecodeOptions::default()).unwrap().remove(0);
        assert_eq!(r.key.as_deref(), Some(&[0u8, 0, 0, 1][..]), "COMMIT key");
    }
    assert!(c.read_committed("t", 1).unwrap().is_empty());
    // The next transaction continues the producer's sequences.
    assert_eq!(add(&c, id, pe, &[("t", 0)]), NONE);
    assert_eq!(produce_txn(&c, id, pe, ("t", 0), 3, &["d"]), NONE);
    assert_eq!(end(&c, id, pe, true), NONE);
    assert_eq!(
        committed_values(&c, "t", 0).last().map(String::as_str),
        Some("d")
    );
}

#[test]
fn abort_hides_records_from_read_committed_only() {
    let c = cluster(1);
    let id = "aborter";
    let pe = init(&c, id);
    assert_eq!(add(&c, id, pe, &[("t", 0)]), NONE);
    assert_eq!(produce_txn(&c, id, pe, ("t", 0), 0, &["x", "y"]), NONE);
    assert_eq!(produce_plain(&c, ("t", 0), &["plain"]), NONE);
    assert_eq!(end(&c, id, pe, false), NONE);
    assert_eq!(committed_values(&c, "t", 0), ["plain"]);
    assert_eq!(all_values(&c, "t", 0), ["x", "y", "plain"]);
    let m = c.batches("t", 0).unwrap().pop().unwrap();
    let b = decode_batches(m.bytes.clone(), &DecodeOptions::default())
        .unwrap()
        .remove(0);
    let r = b.records(&DecodeOptions::default()).unwrap().remove(0);
    assert_eq!(r.key.as_deref(), Some(&[0u8, 0, 0, 0][..]), "ABORT key");
    // A committed transaction after it is visible, the aborted one stays
    // hidden.
    assert_eq!(add(&c, id, pe, &[("t", 0)]), NONE);
    assert_eq!(produce_txn(&c, id, pe, ("t", 0), 2, &["z"]), NONE);
    assert_eq!(end(&c, id, pe, true), NONE);
    assert_eq!(committed_values(&c, "t", 0), ["plain", "z"]);
}

#[test]
fn fetch_read_committed_stops_at_the_lso_and_lists_aborted_transactions() {
    let c = cluster(1);
    let (a, b) = ("fa", "fb");
    let pa = init(&c, a);
    let pb = init(&c, b);
    assert_eq!(add(&c, a, pa, &[("t", 0)]), NONE);
    assert_eq!(add(&c, b, pb, &[("t", 0)]), NONE);
    assert_eq!(produce_txn(&c, a, pa, ("t", 0), 0, &["a0"]), NONE); // 0
    assert_eq!(produce_txn(&c, b, pb, ("t", 0), 0, &["b0"]), NONE); // 1
    assert_eq!(end(&c, a, pa, false), NONE); // marker at 2
                                             // b is open from 1: read_committed gets only offset 0's batch.
    let p = fetch(&c, "t", 0, 0, 1);
    assert_eq!((p.high_watermark, p.last_stable_offset), (3, 1));
    let got = decode_batches(p.records.clone().unwrap(), &DecodeOptions::default()).unwrap();
    assert_eq!(got.len(), 1);
    let aborted: Vec<(i64, i64)> = p
        .aborted_transactions
        .unwrap()
        .iter()
        .map(|t| (t.producer_id, t.first_offset))
        .collect();
    assert_eq!(aborted, [(pa.0, 0)]);
    // read_uncommitted: everything, markers included, no aborted list.
    let p = fetch(&c, "t", 0, 0, 0);
    assert_eq!(p.last_stable_offset, 1);
    assert!(p.aborted_transactions.is_none());
    let got = decode_batches(p.records.clone().unwrap(), &DecodeOptions::default()).unwrap();
    assert_eq!(got.len(), 3);
    // b commits: the rest is stable; from offset 1 a's abort is not listed.
    assert_eq!(end(&c, b, pb, true), NONE);
    let p = fetch(&c, "t", 0, 1, 1);
    assert_eq!(p.last_stable_offset, 4);
    let got = decode_batches(p.records.clone().unwrap(), &DecodeOptions::default()).unwrap();
    assert_eq!(got.len(), 3, "b0, a's marker, b's marker");
    assert_eq!(
        p.aborted_transactions.unwrap().len(),
        1,
        "a's abort ends at 2, inside [1, 4)"
    );
    assert_eq!(committed_values(&c, "t", 0), ["b0"]);
    let p = fetch(&c, "t", 0, 3, 1);
    assert!(p.aborted_transactions.unwrap().is_empty());
}

#[test]
fn faults_and_hooks_reach_the_transaction_apis() {
    let c = cluster(1);
    let id = "faulty";
    let pe = init(&c, id);
    // InitProducerId: an injected error answers instead.
    c.inject(Fault::error(
        ApiKey::InitProducerId,
        ErrorCode::NOT_COORDINATOR,
    ));
    assert_eq!(
        init_on(&c, 1, 5, id, 60_000, None).0,
        ErrorCode::NOT_COORDINATOR.code()
    );
    // AddPartitionsToTxn: a partition's injected error stops the whole
    // request, as Kafka's pre-checks do.
    c.inject(
        Fault::error(
            ApiKey::AddPartitionsToTxn,
            ErrorCode::TOPIC_AUTHORIZATION_FAILED,
        )
        .on_partition("t", 1),
    );
    let r = add_on(&c, 1, 3, id, pe, &[("t", 0), ("t", 1)]);
    assert_eq!(
        r.iter().map(|x| x.2).collect::<Vec<_>>(),
        [
            OPERATION_NOT_ATTEMPTED,
            ErrorCode::TOPIC_AUTHORIZATION_FAILED.code()
        ]
    );
    assert_eq!(c.transaction_state(id).unwrap().state, TxnState::Empty);
    c.inject(Fault::error(
        ApiKey::AddPartitionsToTxn,
        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
    ));
    assert_eq!(
        add(&c, id, pe, &[("t", 0), ("t", 1)]),
        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS.code()
    );
    assert_eq!(add(&c, id, pe, &[("t", 0)]), NONE);
    // EndTxn: a hook fails the first request; nothing is ended.
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let s = seen.clone();
    c.set_hook(ApiKey::EndTxn, move |info| {
        assert_eq!(info.api_key, 26);
        if s.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            vec![kring_mock::FaultAction::Error(
                ErrorCode::CONCURRENT_TRANSACTIONS.code(),
            )]
        } else {
            Vec::new()
        }
    });
    assert_eq!(
        end(&c, id, pe, true),
        ErrorCode::CONCURRENT_TRANSACTIONS.code()
    );
    assert_eq!(c.transaction_state(id).unwrap().state, TxnState::Ongoing);
    assert_eq!(end(&c, id, pe, true), NONE);
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(c.request_count(ApiKey::EndTxn.key()), 2);
    // A version cap narrows what is served.
    c.set_max_version(ApiKey::EndTxn, Some(1));
    let mut buf = Vec::new();
    kring_protocol::message::encode_request(
        &mut buf,
        1,
        None,
        3,
        &EndTxnRequest {
            transactional_id: id.into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(matches!(
        c.handle(1, bytes::Bytes::from(buf).slice(4..)),
        kring_mock::Step::Close
    ));
}

#[test]
fn a_transaction_over_tcp() {
    let c = MockCluster::builder()
        .brokers(2)
        .topic("t", 1)
        .build()
        .unwrap();
    let id = "tcp";
    let coord = c.transaction_coordinator(id).unwrap();
    let mut cl = Client::connect(c.broker_addr(coord).unwrap());
    let r = cl.call(
        4,
        &InitProducerIdRequest {
            transactional_id: Some(id.into()),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        },
    );
    assert_eq!(r.error_code, 0);
    let pe = (r.producer_id, r.producer_epoch);
    let r = cl.call(
        3,
        &kring_protocol::messages::add_partitions_to_txn::AddPartitionsToTxnRequest {
            v3_and_below_transactional_id: id.into(),
            v3_and_below_producer_id: pe.0,
            v3_and_below_producer_epoch: pe.1,
            v3_and_below_topics: vec![
                kring_protocol::messages::add_partitions_to_txn::AddPartitionsToTxnTopic {
                    name: "t".into(),
                    partitions: vec![0],
                    ..Default::default()
                },
            ],
            ..Default::default()
        },
    );
    assert_eq!(
        r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    let mut leader = Client::connect(common::leader_addr(&c, "t", 0));
    let mut req = common::produce_req("t", 0, values_batch(&["tcp"], (pe.0, pe.1, 0), true), -1);
    req.transactional_id = Some(id.into());
    let r = leader.call(11, &req);
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    assert!(c.read_committed("t", 0).unwrap().is_empty());
    let r = cl.call(
        4,
        &EndTxnRequest {
            transactional_id: id.into(),
            producer_id: pe.0,
            producer_epoch: pe.1,
            committed: true,
            ..Default::default()
        },
    );
    assert_eq!(r.error_code, 0);
    assert_eq!(c.read_committed("t", 0).unwrap().len(), 1);
    // The TCP cluster follows the wall clock; jumping it ahead times out
    // the next transaction without a sleep.
    assert_eq!(add(&c, id, pe, &[("t", 0)]), 0);
    c.advance_clock_to(std::time::Instant::now() + std::time::Duration::from_secs(61));
    assert_eq!(
        c.transaction_state(id).unwrap().state,
        TxnState::CompleteAbort
    );
}
