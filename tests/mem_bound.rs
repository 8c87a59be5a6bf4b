//! The producer's heap stays within `buffer.memory` plus a constant: a
//! counting global allocator measures the live heap of the producer's
//! side of the process (the sending threads, kring's I/O and compression
//! threads) while kring runs against kring-mock in the same process under
//! adverse conditions. kring-mock's own allocations (its threads are
//! named `kring-mock-*`: stored logs, requests it holds back) are counted
//! apart, by a tag in each allocation's header.
//!
//! Each test measures the peak of the producer's live heap above the
//! baseline taken once the producer is warm (metadata known, connections
//! up), prints it (`--nocapture` shows the figures) and asserts it stays
//! below `buffer.memory` plus the documented constant overhead
//! ([`FIXED`], [`PER_PARTITION`]).
//!
//! nextest runs each test in a process of its own; under `cargo test`
//! the tests take turns ([`LOCK`]), so each one's peak is its own.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use kring::{Compression, Producer, ProducerBuilder, Record};
use kring_mock::{Fault, MockCluster};
use kring_protocol::ErrorCode;

// ---------------------------------------------------------------------------
// The counting allocator.

struct Counting;

/// Live bytes by tag: 0 the producer's side, 1 kring-mock's threads.
static LIVE: [AtomicI64; 2] = [AtomicI64::new(0), AtomicI64::new(0)];
/// The highest `LIVE[0]` since the last [`reset_peak`].
static PEAK: AtomicI64 = AtomicI64::new(0);

/// Room before each block for its tag (kept 16-aligned, or the block's own
/// alignment when larger).
const HEADER: usize = 16;

thread_local! {
    /// This thread's tag plus one (0: not looked up yet).
    static TAG: Cell<u8> = const { Cell::new(0) };
}

/// 1 on a thread whose name starts with `kring-mock`, else 0. The name is
/// read with `prctl`, which allocates nothing (std sets it before a
/// spawned thread runs any of its own code).
fn tag() -> u8 {
    TAG.with(|t| {
        if t.get() == 0 {
            let mut name = [0u8; 16];
            // SAFETY: PR_GET_NAME writes at most 16 bytes into the buffer.
            let r = unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) };
            let mock = r == 0 && name.starts_with(b"kring-mock");
            t.set(if mock { 2 } else { 1 });
        }
        t.get() - 1
    })
}

fn prefix(layout: Layout) -> usize {
    layout.align().max(HEADER)
}

