//! Every generated message, request and response, at every valid version:
//! encode → `encoded_len` is exact → decode → equal → re-encode → identical
//! bytes. Samples carry a non-default value in every field present in the
//! version (nested structs and arrays included) and an unknown tagged field
//! in flexible versions; a second pass uses null for every nullable field.
//! Every strict prefix of every encoding must fail to decode, never panic.

use bytes::{Bytes, BytesMut};
use kring_protocol::message::{ApiKey, Decodable, Encodable, RequestKind, ResponseKind};
use kring_protocol::messages::{RequestHeader, ResponseHeader};

fn encode<E: Encodable>(value: &E, version: i16) -> Bytes {
    let len = value.encoded_len(version).expect("encoded_len");
    let mut buf = BytesMut::with_capacity(len);
    value.encode(&mut buf, version).expect("encode");
    assert_eq!(buf.len(), len, "encoded_len is not exact");
    buf.freeze()
}

/// Round-trips `value` and checks every strict prefix fails to decode.
fn check<T, D>(what: &str, value: &T, version: i16, decode: D)
where
    T: Encodable + PartialEq + std::fmt::Debug,
    D: Fn(&mut Bytes) -> Result<T, kring_protocol::DecodeError>,
{
    let bytes = encode(value, version);
    let mut cursor = bytes.clone();
    let decoded = decode(&mut cursor).unwrap_or_else(|e| panic!("{what} v{version}: {e}"));
    assert!(
        cursor.is_empty(),
        "{what} v{version}: {} bytes left",
        cursor.len()
    );
    assert_eq!(&decoded, value, "{what} v{version}");
    assert_eq!(
        encode(&decoded, version),
        bytes,
        "{what} v{version}: re-encode differs"
    );
    for cut in 0..bytes.len() {
        let mut prefix = bytes.slice(..cut);
        assert!(
            decode(&mut prefix).is_err(),
            "{what} v{version}: prefix of {cut}/{} bytes decoded",
            bytes.len()
        );
    }
}

#[test]
fn every_request_round_trips_at_every_version() {
    for key in ApiKey::ALL {
        for version in key.min_version()..=key.max_version() {
            for nulls in [false, true] {
                let req = if nulls {
                    RequestKind::sample_with_nulls(key, version)
                } else {
                    RequestKind::sample(key, version)
                };
                assert_eq!(req.api_key(), key);
                check(&format!("{}Request", key.name()), &req, version, |b| {
                    RequestKind::decode(key.key(), version, b)
                });
            }
        }
    }
}

#[test]
fn every_response_round_trips_at_every_version() {
    for key in ApiKey::ALL {
        for version in key.min_version()..=key.max_version() {
            for nulls in [false, true] {
                let resp = if nulls {
                    ResponseKind::sample_with_nulls(key, version)
                } else {
                    ResponseKind::sample(key, version)
                };
                check(&format!("{}Response", key.name()), &resp, version, |b| {
                    ResponseKind::decode(key.key(), version, b)
                });
            }
        }
    }
}

#[test]
fn headers_round_trip_at_every_version() {
    for version in 0..=2 {
        for h in [
            RequestHeader::sample(version),
            RequestHeader::sample_with_nulls(version),
        ] {
            check("RequestHeader", &h, version, |b| {
                RequestHeader::decode(b, version)
            });
        }
    }
    for version in 0..=1 {
        let h = ResponseHeader::sample(version);
        check("ResponseHeader", &h, version, |b| {
            ResponseHeader::decode(b, version)
        });
    }
}

#[test]
fn versions_outside_the_range_are_rejected() {
    for key in ApiKey::ALL {
        for version in [key.min_version() - 1, key.max_version() + 1] {
            let mut empty = Bytes::new();
            assert!(matches!(
                RequestKind::decode(key.key(), version, &mut empty),
                Err(kring_protocol::DecodeError::UnsupportedVersion { .. })
            ));
            let sample = RequestKind::sample(key, key.max_version());
            assert!(matches!(
                sample.encoded_len(version),
                Err(kring_protocol::EncodeError::UnsupportedVersion { .. })
            ));
            let mut out = BytesMut::new();
            assert!(matches!(
                sample.encode(&mut out, version),
                Err(kring_protocol::EncodeError::UnsupportedVersion { .. })
            ));
        }
    }
    assert_eq!(
        RequestKind::decode(99, 0, &mut Bytes::new()),
        Err(kring_protocol::DecodeError::UnknownApiKey(99))
    );
}
