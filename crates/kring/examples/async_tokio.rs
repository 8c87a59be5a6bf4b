//! Sending from async code with `send_async`: a send that has to wait (for
//! the topic's first metadata, or while `buffer.memory` is full) yields
//! instead of blocking the runtime's thread, so other tasks keep running.
//!
//! Run against a broker: `cargo run -p kring --example async_tokio -- 127.0.0.1:9092 events`
//! (without arguments it starts an in-process kring-mock broker).

use std::sync::Arc;

use kring::{Producer, Record};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Keep the mock (if any) alive for the whole run.
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
    let producer = Arc::new(Producer::builder().bootstrap(&bootstrap).build()?);

    // Several tasks share one producer. Each queues its records first and
    // awaits the results afterwards, so records are batched together.
    let mut tasks = Vec::new();
    for task in 0..4u32 {
        let producer = producer.clone();
        let topic = topic.clone();
        tasks.push(tokio::spawn(async move {
            let mut pending = Vec::new();
            for i in 0..100u32 {
                let key = format!("task-{task}");
                let value = format!("record {i} of task {task}");
                let record = Record::new(&topic, value.as_bytes()).key(key.as_bytes());
                // Waits (by yielding) only for metadata or buffer memory,
                // at most max.block.ms; fails at once for a bad record.
                pending.push(producer.send_async(record).await?);
            }
            let mut last = None;
            for delivery in pending {
                last = Some(delivery.await?);
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(last)
        }));
    }
    for t in tasks {
        if let Some(md) = t.await?.map_err(|e| e.to_string())? {
            println!(
                "last record at partition {} offset {}",
                md.partition, md.offset
            );
        }
    }
    // `close` blocks until every record has its result: not on the
    // runtime's thread.
    let p = producer.clone();
    tokio::task::spawn_blocking(move || p.close()).await?;
    Ok(())
}
