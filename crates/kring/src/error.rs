//! Errors at the public boundary: building a producer, sending a record,
//! and a record's final delivery result.

use std::time::Duration;

use crate::config::ConfigError;
use crate::driver::DriverError;

/// Why a [`Producer`](crate::Producer) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The I/O thread could not start (for example, io_uring is blocked).
    #[error(transparent)]
    Driver(#[from] DriverError),
}

/// Why `send` refused a record. Nothing was queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// `buffer.memory` stayed full for `max.block.ms`.
    #[error("buffer.memory is full and stayed full for max.block.ms ({0:?})")]
    BufferFull(Duration),
    /// The record's encoded size exceeds `max.request.size` or
    /// `buffer.memory`.
    #[error("record of {size} bytes exceeds the limit of {max} bytes ({setting})")]
    RecordTooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
        /// The setting that sets the limit.
        setting: &'static str,
    },
    /// The topic's metadata did not arrive within `max.block.ms`.
    #[error("metadata for topic `{topic}` not available after max.block.ms ({waited:?})")]
    MetadataTimeout {
        /// The topic.
        topic: String,
        /// How long `send` waited.
        waited: Duration,
    },
    /// The record names a partition the topic does not have.
    #[error("topic `{topic}` has no partition {partition}")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
    },
    /// The producer is closing or closed.
    #[error("the producer is closed")]
    Closed,
    /// The producer hit a fatal error (for example, an idempotent producer
    /// was fenced) and accepts no more records.
    #[error("the producer failed: {0}")]
    Fatal(String),
}

/// A record's final result when it was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The broker rejected the batch with a non-retriable error, or retries
    /// were exhausted.
    #[error("broker error {code} ({name}){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        /// Kafka error code.
        code: i16,
        /// Kafka error name.
        name: &'static str,
        /// The broker's error message, if any.
        message: Option<String>,
    },
    /// `delivery.timeout.ms` passed before the record was acknowledged.
    #[error("delivery.timeout.ms ({0:?}) expired before the record was acknowledged")]
    TimedOut(Duration),
    /// The producer was closed or dropped before the record was delivered.
    #[error("not delivered: {0}")]
    Aborted(String),
    /// The producer hit a fatal error.
    #[error("the producer failed: {0}")]
    Fatal(String),
}
