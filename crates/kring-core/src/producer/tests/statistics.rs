//! Statistics in simulated time: counts against what was sent, RTT from
//! the simulated latency, throttle time from the responses, retries and
//! errors by kind, reconnects, the snapshot on request, and the periodic
//! deadline (armed only with a callback and an interval).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kring_protocol::ErrorCode;

use super::*;
use crate::producer::stats::{BrokerState, Statistics, StatisticsCallback};
use kring_mock::Fault;
use kring_protocol::messages::ApiKey;

fn part(s: &Statistics, topic: &str, p: u32) -> crate::PartitionStatistics {
    s.topics
        .iter()
        .find(|t| t.name == topic)
        .expect("topic")
        .partitions[p as usize]
        .clone()
}

fn broker(s: &Statistics, id: i32) -> crate::BrokerStatistics {
    s.brokers
        .iter()
        .find(|b| b.node_id == Some(id))
        .expect("broker")
        .clone()
}

/// 2 brokers, 4 partitions, 25 records each: every count adds up.
#[test]
fn counts_match_what_was_sent() {
    let mut sim = sim_with(cfg(), 2, 4);
    let mut hs = Vec::new();
    for round in 0..25u8 {
        for p in 0..4 {
            hs.push(sim.send("t", Some(p), None, Some(&[round; 100])).unwrap());
        }
        // Let some batches go between rounds, so there are several.
        if round % 5 == 4 {
            sim.run_for(ms(20));
        }
    }
    sim.drive();
    for h in &hs {
        h.wait().unwrap();
    }
    let s = sim.core.statistics(sim.now);
    assert_eq!(s.client_id, "kring");
    assert_eq!(s.age, sim.elapsed());
    let mut batches = 0;
    for p in 0..4u32 {
        let ps = part(&s, "t", p);
        assert_eq!(ps.records_sent, 25, "{ps:?}");
        assert_eq!(ps.records_acked, 25);
        assert_eq!(ps.records_failed, 0);
        assert_eq!(ps.queued_records, 0);
        assert_eq!(ps.in_flight_batches, 0);
        assert_eq!(ps.retries, 0);
        assert!(ps.errors.is_empty());
        assert!(ps.batches_sent >= 5, "{ps:?}");
        assert!(ps.leader.is_some());
        let fill = ps.avg_batch_records();
        assert!((fill - 25.0 / ps.batches_sent as f64).abs() < 1e-9);
        // Each record is ~100 B of value plus framing.
        assert!(ps.avg_batch_bytes() > fill * 100.0, "{ps:?}");
        batches += ps.batches_sent;
    }
    let t = &s.totals;
    assert_eq!(t.records_sent, 100);
    assert_eq!(t.records_acked, 100);
    assert_eq!(t.records_failed, 0);
    assert_eq!(t.batches_sent, batches);
    assert_eq!(t.requests_in_flight, 0);
    assert_eq!(t.buffer_memory_used, 0);
    assert_eq!(t.buffer_memory_limit, cfg().buffer_memory as u64);
    assert!(t.produce_requests >= 5 && t.produce_requests <= batches);
    // Brokers: both up, every request answered, bytes both ways.
    let mut requests = 0;
    for id in [1, 2] {
        let b = broker(&s, id);
        assert_eq!(b.addr, format!("mock-{id}:9092"));
        assert_eq!(b.state, BrokerState::Up);
        assert_eq!(b.in_flight_requests, 0);
        assert_eq!(b.requests_sent, b.responses_received, "{b:?}");
        assert!(b.bytes_sent > 100 * 25, "{b:?}");
        assert!(b.bytes_received > 0);
        assert_eq!(b.connects, 1);
        assert_eq!(b.reconnects, 0);
        assert_eq!(b.disconnects, 0);
        requests += b.requests_sent;
    }
    // Every frame the core transmitted, counted once (bootstrap included).
    let boot: u64 = s
        .brokers
        .iter()
        .filter(|b| b.node_id.is_none())
        .map(|b| b.requests_sent)
        .sum();
    assert_eq!(requests + boot, sim.transmitted.len() as u64);
    let received: u64 = s.brokers.iter().map(|b| b.bytes_received).sum();
    assert_eq!(received, sim.received_bytes, "size prefixes included");
    let metadata = sim
        .transmitted
        .iter()
        .filter(|r| r.2 == ApiKey::Metadata.key())
        .count();
    assert_eq!(t.metadata_requests, metadata as u64);
    assert!(metadata >= 1);
}

