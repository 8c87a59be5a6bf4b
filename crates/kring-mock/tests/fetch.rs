//! Fetch and ListOffsets on the wire.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{batch, leader_addr, produce_req, Client};
use kring_mock::MockCluster;
use kring_protocol::messages::fetch::{FetchPartition, FetchRequest, FetchTopic};
use kring_protocol::messages::list_offsets::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kring_protocol::messages::metadata::MetadataRequest;
use kring_protocol::record::{decode_fetched_batches, Compression, DecodeOptions};

fn fetch_req(
    topic: &str,
    id: [u8; 16],
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
    pmax: i32,
) -> FetchRequest {
    FetchRequest {
        replica_id: -1,
        max_wait_ms,
        min_bytes: 1,
        max_bytes: 50 << 20,
        isolation_level: 0,
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: topic.into(),
            topic_id: id,
            partitions: vec![FetchPartition {
                partition,
                current_leader_epoch: -1,
                fetch_offset: offset,
                partition_max_bytes: pmax,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn topic_id(cl: &mut Client, topic: &str) -> [u8; 16] {
    let md = cl.call(
        12,
        &MetadataRequest {
            topics: None,
            ..Default::default()
        },
    );
    md.topics
        .iter()
        .find(|t| t.name.as_deref() == Some(topic))
        .unwrap()
        .topic_id
}

#[test]
fn fetch_returns_stored_batches_in_every_version() {
    let c = MockCluster::builder().topic("t", 1).build().unwrap();
    let mut cl = Client::connect(leader_addr(&c, "t", 0));
    for i in 0..4 {
        let r = cl.call(
            9,
            &produce_req("t", 0, batch(5, i * 10, None, Compression::Lz4), -1),
        );
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
    let id = topic_id(&mut cl, "t");
    let stored: Vec<Bytes> = c
        .batches("t", 0)
        .unwrap()
        .into_iter()
        .map(|b| b.bytes)
        .collect();
    for v in 4..=17 {
        // From offset 7: the batch holding it (offsets 5..=9) comes first.
        let r = cl.call(v, &fetch_req("t", id, 0, 7, 0, 1 << 20));
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "v{v}");
        assert_eq!(p.high_watermark, 20);
        assert_eq!(p.last_stable_offset, 20);
        if v >= 5 {
            assert_eq!(p.log_start_offset, 0);
        }
        let mut want = Vec::new();
        for b in &stored[1..] {
            want.extend_from_slice(b);
        }
        assert_eq!(p.records.as_deref(), Some(&want[..]), "v{v}");
        if v >= 13 {
            assert_eq!(r.responses[0].topic_id, id);
        } else {
            assert_eq!(r.responses[0].topic, "t");
        }
    }
    // Fetching at the log end: empty; past it: OFFSET_OUT_OF_RANGE.
    let r = cl.call(12, &fetch_req("t", id, 0, 20, 0, 1 << 20));
    assert_eq!(
        r.responses[0].partitions[0].records.as_deref(),
        Some(&[][..])
    );
    let r = cl.call(12, &fetch_req("t", id, 0, 21, 0, 1 << 20));
    assert_eq!(r.responses[0].partitions[0].error_code, 1);
    let r = cl.call(13, &fetch_req("", [9; 16], 0, 0, 0, 1 << 20));
    assert_eq!(r.responses[0].partitions[0].error_code, 100);
}

#[test]
fn fetch_honours_size_limits_but_always_returns_one_batch() {
    let c = MockCluster::builder().topic("t", 1).build().unwrap();
    let mut cl = Client::connect(leader_addr(&c, "t", 0));
    for _ in 0..3 {
        cl.call(
            9,
            &produce_req("t", 0, batch(10, 0, None, Compression::None), -1),
        );
    }
    let sizes: Vec<usize> = c
        .batches("t", 0)
        .unwrap()
        .iter()
        .map(|b| b.bytes.len())
        .collect();
    // A limit below one batch still returns the first batch whole.
    let r = cl.call(11, &fetch_req("t", [0; 16], 0, 0, 0, 10));
    assert_eq!(
        r.responses[0].partitions[0].records.as_ref().unwrap().len(),
        sizes[0]
    );
    // Room for two batches and a bit: two.
    let r = cl.call(
        11,
        &fetch_req("t", [0; 16], 0, 0, 0, (sizes[0] + sizes[1] + 5) as i32),
    );
    let recs = r.responses[0].partitions[0].records.clone().unwrap();
    let (batches, rest) = decode_fetched_batches(recs, &DecodeOptions::default()).unwrap();
    assert_eq!((batches.len(), rest), (2, 0));
    assert_eq!(batches[1].base_offset, 10);
}

#[test]
fn fetch_long_polls_until_data_arrives() {
    let c = MockCluster::builder().topic("t", 1).build().unwrap();
    let addr = leader_addr(&c, "t", 0);
    let mut cl = Client::connect(addr);
    let id = cl.send(12, &fetch_req("t", [0; 16], 0, 0, 10_000, 1 << 20));
    let started = Instant::now();
    // Another connection produces; the waiting fetch wakes up with the data.
    let mut p = Client::connect(addr);
    p.call(
        9,
        &produce_req("t", 0, batch(2, 0, None, Compression::None), 1),
    );
    let (got, r) = cl.recv::<FetchRequest>(12);
    assert_eq!(got, id);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(r.responses[0].partitions[0].high_watermark, 2);
    assert!(!r.responses[0].partitions[0]
        .records
        .as_ref()
        .unwrap()
        .is_empty());
}

#[test]
fn fetch_errors_sessions_leaders_epochs() {
    let c = MockCluster::builder()
        .brokers(2)
        .topic("t", 2)
        .build()
        .unwrap();
    let mut cl = Client::connect(c.broker_addr(1).unwrap());
    let mut req = fetch_req("t", [0; 16], 0, 0, 0, 1 << 20);
    req.session_id = 12;
    let r = cl.call(12, &req);
    assert_eq!(r.error_code, 70);
    // Partition 1 is led by broker 2.
    let id = topic_id(&mut cl, "t");
    let r = cl.call(16, &fetch_req("t", id, 1, 0, 0, 1 << 20));
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 6);
    assert_eq!(p.current_leader.leader_id, 2);
    assert_eq!(r.node_endpoints.len(), 1);
    assert_eq!(r.node_endpoints[0].node_id, 2);
    // Leader epoch fencing.
    c.move_leader("t", 0, 2).unwrap();
    c.move_leader("t", 0, 1).unwrap();
    let mut old = fetch_req("t", [0; 16], 0, 0, 0, 1 << 20);
    old.topics[0].partitions[0].current_leader_epoch = 1;
    assert_eq!(cl.call(12, &old).responses[0].partitions[0].error_code, 74);
    old.topics[0].partitions[0].current_leader_epoch = 3;
    assert_eq!(cl.call(12, &old).responses[0].partitions[0].error_code, 76);
    old.topics[0].partitions[0].current_leader_epoch = 2;
    assert_eq!(cl.call(12, &old).responses[0].partitions[0].error_code, 0);
}

fn list_req(topic: &str, partition: i32, ts: i64) -> ListOffsetsRequest {
    ListOffsetsRequest {
        replica_id: -1,
        isolation_level: 0,
        topics: vec![ListOffsetsTopic {
            name: topic.into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: partition,
                current_leader_epoch: -1,
                timestamp: ts,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn list_offsets_queries() {
    let c = MockCluster::builder().topic("t", 1).build().unwrap();
    let mut cl = Client::connect(leader_addr(&c, "t", 0));
    // Batches with timestamps 100..=102, 200..=202, 50..=52 (not ordered).
    for ts in [100, 200, 50] {
        cl.call(
            9,
            &produce_req("t", 0, batch(3, ts, None, Compression::Gzip), -1),
        );
    }
    let q = |cl: &mut Client, v: i16, ts: i64| {
        let r = cl.call(v, &list_req("t", 0, ts));
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.offset, p.timestamp)
    };
    for v in 1..=10 {
        assert_eq!(q(&mut cl, v, -1), (0, 9, -1), "v{v}");
        assert_eq!(q(&mut cl, v, -2), (0, 0, -1), "v{v}");
        assert_eq!(q(&mut cl, v, 101), (0, 1, 101), "v{v}");
        assert_eq!(q(&mut cl, v, 150), (0, 3, 200), "v{v}");
        assert_eq!(q(&mut cl, v, 999), (0, -1, -1), "v{v}");
    }
    assert_eq!(q(&mut cl, 7, -3), (0, 5, 202));
    assert_eq!(q(&mut cl, 8, -4), (0, 0, -1));
    let r = cl.call(4, &list_req("t", 3, -1));
    assert_eq!(r.topics[0].partitions[0].error_code, 3);
}
