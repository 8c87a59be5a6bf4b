//! Helpers for the transaction tests: a transactional producer's requests,
//! encoded with kring-protocol and sent through `MockCluster::handle` (the
//! dispatch the TCP server runs) on an unbound cluster, so time is only
//! what the test tells the cluster.

use bytes::Bytes;
use kring_mock::{MockCluster, Step};
use kring_protocol::message::{decode_response_frame, encode_request, Request};
use kring_protocol::messages::add_partitions_to_txn::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic,
};
use kring_protocol::messages::end_txn::EndTxnRequest;
use kring_protocol::messages::fetch::{FetchPartition, FetchRequest, FetchTopic, PartitionData};
use kring_protocol::messages::find_coordinator::FindCoordinatorRequest;
use kring_protocol::messages::init_producer_id::InitProducerIdRequest;
use kring_protocol::record::{Compression, RecordBatchBuilder};

use super::produce_req;

/// Sends `req` to `broker` through the sans-IO dispatch and decodes the
/// answer; panics if the broker does not answer.
pub fn call<R: Request>(cluster: &MockCluster, broker: i32, version: i16, req: &R) -> R::Response {
    let mut buf = Vec::new();
    encode_request(&mut buf, 9, Some("txn-test"), version, req).unwrap();
    match cluster.handle(broker, Bytes::from(buf).slice(4..)) {
        Step::Reply(r) => {
            let (corr, resp) = decode_response_frame::<R>(Bytes::from(r.frame).slice(4..), version)
                .expect("decodable response");
            assert_eq!(corr, 9);
            resp
        }
        other => panic!("broker {broker} did not answer: {other:?}"),
    }
}

/// FindCoordinator(transaction, `id`) at v3 on `broker`: (error, node id).
pub fn find(cluster: &MockCluster, broker: i32, id: &str) -> (i16, i32) {
    let r = call(
        cluster,
        broker,
        3,
        &FindCoordinatorRequest {
            key: id.into(),
            key_type: 1,
            ..Default::default()
        },
    );
    (r.error_code, r.node_id)
}

/// The coordinator of `id`, found through FindCoordinator.
pub fn coordinator(cluster: &MockCluster, id: &str) -> i32 {
    let (err, node) = find(cluster, cluster.broker_ids()[0], id);
    assert_eq!(err, 0, "FindCoordinator({id})");
    node
}

/// InitProducerId for `id` at `version` on `broker`; `resume` is the
/// KIP-360 producer id and epoch. Returns (error, producer id, epoch).
pub fn init_on(
    cluster: &MockCluster,
    broker: i32,
    version: i16,
    id: &str,
    timeout_ms: i32,
    resume: Option<(i64, i16)>,
) -> (i16, i64, i16) {
    let (producer_id, producer_epoch) = resume.unwrap_or((-1, -1));
    let r = call(
        cluster,
        broker,
        version,
        &InitProducerIdRequest {
            transactional_id: Some(id.into()),
            transaction_timeout_ms: timeout_ms,
            producer_id,
            producer_epoch,
            ..Default::default()
        },
    );
    (r.error_code, r.producer_id, r.producer_epoch)
}

/// InitProducerId v5 for `id` at its coordinator, 60 s timeout; panics
/// on an error.
pub fn init(cluster: &MockCluster, id: &str) -> (i64, i16) {
    let (err, pid, epoch) = init_on(cluster, coordinator(cluster, id), 5, id, 60_000, None);
    assert_eq!(err, 0, "InitProducerId({id})");
    (pid, epoch)
}

/// AddPartitionsToTxn at `version` on `broker`: every partition's
/// `(topic, partition, error)`, in request order.
pub fn add_on(
    cluster: &MockCluster,
    broker: i32,
    version: i16,
    id: &str,
    (pid, epoch): (i64, i16),
    partitions: &[(&str, i32)],
) -> Vec<(String, i32, i16)> {
    let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for (t, p) in partitions {
        match topics.iter_mut().find(|x| x.name == *t) {
            Some(x) => x.partitions.push(*p),
            None => topics.push(AddPartitionsToTxnTopic {
                name: t.to_string(),
                partitions: vec![*p],
                ..Default::default()
            }),
        }
    }
    let r = call(
        cluster,
        broker,
        version,
        &AddPartitionsToTxnRequest {
            v3_and_below_transactional_id: id.into(),
            v3_and_below_producer_id: pid,
            v3_and_below_producer_epoch: epoch,
            v3_and_below_topics: topics,
            ..Default::default()
        },
    );
    r.results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| {
            t.results_by_partition
                .iter()
                .map(move |p| (t.name.clone(), p.partition_index, p.partition_error_code))
        })
        .collect()
}

