//! kring against Apache Kafka 4.4.0 (kring-testcluster), read back byte for
//! byte by the Java consumer (kafka-clients 4.4.0) and by librdkafka.
//!
//! Every codec (none, gzip, snappy, lz4, zstd) with idempotence on and off
//! writes records of every shape into one topic: null, empty and binary
//! keys; null, empty, small and 200 KB values; no headers, null-valued,
//! repeated, empty-named and non-ASCII header keys; explicit timestamps
//! (including 0) and none (kring's clock); partitions chosen by kring and
//! fixed by the caller. The delivery results name (partition, offset,
//! timestamp) of each record, and both readers must see exactly those
//! records there — nothing more, nothing less, every byte equal. A second
//! topic with `message.timestamp.type=LogAppendTime` checks that kring
//! reports the broker's time, as the readers see it.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kring::{Acks, Compression, DeliveryFuture, Header, Producer};
use kring_testcluster::KafkaCluster;
use support::{read_java, read_rdkafka, ReadRecord};

const PARTITIONS: i32 = 4;

/// One record to send.
struct Spec {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp: Option<i64>,
    partition: Option<i32>,
}

/// Deterministic bytes: `len` bytes from a seed, all 256 values occurring.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Record `i` of case `case`.
fn spec(case: u64, i: u64) -> Spec {
    let seed = case << 32 | i;
    let key = match i % 5 {
        0 => None,
        1 => Some(Vec::new()),
        2 => Some(format!("key-{}", i % 17).into_bytes()),
        _ => Some(bytes(seed, 1 + (i % 40) as usize)),
    };
    let value = match i % 7 {
        0 => None,
        1 => Some(Vec::new()),
        // A large record now and then: its own batch, its own request.
        2 if i % 49 == 2 => Some(bytes(seed ^ 1, 200 << 10)),
        // Compressible text.
        3 | 4 => Some(
            format!("value {i} of case {case} ")
                .repeat(1 + (i % 9) as usize)
                .into_bytes(),
        ),
        _ => Some(bytes(seed ^ 2, (i % 300) as usize + 1)),
    };
    let headers = match i % 4 {
        0 => Vec::new(),
        1 => vec![("null".to_owned(), None)],
        2 => vec![
            ("dup".to_owned(), Some(b"first".to_vec())),
            (String::new(), Some(Vec::new())),
            ("dup".to_owned(), Some(b"second".to_vec())),
        ],
        _ => vec![("schlüssel-ключ-🔑".to_owned(), Some(bytes(seed ^ 3, 33)))],
    };
    let timestamp = match i % 6 {
        0 => None,
        1 if i == 1 => Some(0),
        _ => Some(1_600_000_000_000 + (case * 1_000_000 + i) as i64),
    };
    let partition = i.is_multiple_of(3).then(|| (i % PARTITIONS as u64) as i32);
    Spec {
        key,
        value,
        headers,
        timestamp,
        partition,
    }
}

fn send(p: &Producer, topic: &str, s: &Spec) -> DeliveryFuture {
    let headers: Vec<Header<'_>> = s
        .headers
        .iter()
        .map(|(k, v)| Header {
            key: k,
            value: v.as_deref(),
        })
        .collect();
    let record = kring::Record {
        topic,
        partition: s.partition,
        key: s.key.as_deref(),
        value: s.value.as_deref(),
        headers: &headers,
        timestamp: s.timestamp,
        context: 0,
    };
    p.send(record).unwrap_or_else(|e| panic!("send: {e}"))
}

