//! Cluster-level behaviour on the wire: ApiVersions, Metadata,
//! CreateTopics, InitProducerId, broker stop/start and leader moves.

mod common;

use common::{batch, leader_addr, produce_req, Client};
use kring_mock::{MockCluster, SinkStats};
use kring_protocol::message::encode_request;
use kring_protocol::messages::api_versions::ApiVersionsRequest;
use kring_protocol::messages::create_topics::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use kring_protocol::messages::init_producer_id::InitProducerIdRequest;
use kring_protocol::messages::metadata::{MetadataRequest, MetadataRequestTopic};
use kring_protocol::messages::produce::ProduceRequest;
use kring_protocol::record::Compression;

fn api_versions_req() -> ApiVersionsRequest {
    ApiVersionsRequest {
        client_software_name: "kring-test".into(),
        client_software_version: "0.1.0".into(),
        ..Default::default()
    }
}

#[test]
fn api_versions_lists_exactly_what_is_served() {
    let c = MockCluster::builder().build().unwrap();
    let addr = c.broker_addr(1).unwrap();
    for v in 0..=4 {
        let mut cl = Client::connect(addr);
        let r = cl.call(v, &api_versions_req());
        assert_eq!(r.error_code, 0, "v{v}");
        let mut got: Vec<(i16, i16, i16)> = r
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                (0, 3, 11),
                (1, 4, 17),
                (2, 1, 10),
                (3, 0, 12),
                (10, 0, 6),
                (18, 0, 4),
                (19, 0, 7),
                (22, 0, 5),
                (24, 0, 3),
                (26, 0, 4)
            ],
            "v{v}"
        );
    }
}

#[test]
fn api_versions_unsupported_version_gets_v0_error_with_the_list() {
    let c = MockCluster::builder().build().unwrap();
    let mut cl = Client::connect(c.broker_addr(1).unwrap());
    // A v7 ApiVersions request: header v2 (flexible), body the client's
    // choice; the broker answers in v0 whatever the body.
    let mut frame = Vec::new();
    encode_request(
        &mut frame,
        42,
        Some("future-client"),
        4,
        &api_versions_req(),
    )
    .unwrap();
    frame[6..8].copy_from_slice(&7i16.to_be_bytes());
    cl.send_raw(&frame);
    let (corr, r) = cl.recv::<ApiVersionsRequest>(0);
    assert_eq!(corr, 42);
    assert_eq!(r.error_code, 35);
    assert!(r
        .api_keys
        .iter()
        .any(|k| k.api_key == 18 && k.max_version == 4));
}

#[test]
fn api_versions_rejects_invalid_software_name() {
    let c = MockCluster::builder().build().unwrap();
    let mut cl = Client::connect(c.broker_addr(1).unwrap());
    let mut req = api_versions_req();
    req.client_software_name = "bad name!".into();
    assert_eq!(cl.call(3, &req).error_code, 42);
}

#[test]
fn unserved_api_and_version_close_the_connection() {
    let c = MockCluster::builder().topic("t", 1).build().unwrap();
    let addr = c.broker_addr(1).unwrap();
    // Produce v2 is below what the mock serves.
    let mut cl = Client::connect(addr);
    let mut frame = Vec::new();
    encode_request(
        &mut frame,
        1,
        None,
        3,
        &produce_req("t", 0, batch(1, 0, None, Compression::None), 1),
    )
    .unwrap();
    frame[6..8].copy_from_slice(&2i16.to_be_bytes());
    cl.send_raw(&frame);
    assert!(cl.is_closed());
    // EndTxn (key 26) is a key kring knows but the mock does not serve.
    let mut cl = Client::connect(addr);
    cl.send_raw(&[0, 0, 0, 10, 0, 26, 0, 0, 0, 0, 0, 1, 0xff, 0xff]);
    assert!(cl.is_closed());
    // Garbage body.
    let mut cl = Client::connect(addr);
    cl.send_raw(&[0, 0, 0, 9, 0, 3, 0, 1, 0, 0, 0, 1, 0]);
    assert!(cl.is_closed());
}

