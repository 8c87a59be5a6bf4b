//! The core against hand-fed frames: correlation ids are checked, garbage
//! is a connection error, not a panic.

use super::*;
use crate::error::SendError;
use crate::{IoCommand, ProducerCore};
use bytes::{BufMut, Bytes, BytesMut};
use kring_testclock::origin as base_instant;

/// A core bootstrapping from `b:1`, its connection to it connected and
/// its ApiVersions request sent.
fn core() -> (ProducerCore, crate::ConnId, std::time::Instant) {
    let (mut core, _shared, conn, now) = connecting_core();
    core.handle_connected(now, conn);
    let t = core.poll_transmit(now).expect("ApiVersions");
    assert_eq!(&t.frame.to_bytes()[4..6], &18i16.to_be_bytes());
    (core, conn, now)
}

/// A core bootstrapping from `b:1`, its connection to it asked of the
/// driver.
fn connecting_core() -> (
    ProducerCore,
    std::sync::Arc<crate::Shared>,
    crate::ConnId,
    std::time::Instant,
) {
    let now = base_instant();
    let config = crate::Config {
        bootstrap: vec!["b:1".into()],
        ..cfg()
    };
    let (mut core, shared) = ProducerCore::new(config, now).unwrap();
    core.handle_wakeup(now);
    assert!(core.poll_transmit(now).is_none());
    let conn = match core.poll_io() {
        Some(IoCommand::Connect { conn, addr, .. }) => {
            assert_eq!(addr, "b:1");
            conn
        }
        other => panic!("{other:?}"),
    };
    (core, shared, conn, now)
}

#[test]
fn wrong_correlation_id_drops_the_connection() {
    let (mut core, conn, now) = core();
    let mut f = BytesMut::new();
    f.put_i32(12345); // not the ApiVersions request's id (0)
    f.put_i16(0);
    core.handle_response(now, conn, f.freeze());
    assert_eq!(core.poll_io(), Some(IoCommand::Close { conn }));
    // Later events for the dropped connection are ignored.
    core.handle_response(now, conn, Bytes::from_static(b"\0\0\0\0"));
    core.handle_disconnected(now, conn, "late");
    // It reconnects after the backoff: reconnect.backoff.ms (50 ms, ±20 %
    // jitter) for a first failure.
    let t = core.poll_timeout().unwrap();
    assert!(t > now);
    assert!(t <= now + ms(60), "{:?}", t - now);
    core.handle_timeout(t);
    assert!(core.poll_transmit(t).is_none());
    assert!(matches!(core.poll_io(), Some(IoCommand::Connect { .. })));
}

#[test]
fn garbage_responses_are_connection_errors() {
    for junk in [&b""[..], &b"\0\0"[..], &b"\0\0\0\0\xff\xff\xff"[..]] {
        let (mut core, conn, now) = core();
        core.handle_response(now, conn, Bytes::copy_from_slice(junk));
        assert_eq!(core.poll_io(), Some(IoCommand::Close { conn }), "{junk:?}");
    }
}

#[test]
fn unsolicited_response_is_a_connection_error() {
    let (mut core, conn, now) = core();
    // Answer the ApiVersions request with garbage of the right id: the
    // connection is dropped; no panic.
    let mut f = BytesMut::new();
    f.put_i32(0);
    f.put_slice(&[0xff; 3]);
    core.handle_response(now, conn, f.freeze());
    assert_eq!(core.poll_io(), Some(IoCommand::Close { conn }));
    // A response on a connection with nothing in flight.
    let mut f = BytesMut::new();
    f.put_i32(1);
    core.handle_response(now, conn, f.freeze());
    assert_eq!(core.poll_io(), None, "unknown connection: ignored");
}

/// librdkafka's mock cluster answers ApiVersions v3 with
/// UNSUPPORTED_VERSION in a body that decodes neither as v3 nor as v0 (a
/// flexible-style array inside a v0 body). The error code alone sends the
/// handshake back to v0 on the same connection (found by kring's
/// end-to-end tests against `rdkafka::mocking`).
#[test]
fn unsupported_api_versions_version_falls_back_to_v0_by_the_error_code() {
    let (mut core, conn, now) = core();
    // The 17 bytes librdkafka 2.12.1's mock broker sends.
    let answer: [u8; 17] = [0, 0, 0, 0, 0, 0x23, 1, 0, 0x12, 0, 0, 0, 2, 0, 0, 0, 0];
    core.handle_response(now, conn, Bytes::copy_from_slice(&answer));
    assert_eq!(core.poll_io(), None, "the connection is kept");
    let t = core.poll_transmit(now).expect("ApiVersions again");
    assert_eq!(
        &t.frame.to_bytes()[4..6],
        &18i16.to_be_bytes(),
        "ApiVersions"
    );
    assert_eq!(&t.frame.to_bytes()[6..8], &0i16.to_be_bytes(), "version 0");
}

