//! Decoding record batches v2 from untrusted bytes.
//!
//! Why so defensive: the broker (and kring-mock acting as one) decodes what
//! any client sends, and a client decodes what any broker returns. Every
//! length is checked against the bytes actually present before it is used,
//! no allocation is sized from an unchecked count (it is bounded by the
//! bytes left, since every element takes at least one byte), the CRC32C is
//! verified before anything after it is trusted, and decompression is
//! bounded ([`DecodeOptions::max_decompressed_size`]).
//!
//! Decoding is zero-copy where it can be: a [`RecordBatch`] holds a slice of
//! the input, and an uncompressed record's key and value are slices of it
//! too.

use bytes::{Buf, Bytes};

use crate::primitives::{
    bounded_capacity, get_i8, get_varint, get_varlong, DecodeError, DecodeResult,
};

use super::layout::{self, BatchHeader, HEADER_LEN, LOG_OVERHEAD};
use super::Compression;

/// Limits and checks for decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Verify each batch's CRC32C (default true).
    pub verify_crc: bool,
    /// Upper bound on a batch's decompressed records section (default 64 MiB).
    pub max_decompressed_size: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            verify_crc: true,
            max_decompressed_size: 64 << 20,
        }
    }
}

/// A decoded batch header plus its (still encoded, maybe compressed)
/// records. Records are decoded on demand with [`records`](Self::records)
/// or [`iter_records`](Self::iter_records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Leader epoch stamped by the broker (-1 from a producer).
    pub partition_leader_epoch: i32,
    /// Attribute bits (codec, timestamp type, transactional, control).
    pub attributes: i16,
    /// Offset delta of the last record.
    pub last_offset_delta: i32,
    /// Timestamp record timestamp deltas are relative to.
    pub base_timestamp: i64,
    /// Largest record timestamp (or the LogAppendTime).
    pub max_timestamp: i64,
    /// Producer id (-1 without idempotence).
    pub producer_id: i64,
    /// Producer epoch (-1 without idempotence).
    pub producer_epoch: i16,
    /// Sequence of the first record (-1 without idempotence).
    pub base_sequence: i32,
    /// Number of records the header declares (validated when records are decoded).
    pub record_count: i32,
    /// Codec of the records section.
    pub compression: Compression,
    /// The stored CRC32C (verified at decode when [`DecodeOptions::verify_crc`]).
    pub crc: u32,
    /// The whole batch as it was on the wire.
    raw: Bytes,
}

/// A record header, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    /// Header key (UTF-8).
    pub key: String,
    /// Header value; `None` is a null value.
    pub value: Option<Bytes>,
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Offset relative to the batch's base offset.
    pub offset_delta: i32,
    /// Timestamp relative to the batch's base timestamp.
    pub timestamp_delta: i64,
    /// Key; `None` is a null key.
    pub key: Option<Bytes>,
    /// Value; `None` is a null value (a tombstone).
    pub value: Option<Bytes>,
    /// Headers in order.
    pub headers: Vec<RecordHeader>,
}

/// Decodes one batch from the front of `buf`, advancing it past the batch.
///
/// Checks that the whole batch is present, magic is 2, the codec is known,
/// the record count is not negative and (if enabled) the CRC32C. Records
/// are not decoded yet: see [`RecordBatch::records`]. On error `buf` is
/// left unchanged.
pub fn decode_batch(buf: &mut Bytes, opts: &DecodeOptions) -> Result<RecordBatch, DecodeError> {
    let total = batch_extent(buf)?;
    let raw = buf.slice(..total);
    let h = layout::peek_batch_header(&raw)?;
    if opts.verify_crc {
        let computed = crc32c::crc32c(&raw[layout::ATTRIBUTES..]);
        if computed != h.crc {
            return Err(DecodeError::CrcMismatch {
                stored: h.crc,
                computed,
            });
        }
    }
    let compression = h.compression()?;
    if h.record_count < 0 {
        return Err(DecodeError::InvalidValue {
            field: "record count",
            value: h.record_count as i64,
        });
    }
    buf.advance(total);
    Ok(RecordBatch {
        base_offset: h.base_offset,
        partition_leader_epoch: h.partition_leader_epoch,
        attributes: h.attributes,
        last_offset_delta: h.last_offset_delta,
        base_timestamp: h.base_timestamp,
        max_timestamp: h.max_timestamp,
        producer_id: h.producer_id,
        producer_epoch: h.producer_epoch,
        base_sequence: h.base_sequence,
        record_count: h.record_count,
        compression,
        crc: h.crc,
        raw,
    })
}