#[test]
fn metadata_describes_brokers_and_spread_leaders() {
    let c = MockCluster::builder()
        .brokers(3)
        .replication_factor(2)
        .topic("t", 6)
        .build()
        .unwrap();
    let mut cl = Client::connect(c.broker_addr(2).unwrap());
    for v in 1..=12 {
        let r = cl.call(
            v,
            &MetadataRequest {
                topics: None,
                ..Default::default()
            },
        );
        assert_eq!(r.brokers.len(), 3, "v{v}");
        for b in &r.brokers {
            let addr = c.broker_addr(b.node_id).unwrap();
            assert_eq!(
                (b.host.as_str(), b.port),
                ("127.0.0.1", i32::from(addr.port()))
            );
        }
        assert_eq!(r.controller_id, 1);
        assert_eq!(r.topics.len(), 1);
        let t = &r.topics[0];
        assert_eq!(t.name.as_deref(), Some("t"));
        let leaders: Vec<i32> = t.partitions.iter().map(|p| p.leader_id).collect();
        assert_eq!(leaders, [1, 2, 3, 1, 2, 3], "v{v}");
        assert_eq!(t.partitions[2].replica_nodes, [3, 1]);
        assert_eq!(t.partitions[2].isr_nodes, [3, 1]);
        if v >= 2 {
            assert_eq!(r.cluster_id.as_deref(), Some("kring-mock-cluster"));
        }
        if v >= 7 {
            assert_eq!(t.partitions[0].leader_epoch, 0);
        }
        if v >= 10 {
            assert_ne!(t.topic_id, [0; 16]);
        }
    }
}

/// Brokers numbered from 0 (`first_node_id`), as many real clusters number
/// them: node 0 is listed, leads partitions, is the controller and answers
/// at its own address.
#[test]
fn brokers_can_be_numbered_from_zero() {
    let c = MockCluster::builder()
        .brokers(3)
        .first_node_id(0)
        .topic("t", 4)
        .build()
        .unwrap();
    assert_eq!(c.broker_ids(), [0, 1, 2]);
    let mut cl = Client::connect(c.broker_addr(0).unwrap());
    let all = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    let r = cl.call(12, &all);
    let ids: Vec<i32> = r.brokers.iter().map(|b| b.node_id).collect();
    assert_eq!(ids, [0, 1, 2]);
    assert_eq!(r.controller_id, 0);
    let leaders: Vec<i32> = r.topics[0].partitions.iter().map(|p| p.leader_id).collect();
    assert_eq!(leaders, [0, 1, 2, 0]);
    let mut zero = Client::connect(leader_addr(&c, "t", 0));
    let resp = zero.call(
        9,
        &produce_req("t", 0, batch(2, 0, None, Compression::None), -1),
    );
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(c.records("t", 0).unwrap().len(), 2);
}

/// Node ids below 0, or past `i32::MAX`, are refused at build time.
#[test]
fn node_ids_out_of_range_are_refused() {
    for (brokers, first) in [(1, -1), (2, i32::MAX)] {
        let r = MockCluster::builder()
            .brokers(brokers)
            .first_node_id(first)
            .build_unbound();
        assert!(r.is_err(), "{brokers} brokers from {first}");
    }
}

