//! The code of README.md's "Sending" and "Coming from rust-rdkafka"
//! sections, compiled (the README is not a doc test), run against an
//! in-process kring-mock broker.
//!
//! Run: `cargo run -p kring --example readme`

use std::time::Duration;

use kring::{DeliveryReport, Header, Producer, ProducerConfig, Record, SendError};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock = kring_mock::MockCluster::builder()
        .topic("events", 4)
        .build()?;
    let bootstrap = mock.bootstrap_servers();
    blocking(&bootstrap)?;
    futures_executor_like(&bootstrap)?;
    callback(&bootstrap)?;
    migration(&bootstrap)?;
    Ok(())
}

/// README: "From a thread".
fn blocking(bootstrap: &str) -> Result<(), Box<dyn std::error::Error>> {
    let producer = Producer::builder().bootstrap(bootstrap).build()?;
    let delivery = producer.send(Record::new("events", b"hello").key(b"user-1"))?;
    let meta = delivery.wait()?; // blocks until the broker acknowledged it
    println!("partition {} offset {}", meta.partition, meta.offset);
    producer.close();
    Ok(())
}

/// README: "From async code" (any executor; a tiny one here so this
/// example needs no runtime).
fn futures_executor_like(bootstrap: &str) -> Result<(), Box<dyn std::error::Error>> {
    let producer = Producer::builder().bootstrap(bootstrap).build()?;
    block_on(async {
        let delivery = producer.send_async(Record::new("events", b"hello")).await?;
        let meta = delivery.await?;
        println!("offset {}", meta.offset);
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    producer.close();
    Ok(())
}

/// README: "With a callback".
fn callback(bootstrap: &str) -> Result<(), Box<dyn std::error::Error>> {
    let producer = Producer::builder()
        .bootstrap(bootstrap)
        .on_delivery(|r: &DeliveryReport<'_>| {
            if let Err(e) = &r.result {
                eprintln!("record {} failed: {e}", r.context);
            }
        })
        .build()?;
    for i in 1..=1000u64 {
        let value = i.to_string();
        let record = Record::new("events", value.as_bytes()).context(i);
        loop {
            match producer.try_send(record) {
                Ok(()) => break,
                Err(SendError::BufferFull { .. } | SendError::NoMetadataYet { .. }) => {
                    std::thread::sleep(Duration::from_millis(1)); // or do other work
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    producer.flush();
    producer.close();
    Ok(())
}

/// README: "Coming from rust-rdkafka".
fn migration(bootstrap: &str) -> Result<(), Box<dyn std::error::Error>> {
    let config = ProducerConfig::from_properties([
        ("bootstrap.servers", bootstrap),
        ("message.timeout.ms", "30000"),
        ("compression.codec", "lz4"),
    ])?;
    let producer = Producer::new(config)?;
    let headers = [Header {
        key: "trace-id",
        value: Some(b"abc"),
    }];
    let record = Record::new("events", b"payload")
        .key(b"k")
        .headers(&headers);
    match producer.send(record)?.wait() {
        Ok(md) => println!(
            "delivered to partition {} at offset {}",
            md.partition, md.offset
        ),
        Err(e) => eprintln!("failed ({}): {e}", e.status()),
    }
    producer.flush_timeout(Duration::from_secs(10));
    producer.close();
    Ok(())
}

/// Polls a future to completion on this thread (what `futures::executor::
/// block_on` or a tokio runtime would do).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
