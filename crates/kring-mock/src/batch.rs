//! The record batch v2 header, as the broker side reads it.
//!
//! The mock validates what a client sends the way a broker does before it
//! appends: framing (the length field agrees with the bytes), magic, CRC32C,
//! the header invariants Kafka's `LogValidator` enforces, and every record
//! (decompressed), so a client that writes a subtly broken batch hears
//! about it here rather than from a consumer later.

use bytes::Bytes;

pub use kring_protocol::record::BatchHeader;
use kring_protocol::record::{decode_batch, increment_sequence, layout, DecodeOptions};
use kring_protocol::DecodeError;

/// The sequence of the last record of a batch, wrapping at `i32::MAX` as
/// Kafka does (the sequence helper the producer core shares).
pub(crate) fn last_sequence(h: &BatchHeader) -> i32 {
    increment_sequence(
        h.base_sequence,
        u32::try_from(h.last_offset_delta).unwrap_or(0),
    )
}

/// Whether the batch carries a producer id (idempotent or transactional).
pub(crate) fn has_producer_id(h: &BatchHeader) -> bool {
    h.producer_id >= 0
}

/// Why a batch was refused. Maps onto Kafka's `CorruptRecordException`
/// (CORRUPT_MESSAGE) and `InvalidRecordException` (INVALID_RECORD).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The bytes cannot be a batch: too short, length field disagrees with
    /// the data, or the CRC does not match. Kafka: CORRUPT_MESSAGE.
    #[error("corrupt record batch: {0}")]
    Corrupt(String),
    /// A well-formed batch that breaks a rule the broker enforces. Kafka:
    /// INVALID_RECORD.
    #[error("invalid record batch: {0}")]
    Invalid(String),
}

/// Reads the fixed header at the start of `b` without checking the CRC.
pub(crate) fn read_header(b: &[u8]) -> Result<BatchHeader, BatchError> {
    layout::peek_batch_header(b).map_err(|e| match e {
        DecodeError::InvalidValue {
            field: "record batch magic",
            value,
        } => BatchError::Invalid(format!(
            "magic {value}: produce v3+ only allows record batches with magic 2"
        )),
        e => BatchError::Corrupt(e.to_string()),
    })
}

/// Splits a produce request's `records` field into batches and validates
/// each as a broker does before appending. Produce v3+ must carry exactly one
/// batch per partition (Kafka's `ProduceRequest.validateRecords`); this
/// returns the one batch.
pub(crate) fn validate_produce_records(
    records: &Bytes,
) -> Result<(BatchHeader, Bytes), BatchError> {
    // Kafka iterates the records with `ByteBufferLogInputStream`, which
    // yields no batch when fewer bytes arrived than the log overhead or the
    // batch length says; `ProduceRequest.validateRecords` then refuses the
    // partition with InvalidRecordException. A length below the smallest
    // record overhead is a CorruptRecordException.
    let no_batch = || {
        BatchError::Invalid(
            "produce requests with version 3 or above must have at least one record batch per partition"
                .into(),
        )
    };
    if records.len() < layout::LOG_OVERHEAD {
        return Err(no_batch());
    }
    let declared = i32::from_be_bytes([records[8], records[9], records[10], records[11]]);
    if declared < 14 {
        return Err(BatchError::Corrupt(format!(
            "record size {declared} is less than the minimum record overhead (14)"
        )));
    }
    if layout::LOG_OVERHEAD + declared as usize > records.len() {
        return Err(no_batch());
    }
    let header = read_header(records)?;
    let total = header.total_len();
    if total < records.len() {
        return Err(BatchError::Invalid(
            "produce requests with version 3 or above must contain exactly one record batch".into(),
        ));
    }
    let computed = crc32c::crc32c(&records[layout::ATTRIBUTES..total]);
    if computed != header.crc {
        return Err(BatchError::Corrupt(format!(
            "CRC mismatch: stored {:#010x}, computed {computed:#010x}",
            header.crc
        )));
    }
    if header.record_count <= 0 {
        return Err(BatchError::Invalid(format!(
            "invalid record count {}",
            header.record_count
        )));
    }
    if header.last_offset_delta < 0
        || i64::from(header.last_offset_delta) + 1 != i64::from(header.record_count)
    {
        return Err(BatchError::Invalid(format!(
            "inconsistent batch offset range (last offset delta {}) and record count {}",
            header.last_offset_delta, header.record_count
        )));
    }
    if header.is_control() {
        return Err(BatchError::Invalid(
            "clients are not allowed to write control records".into(),
        ));
    }
    if has_producer_id(&header) && header.base_sequence < 0 {
        return Err(BatchError::Invalid(format!(
            "invalid sequence number {} for a batch with producer id {}",
            header.base_sequence, header.producer_id
        )));
    }
    if let Err(e) = header.compression() {
        return Err(BatchError::Invalid(e.to_string()));
    }
    let body = records.slice(..total);
    validate_records(&header, &body)?;
    Ok((header, body))
}

