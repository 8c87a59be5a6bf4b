//! kring-protocol: the Kafka wire codec.
//!
//! What is hand-written and what is generated:
//! - [`primitives`]: the wire primitives (fixed-width integers, varints,
//!   strings, bytes, arrays, compact forms, tagged fields). Hand-written.
//! - [`messages`]: one module per API, request and response, for the full
//!   valid version range. **Generated** by `kring-codegen` from
//!   `protocol-specs/`; never edit by hand (`cargo codegen generate`
//!   regenerates, `cargo codegen generate --check` fails when they are stale).
//! - [`message`]: the `Encodable`/`Decodable`/`Request` traits, header
//!   versions and request/response framing. Hand-written.
//! - [`frame`]: [`frame::Frame`], a request frame as chunks, and the
//!   ProduceRequest encoder that splices record batches in without
//!   copying them. Hand-written.
//! - [`record`]: record batch v2 builder and decoder. Hand-written.
//! - [`compression`]: gzip, snappy, lz4 and zstd. Hand-written.
//! - [`error_code`]: the Kafka error code table. Hand-written.
//!
//! This crate performs no I/O and never reads the clock. Decoding never
//! panics: every malformed input becomes a [`DecodeError`].
#![forbid(unsafe_code)]

pub mod compression;
pub mod error_code;
pub mod frame;
pub mod message;
pub mod messages;
pub mod primitives;
pub mod produce_fast;
pub mod record;

pub use error_code::ErrorCode;
pub use frame::Frame;
pub use primitives::{DecodeError, EncodeError};