/// Sends `n` records of `case` and returns, for each, where it landed and
/// what a reader must see there.
fn run_case(
    bootstrap: &str,
    topic: &str,
    case: u64,
    compression: Compression,
    idempotence: bool,
    n: u64,
    log_append_time: bool,
) -> Vec<ReadRecord> {
    let mut b = support::producer_builder()
        .bootstrap(bootstrap)
        .compression(compression)
        .idempotence(idempotence)
        .linger(Duration::from_millis(5));
    if !idempotence {
        b = b.acks(Acks::Leader);
    }
    let p = b.build().expect("producer");
    let specs: Vec<Spec> = (0..n).map(|i| spec(case, i)).collect();
    let futures: Vec<DeliveryFuture> = specs.iter().map(|s| send(&p, topic, s)).collect();
    assert!(p.flush_timeout(Duration::from_secs(120)), "flush");
    let out = specs
        .into_iter()
        .zip(&futures)
        .enumerate()
        .map(|(i, (s, f))| {
            let md = f
                .wait_timeout(Duration::from_secs(60))
                .unwrap_or_else(|| panic!("case {case} record {i}: no result"))
                .unwrap_or_else(|e| panic!("case {case} record {i}: {e}"));
            if let Some(p) = s.partition {
                assert_eq!(md.partition, p, "case {case} record {i}: partition");
            }
            assert!(
                md.offset >= 0,
                "case {case} record {i}: offset {}",
                md.offset
            );
            if let Some(ts) = s.timestamp.filter(|_| !log_append_time) {
                assert_eq!(
                    md.timestamp_ms, ts,
                    "case {case} record {i}: reported timestamp"
                );
            }
            ReadRecord {
                partition: md.partition,
                offset: md.offset,
                timestamp: md.timestamp_ms,
                key: s.key,
                value: s.value,
                headers: s.headers,
            }
        })
        .collect();
    assert!(p.close_timeout(Duration::from_secs(30)));
    out
}

