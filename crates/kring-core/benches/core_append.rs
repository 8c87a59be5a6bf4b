//! Multi-threaded `append` throughput: 1, 2 and 4 producer threads writing
//! 100-byte records to 16 partitions of one topic. Two patterns:
//! `shared` — every thread cycles over all 16 partitions, so threads do
//! share partitions and their locks; `disjoint` — thread `t` cycles over
//! its own partitions (what the sticky keyless partitioner tends to give).
//!
//! Shows the hot path has no global lock: per-partition mutexes, the
//! thread-cached topic map (one atomic load), one memory reservation per
//! batch. Each sample runs on a fresh producer whose metadata is primed
//! through the Sim harness; the I/O side is not running during the timed
//! part (batches just accumulate), and the producer is aborted afterwards.
//!
//! Run: `cargo bench -p kring-core --bench core_append`

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kring_core::sim::Sim;
use kring_core::{Config, RecordRef};
use kring_mock::MockCluster;
use kring_testclock::origin;

const PER_THREAD: u64 = 100_000;

fn primed_sim() -> Sim<MockCluster> {
    let cluster = MockCluster::builder()
        .topic("t", 16)
        .build_unbound()
        .expect("mock cluster");
    let config = Config {
        linger: Duration::from_secs(3600),
        delivery_timeout: Duration::from_secs(7200),
        buffer_memory: 1 << 30,
        ..Config::default()
    };
    let mut sim = Sim::new(config, cluster, origin());
    sim.send("t", Some(0), None, Some(b"prime")).unwrap();
    sim.drive();
    sim
}

fn bench_append(c: &mut Criterion) {
    for disjoint in [false, true] {
        bench_pattern(c, disjoint);
    }
}

fn bench_pattern(c: &mut Criterion, disjoint: bool) {
    let name = if disjoint {
        "append_100B_16_partitions_disjoint"
    } else {
        "append_100B_16_partitions_shared"
    };
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    for threads in [1u64, 2, 4] {
        g.throughput(Throughput::Elements(threads * PER_THREAD));
        g.bench_with_input(
            BenchmarkId::from_parameter(threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let mut sim = primed_sim();
                        let shared = sim.shared.clone();
                        let now = sim.now;
                        let barrier = Arc::new(Barrier::new(threads as usize + 1));
                        let hs: Vec<_> = (0..threads)
                            .map(|t| {
                                let shared = shared.clone();
                                let barrier = barrier.clone();
                                #[allow(clippy::disallowed_methods)] // a bench measures wall time
                                std::thread::spawn(move || {
                                    let value = [7u8; 100];
                                    let mut handles = Vec::with_capacity(PER_THREAD as usize);
                                    barrier.wait();
                                    let start = Instant::now();
                                    for i in 0..PER_THREAD {
                                        let o = shared
                                            .append(
                                                now,
                                                RecordRef {
                                                    topic: "t",
                                                    partition: Some(partition(
                                                        i, t, threads, disjoint,
                                                    )),
                                                    key: None,
                                                    value: Some(&value),
                                                    headers: &[],
                                                    timestamp_ms: 1_700_000_000_000,
                                                    context: 0,
                                                },
                                                now,
                                            )
                                            .expect("append");
                                        handles.push(o.delivery);
                                    }
                                    let took = start.elapsed();
                                    (took, handles)
                                })
                            })
                            .collect();
                        barrier.wait();
                        let mut slowest = Duration::ZERO;
                        for h in hs {
                            let (took, handles) = h.join().unwrap();
                            slowest = slowest.max(took);
                            drop(handles);
                        }
                        total += slowest;
                        let now = sim.now;
                        sim.core.abort(now, "bench done");
                    }
                    total
                })
            },
        );
    }
    g.finish();
}

/// The partition of record `i` of thread `t`.
fn partition(i: u64, t: u64, threads: u64, disjoint: bool) -> i32 {
    if disjoint {
        let per = 16 / threads;
        (t * per + i % per) as i32
    } else {
        ((i + t * 5) % 16) as i32
    }
}

criterion_group!(benches, bench_append);
criterion_main!(benches);
