//! The sans-IO entry point: `MockCluster::handle` on a cluster built with
//! `build_unbound` runs the same dispatch as the TCP server (faults, logs,
//! idempotence), returning what the connection would do.

mod common;

use std::time::Duration;

use bytes::Bytes;
use kring_mock::{Fault, MockCluster, Step};
use kring_protocol::error_code::ErrorCode;
use kring_protocol::message::{decode_response_frame, encode_request, Request};
use kring_protocol::messages::produce::ProduceRequest;
use kring_protocol::messages::ApiKey;
use kring_protocol::record::Compression;

use common::{batch, produce_req};

/// Encodes `req` and strips the size prefix, as `handle` takes frames.
fn frame<R: Request>(version: i16, req: &R) -> Bytes {
    let mut buf = Vec::new();
    encode_request(&mut buf, 7, Some("sans-io"), version, req).unwrap();
    Bytes::from(buf).slice(4..)
}

fn reply(step: Step) -> kring_mock::Reply {
    match step {
        Step::Reply(r) => r,
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn produce(cluster: &MockCluster, broker: i32, req: &ProduceRequest) -> (Duration, i16, i64) {
    let r = reply(cluster.handle(broker, frame(11, req)));
    let (corr, resp) =
        decode_response_frame::<ProduceRequest>(Bytes::from(r.frame).slice(4..), 11).unwrap();
    assert_eq!(corr, 7);
    let p = &resp.responses[0].partition_responses[0];
    (r.delay, p.error_code, p.base_offset)
}

#[test]
fn handle_serves_without_sockets() {
    let cluster = MockCluster::builder()
        .brokers(2)
        .topic("t", 2)
        .build_unbound()
        .unwrap();
    assert_eq!(cluster.bootstrap_servers(), "mock-1:9092,mock-2:9092");
    assert_eq!(cluster.broker_ids(), [1, 2]);
    let leader = cluster.leader("t", 0).unwrap();
    let other = 3 - leader;

    // Stored and validated as over TCP, idempotence included.
    let req = produce_req(
        "t",
        0,
        batch(3, 1_000, Some((1000, 0, 0)), Compression::None),
        -1,
    );
    assert_eq!(produce(&cluster, leader, &req), (Duration::ZERO, 0, 0));
    // A retry of the same batch is a duplicate: the original offset.
    assert_eq!(produce(&cluster, leader, &req), (Duration::ZERO, 0, 0));
    assert_eq!(cluster.records("t", 0).unwrap().len(), 3);
    // The other broker is not the leader.
    assert_eq!(
        produce(&cluster, other, &req).1,
        ErrorCode::NOT_LEADER_OR_FOLLOWER.code()
    );
    assert_eq!(cluster.request_count(ApiKey::Produce.key()), 3);

    // Faults apply; a delay comes back for the caller to play.
    cluster.inject(Fault::delay(ApiKey::Produce, Duration::from_secs(3)));
    let next = produce_req(
        "t",
        0,
        batch(1, 2_000, Some((1000, 0, 3)), Compression::None),
        -1,
    );
    assert_eq!(
        produce(&cluster, leader, &next),
        (Duration::from_secs(3), 0, 3)
    );
    cluster.inject(Fault::drop_after_apply(ApiKey::Produce));
    let last = produce_req(
        "t",
        0,
        batch(1, 3_000, Some((1000, 0, 4)), Compression::None),
        -1,
    );
    assert!(matches!(
        cluster.handle(leader, frame(11, &last)),
        Step::Close
    ));
    assert_eq!(cluster.high_watermark("t", 0), Some(5));

    // A stopped broker closes; a started one answers again.
    cluster.stop_broker(leader).unwrap();
    assert!(!cluster.is_broker_running(leader));
    assert!(matches!(
        cluster.handle(leader, frame(11, &last)),
        Step::Close
    ));
    cluster.start_broker(leader).unwrap();
    assert_eq!(produce(&cluster, leader, &last), (Duration::ZERO, 0, 4));

    // Garbage and unknown brokers close the connection; nothing panics.
    assert!(matches!(
        cluster.handle(leader, Bytes::from_static(b"\x00")),
        Step::Close
    ));
    assert!(matches!(cluster.handle(9, frame(11, &last)), Step::Close));
}

#[test]
fn sink_mode_needs_sockets() {
    assert!(MockCluster::sink().build_unbound().is_err());
}
