//! Fuzz the record batch builder (`RecordBatchBuilder`) against the crate's
//! own CRC-checking decoder.
//!
//! Why: the builder is the producer's hot path and is tuned past the
//! obvious code: records are written in place with masked stores into a
//! stack prefix, a per-batch cached record `Shape`, 16-byte chunk copies
//! into scratch room past the batch, and buffers reused from earlier
//! batches whose old bytes are overwritten, not cleared. A mistake there
//! sends corrupt batches (or leaks an old batch's bytes) without any error
//! on the producer side, so every byte it writes is checked by decoding.
//!
//! Input, read with `Unstructured`: a base timestamp; a starting buffer
//! (fresh with a small or odd capacity, a reused `BytesMut` with garbage
//! bytes and spare capacity, or the previous round's stamped batch taken
//! back with `try_into_mut`, as the producer recycles buffers); then a
//! sequence of records: null or byte keys and values of varied lengths
//! (0, and around the varint boundaries 63/64, 8191/8192, 16383/16384),
//! with or without headers (null and non-null values), timestamps near the
//! base, far before and after it and at the `i64` extremes, the previous
//! record's shape repeated or a new one; each appended with `append` or
//! with `try_append` under a limit at, just around, or far from the exact
//! fit. The batch is built once per codec (none, gzip, snappy, lz4, zstd
//! where built), sealed with it and stamped with fuzzer-chosen producer
//! fields.
//!
//! Properties:
//! - nothing panics;
//! - `record_size` is exactly what an append adds; `try_append` refuses
//!   exactly when the batch would exceed its limit, answers the record's
//!   size, and then changes nothing; with a limit within the capacity an
//!   append does not move the buffer;
//! - the stamped batch decodes with `decode_batch` (CRC verified) into
//!   exactly the records accepted (offset deltas 0, 1, 2, ..., keys,
//!   values, headers, timestamps) and the header the builder was given
//!   (codec, record count, last offset delta, base and max timestamp,
//!   producer id, epoch, base sequence, transactional flag, base offset 0,
//!   leader epoch -1, CreateTime).
#![no_main]

