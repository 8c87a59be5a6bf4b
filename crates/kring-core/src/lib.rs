//! kring-core: the sans-IO Kafka producer core.
//!
//! Two halves meet here:
//! - **Producer threads** call [`Shared::append`] (through the `kring`
//!   crate's `Producer::send`). A record is partitioned ([`partitioner`]),
//!   encoded in place into its partition's open batch, and a
//!   [`DeliveryHandle`] comes back. No I/O, no global lock; the I/O thread
//!   hears about *batches* (opened, sealed), never records.
//! - **The I/O thread** owns the [`ProducerCore`], a state machine with no
//!   I/O and no clock: the driver feeds it events and time, and asks what
//!   to connect, what to write and when to wake up next. Readiness costs
//!   O(partitions sent): ready partitions sit in per-broker queues with one
//!   entry each, waiting ones in a cancellable deadline queue.
//!
//! The `sim` module (tests, or the `sim` feature) runs the real core
//! against kring-mock's own request dispatch in simulated time.
//!
//! Everything is hand-written; the wire messages come from
//! `kring-protocol`.
#![forbid(unsafe_code)]

pub mod backoff;
mod cause;
mod compress;
pub mod config;
pub mod delivery;
pub mod error;
mod memory;
mod next_write;
mod notice;
mod oneshot;
pub mod partitioner;
mod producer;
mod reply;
mod shared;
mod signal;
mod spare_parts;
#[cfg(test)]
mod test_wake;
mod timer;
mod topics;
mod txn;
mod wait;

#[cfg(any(test, feature = "sim"))]
pub mod sim;

pub use cause::{LastError, TlsFailure};
pub use config::{
    check_bootstrap_entry, Acks, Compression, Config, OAuthToken, OAuthTokenProvider,
    PartitionerChoice, SaslConfig, SaslMechanism, SecurityProtocol, MAX_DURATION, MAX_REQUEST_SIZE,
    METADATA_MAX_IDLE_MIN,
};
pub use delivery::{
    BatchCompletion, DeliveryCallback, DeliveryError, DeliveryHandle, DeliveryReport,
    MessageStatus, RecordMetadata,
};
pub use error::{ConfigError, SendError};
/// A request frame as chunks ([`Transmit::frame`]).
pub use kring_protocol::Frame;
pub use next_write::NextWrite;
pub use producer::{
    BrokerState, BrokerStatistics, ConnId, CoreStats, ErrorCount, IoCommand, Latency,
    PartitionStatistics, ProducerCore, Statistics, StatisticsCallback, StatisticsRequest,
    TopicStatistics, TotalStatistics, Transmit,
};
pub use shared::{AppendOutcome, AsyncAppend, IoWaker, RecordRef, Shared};
pub use signal::FlushHandle;
pub use txn::{ConsumerGroupMetadata, OffsetToCommit, TransactionError, TransactionHandle};
