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

/// The test controls over the sans-IO entry point: a stored record names
/// its producer; forgetting producers and moving a partition's last
/// sequence change what the idempotence check accepts; a swallowed request
/// gets no answer; added partitions take writes.
#[test]
fn producer_state_controls_and_swallowed_requests() {
    let cluster = MockCluster::builder()
        .topic("t", 1)
        .unknown_producer_policy(kring_mock::UnknownProducerPolicy::Reject)
        .build_unbound()
        .unwrap();
    let write = |seq: i32| {
        let req = produce_req(
            "t",
            0,
            batch(2, 1_000, Some((1000, 0, seq)), Compression::None),
            -1,
        );
        produce(&cluster, 1, &req).1
    };
    assert_eq!(write(0), 0);
    let recs = cluster.records("t", 0).unwrap();
    assert_eq!(
        (
            recs[1].producer_id,
            recs[1].producer_epoch,
            recs[1].base_sequence
        ),
        (1000, 0, 0)
    );

    // The partition believes the last batch ended at i32::MAX - 1: the next
    // one must straddle the wrap.
    cluster.set_last_sequence("t", 0, i32::MAX - 1).unwrap();
    assert_eq!(write(2), ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER.code());
    assert_eq!(write(i32::MAX), 0);
    assert_eq!(write(1), 0);

    // Forgotten: a non-zero first sequence is an unknown producer (the
    // policy is Reject); sequence 0 starts afresh.
    cluster.forget_producers("t", 0).unwrap();
    assert_eq!(write(3), ErrorCode::UNKNOWN_PRODUCER_ID.code());
    assert_eq!(write(0), 0);
    assert!(cluster.forget_producers("t", 1).is_err());
    assert!(cluster.set_last_sequence("u", 0, 5).is_err());

    // Swallowed: neither applied nor answered.
    let before = cluster.high_watermark("t", 0);
    let id = cluster.inject(Fault::swallow(ApiKey::Produce).always());
    let req = produce_req("t", 0, batch(1, 1_000, None, Compression::None), -1);
    assert!(matches!(cluster.handle(1, frame(11, &req)), Step::Silent));
    assert_eq!(cluster.high_watermark("t", 0), before);
    assert!(cluster.remove_fault(id));

    // Added partitions exist and take writes at once.
    cluster.add_partitions("t", 2).unwrap();
    assert_eq!(cluster.partition_count("t"), Some(3));
    let req = produce_req("t", 2, batch(1, 1_000, None, Compression::None), -1);
    assert_eq!(produce(&cluster, 1, &req).1, 0);
    assert!(cluster.add_partitions("nope", 1).is_err());
}

/// A version cap narrows what ApiVersions advertises and what is served.
#[test]
fn max_version_caps_advertised_and_served_versions() {
    use kring_protocol::messages::api_versions::ApiVersionsRequest;
    let cluster = MockCluster::builder()
        .topic("t", 1)
        .build_unbound()
        .unwrap();
    let advertised = |cluster: &MockCluster| {
        let r = reply(cluster.handle(1, frame(0, &ApiVersionsRequest::default())));
        let (_, resp) =
            decode_response_frame::<ApiVersionsRequest>(Bytes::from(r.frame).slice(4..), 0)
                .unwrap();
        resp.api_keys
            .iter()
            .find(|k| k.api_key == ApiKey::Produce.key())
            .map(|k| (k.min_version, k.max_version))
    };
    assert_eq!(advertised(&cluster), Some((3, 11)));
    cluster.set_max_version(ApiKey::Produce, Some(7));
    assert_eq!(advertised(&cluster), Some((3, 7)));
    let req = produce_req("t", 0, batch(1, 1_000, None, Compression::None), -1);
    assert!(matches!(cluster.handle(1, frame(11, &req)), Step::Close));
    let r = reply(cluster.handle(1, frame(7, &req)));
    let (_, resp) =
        decode_response_frame::<ProduceRequest>(Bytes::from(r.frame).slice(4..), 7).unwrap();
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    cluster.set_max_version(ApiKey::Produce, Some(1));
    assert_eq!(advertised(&cluster), None);
    cluster.set_max_version(ApiKey::Produce, None);
    assert_eq!(advertised(&cluster), Some((3, 11)));
}

