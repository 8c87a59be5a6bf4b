//! Request/response framing: header versions, size prefixes, dispatch by
//! API key, and errors for frames that do not fit.

use bytes::{Buf, Bytes, BytesMut};
use kring_protocol::message::{
    decode_request_frame, decode_request_header, decode_response_frame, encode_request,
    encode_response, encode_response_frame, request_header_version, response_correlation_id,
    response_header_version, ApiKey, Encodable, Request, RequestKind, Response, ResponseKind,
};
use kring_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse, RequestHeader, SaslHandshakeRequest,
};
use kring_protocol::{DecodeError, EncodeError};

#[test]
fn header_versions() {
    for key in ApiKey::ALL {
        for v in key.min_version()..=key.max_version() {
            let flexible = v >= key.flexible_min();
            assert_eq!(request_header_version(key, v), if flexible { 2 } else { 1 });
            let want = if flexible && key != ApiKey::ApiVersions {
                1
            } else {
                0
            };
            assert_eq!(response_header_version(key, v), want, "{key:?} v{v}");
        }
    }
    assert_eq!(ApiKey::Produce.flexible_min(), 9);
    assert_eq!(
        ApiKey::SaslHandshake.flexible_min(),
        i16::MAX,
        "never flexible"
    );
    assert_eq!(response_header_version(ApiKey::ApiVersions, 4), 0);
}

#[test]
fn api_keys_match_the_request_types() {
    fn check<R: Request>(key: ApiKey) {
        assert_eq!(R::API_KEY, key.key());
        assert_eq!(R::MIN_VERSION, key.min_version());
        assert_eq!(R::MAX_VERSION, key.max_version());
        assert_eq!(R::FLEXIBLE_MIN, key.flexible_min());
        assert_eq!(<R::Response as Response>::API_KEY, key.key());
    }
    check::<ProduceRequest>(ApiKey::Produce);
    check::<MetadataRequest>(ApiKey::Metadata);
    check::<ApiVersionsRequest>(ApiKey::ApiVersions);
    check::<SaslHandshakeRequest>(ApiKey::SaslHandshake);
    for key in ApiKey::ALL {
        assert_eq!(ApiKey::try_from(key.key()), Ok(key));
        assert_eq!(i16::from(key), key as i16);
    }
    assert_eq!(ApiKey::try_from(4), Err(DecodeError::UnknownApiKey(4)));
}

/// The hand-written header fast path in `encode_request` writes what the
/// generated `RequestHeader` does.
#[test]
fn encode_request_writes_the_generated_header() {
    for key in ApiKey::ALL {
        for v in key.min_version()..=key.max_version() {
            for client_id in [None, Some(""), Some("kring-client")] {
                let req = RequestKind::sample(key, v);
                let mut frame = BytesMut::new();
                match &req {
                    RequestKind::Produce(r) => encode_request(&mut frame, 42, client_id, v, r),
                    RequestKind::Metadata(r) => encode_request(&mut frame, 42, client_id, v, r),
                    RequestKind::ApiVersions(r) => encode_request(&mut frame, 42, client_id, v, r),
                    RequestKind::Fetch(r) => encode_request(&mut frame, 42, client_id, v, r),
                    RequestKind::ListOffsets(r) => encode_request(&mut frame, 42, client_id, v, r),
                    RequestKind::FindCoordinator(r) => {
                        encode_request(&mut frame, 42, client_id, v, r)
                    }
                    RequestKind::SaslHandshake(r) => {
                        encode_request(&mut frame, 42, client_id, v, r)
                    }
                    RequestKind::CreateTopics(r) => encode_request(&mut frame, 42, client_id, v, r),
                    RequestKind::InitProducerId(r) => {
                        encode_request(&mut frame, 42, client_id, v, r)
                    }
                    RequestKind::AddPartitionsToTxn(r) => {
                        encode_request(&mut frame, 42, client_id, v, r)
                    }
                    RequestKind::EndTxn(r) => encode_request(&mut frame, 42, client_id, v, r),
                    RequestKind::AddOffsetsToTxn(r) => {
                        encode_request(&mut frame, 42, client_id, v, r)
                    }
                    RequestKind::TxnOffsetCommit(r) => {
                        encode_request(&mut frame, 42, client_id, v, r)
                    }
                    RequestKind::SaslAuthenticate(r) => {
                        encode_request(&mut frame, 42, client_id, v, r)
                    }
                }
                .unwrap();
                let mut frame = frame.freeze();
                let size = frame.get_i32() as usize;
                assert_eq!(size, frame.len());
                let header = RequestHeader {
                    request_api_key: key.key(),
                    request_api_version: v,
                    correlation_id: 42,
                    client_id: client_id.map(String::from),
                    ..Default::default()
                };
                let mut want = BytesMut::new();
                header
                    .encode(&mut want, request_header_version(key, v))
                    .unwrap();
                req.encode(&mut want, v).unwrap();
                assert_eq!(frame, want.freeze(), "{key:?} v{v} {client_id:?}");

                // A broker reads it back.
                let (h, body) = decode_request_frame(frame).unwrap();
                assert_eq!((h, body), (header, req.clone()));
            }
        }
    }
}

