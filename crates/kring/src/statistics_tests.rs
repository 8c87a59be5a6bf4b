//! Statistics against a real broker (kring-mock): counts match what was
//! sent and what the driver wrote, reconnects after a broker stop/start,
//! throttle time, the periodic callback on the I/O thread, and a panicking
//! statistics callback that the producer survives.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use kring_mock::{Fault, MockCluster};

use crate::test_support::{builder, cluster, PRODUCE};
use crate::{BrokerState, Record, Statistics};

const GENEROUS: Duration = Duration::from_secs(20);

/// 2 brokers, 4 partitions, 400 records: per-partition and total counts
/// match the records sent and stored, and the brokers' byte counts match
/// what the driver wrote to and read from the sockets.
#[test]
fn counts_match_records_sent() {
    let c = MockCluster::builder()
        .brokers(2)
        .topic("t", 4)
        .build()
        .unwrap();
    let p = builder(&c).build().unwrap();
    for i in 0..400u32 {
        let part = (i % 4) as i32;
        // Results are read from the statistics and the broker's log.
        drop(
            p.send(Record::new("t", &i.to_be_bytes()).partition(part))
                .unwrap(),
        );
    }
    assert!(p.flush_timeout(GENEROUS));
    let s = p.statistics();
    println!("{}", s.to_json());
    let t = s.topics.iter().find(|t| t.name == "t").expect("topic t");
    assert_eq!(t.partitions.len(), 4);
    for ps in &t.partitions {
        let stored = c.records("t", ps.partition as i32).unwrap().len() as u64;
        assert_eq!(stored, 100);
        assert_eq!(ps.records_sent, 100, "{ps:?}");
        assert_eq!(ps.records_acked, 100);
        assert_eq!(ps.records_failed, 0);
        assert_eq!(ps.queued_records, 0);
        assert!(ps.batches_sent >= 1);
        assert!(ps.avg_batch_records() >= 1.0);
        assert_eq!(ps.leader, c.leader("t", ps.partition as i32));
    }
    assert_eq!(s.totals.records_sent, 400);
    assert_eq!(s.totals.records_acked, 400);
    assert_eq!(s.totals.records_failed, 0);
    assert_eq!(s.totals.requests_in_flight, 0);
    assert_eq!(s.totals.buffer_memory_used, 0);
    assert_eq!(s.totals.buffer_memory_limit, 32 * 1024 * 1024);
    assert_eq!(s.totals.produce_requests, c.request_count(PRODUCE));
    let m = p.metrics();
    let sent: u64 = s.brokers.iter().map(|b| b.bytes_sent).sum();
    let received: u64 = s.brokers.iter().map(|b| b.bytes_received).sum();
    assert_eq!(
        sent, m.bytes_sent,
        "what the core handed over is what was written"
    );
    assert_eq!(received, m.bytes_received);
    for id in c.broker_ids() {
        let b = s
            .brokers
            .iter()
            .find(|b| b.node_id == Some(id))
            .expect("broker");
        assert_eq!(b.state, BrokerState::Up);
        assert_eq!(b.addr, c.broker_addr(id).unwrap().to_string());
        assert_eq!(b.requests_sent, b.responses_received);
        assert!(b.rtt.count > 0 && b.rtt.p50 > Duration::ZERO, "{b:?}");
        assert!(b.rtt.p99 >= b.rtt.p50);
    }
    assert!(p.close());
    // After close: the final snapshot.
    let f = p.statistics();
    assert_eq!(f.totals.records_acked, 400);
}

/// A broker stopped and started again: the connection loss and the
/// reconnect are counted.
#[test]
fn reconnects_counted_after_broker_restart() {
    let c = cluster(1);
    let p = builder(&c)
        .reconnect_backoff(Duration::from_millis(10))
        .reconnect_backoff_max(Duration::from_millis(50))
        .build()
        .unwrap();
    p.send(Record::new("t", b"before"))
        .unwrap()
        .wait_timeout(GENEROUS)
        .expect("in time")
        .unwrap();
    let id = c.broker_ids()[0];
    let before = p.statistics();
    let b0 = before
        .brokers
        .iter()
        .find(|b| b.node_id == Some(id))
        .unwrap();
    assert_eq!(b0.disconnects, 0);
    c.stop_broker(id).unwrap();
    c.start_broker(id).unwrap();
    p.send(Record::new("t", b"after"))
        .unwrap()
        .wait_timeout(GENEROUS)
        .expect("in time")
        .unwrap();
    let s = p.statistics();
    let b = s.brokers.iter().find(|b| b.node_id == Some(id)).unwrap();
    println!("after restart: {b:?}");
    assert!(b.disconnects >= 1, "{b:?}");
    assert!(b.reconnects >= 1, "{b:?}");
    assert_eq!(b.reconnects, b.connects - 1);
    assert_eq!(b.state, BrokerState::Up);
    assert_eq!(s.totals.records_acked, 2);
    assert!(p.close());
}

