//! Point 3: readiness costs O(ready partitions) (lessons.md #1).

use super::*;
use kring_protocol::ErrorCode;

/// Sends one record to each of 10 partitions among `total` and returns
/// (partitions visited, produce requests) for that cycle.
fn cycle_cost(total: u32) -> (u64, u64) {
    let mut sim = sim_with(cfg(), 1, total);
    // Warm up: metadata, connection, producer id.
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    let v0 = sim.core.stats().partitions_visited;
    let r0 = sim.core.stats().produce_requests;
    let step = (total / 10).max(1);
    let hs: Vec<_> = (0..10)
        .map(|i| {
            sim.send("t", Some((i * step) as i32), None, Some(b"x"))
                .unwrap()
        })
        .collect();
    sim.drive();
    for h in hs {
        h.wait().unwrap();
    }
    (
        sim.core.stats().partitions_visited - v0,
        sim.core.stats().produce_requests - r0,
    )
}

#[test]
fn a_cycle_visits_only_ready_partitions() {
    for total in [10u32, 1_000, 100_000] {
        let (visited, requests) = cycle_cost(total);
        assert_eq!(visited, 10, "{total} partitions: visited {visited}");
        assert_eq!(requests, 1, "{total} partitions: one request for all ten");
    }
}

/// A partition in retry backoff is not re-visited while it waits, however
/// busy the others are.
#[test]
fn backing_off_partitions_are_not_rescanned() {
    let mut sim = sim_with(cfg(), 1, 10);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    fail_produce(&sim, 0, ErrorCode::NOT_ENOUGH_REPLICAS, 3);
    let v0 = sim.core.stats().partitions_visited;
    let b0 = sim.core.stats().batches_sent;
    let h0 = sim.send("t", Some(0), None, Some(b"retry me")).unwrap();
    // Keep the others busy while partition 0 backs off: 9 partitions x 20
    // rounds of sends.
    let mut others = Vec::new();
    for round in 0..20 {
        for p in 1..10 {
            others.push(sim.send("t", Some(p), None, Some(&[round as u8])).unwrap());
        }
        sim.run_for(ms(20));
    }
    sim.drive();
    h0.wait().unwrap();
    for h in others {
        h.wait().unwrap();
    }
    let visited = sim.core.stats().partitions_visited - v0;
    // Partition 0: 1 send + 3 retries; the others: one visit per batch.
    let batches = sim.core.stats().batches_sent - b0;
    assert_eq!(sim.core.stats().retries, 3);
    assert!(
        visited <= batches,
        "visited {visited} > batches sent {batches}"
    );
    assert_eq!(log(&sim, 0).len(), 2);
}

/// Linger deadlines live in one FIFO (`linger.rs`) with lazy removal: a
/// batch sealed before its deadline leaves a stale entry. Stale entries
/// never lead the queue (the core's deadline is a live batch's), and while
/// a lingering batch holds the front, stale entries behind it are
/// compacted away instead of piling up (one per batch sent).
#[test]
fn linger_queue_stays_bounded_and_its_front_live() {
    let linger = Duration::from_secs(60);
    let mut sim = sim_with(
        Config {
            linger,
            delivery_timeout: Duration::from_secs(600),
            batch_size: 100,
            ..cfg()
        },
        1,
        3,
    );
    sim.send("t", Some(2), None, Some(b"w")).unwrap();
    sim.drive();
    // Partition 0 lingers (a small record, an open batch), from t0.
    let t0 = sim.now;
    sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.settle();
    assert_eq!(sim.core.timers.lingers().peek(), Some(t0 + linger));
    // Behind it, 5,000 batches of partition 1, each full at once: every
    // one is announced opened, then sealed (its linger entry goes stale).
    for _ in 0..5_000 {
        sim.send("t", Some(1), None, Some(&[7u8; 100])).unwrap();
        sim.settle();
    }
    assert!(
        sim.core.timers.lingers().len() <= 2 * sim.core.topics.open_len() + 64,
        "{} entries for {} open batches",
        sim.core.timers.lingers().len(),
        sim.core.topics.open_len()
    );
    // Partition 0's batch leaves by a flush: no stale deadline remains.
    let t1 = sim.now;
    sim.send("t", Some(2), None, Some(b"y")).unwrap();
    sim.settle();
    assert_eq!(sim.core.timers.lingers().peek(), Some(t0 + linger));
    sim.flush();
    sim.settle();
    assert_eq!(sim.core.timers.lingers().peek(), None);
    sim.drive();
    assert!(sim.now < t1 + linger, "the flush sent everything at once");
}

/// Batches opened by several producer threads can be announced out of
/// the order of their creation (each thread stamps its own `now`): the
/// linger queue keeps them in deadline order, so each batch leaves at its
/// own linger, the later-announced earlier one first.
#[test]
fn batches_announced_out_of_order_leave_at_their_own_linger() {
    let linger = ms(100);
    let mut sim = sim_with(Config { linger, ..cfg() }, 1, 3);
    learn_metadata(&mut sim);
    let t0 = sim.now;
    // Created at t0 + 20, t0 + 40, then t0 + 10, announced in that order.
    for (p, created) in [(0, 20), (1, 40), (2, 10)] {
        let _ = sim
            .shared
            .append(t0 + ms(created), record_ref(p, b"v"), t0)
            .unwrap();
    }
    sim.settle();
    let stored = |s: &MockSim| (0..3).map(|p| log(s, p).len()).collect::<Vec<_>>();
    let base = stored(&sim);
    for (at, sent) in [(115, [0, 0, 1]), (125, [1, 0, 1]), (145, [1, 1, 1])] {
        sim.run_for(t0 + ms(at) - sim.now);
        let now: Vec<usize> = stored(&sim).iter().zip(&base).map(|(a, b)| a - b).collect();
        assert_eq!(now, sent, "{at} ms: records stored per partition");
    }
}

/// A batch its producer thread sealed (full, or closed by a record that
/// did not fit) is open no more for the core, even while it waits for a
/// free in-flight slot: no linger deadline is left for it, so the I/O
/// thread does not wake at that time for nothing. (`Sealed` carries no
/// batch id: it is the partition's last announced.)
#[test]
fn batches_sealed_by_their_senders_leave_no_linger_deadline() {
    let linger = Duration::from_secs(60);
    let mut sim = sim_with(
        Config {
            linger,
            batch_size: 100,
            max_in_flight: 1,
            ..cfg()
        },
        1,
        2,
    );
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    // The connection's one slot taken for a second (a full batch of
    // partition 1, sent at once).
    let faults = slow(&sim, 1, ms(1000));
    sim.send("t", Some(1), None, Some(&[7u8; 100])).unwrap();
    sim.settle();
    // A small record opens a batch, which lingers.
    let t0 = sim.now;
    sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.settle();
    assert_eq!(sim.core.timers.lingers().peek(), Some(t0 + linger));
    assert_eq!(sim.core.topics.open_len(), 1);
    // A large one does not fit: it seals that batch and opens one of its
    // own, full at once (sealed too). Both wait for the slot.
    sim.send("t", Some(0), None, Some(&[7u8; 100])).unwrap();
    sim.settle();
    assert_eq!(sim.core.topics.open_len(), 0);
    assert_eq!(sim.core.timers.lingers().peek(), None);
    heal(&sim, faults);
    sim.drive();
    assert_eq!(log(&sim, 0).len(), 3);
    assert!(sim.now < t0 + linger, "nothing waited for the linger");
}
