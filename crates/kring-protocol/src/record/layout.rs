//! The fixed 61-byte record batch v2 header: field offsets, attribute bits,
//! and a zero-copy peek at a batch's header.
//!
//! Why offsets as constants: the builder reserves the header up front and
//! fills it when the batch is sealed and again when it is stamped, and the
//! mock broker reads headers without decoding records. One table of offsets
//! keeps all three in agreement with the spec:
//!
//! ```text
//! baseOffset: int64            0
//! batchLength: int32           8   bytes after this field
//! partitionLeaderEpoch: int32 12
//! magic: int8                 16   = 2
//! crc: uint32                 17   CRC32C of attributes..end
//! attributes: int16           21
//! lastOffsetDelta: int32      23
//! baseTimestamp: int64        27
//! maxTimestamp: int64         35
//! producerId: int64           43
//! producerEpoch: int16        51
//! baseSequence: int32         53
//! recordCount: int32          57
//! records                     61
//! ```

use crate::primitives::DecodeError;

use super::Compression;

/// Offset of `baseOffset` (int64).
pub const BASE_OFFSET: usize = 0;
/// Offset of `batchLength` (int32): the number of bytes after this field.
pub const BATCH_LENGTH: usize = 8;
/// Offset of `partitionLeaderEpoch` (int32).
pub const PARTITION_LEADER_EPOCH: usize = 12;
/// Offset of `magic` (int8).
pub const MAGIC: usize = 16;
/// Offset of `crc` (uint32, CRC32C of everything from `attributes` on).
pub const CRC: usize = 17;
/// Offset of `attributes` (int16); the CRC covers from here to the end.
pub const ATTRIBUTES: usize = 21;
/// Offset of `lastOffsetDelta` (int32).
pub const LAST_OFFSET_DELTA: usize = 23;
/// Offset of `baseTimestamp` (int64).
pub const BASE_TIMESTAMP: usize = 27;
/// Offset of `maxTimestamp` (int64).
pub const MAX_TIMESTAMP: usize = 35;
/// Offset of `producerId` (int64).
pub const PRODUCER_ID: usize = 43;
/// Offset of `producerEpoch` (int16).
pub const PRODUCER_EPOCH: usize = 51;
/// Offset of `baseSequence` (int32).
pub const BASE_SEQUENCE: usize = 53;
/// Offset of `recordCount` (int32).
pub const RECORD_COUNT: usize = 57;
/// Size of the batch header; records start here.
pub const HEADER_LEN: usize = 61;
/// Bytes before the part `batchLength` counts (baseOffset + batchLength).
pub const LOG_OVERHEAD: usize = 12;
/// The smallest valid `batchLength`: a header with no records.
pub const MIN_BATCH_LENGTH: i32 = (HEADER_LEN - LOG_OVERHEAD) as i32;
/// The only magic this crate reads and writes.
pub const MAGIC_V2: i8 = 2;

/// Attribute bits 0-2: the compression codec.
pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit 3: timestamp type (0 = CreateTime, 1 = LogAppendTime).
pub const ATTR_LOG_APPEND_TIME: i16 = 0x08;
/// Attribute bit 4: the batch is part of a transaction.
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
/// Attribute bit 5: the batch is a control batch (transaction markers).
pub const ATTR_CONTROL: i16 = 0x20;
/// Attribute bit 6: the batch has a delete horizon (compacted topics).
pub const ATTR_DELETE_HORIZON: i16 = 0x40;

/// `producerId`/`producerEpoch`/`baseSequence` when idempotence is off.
pub const NO_PRODUCER_ID: i64 = -1;
/// See [`NO_PRODUCER_ID`].
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// See [`NO_PRODUCER_ID`].
pub const NO_SEQUENCE: i32 = -1;
/// `partitionLeaderEpoch` a producer writes (the broker fills it in).
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;

/// The fixed fields of a batch header, read without copying or checking
/// the CRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record (0 in a produced batch).
    pub base_offset: i64,
    /// `batchLength`: bytes after the length field.
    pub batch_length: i32,
    /// Leader epoch stamped by the broker (-1 from a producer).
    pub partition_leader_epoch: i32,
    /// Always 2.
    pub magic: i8,
    /// The stored CRC32C (not verified by [`peek_batch_header`]).
    pub crc: u32,
    /// Attribute bits (codec, timestamp type, transactional, control).
    pub attributes: i16,
    /// Offset delta of the last record.
    pub last_offset_delta: i32,
    /// Timestamp of the first record; record timestamps are deltas to it.
    pub base_timestamp: i64,
    /// Largest record timestamp in the batch.
    pub max_timestamp: i64,
    /// Producer id (-1 without idempotence).
    pub producer_id: i64,
    /// Producer epoch (-1 without idempotence).
    pub producer_epoch: i16,
    /// Sequence of the first record (-1 without idempotence).
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: i32,
}

impl BatchHeader {
    /// Size of the whole batch on the wire, header included.
    #[inline]
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    /// The batch's codec; codes 5-7 are errors.
    #[inline]
    pub fn compression(&self) -> Result<Compression, DecodeError> {
        Compression::from_attributes(self.attributes)
    }