/// Decodes (decompressing if needed) every record, as Kafka's
/// `LogValidator` does before an append: each record must decode within its
/// length, the count must match the header, and offset deltas must run
/// 0, 1, 2, … (Kafka enforces the latter for compressed batches; every
/// client writes it so for all batches).
fn validate_records(header: &BatchHeader, body: &Bytes) -> Result<(), BatchError> {
    let opts = DecodeOptions {
        // Already checked above.
        verify_crc: false,
        ..DecodeOptions::default()
    };
    // Kafka's record iterators throw InvalidRecordException for records that
    // do not decode or do not match the header's count (the CRC already
    // passed): INVALID_RECORD, not CORRUPT_MESSAGE.
    let corrupt = |e: DecodeError| BatchError::Invalid(e.to_string());
    let b = decode_batch(&mut body.clone(), &opts).map_err(corrupt)?;
    let mut n = 0i32;
    for r in b.iter_records(&opts).map_err(corrupt)? {
        let r = r.map_err(corrupt)?;
        if r.offset_delta != n {
            return Err(BatchError::Invalid(format!(
                "record {n} has offset delta {}",
                r.offset_delta
            )));
        }
        n += 1;
    }
    if n != header.record_count {
        return Err(BatchError::Invalid(format!(
            "header declares {} records, {n} present",
            header.record_count
        )));
    }
    Ok(())
}

/// Rewrites the broker-assigned fields of a batch: the base offset and the
/// partition leader epoch. Neither is covered by the CRC, so the batch stays
/// valid (this is what a Kafka leader does on append).
pub(crate) fn assign(batch: &[u8], base_offset: i64, leader_epoch: i32) -> Bytes {
    let mut v = batch.to_vec();
    v[0..8].copy_from_slice(&base_offset.to_be_bytes());
    v[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    Bytes::from(v)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal valid uncompressed batch with `n` empty-value records, for
    /// tests that only care about the header.
    pub(crate) fn batch(producer_id: i64, epoch: i16, base_seq: i32, n: i32) -> Bytes {
        let mut records = Vec::new();
        for i in 0..n {
            // length, attributes, ts delta, offset delta, key (-1), value (0 bytes), headers (0)
            let body = [0u8, 0, (i as u8) << 1, 1, 0, 0];
            records.push(body.len() as u8 * 2);
            records.extend_from_slice(&body);
        }
        let mut b = Vec::new();
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(
            &((layout::HEADER_LEN - layout::LOG_OVERHEAD + records.len()) as i32).to_be_bytes(),
        );
        b.extend_from_slice(&0i32.to_be_bytes());
        b.push(2);
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&(n - 1).to_be_bytes());
        b.extend_from_slice(&1000i64.to_be_bytes());
        b.extend_from_slice(&1000i64.to_be_bytes());
        b.extend_from_slice(&producer_id.to_be_bytes());
        b.extend_from_slice(&epoch.to_be_bytes());
        b.extend_from_slice(&base_seq.to_be_bytes());
        b.extend_from_slice(&n.to_be_bytes());
        b.extend_from_slice(&records);
        let crc = crc32c::crc32c(&b[layout::ATTRIBUTES..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(b)
    }

    #[test]
    fn valid_batch_passes_and_reads_back() {
        let b = batch(7, 1, 10, 3);
        let (h, body) = validate_produce_records(&b).unwrap();
        assert_eq!(h.record_count, 3);
        assert_eq!(last_sequence(&h), 12);
        assert_eq!(h.producer_id, 7);
        assert_eq!(body.len(), b.len());
    }

    #[test]
    fn crc_mismatch_is_corrupt() {
        let mut v = batch(-1, -1, -1, 2).to_vec();
        let last = v.len() - 1;
        v[last] ^= 0xff;
        let err = validate_produce_records(&Bytes::from(v)).unwrap_err();
        assert!(
            matches!(err, BatchError::Corrupt(ref m) if m.contains("CRC")),
            "{err}"
        );
    }

    #[test]
    fn short_and_overlong_inputs_are_refused() {
        let b = batch(-1, -1, -1, 2);
        let cut = b.slice(..b.len() - 1);
        // As Kafka: no whole batch arrived, INVALID_RECORD.
        assert!(matches!(
            validate_produce_records(&cut),
            Err(BatchError::Invalid(_))
        ));
        let mut two = b.to_vec();
        two.extend_from_slice(&b);
        assert!(matches!(
            validate_produce_records(&Bytes::from(two)),
            Err(BatchError::Invalid(_))
        ));
        assert!(matches!(
            validate_produce_records(&Bytes::from_static(&[1, 2, 3])),
            Err(BatchError::Invalid(_))
        ));
    }

    #[test]
    fn wrong_magic_is_invalid() {
        let mut v = batch(-1, -1, -1, 1).to_vec();
        v[16] = 1;
        assert!(matches!(
            validate_produce_records(&Bytes::from(v)),
            Err(BatchError::Invalid(_))
        ));
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(increment_sequence(5, 0), 5);
    }

    #[test]
    fn assign_keeps_crc_valid() {
        let b = batch(3, 0, 0, 4);
        let a = assign(&b, 1234, 9);
        let (h, _) = validate_produce_records(&a).unwrap();
        assert_eq!(h.base_offset, 1234);
        assert_eq!(h.partition_leader_epoch, 9);
    }
}
