//! A second opinion: librdkafka's own mock cluster (`rdkafka::mocking`,
//! librdkafka 2.12.1) receives the same kring-protocol requests as
//! kring-mock — ApiVersions, Metadata, InitProducerId, Produce (v3 and v9,
//! and every version both serve) — and the decoded responses are compared
//! field by field, ignoring what legitimately differs: node ids, hosts,
//! ports, cluster and topic ids, producer ids, the lists of supported APIs.
//!
//! Where the two disagree, the Kafka specs and the Java broker decide, and
//! the test pins the disagreement down (so it fails if either side changes):
//! 1. ApiVersions v3+, which librdkafka's mock does not serve: it answers
//!    UNSUPPORTED_VERSION in a hand-made flexible layout whose ApiKeys count
//!    is the raw count (1) instead of count+1, with no tagged fields. KIP-511
//!    and the Java broker answer such a request with a **v0** body; kring-mock
//!    does (and serves v3/v4 anyway). librdkafka's mock is wrong.
//! 2. Flexible Metadata responses (v9+) from librdkafka's mock end with one
//!    extra 0x00 byte: its handler writes the top-level tagged fields and
//!    the send path writes them again. kring-mock's encoding is exact.
//! 3. Metadata `controller_id`: librdkafka's mock says 0 for a cluster whose
//!    brokers are 1..n; Kafka reports the id of a live broker (or -1).
//!    kring-mock reports its lowest running broker.
//! 4. Produce to a partition that does not exist in an existing topic:
//!    both answer UNKNOWN_TOPIC_OR_PARTITION — same.
//! 5. Idempotent producer with an unknown producer id and a non-zero
//!    sequence: both accept (Kafka ≥ 2.5 semantics), see `unknown_producer`.
//! 6. Produce `log_append_time_ms` on success: librdkafka's mock sends a
//!    made-up 1234; Kafka sends -1 for CreateTime topics (the default, and
//!    the only kind kring-mock has). kring-mock is right.
//! 7. Produce v5: the spec adds `log_start_offset` in v5; librdkafka's mock
//!    writes it from v6 only, so its v5 responses are 8 bytes short per
//!    partition (they decode as v4). kring-mock is right.
//! 8. Idempotence: librdkafka's mock checks sequences only for
//!    transactional producers; an idempotent producer's retried batch is
//!    appended twice and a sequence gap is accepted. Kafka (and kring-mock)
//!    answer a duplicate of one of the last five batches with NONE and the
//!    original offset, and a gap with OUT_OF_ORDER_SEQUENCE_NUMBER.
//! 9. A batch with a bad CRC: librdkafka's mock appends it; Kafka (and
//!    kring-mock) answer CORRUPT_MESSAGE.
//!
//! Agreements worth naming: Metadata v0–v12 (normalised) in full; Produce
//! error codes and offsets for plain, idempotent in-order, unknown topic and
//! partition; NOT_LEADER_OR_FOLLOWER with KIP-951 current-leader and node
//! endpoint hints (v10); InitProducerId v0–v4.

mod common;

use bytes::Bytes;
use common::{batch, produce_req, Client, Reply};
use kring_mock::MockCluster;
use kring_protocol::message::{Decodable, Request};
use kring_protocol::messages::api_versions::ApiVersionsRequest;
use kring_protocol::messages::header::ResponseHeader;
use kring_protocol::messages::init_producer_id::InitProducerIdRequest;
use kring_protocol::messages::metadata::{MetadataRequest, MetadataRequestTopic, MetadataResponse};
use kring_protocol::messages::produce::{ProduceRequest, ProduceResponse};
use kring_protocol::messages::ApiKey;
use kring_protocol::record::Compression;
use rdkafka::mocking::MockCluster as RdMock;

/// A response decoded without insisting that it uses the whole frame, and
/// the number of bytes left over.
fn lenient<R: Request>(frame: Vec<u8>, version: i16) -> (R::Response, usize) {
    let key = ApiKey::try_from(R::API_KEY).unwrap();
    let hv = kring_protocol::message::response_header_version(key, version);
    let mut buf = Bytes::from(frame);
    ResponseHeader::decode(&mut buf, hv).expect("header");
    let r = R::Response::decode(&mut buf, version).expect("body");
    (r, buf.len())
}

