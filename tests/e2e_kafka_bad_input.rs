//! Bad input against a real broker (Apache Kafka 4.4.0, auto-create off):
//! each mistake gets a typed error, promptly, and the producer keeps
//! working for other topics afterwards.
//!
//! - a topic that does not exist;
//! - a record over the topic's `max.message.bytes` (but under
//!   `max.request.size`, so only the broker can refuse it);
//! - an explicit partition beyond the topic's partition count.
//!
//! Errors kring learns from one broker answer must come well before the
//! default `max.block.ms` (60 s) and `delivery.timeout.ms` (120 s). Records
//! that each fit `max.message.bytes` but not as one batch are all
//! delivered (the refused batch is split).

mod support;

use std::time::{Duration, Instant};

use kring::{DeliveryError, LastError, MessageStatus, Producer, Record, SendError};
use kring_testcluster::KafkaCluster;

/// How long an error that kring can know from one broker answer may take.
const PROMPT: Duration = Duration::from_secs(10);

fn producer(cluster: &KafkaCluster) -> Producer {
    support::trace::init();
    support::producer_builder()
        .bootstrap(&cluster.bootstrap())
        .linger(Duration::from_millis(1))
        .build()
        .expect("producer")
}

/// The producer still delivers to a good topic.
fn still_works(p: &Producer, topic: &str) {
    let t = Instant::now();
    let f = p
        .send(Record::new(topic, b"after").partition(0))
        .expect("send");
    let md = f
        .wait_timeout(Duration::from_secs(60))
        .expect("a result")
        .expect("delivered");
    assert_eq!(md.partition, 0);
    assert!(md.offset >= 0);
    eprintln!(
        "  then a record to {topic} was delivered in {:?}",
        t.elapsed()
    );
}

/// Sends to a topic that does not exist; checks the typed error and that
/// the producer goes on. Returns how long `send` took.
fn send_to_missing_topic(p: &Producer, good: &str) -> Duration {
    still_works(p, good);
    let t = Instant::now();
    let r = p.send(Record::new("no-such-topic", b"x"));
    let took = t.elapsed();
    eprintln!("send to a missing topic: {r:?} after {took:?}");
    match &r {
        Err(SendError::TopicError { topic, error }) if &**topic == "no-such-topic" => {
            assert_eq!(error.name(), "UNKNOWN_TOPIC_OR_PARTITION")
        }
        Err(SendError::MetadataTimeout {
            topic,
            last_error: Some(LastError::Broker { code: error, .. }),
            ..
        }) if &**topic == "no-such-topic" => {
            assert_eq!(error.name(), "UNKNOWN_TOPIC_OR_PARTITION")
        }
        other => panic!("send to a missing topic: {other:?}"),
    }
    still_works(p, good);
    took
}

/// With `max.block.ms` at 3 s: the typed error (MetadataTimeout naming
/// UNKNOWN_TOPIC_OR_PARTITION) within that bound.
#[test]
fn unknown_topic_within_max_block() {
    let cluster = KafkaCluster::shared(1);
    cluster.create_topic("good-1", 1, 1, &[]).unwrap();
    support::trace::init();
    let p = support::producer_builder()
        .bootstrap(&cluster.bootstrap())
        .linger(Duration::from_millis(1))
        .max_block(Duration::from_secs(3))
        .build()
        .expect("producer");
    let took = send_to_missing_topic(&p, "good-1");
    assert!(
        took < Duration::from_secs(6),
        "max.block.ms of 3 s took {took:?}"
    );
    assert!(p.close_timeout(Duration::from_secs(30)));
}

/// With the default `max.block.ms` (60 s), a topic the broker reports as
/// UNKNOWN_TOPIC_OR_PARTITION (auto-create off) fails once
/// `topic.metadata.propagation.max.ms` (default 5 s) has passed since its
/// first use (the Java client would wait the full 60 s); a second send
/// fails at once.
#[test]
fn unknown_topic_promptly_with_default_max_block() {
    let cluster = KafkaCluster::shared(1);
    cluster.create_topic("good-1", 1, 1, &[]).unwrap();
    let p = producer(cluster);
    let took = send_to_missing_topic(&p, "good-1");
    assert!(took < PROMPT, "a missing topic took {took:?} to report");
    let again = send_to_missing_topic(&p, "good-1");
    assert!(
        again < Duration::from_secs(1),
        "a topic known to be missing took {again:?} to report"
    );
    assert!(p.close_timeout(Duration::from_secs(30)));
}