    /// Whether the transactional attribute bit is set.
    #[inline]
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// Whether this is a control batch (transaction markers).
    #[inline]
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// Whether timestamps are LogAppendTime (set by the broker) rather than CreateTime.
    #[inline]
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_LOG_APPEND_TIME != 0
    }

    /// The offset of the last record (`base_offset + last_offset_delta`).
    #[inline]
    pub fn last_offset(&self) -> i64 {
        self.base_offset.wrapping_add(self.last_offset_delta as i64)
    }
}

#[inline]
pub(crate) fn read_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn read_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
pub(crate) fn read_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Reads the header of the batch at the start of `buf` without copying and
/// without checking the CRC (the mock broker's fast path).
///
/// Checks that the 61 header bytes are present, that magic is 2 and that
/// `batchLength` is at least a bare header. It does **not** require the
/// whole batch to be present: compare [`BatchHeader::total_len`] with what
/// you hold when that matters.
pub fn peek_batch_header(buf: &[u8]) -> Result<BatchHeader, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::UnexpectedEof {
            needed: HEADER_LEN,
            remaining: buf.len(),
        });
    }
    let magic = buf[MAGIC] as i8;
    if magic != MAGIC_V2 {
        return Err(DecodeError::InvalidValue {
            field: "record batch magic",
            value: magic as i64,
        });
    }
    let batch_length = read_i32(buf, BATCH_LENGTH);
    if batch_length < MIN_BATCH_LENGTH {
        return Err(DecodeError::InvalidValue {
            field: "record batch length",
            value: batch_length as i64,
        });
    }
    Ok(BatchHeader {
        base_offset: read_i64(buf, BASE_OFFSET),
        batch_length,
        partition_leader_epoch: read_i32(buf, PARTITION_LEADER_EPOCH),
        magic,
        crc: read_i32(buf, CRC) as u32,
        attributes: read_i16(buf, ATTRIBUTES),
        last_offset_delta: read_i32(buf, LAST_OFFSET_DELTA),
        base_timestamp: read_i64(buf, BASE_TIMESTAMP),
        max_timestamp: read_i64(buf, MAX_TIMESTAMP),
        producer_id: read_i64(buf, PRODUCER_ID),
        producer_epoch: read_i16(buf, PRODUCER_EPOCH),
        base_sequence: read_i32(buf, BASE_SEQUENCE),
        record_count: read_i32(buf, RECORD_COUNT),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordBatchBuilder;

    /// A batch stamped without idempotence carries Kafka's "none" in each
    /// producer field: -1 on the wire, all bits set.
    #[test]
    fn the_no_producer_values_are_all_ones_on_the_wire() {
        let mut b = RecordBatchBuilder::new(0, 0);
        b.append(0, None, Some(b"v"), &[]);
        let bytes = b.seal(Compression::None).unwrap().stamp(
            NO_PRODUCER_ID,
            NO_PRODUCER_EPOCH,
            NO_SEQUENCE,
            false,
        );
        assert_eq!(bytes[PRODUCER_ID..PRODUCER_ID + 8], [0xff; 8]);
        assert_eq!(bytes[PRODUCER_EPOCH..PRODUCER_EPOCH + 2], [0xff; 2]);
        assert_eq!(bytes[BASE_SEQUENCE..BASE_SEQUENCE + 4], [0xff; 4]);
        assert_eq!(
            bytes[PARTITION_LEADER_EPOCH..PARTITION_LEADER_EPOCH + 4],
            NO_PARTITION_LEADER_EPOCH.to_be_bytes()
        );
    }

    /// Each attribute bit is read alone, whatever the others hold, and the
    /// last offset is the base plus the last delta.
    #[test]
    fn header_flags_and_last_offset() {
        let mut b = RecordBatchBuilder::new(0, 0);
        b.append(0, None, Some(b"v"), &[]);
        b.append(0, None, Some(b"w"), &[]);
        let mut bytes = b
            .seal(Compression::None)
            .unwrap()
            .stamp(1, 0, 0, false)
            .to_vec();
        bytes[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&1_000i64.to_be_bytes());
        let flags = [ATTR_TRANSACTIONAL, ATTR_CONTROL, ATTR_LOG_APPEND_TIME];
        for set in 0..8u8 {
            let mut attributes = ATTR_DELETE_HORIZON | 0x03; // unrelated bits on
            for (i, &f) in flags.iter().enumerate() {
                if set & (1 << i) != 0 {
                    attributes |= f;
                }
            }
            bytes[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
            let h = peek_batch_header(&bytes).unwrap();
            assert_eq!(h.is_transactional(), set & 1 != 0, "{attributes:#x}");
            assert_eq!(h.is_control(), set & 2 != 0, "{attributes:#x}");
            assert_eq!(h.is_log_append_time(), set & 4 != 0, "{attributes:#x}");
            assert_eq!(h.last_offset(), 1_001);
        }
    }
}
