//! kring against Apache Kafka 4.4.0 enforcing a produce quota (KIP-219):
//! the broker answers at once with a throttle time and mutes the
//! connection that long, expecting the client to send nothing meanwhile.
//! A producer far faster than its quota must deliver every record, in
//! order and once, and report the throttling in its statistics:
//!
//! - with a request timeout well above the throttle times, no request
//!   times out (none is written into a muted connection);
//! - with one below them (2 s), requests pipelined before a throttle was
//!   known wait in the mute and time out, as they would with the Java
//!   client; the connection is dropped and the batches retried, and the
//!   log still holds every record once, in order (idempotence).

mod support;

use std::time::{Duration, Instant};

use kring::Record;
use kring_testcluster::KafkaCluster;

const CLIENT: &str = "kring-quota-test";
/// Bytes per second the broker lets this client produce.
const RATE: usize = 256 * 1024;
/// Records of 1 KB per run: several seconds of this quota.
const N: usize = 3000;

/// Sends `N` records to `topic` under the quota; checks they are acked
/// once each, in order, and read back; returns (throttled responses,
/// request timeouts).
fn run(c: &KafkaCluster, topic: &str, request_timeout: Duration) -> (u64, u64) {
    c.create_topic(topic, 1, 1, &[]).unwrap();
    let p = support::producer_builder()
        .bootstrap(&c.bootstrap())
        .client_id(CLIENT)
        .idempotence(true)
        .linger(Duration::from_millis(5))
        .request_timeout(request_timeout)
        .build()
        .expect("producer");
    let value = vec![b'q'; 1000];
    let start = Instant::now();
    let futures: Vec<_> = (0..N)
        .map(|_| p.send(Record::new(topic, &value)).expect("send"))
        .collect();
    let offsets: Vec<i64> = futures
        .into_iter()
        .map(|f| {
            f.wait_timeout(Duration::from_secs(120))
                .expect("a result")
                .expect("delivered")
                .offset
        })
        .collect();
    let took = start.elapsed();
    assert_eq!(
        offsets,
        (0..N as i64).collect::<Vec<_>>(),
        "once each, in order"
    );
    let stats = p.statistics();
    let sum =
        |f: &dyn Fn(&kring::BrokerStatistics) -> u64| stats.brokers.iter().map(f).sum::<u64>();
    let throttled = sum(&|b| b.throttled_responses);
    let timeouts = sum(&|b| b.request_timeouts);
    let throttle_ms = sum(&|b| b.throttle_time_total.as_millis() as u64);
    eprintln!(
        "request.timeout.ms {request_timeout:?}: {N} records of 1 KB in {took:?}, {throttled} throttled responses, {throttle_ms} ms throttled in all, {timeouts} request timeouts"
    );
    assert!(p.close_timeout(Duration::from_secs(30)));
    let read = support::read_java(&c.bootstrap(), topic, 1);
    assert_eq!(read.len(), N, "exactly the records sent, once each");
    (throttled, timeouts)
}

#[test]
fn producer_over_its_quota_is_throttled_and_delivers_everything_once_in_order() {
    let c = KafkaCluster::shared(1);
    c.tool(
        "org.apache.kafka.tools.ConfigCommand",
        &[
            "--alter",
            "--entity-type",
            "clients",
            "--entity-name",
            CLIENT,
            "--add-config",
            &format!("producer_byte_rate={RATE}"),
        ],
    )
    .unwrap();
    support::trace::init();
    let (throttled, timeouts) = run(c, "quota-patient", Duration::from_secs(10));
    assert!(throttled > 0, "the quota never throttled");
    assert_eq!(timeouts, 0, "a request was written into a muted connection");
    let (throttled, _) = run(c, "quota-impatient", Duration::from_secs(2));
    assert!(throttled > 0, "the quota never throttled");
}
