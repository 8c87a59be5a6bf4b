//! The fastest path: `try_send` never blocks and returns no handle; every
//! record's result comes to one `on_delivery` callback, which tells records
//! apart by the `context` value each was sent with (like librdkafka's
//! `msg_opaque`): here the index of the line in a table of the caller's.
//! `producer.produce(record)` is the same without the retry loop: it
//! blocks, like `send`, for metadata or buffer memory, and returns no
//! handle either.
//!
//! Run: `cargo run -p kring --example callback_context -- 127.0.0.1:9092 events`
//! (without arguments it starts an in-process kring-mock broker).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kring::{DeliveryReport, Producer, Record, SendError};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (_mock, bootstrap, topic) = match args.as_slice() {
        [bootstrap, topic] => (None, bootstrap.clone(), topic.clone()),
        _ => {
            let mock = kring_mock::MockCluster::builder()
                .brokers(1)
                .topic("events", 4)
                .build()?;
            let b = mock.bootstrap_servers();
            (Some(mock), b, "events".to_owned())
        }
    };
    let lines: Vec<String> = (0..1000).map(|i| format!("line {i}")).collect();

    let delivered = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let (d2, f2) = (delivered.clone(), failed.clone());
    let producer = Producer::builder()
        .bootstrap(&bootstrap)
        // Runs on the I/O thread: keep it short, never block in it.
        .on_delivery(move |r: &DeliveryReport<'_>| match &r.result {
            Ok(_) => {
                d2.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                f2.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "line #{} to {} partition {} failed: {e}",
                    r.context, r.topic, r.partition
                );
            }
        })
        .build()?;

    for (i, line) in lines.iter().enumerate() {
        // Index + 1: context 0 means "none".
        let record = Record::new(&topic, line.as_bytes()).context(i as u64 + 1);
        loop {
            match producer.try_send(record) {
                Ok(()) => break,
                // Not an error: the producer cannot take it right now.
                // A real program would do other work; here, wait a little.
                Err(SendError::NoMetadataYet { .. }) | Err(SendError::BufferFull { .. }) => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    producer.flush();
    println!(
        "delivered {}, failed {}",
        delivered.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
    producer.close();
    Ok(())
}
