//! Record batch micro-benchmarks: append+encode per record, seal with each
//! codec, CRC32C, and decode. Figures read as records/s and bytes/s.
//!
//! Run: `cargo bench -p kring-protocol --bench record`

// criterion_group! expands to an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kring_protocol::record::{
    decode_batch, Compression, DecodeOptions, Header, RecordBatchBuilder,
};

const BATCH: usize = 16 * 1024;

/// Values that look like real payloads: text with varying numbers, which
/// compresses a few times over (like JSON), not all zeros.
fn values(n: usize, size: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut v = Vec::with_capacity(size);
            let mut j = i;
            while v.len() < size {
                v.extend_from_slice(
                    format!(
                        "{{\"id\":{j},\"user\":\"u{}\",\"ok\":true}}",
                        j * 7919 % 1000
                    )
                    .as_bytes(),
                );
                j += 1;
            }
            v.truncate(size);
            v
        })
        .collect()
}

/// How many records of `size` bytes fit a batch of `batch` bytes.
fn fill(size: usize, batch: usize) -> usize {
    let b = RecordBatchBuilder::new(0, 0);
    let v = vec![0u8; size];
    (batch - b.size_in_bytes()) / b.record_size(0, None, Some(&v), &[])
}

/// Times only the appends of one batch's worth of records, `iters` times,
/// each into a fresh builder. The allocator hands back the buffer the
/// previous batch freed, so this is the warm-cache encode cost; a producer
/// whose batch buffers come back cold pays cache misses on top.
fn append_batches(
    iters: u64,
    capacity: usize,
    vals: &[Vec<u8>],
    key: Option<&[u8]>,
    headers: &[Header<'_>],
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut b = RecordBatchBuilder::new(1_700_000_000_000, capacity);
        // Benchmarks time themselves; the crate's no-clock rule is for the library.
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        for (i, v) in vals.iter().enumerate() {
            b.append(1_700_000_000_000 + i as i64, key, Some(v), headers);
        }
        total += start.elapsed();
        black_box(&b);
    }
    total
}

fn bench_append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    let hdrs = [Header {
        key: "trace-id",
        value: Some(b"0af7651916cd43dd8448eb211c80319c"),
    }];
    for (name, size, batch) in [("100B", 100, BATCH), ("1KB", 1000, 64 * 1024)] {
        let n = fill(size, batch);
        let vals = values(n, size);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(name, |bch| {
            bch.iter_custom(|iters| append_batches(iters, batch, &vals, None, &[]))
        });
        g.bench_function(format!("{name}+key+header"), |bch| {
            bch.iter_custom(|iters| {
                append_batches(iters, batch + 64 * n, &vals, Some(b"user-1234"), &hdrs)
            })
        });
    }
    g.finish();
}

fn filled_16k() -> RecordBatchBuilder {
    let n = fill(100, BATCH);
    let mut b = RecordBatchBuilder::new(1_700_000_000_000, BATCH);
    for (i, v) in values(n, 100).iter().enumerate() {
        b.append(1_700_000_000_000 + i as i64, None, Some(v), &[]);
    }
    b
}

fn bench_seal(c: &mut Criterion) {
    let mut g = c.benchmark_group("seal_16KiB");
    g.throughput(Throughput::Bytes(filled_16k().size_in_bytes() as u64));
    for codec in Compression::ALL {
        g.bench_function(codec.name(), |bch| {
            bch.iter_batched(
                filled_16k,
                |b| black_box(b.seal(codec).unwrap().stamp(42, 1, 0, false)),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn filled(records: usize) -> RecordBatchBuilder {
    let mut b = RecordBatchBuilder::new(1_700_000_000_000, BATCH);
    for (i, v) in values(records, 100).iter().enumerate() {
        b.append(1_700_000_000_000 + i as i64, None, Some(v), &[]);
    }
    b
}

/// Small batches: what a producer with many partitions seals (about 1-10
/// records of 100 B per partition per linger tick at 1,000 partitions), so
/// a codec's per-batch setup cost shows. Throughput in records.
fn bench_seal_small(c: &mut Criterion) {
    for records in [1, 10] {
        let mut g = c.benchmark_group(format!("seal_{records}x100B"));
        g.throughput(Throughput::Elements(records as u64));
        for codec in Compression::ALL {
            g.bench_function(codec.name(), |bch| {
                bch.iter_batched(
                    || filled(records),
                    |b| black_box(b.seal(codec).unwrap().stamp(42, 1, 0, false)),
                    BatchSize::SmallInput,
                )
            });
        }
        g.finish();
    }
}

fn bench_crc(c: &mut Criterion) {
    let data: Vec<u8> = values(1, BATCH).pop().unwrap();
    let mut g = c.benchmark_group("crc32c");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("16KiB", |b| b.iter(|| crc32c::crc32c(black_box(&data))));
    g.finish();
}

fn bench_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode_16KiB");
    let opts = DecodeOptions::default();
    for codec in Compression::ALL {
        let wire: Bytes = filled_16k().seal(codec).unwrap().stamp(42, 1, 0, false);
        let n = filled_16k().record_count();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(codec.name(), |b| {
            b.iter(|| {
                let batch = decode_batch(&mut wire.clone(), &opts).unwrap();
                black_box(batch.records(&opts).unwrap())
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_append,
    bench_seal,
    bench_seal_small,
    bench_crc,
    bench_decode
);
criterion_main!(benches);