use bytes::{Bytes, BytesMut};
use kring_protocol::compression::Compression;
use kring_protocol::record::{decode_batch, DecodeOptions, Header, RecordBatchBuilder};
use libfuzzer_sys::arbitrary::{Result as ArbResult, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Lengths where a record's varints change size, and their neighbours.
const LENGTHS: [usize; 14] = [
    0, 1, 62, 63, 64, 65, 127, 128, 8190, 8191, 8192, 8193, 16383, 16384,
];

/// At most this many records per batch (keeps an execution fast).
const MAX_RECORDS: usize = 64;

#[derive(Debug, Clone)]
struct Rec {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    /// `None`: `append`; `Some`: `try_append` with this limit rule.
    limit: Option<Limit>,
}

#[derive(Debug, Clone, Copy)]
enum Limit {
    /// The exact fit plus this many bytes (negative: short of it).
    Fit(i16),
    /// A fixed number.
    Abs(usize),
}

#[derive(Debug, Clone)]
enum Start {
    /// `RecordBatchBuilder::new` with this capacity.
    Fresh(usize),
    /// `in_buffer` with a buffer of this capacity holding these old bytes.
    Garbage(usize, Vec<u8>),
    /// `in_buffer` with the previous round's stamped batch, taken back.
    Recycled,
}

fn bytes_of_len(u: &mut Unstructured<'_>, len: usize) -> ArbResult<Vec<u8>> {
    // A pattern from one fuzzer byte: content matters to the codecs, not
    // to the encoding; lengths are what the fuzzer explores.
    let seed: u8 = u.arbitrary()?;
    let step: u8 = u.arbitrary()?;
    Ok((0..len)
        .map(|i| seed.wrapping_add(step.wrapping_mul(i as u8)))
        .collect())
}

fn length(u: &mut Unstructured<'_>) -> ArbResult<usize> {
    Ok(match u.int_in_range(0u8..=3)? {
        0 => *u.choose(&LENGTHS)?,
        1 => usize::from(u.int_in_range(0u8..=20)?),
        2 => usize::from(u.arbitrary::<u8>()?),
        _ => usize::from(u.int_in_range(0u16..=20_000)?),
    })
}

fn nullable(u: &mut Unstructured<'_>) -> ArbResult<Option<Vec<u8>>> {
    if u.ratio(1u8, 4)? {
        return Ok(None);
    }
    let len = length(u)?;
    Ok(Some(bytes_of_len(u, len)?))
}

fn timestamp(u: &mut Unstructured<'_>, base: i64, prev: i64) -> ArbResult<i64> {
    Ok(match u.int_in_range(0u8..=6)? {
        0 => prev,
        1 => base.wrapping_add(i64::from(u.arbitrary::<i16>()?)),
        2 => base.wrapping_add(i64::from(u.arbitrary::<i32>()?)),
        3 => *u.choose(&[i64::MIN, i64::MAX, 0, -1, i64::MIN + 1, i64::MAX - 1])?,
        4 => base.wrapping_sub(1 << u.int_in_range(30u32..=62)?),
        5 => base.wrapping_add(1 << u.int_in_range(30u32..=62)?),
        _ => u.arbitrary()?,
    })
}

fn record(u: &mut Unstructured<'_>, base: i64, prev: Option<&Rec>) -> ArbResult<Rec> {
    let prev_ts = prev.map_or(base, |p| p.timestamp);
    let timestamp = timestamp(u, base, prev_ts)?;
    let (key, value) = match prev {
        // The same shape again (same lengths, maybe other bytes).
        Some(p) if u.ratio(1u8, 2)? => {
            let key = match &p.key {
                Some(k) => Some(bytes_of_len(u, k.len())?),
                None => None,
            };
            let value = match &p.value {
                Some(v) => Some(bytes_of_len(u, v.len())?),
                None => None,
            };
            (key, value)
        }
        _ => (nullable(u)?, nullable(u)?),
    };
    let mut headers = Vec::new();
    if u.ratio(1u8, 4)? {
        let n = u.int_in_range(0u8..=4)?;
        for _ in 0..n {
            let key = if u.ratio(1u8, 8)? {
                "k".repeat(*u.choose(&[63usize, 64, 200])?)
            } else {
                u.arbitrary::<&str>()?.to_owned()
            };
            headers.push((key, nullable(u)?));
        }
    }
    let limit = match u.int_in_range(0u8..=3)? {
        0 | 1 => None,
        2 => Some(Limit::Fit(i16::from(u.int_in_range(-3i8..=3)?))),
        _ => Some(if u.arbitrary()? {
            Limit::Fit(u.arbitrary()?)
        } else {
            Limit::Abs(u.arbitrary::<u32>()? as usize)
        }),
    };
    Ok(Rec {
        timestamp,
        key,
        value,
        headers,
        limit,
    })
}

struct Input {
    base: i64,
    starts: Vec<Start>,
    records: Vec<Rec>,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
}

fn input(u: &mut Unstructured<'_>) -> ArbResult<Input> {
    let base = match u.int_in_range(0u8..=3)? {
        0 => 1_700_000_000_000,
        1 => *u.choose(&[0, -1, i64::MIN, i64::MAX])?,
        _ => u.arbitrary()?,
    };
    // One start per codec round (the first cannot be `Recycled`).
    let mut starts = Vec::new();
    for round in 0..Compression::ALL.len() {
        starts.push(match u.int_in_range(0u8..=2)? {
            2 if round > 0 => Start::Recycled,
            0 | 2 => Start::Fresh(if u.arbitrary()? {
                usize::from(u.int_in_range(0u8..=100)?)
            } else {
                usize::from(u.arbitrary::<u16>()?)
            }),
            _ => {
                let cap = usize::from(u.int_in_range(0u16..=4096)?);
                let len = u.int_in_range(0..=cap)?;
                let fill: u8 = u.arbitrary()?;
                Start::Garbage(cap, vec![fill; len])
            }
        });
    }
    let mut records: Vec<Rec> = Vec::new();
    while records.len() < MAX_RECORDS && !u.is_empty() && u.ratio(7u8, 8)? {
        let r = record(u, base, records.last())?;
        records.push(r);
    }
    Ok(Input {
        base,
        starts,
        records,
        producer_id: u.arbitrary()?,
        producer_epoch: u.arbitrary()?,
        base_sequence: u.arbitrary()?,
        transactional: u.arbitrary()?,
    })
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(input) = input(&mut u) else {
        return;
    };
    let mut previous: Option<Bytes> = None;
    for (round, codec) in Compression::ALL.into_iter().enumerate() {
        if !codec.is_built() {
            continue;
        }
        let builder = match &input.starts[round] {
            Start::Fresh(cap) => RecordBatchBuilder::new(input.base, *cap),
            Start::Garbage(cap, old) => {
                let mut buf = BytesMut::with_capacity(*cap);
                buf.extend_from_slice(old);
                RecordBatchBuilder::in_buffer(input.base, buf)
            }
            Start::Recycled => {
                let buf = match previous.take().map(Bytes::try_into_mut) {
                    Some(Ok(buf)) => buf,
                    // A compressed batch is a buffer of its own and may
                    // not come back; start fresh then.
                    _ => BytesMut::new(),
                };
                RecordBatchBuilder::in_buffer(input.base, buf)
            }
        };
        previous = Some(build_and_check(&input, builder, codec));
    }
});