/// Sends one request and decodes the answer leniently.
fn exchange<R: Request>(c: &mut Client, version: i16, req: &R) -> (R::Response, usize) {
    c.send(version, req);
    match c.read_reply() {
        Reply::Frame(f) => lenient::<R>(f, version),
        Reply::Closed(b) => panic!("v{version}: closed after {} bytes", b.len()),
    }
}

/// One connection to each cluster; every request goes to both.
struct Pair {
    kring: Client,
    rd: Client,
}

impl Pair {
    fn call<R: Request>(&mut self, version: i16, req: &R) -> [(R::Response, usize); 2] {
        [
            exchange::<R>(&mut self.kring, version, req),
            exchange::<R>(&mut self.rd, version, req),
        ]
    }
}

struct Clusters {
    kring: MockCluster,
    rd: RdMock<'static, rdkafka::producer::DefaultProducerContext>,
}

impl Clusters {
    fn new(topics: &[(&str, i32)]) -> Clusters {
        let mut b = MockCluster::builder().auto_create_topics(false);
        let rd = RdMock::new(1).unwrap();
        for (t, n) in topics {
            b = b.topic(*t, *n);
            rd.create_topic(t, *n, 1).unwrap();
        }
        Clusters {
            kring: b.build().unwrap(),
            rd,
        }
    }

    fn pair(&self) -> Pair {
        let rd_addr = self
            .rd
            .bootstrap_servers()
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        Pair {
            kring: Client::connect(self.kring.broker_addr(1).unwrap()),
            rd: Client::connect(rd_addr),
        }
    }
}

fn av_req() -> ApiVersionsRequest {
    ApiVersionsRequest {
        client_software_name: "kring-compare".into(),
        client_software_version: "1.0".into(),
        ..Default::default()
    }
}

#[test]
fn api_versions_agree_where_both_serve() {
    let c = Clusters::new(&[]);
    let mut p = c.pair();
    for v in 0..=2 {
        let [(k, kt), (r, rt)] = p.call(v, &av_req());
        assert_eq!((kt, rt), (0, 0));
        assert_eq!((k.error_code, r.error_code), (0, 0), "v{v}");
        assert_eq!(k.throttle_time_ms, r.throttle_time_ms);
        // Both serve the producer's APIs; ranges differ by design.
        for key in [0, 3, 18, 22] {
            assert!(
                k.api_keys.iter().any(|a| a.api_key == key),
                "kring lacks {key}"
            );
            assert!(
                r.api_keys.iter().any(|a| a.api_key == key),
                "rdkafka lacks {key}"
            );
        }
        let range = |l: &[kring_protocol::messages::api_versions::ApiVersion], key| {
            l.iter()
                .find(|a| a.api_key == key)
                .map(|a| (a.min_version, a.max_version))
        };
        // Produce: kring-mock 3-11 (record batch v2 only), librdkafka's mock 0-10.
        assert_eq!(range(&k.api_keys, 0), Some((3, 11)));
        assert_eq!(range(&r.api_keys, 0), Some((0, 10)));
    }
}

#[test]
fn api_versions_unsupported_version_kip511() {
    let c = Clusters::new(&[]);
    let mut p = c.pair();
    // kring-mock serves v3.
    p.kring.send(3, &av_req());
    let Reply::Frame(f) = p.kring.read_reply() else {
        panic!()
    };
    let (k, trailing) = lenient::<ApiVersionsRequest>(f, 3);
    assert_eq!((k.error_code, trailing), (0, 0));
    // librdkafka's mock does not, and answers in a layout that is neither
    // v0 (KIP-511) nor valid v3: error 35, a one-byte count of 1 (compact
    // encoding would mean zero entries), one entry, throttle time.
    p.rd.send(3, &av_req());
    let Reply::Frame(f) = p.rd.read_reply() else {
        panic!()
    };
    assert_eq!(&f[4..], &[0, 35, 1, 0, 18, 0, 0, 0, 2, 0, 0, 0, 0]);
    // What KIP-511 specifies, and kring-mock sends for a version it does not
    // serve: a v0 body (i32 count) with the full list.
    let mut frame = Vec::new();
    kring_protocol::message::encode_request(&mut frame, 9, None, 3, &av_req()).unwrap();
    frame[6..8].copy_from_slice(&9i16.to_be_bytes());
    p.kring.send_raw(&frame);
    let Reply::Frame(f) = p.kring.read_reply() else {
        panic!()
    };
    let (k, trailing) = lenient::<ApiVersionsRequest>(f, 0);
    assert_eq!((k.error_code, trailing), (35, 0));
    assert!(k.api_keys.iter().any(|a| a.api_key == 18));
}

