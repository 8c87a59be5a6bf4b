//! Flushing and closing with time limits.
//!
//! - `flush()` sends everything buffered now (ignoring `linger.ms`) and
//!   waits until every record sent before it has its result;
//!   `flush_timeout(d)` gives up waiting after `d` (the records are still
//!   sent) and says whether everything completed; `begin_flush()` returns a
//!   handle to wait on later, or to `.await`.
//! - `close()` refuses new records, delivers what is buffered and stops the
//!   I/O thread, waiting at most `delivery.timeout.ms + request.timeout.ms`;
//!   `close_timeout(d)` waits at most `d`, then fails what is still pending
//!   with `DeliveryError::Aborted`. Both return whether every record got
//!   its result in time. Dropping a producer closes it too.
//!
//! Run: `cargo run -p kring --example flush_close` (an in-process kring-mock
//! broker, stopped halfway to show the time limits at work).

use std::time::{Duration, Instant};

use kring::{DeliveryError, Producer, Record};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock = kring_mock::MockCluster::builder()
        .topic("events", 2)
        .build()?;
    let producer = Producer::builder()
        .bootstrap(&mock.bootstrap_servers())
        .linger(Duration::from_millis(100))
        .build()?;

    // A healthy broker: flush returns as soon as everything is acknowledged,
    // without waiting for linger.ms.
    for i in 0..100u32 {
        drop(producer.send(Record::new("events", &i.to_be_bytes()))?);
    }
    let t = Instant::now();
    let done = producer.flush_timeout(Duration::from_secs(10));
    println!("flush: complete={done} after {:?}", t.elapsed());

    // A flush handle can be waited for later (or awaited in async code).
    drop(producer.send(Record::new("events", b"one more"))?);
    let handle = producer.begin_flush();
    // ... other work ...
    handle.wait_timeout(Duration::from_secs(10));
    println!("begin_flush: done={}", handle.is_done());

    // The broker goes away: records can no longer be delivered.
    for id in mock.broker_ids() {
        mock.stop_broker(id)?;
    }
    let stuck = producer.send(Record::new("events", b"never acknowledged"))?;
    let t = Instant::now();
    let done = producer.flush_timeout(Duration::from_millis(500));
    println!(
        "flush with the broker down: complete={done} after {:?}",
        t.elapsed()
    );

    // Close with a bound: what is still pending then fails as Aborted.
    let t = Instant::now();
    let clean = producer.close_timeout(Duration::from_secs(1));
    println!("close_timeout: clean={clean} after {:?}", t.elapsed());
    match stuck.wait() {
        Err(DeliveryError::Aborted { reason, status }) => {
            println!("pending record: aborted ({reason}), {status}")
        }
        other => println!("pending record: {other:?}"),
    }
    Ok(())
}