/// Like Kafka's ReplicaManager, a partition refused for a producer
/// sequence or epoch reports the log start offset (a client tells a
/// broker that lost the producer's state, KIP-360, from an old broker that
/// sends -1); errors raised before the log is reached report -1.
#[test]
fn sequence_errors_carry_the_log_start_offset() {
    let cluster = MockCluster::builder()
        .topic("t", 1)
        .unknown_producer_policy(kring_mock::UnknownProducerPolicy::Reject)
        .build_unbound()
        .unwrap();
    let answer = |seq: i32| {
        let req = produce_req(
            "t",
            0,
            batch(1, 1_000, Some((1000, 0, seq)), Compression::None),
            -1,
        );
        let r = reply(cluster.handle(1, frame(11, &req)));
        let (_, resp) =
            decode_response_frame::<ProduceRequest>(Bytes::from(r.frame).slice(4..), 11).unwrap();
        let p = &resp.responses[0].partition_responses[0];
        (p.error_code, p.log_start_offset)
    };
    assert_eq!(answer(3), (ErrorCode::UNKNOWN_PRODUCER_ID.code(), 0));
    assert_eq!(answer(0), (0, 0));
    assert_eq!(
        answer(5),
        (ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER.code(), 0)
    );
    cluster.inject(Fault::error(
        ApiKey::Produce,
        ErrorCode::NOT_LEADER_OR_FOLLOWER,
    ));
    assert_eq!(answer(1), (ErrorCode::NOT_LEADER_OR_FOLLOWER.code(), -1));
}

/// SASL over the sans-IO entry point: the caller screens each connection's
/// requests with its own session and clock; credentials can change while
/// the cluster runs.
#[test]
fn sasl_is_screened_per_session_on_the_callers_clock() {
    use kring_mock::{MockSasl, SaslSession, SaslStep};
    use kring_protocol::messages::api_versions::ApiVersionsRequest;
    use kring_protocol::messages::sasl_authenticate::SaslAuthenticateRequest;
    use kring_protocol::messages::sasl_handshake::SaslHandshakeRequest;
    use std::time::Instant;

    let cluster = MockCluster::builder()
        .topic("t", 1)
        .sasl(
            MockSasl::default()
                .user("alice", "pw")
                .session_lifetime(Duration::from_secs(10)),
        )
        .build_unbound()
        .unwrap();
    let t0 = Instant::now();
    let produce = frame(
        11,
        &produce_req("t", 0, batch(1, 1_000, None, Compression::None), -1),
    );
    let handshake = frame(
        1,
        &SaslHandshakeRequest {
            mechanism: "PLAIN".into(),
            ..Default::default()
        },
    );
    let auth = |password: &str| {
        frame(
            1,
            &SaslAuthenticateRequest {
                auth_bytes: Bytes::from(format!("\0alice\0{password}")),
                ..Default::default()
            },
        )
    };
    let auth_answer = |step: SaslStep| match step {
        SaslStep::Reply(f) | SaslStep::ReplyAndClose(f) => {
            decode_response_frame::<SaslAuthenticateRequest>(Bytes::from(f).slice(4..), 1)
                .unwrap()
                .1
        }
        other => panic!("{other:?}"),
    };

    let mut s = SaslSession::default();
    assert!(matches!(
        cluster.screen_sasl(&mut s, t0, &produce),
        SaslStep::Close
    ));
    let versions = frame(0, &ApiVersionsRequest::default());
    assert!(matches!(
        cluster.screen_sasl(&mut s, t0, &versions),
        SaslStep::Pass
    ));
    assert!(matches!(
        cluster.screen_sasl(&mut s, t0, &handshake),
        SaslStep::Reply(_)
    ));
    let ok = auth_answer(cluster.screen_sasl(&mut s, t0, &auth("pw")));
    assert_eq!((ok.error_code, ok.session_lifetime_ms), (0, 10_000));
    assert!(matches!(
        cluster.screen_sasl(&mut s, t0 + Duration::from_secs(9), &produce),
        SaslStep::Pass
    ));
    // The session lifetime runs on the caller's clock.
    assert!(matches!(
        cluster.screen_sasl(&mut s, t0 + Duration::from_secs(10), &produce),
        SaslStep::Close
    ));

    // Rotated credentials: the old password fails, the new one works.
    cluster.set_sasl_user("alice", "rotated").unwrap();
    let mut s = SaslSession::default();
    cluster.screen_sasl(&mut s, t0, &handshake);
    let step = cluster.screen_sasl(&mut s, t0, &auth("pw"));
    assert!(matches!(step, SaslStep::ReplyAndClose(_)), "{step:?}");
    assert_ne!(auth_answer(step).error_code, 0);
    let mut s = SaslSession::default();
    cluster.screen_sasl(&mut s, t0, &handshake);
    assert_eq!(
        auth_answer(cluster.screen_sasl(&mut s, t0, &auth("rotated"))).error_code,
        0
    );
    // Without SASL everything passes; set_sasl_user is an error.
    let plain = MockCluster::builder().build_unbound().unwrap();
    let mut s = SaslSession::default();
    assert!(matches!(
        plain.screen_sasl(&mut s, t0, &produce),
        SaslStep::Pass
    ));
    assert!(plain.set_sasl_user("a", "b").is_err());
}

