//! Produce on the wire: every version, storage and read-back, validation
//! errors, idempotence, acks=0.

mod common;

use bytes::Bytes;
use common::{batch, leader_addr, produce_req, Client};
use kring_mock::{MockCluster, UnknownProducerPolicy};
use kring_protocol::messages::produce::{PartitionProduceData, ProduceRequest, TopicProduceData};
use kring_protocol::record::Compression;

fn one(r: &kring_protocol::messages::produce::ProduceResponse) -> (i16, i64) {
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

#[test]
fn every_version_appends_and_reads_back_byte_exact() {
    let c = MockCluster::builder().topic("t", 1).build().unwrap();
    let mut cl = Client::connect(leader_addr(&c, "t", 0));
    let mut sent = Vec::new();
    for (i, v) in (3..=11).enumerate() {
        let codec = Compression::ALL[i % Compression::ALL.len()];
        let b = batch(3, 1_000 * i as i64, None, codec);
        let r = cl.call(v, &produce_req("t", 0, b.clone(), -1));
        assert_eq!(one(&r), (0, 3 * i as i64), "v{v}");
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(p.log_append_time_ms, -1);
        if v >= 5 {
            assert_eq!(p.log_start_offset, 0);
        }
        sent.push(b);
    }
    let stored = c.batches("t", 0).unwrap();
    assert_eq!(stored.len(), sent.len());
    for (i, (s, b)) in stored.iter().zip(&sent).enumerate() {
        assert_eq!(s.base_offset, 3 * i as i64);
        // Identical except the broker-assigned base offset and leader epoch.
        assert_eq!(&s.bytes[8..12], &b[8..12]);
        assert_eq!(&s.bytes[16..], &b[16..]);
        assert_eq!(&s.bytes[..8], &(3 * i as i64).to_be_bytes());
        assert_eq!(&s.bytes[12..16], &0i32.to_be_bytes());
    }
    let recs = c.records("t", 0).unwrap();
    assert_eq!(recs.len(), 27);
    for (n, r) in recs.iter().enumerate() {
        let (i, j) = (n / 3, n % 3);
        assert_eq!(r.offset, n as i64);
        assert_eq!(r.timestamp, 1_000 * i as i64 + j as i64);
        assert_eq!(r.key.as_deref(), Some(format!("key-{j}").as_bytes()));
        assert_eq!(r.value.as_deref(), Some(format!("value-{j}").as_bytes()));
        assert_eq!(
            r.headers,
            [("hdr".to_string(), Some(Bytes::from(format!("h{j}"))))]
        );
    }
    assert_eq!(c.high_watermark("t", 0), Some(27));
}

#[test]
fn multi_partition_request_answers_each_partition() {
    let c = MockCluster::builder()
        .brokers(2)
        .topic("t", 2)
        .build()
        .unwrap();
    // Partition 0 leads on broker 1, partition 1 on broker 2.
    let mut cl = Client::connect(c.broker_addr(1).unwrap());
    let part = |i: i32| PartitionProduceData {
        index: i,
        records: Some(batch(2, 0, None, Compression::None)),
        ..Default::default()
    };
    let req = ProduceRequest {
        acks: 1,
        timeout_ms: 1000,
        topic_data: vec![
            TopicProduceData {
                name: "t".into(),
                partition_data: vec![part(0), part(1), part(7)],
                ..Default::default()
            },
            TopicProduceData {
                name: "nope".into(),
                partition_data: vec![part(0)],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let r = cl.call(8, &req);
    let codes: Vec<Vec<(i32, i16)>> = r
        .responses
        .iter()
        .map(|t| {
            t.partition_responses
                .iter()
                .map(|p| (p.index, p.error_code))
                .collect()
        })
        .collect();
    assert_eq!(codes, [vec![(0, 0), (1, 6), (7, 3)], vec![(0, 3)]]);
    assert_eq!(c.high_watermark("t", 0), Some(2));
    assert_eq!(c.high_watermark("t", 1), Some(0));
}

#[test]
fn validation_errors() {
    let c = MockCluster::builder()
        .topic("t", 1)
        .max_message_bytes(4096)
        .build()
        .unwrap();
    let mut cl = Client::connect(leader_addr(&c, "t", 0));
    let good = batch(2, 0, None, Compression::None);
    // CRC mismatch.
    let mut bad = good.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let r = cl.call(9, &produce_req("t", 0, Bytes::from(bad), 1));
    assert_eq!(one(&r).0, 2);
    assert!(r.responses[0].partition_responses[0]
        .error_message
        .as_deref()
        .unwrap()
        .contains("CRC"));
    // Truncated batch: Kafka finds no whole batch, INVALID_RECORD.
    let r = cl.call(9, &produce_req("t", 0, good.slice(..good.len() - 3), 1));
    assert_eq!(one(&r).0, 87);
    // Two batches in one partition (v3+ allows exactly one).
    let mut two = good.to_vec();
    two.extend_from_slice(&good);
    let r = cl.call(7, &produce_req("t", 0, Bytes::from(two), 1));
    assert_eq!(one(&r).0, 87);
    // Magic 1.
    let mut m = good.to_vec();
    m[16] = 1;
    let r = cl.call(7, &produce_req("t", 0, Bytes::from(m), 1));
    assert_eq!(one(&r).0, 87);
    // Larger than max.message.bytes.
    let big = batch(200, 0, None, Compression::None);
    assert!(big.len() > 4096);
    let r = cl.call(9, &produce_req("t", 0, big, 1));
    assert_eq!(one(&r).0, 10);
    // Transactional batch.
    let txn = {
        let mut b = kring_protocol::record::RecordBatchBuilder::new(0, 64);
        b.append(0, None, Some(b"v"), &[]);
        b.seal(Compression::None).unwrap().stamp(5, 0, 0, true)
    };
    // Without a transactional id: TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    // (Kafka's KafkaApis); with an id no InitProducerId named: the
    // coordinator knows no such producer, INVALID_PRODUCER_ID_MAPPING.
    let r = cl.call(9, &produce_req("t", 0, txn.clone(), 1));
    assert_eq!(one(&r).0, 53);
    let mut req = produce_req("t", 0, txn, 1);
    req.transactional_id = Some("nobody".into());
    let r = cl.call(9, &req);
    assert_eq!(one(&r).0, 49);
    // Invalid acks.
    let r = cl.call(9, &produce_req("t", 0, good.clone(), 2));
    assert_eq!(one(&r).0, 21);
    // v7 has no error_message field.
    let r = cl.call(7, &produce_req("t", 0, Bytes::from_static(&[0; 10]), 1));
    assert_eq!(one(&r).0, 87);
    assert_eq!(r.responses[0].partition_responses[0].error_message, None);
    assert_eq!(c.high_watermark("t", 0), Some(0), "nothing was appended");
    let r = cl.call(9, &produce_req("t", 0, good, 1));
    assert_eq!(one(&r), (0, 0));
}

#[test]
fn idempotent_duplicates_gaps_and_epochs() {
    let c = MockCluster::builder().topic("t", 1).build().unwrap();
    let mut cl = Client::connect(leader_addr(&c, "t", 0));
    let pid = 4242;
    let send = |cl: &mut Client, epoch: i16, seq: i32, n: usize| {
        let r = cl.call(
            9,
            &produce_req(
                "t",
                0,
                batch(n, 0, Some((pid, epoch, seq)), Compression::None),
                -1,
            ),
        );
        one(&r)
    };
    assert_eq!(send(&mut cl, 0, 0, 3), (0, 0));
    assert_eq!(send(&mut cl, 0, 3, 2), (0, 3));
    // A retry of a batch that landed: NONE with the original offset.
    assert_eq!(send(&mut cl, 0, 0, 3), (0, 0));
    assert_eq!(send(&mut cl, 0, 3, 2), (0, 3));
    // A gap.
    assert_eq!(send(&mut cl, 0, 9, 1).0, 45);
    // Stale and bumped epochs.
    assert_eq!(send(&mut cl, 1, 0, 1), (0, 5));
    assert_eq!(send(&mut cl, 0, 5, 1).0, 47);
    assert_eq!(send(&mut cl, 2, 4, 1).0, 45);
    assert_eq!(c.high_watermark("t", 0), Some(6));
    let seqs: Vec<(i16, i32)> = c
        .batches("t", 0)
        .unwrap()
        .iter()
        .map(|b| (b.header.producer_epoch, b.header.base_sequence))
        .collect();
    assert_eq!(seqs, [(0, 0), (0, 3), (1, 0)]);
}

#[test]
fn duplicate_window_is_five_batches() {
    let c = MockCluster::builder().topic("t", 1).build().unwrap();
    let mut cl = Client::connect(leader_addr(&c, "t", 0));
    for s in 0..6 {
        let r = cl.call(
            9,
            &produce_req("t", 0, batch(1, 0, Some((7, 0, s)), Compression::None), -1),
        );
        assert_eq!(one(&r), (0, i64::from(s)));
    }
    let retry = |cl: &mut Client, s: i32| {
        one(&cl.call(
            9,
            &produce_req("t", 0, batch(1, 0, Some((7, 0, s)), Compression::None), -1),
        ))
    };
    assert_eq!(retry(&mut cl, 1), (0, 1));
    assert_eq!(retry(&mut cl, 0).0, 45, "out of the window of five");
}

#[test]
fn unknown_producer_policies() {
    for (policy, expect) in [
        (UnknownProducerPolicy::Accept, 0),
        (UnknownProducerPolicy::Reject, 59),
    ] {
        let c = MockCluster::builder()
            .topic("t", 1)
            .unknown_producer_policy(policy)
            .build()
            .unwrap();
        let mut cl = Client::connect(leader_addr(&c, "t", 0));
        let r = cl.call(
            9,
            &produce_req(
                "t",
                0,
                batch(1, 0, Some((77, 3, 12)), Compression::None),
                -1,
            ),
        );
        assert_eq!(one(&r).0, expect, "{policy:?}");
    }
}

#[test]
fn acks_zero_gets_no_response_and_errors_close_the_connection() {
    let c = MockCluster::builder().topic("t", 1).build().unwrap();
    let mut cl = Client::connect(leader_addr(&c, "t", 0));
    cl.send(
        9,
        &produce_req("t", 0, batch(2, 0, None, Compression::None), 0),
    );
    // The next response on the connection belongs to the next request.
    let r = cl.call(
        9,
        &produce_req("t", 0, batch(1, 0, None, Compression::None), 1),
    );
    assert_eq!(one(&r), (0, 2));
    // An acks=0 request that fails closes the connection.
    cl.send(
        9,
        &produce_req("missing", 0, batch(1, 0, None, Compression::None), 0),
    );
    assert!(cl.is_closed());
    assert_eq!(c.high_watermark("t", 0), Some(3));
}
