//! Kafka producer on io_uring.
//!
//! - [`Producer`]: `send` from any thread (blocking only for metadata or
//!   buffer memory), `send_async` from async code (yields instead, under
//!   any runtime), `try_send` (never waits); results as futures
//!   ([`DeliveryFuture`]), blocking waits, or one producer-level callback
//!   ([`ProducerBuilder::on_delivery`]) that gets each record's
//!   [`Record::context`](Record#structfield.context).
//! - [`ProducerConfig`]: typed settings, or Kafka property names.
//! - The io_uring I/O thread (module `driver`, the only code here that
//!   talks to the kernel, and the only `unsafe`) is internal. The
//!   `unstable-internals` feature makes it public for kring's own tests;
//!   it follows no semver promise and may change in any release.
//!
//! The producer logic itself (accumulator, sender, retries, idempotence)
//! is the sans-IO `kring-core`; its result and error types are this
//! crate's ([`RecordMetadata`], [`DeliveryError`], [`SendError`]).
//!
//! Diagnostics go through `tracing` (targets `kring` and `kring_core`);
//! with the `log` feature they also reach `log` loggers such as
//! `env_logger` when no tracing subscriber is installed.
//!
//! ```no_run
//! use kring::{Producer, Record};
//! let producer = Producer::builder().bootstrap("127.0.0.1:9092").build()?;
//! let delivery = producer.send(Record::new("events", b"hello").key(b"k1"))?;
//! let metadata = delivery.wait()?;
//! println!("written at offset {}", metadata.offset);
//! producer.close();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod config;
mod delivery;
/// The io_uring driver. Public only with the `unstable-internals` feature
/// (for kring's own tests); not covered by semver.
#[cfg(feature = "unstable-internals")]
pub mod driver;
#[cfg(not(feature = "unstable-internals"))]
#[allow(unreachable_pub)]
mod driver;
mod error;
mod flush;
mod metrics;
mod oauth;
mod producer;
mod record;

pub use config::{
    Acks, Compression, ConfigError, IoBackend, OAuthToken, PartitionerKind, ProducerConfig,
    SaslMechanism, SecurityProtocol, TlsCipherSuite, TlsVersion,
};
pub use delivery::{DeliveryFuture, DeliveryResult};
pub use driver::DriverError;
pub use error::BuildError;
pub use flush::FlushHandle;
pub use kring_core::partitioner::{PartitionView, Partitioner};
pub use kring_core::{
    BrokerState, BrokerStatistics, ConsumerGroupMetadata, DeliveryError, DeliveryReport,
    ErrorCount, LastError, Latency, MessageStatus, OffsetToCommit, PartitionStatistics,
    RecordMetadata, SendError, Statistics, TlsFailure, TopicStatistics, TotalStatistics,
    TransactionError,
};
/// Kafka's error codes, as carried by [`DeliveryError`] and [`SendError`].
pub use kring_protocol::ErrorCode;
pub use metrics::Metrics;
pub use producer::{ProduceFuture, Producer, ProducerBuilder, SendFuture};
pub use record::{Header, Record};

#[cfg(test)]
mod async_tests;
#[cfg(test)]
mod cause_tests;
#[cfg(test)]
mod codec_settings_tests;
#[cfg(test)]
mod fenced_tests;
#[cfg(test)]
mod metadata_wait_tests;
#[cfg(test)]
mod producer_tests;
#[cfg(test)]
mod statistics_tests;
#[cfg(test)]
mod test_support;
