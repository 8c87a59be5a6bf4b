//! librdkafka (the `rdkafka` crate, bundled librdkafka 2.12) produces to
//! kring-mock and consumes back from it; every field of every record is
//! compared with what was sent and with the mock's own read-back.
//!
//! This exercises the mock the way a real client drives a broker:
//! ApiVersions negotiation, Metadata, InitProducerId, idempotent Produce
//! with each codec, ListOffsets (offset reset to the beginning) and Fetch.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kring_mock::MockCluster;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message, Offset, Timestamp, TopicPartitionList};

const TOPIC: &str = "interop";
const PARTITIONS: i32 = 4;
const PER_CODEC: usize = 2000;
const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
const BASE_TS: i64 = 1_700_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    partition: i32,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp: i64,
}

fn expected(codec: usize, i: usize) -> Rec {
    let n = codec * PER_CODEC + i;
    let key = (!n.is_multiple_of(17)).then(|| format!("key-{n}").into_bytes());
    let value = (!n.is_multiple_of(23)).then(|| {
        (0..(n * 7919) % 300)
            .map(|j| (j * 31 + n) as u8)
            .collect::<Vec<u8>>()
    });
    let headers = match n % 3 {
        0 => Vec::new(),
        1 => vec![("trace".to_string(), Some(format!("t{n}").into_bytes()))],
        _ => vec![
            ("a".to_string(), Some(vec![0, 1, 2, (n % 251) as u8])),
            ("empty".to_string(), None),
        ],
    };
    Rec {
        partition: (n % PARTITIONS as usize) as i32,
        key,
        value,
        headers,
        timestamp: BASE_TS + n as i64,
    }
}

/// Where a record landed (partition, offset), or why it did not.
type Delivery = Result<(i32, i64), String>;

/// Delivery reports by record index.
#[derive(Default)]
struct Reports(Mutex<HashMap<usize, Delivery>>);

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = usize;
    fn delivery(&self, r: &DeliveryResult<'_>, index: usize) {
        let v = match r {
            Ok(m) => Ok((m.partition(), m.offset())),
            Err((e, _)) => Err(e.to_string()),
        };
        self.0.lock().unwrap().insert(index, v);
    }
}

fn produce(bootstrap: &str, codec: usize) -> HashMap<usize, (i32, i64)> {
    let producer: BaseProducer<Reports> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("compression.type", CODECS[codec])
        .set("linger.ms", "5")
        .set("batch.num.messages", "300")
        .create_with_context(Reports::default())
        .expect("producer");
    for i in 0..PER_CODEC {
        let r = expected(codec, i);
        let mut headers = OwnedHeaders::new();
        for (k, v) in &r.headers {
            headers = headers.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        let mut rec: BaseRecord<'_, [u8], [u8], usize> = BaseRecord::with_opaque_to(TOPIC, i)
            .partition(r.partition)
            .timestamp(r.timestamp)
            .headers(headers);
        if let Some(k) = &r.key {
            rec = rec.key(k.as_slice());
        }
        if let Some(v) = &r.value {
            rec = rec.payload(v.as_slice());
        }
        let mut rec = rec;
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    rec = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
    let reports = std::mem::take(&mut *producer.context().0.lock().unwrap());
    assert_eq!(
        reports.len(),
        PER_CODEC,
        "{}: every record got a report",
        CODECS[codec]
    );
    reports
        .into_iter()
        .map(|(i, r)| {
            (
                i,
                r.unwrap_or_else(|e| panic!("{}: record {i} failed: {e}", CODECS[codec])),
            )
        })
        .collect()
}

fn consume(bootstrap: &str, total: usize) -> Vec<(i64, Rec)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "kring-mock-interop")
        .set("enable.auto.commit", "false")
        .set("check.crcs", "true")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    let mut got = Vec::with_capacity(total);
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < total {
        assert!(
            Instant::now() < deadline,
            "consumed only {} of {total}",
            got.len()
        );
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.expect("consume");
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        let Timestamp::CreateTime(ts) = m.timestamp() else {
            panic!("expected CreateTime, got {:?}", m.timestamp());
        };
        got.push((
            m.offset(),
            Rec {
                partition: m.partition(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                headers,
                timestamp: ts,
            },
        ));
    }
    got
}

#[test]
fn librdkafka_produces_and_consumes_byte_exact() {
    let cluster = MockCluster::builder()
        .brokers(3)
        .topic(TOPIC, PARTITIONS)
        .build()
        .unwrap();
    let bootstrap = cluster.bootstrap_servers();

    // (partition, offset) → what was sent.
    let mut sent: HashMap<(i32, i64), Rec> = HashMap::new();
    for codec in 0..CODECS.len() {
        for (i, (partition, offset)) in produce(&bootstrap, codec) {
            let want = expected(codec, i);
            assert_eq!(partition, want.partition);
            assert!(
                sent.insert((partition, offset), want).is_none(),
                "offset reused"
            );
        }
    }
    let total = PER_CODEC * CODECS.len();
    assert_eq!(sent.len(), total);

    let consumed = consume(&bootstrap, total);
    assert_eq!(consumed.len(), total);
    for (offset, rec) in &consumed {
        let want = sent
            .get(&(rec.partition, *offset))
            .unwrap_or_else(|| panic!("unexpected record at {}/{offset}", rec.partition));
        assert_eq!(rec, want, "record at {}/{offset}", rec.partition);
    }

    // The mock's own read-back agrees, in offset order, with no gaps.
    for p in 0..PARTITIONS {
        let stored = cluster.records(TOPIC, p).unwrap();
        assert_eq!(stored.len(), total / PARTITIONS as usize);
        for (i, s) in stored.iter().enumerate() {
            assert_eq!(s.offset, i as i64);
            let want = &sent[&(p, s.offset)];
            let headers: Vec<(String, Option<Vec<u8>>)> = s
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.as_ref().map(|b| b.to_vec())))
                .collect();
            assert_eq!(s.key.as_deref(), want.key.as_deref());
            assert_eq!(s.value.as_deref(), want.value.as_deref());
            assert_eq!(headers, want.headers);
            assert_eq!(s.timestamp, want.timestamp);
        }
        // Batches carry the idempotent producer's id and in-order sequences.
        let batches = cluster.batches(TOPIC, p).unwrap();
        assert!(batches.iter().all(|b| b.header.producer_id >= 1000));
        let codecs: std::collections::BTreeSet<i16> =
            batches.iter().map(|b| b.header.attributes & 7).collect();
        assert_eq!(
            codecs.len(),
            CODECS.len(),
            "partition {p} saw every codec: {codecs:?}"
        );
    }
}
