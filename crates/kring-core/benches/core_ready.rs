//! One sender cycle with 10 ready partitions among 10, 1,000 and 100,000
//! partitions (lessons.md #1): append one record to each of 10 partitions,
//! let linger expire, build the produce request, handle the response,
//! complete the batches. The cost must not grow with the partitions that
//! merely exist.
//!
//! Driven through the Sim harness, so each cycle also includes the
//! simulated broker decoding the request and encoding its answer (a
//! constant per cycle). Metadata refresh is pushed out of the run.
//!
//! Run: `cargo bench -p kring-core --bench core_ready`

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kring_core::sim::Sim;
use kring_core::Config;
use kring_testclock::origin;

#[path = "support/cheap_broker.rs"]
mod cheap_broker;
use cheap_broker::CheapBroker;

/// The core against the cheapest broker (kring-mock's dispatch for the
/// handshake and metadata, Produce answered without decoding or storing
/// records): the cycle measures the core.
fn sim_with(partitions: u32) -> Sim<CheapBroker> {
    let cluster = CheapBroker::new(partitions);
    let config = Config {
        metadata_max_age: Duration::from_millis(i32::MAX as u64),
        ..Config::default()
    };
    let mut sim = Sim::new(config, cluster, origin());
    sim.send("t", Some(0), None, Some(b"prime")).unwrap();
    sim.drive();
    sim
}

fn bench_cycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("sender_cycle_10_ready");
    g.throughput(Throughput::Elements(10));
    for total in [10u32, 1_000, 100_000] {
        let mut sim = sim_with(total);
        let step = total / 10;
        g.bench_with_input(BenchmarkId::from_parameter(total), &total, |b, _| {
            b.iter(|| {
                for i in 0..10 {
                    sim.send("t", Some((i * step) as i32), None, Some(&[0u8; 100]))
                        .unwrap();
                }
                sim.drive();
            })
        });
        // Each cycle visited exactly its 10 partitions.
        let s = sim.core.stats();
        assert!(s.partitions_visited <= s.batches_sent, "{s:?}");
    }
    g.finish();
}

/// Every one of 10,000 partitions receives a record per cycle: the cost per
/// ready partition (architecture.md's hardest case for scanning clients).
fn bench_all_ready(c: &mut Criterion) {
    let mut g = c.benchmark_group("sender_cycle_all_ready");
    g.sample_size(10);
    let total = 10_000u32;
    g.throughput(Throughput::Elements(u64::from(total)));
    let mut sim = sim_with(total);
    g.bench_with_input(BenchmarkId::from_parameter(total), &total, |b, _| {
        b.iter(|| {
            for p in 0..total {
                sim.send("t", Some(p as i32), None, Some(&[0u8; 100]))
                    .unwrap();
            }
            sim.drive();
        })
    });
    g.finish();
}

criterion_group!(benches, bench_cycle, bench_all_ready);
criterion_main!(benches);
