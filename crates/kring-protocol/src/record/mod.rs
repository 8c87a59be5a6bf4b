//! Record batch v2 (magic 2): the unit a producer sends and a broker stores.
//!
//! Hand-written, not generated: the record format is not described by the
//! JSON message specs, and it is the hot path. [`RecordBatchBuilder`]
//! encodes records in place; [`SealedBatch::stamp`] adds the producer
//! fields and the CRC; [`decode_batch`] / [`decode_batches`] read batches
//! back with every length, count and checksum validated (see `decoder`).
//! The header layout is in [`layout`].

mod builder;
mod decoder;
pub mod layout;
mod sequence;

pub use crate::compression::Compression;
pub use builder::{restamp, try_restamp, Header, RecordBatchBuilder, SealedBatch};
pub use decoder::{
    decode_batch, decode_batches, decode_fetched_batches, DecodeOptions, Record, RecordBatch,
    RecordHeader, Records,
};
pub use layout::{peek_batch_header, BatchHeader};
pub use sequence::{increment_sequence, last_sequence, sequence_after};
