//! Every error a send can meet, and what to do about each.
//!
//! Two kinds: `SendError` from `send`/`send_async`/`try_send` (the record
//! was *not* queued, nothing will be delivered for it) and `DeliveryError`
//! as a record's final result (it was queued and then failed; its
//! `status()` says whether it may nevertheless be in the log). Both enums
//! are `#[non_exhaustive]`: keep a catch-all arm.
//!
//! Run: `cargo run -p kring --example handle_errors` (an in-process
//! kring-mock broker; provokes several of these errors on purpose).

use std::time::Duration;

use kring::{DeliveryError, MessageStatus, Producer, Record, SendError};

/// What the application does with a record that could not be queued.
fn on_send_error(e: &SendError) -> &'static str {
    match e {
        // close() was called (or is running): stop producing.
        SendError::Closed => "stop: the producer is closed",
        // Bigger than max.request.size or buffer.memory: retrying cannot
        // help. Split the value, or raise max.request.size (and the
        // topic's max.message.bytes on the broker).
        SendError::RecordTooLarge { .. } => "drop or split the record",
        // buffer.memory stayed full for max.block.ms (or at once, from
        // try_send): the brokers are slower than the input. Back off and
        // retry, or shed load.
        SendError::BufferFull { .. } => "back off, then retry the same record",
        // try_send only: the topic's metadata was requested; retry shortly
        // (or use send/send_async, which wait for it).
        SendError::NoMetadataYet { .. } => "retry shortly",
        // No metadata within max.block.ms. `last_error` says why (for
        // example connection refused, or UNKNOWN_TOPIC_OR_PARTITION):
        // check bootstrap.servers, the network, or create the topic.
        SendError::MetadataTimeout { .. } => "check brokers/topic; retry later",
        // The brokers refuse the topic (authorization, invalid name):
        // retrying will not help.
        SendError::TopicError { .. } => "fix the topic or its ACLs",
        // An explicit partition (or the custom partitioner's choice) the
        // topic does not have: a bug in the caller.
        SendError::InvalidPartition { .. } => "fix the partition choice",
        // The custom partitioner panicked for this record: a bug there.
        SendError::PartitionerPanicked { .. } => "fix the partitioner",
        // Empty or too-long topic name: a bug in the caller.
        SendError::InvalidTopic(_) => "fix the topic name",
        // A negative timestamp: a bug in the caller (leave it unset to
        // have the wall clock stamped).
        SendError::InvalidTimestamp(_) => "fix the timestamp",
        // The idempotent producer was refused for good (no producer id,
        // CLUSTER_AUTHORIZATION_FAILED, PRODUCER_FENCED, ...): it sends
        // nothing any more. Close it, fix the cause, create a new one.
        SendError::Fatal(_) => "close the producer; fix the cause; recreate it",
        _ => "unknown (newer kring): log it and treat it as not sent",
    }
}

/// What the application does with a record that failed after queueing.
fn on_delivery_error(e: &DeliveryError) -> &'static str {
    // Whether a retry by the application could duplicate the record.
    let maybe_written = e.status() == MessageStatus::PossiblyPersisted;
    match e {
        // delivery.timeout.ms passed; `last_error` names the last cause.
        DeliveryError::Timeout { .. } if maybe_written => {
            "resend only if duplicates are acceptable"
        }
        DeliveryError::Timeout { .. } => "resend (it was never written)",
        // A non-retriable broker error (e.g. MESSAGE_TOO_LARGE,
        // TOPIC_AUTHORIZATION_FAILED, INVALID_RECORD): fix the cause.
        DeliveryError::Broker { .. } => "fix the cause the broker names",
        // The broker named invalid records of the batch (KIP-467): a
        // named one carries its reason; the others may be sent again.
        DeliveryError::InvalidRecords {
            record_error: Some(_),
            ..
        } => "fix this record (record_error says why)",
        DeliveryError::InvalidRecords { .. } => "resend: only other records were invalid",
        // `retries` attempts all failed with retriable errors.
        DeliveryError::RetriesExhausted { .. } => "raise retries or fix the brokers",
        // A compression codec failed: a bug; report it.
        DeliveryError::Encode(_) => "report a bug",
        // The partition vanished from metadata (topic deleted or shrunk).
        DeliveryError::UnknownPartition { .. } => "re-check the topic",
        // close_timeout() (or a fatal producer state) gave up on it.
        DeliveryError::Aborted { .. } => "resend with a new producer if still wanted",
        _ => "unknown (newer kring): log it and treat it as failed",
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock = kring_mock::MockCluster::builder()
        .topic("events", 2)
        .auto_create_topics(false)
        .build()?;
    let producer = Producer::builder()
        .bootstrap(&mock.bootstrap_servers())
        .max_request_size(10_000)
        .batch_size(8_000)
        .max_block(Duration::from_secs(1))
        .delivery_timeout(Duration::from_secs(2))
        .request_timeout(Duration::from_millis(500))
        .linger(Duration::ZERO)
        .build()?;
    // Warm up: the topic's metadata is known afterwards.
    producer.send(Record::new("events", b"ok"))?.wait()?;

    let big = vec![0u8; 20_000];
    let attempts: Vec<(&str, Record<'_>)> = vec![
        ("too large", Record::new("events", &big)),
        ("bad partition", Record::new("events", b"x").partition(9)),
        ("missing topic", Record::new("no-such-topic", b"x")),
        ("empty topic name", Record::new("", b"x")),
    ];
    for (what, record) in attempts {
        match producer.send(record) {
            Ok(d) => println!("{what}: queued ({:?})", d.wait()),
            Err(e) => println!("{what}: {e}\n    -> {}", on_send_error(&e)),
        }
    }

    // A record queued while the broker is down fails at delivery.
    mock.stop_broker(mock.broker_ids()[0])?;
    let d = producer.send(Record::new("events", b"lost"))?;
    match d.wait() {
        Ok(md) => println!("delivered at offset {}", md.offset),
        Err(e) => println!("broker down: {e}\n    -> {}", on_delivery_error(&e)),
    }

    producer.close_timeout(Duration::from_secs(1));
    if let Err(e) = producer.send(Record::new("events", b"late")) {
        println!("after close: {e}\n    -> {}", on_send_error(&e));
    }
    Ok(())
}