/// The size of the batch at the front of `buf` after checking magic, the
/// length field and that all of it is present.
fn batch_extent(buf: &[u8]) -> DecodeResult<usize> {
    if buf.len() <= layout::MAGIC {
        return Err(DecodeError::UnexpectedEof {
            needed: HEADER_LEN,
            remaining: buf.len(),
        });
    }
    let magic = buf[layout::MAGIC] as i8;
    if magic != layout::MAGIC_V2 {
        return Err(DecodeError::InvalidValue {
            field: "record batch magic",
            value: magic as i64,
        });
    }
    let len = layout::read_i32(buf, layout::BATCH_LENGTH);
    if len < layout::MIN_BATCH_LENGTH {
        return Err(DecodeError::InvalidValue {
            field: "record batch length",
            value: len as i64,
        });
    }
    let total = LOG_OVERHEAD + len as usize;
    if buf.len() < total {
        return Err(DecodeError::UnexpectedEof {
            needed: total,
            remaining: buf.len(),
        });
    }
    Ok(total)
}

/// Splits a `records` field (one or more concatenated batches, as in a
/// ProduceRequest) into batches. Strict: a truncated last batch is an
/// error. For Fetch responses, where the broker may cut the last batch
/// short, use [`decode_fetched_batches`].
pub fn decode_batches(
    records: Bytes,
    opts: &DecodeOptions,
) -> Result<Vec<RecordBatch>, DecodeError> {
    let mut rest = records;
    let mut out = Vec::with_capacity(bounded_capacity(4, rest.len() / HEADER_LEN));
    while !rest.is_empty() {
        out.push(decode_batch(&mut rest, opts)?);
    }
    Ok(out)
}

/// Like [`decode_batches`], but an incomplete batch at the end (a Fetch
/// response cut at `max_bytes`) is skipped, as the Java consumer does.
/// Returns the complete batches and the number of trailing bytes skipped.
pub fn decode_fetched_batches(
    records: Bytes,
    opts: &DecodeOptions,
) -> Result<(Vec<RecordBatch>, usize), DecodeError> {
    let mut rest = records;
    let mut out = Vec::new();
    while !rest.is_empty() {
        match decode_batch(&mut rest, opts) {
            Ok(b) => out.push(b),
            Err(DecodeError::UnexpectedEof { .. }) => return Ok((out, rest.len())),
            Err(e) => return Err(e),
        }
    }
    Ok((out, 0))
}

impl RecordBatch {
    /// The whole batch as it was on the wire (zero-copy).
    #[inline]
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The records section as stored (compressed if the batch is).
    #[inline]
    pub fn records_section(&self) -> Bytes {
        self.raw.slice(HEADER_LEN..)
    }

    /// The batch header fields.
    pub fn header(&self) -> BatchHeader {
        BatchHeader {
            base_offset: self.base_offset,
            batch_length: (self.raw.len() - LOG_OVERHEAD) as i32,
            partition_leader_epoch: self.partition_leader_epoch,
            magic: layout::MAGIC_V2,
            crc: self.crc,
            attributes: self.attributes,
            last_offset_delta: self.last_offset_delta,
            base_timestamp: self.base_timestamp,
            max_timestamp: self.max_timestamp,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
            record_count: self.record_count,
        }
    }

    /// Whether the transactional attribute bit is set.
    #[inline]
    pub fn is_transactional(&self) -> bool {
        self.attributes & layout::ATTR_TRANSACTIONAL != 0
    }

    /// Whether this is a control batch (transaction markers).
    #[inline]
    pub fn is_control(&self) -> bool {
        self.attributes & layout::ATTR_CONTROL != 0
    }

