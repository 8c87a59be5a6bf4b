//! An idempotent producer's past taken away under it, on Apache Kafka
//! 4.4.0, while it goes on with its sequences:
//!
//! - every record it wrote is deleted (DeleteRecords up to the log end,
//!   the log start moving past its last batch: where brokers before
//!   KIP-360 dropped the producer's state and answered its next batch
//!   UNKNOWN_PRODUCER_ID; Kafka 4.4 keeps the state until it expires);
//! - the broker forgets it: its state expires after
//!   `producer.id.expiration.ms` of silence (KIP-854; lowered to 1 s for
//!   the test, checked every 200 ms), which `kafka-transactions
//!   describe-producers` shows, so its next batch carries a sequence the
//!   broker has no record of.
//!
//! What must hold: every record after it is delivered once, in the order
//! sent, at the offsets reported, with no error and nothing asked of the
//! user; the log holds exactly the records reported.

mod support;

use std::time::Duration;

use kring::{Producer, Record};
use kring_testcluster::{ClusterConfig, KafkaCluster};

/// Sends `n` records numbered from `first` to partition 0 of `topic`, all
/// at once, and returns the offsets reported, in send order.
fn send_run(p: &Producer, topic: &str, first: u64, n: u64) -> Vec<i64> {
    let futures: Vec<_> = (first..first + n)
        .map(|i| {
            p.send(Record::new(topic, format!("r{i}").as_bytes()).partition(0))
                .expect("send")
        })
        .collect();
    futures
        .iter()
        .map(|f| {
            f.wait_timeout(Duration::from_secs(60))
                .expect("a result")
                .unwrap_or_else(|e| panic!("not delivered: {e}"))
                .offset
        })
        .collect()
}

/// The values of partition 0 of `topic` from `from_offset` on, with their
/// offsets, read back with the Java consumer.
fn read_from(c: &KafkaCluster, topic: &str, from_offset: i64) -> Vec<(i64, String)> {
    support::read_java(&c.bootstrap(), topic, 1)
        .into_iter()
        .filter(|r| r.offset >= from_offset)
        .map(|r| {
            (
                r.offset,
                String::from_utf8(r.value.expect("a value")).expect("utf-8"),
            )
        })
        .collect()
}

/// Checks that `offsets[k]` holds record `first + k`, that the offsets
/// rise, and that the log from the first of them holds exactly these.
fn check_log(c: &KafkaCluster, topic: &str, first: u64, offsets: &[i64]) {
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "offsets in send order: {offsets:?}"
    );
    let log = read_from(c, topic, offsets[0]);
    let want: Vec<(i64, String)> = offsets
        .iter()
        .enumerate()
        .map(|(k, &o)| (o, format!("r{}", first + k as u64)))
        .collect();
    assert_eq!(
        log, want,
        "{topic}: the log after the producer was forgotten"
    );
}

#[test]
fn forgotten_producer_state_is_not_an_error() {
    support::trace::init();
    let c = KafkaCluster::start(
        ClusterConfig::new(1).prop("producer.id.expiration.check.interval.ms", 200),
    )
    .unwrap_or_else(|e| panic!("cannot start Kafka: {e}"));
    c.create_topic("expired", 1, 1, &[]).unwrap();
    c.create_topic("deleted", 1, 1, &[]).unwrap();
    let p = support::producer_builder()
        .bootstrap(&c.bootstrap())
        .idempotence(true)
        .linger(Duration::from_millis(2))
        .batch_size(1024)
        .build()
        .expect("producer");

    // 1. Forgotten with the records it wrote: delete them all.
    let before = send_run(&p, "deleted", 0, 200);
    let end = before.last().unwrap() + 1;
    let json =
        std::env::temp_dir().join(format!("kring-delete-records-{}.json", std::process::id()));
    std::fs::write(
        &json,
        format!(
            r#"{{"partitions":[{{"topic":"deleted","partition":0,"offset":{end}}}],"version":1}}"#
        ),
    )
    .unwrap();
    let out = c
        .tool(
            "org.apache.kafka.tools.DeleteRecordsCommand",
            &["--offset-json-file", json.to_str().unwrap()],
        )
        .unwrap_or_else(|e| panic!("DeleteRecords: {e}"));
    let _ = std::fs::remove_file(&json);
    assert!(
        out.contains(&format!("low_watermark: {end}")),
        "DeleteRecords said: {out}"
    );
    let after = send_run(&p, "deleted", 200, 300);
    assert_eq!(after[0], end, "the log goes on where it was cut");
    check_log(&c, "deleted", 200, &after);

    // 2. Expired by silence: producer.id.expiration.ms lowered to 1 s (a
    // dynamic broker setting), then 3 s without a write.
    let before = send_run(&p, "expired", 0, 200);
    assert_eq!(before, (0..200).collect::<Vec<i64>>());
    assert_eq!(producers(&c, "expired"), 1, "the broker knows the producer");
    c.tool(
        "org.apache.kafka.tools.ConfigCommand",
        &[
            "--alter",
            "--entity-type",
            "brokers",
            "--entity-default",
            "--add-config",
            "producer.id.expiration.ms=1000",
        ],
    )
    .unwrap_or_else(|e| panic!("ConfigCommand: {e}"));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        producers(&c, "expired"),
        0,
        "the broker forgot the producer"
    );
    let after = send_run(&p, "expired", 200, 300);
    check_log(&c, "expired", 200, &after);
    assert_eq!(read_from(&c, "expired", 0).len(), 500);

    assert!(p.close_timeout(Duration::from_secs(30)), "closed");
}

/// How many producers the broker keeps state for in partition 0 of
/// `topic` (the rows of Kafka's `kafka-transactions describe-producers`
/// after its header).
fn producers(c: &KafkaCluster, topic: &str) -> usize {
    let out = c
        .tool(
            "org.apache.kafka.tools.TransactionsCommand",
            &["describe-producers", "--topic", topic, "--partition", "0"],
        )
        .unwrap_or_else(|e| panic!("describe-producers: {e}"));
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().unwrap_or_default();
    assert!(
        header.starts_with("ProducerId"),
        "describe-producers said: {out}"
    );
    lines.count()
}