#[test]
fn record_over_max_message_bytes() {
    let cluster = KafkaCluster::shared(1);
    cluster.create_topic("good-2", 1, 1, &[]).unwrap();
    cluster
        .create_topic("small-records", 1, 1, &[("max.message.bytes", "10000")])
        .unwrap();
    let p = producer(cluster);
    still_works(&p, "small-records");

    // 50 KB: under max.request.size (1 MB), so kring sends it and the
    // broker refuses it.
    let big = vec![7u8; 50_000];
    let t = Instant::now();
    let f = p.send(Record::new("small-records", &big)).expect("send");
    let r = f.wait_timeout(Duration::from_secs(180)).expect("a result");
    let took = t.elapsed();
    eprintln!("a record over max.message.bytes: {r:?} after {took:?}");
    match &r {
        // A batch of this one record: it cannot be split.
        Err(e @ DeliveryError::MessageTooLarge { .. }) => {
            assert_eq!(e.status(), MessageStatus::NotPersisted, "{e}")
        }
        other => panic!("a record over max.message.bytes: {other:?}"),
    }
    assert!(took < PROMPT, "MESSAGE_TOO_LARGE took {took:?} to report");
    still_works(&p, "small-records");
    still_works(&p, "good-2");
    assert!(p.close_timeout(Duration::from_secs(30)));
}

/// An explicit partition beyond a known partition count fails at once with
/// `InvalidPartition` (with the default `max.block.ms` of 60 s, the bound
/// checked is well under a second), and the producer goes on.
#[test]
fn partition_beyond_the_topic() {
    let cluster = KafkaCluster::shared(1);
    cluster.create_topic("four", 4, 1, &[]).unwrap();
    support::trace::init();
    let p = support::producer_builder()
        .bootstrap(&cluster.bootstrap())
        .linger(Duration::from_millis(1))
        .build()
        .expect("producer");
    still_works(&p, "four");

    for partition in [4, i32::MAX] {
        let t = Instant::now();
        let r = p.send(Record::new("four", b"x").partition(partition));
        let took = t.elapsed();
        eprintln!("send to partition {partition} of 4: {r:?} after {took:?}");
        match &r {
            Err(SendError::InvalidPartition {
                topic,
                partition: got,
                num_partitions,
            }) => {
                assert_eq!(&**topic, "four");
                assert_eq!(*got, partition);
                assert_eq!(*num_partitions, 4);
            }
            other => panic!("send to partition {partition} of 4: {other:?}"),
        }
        assert!(
            took < Duration::from_secs(1),
            "partition {partition} of 4 took {took:?}"
        );
    }
    let t = Instant::now();
    let r = p.send(Record::new("four", b"x").partition(-1));
    eprintln!("send to partition -1: {r:?} after {:?}", t.elapsed());
    assert!(r.is_err(), "partition -1 accepted");
    still_works(&p, "four");
    assert!(p.close_timeout(Duration::from_secs(30)));
}

/// Records that each fit the topic's `max.message.bytes` but together make
/// a batch over it: the broker answers MESSAGE_TOO_LARGE for the batch,
/// kring splits it and sends the halves again (as the Java client's Sender
/// splits any refused batch of more than one record), and every record is
/// delivered, once, in order, at consecutive offsets — with idempotence on
/// and off.
#[test]
fn records_that_fit_but_batch_does_not() {
    let cluster = KafkaCluster::shared(1);
    for idempotence in [true, false] {
        let topic = format!("small-batches-{idempotence}");
        cluster
            .create_topic(&topic, 1, 1, &[("max.message.bytes", "4000")])
            .unwrap();
        support::trace::init();
        let p = support::producer_builder()
            .bootstrap(&cluster.bootstrap())
            .linger(Duration::from_millis(50))
            .idempotence(idempotence)
            .acks(kring::Acks::All)
            .max_in_flight(if idempotence { 5 } else { 1 })
            .build()
            .expect("producer");
        let futures: Vec<_> = (0..40u32)
            .map(|i| {
                let mut value = format!("{i:04}").into_bytes();
                value.resize(500, b'v');
                p.send(Record::new(&topic, &value).partition(0))
                    .expect("send")
            })
            .collect();
        assert!(p.flush_timeout(Duration::from_secs(60)));
        let mut offsets = Vec::new();
        let mut failed = Vec::new();
        for f in &futures {
            match f.wait_timeout(Duration::from_secs(60)).expect("a result") {
                Ok(md) => offsets.push(md.offset),
                Err(e) => failed.push(e.to_string()),
            }
        }
        assert!(
            failed.is_empty(),
            "idempotence {idempotence}: {} of 40 records of 500 B failed on a topic taking 4000 B batches: {}",
            failed.len(),
            failed.first().map(String::as_str).unwrap_or_default()
        );
        let first = offsets[0];
        assert_eq!(
            offsets,
            (first..first + 40).collect::<Vec<i64>>(),
            "idempotence {idempotence}: consecutive offsets in send order"
        );
        eprintln!(
            "idempotence {idempotence}: 40 records at offsets {first}..{}",
            first + 40
        );
        assert!(p.close_timeout(Duration::from_secs(30)));
    }
}