/// RTT is the simulated latency exactly: node 1 answers in 40 ms, node 2
/// in 5 ms (the Sim's 1 ms plus a standing delay).
#[test]
fn rtt_follows_simulated_latency() {
    let mut sim = sim_with(cfg(), 2, 2);
    let latency = |node: i32| if node == 1 { ms(40) } else { ms(5) };
    for node in [1, 2] {
        slow(&sim, node, latency(node) - ms(1));
    }
    for i in 0..20u8 {
        sim.send("t", Some(i32::from(i % 2)), None, Some(&[i]))
            .unwrap();
        sim.run_for(ms(50));
    }
    sim.drive();
    let s = sim.core.statistics(sim.now);
    let leader_of = |p: u32| part(&s, "t", p).leader.unwrap();
    for (p, want) in [(0, ms(40)), (1, ms(5))] {
        let b = broker(&s, leader_of(p));
        let r = b.rtt;
        println!("node {} rtt {r:?}", b.node_id.unwrap());
        assert!(r.count >= 10, "{r:?}");
        assert_eq!(sim.cluster.leader("t", p as i32), b.node_id);
        assert_eq!(
            latency(b.node_id.unwrap()),
            want,
            "partition {p} led by the node with that latency"
        );
        assert_eq!(r.min, want);
        assert_eq!(r.max, want);
        assert_eq!(r.mean, want);
        assert!(r.p50 >= want && r.p50 <= want + want / 8, "{r:?}");
        assert_eq!(r.p50, r.p99.min(r.p50));
    }
}

/// A throttled produce response: the time reported is summed and the last
/// one kept.
#[test]
fn throttle_time_from_responses() {
    let mut sim = sim_with(cfg(), 1, 1);
    sim.send("t", Some(0), None, Some(b"warm")).unwrap();
    sim.drive();
    let before = broker(&sim.core.statistics(sim.now), 1);
    assert_eq!(before.throttled_responses, 0);
    assert_eq!(before.throttle_time_total, Duration::ZERO);
    // kring-mock throttles as Kafka does (KIP-219): throttle_time_ms in the
    // response, and the connection muted that long.
    let throttle = sim
        .cluster
        .inject(Fault::throttle(ApiKey::Produce, ms(250)).always());
    for i in 0..3u8 {
        sim.send("t", Some(0), None, Some(&[i])).unwrap();
        sim.drive();
    }
    let b = broker(&sim.core.statistics(sim.now), 1);
    assert_eq!(b.throttled_responses, 3);
    assert_eq!(b.throttle_time_total, ms(750));
    assert_eq!(b.throttle_time_last, ms(250));
    sim.cluster.remove_fault(throttle);
    sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    let b = broker(&sim.core.statistics(sim.now), 1);
    assert_eq!(b.throttled_responses, 3);
    assert_eq!(b.throttle_time_total, ms(750));
    assert_eq!(
        b.throttle_time_last,
        Duration::ZERO,
        "the last response was not throttled"
    );
}