/// The version of the ApiVersions request sent after an UNSUPPORTED_VERSION
/// answer (a v0 body, KIP-511) that lists `listed` as the broker's
/// ApiVersions range (`None`: the broker lists no ApiVersions entry).
fn api_versions_retry_after(listed: Option<(i16, i16)>) -> i16 {
    use kring_protocol::message::encode_response;
    use kring_protocol::messages::api_versions::{ApiVersion, ApiVersionsResponse};
    let (mut core, conn, now) = core();
    let resp = ApiVersionsResponse {
        error_code: 35,
        api_keys: listed
            .map(|(lo, hi)| ApiVersion {
                api_key: 18,
                min_version: lo,
                max_version: hi,
                ..Default::default()
            })
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let mut f = BytesMut::new();
    encode_response(&mut f, 0, 0, &resp).unwrap();
    core.handle_response(now, conn, f.freeze().slice(4..));
    assert_eq!(core.poll_io(), None, "the connection is kept");
    let t = core.poll_transmit(now).expect("ApiVersions again");
    let b = t.frame.to_bytes();
    assert_eq!(&b[4..6], &18i16.to_be_bytes(), "ApiVersions");
    i16::from_be_bytes([b[6], b[7]])
}

/// UNSUPPORTED_VERSION lists the broker's ApiVersions versions (KIP-511):
/// the retry uses the highest both sides speak, as the Java client's
/// `NetworkClient.handleApiVersionsResponse` does; v0 when the broker lists
/// none, or lists only versions at or above the one it just refused.
#[test]
fn unsupported_api_versions_retries_with_the_listed_version() {
    assert_eq!(api_versions_retry_after(Some((0, 2))), 2);
    assert_eq!(api_versions_retry_after(Some((0, 1))), 1);
    assert_eq!(api_versions_retry_after(Some((0, 0))), 0);
    assert_eq!(api_versions_retry_after(None), 0);
    // A broker that refused v3 but claims v9: no loop, v0.
    assert_eq!(api_versions_retry_after(Some((0, 9))), 0);
}

/// A broker that refuses ApiVersions v0 too (UNSUPPORTED_VERSION to the
/// retry) speaks nothing kring can: the connection is dropped and
/// reconnected after a backoff, never retried at v0 again on the same
/// connection (a loop of requests as fast as the broker answers).
#[test]
fn unsupported_api_versions_at_v0_drops_the_connection() {
    let (mut core, conn, now) = core();
    let refused = |id: i32| {
        let mut f = BytesMut::new();
        f.put_i32(id);
        f.put_i16(35);
        f.put_i32(0); // no api keys
        f.freeze()
    };
    core.handle_response(now, conn, refused(0));
    assert_eq!(core.poll_io(), None, "the connection is kept");
    let t = core.poll_transmit(now).expect("ApiVersions v0");
    assert_eq!(&t.frame.to_bytes()[6..8], &0i16.to_be_bytes());
    core.handle_response(now, conn, refused(1));
    assert_eq!(core.poll_io(), Some(IoCommand::Close { conn }));
    assert!(core.poll_transmit(now).is_none());
    assert!(core.poll_timeout().is_some_and(|t| t > now), "a backoff");
}

/// A broker's ApiVersions answer with an error other than
/// UNSUPPORTED_VERSION (whatever versions it lists) drops the connection.
#[test]
fn api_versions_with_another_error_drops_the_connection() {
    let (mut core, conn, now) = core();
    let answer = api_versions_answer(ErrorCode::CLUSTER_AUTHORIZATION_FAILED.code());
    core.handle_response(now, conn, answer);
    assert_eq!(core.poll_io(), Some(IoCommand::Close { conn }));
}

/// A TLS failure (here an untrusted certificate) is a failed connect:
/// the core backs off before trying again, and a send waiting for
/// metadata names it as the cause.
#[test]
fn a_tls_failure_is_the_cause_a_waiting_send_reports() {
    let (mut core, shared, conn, now) = connecting_core();
    core.handle_tls_error(
        now,
        conn,
        crate::TlsFailure::UntrustedCertificate,
        "invalid peer certificate: UnknownIssuer",
    );
    assert!(core.poll_transmit(now).is_none());
    assert_eq!(core.poll_io(), None, "the driver closed it");
    assert!(core.poll_timeout().is_some_and(|t| t > now), "a backoff");
    let err = shared
        .append(now, crate::RecordRef::plain("t", b"v"), now)
        .unwrap_err();
    let (SendError::MetadataTimeout { last_error, .. }
    | SendError::NoMetadataYet { last_error, .. }) = err
    else {
        panic!("{err:?}");
    };
    assert!(
        matches!(
            last_error,
            Some(crate::LastError::Tls {
                kind: crate::TlsFailure::UntrustedCertificate,
                ..
            })
        ),
        "{last_error:?}"
    );
}

/// Answers the ApiVersions request `t` (correlation id 0) with the versions
/// the core needs.
fn answer_api_versions(core: &mut ProducerCore, conn: crate::ConnId, now: std::time::Instant) {
    core.handle_response(now, conn, api_versions_answer(0));
}

/// An ApiVersions v3 answer (correlation id 0, size prefix stripped) with
/// `error_code` and the versions the core needs.
fn api_versions_answer(error_code: i16) -> Bytes {
    use kring_protocol::message::encode_response;
    use kring_protocol::messages::api_versions::{ApiVersion, ApiVersionsResponse};
    let resp = ApiVersionsResponse {
        error_code,
        api_keys: [(0, 3, 11), (3, 1, 12), (18, 0, 3), (22, 0, 5)]
            .iter()
            .map(|&(k, lo, hi)| ApiVersion {
                api_key: k,
                min_version: lo,
                max_version: hi,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let mut f = BytesMut::new();
    encode_response(&mut f, 0, 3, &resp).unwrap();
    f.freeze().slice(4..)
}

/// A metadata response that cannot be decoded (librdkafka's mock cluster
/// appends a stray byte to flexible Metadata responses) drops the
/// connection, and metadata is asked for again after a backoff, also when
/// the connection was a bootstrap one (found by kring's end-to-end tests:
/// the core asked no more, and senders waited out max.block.ms).
#[test]
fn undecodable_metadata_response_is_asked_again() {
    let now = base_instant();
    let config = crate::Config {
        bootstrap: vec!["b:1".into()],
        enable_idempotence: false,
        ..cfg()
    };
    let (mut core, _shared) = ProducerCore::new(config, now).unwrap();
    core.handle_wakeup(now);
    assert!(core.poll_transmit(now).is_none());
    let Some(IoCommand::Connect { conn, .. }) = core.poll_io() else {
        panic!("no connect");
    };
    core.handle_connected(now, conn);
    assert!(core.poll_transmit(now).is_some(), "ApiVersions");
    answer_api_versions(&mut core, conn, now);
    let t = core.poll_transmit(now).expect("metadata request");
    assert_eq!(&t.frame.to_bytes()[4..6], &3i16.to_be_bytes());
    assert!(core.poll_transmit(now).is_none());
    let corr = i32::from_be_bytes(t.frame.to_bytes()[8..12].try_into().unwrap());
    let mut f = BytesMut::new();
    f.put_i32(corr);
    f.put_slice(&[0xff; 5]);
    core.handle_response(now, conn, f.freeze());
    assert_eq!(core.poll_io(), Some(IoCommand::Close { conn }));
    // Time moves on from deadline to deadline: a new connection comes.
    let mut t = now;
    for _ in 0..10 {
        let Some(next) = core.poll_timeout() else {
            break;
        };
        t = next;
        core.handle_timeout(t);
        assert!(core.poll_transmit(t).is_none());
        if let Some(IoCommand::Connect { .. }) = core.poll_io() {
            assert!(t - now < std::time::Duration::from_secs(2), "{:?}", t - now);
            return;
        }
    }
    panic!(
        "metadata was not asked for again (last deadline {:?})",
        t - now
    );
}