    /// Whether timestamps are LogAppendTime (the batch's max timestamp
    /// applies to every record).
    #[inline]
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & layout::ATTR_LOG_APPEND_TIME != 0
    }

    /// Absolute offset of a record of this batch.
    #[inline]
    pub fn offset_of(&self, record: &Record) -> i64 {
        self.base_offset.wrapping_add(record.offset_delta as i64)
    }

    /// Absolute timestamp of a record of this batch.
    #[inline]
    pub fn timestamp_of(&self, record: &Record) -> i64 {
        if self.is_log_append_time() {
            self.max_timestamp
        } else {
            self.base_timestamp.wrapping_add(record.timestamp_delta)
        }
    }

    /// Decompresses (if needed) and decodes every record, checking each
    /// record's length against its contents and the record count against
    /// the records present.
    pub fn records(&self, opts: &DecodeOptions) -> Result<Vec<Record>, DecodeError> {
        let iter = self.iter_records(opts)?;
        // At least 7 bytes per record (length, attributes, timestamp delta,
        // offset delta, key length, value length, header count).
        let mut out = Vec::with_capacity(bounded_capacity(
            iter.remaining as usize,
            iter.data.len() / MIN_RECORD_LEN,
        ));
        for r in iter {
            out.push(r?);
        }
        Ok(out)
    }

    /// Decompresses (if needed) and returns an iterator decoding one record
    /// at a time. The iterator ends with an error if the record count and
    /// the records present disagree.
    pub fn iter_records(&self, opts: &DecodeOptions) -> Result<Records, DecodeError> {
        let section = self.records_section();
        let data = match self.compression {
            Compression::None => section,
            codec => crate::compression::decompress(codec, &section, opts.max_decompressed_size)?,
        };
        Ok(Records {
            data,
            remaining: self.record_count,
            done: false,
        })
    }
}

/// Smallest encoded record: seven one-byte fields.
const MIN_RECORD_LEN: usize = 7;

/// Iterator over the records of a batch (see [`RecordBatch::iter_records`]).
/// Yields `Err` at most once, then ends.
#[derive(Debug, Clone)]
pub struct Records {
    data: Bytes,
    remaining: i32,
    done: bool,
}

impl Iterator for Records {
    type Item = Result<Record, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.remaining == 0 {
            self.done = true;
            return if self.data.is_empty() {
                None
            } else {
                Some(Err(DecodeError::TrailingBytes(self.data.len())))
            };
        }
        self.remaining -= 1;
        let r = decode_record(&mut self.data);
        if r.is_err() {
            self.done = true;
        }
        Some(r)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            (0, Some(0))
        } else {
            (0, Some(self.remaining as usize + 1))
        }
    }
}

/// Reads a varint length that may be -1 (null).
#[inline]
fn get_nullable_len(buf: &mut Bytes) -> DecodeResult<Option<usize>> {
    match get_varint(buf)? {
        -1 => Ok(None),
        n if n < 0 => Err(DecodeError::InvalidLength(n as i64)),
        n => Ok(Some(n as usize)),
    }
}

#[inline]
fn take(buf: &mut Bytes, n: usize) -> DecodeResult<Bytes> {
    if buf.len() < n {
        return Err(DecodeError::UnexpectedEof {
            needed: n,
            remaining: buf.len(),
        });
    }
    Ok(buf.split_to(n))
}

#[inline]
fn get_nullable(buf: &mut Bytes) -> DecodeResult<Option<Bytes>> {
    match get_nullable_len(buf)? {
        None => Ok(None),
        Some(n) => take(buf, n).map(Some),
    }
}

