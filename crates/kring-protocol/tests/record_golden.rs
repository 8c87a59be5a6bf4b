//! Golden bytes: a record batch v2 with two records and headers, written
//! out by hand from the Kafka spec, field by field. The builder must produce
//! exactly these bytes and the decoder must read them back.
//!
//! The CRC was computed independently: with python's `crc32c` package
//! (`crc32c.crc32c(batch[21:])` → 0x5acba6d8) and, in this test, with a
//! bitwise reference CRC32C that shares no code with the `crc32c` crate.

use bytes::Bytes;
use kring_protocol::record::{
    decode_batch, peek_batch_header, restamp, Compression, DecodeOptions, Header,
    RecordBatchBuilder,
};

const BASE_TS: i64 = 1_700_000_000_000; // 0x0000_018b_cfe5_6800

#[rustfmt::skip]
const GOLDEN: [u8; 102] = [
    // ---- batch header (61 bytes) ----
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // baseOffset: 0
    0x00, 0x00, 0x00, 0x5a,                         // batchLength: 90 = 102 - 12
    0xff, 0xff, 0xff, 0xff,                         // partitionLeaderEpoch: -1
    0x02,                                           // magic: 2
    0x5a, 0xcb, 0xa6, 0xd8,                         // crc: CRC32C(bytes 21..102)
    0x00, 0x00,                                     // attributes: no codec, CreateTime, not transactional
    0x00, 0x00, 0x00, 0x01,                         // lastOffsetDelta: 1
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // baseTimestamp: 1_700_000_000_000
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x05, // maxTimestamp: base + 5
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0xd2, // producerId: 1234
    0x00, 0x05,                                     // producerEpoch: 5
    0x00, 0x00, 0x00, 0x2a,                         // baseSequence: 42
    0x00, 0x00, 0x00, 0x02,                         // records count: 2
    // ---- record 0 (20 bytes) ----
    0x26,                                           // length: 19 (zig-zag varint 38)
    0x00,                                           // attributes
    0x0a,                                           // timestampDelta: 5 (varlong 10)
    0x00,                                           // offsetDelta: 0
    0x04, b'k', b'1',                               // key: length 2, "k1"
    0x0a, b'h', b'e', b'l', b'l', b'o',             // value: length 5, "hello"
    0x02,                                           // headers: 1
    0x04, b'h', b'1',                               //   key: length 2, "h1"
    0x04, b'v', b'1',                               //   value: length 2, "v1"
    // ---- record 1 (21 bytes) ----
    0x28,                                           // length: 20 (varint 40)
    0x00,                                           // attributes
    0x00,                                           // timestampDelta: 0
    0x02,                                           // offsetDelta: 1
    0x01,                                           // key: null (length -1)
    0x0c, b'w', b'o', b'r', b'l', b'd', b'!',       // value: length 6, "world!"
    0x04,                                           // headers: 2
    0x02, b'a',                                     //   key: length 1, "a"
    0x01,                                           //   value: null
    0x04, b'b', b'b',                               //   key: length 2, "bb"
    0x02, b'x',                                     //   value: length 1, "x"
];

/// Bitwise CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
/// textbook way: slow, obviously right, independent of the crc32c crate.
fn reference_crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn build() -> Bytes {
    let mut b = RecordBatchBuilder::new(BASE_TS, 256);
    assert_eq!(
        b.append(
            BASE_TS + 5,
            Some(b"k1"),
            Some(b"hello"),
            &[Header {
                key: "h1",
                value: Some(b"v1"),
            }],
        ),
        0
    );
    assert_eq!(
        b.append(
            BASE_TS,
            None,
            Some(b"world!"),
            &[
                Header {
                    key: "a",
                    value: None,
                },
                Header {
                    key: "bb",
                    value: Some(b"x"),
                },
            ],
        ),
        1
    );
    assert_eq!(b.size_in_bytes(), GOLDEN.len());
    b.seal(Compression::None).unwrap().stamp(1234, 5, 42, false)
}

#[test]
fn reference_crc_matches_known_vectors() {
    // The standard check value for CRC-32C and the RFC 3720 vector.
    assert_eq!(reference_crc32c(b"123456789"), 0xe306_9283);
    assert_eq!(reference_crc32c(&[0u8; 32]), 0x8a91_36aa);
}

#[test]
fn golden_crc_is_independently_computed() {
    let crc = reference_crc32c(&GOLDEN[21..]);
    assert_eq!(crc, 0x5acb_a6d8);
    assert_eq!(crc.to_be_bytes(), GOLDEN[17..21]);
}

#[test]
fn builder_writes_the_golden_bytes() {
    let wire = build();
    assert_eq!(&wire[..], &GOLDEN[..]);
}

#[test]
fn decoder_reads_the_golden_bytes() {
    let mut buf = Bytes::from_static(&GOLDEN);
    let opts = DecodeOptions::default();
    let batch = decode_batch(&mut buf, &opts).unwrap();
    assert!(buf.is_empty());
    assert_eq!(batch.base_offset, 0);
    assert_eq!(batch.partition_leader_epoch, -1);
    assert_eq!(batch.attributes, 0);
    assert_eq!(batch.last_offset_delta, 1);
    assert_eq!(batch.base_timestamp, BASE_TS);
    assert_eq!(batch.max_timestamp, BASE_TS + 5);
    assert_eq!(batch.producer_id, 1234);
    assert_eq!(batch.producer_epoch, 5);
    assert_eq!(batch.base_sequence, 42);
    assert_eq!(batch.record_count, 2);
    assert_eq!(batch.compression, Compression::None);
    assert_eq!(batch.crc, 0x5acb_a6d8);

    let recs = batch.records(&opts).unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].offset_delta, 0);
    assert_eq!(recs[0].timestamp_delta, 5);
    assert_eq!(recs[0].key.as_deref(), Some(&b"k1"[..]));
    assert_eq!(recs[0].value.as_deref(), Some(&b"hello"[..]));
    assert_eq!(recs[0].headers.len(), 1);
    assert_eq!(recs[0].headers[0].key, "h1");
    assert_eq!(recs[0].headers[0].value.as_deref(), Some(&b"v1"[..]));

    assert_eq!(recs[1].offset_delta, 1);
    assert_eq!(recs[1].timestamp_delta, 0);
    assert_eq!(recs[1].key, None);
    assert_eq!(recs[1].value.as_deref(), Some(&b"world!"[..]));
    assert_eq!(recs[1].headers.len(), 2);
    assert_eq!(recs[1].headers[0].key, "a");
    assert_eq!(recs[1].headers[0].value, None);
    assert_eq!(recs[1].headers[1].key, "bb");
    assert_eq!(recs[1].headers[1].value.as_deref(), Some(&b"x"[..]));

    let h = peek_batch_header(&GOLDEN).unwrap();
    assert_eq!(h.total_len(), GOLDEN.len());
    assert_eq!(h.crc, 0x5acb_a6d8);
    assert_eq!(h.record_count, 2);
}

#[test]
fn restamp_of_golden_changes_only_producer_fields_and_crc() {
    let wire = restamp(&GOLDEN, 99, 6, 1000);
    let mut want = GOLDEN;
    want[43..51].copy_from_slice(&99i64.to_be_bytes());
    want[51..53].copy_from_slice(&6i16.to_be_bytes());
    want[53..57].copy_from_slice(&1000i32.to_be_bytes());
    let crc = reference_crc32c(&want[21..]);
    want[17..21].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(&wire[..], &want[..]);
}