/// A record older than the topic's `message.timestamp.before.max.ms`,
/// in one batch with good records (same partition, idempotence on): Kafka
/// refuses the whole batch with INVALID_TIMESTAMP and names the old record
/// (KIP-467). Every record of that batch fails, promptly and as not
/// persisted; the old one carries the broker's reason, the others are
/// told they were not named. The partition goes on: the next records
/// are delivered right after what was written before (the refused
/// batch's sequence numbers taken back), and nothing refused is in the log.
#[test]
fn batch_with_a_record_too_old_fails_whole_and_the_partition_goes_on() {
    let cluster = KafkaCluster::shared(1);
    cluster
        .create_topic(
            "old-timestamps",
            1,
            1,
            &[("message.timestamp.before.max.ms", "3600000")],
        )
        .unwrap();
    support::trace::init();
    let p = support::producer_builder()
        .bootstrap(&cluster.bootstrap())
        // Long enough that the records below share one batch.
        .linger(Duration::from_millis(200))
        .idempotence(true)
        .build()
        .expect("producer");
    let first = p
        .send(Record::new("old-timestamps", b"before").partition(0))
        .expect("send");
    assert_eq!(
        first
            .wait_timeout(Duration::from_secs(60))
            .expect("a result")
            .expect("delivered")
            .offset,
        0
    );

    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let day_old = now_ms - 24 * 3600 * 1000;
    let t = Instant::now();
    let batch: Vec<_> = (0..5)
        .map(|i| {
            let r = Record::new("old-timestamps", b"in the refused batch").partition(0);
            let r = if i == 2 { r.timestamp(day_old) } else { r };
            p.send(r).expect("send")
        })
        .collect();
    let results: Vec<_> = batch
        .into_iter()
        .map(|f| f.wait_timeout(Duration::from_secs(60)).expect("a result"))
        .collect();
    let took = t.elapsed();
    eprintln!("a batch with a record a day old: {results:?} after {took:?}");
    assert!(took < PROMPT, "INVALID_TIMESTAMP took {took:?} to report");
    for (i, r) in results.iter().enumerate() {
        match r {
            Err(DeliveryError::InvalidRecords {
                code,
                record_error,
                invalid_records,
                status,
                ..
            }) => {
                assert_eq!(*code, 32, "INVALID_TIMESTAMP");
                assert_eq!(*invalid_records, 1);
                assert_eq!(*status, MessageStatus::NotPersisted);
                assert_eq!(record_error.is_some(), i == 2, "record {i}: {r:?}");
            }
            other => panic!("record {i}: {other:?}"),
        }
    }

    let after: Vec<i64> = (0..3)
        .map(|_| {
            p.send(Record::new("old-timestamps", b"after").partition(0))
                .expect("send")
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|f| {
            f.wait_timeout(Duration::from_secs(60))
                .expect("a result")
                .expect("delivered after the refused batch")
                .offset
        })
        .collect();
    assert_eq!(after, vec![1, 2, 3]);
    assert!(p.close_timeout(Duration::from_secs(30)));
    let read = support::read_rdkafka(&cluster.bootstrap(), "old-timestamps", 1, 4);
    let values: Vec<Vec<u8>> = read.into_iter().map(|r| r.value.unwrap()).collect();
    assert_eq!(
        values,
        vec![
            b"before".to_vec(),
            b"after".to_vec(),
            b"after".to_vec(),
            b"after".to_vec()
        ]
    );
}
