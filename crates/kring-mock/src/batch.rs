//! The record batch v2 header, as the broker side reads it.
//!
//! The mock validates what a client sends the way a broker does before it
//! appends: framing (the length field agrees with the bytes), magic, CRC32C,
//! and the header invariants Kafka's `LogValidator` enforces. It reads the
//! fixed 61-byte header itself rather than decoding records, so validation of
//! a 1 MiB batch costs one CRC pass; records are only decoded when a test asks
//! for them ([`crate::MockCluster::records`]).

use bytes::Bytes;

/// Size of the fixed part of a v2 record batch, up to and including the
/// record count.
pub(crate) const HEADER_LEN: usize = 61;
/// Bytes before the `batch_length` field's coverage starts (base offset and
/// the length field itself).
pub(crate) const LOG_OVERHEAD: usize = 12;
/// The CRC covers everything from the attributes to the end of the batch.
const CRC_START: usize = 21;

const COMPRESSION_MASK: i16 = 0x07;
const TRANSACTIONAL_FLAG: i16 = 0x10;
const CONTROL_FLAG: i16 = 0x20;

/// The fixed header fields of one record batch (magic 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Base offset as written in the batch (clients send 0).
    pub base_offset: i64,
    /// The `batch_length` field: bytes after the length field.
    pub batch_length: i32,
    /// Partition leader epoch field.
    pub partition_leader_epoch: i32,
    /// Magic byte (always 2 for a header that validated).
    pub magic: i8,
    /// CRC32C stored in the batch.
    pub crc: u32,
    /// Attributes (compression, timestamp type, transactional, control).
    pub attributes: i16,
    /// Offset of the last record relative to the base offset.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: i32,
}

impl BatchHeader {
    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> i16 {
        self.attributes & COMPRESSION_MASK
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }

    /// Whether the batch is a control batch (transaction marker).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }

    /// Whether the batch carries a producer id (idempotent or transactional).
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// The sequence of the last record, wrapping at `i32::MAX` as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }

    /// Total size of the batch on the wire.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }
}

/// `base + delta` in sequence space: sequences wrap from `i32::MAX` to 0.
pub(crate) fn increment_sequence(base: i32, delta: i32) -> i32 {
    if base > i32::MAX - delta {
        delta - (i32::MAX - base) - 1
    } else {
        base + delta
    }
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

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Reads the fixed header at the start of `b` without checking the CRC.
/// Needs at least [`HEADER_LEN`] bytes.
pub(crate) fn read_header(b: &[u8]) -> Result<BatchHeader, BatchError> {
    if b.len() < LOG_OVERHEAD + 5 {
        return Err(BatchError::Corrupt(format!(
            "{} bytes is shorter than a batch header",
            b.len()
        )));
    }
    let magic = b[16] as i8;
    if magic != 2 {
        return Err(BatchError::Invalid(format!(
            "magic {magic}: produce v3+ only allows record batches with magic 2"
        )));
    }
    if b.len() < HEADER_LEN {
        return Err(BatchError::Corrupt(format!(
            "{} bytes is shorter than the {HEADER_LEN}-byte v2 batch header",
            b.len()
        )));
    }
    Ok(BatchHeader {
        base_offset: be_i64(b, 0),
        batch_length: be_i32(b, 8),
        partition_leader_epoch: be_i32(b, 12),
        magic,
        crc: be_i32(b, 17) as u32,
        attributes: be_i16(b, 21),
        last_offset_delta: be_i32(b, 23),
        base_timestamp: be_i64(b, 27),
        max_timestamp: be_i64(b, 35),
        producer_id: be_i64(b, 43),
        producer_epoch: be_i16(b, 51),
        base_sequence: be_i32(b, 53),
        record_count: be_i32(b, 57),
    })
}

/// Splits a produce request's `records` field into batches and validates
/// each as a broker does before appending. Produce v3+ must carry exactly one
/// batch per partition (Kafka's `ProduceRequest.validateRecords`); this
/// returns the one batch.
pub(crate) fn validate_produce_records(records: &Bytes) -> Result<(BatchHeader, Bytes), BatchError> {
    let header = read_header(records)?;
    if header.batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
        return Err(BatchError::Corrupt(format!(
            "batch length {} is shorter than the header",
            header.batch_length
        )));
    }
    let total = header.total_len();
    if total > records.len() {
        return Err(BatchError::Corrupt(format!(
            "batch length says {total} bytes but only {} arrived",
            records.len()
        )));
    }
    if total < records.len() {
        return Err(BatchError::Invalid(
            "produce requests with version 3 or above must contain exactly one record batch".into(),
        ));
    }
    let computed = crc32c::crc32c(&records[CRC_START..total]);
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
    if header.last_offset_delta < 0 || i64::from(header.last_offset_delta) + 1 != i64::from(header.record_count) {
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
    if header.has_producer_id() && header.base_sequence < 0 {
        return Err(BatchError::Invalid(format!(
            "invalid sequence number {} for a batch with producer id {}",
            header.base_sequence, header.producer_id
        )));
    }
    if header.compression() > 4 {
        return Err(BatchError::Invalid(format!(
            "unknown compression codec {}",
            header.compression()
        )));
    }
    Ok((header, records.slice(..total)))
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
        b.extend_from_slice(&((HEADER_LEN - LOG_OVERHEAD + records.len()) as i32).to_be_bytes());
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
        let crc = crc32c::crc32c(&b[CRC_START..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(b)
    }

    #[test]
    fn valid_batch_passes_and_reads_back() {
        let b = batch(7, 1, 10, 3);
        let (h, body) = validate_produce_records(&b).unwrap();
        assert_eq!(h.record_count, 3);
        assert_eq!(h.last_sequence(), 12);
        assert_eq!(h.producer_id, 7);
        assert_eq!(body.len(), b.len());
    }

    #[test]
    fn crc_mismatch_is_corrupt() {
        let mut v = batch(-1, -1, -1, 2).to_vec();
        let last = v.len() - 1;
        v[last] ^= 0xff;
        let err = validate_produce_records(&Bytes::from(v)).unwrap_err();
        assert!(matches!(err, BatchError::Corrupt(ref m) if m.contains("CRC")), "{err}");
    }

    #[test]
    fn short_and_overlong_inputs_are_refused() {
        let b = batch(-1, -1, -1, 2);
        let cut = b.slice(..b.len() - 1);
        assert!(matches!(validate_produce_records(&cut), Err(BatchError::Corrupt(_))));
        let mut two = b.to_vec();
        two.extend_from_slice(&b);
        assert!(matches!(
            validate_produce_records(&Bytes::from(two)),
            Err(BatchError::Invalid(_))
        ));
        assert!(matches!(validate_produce_records(&Bytes::from_static(&[1, 2, 3])), Err(BatchError::Corrupt(_))));
    }

    #[test]
    fn wrong_magic_is_invalid() {
        let mut v = batch(-1, -1, -1, 1).to_vec();
        v[16] = 1;
        assert!(matches!(validate_produce_records(&Bytes::from(v)), Err(BatchError::Invalid(_))));
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