/// The parts of a Metadata response both clusters must agree on.
fn normalize(m: &MetadataResponse, version: i16) -> String {
    let mut s = format!(
        "brokers={} throttle={} ",
        m.brokers.len(),
        m.throttle_time_ms
    );
    for b in &m.brokers {
        s += &format!("[host={} rack={:?}]", b.host, b.rack);
    }
    let node = m.brokers.first().map_or(-1, |b| b.node_id);
    let map = |id: i32| {
        if id == node {
            "self".to_string()
        } else {
            id.to_string()
        }
    };
    for t in &m.topics {
        s += &format!(
            " topic[{:?} err={} internal={} id_set={} auth={}]",
            t.name,
            t.error_code,
            t.is_internal,
            version >= 10 && t.topic_id != [0; 16],
            t.topic_authorized_operations
        );
        for p in &t.partitions {
            s += &format!(
                " p{}[err={} leader={} epoch={} replicas={:?} isr={:?} offline={:?}]",
                p.partition_index,
                p.error_code,
                map(p.leader_id),
                p.leader_epoch,
                p.replica_nodes.iter().map(|&r| map(r)).collect::<Vec<_>>(),
                p.isr_nodes.iter().map(|&r| map(r)).collect::<Vec<_>>(),
                p.offline_replicas
            );
        }
    }
    s + &format!(" cluster_auth={}", m.cluster_authorized_operations)
}

#[test]
fn metadata_agrees_in_every_version() {
    let c = Clusters::new(&[("t", 3)]);
    let mut p = c.pair();
    for v in 0..=12 {
        let mut topics = vec![MetadataRequestTopic {
            name: Some("t".into()),
            ..Default::default()
        }];
        if v >= 4 {
            // Before v4 a missing topic may be auto-created.
            topics.push(MetadataRequestTopic {
                name: Some("missing".into()),
                ..Default::default()
            });
        }
        let req = MetadataRequest {
            topics: Some(topics),
            allow_auto_topic_creation: v < 4,
            ..Default::default()
        };
        let [(k, kt), (r, rt)] = p.call(v, &req);
        assert_eq!(normalize(&k, v), normalize(&r, v), "Metadata v{v}");
        assert_eq!(kt, 0, "kring-mock's Metadata v{v} is exact");
        // Disagreement 2: librdkafka's mock writes the top-level tagged
        // fields twice in flexible versions.
        assert_eq!(
            rt,
            usize::from(v >= 9),
            "librdkafka mock trailing bytes, v{v}"
        );
        if v >= 1 {
            // Disagreement 3: librdkafka's mock names no live controller.
            assert_eq!(k.controller_id, k.brokers[0].node_id);
            assert_eq!(r.controller_id, 0);
            assert!(r.brokers.iter().all(|b| b.node_id != 0));
        }
        if v >= 2 {
            assert!(k.cluster_id.is_some() && r.cluster_id.is_some());
        }
    }
}

#[test]
fn init_producer_id_agrees() {
    let c = Clusters::new(&[]);
    let mut p = c.pair();
    for v in 0..=4 {
        let req = InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        };
        let [(k, kt), (r, rt)] = p.call(v, &req);
        assert_eq!((kt, rt), (0, 0));
        assert_eq!(
            (k.error_code, k.producer_epoch, k.throttle_time_ms),
            (0, 0, 0),
            "v{v}"
        );
        assert_eq!(
            (r.error_code, r.producer_epoch, r.throttle_time_ms),
            (0, 0, 0),
            "v{v}"
        );
        assert!(k.producer_id >= 0 && r.producer_id >= 0);
    }
}

