//! The floor of issue #14 point 1: what it costs per record only to touch
//! cold per-partition state, with none of kring in the loop.
//!
//! Per record: lock partition `p`'s own `Mutex`, copy a 110-byte record
//! into its own heap buffer, count it; `p` goes round-robin over all
//! partitions, as `kring perf --partitions N` sends. At 16 partitions
//! everything stays in the L1/L2 caches; at 10,000 each partition's lines
//! are cold again when its next record comes. The difference between the
//! two is the part of kring's 10,000-partition figure that no per-batch
//! design can remove (BENCHMARKS.md, "Per-batch cost": ~15–30 ns/record
//! on the 2-core VM, at most a seventh of what 1.5× of the 16-partition figure
//! allows).
//!
//! Run: `cargo bench -p kring-core --bench cold_partitions`

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::sync::Mutex;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const BUFFER: usize = 16 * 1024;
const RECORD: [u8; 110] = [7; 110];

struct Partition {
    buf: Vec<u8>,
    records: u64,
}

/// One record into partition `i`'s buffer (emptied when full, as a sealed
/// batch would leave it).
fn append(p: &Mutex<Partition>) {
    let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
    if p.buf.len() + RECORD.len() > BUFFER {
        p.buf.clear();
    }
    p.buf.extend_from_slice(&RECORD);
    p.records += 1;
}

fn cold_partitions(c: &mut Criterion) {
    let mut g = c.benchmark_group("cold_partition_touch");
    g.throughput(Throughput::Elements(1));
    for n in [16usize, 1_000, 10_000] {
        // Boxed one by one, like kring's slots and buffers.
        let parts: Vec<Box<Mutex<Partition>>> = (0..n)
            .map(|_| {
                Box::new(Mutex::new(Partition {
                    buf: Vec::with_capacity(BUFFER),
                    records: 0,
                }))
            })
            .collect();
        let mut next = 0usize;
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                append(&parts[next]);
                next += 1;
                if next == n {
                    next = 0;
                }
            })
        });
        // Keeps the appends observable (no assertion: `--list`, as
        // nextest calls it, runs no iteration).
        let total: u64 = parts
            .iter()
            .map(|p| p.lock().unwrap_or_else(|e| e.into_inner()).records)
            .sum();
        std::hint::black_box(total);
    }
    g.finish();
}

criterion_group!(benches, cold_partitions);
criterion_main!(benches);
