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
    for _ in 0..3 {
        sim.cluster
            .partition("t", 0)
            .errors
            .push_back(ErrorCode::NOT_ENOUGH_REPLICAS);
    }
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
    assert_eq!(sim.cluster.records("t", 0).len(), 2);
}
