//! Errors keep their cause: a record that times out because its broker is
//! gone says why (connection refused), not "last error: none".

use std::time::Duration;

use kring_mock::MockCluster;

use crate::{DeliveryError, Producer, Record};

#[test]
fn timeouts_after_the_broker_died_name_connection_refused() {
    let c = MockCluster::builder()
        .brokers(1)
        .topic("t", 1)
        .build()
        .expect("mock cluster");
    let p = Producer::builder()
        .bootstrap(&c.bootstrap_servers())
        .linger(Duration::ZERO)
        .request_timeout(Duration::from_millis(500))
        .delivery_timeout(Duration::from_millis(1500))
        .reconnect_backoff(Duration::from_millis(20))
        .reconnect_backoff_max(Duration::from_millis(50))
        .build()
        .unwrap();
    // Metadata known, connection up.
    p.send(Record::new("t", b"warm")).unwrap().wait().unwrap();
    c.stop_broker(c.broker_ids()[0]).unwrap();
    let futures: Vec<_> = (0..5)
        .map(|_| p.send(Record::new("t", b"lost")).unwrap())
        .collect();
    for f in futures {
        let err = f.wait().unwrap_err();
        let msg = err.to_string();
        assert!(msg.to_ascii_lowercase().contains("refused"), "{msg}");
        assert!(
            matches!(
                &err,
                DeliveryError::Timeout {
                    last_error: Some(crate::LastError::Connect {
                        kind: std::io::ErrorKind::ConnectionRefused,
                        ..
                    }),
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

#[test]
fn metadata_timeouts_name_connection_refused() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let p = Producer::builder()
        .bootstrap(&format!("127.0.0.1:{port}"))
        .max_block(Duration::from_millis(300))
        .reconnect_backoff(Duration::from_millis(20))
        .reconnect_backoff_max(Duration::from_millis(50))
        .build()
        .unwrap();
    let err = p.send(Record::new("t", b"x")).map(drop).unwrap_err();
    let msg = err.to_string();
    assert!(msg.to_ascii_lowercase().contains("refused"), "{msg}");
    assert!(
        matches!(
            &err,
            crate::SendError::MetadataTimeout {
                last_error: Some(crate::LastError::Connect {
                    kind: std::io::ErrorKind::ConnectionRefused,
                    ..
                }),
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn metadata_timeouts_name_a_failed_name_lookup() {
    let p = Producer::builder()
        .bootstrap("no-such-broker.invalid:9092")
        .max_block(Duration::from_millis(1500))
        .connect_timeout(Duration::from_millis(500))
        .reconnect_backoff(Duration::from_millis(20))
        .reconnect_backoff_max(Duration::from_millis(50))
        .build()
        .unwrap();
    let err = p.send(Record::new("t", b"x")).map(drop).unwrap_err();
    // Either the resolver said no, or it did not answer in time.
    assert!(
        matches!(
            &err,
            crate::SendError::MetadataTimeout {
                last_error: Some(crate::LastError::Connect { message, .. }),
                ..
            } if message.contains("resolv")
        ),
        "{err:?}"
    );
}
