//! Record batches through the public API: build → seal → stamp → decode for
//! every codec and a spread of record shapes, and malformed input (CRC,
//! truncation, lengths, decompression bombs) rejected with typed errors.

use bytes::Bytes;
use kring_protocol::record::{
    decode_batch, decode_batches, Compression, DecodeOptions, Header, RecordBatchBuilder,
};
use kring_protocol::DecodeError;

/// A deterministic generator so the shapes vary without a rand dependency.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> usize {
        (self.next() % n) as usize
    }
}

struct Spec {
    ts: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

fn specs(seed: u64, n: usize) -> Vec<Spec> {
    let mut g = Lcg(seed);
    (0..n)
        .map(|i| {
            let mut bytes = |max: u64| {
                let len = g.below(max);
                (0..len).map(|j| (i * 31 + j) as u8).collect::<Vec<u8>>()
            };
            let key = (i % 5 != 0).then(|| bytes(40));
            let value = (i % 7 != 3).then(|| bytes(3000));
            let headers = (0..(i % 4))
                .map(|h| (format!("hdr-{h}"), (h % 2 == 0).then(|| bytes(20))))
                .collect();
            Spec {
                ts: 1_000_000 + (i as i64 * 37) % 1000 - 500,
                key,
                value,
                headers,
            }
        })
        .collect()
}

fn build(specs: &[Spec], codec: Compression, pid: i64, epoch: i16, seq: i32) -> Bytes {
    let mut b = RecordBatchBuilder::new(1_000_000, 1024);
    for (i, s) in specs.iter().enumerate() {
        let headers: Vec<Header<'_>> = s
            .headers
            .iter()
            .map(|(k, v)| Header {
                key: k,
                value: v.as_deref(),
            })
            .collect();
        let before = b.size_in_bytes();
        let want = b.record_size(s.ts, s.key.as_deref(), s.value.as_deref(), &headers);
        assert_eq!(
            b.append(s.ts, s.key.as_deref(), s.value.as_deref(), &headers),
            i as u32
        );
        assert_eq!(b.size_in_bytes() - before, want);
    }
    b.seal(codec).unwrap().stamp(pid, epoch, seq, false)
}

fn check(wire: &Bytes, specs: &[Spec], codec: Compression) {
    let opts = DecodeOptions::default();
    let mut buf = wire.clone();
    let batch = decode_batch(&mut buf, &opts).unwrap();
    assert!(buf.is_empty());
    assert_eq!(batch.compression, codec);
    assert_eq!(batch.record_count as usize, specs.len());
    assert_eq!(batch.last_offset_delta, specs.len() as i32 - 1);
    assert_eq!(
        batch.max_timestamp,
        specs.iter().map(|s| s.ts).max().unwrap()
    );
    let recs = batch.records(&opts).unwrap();
    assert_eq!(recs.len(), specs.len());
    for (i, (r, s)) in recs.iter().zip(specs).enumerate() {
        assert_eq!(r.offset_delta, i as i32);
        assert_eq!(batch.timestamp_of(r), s.ts);
        assert_eq!(r.key.as_deref(), s.key.as_deref(), "key {i}");
        assert_eq!(r.value.as_deref(), s.value.as_deref(), "value {i}");
        assert_eq!(r.headers.len(), s.headers.len());
        for (h, (k, v)) in r.headers.iter().zip(&s.headers) {
            assert_eq!(&h.key, k);
            assert_eq!(h.value.as_deref(), v.as_deref());
        }
    }
}

#[test]
fn every_codec_round_trips_varied_records() {
    for codec in Compression::ALL {
        for (seed, n) in [(1, 1), (2, 10), (3, 500)] {
            let specs = specs(seed, n);
            let wire = build(&specs, codec, 77, 3, 1_000);
            check(&wire, &specs, codec);
        }
    }
}

#[test]
fn concatenated_batches_of_mixed_codecs() {
    let mut all = Vec::new();
    let mut expected = Vec::new();
    for (i, codec) in Compression::ALL.into_iter().enumerate() {
        let s = specs(10 + i as u64, 20 + i);
        let wire = build(&s, codec, -1, -1, -1);
        all.extend_from_slice(&wire);
        expected.push((s, codec));
    }
    let batches = decode_batches(Bytes::from(all), &DecodeOptions::default()).unwrap();
    assert_eq!(batches.len(), expected.len());
    for (b, (s, codec)) in batches.iter().zip(&expected) {
        check(b.raw(), s, *codec);
        assert_eq!(
            (b.producer_id, b.producer_epoch, b.base_sequence),
            (-1, -1, -1)
        );
    }
}

#[test]
fn flipping_any_byte_after_the_crc_field_is_caught() {
    let s = specs(42, 5);
    for codec in Compression::ALL {
        let wire = build(&s, codec, 1, 1, 1);
        for at in 21..wire.len() {
            let mut bad = wire.to_vec();
            bad[at] ^= 0x40;
            let err = decode_batch(&mut Bytes::from(bad), &DecodeOptions::default()).unwrap_err();
            assert!(
                matches!(err, DecodeError::CrcMismatch { .. }),
                "{codec} byte {at}: {err}"
            );
        }
    }
}

#[test]
fn truncated_batches_are_errors_for_every_codec() {
    let s = specs(5, 8);
    for codec in Compression::ALL {
        let wire = build(&s, codec, 1, 1, 1);
        for n in 0..wire.len() {
            assert!(
                decode_batch(&mut wire.slice(..n), &DecodeOptions::default()).is_err(),
                "{codec} cut at {n}"
            );
        }
    }
}

#[test]
fn corrupt_compressed_payload_with_valid_crc_is_an_error() {
    let s = specs(6, 50);
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let wire = build(&s, codec, 1, 1, 1);
        let mut bad = wire.to_vec();
        // Scribble over the middle of the compressed data, then fix the CRC
        // so the decompressor (not the CRC check) has to notice.
        let mid = 61 + (bad.len() - 61) / 2;
        for b in &mut bad[mid..(mid + 8).min(wire.len())] {
            *b = !*b;
        }
        let crc = crc32c::crc32c(&bad[21..]);
        bad[17..21].copy_from_slice(&crc.to_be_bytes());
        let opts = DecodeOptions::default();
        let batch = decode_batch(&mut Bytes::from(bad), &opts).unwrap();
        // Either the codec detects it, or the records that come out fail
        // the record-level length checks, or (rarely) they decode to
        // different bytes — never a panic, never the original records.
        match batch.records(&opts) {
            Err(_) => {}
            Ok(recs) => {
                let same = recs.len() == s.len()
                    && recs
                        .iter()
                        .zip(&s)
                        .all(|(r, s)| r.value.as_deref() == s.value.as_deref());
                assert!(!same, "{codec}: corruption went unnoticed");
            }
        }
    }
}

#[test]
fn decompression_bomb_hits_the_bound() {
    let zeros = vec![0u8; 1 << 20];
    let opts = DecodeOptions {
        verify_crc: true,
        max_decompressed_size: 4 << 20,
    };
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mut b = RecordBatchBuilder::new(0, 0);
        for _ in 0..16 {
            b.append(0, None, Some(&zeros), &[]);
        }
        let wire = b.seal(codec).unwrap().stamp(-1, -1, -1, false);
        // 16 MiB of records in a small batch.
        assert!(wire.len() < 1 << 20, "{codec}: {}", wire.len());
        let batch = decode_batch(&mut wire.clone(), &opts).unwrap();
        assert_eq!(
            batch.records(&opts).unwrap_err(),
            DecodeError::DecompressedTooLarge { limit: 4 << 20 },
            "{codec}"
        );
    }
}
