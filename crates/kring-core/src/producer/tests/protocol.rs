//! The core against hand-fed frames: correlation ids are checked, garbage
//! is a connection error, not a panic.

use super::*;
use crate::sim::base_instant;
use crate::{IoCommand, ProducerCore};
use bytes::{BufMut, Bytes, BytesMut};

fn core() -> (ProducerCore, crate::ConnId, std::time::Instant) {
    let now = base_instant();
    let config = crate::Config {
        bootstrap: vec!["b:1".into()],
        ..cfg()
    };
    let (mut core, _shared) = ProducerCore::new(config, now).unwrap();
    core.handle_wakeup(now);
    assert!(core.poll_transmit(now).is_none());
    let conn = match core.poll_io() {
        Some(IoCommand::Connect { conn, addr }) => {
            assert_eq!(addr, "b:1");
            conn
        }
        other => panic!("{other:?}"),
    };
    core.handle_connected(now, conn);
    let t = core.poll_transmit(now).expect("ApiVersions");
    assert_eq!(&t.frame[4..6], &18i16.to_be_bytes());
    (core, conn, now)
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
    // It reconnects after the backoff.
    let t = core.poll_timeout().unwrap();
    assert!(t > now);
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
