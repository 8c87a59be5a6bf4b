//! Request encode and response decode, the two message costs on the produce
//! path: a ProduceRequest v9 framed with its header (16 partitions × 16 KiB
//! of records; the records are copied into the frame), and a ProduceResponse
//! v9 frame for 16 partitions decoded.
//!
//! `cargo bench -p kring-protocol --bench messages`

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use kring_protocol::message::{decode_response_frame, encode_request, encode_response};
use kring_protocol::messages::produce::{
    PartitionProduceData, PartitionProduceResponse, TopicProduceData, TopicProduceResponse,
};
use kring_protocol::messages::{ProduceRequest, ProduceResponse};

const PARTITIONS: i32 = 16;
const RECORDS: usize = 16 * 1024;

fn produce_request() -> ProduceRequest {
    let records = Bytes::from(vec![0x5a; RECORDS]);
    ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: "bench-topic".into(),
            partition_data: (0..PARTITIONS)
                .map(|index| PartitionProduceData {
                    index,
                    records: Some(records.clone()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn produce_response() -> ProduceResponse {
    ProduceResponse {
        responses: vec![TopicProduceResponse {
            name: "bench-topic".into(),
            partition_responses: (0..PARTITIONS)
                .map(|index| PartitionProduceResponse {
                    index,
                    error_code: 0,
                    base_offset: 1_000_000 + i64::from(index) * 512,
                    log_append_time_ms: -1,
                    log_start_offset: 0,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        throttle_time_ms: 0,
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let req = produce_request();
    let mut buf = BytesMut::new();
    encode_request(&mut buf, 1, Some("kring"), 9, &req).unwrap();
    let frame_len = buf.len();
    let mut g = c.benchmark_group("produce_request_v9_encode");
    g.throughput(Throughput::Bytes(frame_len as u64));
    g.bench_function("16x16KiB", |b| {
        b.iter(|| {
            buf.clear();
            encode_request(&mut buf, 1, Some("kring"), 9, black_box(&req)).unwrap();
            black_box(buf.len())
        })
    });
    g.finish();

    let resp = produce_response();
    let mut out = BytesMut::new();
    encode_response(&mut out, 1, 9, &resp).unwrap();
    let frame = out.freeze().slice(4..);
    let mut g = c.benchmark_group("produce_response_v9_decode");
    g.throughput(Throughput::Elements(PARTITIONS as u64));
    g.bench_function("16_partitions", |b| {
        b.iter(|| decode_response_frame::<ProduceRequest>(black_box(frame.clone()), 9).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
