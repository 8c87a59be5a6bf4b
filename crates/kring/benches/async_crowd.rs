//! Many async tasks sending through one producer whose `buffer.memory` is
//! full most of the time: what waiting for memory costs a crowd of tasks.
//!
//! `TASKS` tokio tasks (a multi-thread runtime of 2 workers) each send
//! `RECORDS` 100-byte records with `produce_async` to a kring-mock sink
//! (`PARTITIONS` partitions, 16 by default, in this process; 1 is a hot
//! key's crowd); `buffer.memory` is small (256 KiB
//! by default), so most sends wait for memory. Prints the wall time, the process's CPU time
//! per record, and how often tasks were polled per record.
//!
//! Why: a server where each request task awaits a send is the common
//! async shape, and under backpressure all those tasks wait for memory at
//! once. Waking every waiting task at every release made the cost grow
//! with the number of tasks times the number of releases.
//!
//! Run: `cargo bench -p kring --bench async_crowd -- [TASKS [RECORDS
//! [BUFFER_MEMORY [LINGER_MS [PARTITIONS]]]]]` (defaults 2000, 100, 256
//! KiB, 5 and 16).

#![allow(missing_docs)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use kring::Record;

#[path = "support/crowd.rs"]
mod crowd;

/// Counts the polls of the future it wraps.
struct Counted<F> {
    inner: F,
    polls: Arc<AtomicU64>,
}

impl<F: Future + Unpin> Future for Counted<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.fetch_add(1, Ordering::Relaxed);
        Pin::new(&mut self.inner).poll(cx)
    }
}

fn main() {
    let Some((args, smoke)) = crowd::args() else {
        return;
    };
    let tasks = args
        .first()
        .copied()
        .unwrap_or(if smoke { 50 } else { 2000 });
    let records = args.get(1).copied().unwrap_or(if smoke { 10 } else { 100 });
    let memory = args.get(2).copied().unwrap_or(256 * 1024);
    let linger = args.get(3).copied().unwrap_or(5);
    let partitions = args.get(4).copied().unwrap_or(16);

    let (_sink, producer) = crowd::sink_producer(
        partitions as i32,
        "crowd",
        &[
            ("buffer.memory", memory.to_string()),
            ("linger.ms", linger.to_string()),
        ],
    );
    let polls = Arc::new(AtomicU64::new(0));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let cpu0 = crowd::process_cpu();
    let t0 = Instant::now();
    rt.block_on(async {
        let mut handles = Vec::new();
        for t in 0..tasks {
            let producer = producer.clone();
            let polls = polls.clone();
            handles.push(tokio::spawn(async move {
                let value = [7u8; 100];
                for i in 0..records {
                    let p = ((t * records + i) % partitions) as i32;
                    let record = Record::new("crowd", &value).partition(p);
                    Counted {
                        inner: producer.produce_async(record),
                        polls: polls.clone(),
                    }
                    .await
                    .expect("sent");
                }
            }));
        }
        for h in handles {
            h.await.expect("task");
        }
    });
    producer.flush();
    let wall = t0.elapsed();
    let cpu = crowd::process_cpu() - cpu0;
    let n = (tasks * records) as f64;
    let m = producer.metrics();
    println!(
        "{tasks} tasks × {records} records: {:.0} ms wall, {:.2} µs CPU/record, {:.2} polls/record, \
         {} requests, {:.0} B/request, {} I/O wake-ups",
        wall.as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e6 / n,
        polls.load(Ordering::Relaxed) as f64 / n,
        m.sends,
        m.bytes_sent as f64 / m.sends.max(1) as f64,
        m.io_wakeups,
    );
}
