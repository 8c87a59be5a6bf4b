//! kring against librdkafka's mock cluster (`rdkafka::mocking`): an
//! independent implementation of the broker side, written by librdkafka's
//! authors, that can move partition leaders, take brokers down and up, and
//! inject request errors. With idempotence on, every run must end with each
//! record stored exactly once, in send order per partition, where kring
//! reported it; librdkafka's consumer reads it back (CRC checks on).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kring::{Producer, ProducerBuilder};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use support::{landed, read_rdkafka_each, Checker, Workload};

const TOPIC: &str = "t";
const PARTITIONS: i32 = 6;
const BROKERS: i32 = 3;

fn cluster() -> MockCluster<'static, DefaultProducerContext> {
    support::trace::init();
    let c = MockCluster::new(BROKERS).expect("librdkafka mock cluster");
    c.create_topic(TOPIC, PARTITIONS, BROKERS).unwrap();
    // librdkafka 2.12.1's mock writes the top-level tag buffer of flexible
    // Metadata responses (v9+) twice (rdkafka_mock_handlers.c writes it,
    // then rd_kafka_mock_connection_send_response adds another), one stray
    // byte that librdkafka's own client ignores and kring's strict decoder
    // rejects. Metadata v8 carries everything kring uses.
    c.apiversion(RDKafkaApiKey::Metadata, Some(0), Some(8))
        .unwrap();
    c
}

/// Fast retries and reconnects, so faults cost milliseconds.
fn producer(bootstrap: &str) -> ProducerBuilder {
    support::producer_builder()
        .bootstrap(bootstrap)
        .retry_backoff(Duration::from_millis(10))
        .retry_backoff_max(Duration::from_millis(100))
        .metadata_max_age(Duration::from_secs(1))
}

fn read_back(bootstrap: &str, w: &Workload, landed: &[(i32, i64)]) {
    let mut c = Checker::new("librdkafka", w, Some(landed));
    read_rdkafka_each(bootstrap, TOPIC, PARTITIONS, w.n, |r| c.check(&r));
    c.finish();
}

/// Sends `w` from a second thread while `chaos` runs on this one (the mock
/// cluster handle is not `Send`), calling it with a function that waits
/// until at least `n` records were sent.
fn run_with_chaos(
    p: &Producer,
    w: &Workload,
    chaos: impl FnOnce(&dyn Fn(usize)),
) -> Vec<(i32, i64)> {
    let sent = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let sender = s.spawn(|| {
            let futures: Vec<_> = (0..w.n as u64)
                .map(|i| {
                    let f = w.send(p, TOPIC, i);
                    sent.store(i as usize + 1, Ordering::Relaxed);
                    f
                })
                .collect();
            assert!(p.flush_timeout(Duration::from_secs(120)), "flush");
            landed(&futures)
        });
        let wait_for = |n: usize| {
            while sent.load(Ordering::Relaxed) < n && !sender.is_finished() {
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        chaos(&wait_for);
        sender.join().unwrap()
    })
}

/// Partition leaders move while records flow: every record is stored
/// exactly once, where kring reported it.
///
/// Order is not checked here: after a move kring sends a partition's next
/// batches to the new leader while earlier ones may still be in flight to
/// the old one (which answers NOT_LEADER_OR_FOLLOWER); a Kafka broker then
/// rejects the later batches with OUT_OF_ORDER_SEQUENCE_NUMBER until the
/// earlier ones are resent, but librdkafka's mock checks sequences only for
/// transactional producers and appends them. Order across leader moves is
/// checked against kring-mock (`e2e_mock_faults`).
#[test]
fn leader_moves_mid_run() {
    let c = cluster();
    let bootstrap = c.bootstrap_servers();
    let p = producer(&bootstrap).build().unwrap();
    let w = Workload::new(30_000);
    let landed = run_with_chaos(&p, &w, |wait_for| {
        for (round, at) in [3_000, 9_000, 15_000, 21_000].into_iter().enumerate() {
            wait_for(at);
            for part in 0..PARTITIONS {
                let leader = (part + round as i32 + 1) % BROKERS + 1;
                c.partition_leader(TOPIC, part, Some(leader)).unwrap();
            }
        }
    });
    assert!(p.close());
    let mut c = Checker::new("librdkafka", &w, Some(&landed)).unordered();
    read_rdkafka_each(&bootstrap, TOPIC, PARTITIONS, w.n, |r| c.check(&r));
    c.finish();
}

