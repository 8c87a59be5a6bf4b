//! Reading records back out of the log, for tests that check what landed:
//! every record of every stored batch, decompressed, with its absolute
//! offset and timestamp.

use bytes::Bytes;
use kring_protocol::record::{decode_batch, DecodeOptions};
use kring_protocol::DecodeError;

use crate::log::StoredBatch;

/// One record as stored, with everything a consumer would see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Absolute offset.
    pub offset: i64,
    /// Absolute timestamp (CreateTime, as the producer set it).
    pub timestamp: i64,
    /// Key; `None` is a null key.
    pub key: Option<Bytes>,
    /// Value; `None` is a null value.
    pub value: Option<Bytes>,
    /// Headers in order: key and (nullable) value.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Producer id of its batch (-1: not idempotent).
    pub producer_id: i64,
    /// Producer epoch of its batch.
    pub producer_epoch: i16,
    /// Base sequence of its batch (-1: not idempotent); the record's own
    /// sequence is this plus its position in the batch.
    pub base_sequence: i32,
}

/// Decodes every record of `batch`, appending them to `out`.
pub(crate) fn decode_into(
    batch: &StoredBatch,
    out: &mut Vec<StoredRecord>,
) -> Result<(), DecodeError> {
    let opts = DecodeOptions::default();
    let mut raw = batch.bytes.clone();
    let b = decode_batch(&mut raw, &opts)?;
    for r in b.records(&opts)? {
        out.push(StoredRecord {
            offset: b.offset_of(&r),
            timestamp: b.timestamp_of(&r),
            key: r.key,
            value: r.value,
            headers: r.headers.into_iter().map(|h| (h.key, h.value)).collect(),
            producer_id: b.producer_id,
            producer_epoch: b.producer_epoch,
            base_sequence: b.base_sequence,
        });
    }
    Ok(())
}