/// Decodes one record from the front of `buf`.
fn decode_record(buf: &mut Bytes) -> DecodeResult<Record> {
    let len = get_varint(buf)?;
    if len < 0 {
        return Err(DecodeError::InvalidLength(len as i64));
    }
    let mut body = take(buf, len as usize)?;
    let _attributes = get_i8(&mut body)?; // unused in v2
    let timestamp_delta = get_varlong(&mut body)?;
    let offset_delta = get_varint(&mut body)?;
    let key = get_nullable(&mut body)?;
    let value = get_nullable(&mut body)?;
    let count = get_varint(&mut body)?;
    if count < 0 {
        return Err(DecodeError::InvalidValue {
            field: "record header count",
            value: count as i64,
        });
    }
    // Each header takes at least 2 bytes (key length, value length).
    let mut headers = Vec::with_capacity(bounded_capacity(count as usize, body.len() / 2));
    for _ in 0..count {
        let key_len = get_varint(&mut body)?;
        if key_len < 0 {
            return Err(DecodeError::InvalidLength(key_len as i64));
        }
        let key = take(&mut body, key_len as usize)?;
        let key = std::str::from_utf8(&key)
            .map_err(|_| DecodeError::InvalidUtf8)?
            .to_owned();
        let value = get_nullable(&mut body)?;
        headers.push(RecordHeader { key, value });
    }
    if !body.is_empty() {
        return Err(DecodeError::TrailingBytes(body.len()));
    }
    Ok(Record {
        offset_delta,
        timestamp_delta,
        key,
        value,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Header, RecordBatchBuilder};

    fn build(codec: Compression, n: usize) -> Bytes {
        let mut b = RecordBatchBuilder::new(1_700_000_000_000, 0);
        for i in 0..n {
            let v = format!("value-{i}");
            let k = format!("key-{}", i % 3);
            b.append(
                1_700_000_000_000 + i as i64,
                if i % 4 == 0 { None } else { Some(k.as_bytes()) },
                Some(v.as_bytes()),
                &[Header {
                    key: "idx",
                    value: Some(&(i as u32).to_be_bytes()),
                }],
            );
        }
        b.seal(codec).unwrap().stamp(7, 1, 100, false)
    }

    /// Rewrites the CRC after tampering, so checks past the CRC are reached.
    fn fix_crc(b: &mut [u8]) {
        let crc = crc32c::crc32c(&b[layout::ATTRIBUTES..]);
        b[layout::CRC..layout::CRC + 4].copy_from_slice(&crc.to_be_bytes());
    }

    #[test]
    fn round_trip_every_codec() {
        // Every codec this build has (zstd only with the feature).
        for codec in Compression::ALL.into_iter().filter(|c| c.is_built()) {
            let wire = build(codec, 50);
            let mut buf = wire.clone();
            let batch = decode_batch(&mut buf, &DecodeOptions::default()).unwrap();
            assert!(buf.is_empty());
            assert_eq!(batch.compression, codec);
            assert_eq!(batch.record_count, 50);
            assert_eq!(batch.last_offset_delta, 49);
            assert_eq!(
                (batch.producer_id, batch.producer_epoch, batch.base_sequence),
                (7, 1, 100)
            );
            assert_eq!(batch.raw(), &wire);
            let recs = batch.records(&DecodeOptions::default()).unwrap();
            assert_eq!(recs.len(), 50);
            for (i, r) in recs.iter().enumerate() {
                assert_eq!(r.offset_delta, i as i32);
                assert_eq!(batch.offset_of(r), i as i64);
                assert_eq!(batch.timestamp_of(r), 1_700_000_000_000 + i as i64);
                assert_eq!(r.value.as_deref(), Some(format!("value-{i}").as_bytes()));
                if i % 4 == 0 {
                    assert_eq!(r.key, None);
                } else {
                    assert_eq!(r.key.as_deref(), Some(format!("key-{}", i % 3).as_bytes()));
                }
                assert_eq!(r.headers.len(), 1);
                assert_eq!(r.headers[0].key, "idx");
                assert_eq!(
                    r.headers[0].value.as_deref(),
                    Some(&(i as u32).to_be_bytes()[..])
                );
            }
        }
    }

    #[test]
    fn uncompressed_values_are_zero_copy() {
        let wire = build(Compression::None, 3);
        let batch = decode_batch(&mut wire.clone(), &DecodeOptions::default()).unwrap();
        let recs = batch.records(&DecodeOptions::default()).unwrap();
        let v = recs[0].value.as_ref().unwrap();
        let start = wire.as_ptr() as usize;
        let p = v.as_ptr() as usize;
        assert!(p > start && p < start + wire.len());
    }

    #[test]
    fn several_batches_split_and_partial_tail() {
        let a = build(Compression::None, 2);
        let b = build(Compression::Lz4, 3);
        let mut all = a.to_vec();
        all.extend_from_slice(&b);
        let batches = decode_batches(Bytes::from(all.clone()), &DecodeOptions::default()).unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[1].record_count, 3);

        let cut = Bytes::from(all[..all.len() - 5].to_vec());
        assert!(matches!(
            decode_batches(cut.clone(), &DecodeOptions::default()),
            Err(DecodeError::UnexpectedEof { .. })
        ));
        let (got, skipped) = decode_fetched_batches(cut, &DecodeOptions::default()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(skipped, b.len() - 5);
        assert!(decode_batches(Bytes::new(), &DecodeOptions::default())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn corrupt_crc_is_detected_unless_disabled() {
        let mut raw = build(Compression::None, 3).to_vec();
        let last = raw.len() - 1;
        raw[last] ^= 0x01;
        let err =
            decode_batch(&mut Bytes::from(raw.clone()), &DecodeOptions::default()).unwrap_err();
        assert!(matches!(err, DecodeError::CrcMismatch { .. }), "{err}");
        let no_crc = DecodeOptions {
            verify_crc: false,
            ..Default::default()
        };
        assert!(decode_batch(&mut Bytes::from(raw), &no_crc).is_ok());
    }

    #[test]
    fn truncation_at_every_length_is_an_error() {
        let wire = build(Compression::None, 4);
        for n in 0..wire.len() {
            let mut cut = wire.slice(..n);
            let before = cut.clone();
            assert!(
                decode_batch(&mut cut, &DecodeOptions::default()).is_err(),
                "{n}"
            );
            assert_eq!(cut, before, "input must be untouched on error");
        }
    }

    #[test]
    fn bad_magic_length_codec_and_count() {
        let wire = build(Compression::None, 2).to_vec();
        let opts = DecodeOptions::default();

        let mut bad = wire.clone();
        bad[layout::MAGIC] = 1;
        assert_eq!(
            decode_batch(&mut Bytes::from(bad), &opts).unwrap_err(),
            DecodeError::InvalidValue {
                field: "record batch magic",
                value: 1
            }
        );

        let mut bad = wire.clone();
        bad[layout::BATCH_LENGTH..layout::BATCH_LENGTH + 4].copy_from_slice(&10i32.to_be_bytes());
        assert!(matches!(
            decode_batch(&mut Bytes::from(bad), &opts),
            Err(DecodeError::InvalidValue {
                field: "record batch length",
                ..
            })
        ));

        let mut bad = wire.clone();
        bad[layout::BATCH_LENGTH..layout::BATCH_LENGTH + 4]
            .copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            decode_batch(&mut Bytes::from(bad), &opts),
            Err(DecodeError::UnexpectedEof { .. })
        ));

        let mut bad = wire.clone();
        bad[layout::ATTRIBUTES + 1] |= 0x07; // codec 7
        fix_crc(&mut bad);
        assert!(matches!(
            decode_batch(&mut Bytes::from(bad), &opts),
            Err(DecodeError::InvalidValue {
                field: "compression codec",
                ..
            })
        ));

        for (count, want_eof) in [(3i32, true), (1, false)] {
            let mut bad = wire.clone();
            bad[layout::RECORD_COUNT..layout::RECORD_COUNT + 4]
                .copy_from_slice(&count.to_be_bytes());
            fix_crc(&mut bad);
            let batch = decode_batch(&mut Bytes::from(bad), &opts).unwrap();
            let err = batch.records(&opts).unwrap_err();
            if want_eof {
                assert!(matches!(err, DecodeError::UnexpectedEof { .. }), "{err}");
            } else {
                assert!(matches!(err, DecodeError::TrailingBytes(_)), "{err}");
            }
        }

        let mut bad = wire.clone();
        bad[layout::RECORD_COUNT..layout::RECORD_COUNT + 4].copy_from_slice(&(-5i32).to_be_bytes());
        fix_crc(&mut bad);
        assert!(decode_batch(&mut Bytes::from(bad), &opts).is_err());
    }

    #[test]
    fn bad_record_lengths_are_errors() {
        let opts = DecodeOptions::default();
        let mut b = RecordBatchBuilder::new(0, 0);
        b.append(0, Some(b"k"), Some(b"v"), &[]);
        let wire = b
            .seal(Compression::None)
            .unwrap()
            .stamp(-1, -1, -1, false)
            .to_vec();
        // Record: [len=8 → 0x10] [attr] [ts] [off] [klen 1 → 0x02] k [vlen → 0x02] v [hdrs 0]
        assert_eq!(wire[HEADER_LEN], 0x10);
        let eof = |needed, remaining| DecodeError::UnexpectedEof { needed, remaining };
        let cases = [
            // record length 9: longer than the section
            (HEADER_LEN, 0x12, eof(9, 8)),
            // record length 7: header count cut off
            (HEADER_LEN, 0x0e, eof(1, 0)),
            // record length -2
            (HEADER_LEN, 0x03, DecodeError::InvalidLength(-2)),
            // record length 0: not even its attributes
            (HEADER_LEN, 0x00, eof(1, 0)),
            // key length 63: beyond the record
            (HEADER_LEN + 4, 0x7e, eof(63, 4)),
            // key length -2 (only -1 means null)
            (HEADER_LEN + 4, 0x03, DecodeError::InvalidLength(-2)),
            // value length -3
            (HEADER_LEN + 6, 0x05, DecodeError::InvalidLength(-3)),
            // header count -64
            (
                HEADER_LEN + 8,
                0x7f,
                DecodeError::InvalidValue {
                    field: "record header count",
                    value: -64,
                },
            ),
        ];
        for (at, byte, want) in cases {
            let mut bad = wire.clone();
            bad[at] = byte;
            fix_crc(&mut bad);
            let batch = decode_batch(&mut Bytes::from(bad), &opts).unwrap();
            assert_eq!(
                batch.records(&opts).unwrap_err(),
                want,
                "byte {byte:#x} at {at}"
            );
        }
        // A huge header count must fail without allocating for it.
        let mut bad = wire.clone();
        bad.truncate(wire.len() - 1);
        bad.extend_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0x07]); // i32::MAX headers
        let len = (bad.len() - LOG_OVERHEAD) as i32;
        bad[layout::BATCH_LENGTH..layout::BATCH_LENGTH + 4].copy_from_slice(&len.to_be_bytes());
        bad[HEADER_LEN] = 0x18; // record length 12
        fix_crc(&mut bad);
        let batch = decode_batch(&mut Bytes::from(bad), &opts).unwrap();
        assert!(matches!(
            batch.records(&opts),
            Err(DecodeError::UnexpectedEof { .. })
        ));
    }

    #[test]
    fn a_batch_with_no_records_decodes() {
        // A header with nothing after it: what compaction leaves of a batch
        // whose records were all removed (Kafka keeps it for the producer
        // state). Its length is the smallest valid one.
        let wire = build(Compression::None, 0);
        assert_eq!(wire.len(), HEADER_LEN);
        let mut buf = wire.clone();
        let batch = decode_batch(&mut buf, &DecodeOptions::default()).unwrap();
        assert!(buf.is_empty());
        assert_eq!(batch.record_count, 0);
        assert_eq!(batch.header().batch_length, layout::MIN_BATCH_LENGTH);
        assert!(batch.records(&DecodeOptions::default()).unwrap().is_empty());
    }

    #[test]
    fn header_gives_back_the_fields_read() {
        for n in [1, 7] {
            let wire = build(Compression::Lz4, n);
            let batch = decode_batch(&mut wire.clone(), &DecodeOptions::default()).unwrap();
            assert_eq!(batch.header(), layout::peek_batch_header(&wire).unwrap());
            assert_eq!(
                batch.header().batch_length as usize,
                wire.len() - LOG_OVERHEAD
            );
        }
    }

    #[test]
    fn each_attribute_bit_is_read_alone() {
        // The second record's own timestamp is base + 1 = max: move max so
        // that LogAppendTime (every record at max) can be told apart.
        let mut wire = build(Compression::None, 2).to_vec();
        let max = 1_800_000_000_000i64;
        wire[layout::MAX_TIMESTAMP..layout::MAX_TIMESTAMP + 8].copy_from_slice(&max.to_be_bytes());
        let read = |bits: i16| {
            let mut raw = wire.clone();
            raw[layout::ATTRIBUTES..layout::ATTRIBUTES + 2].copy_from_slice(&bits.to_be_bytes());
            fix_crc(&mut raw);
            let batch = decode_batch(&mut Bytes::from(raw), &DecodeOptions::default()).unwrap();
            let record = batch.records(&DecodeOptions::default()).unwrap().remove(1);
            (
                batch.is_transactional(),
                batch.is_control(),
                batch.is_log_append_time(),
                batch.timestamp_of(&record) == batch.max_timestamp,
            )
        };
        assert_eq!(read(0), (false, false, false, false));
        assert_eq!(
            read(layout::ATTR_TRANSACTIONAL),
            (true, false, false, false)
        );
        assert_eq!(read(layout::ATTR_CONTROL), (false, true, false, false));
        assert_eq!(
            read(layout::ATTR_LOG_APPEND_TIME),
            (false, false, true, true)
        );
        // The other bits (codec none, delete horizon) set too.
        assert_eq!(
            read(!(layout::ATTR_TRANSACTIONAL | layout::ATTR_COMPRESSION_MASK)),
            (false, true, true, true)
        );
    }

    #[test]
    fn header_keys_may_be_empty_but_not_negative() {
        let opts = DecodeOptions::default();
        let mut b = RecordBatchBuilder::new(0, 0);
        b.append(
            0,
            None,
            Some(b"v"),
            &[Header {
                key: "",
                value: None,
            }],
        );
        let wire = b
            .seal(Compression::None)
            .unwrap()
            .stamp(-1, -1, -1, false)
            .to_vec();
        let batch = decode_batch(&mut Bytes::from(wire.clone()), &opts).unwrap();
        let headers = &batch.records(&opts).unwrap()[0].headers;
        assert_eq!(
            headers,
            &[RecordHeader {
                key: String::new(),
                value: None
            }]
        );
        // [len] [attr] [ts] [off] [key null 0x01] [vlen 0x02] v [count 0x02]
        // [header key length] [header value length]
        let at = HEADER_LEN + 8;
        assert_eq!(wire[at], 0x00);
        let mut bad = wire;
        bad[at] = 0x03; // -2
        fix_crc(&mut bad);
        let batch = decode_batch(&mut Bytes::from(bad), &opts).unwrap();
        assert_eq!(
            batch.records(&opts).unwrap_err(),
            DecodeError::InvalidLength(-2)
        );
    }

    /// Checks `size_hint` against what the iterator still yields, at every
    /// step: the lower bound never above it, the upper bound given and
    /// never below it.
    fn check_size_hints(mut iter: Records) -> usize {
        let mut yielded = 0;
        loop {
            let left = iter.clone().count();
            let (lo, hi) = iter.size_hint();
            assert!(lo <= left, "lower bound {lo} above {left}");
            let hi = hi.expect("a batch's records are bounded");
            assert!(hi >= left, "upper bound {hi} below {left}");
            if iter.next().is_none() {
                assert_eq!(iter.size_hint(), (0, Some(0)));
                return yielded;
            }
            yielded += 1;
        }
    }

    #[test]
    fn size_hint_bounds_what_is_left_even_with_an_error_at_the_end() {
        let opts = DecodeOptions::default();
        let wire = build(Compression::None, 3).to_vec();
        let batch = decode_batch(&mut Bytes::from(wire.clone()), &opts).unwrap();
        assert_eq!(check_size_hints(batch.iter_records(&opts).unwrap()), 3);
        // Declares 2 of its 3 records: two records, then the trailing
        // bytes' error, one more item than the count.
        let mut fewer = wire;
        fewer[layout::RECORD_COUNT..layout::RECORD_COUNT + 4].copy_from_slice(&2i32.to_be_bytes());
        fix_crc(&mut fewer);
        let batch = decode_batch(&mut Bytes::from(fewer), &opts).unwrap();
        assert_eq!(check_size_hints(batch.iter_records(&opts).unwrap()), 3);
    }

    #[test]
    fn decompression_bomb_is_bounded() {
        let big = vec![0u8; 256 * 1024];
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ]
        .into_iter()
        .filter(|c| c.is_built())
        {
            let mut b = RecordBatchBuilder::new(0, 0);
            for _ in 0..8 {
                b.append(0, None, Some(&big), &[]);
            }
            let wire = b.seal(codec).unwrap().stamp(-1, -1, -1, false);
            assert!(wire.len() < 200 * 1024, "{codec} {}", wire.len());
            let opts = DecodeOptions {
                verify_crc: true,
                max_decompressed_size: 1 << 20,
            };
            let batch = decode_batch(&mut wire.clone(), &opts).unwrap();
            assert_eq!(
                batch.records(&opts).unwrap_err(),
                DecodeError::DecompressedTooLarge { limit: 1 << 20 },
                "{codec}"
            );
            assert_eq!(batch.records(&DecodeOptions::default()).unwrap().len(), 8);
        }
    }
}
