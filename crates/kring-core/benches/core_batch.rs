//! The whole per-batch path at 1,000 and 10,000 partitions all receiving
//! (issue #14): each cycle appends one 100 B record to every partition
//! (open a batch, append), lets linger expire (seal), builds the produce
//! requests (stamp, request entry), answers them and handles the
//! responses (response entry, complete). Batches hold one record, so the
//! figure per element is the cost of one batch.
//!
//! The broker is as cheap as it can be: `CheapBroker` (benches/support/)
//! leaves the handshake, metadata and InitProducerId to kring-mock's
//! dispatch, but answers Produce with a hand-rolled walk of the request
//! header and the topic/partition lists (records skipped by length, never
//! decoded) and a response written directly, the same approach as
//! kring-mock's sink.
//! `sender_cycle_cheap_broker_no_handle` is the same cycle with records
//! appended without a delivery handle (`Producer::produce`), so batches
//! make no completion.
//! `broker_only` runs that broker alone over the frames one cycle sent, so
//! the core's cost per batch is `sender_cycle_cheap_broker` minus
//! `broker_only`.
//!
//! Run: `cargo bench -p kring-core --bench core_batch`

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kring_core::sim::Sim;
use kring_core::Config;
use kring_testclock::origin;

#[path = "support/cheap_broker.rs"]
mod cheap_broker;
use cheap_broker::{answer_produce, CheapBroker};

fn sim_with(partitions: u32) -> Sim<CheapBroker> {
    let broker = CheapBroker::new(partitions);
    let config = Config {
        metadata_max_age: Duration::from_millis(i32::MAX as u64),
        ..Config::default()
    };
    let mut sim = Sim::new(config, broker, origin());
    sim.send("t", Some(0), None, Some(b"prime")).unwrap();
    sim.drive();
    sim
}

#[inline(never)] // named in callgrind's --toggle-collect
fn cycle(sim: &mut Sim<CheapBroker>, partitions: u32) {
    for p in 0..partitions {
        sim.send("t", Some(p as i32), None, Some(&[0u8; 100]))
            .unwrap();
    }
    sim.drive();
}

/// [`cycle`] without delivery handles (`produce`): the batches make no
/// completion.
#[inline(never)] // named in callgrind's --toggle-collect
fn cycle_no_handle(sim: &mut Sim<CheapBroker>, partitions: u32) {
    for p in 0..partitions {
        sim.produce_with_context("t", Some(p as i32), None, Some(&[0u8; 100]), 0)
            .unwrap();
    }
    sim.drive();
}

fn bench_batch(c: &mut Criterion) {
    let sizes = [1_000u32, 10_000];
    let mut g = c.benchmark_group("sender_cycle_cheap_broker");
    g.sample_size(20);
    let mut frames = Vec::new();
    for &n in &sizes {
        g.throughput(Throughput::Elements(u64::from(n)));
        let mut sim = sim_with(n);
        // One captured cycle: the frames `broker_only` answers, and a
        // check that every partition got a one-record batch of its own.
        let sent = sim.core.stats().batches_sent;
        sim.cluster.captured = Some(Vec::new());
        cycle(&mut sim, n);
        assert_eq!(sim.core.stats().batches_sent - sent, u64::from(n));
        frames.push(sim.cluster.captured.take().unwrap());
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| cycle(&mut sim, n))
        });
        assert_eq!(sim.core.pending_batches(), 0);
    }
    g.finish();

    let mut g = c.benchmark_group("sender_cycle_cheap_broker_no_handle");
    g.sample_size(20);
    for &n in &sizes {
        g.throughput(Throughput::Elements(u64::from(n)));
        let mut sim = sim_with(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| cycle_no_handle(&mut sim, n))
        });
        assert_eq!(sim.core.pending_batches(), 0);
    }
    g.finish();

    let mut g = c.benchmark_group("broker_only");
    for (&n, frames) in sizes.iter().zip(&frames) {
        g.throughput(Throughput::Elements(u64::from(n)));
        let mut offsets = vec![0i64; n as usize];
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                for f in frames {
                    std::hint::black_box(answer_produce(f, &mut offsets));
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_batch);
criterion_main!(benches);