/// Error code and base offset of the only partition.
fn outcome(r: &ProduceResponse) -> (i16, i64) {
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

#[test]
fn produce_agrees_in_every_version_both_serve() {
    for v in 3..=10 {
        let c = Clusters::new(&[("t", 2)]);
        let mut p = c.pair();
        let [(kp, _), (rp, _)] = p.call(
            2,
            &InitProducerIdRequest {
                transactional_id: None,
                transaction_timeout_ms: 60_000,
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            },
        );
        let (kpid, rpid) = (kp.producer_id, rp.producer_id);
        let mut step =
            |what: &str, pid_seq: Option<(i16, i32)>, n: usize, topic: &str, partition: i32| {
                let mk = |pid: i64| {
                    let producer = pid_seq.map(|(epoch, seq)| (pid, epoch, seq));
                    produce_req(
                        topic,
                        partition,
                        batch(n, 1000, producer, Compression::None),
                        -1,
                    )
                };
                let (k, kt) = exchange::<ProduceRequest>(&mut p.kring, v, &mk(kpid));
                // Disagreement 7: librdkafka's mock writes LogStartOffset only
                // from v6, but the field exists from v5: its v5 responses are
                // v4 responses (8 bytes short), and decode exactly as v4.
                p.rd.send(v, &mk(rpid));
                let Reply::Frame(f) = p.rd.read_reply() else {
                    panic!()
                };
                let (r, rt) = lenient::<ProduceRequest>(f, if v == 5 { 4 } else { v });
                assert_eq!((kt, rt), (0, 0), "{what} v{v}: exact encodings");
                let (kp, rp) = (
                    &k.responses[0].partition_responses[0],
                    &r.responses[0].partition_responses[0],
                );
                assert_eq!(k.responses[0].name, r.responses[0].name);
                assert_eq!(kp.index, rp.index);
                // Disagreement 6: on success librdkafka's mock reports a made-up
                // LogAppendTime of 1234; Kafka reports -1 for CreateTime topics,
                // except for a duplicate, answered with the original batch's
                // max timestamp (UnifiedLog: `setLogAppendTime(duplicate.timestamp())`).
                if what.starts_with("duplicate") {
                    assert!(kp.log_append_time_ms >= 0, "{what} v{v}");
                } else {
                    assert_eq!(kp.log_append_time_ms, -1, "{what} v{v}");
                }
                let rd_append_time = if rp.error_code == 0 { 1234 } else { -1 };
                assert_eq!(rp.log_append_time_ms, rd_append_time, "{what} v{v}");
                if kp.error_code == 0 && rp.error_code == 0 && v >= 6 {
                    assert_eq!(kp.log_start_offset, rp.log_start_offset, "{what} v{v}");
                }
                assert_eq!(k.throttle_time_ms, r.throttle_time_ms);
                (outcome(&k), outcome(&r))
            };
        let same = |(k, r): ((i16, i64), (i16, i64))| {
            assert_eq!(k, r);
            k
        };
        assert_eq!(same(step("plain", None, 3, "t", 0)), (0, 0));
        assert_eq!(same(step("plain again", None, 2, "t", 0)), (0, 3));
        assert_eq!(same(step("idempotent", Some((0, 0)), 4, "t", 1)), (0, 0));
        assert_eq!(same(step("next sequence", Some((0, 4)), 1, "t", 1)), (0, 4));
        // Disagreement 8: librdkafka's mock checks sequences only for
        // transactional producers. A retry of a batch that landed is
        // appended again there (offset 5); Kafka and kring-mock answer NONE
        // with the original offset and append nothing.
        let (k, r) = step("duplicate of a landed batch", Some((0, 0)), 4, "t", 1);
        assert_eq!((k, r), ((0, 0), (0, 5)), "v{v}");
        // ... and a sequence gap is accepted there; Kafka and kring-mock
        // answer OUT_OF_ORDER_SEQUENCE_NUMBER.
        let (k, r) = step("sequence gap", Some((0, 9)), 1, "t", 1);
        assert_eq!((k.0, r.0), (45, 0), "v{v}");
        assert_eq!(same(step("unknown partition", None, 1, "t", 7)).0, 3);
        assert_eq!(same(step("unknown topic", None, 1, "nope", 0)).0, 3);
    }
}

/// Disagreement 5, investigated: a producer id the partition has never seen,
/// first sequence 5. Kafka ≥ 2.5 (KIP-360) accepts it (ProducerAppendInfo:
/// "if there is no current producer epoch … accept writes with any
/// sequence number"); Kafka < 2.5 answered UNKNOWN_PRODUCER_ID. kring-mock
/// follows ≥ 2.5 by default and < 2.5 with `UnknownProducerPolicy::Reject`.
#[test]
fn unknown_producer() {
    let c = Clusters::new(&[("t", 1)]);
    let mut p = c.pair();
    let req = produce_req(
        "t",
        0,
        batch(1, 0, Some((4_000_000, 0, 5)), Compression::None),
        -1,
    );
    let [(k, _), (r, _)] = p.call(9, &req);
    assert_eq!(outcome(&k), (0, 0), "kring-mock: Kafka >= 2.5 semantics");
    // librdkafka's mock accepts it too, but only because it checks no
    // sequences for idempotent producers at all (disagreement 8).
    assert_eq!(outcome(&r), (0, 0));
}

/// A corrupt batch (CRC mismatch). Kafka validates the CRC on append and
/// answers CORRUPT_MESSAGE; so does kring-mock.
#[test]
fn corrupt_batch() {
    let c = Clusters::new(&[("t", 1)]);
    let mut p = c.pair();
    let mut b = batch(2, 0, None, Compression::None).to_vec();
    let last = b.len() - 1;
    b[last] ^= 0x55;
    let req = produce_req("t", 0, Bytes::from(b), -1);
    let [(k, _), (r, _)] = p.call(9, &req);
    assert_eq!(outcome(&k), (2, -1));
    // Disagreement 9: librdkafka's mock does not check the CRC and appends.
    assert_eq!(outcome(&r), (0, 0));
}

/// NOT_LEADER_OR_FOLLOWER with the KIP-951 hints (Produce v10): both
/// clusters have brokers 1 and 2 and the partition led by broker 2; the
/// request goes to broker 1.
#[test]
fn not_leader_hints_agree() {
    let kring = MockCluster::builder()
        .brokers(2)
        .topic("t", 1)
        .build()
        .unwrap();
    kring.move_leader("t", 0, 2).unwrap();
    let rd = RdMock::new(2).unwrap();
    rd.create_topic("t", 1, 1).unwrap();
    rd.partition_leader("t", 0, Some(2)).unwrap();
    let rd_addrs: Vec<std::net::SocketAddr> = rd
        .bootstrap_servers()
        .split(',')
        .map(|a| a.parse().unwrap())
        .collect();
    let mut p = Pair {
        kring: Client::connect(kring.broker_addr(1).unwrap()),
        rd: Client::connect(rd_addrs[0]),
    };
    // Find which of librdkafka's listeners is broker 1.
    let [_, (md, _)] = p.call(
        4,
        &MetadataRequest {
            topics: None,
            allow_auto_topic_creation: false,
            ..Default::default()
        },
    );
    let one = md.brokers.iter().find(|b| b.node_id == 1).unwrap();
    p.rd = Client::connect(format!("{}:{}", one.host, one.port).parse().unwrap());
    let req = produce_req("t", 0, batch(1, 0, None, Compression::None), -1);
    let [(k, _), (r, _)] = p.call(10, &req);
    let (kp, rp) = (
        &k.responses[0].partition_responses[0],
        &r.responses[0].partition_responses[0],
    );
    assert_eq!((kp.error_code, rp.error_code), (6, 6));
    assert_eq!(kp.current_leader.leader_id, rp.current_leader.leader_id);
    assert_eq!(kp.current_leader.leader_id, 2);
    eprintln!(
        "leader epochs after one move: kring-mock {}, librdkafka mock {}",
        kp.current_leader.leader_epoch, rp.current_leader.leader_epoch
    );
    assert!(kp.current_leader.leader_epoch > 0 && rp.current_leader.leader_epoch > 0);
    assert_eq!(k.node_endpoints.len(), 1);
    assert_eq!(r.node_endpoints.len(), 1);
    let (ke, re) = (&k.node_endpoints[0], &r.node_endpoints[0]);
    assert_eq!(
        (ke.node_id, &ke.host, &ke.rack),
        (re.node_id, &re.host, &re.rack)
    );
}