/// Brokers go down (connections cut, no new ones) and come back while
/// records flow. No record is lost, every copy is intact, order holds.
///
/// librdkafka's mock does not deduplicate the batches of an idempotent
/// (non-transactional) producer (`rd_kafka_mock_validate_records` checks
/// sequences only with a transactional id), so a request applied just
/// before its connection was cut is stored again when kring retries it: this
/// broker allows at-least-once only. Exactly-once across a broker restart is
/// checked against kring-mock, which deduplicates like Kafka
/// (`e2e_mock_faults::leader_moves_and_broker_restart_mid_run`).
#[test]
fn broker_down_and_up_mid_run() {
    let c = cluster();
    let bootstrap = c.bootstrap_servers();
    let p = producer(&bootstrap)
        .reconnect_backoff_max(Duration::from_millis(100))
        .build()
        .unwrap();
    let w = Workload::new(30_000);
    let landed = run_with_chaos(&p, &w, |wait_for| {
        wait_for(5_000);
        c.broker_down(2).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        c.broker_up(2).unwrap();
        wait_for(15_000);
        c.broker_down(1).unwrap();
        c.broker_down(3).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        c.broker_up(1).unwrap();
        c.broker_up(3).unwrap();
    });
    assert!(p.close());
    let mut checker = Checker::at_least_once("librdkafka", &w, &landed);
    let mut stored = 0;
    // Read whatever is there: every record, plus any copies.
    let total: i64 = (0..PARTITIONS)
        .map(|part| high_watermark(&bootstrap, part))
        .sum();
    read_rdkafka_each(&bootstrap, TOPIC, PARTITIONS, total as usize, |r| {
        stored += 1;
        checker.check(&r);
    });
    let duplicates = checker.finish();
    eprintln!(
        "{stored} records stored for {} sent ({duplicates} copies)",
        w.n
    );
}

/// The high watermark of a partition, asked of the mock with librdkafka.
fn high_watermark(bootstrap: &str, partition: i32) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    consumer
        .fetch_watermarks(TOPIC, partition, Duration::from_secs(10))
        .unwrap()
        .1
}

/// Produce requests answered with retriable errors, and connections
/// dropped on a Produce request (librdkafka's `_TRANSPORT`), mid-stream.
///
/// One request in flight per connection: librdkafka's mock checks the
/// sequence numbers of transactional producers only
/// (`rd_kafka_mock_validate_records` returns early without a transactional
/// id), so when one of several pipelined requests fails, the requests
/// behind it are appended and the retried batch lands after them. Keeping
/// order across pipelined failures is the broker's part of idempotence
/// (OUT_OF_ORDER_SEQUENCE_NUMBER); it is tested against kring-mock, which
/// checks sequences as Kafka does (`e2e_mock_faults`).
#[test]
fn injected_produce_errors_mid_run() {
    let c = cluster();
    let bootstrap = c.bootstrap_servers();
    let p = producer(&bootstrap).max_in_flight(1).build().unwrap();
    let w = Workload::new(20_000);
    // Every partition first holds some of this producer's batches (see
    // e2e_mock_faults::first_batch_of_a_partition_lost_to_a_retriable_error).
    let mut landed = w.send_range(&p, TOPIC, 0..2_000);
    c.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__TRANSPORT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__TRANSPORT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        ],
    );
    landed.extend(w.send_range(&p, TOPIC, 2_000..w.n));
    assert!(p.close());
    read_back(&bootstrap, &w, &landed);
}
