//! Round trip of every request and response: whatever decodes re-encodes
//! to a value that decodes equal, and to the very bytes consumed when those
//! bytes were in canonical form.
//!
//! Input: `[kind][key][version][body...]`; `kind` bit 0 picks request or
//! response, `key` one of the APIs kring speaks, `version` one of its
//! versions.
//!
//! Canonical form: the decoder accepts some encodings the encoder never
//! writes. Built with `--cfg fuzzing`, kring-protocol notes each of them as
//! it decodes (`primitives::canonical`):
//! - a varint with a zero last byte (non-minimal) or bits past 32/64;
//! - a boolean byte other than 0 and 1;
//! - a known tagged field holding its default value (Kafka, and kring, omit
//!   those; tansu writes them).
//!
//! Everything else is canonical by construction: tagged fields must be
//! strictly ascending and known ones must use all their bytes (else decode
//! fails), unknown tagged fields are kept verbatim, absent fields decode to
//! defaults and are not written. So: for canonical input `encode(decode(x))`
//! must equal the consumed bytes exactly; for non-canonical input it must be
//! no longer, decode to the same value, and be a fixed point.
#![no_main]

use bytes::{Bytes, BytesMut};
use kring_protocol::message::{ApiKey, Encodable, RequestKind, ResponseKind};
use kring_protocol::primitives::canonical;
use kring_protocol::DecodeError;
use libfuzzer_sys::fuzz_target;
use std::fmt::Debug;

fn check<T: Encodable + PartialEq + Debug>(
    input: &[u8],
    version: i16,
    decode: impl Fn(&mut Bytes) -> Result<T, DecodeError>,
) {
    canonical::take();
    let mut buf = Bytes::copy_from_slice(input);
    let Ok(value) = decode(&mut buf) else {
        return;
    };
    let non_canonical = canonical::take();
    let consumed = &input[..input.len() - buf.len()];

    let len = value
        .encoded_len(version)
        .unwrap_or_else(|e| panic!("decoded value does not encode: {e}\n{value:?}"));
    let mut out = BytesMut::with_capacity(len);
    value
        .encode(&mut out, version)
        .expect("encode after encoded_len succeeded");
    assert_eq!(out.len(), len, "encoded_len is not exact");
    let encoded = out.freeze();

    let mut again = encoded.clone();
    let value2 =
        decode(&mut again).unwrap_or_else(|e| panic!("re-encoded bytes do not decode: {e}"));
    assert!(again.is_empty(), "re-encoded bytes not fully consumed");
    assert!(!canonical::take(), "the encoder wrote a non-canonical form");
    assert_eq!(value2, value, "decode(encode(v)) != v");

    if non_canonical {
        assert!(
            encoded.len() <= consumed.len(),
            "canonical form is longer than the input"
        );
        let mut out2 = BytesMut::new();
        value2.encode(&mut out2, version).unwrap();
        assert_eq!(out2.freeze(), encoded, "encoding is not a fixed point");
    } else {
        assert_eq!(
            &encoded[..],
            consumed,
            "canonical input did not re-encode to itself"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let [kind, key, version, body @ ..] = data else {
        return;
    };
    let k = ApiKey::ALL[usize::from(*key) % ApiKey::ALL.len()];
    let span = (k.max_version() - k.min_version() + 1) as u8;
    let version = k.min_version() + i16::from(version % span);
    if kind & 1 == 0 {
        check(body, version, |b| RequestKind::decode(k.key(), version, b));
    } else {
        check(body, version, |b| ResponseKind::decode(k.key(), version, b));
    }
});