/// AddPartitionsToTxn v3 at the coordinator: the one error code every
/// partition answered (panics if they differ).
pub fn add(cluster: &MockCluster, id: &str, pe: (i64, i16), partitions: &[(&str, i32)]) -> i16 {
    let r = add_on(cluster, coordinator(cluster, id), 3, id, pe, partitions);
    let code = r[0].2;
    assert!(r.iter().all(|x| x.2 == code), "{r:?}");
    code
}

/// EndTxn at `version` on `broker`: the error code.
pub fn end_on(
    cluster: &MockCluster,
    broker: i32,
    version: i16,
    id: &str,
    (pid, epoch): (i64, i16),
    commit: bool,
) -> i16 {
    call(
        cluster,
        broker,
        version,
        &EndTxnRequest {
            transactional_id: id.into(),
            producer_id: pid,
            producer_epoch: epoch,
            committed: commit,
            ..Default::default()
        },
    )
    .error_code
}

/// EndTxn v4 at the coordinator.
pub fn end(cluster: &MockCluster, id: &str, pe: (i64, i16), commit: bool) -> i16 {
    end_on(cluster, coordinator(cluster, id), 4, id, pe, commit)
}

/// A batch of one record per value (keys none), stamped for `producer`
/// (id, epoch, base sequence), transactional or not.
pub fn values_batch(values: &[&str], producer: (i64, i16, i32), transactional: bool) -> Bytes {
    let mut b = RecordBatchBuilder::new(1_000, 256);
    for v in values {
        b.append(1_000, None, Some(v.as_bytes()), &[]);
    }
    let (pid, epoch, seq) = producer;
    b.seal(Compression::None)
        .unwrap()
        .stamp(pid, epoch, seq, transactional)
}

/// Produce at `version` to the partition's leader: (error, base offset).
pub fn produce_on(
    cluster: &MockCluster,
    version: i16,
    txn_id: Option<&str>,
    (topic, partition): (&str, i32),
    records: Bytes,
) -> (i16, i64) {
    let mut req = produce_req(topic, partition, records, -1);
    req.transactional_id = txn_id.map(String::from);
    let leader = cluster.leader(topic, partition).unwrap();
    let r = call(cluster, leader, version, &req);
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Transactional Produce v11 of `values` for `id`'s producer at sequence
/// `seq`: the error code.
pub fn produce_txn(
    cluster: &MockCluster,
    id: &str,
    (pid, epoch): (i64, i16),
    tp: (&str, i32),
    seq: i32,
    values: &[&str],
) -> i16 {
    produce_on(
        cluster,
        11,
        Some(id),
        tp,
        values_batch(values, (pid, epoch, seq), true),
    )
    .0
}

/// Non-transactional, non-idempotent Produce v11 of `values`.
pub fn produce_plain(cluster: &MockCluster, tp: (&str, i32), values: &[&str]) -> i16 {
    produce_on(
        cluster,
        11,
        None,
        tp,
        values_batch(values, (-1, -1, -1), false),
    )
    .0
}

/// The values a read_committed consumer reads from the partition.
pub fn committed_values(cluster: &MockCluster, topic: &str, partition: i32) -> Vec<String> {
    cluster
        .read_committed(topic, partition)
        .unwrap()
        .into_iter()
        .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap())
        .collect()
}

/// Every value stored (read_uncommitted, markers left out).
pub fn all_values(cluster: &MockCluster, topic: &str, partition: i32) -> Vec<String> {
    cluster
        .records(topic, partition)
        .unwrap()
        .into_iter()
        .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap())
        .collect()
}

/// Fetch v12 (topic names) of one partition from `offset` at `isolation`.
pub fn fetch(
    cluster: &MockCluster,
    topic: &str,
    partition: i32,
    offset: i64,
    isolation: i8,
) -> PartitionData {
    let req = FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: 50 << 20,
        isolation_level: isolation,
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: topic.into(),
            partitions: vec![FetchPartition {
                partition,
                current_leader_epoch: -1,
                fetch_offset: offset,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let leader = cluster.leader(topic, partition).unwrap();
    let mut r = call(cluster, leader, 12, &req);
    r.responses.remove(0).partitions.remove(0)
}
