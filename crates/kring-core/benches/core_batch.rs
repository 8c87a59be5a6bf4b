//! The whole per-batch path at 1,000 and 10,000 partitions all receiving
//! (issue #14): each cycle appends one 100 B record to every partition
//! (open a batch, append), lets linger expire (seal), builds the produce
//! requests (stamp, request entry), answers them and handles the
//! responses (response entry, complete). Batches hold one record, so the
//! figure per element is the cost of one batch.
//!
//! The broker is as cheap as it can be: `CheapBroker` leaves the handshake,
//! metadata and InitProducerId to the scripted `SimCluster`, but answers
//! Produce with a hand-rolled walk of the request header and the
//! topic/partition lists (records skipped by length, never decoded) and a
//! response written directly, the same approach as kring-mock's sink.
//! `broker_only` runs that broker alone over the frames one cycle sent, so
//! the core's cost per batch is `sender_cycle_cheap_broker` minus
//! `broker_only`.
//!
//! Run: `cargo bench -p kring-core --bench core_batch`

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kring_core::sim::{BrokerStep, Sim, SimBroker, SimCluster};
use kring_core::Config;
use kring_testclock::origin;

const PRODUCE: i16 = 0;

/// `SimCluster` for everything but Produce, which it answers itself.
struct CheapBroker {
    inner: SimCluster,
    /// Next offset of each partition of the one topic.
    offsets: Vec<i64>,
    /// Produce frames seen, while capturing (for `broker_only`).
    captured: Option<Vec<Bytes>>,
}

/// A cursor over a request frame. Panics on a malformed frame: the core
/// under bench wrote it.
struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        s
    }
    fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.take(2).try_into().unwrap())
    }
    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().unwrap())
    }
    fn uvarint(&mut self) -> u32 {
        let mut v = 0u32;
        for i in 0..5 {
            let b = self.b[self.pos];
            self.pos += 1;
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return v;
            }
        }
        panic!("varint too long")
    }
    /// Length of a string, array or bytes field (classic prefix of
    /// `width` bytes or compact); -1 for null.
    fn len(&mut self, flexible: bool, width: usize) -> i64 {
        if flexible {
            i64::from(self.uvarint()) - 1
        } else if width == 2 {
            i64::from(self.i16())
        } else {
            i64::from(self.i32())
        }
    }
    fn skip(&mut self, flexible: bool, width: usize) {
        let l = self.len(flexible, width);
        if l > 0 {
            self.take(l as usize);
        }
    }
    fn skip_tags(&mut self) {
        for _ in 0..self.uvarint() {
            self.uvarint();
            let n = self.uvarint() as usize;
            self.take(n);
        }
    }
}

fn put_len(out: &mut Vec<u8>, n: usize, flexible: bool) {
    if flexible {
        let mut v = n as u32 + 1;
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    } else {
        out.extend_from_slice(&(n as i32).to_be_bytes());
    }
}

/// Answers one Produce request frame (size prefix included): every
/// partition accepted, its records counted from the batch header.
fn answer_produce(frame: &[u8], offsets: &mut [i64]) -> Bytes {
    let mut c = Cur { b: frame, pos: 4 };
    c.i16(); // api key
    let version = c.i16();
    assert!((3..=12).contains(&version), "produce v{version}");
    let corr = c.i32();
    let flexible = version >= 9;
    c.skip(false, 2); // client_id
    if flexible {
        c.skip_tags();
    }
    c.skip(flexible, 2); // transactional_id
    let acks = c.i16();
    assert_ne!(acks, 0, "the bench expects answers");
    c.i32(); // timeout
    let topics = c.len(flexible, 4) as usize;
    let mut out = Vec::with_capacity(frame.len() / 4 + 64);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&corr.to_be_bytes());
    if flexible {
        out.push(0);
    }
    put_len(&mut out, topics, flexible);
    for _ in 0..topics {
        let at = c.pos;
        c.skip(flexible, 2);
        out.extend_from_slice(&frame[at..c.pos]);
        let parts = c.len(flexible, 4) as usize;
        put_len(&mut out, parts, flexible);
        for _ in 0..parts {
            let index = c.i32();
            let len = c.len(flexible, 4);
            let records = c.take(len.max(0) as usize);
            if flexible {
                c.skip_tags();
            }
            // One batch per partition: its record count at byte 57.
            let count = i32::from_be_bytes(records[57..61].try_into().unwrap());
            let o = &mut offsets[index as usize];
            let base = *o;
            *o += i64::from(count);
            out.extend_from_slice(&index.to_be_bytes());
            out.extend_from_slice(&0i16.to_be_bytes());
            out.extend_from_slice(&base.to_be_bytes());
            out.extend_from_slice(&(-1i64).to_be_bytes()); // log_append_time
            if version >= 5 {
                out.extend_from_slice(&0i64.to_be_bytes()); // log_start_offset
            }
            if version >= 8 {
                if flexible {
                    out.extend_from_slice(&[1, 0, 0]); // record_errors, message, tags
                } else {
                    out.extend_from_slice(&0i32.to_be_bytes());
                    out.extend_from_slice(&(-1i16).to_be_bytes());
                }
            }
        }
        if flexible {
            c.skip_tags();
            out.push(0);
        }
    }
    out.extend_from_slice(&0i32.to_be_bytes()); // throttle
    if flexible {
        c.skip_tags();
        out.push(0);
    }
    let len = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Bytes::from(out)
}

impl SimBroker for CheapBroker {
    fn bootstrap(&self) -> String {
        self.inner.bootstrap()
    }
    fn accept(&mut self, addr: &str) -> Option<i32> {
        self.inner.accept(addr)
    }
    fn latency(&self, node: i32) -> Duration {
        self.inner.latency(node)
    }
    fn handle(&mut self, node: i32, frame: Bytes) -> BrokerStep {
        if i16::from_be_bytes([frame[4], frame[5]]) != PRODUCE {
            return self.inner.handle(node, frame);
        }
        let resp = answer_produce(&frame, &mut self.offsets);
        if let Some(c) = &mut self.captured {
            c.push(frame);
        }
        BrokerStep::Respond {
            frame: resp,
            delay: Duration::ZERO,
            mute: Duration::ZERO,
        }
    }
}

fn sim_with(partitions: u32) -> Sim<CheapBroker> {
    let mut cluster = SimCluster::new(1);
    cluster.create_topic("t", partitions);
    cluster.store_records = false;
    let broker = CheapBroker {
        inner: cluster,
        offsets: vec![0; partitions as usize],
        captured: None,
    };
    let config = Config {
        metadata_max_age: Duration::from_millis(i32::MAX as u64),
        ..Config::default()
    };
    let mut sim = Sim::new(config, broker, origin());
    sim.send("t", Some(0), None, Some(b"prime")).unwrap();
    sim.drive();
    sim
}

fn cycle(sim: &mut Sim<CheapBroker>, partitions: u32) {
    for p in 0..partitions {
        sim.send("t", Some(p as i32), None, Some(&[0u8; 100]))
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
