//! Point 4: the per-broker sender — packing, versions, in-flight limit,
//! retries with backoff, fatal errors, request and delivery timeouts, acks.

use super::*;
use crate::config::Acks;
use std::time::Instant;

use crate::delivery::DeliveryError;
use crate::error::SendError;
use crate::Config;
use crate::DeliveryHandle;
use crate::LastError;
use kring_mock::Fault;
use kring_protocol::messages::ApiKey;
use kring_protocol::ErrorCode;

/// The Produce requests the core sent: (node, version).
fn produce_requests(sim: &MockSim) -> Vec<(i32, i16)> {
    sim.transmitted
        .iter()
        .filter(|r| r.2 == ApiKey::Produce.key())
        .map(|r| (r.1, r.3))
        .collect()
}

#[test]
fn many_partitions_share_one_request_per_broker() {
    let mut sim = sim_with(cfg(), 2, 10);
    for p in 0..10 {
        sim.send("t", Some(p), None, Some(b"x")).unwrap();
    }
    sim.drive();
    let reqs = produce_requests(&sim);
    // Partitions alternate between nodes 1 and 2: one request each.
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert!(reqs.iter().all(|r| r.1 == 11), "highest version: {reqs:?}");
}

/// The sizes (size prefix excluded) of the Produce requests the sim
/// held since `held_frames` was set; stops holding.
fn held_produce_sizes(sim: &mut MockSim) -> Vec<usize> {
    sim.held_frames
        .take()
        .expect("frames held")
        .iter()
        .filter(|f| f.chunks()[0][4..6] == ApiKey::Produce.key().to_be_bytes())
        .map(|f| f.len() - 4)
        .collect()
}

#[test]
fn requests_are_split_at_max_request_size() {
    let config = Config {
        max_request_size: 4000,
        batch_size: 1500,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 6);
    sim.held_frames = Some(Vec::new());
    for p in 0..6 {
        sim.send("t", Some(p), None, Some(&[1u8; 1000])).unwrap();
    }
    sim.drive();
    // ~1,080-byte batches: three fit in a 4,000-byte request, four do not.
    let sizes = held_produce_sizes(&mut sim);
    assert_eq!(sizes.len(), 2, "two full requests: {sizes:?}");
    assert!(
        sizes.iter().all(|&n| (3000..=4000).contains(&n)),
        "each request at most max.request.size: {sizes:?}"
    );
    for p in 0..6 {
        assert_eq!(log(&sim, p).len(), 1);
    }
}

/// Requests of many small batches from many topics stay within
/// `max.request.size` too, where the per-partition and per-topic
/// overheads (not the batches) fill most of a request, and are still
/// packed full: 100 partitions of `t` and 20 topics with 90-byte names of
/// 5 partitions each, one small record each, in 4,000-byte requests.
#[test]
fn small_batches_of_many_topics_stay_within_max_request_size() {
    const BUDGET: usize = 4000;
    let names: Vec<String> = (0..20)
        .map(|i| format!("{i:02}{}", "n".repeat(88)))
        .collect();
    let mut builder = cluster(1, 100);
    for n in &names {
        builder = builder.topic(n.as_str(), 5);
    }
    let config = Config {
        max_request_size: BUDGET,
        batch_size: 1024,
        linger: ms(100),
        ..cfg()
    };
    let mut sim = sim_on(config, builder);
    learn_metadata(&mut sim);
    for n in &names {
        sim.send(n, Some(0), None, Some(b"warm-up")).unwrap();
    }
    sim.drive();
    sim.held_frames = Some(Vec::new());
    let mut hs = Vec::new();
    for p in 0..100 {
        hs.push(sim.send("t", Some(p), None, Some(b"v")).unwrap());
    }
    for n in &names {
        for p in 0..5 {
            hs.push(sim.send(n, Some(p), None, Some(b"v")).unwrap());
        }
    }
    sim.drive();
    for h in &hs {
        h.wait().expect("delivered");
    }
    let sizes = held_produce_sizes(&mut sim);
    assert!(
        sizes.iter().all(|&n| n <= BUDGET),
        "each request at most max.request.size: {sizes:?}"
    );
    let total: usize = sizes.iter().sum();
    assert!(
        sizes.len() <= total.div_ceil(BUDGET * 3 / 4),
        "requests packed at least three quarters full: {sizes:?}"
    );
}