/// Compares what a reader saw with what kring reported, record by record;
/// `names` says which case wrote each position.
fn compare(
    reader: &str,
    got: &[ReadRecord],
    expected: &BTreeMap<(i32, i64), ReadRecord>,
    names: &BTreeMap<(i32, i64), String>,
) {
    let mut problems = Vec::new();
    let got_at: BTreeMap<(i32, i64), &ReadRecord> =
        got.iter().map(|r| ((r.partition, r.offset), r)).collect();
    assert_eq!(got_at.len(), got.len(), "{reader} read an offset twice");
    for (pos, want) in expected {
        match got_at.get(pos) {
            None => problems.push(format!("{} at {pos:?}: missing", names[pos])),
            Some(r) if *r != want => problems.push(format!(
                "{} at {pos:?}:\n  read      {r:?}\n  expected  {want:?}",
                names[pos]
            )),
            Some(_) => {}
        }
    }
    for pos in got_at.keys() {
        if !expected.contains_key(pos) {
            problems.push(format!("unexpected record at {pos:?}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{reader}: {} of {} records differ; first ones:\n{}",
        problems.len(),
        expected.len(),
        problems[..problems.len().min(10)].join("\n")
    );
}

#[test]
fn every_codec_and_record_shape_reads_back_byte_exact() {
    support::trace::init();
    let t = Instant::now();
    let cluster = KafkaCluster::shared(1);
    eprintln!("cluster ready in {:?}", t.elapsed());
    let bootstrap = cluster.bootstrap();
    cluster.create_topic("interop", PARTITIONS, 1, &[]).unwrap();

    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    let mut expected = BTreeMap::new();
    let mut names = BTreeMap::new();
    let mut case = 0;
    let t = Instant::now();
    for codec in codecs {
        // Non-idempotent first: an idempotent producer writing to a
        // partition the broker is not yet leading loses its records (see
        // `idempotent_writes_to_just_created_topics`).
        for idempotence in [false, true] {
            case += 1;
            let name = format!("{codec:?}, idempotence {idempotence}");
            for r in run_case(&bootstrap, "interop", case, codec, idempotence, 400, false) {
                let pos = (r.partition, r.offset);
                names.insert(pos, name.clone());
                assert!(
                    expected.insert(pos, r).is_none(),
                    "{name}: kring reported {pos:?} for two records"
                );
            }
        }
    }
    eprintln!("{} records sent in {:?}", expected.len(), t.elapsed());

    let t = Instant::now();
    let java = read_java(&bootstrap, "interop", PARTITIONS);
    eprintln!(
        "Java consumer read {} records in {:?}",
        java.len(),
        t.elapsed()
    );
    compare("Java consumer", &java, &expected, &names);

    let t = Instant::now();
    let rdkafka = read_rdkafka(&bootstrap, "interop", PARTITIONS, expected.len());
    eprintln!(
        "librdkafka read {} records in {:?}",
        rdkafka.len(),
        t.elapsed()
    );
    compare("librdkafka", &rdkafka, &expected, &names);
}

#[test]
fn log_append_time_is_reported_as_the_readers_see_it() {
    support::trace::init();
    let cluster = KafkaCluster::shared(1);
    let bootstrap = cluster.bootstrap();
    cluster
        .create_topic(
            "interop-append-time",
            PARTITIONS,
            1,
            &[("message.timestamp.type", "LogAppendTime")],
        )
        .unwrap();
    let mut expected = BTreeMap::new();
    let mut names = BTreeMap::new();
    // Non-idempotent first, as above.
    for (case, codec, idempotence) in [(1, Compression::None, false), (2, Compression::Lz4, true)] {
        for r in run_case(
            &bootstrap,
            "interop-append-time",
            100 + case,
            codec,
            idempotence,
            60,
            true,
        ) {
            // The broker's time, not the record's: explicit timestamps are
            // from 2020, the broker's clock is not.
            assert!(r.timestamp > 1_700_000_000_000, "{r:?}");
            let pos = (r.partition, r.offset);
            names.insert(pos, format!("{codec:?}, idempotence {idempotence}"));
            expected.insert(pos, r);
        }
    }
    let java = read_java(&bootstrap, "interop-append-time", PARTITIONS);
    compare("Java consumer", &java, &expected, &names);
    let rdkafka = read_rdkafka(
        &bootstrap,
        "interop-append-time",
        PARTITIONS,
        expected.len(),
    );
    compare("librdkafka", &rdkafka, &expected, &names);
}

/// An idempotent producer writing to topics the moment they are created,
/// several batches in flight per partition. Kafka answers the first batch
/// (sequence 0) NOT_LEADER_OR_FOLLOWER while the partition is not ready,
/// although Metadata already names the leader. Before kring-core kept one
/// batch in flight per partition until the broker acknowledged one in the
/// current epoch, the pipelined batches behind it got
/// OUT_OF_ORDER_SEQUENCE_NUMBER and every retry looped on it until
/// `delivery.timeout.ms` (4 of 4 runs); now every record is delivered.
#[test]
fn idempotent_writes_to_just_created_topics() {
    support::trace::init();
    let cluster = KafkaCluster::shared(1);
    let bootstrap = cluster.bootstrap();
    for t in 0..10 {
        let topic = format!("fresh-{t}");
        cluster.create_topic(&topic, PARTITIONS, 1, &[]).unwrap();
        let p = support::producer_builder()
            .bootstrap(&bootstrap)
            .linger(Duration::from_millis(0))
            .batch_size(1024)
            .delivery_timeout(Duration::from_secs(20))
            .request_timeout(Duration::from_secs(10))
            .build()
            .expect("producer");
        let value = vec![b'x'; 600];
        let futures: Vec<DeliveryFuture> = (0..400)
            .map(|i| {
                p.send(kring::Record::new(&topic, &value).partition(i % PARTITIONS))
                    .expect("send")
            })
            .collect();
        for (i, f) in futures.iter().enumerate() {
            let r = f.wait_timeout(Duration::from_secs(60)).expect("a result");
            if let Err(e) = r {
                panic!("{topic} record {i}: {e}");
            }
        }
        assert!(p.close_timeout(Duration::from_secs(30)));
    }
}
