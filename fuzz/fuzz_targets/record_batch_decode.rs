//! Fuzz the record batch decoder and the decompressors.
//!
//! Input: one flag byte, then bytes treated as a `records` field (one or
//! more batches). Properties:
//! - nothing panics: header peek, strict and lenient batch splitting,
//!   record iteration, and every decompressor with a small output bound;
//! - decompressed output never exceeds the bound;
//! - when an uncompressed batch decodes, re-encoding its records with
//!   `RecordBatchBuilder` and decoding again gives equal records and header
//!   fields (offset deltas are equal when the input's were 0, 1, 2, ...).
#![no_main]

use bytes::Bytes;
use kring_protocol::compression::{decompress, Compression};
use kring_protocol::record::{
    decode_batch, decode_batches, decode_fetched_batches, peek_batch_header, DecodeOptions, Header,
    Record, RecordBatch, RecordBatchBuilder,
};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    // Mostly skip the CRC so the fuzzer reaches the record decoder; the
    // CRC path itself is a single comparison.
    let opts = DecodeOptions {
        verify_crc: flags & 1 != 0,
        max_decompressed_size: LIMIT,
    };
    let input = Bytes::copy_from_slice(rest);

    let _ = peek_batch_header(rest);
    let _ = decode_fetched_batches(input.clone(), &opts);
    if let Ok(batches) = decode_batches(input.clone(), &opts) {
        for batch in &batches {
            check_batch(batch, &opts);
        }
    }
    let mut one = input.clone();
    if let Ok(batch) = decode_batch(&mut one, &opts) {
        check_batch(&batch, &opts);
    }

    // The codecs on raw input, with the bound.
    if flags & 2 != 0 {
        for codec in Compression::ALL {
            if let Ok(out) = decompress(codec, rest, 64 * 1024) {
                assert!(out.len() <= 64 * 1024, "{codec} exceeded its bound");
            }
        }
    }
});

fn check_batch(batch: &RecordBatch, opts: &DecodeOptions) {
    // Iterating must end: at most record_count records plus one error.
    if let Ok(iter) = batch.iter_records(opts) {
        let mut n = 0usize;
        for r in iter {
            n += 1;
            assert!(n <= batch.record_count as usize + 1);
            if r.is_err() {
                break;
            }
        }
    }
    let Ok(records) = batch.records(opts) else {
        return;
    };
    assert_eq!(records.len(), batch.record_count as usize);
    if batch.compression != Compression::None {
        return;
    }
    reencode_and_compare(batch, &records, opts);
}

fn reencode_and_compare(batch: &RecordBatch, records: &[Record], opts: &DecodeOptions) {
    let mut b = RecordBatchBuilder::new(batch.base_timestamp, batch.raw().len());
    for (i, r) in records.iter().enumerate() {
        let headers: Vec<Header<'_>> = r
            .headers
            .iter()
            .map(|h| Header {
                key: &h.key,
                value: h.value.as_deref(),
            })
            .collect();
        let ts = batch.base_timestamp.wrapping_add(r.timestamp_delta);
        let want = b.record_size(ts, r.key.as_deref(), r.value.as_deref(), &headers);
        let before = b.size_in_bytes();
        assert_eq!(
            b.append(ts, r.key.as_deref(), r.value.as_deref(), &headers),
            i as u32
        );
        assert_eq!(b.size_in_bytes() - before, want);
    }
    let wire = b
        .seal(Compression::None)
        .expect("uncompressed seal cannot fail")
        .stamp(
            batch.producer_id,
            batch.producer_epoch,
            batch.base_sequence,
            batch.is_transactional(),
        );
    let strict = DecodeOptions {
        verify_crc: true,
        ..*opts
    };
    let mut buf = wire.clone();
    let again = decode_batch(&mut buf, &strict).expect("re-encoded batch decodes");
    assert!(buf.is_empty());
    assert_eq!(again.record_count, batch.record_count);
    assert_eq!(again.base_timestamp, batch.base_timestamp);
    assert_eq!(again.producer_id, batch.producer_id);
    assert_eq!(again.producer_epoch, batch.producer_epoch);
    assert_eq!(again.base_sequence, batch.base_sequence);
    assert_eq!(again.is_transactional(), batch.is_transactional());
    let back = again.records(&strict).expect("re-encoded records decode");
    assert_eq!(back.len(), records.len());
    let sequential = records
        .iter()
        .enumerate()
        .all(|(i, r)| r.offset_delta == i as i32);
    for (i, (a, b)) in records.iter().zip(&back).enumerate() {
        assert_eq!(b.offset_delta, i as i32);
        if sequential {
            assert_eq!(a.offset_delta, b.offset_delta);
        }
        assert_eq!(a.timestamp_delta, b.timestamp_delta);
        assert_eq!(a.key, b.key);
        assert_eq!(a.value, b.value);
        assert_eq!(a.headers, b.headers);
    }
    if !records.is_empty() {
        let max = records
            .iter()
            .map(|r| batch.base_timestamp.wrapping_add(r.timestamp_delta))
            .max()
            .unwrap();
        assert_eq!(again.max_timestamp, max);
    }
}
