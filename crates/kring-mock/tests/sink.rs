//! Sink mode on the wire.

mod common;

use std::io::Write;

use common::{batch, produce_req, Client, Reply};
use kring_mock::{MockCluster, SinkStats};
use kring_protocol::message::{encode_request, Request};
use kring_protocol::messages::init_producer_id::InitProducerIdRequest;
use kring_protocol::messages::metadata::{MetadataRequest, MetadataRequestTopic};
use kring_protocol::messages::produce::{PartitionProduceData, ProduceRequest, TopicProduceData};
use kring_protocol::record::Compression;

type ProduceResponse = <ProduceRequest as Request>::Response;

#[test]
fn sink_acks_every_version_with_increasing_offsets_and_stores_nothing() {
    let c = MockCluster::sink().topic("t", 3).build().unwrap();
    let mut cl = Client::connect(c.broker_addr(1).unwrap());
    let mut next = [0i64; 3];
    for v in 3..=11i16 {
        for p in 0..3 {
            let n = (v as usize) + p as usize;
            let r: ProduceResponse = cl.call(
                v,
                &produce_req("t", p, batch(n, 0, None, Compression::Zstd), 1),
            );
            let pr = &r.responses[0].partition_responses[0];
            assert_eq!(r.responses[0].name, "t");
            assert_eq!(
                (pr.index, pr.error_code, pr.base_offset),
                (p, 0, next[p as usize]),
                "v{v}"
            );
            assert_eq!(pr.log_append_time_ms, -1);
            if v >= 5 {
                assert_eq!(pr.log_start_offset, 0);
            }
            next[p as usize] += n as i64;
        }
    }
    assert!(c.batches("t", 0).unwrap().is_empty());
    let stats = c.sink_stats().unwrap();
    assert_eq!(stats.requests, 27);
    assert_eq!(stats.records, next.iter().sum::<i64>() as u64);
}

#[test]
fn sink_answers_pipelined_requests_in_order() {
    let c = MockCluster::sink().default_partitions(2).build().unwrap();
    let mut cl = Client::connect(c.broker_addr(1).unwrap());
    // 200 requests in one write, for a topic the sink has never seen.
    let mut wire = Vec::new();
    for i in 0..200 {
        let req = ProduceRequest {
            acks: -1,
            timeout_ms: 1000,
            topic_data: vec![TopicProduceData {
                name: "auto".into(),
                partition_data: (0..2)
                    .map(|p| PartitionProduceData {
                        index: p,
                        records: Some(batch(4, 0, None, Compression::None)),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        encode_request(
            &mut wire,
            i,
            Some("pipeline"),
            if i % 2 == 0 { 7 } else { 10 },
            &req,
        )
        .unwrap();
    }
    cl.send_raw(&wire);
    for i in 0..200 {
        let v = if i % 2 == 0 { 7 } else { 10 };
        let (corr, r) = cl.recv::<ProduceRequest>(v);
        assert_eq!(corr, i);
        for p in &r.responses[0].partition_responses {
            assert_eq!((p.error_code, p.base_offset), (0, 4 * i64::from(i)));
        }
    }
    assert_eq!(c.partition_count("auto"), Some(2));
}

#[test]
fn sink_metadata_auto_creates_and_other_apis_work() {
    let c = MockCluster::sink()
        .brokers(2)
        .default_partitions(8)
        .auto_create_topics(false)
        .build()
        .unwrap();
    let mut cl = Client::connect(c.broker_addr(2).unwrap());
    let md = cl.call(
        12,
        &MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some("bench".into()),
                ..Default::default()
            }]),
            // A sink creates topics whatever the client allows.
            allow_auto_topic_creation: false,
            ..Default::default()
        },
    );
    assert_eq!(md.topics[0].error_code, 0);
    assert_eq!(md.topics[0].partitions.len(), 8);
    let r = cl.call(
        4,
        &InitProducerIdRequest {
            transactional_id: None,
            ..Default::default()
        },
    );
    assert_eq!(r.error_code, 0);
    // Unknown partition of a known topic, acks=0 (no response), corrupt records.
    let r: ProduceResponse = cl.call(
        9,
        &produce_req("bench", 8, batch(1, 0, None, Compression::None), 1),
    );
    assert_eq!(r.responses[0].partition_responses[0].error_code, 3);
    cl.send(
        9,
        &produce_req("bench", 0, batch(5, 0, None, Compression::None), 0),
    );
    let r: ProduceResponse = cl.call(
        9,
        &produce_req("bench", 0, bytes::Bytes::from_static(&[1, 2, 3]), 1),
    );
    assert_eq!(r.responses[0].partition_responses[0].error_code, 2);
    let r: ProduceResponse = cl.call(
        9,
        &produce_req("bench", 0, batch(1, 0, None, Compression::None), 1),
    );
    assert_eq!(
        r.responses[0].partition_responses[0].base_offset, 5,
        "the acks=0 batch counted"
    );
    let s: SinkStats = c.sink_stats().unwrap();
    assert_eq!((s.requests, s.records), (4, 6));
}

#[test]
fn sink_closes_on_malformed_produce() {
    let c = MockCluster::sink().build().unwrap();
    let mut cl = Client::connect(c.broker_addr(1).unwrap());
    let mut wire = Vec::new();
    encode_request(
        &mut wire,
        1,
        None,
        9,
        &produce_req("t", 0, batch(1, 0, None, Compression::None), 1),
    )
    .unwrap();
    wire.truncate(wire.len() - 3);
    let fixed = (wire.len() - 4) as i32;
    wire[..4].copy_from_slice(&fixed.to_be_bytes());
    cl.send_raw(&wire);
    assert!(matches!(cl.read_reply(), Reply::Closed(b) if b.is_empty()));
    // Partial frames across writes are fine.
    let mut cl = Client::connect(c.broker_addr(1).unwrap());
    let mut wire = Vec::new();
    encode_request(
        &mut wire,
        5,
        None,
        9,
        &produce_req("t", 0, batch(1, 0, None, Compression::None), 1),
    )
    .unwrap();
    let (a, b) = wire.split_at(7);
    cl.send_raw(a);
    std::io::stdout().flush().unwrap();
    cl.send_raw(b);
    let (corr, _) = cl.recv::<ProduceRequest>(9);
    assert_eq!(corr, 5);
}