/// Retriable errors count as retries and by kind; a fatal one fails the
/// records and counts too.
#[test]
fn retries_and_errors_by_kind() {
    let mut sim = sim_with(cfg(), 1, 2);
    fail_produce_in_turn(
        &sim,
        0,
        &[
            ErrorCode::NOT_ENOUGH_REPLICAS,
            ErrorCode::NOT_ENOUGH_REPLICAS,
            ErrorCode::REQUEST_TIMED_OUT,
        ],
    );
    fail_produce(&sim, 1, ErrorCode::TOPIC_AUTHORIZATION_FAILED, 1);
    let ok: Vec<_> = (0..3u8)
        .map(|i| sim.send("t", Some(0), None, Some(&[i])).unwrap())
        .collect();
    let bad: Vec<_> = (0..2u8)
        .map(|i| sim.send("t", Some(1), None, Some(&[i])).unwrap())
        .collect();
    sim.drive();
    assert!(ok.iter().all(|h| h.wait().is_ok()));
    assert!(bad.iter().all(|h| h.wait().is_err()));
    let s = sim.core.statistics(sim.now);
    let p0 = part(&s, "t", 0);
    assert_eq!(p0.retries, 3, "{p0:?}");
    assert_eq!(p0.batches_sent, 1, "a retry is not a new batch");
    assert_eq!(p0.records_acked, 3);
    let kinds: Vec<(ErrorCode, u64)> = p0.errors.iter().map(|e| (e.code, e.count)).collect();
    assert_eq!(
        kinds,
        [
            (ErrorCode::NOT_ENOUGH_REPLICAS, 2),
            (ErrorCode::REQUEST_TIMED_OUT, 1)
        ]
    );
    let p1 = part(&s, "t", 1);
    assert_eq!(p1.retries, 0);
    assert_eq!(p1.records_failed, 2);
    assert_eq!(p1.records_acked, 0);
    assert_eq!(p1.errors.len(), 1);
    assert_eq!(p1.errors[0].code, ErrorCode::TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(s.totals.records_acked, 3);
    assert_eq!(s.totals.records_failed, 2);
    assert_eq!(s.totals.retries, 3);
    let j = s.to_json();
    assert!(j.contains("\"NOT_ENOUGH_REPLICAS\":2"), "{j}");
    // Well-formed, and in librdkafka's shape.
    let v: serde_json::Value = serde_json::from_str(&j).expect("valid JSON");
    assert_eq!(v["type"], "producer");
    assert_eq!(v["acked_msgs"], 3);
    assert_eq!(v["brokers"]["mock-1:9092/1"]["nodeid"], 1);
    assert_eq!(v["brokers"]["mock-1:9092/bootstrap"]["nodeid"], -1);
    let p0j = &v["topics"]["t"]["partitions"]["0"];
    assert_eq!(p0j["txmsgs"], 3);
    assert_eq!(p0j["retries"], 3);
    assert_eq!(p0j["errors"]["REQUEST_TIMED_OUT"], 1);
    assert_eq!(v["topics"]["t"]["partitions"]["1"]["failed_msgs"], 2);
}

/// A lost connection is a disconnect; the next connection a reconnect; a
/// broker that refuses counts connect failures; a request that times out
/// counts too.
#[test]
fn reconnects_failures_and_timeouts() {
    let mut sim = sim_with(cfg(), 1, 1);
    sim.send("t", Some(0), None, Some(b"a")).unwrap();
    sim.drive();
    sim.disconnect_node(1);
    stop(&sim, 1);
    let h = sim.send("t", Some(0), None, Some(b"b")).unwrap();
    sim.run_for(Duration::from_secs(2));
    let s = sim.core.statistics(sim.now);
    let b = broker(&s, 1);
    assert_eq!(b.disconnects, 1, "{b:?}");
    assert!(b.connect_failures >= 1, "{b:?}");
    assert_ne!(b.state, BrokerState::Up);
    assert_eq!(
        part(&s, "t", 0).queued_records,
        1,
        "waits in the accumulator"
    );
    start(&sim, 1);
    sim.drive();
    h.wait().unwrap();
    let b2 = broker(&sim.core.statistics(sim.now), 1);
    assert_eq!(b2.state, BrokerState::Up);
    assert_eq!(b2.connects, 2 + b.connect_failures, "{b2:?}");
    assert_eq!(b2.reconnects, b2.connects - 1);
    assert_eq!(b2.request_timeouts, 0);
    // Every connection started, the bootstrap one included.
    assert_eq!(
        sim.core.stats().connects as usize,
        sim.connects.len(),
        "{:?}",
        sim.connects
    );
    // A black hole: the request times out after request.timeout.ms.
    let hole = black_hole(&sim, 1);
    let h = sim.send("t", Some(0), None, Some(b"c")).unwrap();
    // Past the timeout, the reconnect backoff (50 ms ± 20 %) and the
    // retry backoff (100 ms ± 20 %), whatever the jitter draws.
    sim.run_for(cfg().request_timeout + ms(300));
    let b3 = broker(&sim.core.statistics(sim.now), 1);
    assert_eq!(b3.request_timeouts, 1, "{b3:?}");
    // The retry (and a metadata refresh) wait unanswered.
    let s = sim.core.statistics(sim.now);
    let waiting: u64 = s.brokers.iter().map(|b| b.in_flight_requests).sum();
    assert!(broker(&s, 1).in_flight_requests >= 1, "{s:?}");
    assert_eq!(s.totals.requests_in_flight, waiting);
    assert_eq!(b3.disconnects, 2);
    heal(&sim, hole);
    sim.drive();
    h.wait().unwrap();
}

/// Records in requests awaiting their response count per partition, as
/// librdkafka's `msgs_inflight` does; none once they are answered.
#[test]
fn records_on_the_wire_count_per_partition() {
    let mut sim = sim_with(cfg(), 1, 2);
    sim.send("t", Some(0), None, Some(b"prime")).unwrap();
    sim.drive();
    let hole = black_hole(&sim, 1);
    let hs: Vec<_> = [0, 0, 0, 1, 1]
        .into_iter()
        .map(|p| sim.send("t", Some(p), None, Some(b"v")).unwrap())
        .collect();
    sim.run_for(ms(100));
    let s = sim.core.statistics(sim.now);
    let (p0, p1) = (part(&s, "t", 0), part(&s, "t", 1));
    assert_eq!(
        (p0.in_flight_records, p1.in_flight_records),
        (3, 2),
        "{s:?}"
    );
    assert!(p0.in_flight_batches >= 1 && p1.in_flight_batches >= 1);
    assert_eq!(p0.queued_records + p1.queued_records, 0, "all sent");
    assert!(
        s.to_json().contains(r#""msgs_inflight":3,"#),
        "{}",
        s.to_json()
    );
    heal(&sim, hole);
    sim.disconnect_node(1);
    sim.drive();
    for h in &hs {
        h.wait().unwrap();
    }
    let s = sim.core.statistics(sim.now);
    assert_eq!(part(&s, "t", 0).in_flight_records, 0);
    assert_eq!(part(&s, "t", 1).in_flight_records, 0);
}

/// `Shared::request_statistics` is answered on the I/O thread's next turn;
/// queued records show while linger holds them back.
#[test]
fn snapshot_on_request_shows_queued_records() {
    let config = Config {
        linger: Duration::from_secs(10),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 2);
    sim.send("t", Some(0), None, Some(b"prime")).unwrap();
    sim.flush();
    sim.drive();
    for i in 0..5u8 {
        sim.send("t", Some(1), None, Some(&[i; 50])).unwrap();
    }
    // The I/O thread is parked: the request must wake it (else the caller
    // would wait for an I/O thread asleep until its next deadline).
    sim.settle();
    assert!(sim.core.prepare_park());
    let (req, wake) = sim.shared.request_statistics();
    assert!(wake, "a request wakes a parked I/O thread");
    assert!(
        req.try_take().is_none(),
        "answered by the I/O thread, not the caller"
    );
    sim.settle();
    let s = req.try_take().expect("answered");
    let p1 = part(&s, "t", 1);
    assert_eq!(p1.queued_records, 5);
    assert!(p1.queued_bytes > 250, "{p1:?}");
    assert_eq!(p1.records_sent, 0);
    assert_eq!(s.totals.queued_records, 5);
    assert!(s.totals.buffer_memory_used > 0);
    // What a caller can say without the I/O thread: the memory totals.
    let alone = Statistics::unavailable(&sim.shared);
    assert_eq!(alone.totals.buffer_memory_used, s.totals.buffer_memory_used);
    assert_eq!(alone.totals.buffer_memory_limit, cfg().buffer_memory as u64);
    assert!(alone.brokers.is_empty() && alone.topics.is_empty());
    sim.flush();
    sim.drive();
    let s = sim.core.statistics(sim.now);
    assert_eq!(part(&s, "t", 1).queued_records, 0);
    assert_eq!(part(&s, "t", 1).records_acked, 5);
    // After close the final snapshot is kept (statistics were used).
    assert!(sim.shared.final_statistics().is_none());
    sim.close();
    sim.drive();
    let f = sim.shared.final_statistics().expect("kept at finish");
    assert_eq!(f.totals.records_acked, 6);
}

/// Batches sealed full and not yet taken by the I/O thread count in a
/// partition's queued records and bytes as the open batch does.
#[test]
fn sealed_batches_count_in_queued_bytes() {
    let config = Config {
        linger: Duration::from_secs(10),
        batch_size: 300,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 2);
    learn_metadata(&mut sim);
    for i in 0..6u8 {
        sim.send("t", Some(1), None, Some(&[i; 100])).unwrap();
    }
    let p1 = part(&sim.core.statistics(sim.now), "t", 1);
    assert_eq!(p1.queued_records, 6);
    assert!(p1.queued_bytes >= 600, "{p1:?}");
    let q = sim.core.topics[0].partitions[1].slot.lock();
    let open_bytes = q.open.as_ref().map_or(0, |o| o.builder.size_in_bytes());
    assert!(
        (p1.queued_bytes as usize) > open_bytes + 300,
        "sealed batches not counted: {p1:?}, open {open_bytes}"
    );
    assert!(q.sealed.len() >= 2, "two full batches sealed");
    let sealed: usize = q.sealed.iter().map(|s| s.sealed.size_in_bytes()).sum();
    assert_eq!(p1.queued_bytes as usize, open_bytes + sealed);
}

fn recorder() -> (StatisticsCallback, Arc<Mutex<Vec<Statistics>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let cb: StatisticsCallback = Arc::new(move |s: &Statistics| g.lock().unwrap().push(s.clone()));
    (cb, got)
}

/// One broker, one partition, the statistics callback every second,
/// recording what it is given.
fn statistics_every_second() -> (MockSim, Arc<Mutex<Vec<Statistics>>>) {
    let (cb, got) = recorder();
    let config = Config {
        statistics_interval: Duration::from_secs(1),
        on_statistics: Some(cb),
        ..cfg()
    };
    (sim_with(config, 1, 1), got)
}

/// The callback runs at every interval of simulated time, not otherwise.
#[test]
fn periodic_callback_fires_at_the_interval() {
    let (mut sim, got) = statistics_every_second();
    sim.run_for(ms(999));
    assert!(got.lock().unwrap().is_empty(), "not before the interval");
    sim.run_for(ms(1));
    assert_eq!(got.lock().unwrap().len(), 1, "at the interval");
    sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.run_for(ms(2_500));
    let ages: Vec<Duration> = got.lock().unwrap().iter().map(|s| s.age).collect();
    assert_eq!(
        ages,
        [1, 2, 3].map(Duration::from_secs),
        "one call per interval, on the interval"
    );
    let last = got.lock().unwrap().last().unwrap().clone();
    assert_eq!(last.totals.records_acked, 1);
    assert_eq!(
        last.totals.statistics_callbacks, 2,
        "the calls before this one"
    );
    // Close stops it.
    sim.close();
    sim.drive();
    sim.run_for(Duration::from_secs(5));
    assert_eq!(got.lock().unwrap().len(), 3);
    assert!(
        !sim.core.statistics.is_armed(),
        "no handle outlives the timers"
    );
}

/// An I/O thread that handles the deadline late keeps the interval's grid
/// when it is behind by less than an interval, and starts a new grid from
/// now, with one call and no catch-up burst, when it is further behind.
#[test]
fn a_late_statistics_deadline_neither_drifts_nor_bursts() {
    let (mut sim, got) = statistics_every_second();
    sim.run_for(ms(1_000));
    // The I/O thread stalls: the deadline of 2 s is handled at 2.5 s.
    sim.now += ms(1_500);
    sim.settle();
    sim.run_for(ms(600));
    // Stalled again, past two deadlines: handled at 6.7 s, once.
    sim.now += ms(3_600);
    sim.settle();
    sim.run_for(ms(1_000));
    let ages: Vec<Duration> = got.lock().unwrap().iter().map(|s| s.age).collect();
    assert_eq!(ages, [1_000, 2_500, 3_000, 6_700, 7_700].map(ms));
}

/// The state a broker's connection shows while its TCP connect is under
/// way (a reconnect to a slow broker), and once it is up again.
#[test]
fn a_connection_being_made_shows_as_connecting() {
    let mut sim = sim_with(cfg(), 1, 1);
    sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    slow(&sim, 1, ms(40));
    sim.disconnect_node(1);
    let h = sim.send("t", Some(0), None, Some(b"y")).unwrap();
    let state = |s: &MockSim| broker(&s.core.statistics(s.now), 1).state;
    sim.drive_until(1_000, |s| state(s) == BrokerState::Connecting);
    sim.drive();
    h.wait().unwrap();
    assert_eq!(state(&sim), BrokerState::Up);
}

/// A broker the producer never needed shows as INIT; one whose connect
/// was refused shows as DOWN while the reconnect backoff runs.
#[test]
fn idle_and_backing_off_brokers_are_told_apart() {
    let mut sim = sim_with(cfg(), 2, 1);
    sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    let s = sim.core.statistics(sim.now);
    let leader = part(&s, "t", 0).leader.expect("a leader");
    let other = 3 - leader;
    assert_eq!(broker(&s, other).state, BrokerState::Idle);
    assert_eq!(broker(&s, leader).state, BrokerState::Up);
    sim.disconnect_node(leader);
    stop(&sim, leader);
    let h = sim.send("t", Some(0), None, Some(b"y")).unwrap();
    let state = |s: &MockSim| broker(&s.core.statistics(s.now), leader).state;
    sim.drive_until(1_000, |s| state(s) == BrokerState::Backoff);
    start(&sim, leader);
    sim.drive();
    h.wait().unwrap();
}

/// No statistics deadline is armed unless both a callback and an interval
/// are set.
#[test]
fn no_timer_when_statistics_are_off() {
    let timers_after_idle = |config: Config| {
        let mut sim = sim_with(config, 1, 1);
        sim.send("t", Some(0), None, Some(b"x")).unwrap();
        sim.drive();
        sim.run_for(Duration::from_secs(3));
        (
            sim.core.timers.len(),
            sim.core.statistics.is_armed(),
            sim.parks,
        )
    };
    let (off, off_armed, off_parks) = timers_after_idle(cfg());
    let (cb, got) = recorder();
    let (no_interval, ni_armed, ni_parks) = timers_after_idle(Config {
        on_statistics: Some(cb),
        ..cfg()
    });
    let (no_cb, nc_armed, nc_parks) = timers_after_idle(Config {
        statistics_interval: ms(100),
        ..cfg()
    });
    let (cb2, got2) = recorder();
    let (on, on_armed, on_parks) = timers_after_idle(Config {
        statistics_interval: ms(100),
        on_statistics: Some(cb2),
        ..cfg()
    });
    assert!(!off_armed && !ni_armed && !nc_armed);
    assert_eq!(off, no_interval);
    assert_eq!(off, no_cb);
    assert_eq!(off_parks, ni_parks, "no extra wake-ups");
    assert_eq!(off_parks, nc_parks, "no extra wake-ups");
    assert!(got.lock().unwrap().is_empty());
    assert!(on_armed);
    assert_eq!(on, off + 1);
    assert!(on_parks > off_parks + 25, "{on_parks} vs {off_parks}");
    assert!(got2.lock().unwrap().len() >= 30);
}

/// A panicking statistics callback is caught and counted; it is called
/// again at the next interval, and records keep flowing.
#[test]
fn panicking_statistics_callback_is_fenced() {
    let calls = Arc::new(Mutex::new(0u32));
    let c = calls.clone();
    let cb: StatisticsCallback = Arc::new(move |_s: &Statistics| {
        *c.lock().unwrap() += 1;
        panic!("statistics callback bug");
    });
    let config = Config {
        statistics_interval: ms(100),
        on_statistics: Some(cb),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    sim.run_for(ms(350));
    assert_eq!(*calls.lock().unwrap(), 3);
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    assert_eq!(h.wait().unwrap().offset, 0);
    let s = sim.core.statistics(sim.now);
    assert_eq!(s.totals.statistics_callback_panics, 3);
    assert_eq!(s.totals.statistics_callbacks, 3);
    assert!(sim.core.statistics.is_armed(), "still armed");
}
