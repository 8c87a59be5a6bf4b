//! Errors at the core's public boundary: what `send` can fail with, and
//! invalid configurations.

use std::sync::Arc;
use std::time::Duration;

/// Why [`Shared::append`](crate::Shared::append) did not accept a record.
/// The record was not queued; nothing will be delivered for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The producer is closing or closed.
    #[error("the producer is closed")]
    Closed,
    /// The record alone exceeds `max.request.size` or `buffer.memory`.
    #[error("record of {size} bytes exceeds the limit of {limit} bytes ({setting})")]
    RecordTooLarge {
        /// The record's size in a batch of its own, batch header included.
        size: usize,
        /// The limit it exceeds.
        limit: usize,
        /// Which setting sets the limit.
        setting: &'static str,
    },
    /// `buffer.memory` is full: it stayed full until the block deadline
    /// (`max.block.ms`), or, from a non-blocking send
    /// ([`Shared::try_produce_now`](crate::Shared::try_produce_now)), it is
    /// full now (`waited` is zero). Memory comes back as batches complete.
    #[error("buffer.memory ({limit} bytes) stayed full for {waited:?}")]
    BufferFull {
        /// The configured `buffer.memory`.
        limit: usize,
        /// How long the caller was willing to wait (zero: it did not wait).
        waited: Duration,
    },
    /// A non-blocking send found the topic's metadata not known yet (first
    /// use, or the topic does not exist yet). The metadata was requested:
    /// the same send succeeds once it arrives. Blocking and async sends
    /// wait for it instead and report [`MetadataTimeout`](Self::MetadataTimeout).
    #[error("topic `{topic}` has no metadata yet (requested){}", last_error.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default())]
    NoMetadataYet {
        /// The topic.
        topic: Arc<str>,
        /// What went wrong last while asking for it: the brokers' error
        /// for the topic, or a connection failure.
        last_error: Option<crate::LastError>,
    },
    /// SASL authentication with the brokers failed while the send waited
    /// for the topic's metadata, and no broker connection is usable: the
    /// Java client's `AuthenticationException` from `send`, reported when
    /// the failure happens rather than at `max.block.ms`. Later sends wait
    /// again (the next attempt, after the reconnect backoff, may succeed).
    #[error("topic `{topic}` has no metadata: {cause}")]
    AuthenticationFailed {
        /// The topic.
        topic: Arc<str>,
        /// The failure ([`LastError::Authentication`](crate::LastError::Authentication)).
        cause: crate::LastError,
    },
    /// The topic's metadata did not arrive before the block deadline
    /// (`max.block.ms`).
    #[error("topic `{topic}` not present in metadata after {waited:?}{}", last_error.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default())]
    MetadataTimeout {
        /// The topic.
        topic: Arc<str>,
        /// How long the caller was willing to wait.
        waited: Duration,
        /// The last error the brokers reported for the topic (for example
        /// UNKNOWN_TOPIC_OR_PARTITION), or else why no broker could be
        /// asked (for example connection refused).
        last_error: Option<crate::LastError>,
    },
    /// The brokers refused the topic with a non-retriable error (for
    /// example TOPIC_AUTHORIZATION_FAILED or INVALID_TOPIC_EXCEPTION).
    #[error("topic `{topic}` is not usable: {} (error code {})", error.name(), error.code())]
    TopicError {
        /// The topic.
        topic: Arc<str>,
        /// The broker's error.
        error: kring_protocol::ErrorCode,
    },
    /// An explicit partition (or one returned by a custom partitioner) does
    /// not exist. Reported at once when the topic's partition count is
    /// known and the topic never had the partition; while the count is not
    /// known, the send first waits for the topic's metadata (within
    /// `max.block.ms`). An explicit partition the topic had but its latest
    /// metadata lacks (the topic was deleted and created again with fewer
    /// partitions, or a broker lags behind a partition increase) waits, as
    /// the Java client does, for metadata listing it: reported when
    /// `max.block.ms` passes without (a non-blocking send reports it at
    /// once), with `num_partitions` the count metadata then lists.
    #[error(
        "partition {partition} of topic `{topic}` does not exist (the topic has {num_partitions})"
    )]
    InvalidPartition {
        /// The topic.
        topic: Arc<str>,
        /// The requested partition.
        partition: i32,
        /// Partitions the topic has.
        num_partitions: u32,
    },
    /// The custom [`Partitioner`](crate::partitioner::Partitioner) panicked
    /// while choosing this record's partition. The panic was caught; the
    /// record was not queued and later records are partitioned as usual.
    #[error("the partitioner panicked for a record of topic `{topic}`: {message}")]
    PartitionerPanicked {
        /// The topic.
        topic: Arc<str>,
        /// The panic's message.
        message: Arc<str>,
    },
    /// The idempotent producer hit a fatal error and can send nothing any
    /// more: a broker refused its producer id (InitProducerId) or answered
    /// a batch with CLUSTER_AUTHORIZATION_FAILED,
    /// TRANSACTIONAL_ID_AUTHORIZATION_FAILED, PRODUCER_FENCED or
    /// UNSUPPORTED_VERSION. Every record pending then failed with the same
    /// error (those on the wire got their own answer), and every later
    /// send is refused with it at once, as the Java client's
    /// `failIfNotReadyForSend` refuses it. Close the producer and create a
    /// new one once the cause (an ACL, a fenced producer) is fixed.
    #[error("the producer failed fatally: {0}")]
    Fatal(crate::delivery::DeliveryError),
    /// A transactional producer was sent a record outside a transaction
    /// (before `begin_transaction`, or while the transaction commits or
    /// aborts, or after an error the transaction must be aborted for), as
    /// the Java client's `failIfNotReadyForSend` refuses it. Not queued.
    #[error("cannot send {0}")]
    NotInTransaction(&'static str),
    /// The topic name cannot be sent (empty, or longer than a Kafka string).
    #[error("invalid topic name `{0}`")]
    InvalidTopic(Arc<str>),
    /// The record's timestamp (milliseconds since the epoch) is negative.
    /// Timestamps must be non-negative, as the Java client's
    /// `ProducerRecord` requires (Kafka reads -1 as "no timestamp"); send
    /// the record without one to have it stamped with the wall clock.
    #[error("invalid timestamp {0}: timestamps must be non-negative")]
    InvalidTimestamp(i64),
}

/// A configuration the producer cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting is out of its valid range.
    #[error("invalid {setting}: {reason}")]
    Invalid {
        /// The setting (Java client name).
        setting: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Idempotence needs acks=all, retries > 0 and max.in.flight <= 5 (as
    /// the Java client requires); set `enable_idempotence = false` to use
    /// the other values.
    #[error("enable.idempotence requires {0}; set enable_idempotence to false to use this value")]
    IdempotenceConflict(&'static str),
}