/// Appends `input`'s records, checking the size accounting, then seals with
/// `codec`, stamps, decodes and compares. Returns the stamped batch.
fn build_and_check(input: &Input, mut b: RecordBatchBuilder, codec: Compression) -> Bytes {
    assert!(b.is_empty());
    assert_eq!(b.size_in_bytes(), 61);
    assert_eq!(b.base_timestamp(), input.base);
    assert_eq!(b.max_timestamp(), input.base);
    let mut accepted: Vec<&Rec> = Vec::new();
    for r in &input.records {
        let headers: Vec<Header<'_>> = r
            .headers
            .iter()
            .map(|(k, v)| Header {
                key: k,
                value: v.as_deref(),
            })
            .collect();
        let (key, value) = (r.key.as_deref(), r.value.as_deref());
        let size = b.record_size(r.timestamp, key, value, &headers);
        let before = b.size_in_bytes();
        let count = b.record_count();
        let start = b.tail_address() - before;
        let cap = b.capacity();
        let index = match r.limit {
            None => b.append(r.timestamp, key, value, &headers),
            Some(rule) => {
                let limit = match rule {
                    Limit::Fit(d) => (before + size).saturating_add_signed(isize::from(d)),
                    Limit::Abs(n) => n,
                };
                match b.try_append(r.timestamp, key, value, &headers, limit) {
                    Ok(index) => {
                        assert!(before + size <= limit, "accepted over the limit");
                        if limit <= cap {
                            assert_eq!(
                                b.tail_address() - b.size_in_bytes(),
                                start,
                                "an append within the capacity moved the buffer"
                            );
                        }
                        index
                    }
                    Err(wanted) => {
                        assert_eq!(wanted, size, "refusal's size");
                        assert!(before + size > limit, "refused within the limit");
                        assert_eq!(b.size_in_bytes(), before, "a refusal changed the size");
                        assert_eq!(b.record_count(), count, "a refusal changed the count");
                        continue;
                    }
                }
            }
        };
        assert_eq!(index, count, "offset delta");
        assert_eq!(b.record_count(), count + 1);
        assert_eq!(b.size_in_bytes() - before, size, "record_size");
        accepted.push(r);
    }
    let max = accepted
        .iter()
        .map(|r| r.timestamp)
        .max()
        .unwrap_or(input.base);
    assert_eq!(b.max_timestamp(), max);
    assert_eq!(b.is_empty(), accepted.is_empty());

    let sealed = b.seal(codec).expect("seal");
    assert_eq!(sealed.record_count() as usize, accepted.len());
    let wire = sealed.stamp(
        input.producer_id,
        input.producer_epoch,
        input.base_sequence,
        input.transactional,
    );
    let opts = DecodeOptions {
        verify_crc: true,
        max_decompressed_size: 64 << 20,
    };
    let mut rest = wire.clone();
    let batch = match decode_batch(&mut rest, &opts) {
        Ok(batch) => batch,
        Err(e) => panic!("{codec} batch of {} records: {e}", accepted.len()),
    };
    assert!(rest.is_empty(), "bytes after the batch");
    assert_eq!(batch.compression, codec);
    assert_eq!(batch.base_offset, 0);
    assert_eq!(batch.partition_leader_epoch, -1);
    assert_eq!(batch.record_count as usize, accepted.len());
    assert_eq!(batch.last_offset_delta, accepted.len() as i32 - 1);
    assert_eq!(batch.base_timestamp, input.base);
    assert_eq!(batch.max_timestamp, max);
    assert_eq!(batch.producer_id, input.producer_id);
    assert_eq!(batch.producer_epoch, input.producer_epoch);
    assert_eq!(batch.base_sequence, input.base_sequence);
    assert_eq!(batch.is_transactional(), input.transactional);
    assert!(!batch.is_control());
    assert!(!batch.is_log_append_time());
    let records = batch.records(&opts).expect("records decode");
    assert_eq!(records.len(), accepted.len());
    for (i, (got, want)) in records.iter().zip(&accepted).enumerate() {
        assert_eq!(got.offset_delta, i as i32, "offset delta of {i}");
        assert_eq!(batch.timestamp_of(got), want.timestamp, "timestamp of {i}");
        assert_eq!(got.key.as_deref(), want.key.as_deref(), "key of {i}");
        assert_eq!(got.value.as_deref(), want.value.as_deref(), "value of {i}");
        assert_eq!(got.headers.len(), want.headers.len(), "headers of {i}");
        for (h, (k, v)) in got.headers.iter().zip(&want.headers) {
            assert_eq!(&h.key, k, "header key of {i}");
            assert_eq!(h.value.as_deref(), v.as_deref(), "header value of {i}");
        }
    }
    wire
}
