//! Transactions: records that readers with `isolation.level=read_committed`
//! see all together or not at all.
//!
//! - `transactional.id` makes a producer transactional (idempotence is then
//!   required, so `acks=all`); `init_transactions()` once, then
//!   `begin_transaction()`, sends, and `commit_transaction()` or
//!   `abort_transaction()`.
//! - A record of the transaction that fails makes the commit fail with
//!   `TransactionError::Abortable`: abort, then go on with a new
//!   transaction. `TransactionError::Fatal` (another producer took the same
//!   `transactional.id`, or the broker refused it) means close the producer.
//! - `TransactionError::Timeout`: the call waited `max.block.ms`; the
//!   operation goes on, and calling the same method again keeps waiting.
//!
//! Run: `cargo run -p kring --example transactions` (an in-process kring-mock
//! cluster, whose transaction coordinator shows what read_committed sees).

use kring::{Producer, Record, SendError, TransactionError};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock = kring_mock::MockCluster::builder()
        .brokers(3)
        .topic("orders", 3)
        .build()?;
    let producer = Producer::builder()
        .bootstrap(&mock.bootstrap_servers())
        .transactional_id("order-writer-1")
        .build()?;
    producer.init_transactions()?;

    // Committed: all three records become visible together.
    producer.begin_transaction()?;
    let mut deliveries = Vec::new();
    for (i, order) in ["apple", "pear", "plum"].iter().enumerate() {
        deliveries
            .push(producer.send(Record::new("orders", order.as_bytes()).partition(i as i32))?);
    }
    commit_or_abort(&producer)?;
    for d in deliveries {
        let meta = d.wait()?; // written (visible to read_committed since the commit)
        println!("partition {} offset {}", meta.partition, meta.offset);
    }

    // Aborted: written to the log, never seen by read_committed readers.
    producer.begin_transaction()?;
    let cancelled = producer.send(Record::new("orders", b"cancelled".as_slice()).partition(0))?;
    producer.abort_transaction()?;
    // Not sent before the abort: it failed with DeliveryError::Aborted (or,
    // had it been sent already, it is in the log but aborted).
    println!(
        "the aborted record: {:?}",
        cancelled.wait().map(|m| m.offset)
    );

    // Outside a transaction a send is refused at once.
    match producer.send(Record::new("orders", b"stray".as_slice())) {
        Err(SendError::NotInTransaction(why)) => println!("refused: cannot send {why}"),
        other => println!("unexpected: {other:?}"),
    }
    producer.close();

    for p in 0..3 {
        let seen: Vec<String> = mock
            .read_committed("orders", p)?
            .into_iter()
            .filter_map(|r| r.value)
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .collect();
        println!("partition {p}, read_committed: {seen:?}");
    }
    Ok(())
}

/// The usual shape: commit, and on an abortable error abort (the records
/// are then not visible) and let the caller retry the work.
fn commit_or_abort(producer: &Producer) -> Result<(), TransactionError> {
    match producer.commit_transaction() {
        Ok(()) => Ok(()),
        Err(TransactionError::Abortable(cause)) => {
            eprintln!("transaction failed ({cause}); aborting");
            producer.abort_transaction()
        }
        Err(e) => Err(e),
    }
}