/// A CreateTopics request adding up to more than 10,000 partitions fails
/// every topic with POLICY_VIOLATION and creates nothing, as Kafka's
/// controller answers; found by the mock_request fuzzer, which made the
/// mock allocate a partition list of the requested size (an abort for
/// `i32::MAX`).
#[test]
fn create_topics_refuses_excessive_partition_counts() {
    use kring_protocol::messages::create_topics::{
        CreatableReplicaAssignment, CreatableTopic, CreateTopicsRequest, CreateTopicsResponse,
    };
    let cluster = MockCluster::builder()
        .brokers(2)
        .default_partitions(3)
        .build_unbound()
        .unwrap();
    let topic = |name: &str, p: i32| CreatableTopic {
        name: name.into(),
        num_partitions: p,
        replication_factor: 1,
        ..Default::default()
    };
    let create = |topics: Vec<CreatableTopic>| {
        let req = CreateTopicsRequest {
            topics,
            timeout_ms: 1000,
            ..Default::default()
        };
        let r = reply(cluster.handle(1, frame(7, &req)));
        let (_, resp) =
            decode_response_frame::<CreateTopicsRequest>(Bytes::from(r.frame).slice(4..), 7)
                .unwrap();
        let resp: CreateTopicsResponse = resp;
        resp.topics
            .iter()
            .map(|t| (t.name.clone(), t.error_code))
            .collect::<Vec<_>>()
    };
    let codes = |names: &[&str], code: i16| {
        names
            .iter()
            .map(|n| (n.to_string(), code))
            .collect::<Vec<_>>()
    };

    assert_eq!(create(vec![topic("huge", 1 << 20)]), codes(&["huge"], 44));
    assert_eq!(cluster.partition_count("huge"), None);
    assert_eq!(create(vec![topic("max", i32::MAX)]), codes(&["max"], 44));
    // The limit is on the request's total: every topic fails.
    assert_eq!(
        create(vec![topic("a", 6_000), topic("b", 6_000), topic("c", 1)]),
        codes(&["a", "b", "c"], 44)
    );
    assert_eq!(cluster.partition_count("c"), None);
    // A default count (-1) and an assignment list count too.
    let assigned = CreatableTopic {
        num_partitions: -1,
        replication_factor: -1,
        assignments: vec![CreatableReplicaAssignment {
            partition_index: 0,
            broker_ids: vec![1],
            ..Default::default()
        }],
        ..topic("assigned", -1)
    };
    assert_eq!(
        create(vec![
            topic("big", 9_996),
            topic("dflt", -1),
            assigned.clone()
        ]),
        codes(&["big", "dflt", "assigned"], 0)
    );
    assert_eq!(cluster.partition_count("big"), Some(9_996));
    assert_eq!(
        create(vec![topic("big2", 9_997), topic("dflt2", -1), assigned]),
        codes(&["big2", "dflt2", "assigned"], 44)
    );
    assert_eq!(cluster.partition_count("big2"), None);
}