#[test]
fn responses_frame_and_unframe_for_every_api_and_version() {
    for key in ApiKey::ALL {
        for v in key.min_version()..=key.max_version() {
            let resp = ResponseKind::sample(key, v);
            let mut out = BytesMut::new();
            encode_response_frame(&mut out, -5, v, &resp).unwrap();
            let mut frame = out.freeze();
            assert_eq!(frame.get_i32() as usize, frame.len());
            assert_eq!(response_correlation_id(&frame), Ok(-5));
            let header_len = 4 + response_header_version(key, v) as usize;
            let mut body = frame.slice(header_len..);
            assert_eq!(ResponseKind::decode(key.key(), v, &mut body).unwrap(), resp);
            assert!(body.is_empty());
        }
    }
}

#[test]
fn typed_response_frames() {
    let resp = ProduceResponse::sample(11);
    let mut out = BytesMut::new();
    encode_response(&mut out, 77, 11, &resp).unwrap();
    let frame = out.freeze().slice(4..);
    let (corr, back) = decode_response_frame::<ProduceRequest>(frame.clone(), 11).unwrap();
    assert_eq!((corr, back), (77, resp));
    // Trailing bytes mean the version or the API is not what we think.
    let mut longer = BytesMut::from(&frame[..]);
    longer.extend_from_slice(&[0]);
    assert_eq!(
        decode_response_frame::<ProduceRequest>(longer.freeze(), 11),
        Err(DecodeError::TrailingBytes(1))
    );
    // Every truncation is an error.
    for cut in 0..frame.len() {
        assert!(decode_response_frame::<ProduceRequest>(frame.slice(..cut), 11).is_err());
    }
    assert_eq!(
        decode_response_frame::<ProduceRequest>(frame, 12),
        Err(DecodeError::UnsupportedVersion {
            api_key: 0,
            version: 12
        })
    );
    assert!(response_correlation_id(&[0, 0, 1]).is_err());
}

#[test]
fn api_versions_response_to_a_flexible_request_has_no_header_tags() {
    let resp = ApiVersionsResponse::sample(3);
    let mut out = BytesMut::new();
    encode_response(&mut out, 1, 3, &resp).unwrap();
    let mut framed_kind = BytesMut::new();
    encode_response_frame(
        &mut framed_kind,
        1,
        3,
        &ResponseKind::ApiVersions(resp.clone()),
    )
    .unwrap();
    assert_eq!(out, framed_kind);
    let body_len = resp.encoded_len(3).unwrap();
    assert_eq!(
        out.len(),
        4 + 4 + body_len,
        "size, correlation id, body: no tagged-field byte"
    );
}

#[test]
fn framing_validates_before_writing() {
    let mut out = BytesMut::new();
    assert_eq!(
        encode_request(&mut out, 1, None, 12, &ProduceRequest::default()),
        Err(EncodeError::UnsupportedVersion {
            api_key: 0,
            version: 12
        })
    );
    let bad = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    assert!(encode_request(&mut out, 1, None, 0, &bad).is_err());
    let long_id = "c".repeat(40_000);
    assert!(matches!(
        encode_request(&mut out, 1, Some(&long_id), 1, &MetadataRequest::default()),
        Err(EncodeError::TooLong {
            field: "ClientId",
            ..
        })
    ));
    assert!(out.is_empty(), "nothing written on error");
    assert!(encode_response(&mut out, 1, 13, &MetadataResponse::default()).is_err());
    assert!(out.is_empty());
}

#[test]
fn request_header_for_unsupported_versions_still_decodes() {
    // ApiVersions v9 (newer than kring knows) from a future client: header v2.
    let mut frame = BytesMut::new();
    RequestHeader {
        request_api_key: 18,
        request_api_version: 9,
        correlation_id: 5,
        client_id: Some("x".into()),
        ..Default::default()
    }
    .encode(&mut frame, 2)
    .unwrap();
    frame.extend_from_slice(&[1, 2, 3]);
    let mut buf = frame.freeze();
    let header = decode_request_header(&mut buf).unwrap();
    assert_eq!((header.correlation_id, header.request_api_version), (5, 9));
    assert_eq!(&buf[..], &[1, 2, 3]);
    let mut frame = Bytes::from_static(&[0, 18, 0, 9, 0, 0, 0, 5, 0xff, 0xff, 0]);
    assert!(matches!(
        decode_request_frame(frame.clone()),
        Err(DecodeError::UnsupportedVersion { .. })
    ));
    assert_eq!(decode_request_header(&mut frame).unwrap().client_id, None);
    // Unknown API key.
    let frame = Bytes::from_static(&[0, 99, 0, 0, 0, 0, 0, 5, 0xff, 0xff]);
    assert_eq!(
        decode_request_frame(frame),
        Err(DecodeError::UnknownApiKey(99))
    );
}