/// A compressed batch's size is known only once it is sealed: one that
/// then does not fit the request waits for the next, so compressed
/// requests stay within `max.request.size` too (incompressible values:
/// each lz4 batch is about as large as its records).
#[test]
fn compressed_batches_are_split_at_max_request_size() {
    let config = Config {
        max_request_size: 4000,
        batch_size: 1500,
        compression: crate::Compression::Lz4,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 6);
    sim.held_frames = Some(Vec::new());
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    for p in 0..6 {
        let v: Vec<u8> = (0..1000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        sim.send("t", Some(p), None, Some(&v)).unwrap();
    }
    sim.drive();
    let sizes = held_produce_sizes(&mut sim);
    assert!(
        sizes.iter().all(|&n| n <= 4000),
        "each request at most max.request.size: {sizes:?}"
    );
    assert_eq!(sizes.len(), 2, "three batches to a request: {sizes:?}");
    for p in 0..6 {
        assert_eq!(log(&sim, p).len(), 1);
    }
}

/// Retried batches are packed into requests by the same budget. A hung
/// broker swallows the first three requests; at the request timeout the
/// connection goes, and by the time it is back all eight batches are due
/// for a retry at once: the retries again go three to a 4,000-byte
/// request, never more.
#[test]
fn retried_batches_stay_within_max_request_size() {
    let config = Config {
        max_request_size: 4000,
        batch_size: 1500,
        request_timeout: ms(100),
        // Back after every retry's backoff (100 ms ± 20 %) has ended.
        reconnect_backoff: ms(300),
        reconnect_backoff_max: ms(300),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 8);
    learn_metadata(&mut sim);
    sim.cluster
        .inject(kring_mock::Fault::swallow(ApiKey::Produce).times(3));
    sim.held_frames = Some(Vec::new());
    let hs: Vec<_> = (0..8)
        .map(|p| sim.send("t", Some(p), None, Some(&[1u8; 1000])).unwrap())
        .collect();
    sim.drive();
    for h in &hs {
        h.wait().expect("delivered after a retry");
    }
    assert_eq!(sim.core.stats().retries, 8);
    let sizes = held_produce_sizes(&mut sim);
    assert!(
        sizes.iter().all(|&n| n <= 4000),
        "each request at most max.request.size: {sizes:?}"
    );
    assert_eq!(sizes.len(), 6, "3 + 3 + 2 batches, twice: {sizes:?}");
}

#[test]
fn produce_version_follows_api_versions() {
    let mut sim = sim_with(cfg(), 1, 1);
    sim.cluster.set_max_version(ApiKey::Produce, Some(7));
    sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    assert_eq!(produce_requests(&sim), vec![(1, 7)]);
    // ApiVersions went first on every connection.
    let first_per_conn: std::collections::HashMap<_, _> = sim
        .transmitted
        .iter()
        .rev()
        .map(|(c, _, k, _)| (*c, *k))
        .collect();
    assert!(first_per_conn
        .values()
        .all(|&k| k == ApiKey::ApiVersions.key()));
}

#[test]
fn in_flight_limit_per_connection() {
    let config = Config {
        linger: ms(0),
        batch_size: 64,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    slow(&sim, 1, ms(100));
    let hs: Vec<_> = (0..20)
        .map(|_| sim.send("t", Some(0), None, Some(&[0u8; 40])).unwrap())
        .collect();
    // Within the first 100 ms (before any answer) exactly 5 requests left.
    let before = produce_requests(&sim).len();
    sim.run_for(ms(50));
    assert_eq!(produce_requests(&sim).len() - before, 5);
    sim.drive();
    for (i, h) in hs.iter().enumerate() {
        assert_eq!(h.wait().unwrap().offset, 1 + i as i64);
    }
}

/// The gaps, in milliseconds, between the attempts of a record whose
/// first three attempts are refused with a retriable error (less the
/// Sim's 1 ms of response latency), and that it is then delivered.
fn retry_gaps_ms(config: Config) -> Vec<f64> {
    let mut sim = sim_with(config, 1, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    fail_produce(&sim, 0, ErrorCode::NOT_ENOUGH_REPLICAS, 3);
    let n0 = produce_requests(&sim).len();
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    let mut times = Vec::new();
    let mut seen = n0;
    sim.drive_until(10_000, |s| {
        let n = produce_requests(s).len();
        if n > seen {
            seen = n;
            times.push(s.now);
        }
        h.try_result().is_some()
    });
    assert_eq!(h.wait().unwrap().offset, 1);
    assert_eq!(times.len(), 4, "1 try + 3 retries");
    times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0 - 1.0)
        .collect()
}

#[test]
fn retriable_errors_back_off_exponentially_with_jitter() {
    let gaps = retry_gaps_ms(cfg());
    // 100, 200, 400 ms ±20%.
    for (i, (gap, base)) in gaps.iter().zip([100.0f64, 200.0, 400.0]).enumerate() {
        assert!(
            *gap >= base * 0.8 - 0.01 && *gap <= base * 1.2 + 0.01,
            "retry {i}: {gap} ms"
        );
    }
}

/// `retry.backoff.ms` above `retry.backoff.max.ms` is a valid Java
/// configuration (common from before Kafka 3.7 added the cap, with
/// `retry.backoff.ms=2000` or so): the Java client's `ExponentialBackoff`
/// takes the smaller as its start, so every retry waits
/// `retry.backoff.max.ms`. It was refused as a configuration error.
#[test]
fn retry_backoff_above_its_max_backs_off_by_the_max() {
    let gaps = retry_gaps_ms(Config {
        retry_backoff: ms(5_000),
        retry_backoff_max: ms(1_000),
        ..cfg()
    });
    for (i, gap) in gaps.iter().enumerate() {
        // At most the max, jittered below it.
        assert!(
            (800.0 - 0.01..=1000.01).contains(gap),
            "retry {i}: {gap} ms"
        );
    }
}

/// The same for `reconnect.backoff.ms` above `reconnect.backoff.max.ms`:
/// accepted, and a broker that refuses connections is tried again every
/// `reconnect.backoff.max.ms` (the Java client's rule).
#[test]
fn reconnect_backoff_above_its_max_reconnects_by_the_max() {
    let config = Config {
        reconnect_backoff: ms(10_000),
        reconnect_backoff_max: ms(500),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    stop(&sim, 1);
    sim.disconnect_node(1);
    let t0 = sim.now;
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.run_for(ms(3_000));
    start(&sim, 1);
    sim.drive_until(100_000, |_| h.try_result().is_some());
    assert_eq!(h.wait().unwrap().offset, 1);
    // Within one capped backoff of the broker's return, not 10 s later.
    assert!(sim.now - t0 < ms(3_000 + 600), "{:?}", sim.now - t0);
}

#[test]
fn fatal_errors_fail_the_batch() {
    let mut sim = sim_with(cfg(), 1, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    fail_produce(&sim, 0, ErrorCode::MESSAGE_TOO_LARGE, 1);
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    match h.wait() {
        // A batch of one record: it cannot be split.
        Err(DeliveryError::MessageTooLarge { .. }) => {}
        other => panic!("{other:?}"),
    }
    // The producer goes on (the epoch is bumped to keep sequences valid).
    let h2 = sim.send("t", Some(0), None, Some(b"y")).unwrap();
    sim.drive();
    h2.wait().unwrap();
    assert_eq!(log(&sim, 0).len(), 2);
}

#[test]
fn request_timeout_closes_the_connection_and_retries() {
    let mut sim = sim_with(cfg(), 1, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    let hole = black_hole(&sim, 1);
    let t0 = sim.now;
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive_until(10_000, |s| !s.closes.is_empty() && s.now > t0 + ms(29_000));
    let closed_at = sim.now;
    assert!(
        closed_at - t0 >= ms(30_000),
        "closed after request.timeout.ms"
    );
    assert!(h.try_result().is_none(), "not failed: retried");
    heal(&sim, hole);
    sim.drive();
    assert_eq!(h.wait().unwrap().offset, 1);
    assert_eq!(log(&sim, 0).len(), 2);
}

#[test]
fn delivery_timeout_fails_batches_in_flight_retries() {
    let config = Config {
        delivery_timeout: ms(35_000),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    fail_produce(&sim, 0, ErrorCode::NOT_ENOUGH_REPLICAS, 1000);
    let t0 = sim.now;
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    match h.wait() {
        Err(DeliveryError::Timeout { last_error, .. }) => {
            assert_eq!(
                last_error,
                Some(crate::LastError::broker(
                    kring_protocol::ErrorCode::NOT_ENOUGH_REPLICAS
                ))
            )
        }
        other => panic!("{other:?}"),
    }
    let took = sim.now - t0;
    assert!(took >= ms(35_000) && took < ms(37_000), "{took:?}");
}

#[test]
fn delivery_timeout_fails_batches_waiting_in_the_accumulator() {
    let config = Config {
        delivery_timeout: ms(40_000),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    // The broker goes away: no connection can be made.
    stop(&sim, 1);
    sim.disconnect_node(1);
    let t0 = sim.now;
    let hs: Vec<_> = (0..3)
        .map(|_| sim.send("t", Some(0), None, Some(b"x")).unwrap())
        .collect();
    sim.drive();
    for h in hs {
        match h.wait() {
            Err(DeliveryError::Timeout { stage, .. }) => {
                assert!(stage.contains("accumulator"), "{stage}")
            }
            other => panic!("{other:?}"),
        }
    }
    let took = sim.now - t0;
    assert!(took >= ms(40_000) && took < ms(40_100), "{took:?}");
    assert_eq!(sim.shared.buffered_bytes(), 0);
}

/// Batches announced out of the order of their creation (producer threads
/// stamp their own `now`) each fail at their own delivery timeout: the
/// earlier-created batch, announced second, is not held back behind the
/// later one's deadline.
#[test]
fn delivery_timeouts_announced_out_of_order_each_fire_on_time() {
    let dt = ms(40_000);
    let config = Config {
        delivery_timeout: dt,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 2);
    learn_metadata(&mut sim);
    stop(&sim, 1);
    sim.disconnect_node(1);
    let t0 = sim.now;
    // Created at t0 + 20 ms (partition 0), then t0 + 10 ms (partition 1).
    let hs: Vec<_> = [(0, 20), (1, 10)]
        .into_iter()
        .map(|(p, created)| {
            let o = sim
                .shared
                .append(t0 + ms(created), record_ref(p, b"x"), t0)
                .unwrap();
            o.delivery
        })
        .collect();
    sim.settle();
    sim.run_for(t0 + dt + ms(15) - sim.now);
    assert!(
        matches!(hs[1].try_result(), Some(Err(DeliveryError::Timeout { .. }))),
        "the earlier batch at its deadline: {:?}",
        hs[1].try_result()
    );
    assert!(hs[0].try_result().is_none(), "the later one not yet");
    sim.run_for(ms(10));
    assert!(matches!(
        hs[0].try_result(),
        Some(Err(DeliveryError::Timeout { .. }))
    ));
}

/// Delivery deadlines of new batches wait in a FIFO (`delivery_queue.rs`),
/// removed lazily: a partition's deadline stays exact while thousands of
/// other batches arm and disarm theirs behind it, the queue stays bounded
/// by compaction, and once the deadline fired nothing stale is left.
#[test]
fn delivery_queue_stays_bounded_and_its_deadline_exact() {
    let dt = ms(40_000);
    let config = Config {
        delivery_timeout: dt,
        batch_size: 100,
        ..cfg()
    };
    // Partition 0 is led by broker 1, partition 1 by broker 2.
    let mut sim = sim_with(config, 2, 2);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.send("t", Some(1), None, Some(b"w")).unwrap();
    sim.drive();
    stop(&sim, 1);
    sim.disconnect_node(1);
    let t0 = sim.now;
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.settle();
    assert_eq!(sim.core.timers.deliveries().peek(), Some(t0 + dt));
    // Behind it, 5,000 full batches of partition 1, each armed and
    // disarmed (sent) at once.
    for _ in 0..5_000 {
        sim.send("t", Some(1), None, Some(&[7u8; 100])).unwrap();
        sim.run_for(ms(3));
    }
    let q = sim.core.timers.deliveries();
    assert!(
        q.len() <= 2 * q.live() + 64,
        "{} entries, {} live",
        q.len(),
        q.live()
    );
    assert_eq!(q.peek(), Some(t0 + dt));
    assert_eq!(log(&sim, 1).len(), 5_001);
    sim.drive();
    match h.try_result().expect("failed by now") {
        Err(DeliveryError::Timeout { stage, .. }) => {
            assert!(stage.contains("accumulator"), "{stage}")
        }
        other => panic!("{other:?}"),
    }
    let took = sim.now - t0;
    assert!(took >= dt && took < dt + ms(100), "{took:?}");
    assert_eq!(sim.core.timers.deliveries().peek(), None);
    assert_eq!(sim.core.timers.deliveries().live(), 0);
}

/// A batch that comes back for a retry re-arms its partition's delivery
/// timer for its own (older) creation, even when a newer batch of the
/// partition already armed one in the delivery FIFO: it fails at its own
/// deadline, not at the newer batch's, and the newer one at its own.
#[test]
fn a_retried_batch_keeps_its_deadline_ahead_of_a_newer_queued_one() {
    let dt = ms(40_000);
    let config = Config {
        delivery_timeout: dt,
        max_in_flight: 1,
        retry_backoff: ms(20_000),
        retry_backoff_max: ms(20_000),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    // A retry waits ~20 s, so at its deadline `a` waits in the retry
    // queue.
    let ((t0, a), (t1, b)) = a_then_b_refused(&mut sim);
    // `a` was on the wire when `b` came (its timer disarmed); `b` waits
    // for the slot and arms the partition's timer at its own creation + dt.
    sim.settle();
    assert_eq!(sim.core.timers.deliveries().peek(), Some(t1 + dt));
    let took = timed_out_after(&mut sim, &a, t0, "retried");
    assert!(took >= dt && took < dt + ms(100), "a: {took:?}");
    let took = timed_out_after(&mut sim, &b, t1, "");
    assert!(took >= dt, "b: {took:?}");
}

/// A warmed-up partition 0 whose every answer takes 6 s and refuses the
/// write (NOT_ENOUGH_REPLICAS): sends `a`, then `b` 5 s later, while `a`
/// is on the wire; returns each with the time it was sent.
fn a_then_b_refused(sim: &mut MockSim) -> ((Instant, DeliveryHandle), (Instant, DeliveryHandle)) {
    learn_metadata(sim);
    slow(sim, 1, ms(6_000));
    fail_produce(sim, 0, ErrorCode::NOT_ENOUGH_REPLICAS, 1000);
    let t0 = sim.now;
    let a = sim.send("t", Some(0), None, Some(b"a")).unwrap();
    sim.run_for(ms(5_000));
    let t1 = sim.now;
    let b = sim.send("t", Some(0), None, Some(b"b")).unwrap();
    ((t0, a), (t1, b))
}

#[test]
fn acks_zero_completes_on_transmit() {
    let config = Config {
        acks: Acks::None,
        enable_idempotence: false,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive_until(10_000, |_| h.try_result().is_some());
    let md = h.wait().unwrap();
    assert_eq!(md.offset, -1);
    // Completed when handed over: the broker's answer is not awaited (there is none).
    assert_eq!(log(&sim, 0).len(), 1);
    assert_eq!(log(&sim, 0)[0].producer_id, -1, "no idempotence");
    // No LogAppendTime either: the record's own timestamp.
    assert_eq!(md.timestamp_ms, log(&sim, 0)[0].timestamp);
}

/// With acks=0 a batch completes inside `poll_transmit`; a flush waiting
/// for it must complete in that same turn. A driver whose writes finish
/// synchronously (epoll) gets no further turn to notice it otherwise: the
/// flush (and close) hung until an unrelated timer fired.
#[test]
fn acks_zero_flush_completes_in_the_turn_that_transmits() {
    let config = Config {
        acks: Acks::None,
        enable_idempotence: false,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    let first = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive_until(10_000, |_| first.try_result().is_some());
    let h = sim.send("t", Some(0), None, Some(b"y")).unwrap();
    let flush = sim.flush();
    sim.drive_until(10_000, |_| h.try_result().is_some());
    assert!(
        flush.is_done(),
        "the flush completes in the turn whose poll_transmit completed its last batch"
    );
    let close = sim.close();
    sim.drive_until(10_000, |s| s.core.is_finished());
    assert!(close.is_done());
}

#[test]
fn acks_one_without_idempotence() {
    let config = Config {
        acks: Acks::Leader,
        enable_idempotence: false,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    assert_eq!(h.wait().unwrap().offset, 0);
    assert_eq!(requests(&sim, ApiKey::InitProducerId), 0);
}

#[test]
fn lost_connection_retries_in_flight_batches() {
    let mut sim = sim_with(cfg(), 1, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    sim.cluster
        .inject(Fault::drop_before_apply(ApiKey::Produce).on_broker(1));
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    assert_eq!(h.wait().unwrap().offset, 1);
    assert!(sim.connects.len() >= 3, "reconnected: {:?}", sim.connects);
}

#[test]
fn connect_failures_back_off() {
    let mut sim = sim_with(cfg(), 1, 1);
    stop(&sim, 1);
    sim.run_for(ms(3000));
    // 50 ms doubling to 1 s: about 6-8 attempts in 3 s, not hundreds.
    let n = sim.connects.len();
    assert!((4..=10).contains(&n), "{n} connects");
    start(&sim, 1);
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    h.wait().unwrap();
}

/// The timeouts, in ms, of the connects to `addr` the core asked for, from
/// its `from`-th connect (to any address) on.
fn connect_timeouts_ms(sim: &MockSim, addr: &str, from: usize) -> Vec<f64> {
    sim.connects[from..]
        .iter()
        .zip(&sim.connect_timeouts[from..])
        .filter(|(a, _)| *a == addr)
        .map(|(_, t)| t.as_secs_f64() * 1e3)
        .collect()
}

/// Checks that `timeouts` (ms) are those of consecutive failed attempts
/// under the Java client's connection setup timeout: attempt `k` takes
/// `base * 2^k` capped at `max`, jittered by ±20 % and never above `max`.
fn assert_connect_timeouts_grow(timeouts: &[f64], base: f64, max: f64) {
    for (k, &t) in timeouts.iter().enumerate() {
        let nominal = (base * 2f64.powi(k as i32)).min(max);
        let (lo, hi) = (nominal * 0.8, (nominal * 1.2).min(max));
        assert!(
            t >= lo - 1e-3 && t <= hi + 1e-3,
            "attempt {k}: {t} ms, not within {lo}..={hi}: {timeouts:?}"
        );
    }
}

/// The connect timeout grows per failed attempt as the Java client's
/// connection setup timeout does: `socket.connection.setup.timeout.ms` for
/// the first attempt, doubled (±20 %) for each consecutive failed one, up
/// to `socket.connection.setup.timeout.max.ms`, where it stays; once a
/// connection got through, the next attempt starts from the base again.
/// Node 2's address answers no connect (the Sim fails each when the
/// timeout its `Connect` carries runs out, as the driver does) while a
/// record for partition 1, which node 2 leads, waits.
#[test]
fn the_connect_timeout_doubles_per_failed_attempt_to_its_max_and_resets() {
    let (base, max) = (1_000.0, 30_000.0);
    let config = Config {
        connect_timeout: ms(1_000),
        connect_timeout_max: ms(30_000),
        // The record waits out the whole outage.
        delivery_timeout: Duration::from_secs(3_600),
        ..cfg()
    };
    let mut sim = sim_with(config, 2, 2);
    sim.send("t", Some(1), None, Some(b"w")).unwrap();
    sim.drive();
    let node2 = "mock-2:9092";
    let first = connect_timeouts_ms(&sim, node2, 0);
    assert_eq!(first.len(), 1, "no failure yet: {first:?}");
    assert_connect_timeouts_grow(&first, base, max);

    sim.unanswered.insert(node2.to_owned());
    let from = sim.connects.len();
    sim.disconnect_node(2);
    let h = sim.send("t", Some(1), None, Some(b"x")).unwrap();
    sim.run_for(Duration::from_secs(300));
    let grown = connect_timeouts_ms(&sim, node2, from);
    println!("connect timeouts (ms) while unanswered: {grown:.0?}");
    // 1 + 2 + 4 + 8 + 16 s, then 24-30 s each (plus backoffs): about 15
    // attempts in 300 s, the cap reached from the sixth on.
    assert!((10..=18).contains(&grown.len()), "{grown:?}");
    assert_connect_timeouts_grow(&grown, base, max);
    assert!(h.try_result().is_none(), "the record still waits");
    let LastError::Connect { kind, message } = sim.core.conn_cause((0, 1)).expect("a cause") else {
        panic!("not a connect failure");
    };
    assert_eq!(kind, std::io::ErrorKind::TimedOut);
    assert!(message.contains("timed out after"), "{message}");

    // The address answers again: after the attempt under way times out,
    // the next one connects and the record goes.
    sim.unanswered.clear();
    sim.drive_until(100_000, |_| h.try_result().is_some());
    assert_eq!(h.wait().unwrap().offset, 1);

    // Lost again: the attempts start from the base again.
    sim.unanswered.insert(node2.to_owned());
    let from = sim.connects.len();
    sim.disconnect_node(2);
    let h = sim.send("t", Some(1), None, Some(b"y")).unwrap();
    sim.run_for(Duration::from_secs(10));
    let again = connect_timeouts_ms(&sim, node2, from);
    println!("after a connection got through: {again:.0?}");
    assert!(again.len() >= 2, "{again:?}");
    assert_connect_timeouts_grow(&again, base, max);
    sim.unanswered.clear();
    sim.drive_until(100_000, |_| h.try_result().is_some());
    assert_eq!(h.wait().unwrap().offset, 2);
}

/// A connection that got past its connect and was lost before it was
/// ready (here, at its ApiVersions request) ends the run of failed
/// attempts too, as in the Java client (`disconnected` outside
/// `CONNECTING` resets the connection setup timeout): the next attempt
/// starts from the base, not from where the failed ones had grown to.
#[test]
fn a_connection_lost_after_connecting_ends_the_run_of_failed_attempts() {
    let (base, max) = (1_000.0, 30_000.0);
    let config = Config {
        connect_timeout: ms(1_000),
        connect_timeout_max: ms(30_000),
        delivery_timeout: Duration::from_secs(3_600),
        ..cfg()
    };
    let mut sim = sim_with(config, 2, 2);
    sim.send("t", Some(1), None, Some(b"w")).unwrap();
    sim.drive();
    let node2 = "mock-2:9092";
    sim.unanswered.insert(node2.to_owned());
    let from = sim.connects.len();
    sim.disconnect_node(2);
    let _waiting = sim.send("t", Some(1), None, Some(b"x")).unwrap();
    let attempts = |s: &MockSim| connect_timeouts_ms(s, node2, from).len();
    // Three attempts time out; the fourth connects, and the broker closes
    // it at its ApiVersions request.
    sim.drive_until(100_000, |s| attempts(s) == 3);
    let sent = sim.transmitted.len();
    sim.unanswered.clear();
    sim.cluster.inject(
        Fault::drop_before_apply(ApiKey::ApiVersions)
            .on_broker(2)
            .times(1),
    );
    sim.drive_until(100_000, |s| attempts(s) == 4);
    sim.unanswered.insert(node2.to_owned());
    sim.drive_until(100_000, |s| attempts(s) == 6);
    let timeouts = connect_timeouts_ms(&sim, node2, from);
    println!("three failed, one lost at ApiVersions, two failed: {timeouts:.0?}");
    assert_connect_timeouts_grow(&timeouts[..4], base, max);
    assert_connect_timeouts_grow(&timeouts[4..], base, max);
    assert!(
        sim.transmitted[sent..]
            .iter()
            .any(|t| t.1 == 2 && t.2 == ApiKey::ApiVersions.key()),
        "the fourth attempt connected"
    );
}

/// A bootstrap address counts its own failed attempts: one that answers
/// no connect gets ever longer attempts, up to the max, and a send waiting
/// for metadata fails naming the timed-out connect.
#[test]
fn an_unanswering_bootstrap_address_gets_growing_connect_timeouts() {
    let (base, max) = (500.0, 4_000.0);
    let config = Config {
        connect_timeout: ms(500),
        connect_timeout_max: ms(4_000),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    sim.unanswered.insert("mock-1:9092".to_owned());
    // Sim::send plays a producer thread blocking for metadata (60 s).
    let err = sim.send("t", Some(0), None, Some(b"x")).unwrap_err();
    match &err {
        SendError::MetadataTimeout {
            last_error: Some(LastError::Connect { kind, message }),
            ..
        } => {
            assert_eq!(*kind, std::io::ErrorKind::TimedOut);
            assert!(message.contains("timed out after"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let timeouts = connect_timeouts_ms(&sim, "mock-1:9092", 0);
    assert_eq!(timeouts.len(), sim.connects.len(), "{:?}", sim.connects);
    // 0.5 + 1 + 2 + 4 s, then 3.2-4 s each (plus backoffs): about 15 in
    // 60 s.
    assert!((12..=20).contains(&timeouts.len()), "{timeouts:?}");
    assert_connect_timeouts_grow(&timeouts, base, max);

    // It answers again: the bootstrap connection gets through, is ready,
    // and (the broker known) is closed without a failure.
    sim.unanswered.clear();
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    h.wait().unwrap();
    // Unanswered again, node 1's connection lost: node 1 is tried, then,
    // while it backs off, the bootstrap address; each starts from the
    // base, the bootstrap address's run of failures ended by its ready
    // connection.
    sim.unanswered.insert("mock-1:9092".to_owned());
    let from = sim.connects.len();
    sim.disconnect_node(1);
    let _waiting = sim.send("t", Some(0), None, Some(b"y")).unwrap();
    sim.run_for(ms(1_500));
    let again = connect_timeouts_ms(&sim, "mock-1:9092", from);
    println!("node 1, then the bootstrap address, in turn: {again:.0?}");
    assert!(again.len() >= 2, "{again:?}");
    for t in &again[..2] {
        assert!(
            (400.0..=600.0).contains(t),
            "from the base again: {again:?}"
        );
    }
}

/// Fails `h` with a delivery timeout `stage` names, and returns how long
/// after `from` it failed (driving until it has a result).
fn timed_out_after(sim: &mut MockSim, h: &DeliveryHandle, from: Instant, stage: &str) -> Duration {
    sim.drive_until(1_000_000, |_| h.try_result().is_some());
    match h.try_result() {
        Some(Err(DeliveryError::Timeout { stage: s, .. })) => assert!(s.contains(stage), "{s}"),
        other => panic!("{other:?}"),
    }
    sim.now - from
}

/// A partition's batches each expire at their own deadline: when the
/// oldest one's fires, the younger ones behind it — sealed, open, or
/// waiting for a retry — wait on for theirs.
#[test]
fn younger_batches_outlive_the_expiry_of_older_ones() {
    let dt = ms(40_000);
    // In the accumulator: two full batches and an open one, 10 s apart.
    let config = Config {
        delivery_timeout: dt,
        batch_size: 100,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    learn_metadata(&mut sim);
    stop(&sim, 1);
    sim.disconnect_node(1);
    let mut sent = Vec::new();
    for value in [&[1u8; 100][..], &[2u8; 100], b"open"] {
        sent.push((sim.now, sim.send("t", Some(0), None, Some(value)).unwrap()));
        sim.run_for(ms(10_000));
    }
    for (i, (at, h)) in sent.iter().enumerate() {
        let took = timed_out_after(&mut sim, h, *at, "accumulator");
        assert!(took >= dt && took < dt + ms(100), "{took:?}");
        // Known gone: the warm-up's batch (id 0) and this one (id i + 1).
        assert_eq!(sim.core.part((0, 0)).drained_below, i as u64 + 2);
    }
    assert_eq!(sim.shared.buffered_bytes(), 0);
    // Nothing left unsent, every batch known gone, none open.
    let p = sim.core.part((0, 0));
    assert_eq!((p.unsent, p.open()), (0, None));
    assert_eq!((p.announced, p.drained_below), (4, 4));

    // In the retry queue: two batches sent 5 s apart (both on the wire at
    // once) and refused, each to wait longer for its retry than it has
    // left.
    let config = Config {
        delivery_timeout: dt,
        retry_backoff: ms(60_000),
        retry_backoff_max: ms(60_000),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    let ((t0, a), (t1, b)) = a_then_b_refused(&mut sim);
    sim.run_for(ms(10_000));
    assert_eq!(
        sim.core.part((0, 0)).retry.len(),
        2,
        "both wait for a retry"
    );
    let took = timed_out_after(&mut sim, &a, t0, "retried");
    assert!(took >= dt && took < dt + ms(100), "a: {took:?}");
    let took = timed_out_after(&mut sim, &b, t1, "retried");
    assert!(took >= dt && took < dt + ms(100), "b: {took:?}");
}