/// A throttled produce response shows in the broker's throttle time.
#[test]
fn throttle_time_counted() {
    let c = cluster(1);
    let p = builder(&c).build().unwrap();
    p.send(Record::new("t", b"warm"))
        .unwrap()
        .wait_timeout(GENEROUS)
        .expect("in time")
        .unwrap();
    c.inject(Fault::throttle(PRODUCE, Duration::from_millis(120)).times(1));
    p.send(Record::new("t", b"throttled"))
        .unwrap()
        .wait_timeout(GENEROUS)
        .expect("in time")
        .unwrap();
    let s = p.statistics();
    let b = s.brokers.iter().find(|b| b.node_id.is_some()).unwrap();
    assert_eq!(b.throttled_responses, 1, "{b:?}");
    assert_eq!(b.throttle_time_total, Duration::from_millis(120));
    assert!(p.close());
}

/// `statistics.interval.ms` calls the callback on the I/O thread, once per
/// interval, with snapshots that follow the producer's progress.
#[test]
fn periodic_callback_runs_at_the_interval() {
    let c = cluster(1);
    let (tx, rx) = mpsc::channel::<(Statistics, String)>();
    let p = builder(&c)
        .statistics_interval(Duration::from_millis(50))
        .on_statistics(move |s| {
            let thread = std::thread::current().name().unwrap_or("").to_owned();
            let _ = tx.send((s.clone(), thread));
        })
        .build()
        .unwrap();
    let start = Instant::now();
    p.send(Record::new("t", b"x"))
        .unwrap()
        .wait_timeout(GENEROUS)
        .expect("in time")
        .unwrap();
    let mut ages = Vec::new();
    let mut acked = 0;
    for k in 1..=5u32 {
        let (s, thread) = rx.recv_timeout(GENEROUS).expect("a callback per interval");
        assert_eq!(thread, "kring-io", "runs on the I/O thread");
        assert!(
            s.age >= Duration::from_millis(50) * k,
            "call {k} at {:?}: not before its deadline",
            s.age
        );
        acked = s.totals.records_acked;
        ages.push(s.age);
    }
    println!("5 callbacks at {ages:?} (wall {:?})", start.elapsed());
    assert!(ages.windows(2).all(|w| w[0] < w[1]));
    // The record was acknowledged within the first few intervals on any
    // machine; by the fifth callback it shows.
    let later = p.statistics();
    assert_eq!(later.totals.records_acked, 1);
    assert!(acked <= 1);
    assert!(later.totals.statistics_callbacks >= 5);
    assert!(p.close());
}

/// A statistics callback that always panics: every call is caught, the
/// producer keeps sending, close succeeds.
#[test]
fn panicking_statistics_callback_does_not_kill_the_producer() {
    let c = cluster(1);
    let (tx, rx) = mpsc::channel::<()>();
    let p = builder(&c)
        .statistics_interval(Duration::from_millis(20))
        .on_statistics(move |_| {
            let _ = tx.send(());
            panic!("statistics callback bug");
        })
        .build()
        .unwrap();
    for _ in 0..3 {
        rx.recv_timeout(GENEROUS)
            .expect("called again after a panic");
    }
    let md = p
        .send(Record::new("t", b"still alive"))
        .unwrap()
        .wait_timeout(GENEROUS)
        .expect("in time")
        .unwrap();
    assert_eq!(md.offset, 0);
    let s = p.statistics();
    assert!(s.totals.statistics_callback_panics >= 3, "{:?}", s.totals);
    assert_eq!(
        s.totals.statistics_callback_panics, s.totals.statistics_callbacks,
        "every call panicked and was counted"
    );
    assert!(p.close(), "close reports every record delivered");
    assert_eq!(c.records("t", 0).unwrap().len(), 1);
}

/// `statistics()` called from a delivery callback (on the I/O thread)
/// returns at once instead of waiting for the thread it runs on.
#[test]
fn statistics_from_a_callback_does_not_deadlock() {
    use std::sync::{Arc, OnceLock};
    let c = cluster(1);
    let slot: Arc<OnceLock<Arc<crate::Producer>>> = Arc::new(OnceLock::new());
    let (tx, rx) = mpsc::channel::<Statistics>();
    let s2 = slot.clone();
    let p = Arc::new(
        builder(&c)
            .on_delivery(move |_| {
                if let Some(p) = s2.get() {
                    let _ = tx.send(p.statistics());
                }
            })
            .build()
            .unwrap(),
    );
    let _ = slot.set(p.clone());
    p.send(Record::new("t", b"x"))
        .unwrap()
        .wait_timeout(GENEROUS)
        .expect("in time")
        .unwrap();
    let s = rx.recv_timeout(GENEROUS).expect("the callback returned");
    assert!(s.brokers.is_empty(), "the buffer-only snapshot");
    assert_eq!(s.totals.buffer_memory_limit, 32 * 1024 * 1024);
    // From a producer thread it is the full one.
    assert_eq!(p.statistics().totals.records_acked, 1);
    assert!(p.close());
}
