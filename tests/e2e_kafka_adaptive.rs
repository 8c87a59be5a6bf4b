//! Adaptive sticky partitioning (KIP-794, `partitioner.adaptive.partitioning.enable`,
//! on by default as in the Java client) on Apache Kafka 4.4.0: while one
//! of three brokers is stalled (SIGSTOP, its connections open but
//! unanswered), keyless records go mostly to the partitions of the other
//! two, whose batches do not queue up; with
//! `partitioner.availability.timeout.ms` they stop going to the stalled
//! broker at all once it has been unable to take a request for that long.
//! Every record is still delivered exactly once when the broker comes
//! back, where it was reported.
//!
//! With the choice made uniform, the stalled broker's two partitions of
//! six would take about a third of the records sent during the stall
//! (`KRING_TEST_ADAPTIVE=0` runs the first phase with the setting off:
//! 0.34 of the records then, against 0.09–0.10 with it on, in four runs).

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kring::{Acks, DeliveryFuture, Producer, ProducerBuilder, Record};
use kring_testcluster::{ClusterConfig, KafkaCluster};

const TOPIC: &str = "adaptive-sticky";
const STALL: Duration = Duration::from_secs(3);
const AVAILABILITY_TIMEOUT: Duration = Duration::from_millis(500);

/// A record sent while the broker was stalled: its value, its result, and
/// how long after the stall began it was sent.
type Sent = (Vec<u8>, DeliveryFuture, Duration);

#[test]
fn keyless_records_avoid_a_stalled_broker() {
    support::trace::init();
    let c = KafkaCluster::start(ClusterConfig::new(3))
        .unwrap_or_else(|e| panic!("cannot start a 3-node Kafka cluster: {e}"));
    c.create_topic(TOPIC, 6, 1, &[]).unwrap();
    let leaders: Vec<i32> = (0..6).map(|p| c.leader_of(TOPIC, p).unwrap()).collect();
    // The stalled broker leads two of the six partitions (leaders are
    // spread evenly over the three nodes when the topic is created).
    let stalled = leaders[0];
    assert_eq!(
        leaders.iter().filter(|&&l| l == stalled).count(),
        2,
        "leaders {leaders:?}"
    );
    let on_stalled = |sent: &[Sent], from: Duration| -> (usize, usize) {
        let late: Vec<_> = sent.iter().filter(|s| s.2 >= from).collect();
        let n = late
            .iter()
            .filter(|s| {
                let md =
                    s.1.wait_timeout(Duration::from_secs(120))
                        .expect("a result");
                let md = md.unwrap_or_else(|e| panic!("not delivered: {e}"));
                leaders[md.partition as usize] == stalled
            })
            .count();
        (n, late.len())
    };
    let mut reported: HashMap<(i32, i64), Vec<u8>> = HashMap::new();
    let mut n = 0u64;

    // 1. Adaptive choice alone.
    let adaptive = std::env::var("KRING_TEST_ADAPTIVE").map_or(true, |v| v != "0");
    let p = builder(&c)
        .partitioner_adaptive_partitioning_enable(adaptive)
        .build()
        .expect("producer");
    let sent = stall_phase(&c, &p, stalled, &mut n);
    let (to_stalled, of) = on_stalled(&sent, Duration::from_micros(1));
    let share = to_stalled as f64 / of as f64;
    eprintln!(
        "adaptive={adaptive}: {of} records during the stall, {to_stalled} ({share:.3}) to node \
         {stalled}'s partitions"
    );
    if adaptive {
        assert!(
            share < 0.18,
            "the stalled broker's partitions took {share:.3} of the records"
        );
    }
    record(&mut reported, &sent);
    assert!(p.close_timeout(Duration::from_secs(60)), "closed");

    // 2. With partitioner.availability.timeout.ms: none once the broker
    // has been unable to take a request for the timeout (its 5 requests
    // in flight are unanswered within milliseconds of the stall).
    let p = builder(&c)
        .partitioner_availability_timeout(AVAILABILITY_TIMEOUT)
        .build()
        .expect("producer");
    let sent = stall_phase(&c, &p, stalled, &mut n);
    let (to_stalled, of) = on_stalled(&sent, AVAILABILITY_TIMEOUT * 3);
    eprintln!(
        "availability timeout {AVAILABILITY_TIMEOUT:?}: {to_stalled} of the {of} records sent \
         from {:?} into the stall went to node {stalled}'s partitions",
        AVAILABILITY_TIMEOUT * 3
    );
    assert_eq!(to_stalled, 0, "records to the stalled broker (of {of})");
    record(&mut reported, &sent);
    assert!(p.close_timeout(Duration::from_secs(60)), "closed");

    // Every record once, at the partition and offset reported.
    let read = support::read_java(&c.bootstrap(), TOPIC, 6);
    assert_eq!(read.len(), reported.len(), "records in the log");
    for r in &read {
        assert_eq!(
            reported.get(&(r.partition, r.offset)),
            r.value.as_ref(),
            "record at {}/{}",
            r.partition,
            r.offset
        );
    }
}

fn builder(c: &KafkaCluster) -> ProducerBuilder {
    support::producer_builder()
        .bootstrap(&c.bootstrap())
        .acks(Acks::Leader)
        .batch_size(2048)
        .linger(Duration::from_millis(5))
}

/// Sends 2,000 records with every broker up, then stalls `stalled` for
/// [`STALL`] while sending about 10,000 records a second (the stalled
/// partitions' queues grow while the others' leave every few
/// milliseconds), resumes it and flushes. Returns every record sent, those
/// before the stall at time zero.
fn stall_phase(c: &KafkaCluster, p: &Producer, stalled: i32, n: &mut u64) -> Vec<Sent> {
    p.wait_for_metadata(TOPIC, Duration::from_secs(60))
        .expect("metadata");
    let send = |n: &mut u64| {
        let v = value(*n);
        *n += 1;
        let f = p.send(Record::new(TOPIC, &v[..])).expect("send");
        (v, f)
    };
    let mut sent = Vec::new();
    for _ in 0..2_000 {
        let (v, f) = send(n);
        sent.push((v, f, Duration::ZERO));
    }
    assert!(p.flush_timeout(Duration::from_secs(60)), "flushed");
    c.pause(stalled);
    let start = Instant::now();
    while start.elapsed() < STALL {
        for _ in 0..20 {
            // Sent at least a microsecond in (the records before are at 0).
            let at = start.elapsed().max(Duration::from_micros(1));
            let (v, f) = send(n);
            sent.push((v, f, at));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    c.resume(stalled);
    assert!(p.flush_timeout(Duration::from_secs(120)), "flushed");
    sent
}

/// Adds each record's reported place; no place twice.
fn record(reported: &mut HashMap<(i32, i64), Vec<u8>>, sent: &[Sent]) {
    for (v, f, _) in sent {
        let md = f
            .wait_timeout(Duration::from_secs(1))
            .expect("a result")
            .unwrap_or_else(|e| panic!("not delivered: {e}"));
        assert!(
            reported
                .insert((md.partition, md.offset), v.clone())
                .is_none(),
            "two records reported at {}/{}",
            md.partition,
            md.offset
        );
    }
}

/// Record `n`'s value: its number, padded to 200 bytes.
fn value(n: u64) -> Vec<u8> {
    let mut v = format!("r{n}-").into_bytes();
    v.resize(200, b'.');
    v
}
