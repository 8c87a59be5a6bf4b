//! kring-core: the sans-IO Kafka producer core.
#![forbid(unsafe_code)]

pub mod backoff;
pub mod config;
pub mod delivery;
pub mod error;
mod memory;
mod notice;
pub mod partitioner;
mod shared;
mod signal;
mod timer;
mod topics;

#[cfg(any(test, feature = "sim"))]
pub mod sim;

pub use config::{Acks, Compression, Config, PartitionerChoice};
pub use delivery::{BatchCompletion, DeliveryCallback, DeliveryError, DeliveryHandle, DeliveryReport, RecordMetadata};
pub use error::{ConfigError, SendError};
pub use shared::{AppendOutcome, RecordRef, Shared};
pub use signal::FlushHandle;
