//! `Producer::wait_for_metadata`: the partition count once known, or the
//! send error with its cause within the caller's bound.

use std::time::{Duration, Instant};

use kring_mock::MockCluster;

use crate::{LastError, Producer, Record, SendError};

#[test]
fn returns_the_partition_count_and_sends_need_no_wait_afterwards() {
    let c = MockCluster::builder().topic("t", 3).build().unwrap();
    let p = Producer::builder()
        .bootstrap(&c.bootstrap_servers())
        .build()
        .unwrap();
    assert_eq!(p.partition_count("t"), None);
    // A wait too long to add to an `Instant`: as long as it takes.
    assert_eq!(p.wait_for_metadata("t", Duration::MAX), Ok(3));
    assert_eq!(p.partition_count("t"), Some(3));
    // Known now: a bad partition fails at once, a good one goes.
    assert!(matches!(
        p.try_send(Record::new("t", b"x").partition(7)),
        Err(SendError::InvalidPartition { .. })
    ));
    p.send(Record::new("t", b"x").partition(2))
        .unwrap()
        .wait()
        .unwrap();
    assert!(p.close());
}

#[test]
fn a_dead_broker_fails_within_the_bound_with_connection_refused() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let p = Producer::builder()
        .bootstrap(&format!("127.0.0.1:{port}"))
        .build()
        .unwrap();
    let start = Instant::now();
    let err = p
        .wait_for_metadata("t", Duration::from_millis(800))
        .unwrap_err();
    let took = start.elapsed();
    println!("failed after {took:?}: {err}");
    assert!(took >= Duration::from_millis(800), "{took:?}");
    // Generous for a loaded CI machine; max.block.ms is 60 s.
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(
        matches!(
            &err,
            SendError::MetadataTimeout {
                last_error: Some(LastError::Connect {
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
fn a_refused_topic_and_a_bad_name_are_errors() {
    let c = MockCluster::builder()
        .auto_create_topics(false)
        .build()
        .unwrap();
    let p = Producer::builder()
        .bootstrap(&c.bootstrap_servers())
        .build()
        .unwrap();
    let err = p
        .wait_for_metadata("missing", Duration::from_millis(500))
        .unwrap_err();
    assert!(
        matches!(
            &err,
            SendError::MetadataTimeout {
                last_error: Some(LastError::Broker {
                    code: crate::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    ..
                }),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(matches!(
        p.wait_for_metadata("", Duration::from_secs(1)),
        Err(SendError::InvalidTopic(_))
    ));
    p.close();
    assert_eq!(
        p.wait_for_metadata("missing", Duration::from_secs(1)),
        Err(SendError::Closed)
    );
}
