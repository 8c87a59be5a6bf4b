//! A cluster with a SASL_PLAINTEXT client listener: the harness still
//! creates topics over its PLAINTEXT listener, the secured listener lists
//! the enabled mechanisms, refuses an unknown one and a wrong password,
//! closes a connection that sends a request before authenticating, and
//! serves Metadata (advertising itself) after a PLAIN login.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kring_protocol::message::{decode_response_frame, encode_request, Request};
use kring_protocol::messages::metadata::MetadataRequest;
use kring_protocol::messages::sasl_authenticate::SaslAuthenticateRequest;
use kring_protocol::messages::sasl_handshake::SaslHandshakeRequest;
use kring_testcluster::{
    ClusterConfig, KafkaCluster, ListenerSecurity, ScramMechanism, SecureListener,
};

/// UNSUPPORTED_SASL_MECHANISM.
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
/// SASL_AUTHENTICATION_FAILED.
const SASL_AUTHENTICATION_FAILED: i16 = 58;

struct Conn {
    stream: TcpStream,
    next_id: i32,
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Conn { stream, next_id: 1 }
    }

    /// Sends the request; `Err` if the broker closed the connection instead
    /// of answering.
    fn call<R: Request>(&mut self, version: i16, req: &R) -> std::io::Result<R::Response> {
        let id = self.next_id;
        self.next_id += 1;
        let mut frame = BytesMut::new();
        encode_request(&mut frame, id, Some("secured-test"), version, req).expect("encode");
        self.stream.write_all(&frame)?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let size = usize::try_from(i32::from_be_bytes(size)).expect("a frame size");
        assert!(size < 1 << 20, "frame of {size} bytes");
        let mut body = vec![0u8; size];
        self.stream.read_exact(&mut body)?;
        let (cid, resp) = decode_response_frame::<R>(Bytes::from(body), version).expect("decode");
        assert_eq!(cid, id);
        Ok(resp)
    }

    fn handshake(&mut self, mechanism: &str) -> (i16, Vec<String>) {
        let r = self
            .call(
                1,
                &SaslHandshakeRequest {
                    mechanism: mechanism.into(),
                    ..Default::default()
                },
            )
            .expect("a SaslHandshake response");
        (r.error_code, r.mechanisms)
    }

    fn plain(&mut self, user: &str, password: &str) -> i16 {
        let auth = format!("\0{user}\0{password}");
        self.call(
            2,
            &SaslAuthenticateRequest {
                auth_bytes: Bytes::from(auth.into_bytes()),
                ..Default::default()
            },
        )
        .expect("a SaslAuthenticate response")
        .error_code
    }
}

#[test]
fn sasl_plaintext_listener_authenticates_and_refuses() {
    let cluster = KafkaCluster::start(
        ClusterConfig::new(1).secured(
            SecureListener::new(ListenerSecurity::SaslPlaintext)
                .plain_user("alice", "alice-secret")
                .scram_user(ScramMechanism::Sha256, "bob", "bob-secret")
                .scram_user(ScramMechanism::Sha512, "carol", "carol-secret"),
        ),
    )
    .expect("a SASL_PLAINTEXT cluster");
    let secured = cluster.secured_addr(0).expect("a secured listener");
    assert_ne!(secured, cluster.broker_addr(0));
    assert_eq!(
        cluster.secured_bootstrap().as_deref(),
        Some(secured.to_string().as_str())
    );
    // The harness's own admin calls use the PLAINTEXT listener.
    cluster.create_topic("secured-t", 1, 1, &[]).expect("topic");

    // An unknown mechanism: UNSUPPORTED_SASL_MECHANISM and the enabled list.
    let mut c = Conn::open(secured);
    let (code, mut mechanisms) = c.handshake("GSSAPI");
    assert_eq!(code, UNSUPPORTED_SASL_MECHANISM);
    mechanisms.sort();
    assert_eq!(
        mechanisms,
        ["OAUTHBEARER", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
    );

    // A request before authenticating: the broker closes the connection.
    let mut c = Conn::open(secured);
    let r = c.call(12, &MetadataRequest::default());
    assert!(r.is_err(), "Metadata answered before SASL: {r:?}");

    // A wrong PLAIN password.
    let mut c = Conn::open(secured);
    assert_eq!(c.handshake("PLAIN").0, 0);
    assert_eq!(c.plain("alice", "wrong"), SASL_AUTHENTICATION_FAILED);

    // The right one: Metadata then works and advertises the secured port.
    let mut c = Conn::open(secured);
    assert_eq!(c.handshake("PLAIN").0, 0);
    assert_eq!(c.plain("alice", "alice-secret"), 0);
    let m = c
        .call(
            12,
            &MetadataRequest {
                topics: None,
                ..Default::default()
            },
        )
        .expect("Metadata after authenticating");
    let ports: Vec<i32> = m.brokers.iter().map(|b| b.port).collect();
    assert_eq!(ports, [i32::from(secured.port())]);
    assert!(
        m.topics
            .iter()
            .any(|t| t.name.as_deref() == Some("secured-t")),
        "the topic created over PLAINTEXT is listed"
    );
}
