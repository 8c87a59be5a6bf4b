//! Kafka producer on io_uring.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod driver;