fn charge(tag: u8, delta: i64) {
    let now = LIVE[tag as usize].fetch_add(delta, Ordering::Relaxed) + delta;
    if tag == 0 && delta > 0 {
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

// SAFETY: every block is the system allocator's, `prefix` bytes larger at
// the front; the pointer handed out is `prefix` bytes in, so it keeps the
// requested alignment, and the tag byte sits just before it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pre = prefix(layout);
        let Ok(full) = Layout::from_size_align(layout.size() + pre, layout.align()) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `full` has a non-zero size.
        let base = unsafe { System.alloc(full) };
        if base.is_null() {
            return base;
        }
        let t = tag();
        // SAFETY: `pre` < the block's size; the tag byte is inside it.
        unsafe {
            let p = base.add(pre);
            *p.sub(1) = t;
            charge(t, layout.size() as i64);
            p
        }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let pre = prefix(layout);
        // SAFETY: `ptr` came from `alloc`/`realloc` above with this layout.
        unsafe {
            let t = *ptr.sub(1);
            charge(t, -(layout.size() as i64));
            let full = Layout::from_size_align_unchecked(layout.size() + pre, layout.align());
            System.dealloc(ptr.sub(pre), full)
        }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let pre = prefix(layout);
        // SAFETY: `ptr` came from `alloc`/`realloc` above with this layout;
        // the prefix (and the tag in it) moves with the block.
        unsafe {
            let t = *ptr.sub(1);
            let full = Layout::from_size_align_unchecked(layout.size() + pre, layout.align());
            let base = System.realloc(ptr.sub(pre), full, new_size + pre);
            if base.is_null() {
                return base;
            }
            charge(t, new_size as i64 - layout.size() as i64);
            base.add(pre)
        }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> i64 {
    LIVE[0].load(Ordering::Relaxed)
}

fn reset_peak() -> i64 {
    let now = live();
    PEAK.store(now, Ordering::Relaxed);
    now
}

fn peak() -> i64 {
    PEAK.load(Ordering::Relaxed)
}

/// One test at a time under `cargo test` (nextest isolates them anyway).
static LOCK: Mutex<()> = Mutex::new(());

// ---------------------------------------------------------------------------
// The bound.

/// `buffer.memory` of every scenario.
const BUFFER_MEMORY: usize = 1 << 20;
/// `batch.size` of every scenario.
const BATCH_SIZE: usize = 16 * 1024;
/// What the producer may hold beyond `buffer.memory` whatever the load,
/// with one connection and four partitions (measured: 34-370 KiB, the
/// most at full speed; gzip's deflate state and output 245 KiB): the
/// connection's receive buffer (64 KiB reads) and the requests in flight
/// (headers; their batches are charged), the ledger's and queues' tables
/// at their high-water mark, a compressed copy of a batch being sealed.
const FIXED: i64 = 512 << 10;
/// What each partition with traffic may hold beyond `buffer.memory`
/// (measured: 377 B at 10,000 partitions): its queue entries and its
/// batches' uncharged side state (`InBatch`, the request's partition
/// entry).
const PER_PARTITION: i64 = 512;

const PRODUCE: i16 = 0;
const METADATA: i16 = 3;

fn cluster(partitions: i32) -> MockCluster {
    support::trace::init();
    MockCluster::builder()
        .brokers(1)
        .topic("t", partitions)
        .build()
        .expect("mock cluster")
}

fn builder(c: &MockCluster) -> ProducerBuilder {
    support::producer_builder()
        .bootstrap(&c.bootstrap_servers())
        .buffer_memory(BUFFER_MEMORY)
        .batch_size(BATCH_SIZE)
        .linger(Duration::from_millis(5))
        .max_block(Duration::from_millis(200))
        .retry_backoff(Duration::from_millis(5))
        .retry_backoff_max(Duration::from_millis(20))
}

/// Metadata known, connection up, one record delivered: the baseline.
fn warm_up(p: &Producer, partitions: i32) -> i64 {
    p.wait_for_metadata("t", Duration::from_secs(10))
        .expect("metadata");
    for part in 0..partitions.min(4) {
        p.send(Record::new("t", b"warm").partition(part))
            .expect("send")
            .wait()
            .expect("warm-up record");
    }
    reset_peak()
}

/// A value of `len` bytes that compresses poorly (xorshift).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// `threads` threads each `produce` records of `value` for `run`,
/// round-robin over `partitions` partitions (errors, such as a full
/// buffer past `max.block.ms`, are counted and ignored).
fn pump(p: &Arc<Producer>, threads: usize, partitions: i32, value: &[u8], run: Duration) -> u64 {
    let end = Instant::now() + run;
    let sent = Arc::new(AtomicI64::new(0));
    thread::scope(|s| {
        for t in 0..threads {
            let (p, sent) = (p.clone(), sent.clone());
            s.spawn(move || {
                let mut i = t as i32;
                let mut n = 0;
                while Instant::now() < end {
                    let r = Record::new("t", value).partition(i % partitions);
                    if p.produce(r).is_ok() {
                        n += 1;
                    }
                    i = i.wrapping_add(threads as i32) & i32::MAX;
                }
                sent.fetch_add(n, Ordering::Relaxed);
            });
        }
    });
    sent.load(Ordering::Relaxed) as u64
}

/// Prints the figures and checks the bound.
fn check(name: &str, base: i64, partitions: i64) {
    let grew = peak() - base;
    let bound = BUFFER_MEMORY as i64 + FIXED + PER_PARTITION * partitions;
    println!(
        "{name}: peak {} KiB above the warm baseline ({} KiB), bound {} KiB \
         (buffer.memory {} KiB + fixed {} KiB + {} partitions x {} B); mock side now {} KiB",
        grew / 1024,
        base / 1024,
        bound / 1024,
        BUFFER_MEMORY / 1024,
        FIXED / 1024,
        partitions,
        PER_PARTITION,
        LIVE[1].load(Ordering::Relaxed) / 1024,
    );
    assert!(
        grew <= bound,
        "{name}: the producer's heap grew {grew} B above its warm baseline, beyond the \
         bound of {bound} B"
    );
}

fn finish(p: Arc<Producer>) {
    p.purge();
    p.close_timeout(Duration::from_secs(5));
}

// ---------------------------------------------------------------------------
// The scenarios.

/// The reference: a healthy broker at full speed.
#[test]
fn healthy_broker() {
    let _g = LOCK.lock();
    let c = MockCluster::sink()
        .topic("t", 4)
        .build()
        .expect("mock sink");
    let p = Arc::new(builder(&c).build().unwrap());
    let base = warm_up(&p, 4);
    let sent = pump(&p, 2, 4, &[7u8; 100], Duration::from_millis(1000));
    println!("healthy_broker: {sent} records accepted");
    check("healthy_broker", base, 4);
    finish(p);
}

/// (a) A broker that never answers Produce: senders fill `buffer.memory`
/// and block until `max.block.ms`, again and again; requests time out
/// and are sent again until `delivery.timeout.ms`.
#[test]
fn stalled_broker() {
    let _g = LOCK.lock();
    let c = cluster(4);
    let p = Arc::new(
        builder(&c)
            .request_timeout(Duration::from_millis(300))
            .delivery_timeout(Duration::from_millis(600))
            .build()
            .unwrap(),
    );
    let base = warm_up(&p, 4);
    c.inject(Fault::swallow(PRODUCE).always());
    let sent = pump(&p, 2, 4, &[7u8; 100], Duration::from_millis(1500));
    println!("stalled_broker: {sent} records accepted");
    check("stalled_broker", base, 4);
    finish(p);
}

/// (a) The same stall with a delivery callback, tiny records, each with a
/// context and a timestamp of its own: the per-record side table (the
/// contexts and timestamps the callback gets back) is the most a record
/// costs beside its bytes in the batch.
#[test]
fn stalled_broker_per_record_tables() {
    let _g = LOCK.lock();
    let c = cluster(4);
    let p = Arc::new(
        builder(&c)
            .request_timeout(Duration::from_millis(300))
            .delivery_timeout(Duration::from_millis(600))
            .on_delivery(|_| {})
            .build()
            .unwrap(),
    );
    let base = warm_up(&p, 4);
    c.inject(Fault::swallow(PRODUCE).always());
    let end = Instant::now() + Duration::from_millis(1500);
    let mut sent = 0u64;
    let mut ts = 1_700_000_000_000i64;
    while Instant::now() < end {
        ts += 1;
        let r = Record::new("t", b"v")
            .partition((ts % 4) as i32)
            .timestamp(ts)
            .context(ts as u64);
        if p.produce(r).is_ok() {
            sent += 1;
        }
    }
    println!("stalled_broker_per_record_tables: {sent} records accepted");
    check("stalled_broker_per_record_tables", base, 4);
    finish(p);
}

/// (b) Every Produce refused as MESSAGE_TOO_LARGE a few times: batches are
/// split in two, and the parts again.
#[test]
fn message_too_large_splits() {
    let _g = LOCK.lock();
    let c = cluster(4);
    let p = Arc::new(builder(&c).build().unwrap());
    let base = warm_up(&p, 4);
    c.inject(Fault::error(PRODUCE, ErrorCode::MESSAGE_TOO_LARGE.code()).times(200));
    let sent = pump(&p, 2, 4, &[7u8; 100], Duration::from_millis(1000));
    println!("message_too_large_splits: {sent} records accepted");
    check("message_too_large_splits", base, 4);
    finish(p);
}

fn compressed(codec: Compression, threads: u32) {
    let _g = LOCK.lock();
    let c = cluster(4);
    let p = Arc::new(
        builder(&c)
            .compression(codec)
            .compression_threads(threads)
            .linger(Duration::from_millis(20))
            .build()
            .unwrap(),
    );
    let base = warm_up(&p, 4);
    // The broker holds every answer back a while, so memory fills.
    c.inject(Fault::delay(PRODUCE, Duration::from_millis(100)).always());
    let value = noise(1000, 99);
    let sent = pump(&p, 2, 4, &value, Duration::from_millis(1000));
    let name = format!("compression {codec:?} threads {threads}");
    println!("{name}: {sent} records accepted");
    check(&name, base, 4);
    finish(p);
}

/// (c) zstd, incompressible values, sealed on the I/O thread.
#[test]
fn compression_zstd() {
    compressed(Compression::Zstd, 0);
}

/// (c) zstd, sealed by a compression thread.
#[test]
fn compression_zstd_thread() {
    compressed(Compression::Zstd, 1);
}

/// (c) gzip.
#[test]
fn compression_gzip() {
    compressed(Compression::Gzip, 0);
}

/// (c) gzip, sealed by a compression thread.
#[test]
fn compression_gzip_thread() {
    compressed(Compression::Gzip, 1);
}

/// (c) lz4.
#[test]
fn compression_lz4() {
    compressed(Compression::Lz4, 0);
}

/// (c) lz4, sealed by a compression thread.
#[test]
fn compression_lz4_thread() {
    compressed(Compression::Lz4, 1);
}

/// (d) 10,000 partitions, small records spread over all of them: small
/// batches, each with its own state.
#[test]
fn many_partitions() {
    let _g = LOCK.lock();
    const N: i32 = 10_000;
    let c = cluster(N);
    let p = Arc::new(builder(&c).build().unwrap());
    let base = warm_up(&p, N);
    c.inject(Fault::delay(PRODUCE, Duration::from_millis(100)).always());
    let sent = pump(&p, 2, N, &[7u8; 20], Duration::from_millis(1500));
    println!("many_partitions: {sent} records accepted");
    check("many_partitions", base, N as i64);
    finish(p);
}

/// (e) Every Produce answered with a retriable error: batches are retried
/// until `delivery.timeout.ms` fails them, while senders keep the buffer
/// full.
#[test]
fn retries_until_delivery_timeout() {
    let _g = LOCK.lock();
    let c = cluster(4);
    let p = Arc::new(
        builder(&c)
            .request_timeout(Duration::from_millis(200))
            .delivery_timeout(Duration::from_millis(300))
            .build()
            .unwrap(),
    );
    let base = warm_up(&p, 4);
    c.inject(Fault::error(PRODUCE, ErrorCode::NOT_ENOUGH_REPLICAS.code()).always());
    let sent = pump(&p, 2, 4, &[7u8; 100], Duration::from_millis(1500));
    println!("retries_until_delivery_timeout: {sent} records accepted");
    check("retries_until_delivery_timeout", base, 4);
    finish(p);
}

/// (f) Answers garbled and cut short, Produce and Metadata: the
/// connection is dropped and made again, and nothing is sized by what the
/// garbled bytes claim.
#[test]
fn garbled_answers() {
    let _g = LOCK.lock();
    let c = cluster(4);
    let p = Arc::new(builder(&c).build().unwrap());
    let base = warm_up(&p, 4);
    c.inject(Fault::corrupt_response(PRODUCE).times(50));
    c.inject(Fault::truncate_response(PRODUCE, 9).times(50));
    c.inject(Fault::corrupt_response(METADATA).times(50));
    let sent = pump(&p, 2, 4, &[7u8; 100], Duration::from_millis(1000));
    println!("garbled_answers: {sent} records accepted");
    check("garbled_answers", base, 4);
    finish(p);
}

/// (f) A "broker" whose answer to the first request declares a response of
/// 400 MB and then sends nothing more: the producer must not reserve what
/// the size prefix claims, only room for what actually arrives.
#[test]
fn declared_response_size_is_not_reserved() {
    let _g = LOCK.lock();
    support::trace::init();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let fake = {
        let stop = stop.clone();
        // Named as kring-mock's threads are, so its allocations are not
        // the producer's.
        thread::Builder::new()
            .name("kring-mock-liar".into())
            .spawn(move || {
                listener.set_nonblocking(true).unwrap();
                let mut conns = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((mut s, _)) = listener.accept() {
                        s.set_nonblocking(false).unwrap();
                        let mut buf = [0u8; 4096];
                        let _ = s.read(&mut buf);
                        // 400,000,000 bytes to follow, and then none.
                        let _ = s.write_all(&400_000_000i32.to_be_bytes());
                        let _ = s.write_all(&[0u8; 8]);
                        conns.push(s);
                    }
                    thread::sleep(Duration::from_millis(5));
                }
            })
            .unwrap()
    };
    let base = reset_peak();
    let p = support::producer_builder()
        .bootstrap(&addr.to_string())
        .buffer_memory(BUFFER_MEMORY)
        .max_block(Duration::from_millis(500))
        .build()
        .unwrap();
    // Waits for metadata that never comes: meanwhile the producer connects
    // and reads the declared size.
    let _ = p.wait_for_metadata("t", Duration::from_millis(500));
    check("declared_response_size", base, 0);
    p.close_timeout(Duration::from_secs(1));
    drop(p);
    stop.store(true, Ordering::Relaxed);
    fake.join().unwrap();
}