#[test]
fn metadata_auto_creates_and_reports_unknown_topics() {
    let c = MockCluster::builder()
        .default_partitions(4)
        .build()
        .unwrap();
    let mut cl = Client::connect(c.broker_addr(1).unwrap());
    let named = |n: &str| MetadataRequestTopic {
        name: Some(n.into()),
        ..Default::default()
    };
    let no_create = MetadataRequest {
        topics: Some(vec![named("fresh")]),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    let r = cl.call(9, &no_create);
    assert_eq!(r.topics[0].error_code, 3);
    assert!(c.topics().is_empty());
    let create = MetadataRequest {
        topics: Some(vec![named("fresh"), named("bad/name")]),
        allow_auto_topic_creation: true,
        ..Default::default()
    };
    let r = cl.call(10, &create);
    assert_eq!(r.topics[0].error_code, 0);
    assert_eq!(r.topics[0].partitions.len(), 4);
    assert_eq!(r.topics[1].error_code, 17);
    assert_eq!(c.partition_count("fresh"), Some(4));
    // By topic id (v12), and an unknown id.
    let id = r.topics[0].topic_id;
    let by_id = MetadataRequest {
        topics: Some(vec![
            MetadataRequestTopic {
                topic_id: id,
                name: None,
                ..Default::default()
            },
            MetadataRequestTopic {
                topic_id: [7; 16],
                name: None,
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    let r = cl.call(12, &by_id);
    assert_eq!(r.topics[0].name.as_deref(), Some("fresh"));
    assert_eq!(r.topics[1].error_code, 100);
    assert_eq!(r.topics[1].name, None);
}

#[test]
fn create_topics_all_outcomes() {
    let c = MockCluster::builder()
        .brokers(2)
        .topic("exists", 1)
        .build()
        .unwrap();
    let mut cl = Client::connect(c.broker_addr(2).unwrap());
    let topic = |n: &str, p: i32, rf: i16| CreatableTopic {
        name: n.into(),
        num_partitions: p,
        replication_factor: rf,
        ..Default::default()
    };
    let req = CreateTopicsRequest {
        topics: vec![
            topic("a", 3, 2),
            topic("exists", 1, 1),
            topic("b c", 1, 1),
            topic("zero", 0, 1),
            topic("rf", 1, 3),
            topic("dup", 1, 1),
            topic("dup", 1, 1),
            CreatableTopic {
                assignments: vec![
                    CreatableReplicaAssignment {
                        partition_index: 1,
                        broker_ids: vec![1, 2],
                        ..Default::default()
                    },
                    CreatableReplicaAssignment {
                        partition_index: 0,
                        broker_ids: vec![2, 1],
                        ..Default::default()
                    },
                ],
                configs: vec![CreatableTopicConfig {
                    name: "max.message.bytes".into(),
                    value: Some("100".into()),
                    ..Default::default()
                }],
                ..topic("manual", -1, -1)
            },
            CreatableTopic {
                assignments: vec![CreatableReplicaAssignment {
                    partition_index: 0,
                    broker_ids: vec![9],
                    ..Default::default()
                }],
                ..topic("badassign", -1, -1)
            },
        ],
        timeout_ms: 1000,
        validate_only: false,
        ..Default::default()
    };
    let r = cl.call(7, &req);
    let codes: Vec<(&str, i16)> = r
        .topics
        .iter()
        .map(|t| (t.name.as_str(), t.error_code))
        .collect();
    assert_eq!(
        codes,
        [
            ("a", 0),
            ("exists", 36),
            ("b c", 17),
            ("zero", 37),
            ("rf", 38),
            ("dup", 42),
            ("dup", 42),
            ("manual", 0),
            ("badassign", 39)
        ]
    );
    assert_eq!(
        (r.topics[0].num_partitions, r.topics[0].replication_factor),
        (3, 2)
    );
    assert_ne!(r.topics[0].topic_id, [0; 16]);
    assert!(r.topics[1].error_message.is_some());
    assert_eq!(c.leader("manual", 0), Some(2));
    assert_eq!(c.leader("manual", 1), Some(1));
    assert!(c.partition_count("dup").is_none());
    // The topic's max.message.bytes applies.
    let mut cl = Client::connect(leader_addr(&c, "manual", 0));
    let r = cl.call(
        9,
        &produce_req("manual", 0, batch(10, 0, None, Compression::None), 1),
    );
    assert_eq!(r.responses[0].partition_responses[0].error_code, 10);
    // validate_only creates nothing.
    let mut cl = Client::connect(c.broker_addr(1).unwrap());
    let r = cl.call(
        4,
        &CreateTopicsRequest {
            topics: vec![topic("dry", 2, 1)],
            validate_only: true,
            ..Default::default()
        },
    );
    assert_eq!(r.topics[0].error_code, 0);
    assert!(c.partition_count("dry").is_none());
}

#[test]
fn init_producer_id_allocates_fresh_ids_and_sends_transactions_to_their_coordinator() {
    let c = MockCluster::builder().brokers(2).build().unwrap();
    let mut a = Client::connect(c.broker_addr(1).unwrap());
    let mut b = Client::connect(c.broker_addr(2).unwrap());
    let idem = InitProducerIdRequest {
        transactional_id: None,
        transaction_timeout_ms: 60000,
        producer_id: -1,
        producer_epoch: -1,
        ..Default::default()
    };
    let r1 = a.call(0, &idem);
    let r2 = b.call(4, &idem);
    assert_eq!((r1.error_code, r1.producer_epoch), (0, 0));
    assert_eq!((r2.error_code, r2.producer_epoch), (0, 0));
    assert_ne!(r1.producer_id, r2.producer_id);
    // KIP-360 fields are ignored for idempotent producers: a fresh id.
    let r3 = a.call(
        5,
        &InitProducerIdRequest {
            producer_id: r1.producer_id,
            producer_epoch: 0,
            ..idem.clone()
        },
    );
    assert_ne!(r3.producer_id, r1.producer_id);
    // A transactional id goes to its coordinator only (the transaction
    // tests cover the rest).
    let txn = InitProducerIdRequest {
        transactional_id: Some("tx".into()),
        ..idem
    };
    let coordinator = c.transaction_coordinator("tx").unwrap();
    let (mut at, mut other) = if coordinator == 1 { (a, b) } else { (b, a) };
    let r = other.call(2, &txn);
    assert_eq!((r.error_code, r.producer_id), (16, -1), "NOT_COORDINATOR");
    let r = at.call(2, &txn);
    assert_eq!((r.error_code, r.producer_epoch), (0, 0));
}

#[test]
fn stopped_broker_refuses_connections_and_restarts_on_the_same_port() {
    let c = MockCluster::builder()
        .brokers(2)
        .topic("t", 2)
        .build()
        .unwrap();
    let addr = c.broker_addr(2).unwrap();
    let mut cl = Client::connect(addr);
    cl.call(3, &api_versions_req());
    c.stop_broker(2).unwrap();
    assert!(!c.is_broker_running(2));
    assert!(cl.is_closed(), "existing connection is closed");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "new connects are refused"
    );
    // The other broker still answers, and still lists broker 2.
    let mut other = Client::connect(c.broker_addr(1).unwrap());
    let md = other.call(
        5,
        &MetadataRequest {
            topics: None,
            ..Default::default()
        },
    );
    assert_eq!(md.brokers.len(), 2);
    assert_eq!(md.topics[0].partitions[1].offline_replicas, [2]);
    c.start_broker(2).unwrap();
    assert_eq!(c.broker_addr(2), Some(addr));
    let mut cl = Client::connect(addr);
    assert_eq!(cl.call(3, &api_versions_req()).error_code, 0);
    let r = cl.call(
        9,
        &produce_req("t", 1, batch(2, 0, None, Compression::None), 1),
    );
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
}

#[test]
fn leader_move_redirects_with_kip951_hints() {
    let c = MockCluster::builder()
        .brokers(3)
        .topic("t", 1)
        .build()
        .unwrap();
    assert_eq!(c.leader("t", 0), Some(1));
    let mut old = Client::connect(c.broker_addr(1).unwrap());
    let r = old.call(
        9,
        &produce_req("t", 0, batch(1, 0, None, Compression::None), -1),
    );
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    c.move_leader("t", 0, 3).unwrap();
    assert_eq!(c.leader_epoch("t", 0), Some(1));
    for v in [9i16, 10, 11] {
        let r: <ProduceRequest as kring_protocol::message::Request>::Response = old.call(
            v,
            &produce_req("t", 0, batch(1, 0, None, Compression::None), -1),
        );
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 6, "v{v}");
        if v >= 10 {
            assert_eq!(
                (p.current_leader.leader_id, p.current_leader.leader_epoch),
                (3, 1)
            );
            assert_eq!(r.node_endpoints.len(), 1);
            let ep = &r.node_endpoints[0];
            assert_eq!(ep.node_id, 3);
            assert_eq!(i32::from(c.broker_addr(3).unwrap().port()), ep.port);
        } else {
            assert_eq!(p.current_leader.leader_id, -1);
            assert!(r.node_endpoints.is_empty());
        }
    }
    let mut new = Client::connect(c.broker_addr(3).unwrap());
    let md = new.call(
        9,
        &MetadataRequest {
            topics: None,
            ..Default::default()
        },
    );
    assert_eq!(md.topics[0].partitions[0].leader_id, 3);
    assert_eq!(md.topics[0].partitions[0].leader_epoch, 1);
    let r = new.call(
        9,
        &produce_req("t", 0, batch(1, 0, None, Compression::None), -1),
    );
    assert_eq!(r.responses[0].partition_responses[0].base_offset, 1);
    assert_eq!(c.records("t", 0).unwrap().len(), 2);
    assert!(c.move_leader("t", 0, 9).is_err());
    assert!(c.move_leader("t", 5, 1).is_err());
}

#[test]
fn sink_stats_absent_outside_sink_mode() {
    let c = MockCluster::builder().build().unwrap();
    assert_eq!(c.sink_stats(), None::<SinkStats>);
}

#[test]
fn find_coordinator_single_and_batched() {
    use kring_protocol::messages::find_coordinator::FindCoordinatorRequest;
    let c = MockCluster::builder().brokers(3).build().unwrap();
    let mut cl = Client::connect(c.broker_addr(1).unwrap());
    let single = |key: &str, key_type: i8| FindCoordinatorRequest {
        key: key.into(),
        key_type,
        ..Default::default()
    };
    let r = cl.call(0, &single("group-a", 0));
    assert_eq!(r.error_code, 0);
    let addr = c.broker_addr(r.node_id).unwrap();
    assert_eq!(
        (r.host.as_str(), r.port),
        ("127.0.0.1", i32::from(addr.port()))
    );
    // Stable per key; v3 agrees with v0.
    assert_eq!(cl.call(3, &single("group-a", 0)).node_id, r.node_id);
    assert_eq!(cl.call(1, &single("group-a", 5)).error_code, 42);
    assert_eq!(cl.call(2, &single("", 0)).error_code, 42);
    let batched = FindCoordinatorRequest {
        key_type: 1,
        coordinator_keys: vec!["tx-1".into(), "tx-2".into(), "".into()],
        ..Default::default()
    };
    let r = cl.call(6, &batched);
    let got: Vec<(&str, i16)> = r
        .coordinators
        .iter()
        .map(|c| (c.key.as_str(), c.error_code))
        .collect();
    assert_eq!(got, [("tx-1", 0), ("tx-2", 0), ("", 42)]);
    // A stopped coordinator is not available.
    let id = r.coordinators[0].node_id;
    c.stop_broker(id).unwrap();
    let mut cl = Client::connect(c.broker_addr(if id == 1 { 2 } else { 1 }).unwrap());
    assert_eq!(cl.call(6, &batched).coordinators[0].error_code, 15);
}
