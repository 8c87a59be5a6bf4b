//! Kafka producer on io_uring.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod config;
pub mod driver;
pub mod producer;

pub use config::{Acks, Compression, ConfigError, PartitionerKind, ProducerConfig};
