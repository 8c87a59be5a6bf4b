//! Kafka producer on io_uring.
//!
//! - [`Producer`]: `send` from any thread, results as futures
//!   ([`DeliveryFuture`]), blocking waits or callbacks.
//! - [`ProducerConfig`]: typed settings, or Kafka property names.
//! - [`driver`]: the io_uring I/O thread (the only code here that talks to
//!   the kernel, and the only `unsafe`).
#![deny(clippy::undocumented_unsafe_blocks)]

mod backend;
pub mod config;
mod delivery;
pub mod driver;
mod error;
mod metrics;
mod producer;
mod record;

pub use backend::DeliveryResult;
pub use config::{Acks, Compression, ConfigError, PartitionerKind, ProducerConfig};
pub use delivery::DeliveryFuture;
pub use error::{BuildError, DeliveryError, SendError};
pub use metrics::Metrics;
pub use producer::{DeliveryCallback, Producer, ProducerBuilder};
pub use record::{Header, Record, RecordMetadata};
#[cfg(test)]
mod producer_tests;
