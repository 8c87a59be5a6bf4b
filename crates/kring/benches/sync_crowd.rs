//! Many threads sending with the blocking `produce` through one producer
//! whose `buffer.memory` is full most of the time: what waiting for
//! memory costs a crowd of blocked threads.
//!
//! `THREADS` threads each `produce` `RECORDS` 100-byte records to a
//! kring-mock sink (16 partitions, in this process), round-robin over the
//! partitions; `buffer.memory` is small (64 KiB by default), so most sends
//! block for memory. Prints the wall time, the process's CPU time per
//! record, and the sending threads' voluntary context switches per record
//! (each is a thread going to sleep: on the memory wait, or on a lock).
//!
//! Why: a blocked sender sleeps until memory is released, and memory
//! comes back a batch at a time (hundreds of releases per response). When
//! every release woke every blocked thread, the cost per record grew with
//! the number of threads.
//!
//! Run: `cargo bench -p kring --bench sync_crowd -- [THREADS [RECORDS
//! [BUFFER_MEMORY [LINGER_MS]]]]` (defaults 32, 20,000, 64 KiB and 0).

#![allow(missing_docs)]

use std::time::Instant;

use kring::Record;

#[path = "support/crowd.rs"]
mod crowd;

/// Voluntary context switches of the calling thread so far.
fn thread_sleeps() -> u64 {
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable rusage for the call's duration.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
    assert_eq!(rc, 0, "getrusage(RUSAGE_THREAD)");
    u.ru_nvcsw as u64
}

fn main() {
    let Some((args, smoke)) = crowd::args() else {
        return;
    };
    let threads = args.first().copied().unwrap_or(if smoke { 8 } else { 32 });
    let records = args
        .get(1)
        .copied()
        .unwrap_or(if smoke { 100 } else { 20_000 });
    let memory = args.get(2).copied().unwrap_or(64 * 1024);
    let linger = args.get(3).copied().unwrap_or(0);

    let (_sink, producer) = crowd::sink_producer(
        16,
        "crowd",
        &[
            ("buffer.memory", memory.to_string()),
            ("linger.ms", linger.to_string()),
        ],
    );
    let start = std::sync::Barrier::new(threads as usize + 1);
    let (sleeps, cpu0, t0) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let producer = &producer;
                let start = &start;
                s.spawn(move || {
                    let value = [7u8; 100];
                    start.wait();
                    let before = thread_sleeps();
                    for i in 0..records {
                        let p = ((t * records + i) % 16) as i32;
                        producer
                            .produce(Record::new("crowd", &value).partition(p))
                            .expect("sent");
                    }
                    thread_sleeps() - before
                })
            })
            .collect();
        let cpu0 = crowd::process_cpu();
        let t0 = Instant::now();
        start.wait();
        let sleeps: u64 = handles.into_iter().map(|h| h.join().expect("thread")).sum();
        (sleeps, cpu0, t0)
    });
    producer.flush();
    let wall = t0.elapsed();
    let cpu = crowd::process_cpu() - cpu0;
    let n = (threads * records) as f64;
    let m = producer.metrics();
    println!(
        "{threads} threads × {records} records, buffer.memory {memory}, linger {linger} ms: \
         {:.0} ms wall, {:.2} µs CPU/record, {:.2} sleeps/record, {} requests, {:.0} B/request",
        wall.as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e6 / n,
        sleeps as f64 / n,
        m.sends,
        m.bytes_sent as f64 / m.sends.max(1) as f64,
    );
}
