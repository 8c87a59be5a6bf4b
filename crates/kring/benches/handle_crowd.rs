//! A task per record, each awaiting its record's `DeliveryFuture`: what
//! registering many tasks on one batch's completion costs.
//!
//! One task sends RECORDS 20-byte records with `send` to 4 partitions of an
//! in-process kring-mock sink (`batch.size` 1 MiB, `linger.ms` LINGER_MS,
//! so batches hold thousands of records) and spawns a tokio task (2
//! workers) per record that awaits its handle. Prints wall time and the
//! process's CPU time per record.
//!
//! Why: every handle of a batch waits on the batch's one completion, whose
//! waker list was searched for an equal waker at every registration —
//! `n²/2` comparisons for a batch awaited by `n` tasks.
//!
//! Run: `cargo bench -p kring --bench handle_crowd -- [RECORDS [LINGER_MS]]`
//! (defaults 200,000 and 1,000).

#![allow(missing_docs)]

use kring::Record;

#[path = "support/crowd.rs"]
mod crowd;

fn main() {
    let Some((args, smoke)) = crowd::args() else {
        return;
    };
    let n = args
        .first()
        .copied()
        .unwrap_or(if smoke { 2_000 } else { 200_000 }) as usize;
    let linger = args
        .get(1)
        .copied()
        .unwrap_or(if smoke { 5 } else { 1_000 });

    let (_sink, producer) = crowd::sink_producer(
        4,
        "handles",
        &[
            ("batch.size", "1048576".to_owned()),
            ("linger.ms", linger.to_string()),
        ],
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let cpu0 = crowd::process_cpu();
    let t0 = std::time::Instant::now();
    rt.block_on(async {
        let value = [1u8; 20];
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let record = Record::new("handles", &value).partition((i % 4) as i32);
            let delivery = producer.send(record).expect("sent");
            tasks.push(tokio::spawn(async move {
                delivery.await.expect("delivered");
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
    });
    println!(
        "{n} records, a task each: {:.0} ms wall, {:.2} µs CPU/record",
        t0.elapsed().as_secs_f64() * 1e3,
        (crowd::process_cpu() - cpu0).as_secs_f64() * 1e6 / n as f64
    );
}
