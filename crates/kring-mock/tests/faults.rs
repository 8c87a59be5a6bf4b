//! Every fault kind, observed on the wire.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{batch, leader_addr, produce_req, Client, Reply};
use kring_mock::{Fault, MockCluster};
use kring_protocol::error_code::ErrorCode;
use kring_protocol::message::decode_response_frame;
use kring_protocol::messages::api_versions::ApiVersionsRequest;
use kring_protocol::messages::init_producer_id::InitProducerIdRequest;
use kring_protocol::messages::metadata::MetadataRequest;
use kring_protocol::messages::produce::{
    PartitionProduceData, ProduceRequest, ProduceResponse, TopicProduceData,
};
use kring_protocol::messages::ApiKey;
use kring_protocol::record::Compression;

const PRODUCE: i16 = 0;
const METADATA: i16 = 3;
const API_VERSIONS: i16 = 18;
const INIT_PRODUCER_ID: i16 = 22;

fn one(r: &ProduceResponse) -> (i16, i64) {
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn cluster() -> MockCluster {
    MockCluster::builder().topic("t", 2).build().unwrap()
}

fn b1() -> Bytes {
    batch(1, 0, None, Compression::None)
}

#[test]
fn error_for_the_next_n_requests() {
    let c = cluster();
    let mut cl = Client::connect(leader_addr(&c, "t", 0));
    let id = c.inject(Fault::error(PRODUCE, ErrorCode::NOT_LEADER_OR_FOLLOWER).times(2));
    assert_eq!(one(&cl.call(9, &produce_req("t", 0, b1(), 1))), (6, -1));
    assert!(c.fault_pending(id));
    assert_eq!(one(&cl.call(3, &produce_req("t", 1, b1(), 1))), (6, -1));
    assert!(!c.fault_pending(id));
    assert_eq!(one(&cl.call(9, &produce_req("t", 0, b1(), 1))), (0, 0));
    assert_eq!(
        c.high_watermark("t", 0),
        Some(1),
        "failed requests appended nothing"
    );
    assert_eq!(c.faults_fired(), 2);
}

#[test]
fn error_on_one_partition_only() {
    let c = cluster();
    let mut cl = Client::connect(leader_addr(&c, "t", 0));
    c.inject(Fault::error(PRODUCE, ErrorCode::REQUEST_TIMED_OUT).on_partition("t", 1));
    // A request for partition 0 alone does not match (and does not use the fault up).
    assert_eq!(one(&cl.call(9, &produce_req("t", 0, b1(), 1))).0, 0);
    let part = |i| PartitionProduceData {
        index: i,
        records: Some(b1()),
        ..Default::default()
    };
    let both = ProduceRequest {
        acks: 1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            partition_data: vec![part(0), part(1)],
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = cl.call(9, &both);
    let codes: Vec<i16> = r.responses[0]
        .partition_responses
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(codes, [0, 7]);
    assert_eq!(c.high_watermark("t", 0), Some(2));
    assert_eq!(c.high_watermark("t", 1), Some(0));
}

#[test]
fn errors_on_other_apis_and_broker_filter() {
    let c = MockCluster::builder()
        .brokers(2)
        .topic("t", 1)
        .build()
        .unwrap();
    let mut b1 = Client::connect(c.broker_addr(1).unwrap());
    let mut b2 = Client::connect(c.broker_addr(2).unwrap());
    c.inject(Fault::error(API_VERSIONS, ErrorCode::UNSUPPORTED_VERSION).on_broker(2));
    c.inject(Fault::error(
        INIT_PRODUCER_ID,
        ErrorCode::COORDINATOR_NOT_AVAILABLE,
    ));
    c.inject(Fault::error(METADATA, ErrorCode::LEADER_NOT_AVAILABLE).on_partition("t", 0));
    let av = ApiVersionsRequest {
        client_software_name: "x".into(),
        client_software_version: "1".into(),
        ..Default::default()
    };
    assert_eq!(b1.call(3, &av).error_code, 0, "broker filter");
    assert_eq!(b2.call(3, &av).error_code, 35);
    let r = b1.call(4, &InitProducerIdRequest::default());
    assert_eq!((r.error_code, r.producer_id), (15, -1));
    let md = b1.call(
        9,
        &MetadataRequest {
            topics: None,
            ..Default::default()
        },
    );
    let p = &md.topics[0].partitions[0];
    assert_eq!((p.error_code, p.leader_id), (5, -1));
    c.inject(Fault::error(
        METADATA,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
    ));
    let md = b1.call(
        9,
        &MetadataRequest {
            topics: None,
            ..Default::default()
        },
    );
    assert_eq!(md.topics[0].error_code, 3);
    assert!(md.topics[0].partitions.is_empty());
}

#[test]
fn always_until_removed() {
    let c = cluster();
    let mut cl = Client::connect(leader_addr(&c, "t", 0));
    let id = c.inject(Fault::error(PRODUCE, ErrorCode::MESSAGE_TOO_LARGE).always());
    for _ in 0..3 {
        assert_eq!(one(&cl.call(9, &produce_req("t", 0, b1(), 1))).0, 10);
    }
    assert!(c.remove_fault(id));
    assert!(!c.remove_fault(id));
    assert_eq!(one(&cl.call(9, &produce_req("t", 0, b1(), 1))).0, 0);
    c.inject(Fault::error(PRODUCE, ErrorCode::MESSAGE_TOO_LARGE).always());
    c.clear_faults();
    assert_eq!(one(&cl.call(9, &produce_req("t", 0, b1(), 1))).0, 0);
}

#[test]
fn delay_holds_the_response_back() {
    let c = cluster();
    let mut cl = Client::connect(leader_addr(&c, "t", 0));
    c.inject(Fault::delay(PRODUCE, Duration::from_millis(300)));
    let started = Instant::now();
    assert_eq!(one(&cl.call(9, &produce_req("t", 0, b1(), 1))).0, 0);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn drop_before_apply_loses_the_request() {
    let c = cluster();
    let mut cl = Client::connect(leader_addr(&c, "t", 0));
    c.inject(Fault::drop_before_apply(PRODUCE));
    cl.send(9, &produce_req("t", 0, b1(), 1));
    assert!(matches!(cl.read_reply(), Reply::Closed(b) if b.is_empty()));
    assert_eq!(c.high_watermark("t", 0), Some(0));
}

#[test]
fn drop_after_apply_lands_and_the_retry_is_a_duplicate() {
    let c = cluster();
    let addr = leader_addr(&c, "t", 0);
    let mut cl = Client::connect(addr);
    let first = batch(3, 0, Some((900, 0, 0)), Compression::None);
    c.inject(Fault::drop_after_apply(PRODUCE));
    cl.send(9, &produce_req("t", 0, first.clone(), -1));
    assert!(matches!(cl.read_reply(), Reply::Closed(b) if b.is_empty()));
    assert_eq!(c.high_watermark("t", 0), Some(3), "it landed");
    // The client cannot know; it retries on a new connection and learns
    // the original offset.
    let mut cl = Client::connect(addr);
    assert_eq!(one(&cl.call(9, &produce_req("t", 0, first, -1))), (0, 0));
    assert_eq!(c.high_watermark("t", 0), Some(3), "not appended twice");
}

#[test]
fn throttle_sets_the_field_and_mutes_the_channel() {
    let c = cluster();
    let mut cl = Client::connect(leader_addr(&c, "t", 0));
    c.inject(Fault::throttle(PRODUCE, Duration::from_millis(400)));
    let started = Instant::now();
    let r = cl.call(9, &produce_req("t", 0, b1(), 1));
    assert_eq!(r.throttle_time_ms, 400);
    assert_eq!(one(&r).0, 0);
    // The response came at once; the next one waits out the throttle.
    let r = cl.call(9, &produce_req("t", 0, b1(), 1));
    assert_eq!(r.throttle_time_ms, 0);
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[test]
fn truncated_response_is_a_complete_frame_that_does_not_decode() {
    let c = cluster();
    let mut cl = Client::connect(leader_addr(&c, "t", 0));
    c.inject(Fault::truncate_response(PRODUCE, 10));
    let id = cl.send(9, &produce_req("t", 0, b1(), 1));
    let Reply::Frame(f) = cl.read_reply() else {
        panic!("expected a frame")
    };
    assert_eq!(f.len(), 10);
    assert_eq!(&f[..4], &id.to_be_bytes());
    assert!(decode_response_frame::<ProduceRequest>(Bytes::from(f), 9).is_err());
    // The request was applied and the connection still works.
    assert_eq!(one(&cl.call(9, &produce_req("t", 0, b1(), 1))), (0, 1));
}

#[test]
fn corrupt_response_keeps_length_and_correlation_id() {
    let c = cluster();
    let mut cl = Client::connect(leader_addr(&c, "t", 0));
    let clean = {
        let id = cl.send(9, &produce_req("t", 0, b1(), 1));
        let Reply::Frame(f) = cl.read_reply() else {
            panic!()
        };
        assert_eq!(&f[..4], &id.to_be_bytes());
        f
    };
    c.inject(Fault::corrupt_response(PRODUCE));
    let id = cl.send(9, &produce_req("t", 0, b1(), 1));
    let Reply::Frame(f) = cl.read_reply() else {
        panic!()
    };
    assert_eq!(f.len(), clean.len());
    assert_eq!(&f[..4], &id.to_be_bytes());
    assert_ne!(&f[4..], &clean[4..]);
}

#[test]
fn cut_response_ends_in_eof() {
    let c = cluster();
    let mut cl = Client::connect(leader_addr(&c, "t", 0));
    c.inject(Fault::cut_response(PRODUCE));
    cl.send(9, &produce_req("t", 0, b1(), 1));
    match cl.read_reply() {
        Reply::Closed(b) => {
            assert!(b.len() > 4);
            let size = i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
            assert!(b.len() < size + 4);
        }
        Reply::Frame(_) => panic!("expected a cut frame"),
    }
    assert_eq!(c.high_watermark("t", 0), Some(1));
}

#[test]
fn faults_on_fetch_and_list_offsets_by_partition() {
    use kring_protocol::messages::list_offsets::{
        ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
    };
    let c = cluster();
    let mut cl = Client::connect(leader_addr(&c, "t", 0));
    c.inject(
        Fault::error(ApiKey::ListOffsets, ErrorCode::LEADER_NOT_AVAILABLE).on_partition("t", 0),
    );
    let req = ListOffsetsRequest {
        replica_id: -1,
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
    assert_eq!(cl.call(5, &req).topics[0].partitions[0].error_code, 5);
    assert_eq!(cl.call(5, &req).topics[0].partitions[0].error_code, 0);
}

#[test]
fn hook_decides_per_request() {
    use kring_mock::FaultAction;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    let c = cluster();
    let mut cl = Client::connect(leader_addr(&c, "t", 0));
    let seen = Arc::new(AtomicU32::new(0));
    {
        let seen = seen.clone();
        // Fail every second Produce, and only ones from this client id.
        c.set_hook(ApiKey::Produce, move |r| {
            assert_eq!(r.api_key, 0);
            assert_eq!(r.partitions, [("t", 0)]);
            let n = seen.fetch_add(1, Ordering::Relaxed);
            if n % 2 == 1 && r.client_id == Some("kring-mock-test") {
                vec![FaultAction::Error(ErrorCode::REQUEST_TIMED_OUT.code())]
            } else {
                Vec::new()
            }
        });
    }
    let codes: Vec<i16> = (0..4)
        .map(|_| one(&cl.call(9, &produce_req("t", 0, b1(), 1))).0)
        .collect();
    assert_eq!(codes, [0, 7, 0, 7]);
    c.remove_hook(ApiKey::Produce);
    assert_eq!(one(&cl.call(9, &produce_req("t", 0, b1(), 1))).0, 0);
    assert_eq!(seen.load(Ordering::Relaxed), 4);
}

/// NOT_ENOUGH_REPLICAS_AFTER_APPEND means, as from Kafka, that the leader
/// appended the batch and then could not replicate it: the records are in
/// the log although the answer is an error, and an idempotent retry of the
/// same batch is a duplicate (answered with the original offset).
#[test]
fn not_enough_replicas_after_append_appends() {
    let c = cluster();
    let mut cl = Client::connect(leader_addr(&c, "t", 0));
    c.inject(Fault::error(
        PRODUCE,
        ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    ));
    let idem = batch(3, 0, Some((7, 0, 0)), Compression::None);
    assert_eq!(
        one(&cl.call(9, &produce_req("t", 0, idem.clone(), -1))),
        (20, -1)
    );
    assert_eq!(c.high_watermark("t", 0), Some(3), "the batch was appended");
    assert_eq!(one(&cl.call(9, &produce_req("t", 0, idem, -1))), (0, 0));
    assert_eq!(
        c.high_watermark("t", 0),
        Some(3),
        "the retry is a duplicate"
    );
    // Other error codes still append nothing.
    c.inject(Fault::error(PRODUCE, ErrorCode::NOT_ENOUGH_REPLICAS));
    assert_eq!(one(&cl.call(9, &produce_req("t", 0, b1(), -1))), (19, -1));
    assert_eq!(c.high_watermark("t", 0), Some(3));
}
