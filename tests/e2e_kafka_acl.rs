//! kring against Apache Kafka 4.4.0 with an authorizer (KRaft's
//! `StandardAuthorizer`) and SASL/PLAIN users, ACLs set with Kafka's own
//! `AclCommand`: what a producer meets on a production cluster where it may
//! not write everywhere.
//!
//! - a topic the user may not describe fails `send` promptly with
//!   TOPIC_AUTHORIZATION_FAILED, and a send after the ACL is granted
//!   succeeds (each send asks for the topic's metadata again, as the Java
//!   client's `waitOnMetadata` does);
//! - a topic the user may describe but not write: its records fail with
//!   TOPIC_AUTHORIZATION_FAILED (not persisted), promptly and once, while
//!   another topic of the same idempotent producer goes on, and after the
//!   ACL is granted the same producer writes there too, in order;
//! - a user who may write nowhere cannot get a producer id (KIP-679:
//!   InitProducerId needs Write on some topic): with idempotence its
//!   records fail with CLUSTER_AUTHORIZATION_FAILED, promptly, not after
//!   `delivery.timeout.ms` (a send after the refusal is refused at once,
//!   `SendError::Fatal`).
//!
//! One single-node cluster for the binary; the harness's PLAINTEXT
//! listener (principal `User:ANONYMOUS`) is a super user.

mod support;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kring::{DeliveryError, ErrorCode, ProducerBuilder, Record, SendError};
use kring_testcluster::{ClusterConfig, KafkaCluster, ListenerSecurity, SecureListener};

const ALICE_PW: &str = "alice-Acl-pw";
const BOB_PW: &str = "bob-Acl-pw";
const MALLORY_PW: &str = "mallory-Acl-pw";

/// Far below `max.block.ms` and `delivery.timeout.ms`: an authorization
/// failure is final, so nothing should wait for it.
const PROMPT: Duration = Duration::from_secs(15);

fn cluster() -> &'static KafkaCluster {
    static C: OnceLock<KafkaCluster> = OnceLock::new();
    C.get_or_init(|| {
        KafkaCluster::start(
            ClusterConfig::new(1)
                .secured(
                    SecureListener::new(ListenerSecurity::SaslPlaintext)
                        .plain_user("alice", ALICE_PW)
                        .plain_user("bob", BOB_PW)
                        .plain_user("mallory", MALLORY_PW),
                )
                .prop("listener.name.secured.sasl.enabled.mechanisms", "PLAIN")
                .prop(
                    "authorizer.class.name",
                    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                )
                .prop("super.users", "User:ANONYMOUS"),
        )
        .unwrap_or_else(|e| panic!("cannot start a cluster with an authorizer: {e}"))
    })
}

fn builder(c: &KafkaCluster, user: &str, password: &str) -> ProducerBuilder {
    support::sasl_plaintext_builder(c).sasl_plain(user, password)
}

/// Grants `operation` on a topic and waits until the broker applies it.
fn allow(c: &KafkaCluster, user: &str, operation: &str, topic: &str) {
    let principal = format!("User:{user}");
    c.acl(&[
        "--add",
        "--allow-principal",
        &principal,
        "--operation",
        operation,
        "--topic",
        topic,
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    c.wait_for_acl(&principal, &["--topic", topic])
        .unwrap_or_else(|e| panic!("{e}"));
}

fn is_code(e: &SendError, code: ErrorCode) -> bool {
    matches!(e, SendError::TopicError { error, .. } if *error == code)
}

#[test]
fn topic_the_user_may_not_describe_fails_send_promptly_until_granted() {
    let c = cluster();
    c.create_topic("acl-hidden", 1, 1, &[]).unwrap();
    // Write on another topic: the producer id is not what this test is about.
    c.create_topic("acl-alice-own", 1, 1, &[]).unwrap();
    allow(c, "alice", "Write", "acl-alice-own");
    let p = builder(c, "alice", ALICE_PW).build().expect("producer");
    p.send(Record::new("acl-alice-own", b"mine"))
        .expect("send")
        .wait_timeout(PROMPT)
        .expect("a result")
        .expect("delivered to the topic alice may write");

    let start = Instant::now();
    let err = p
        .send(Record::new("acl-hidden", b"secret"))
        .expect_err("no Describe on acl-hidden");
    assert!(
        start.elapsed() < PROMPT,
        "refused after {:?}",
        start.elapsed()
    );
    assert!(
        is_code(&err, ErrorCode::TOPIC_AUTHORIZATION_FAILED),
        "{err:?}"
    );
    // Refused again at once: the answer is known.
    let again = Instant::now();
    let err = p.send(Record::new("acl-hidden", b"secret")).unwrap_err();
    assert!(
        is_code(&err, ErrorCode::TOPIC_AUTHORIZATION_FAILED),
        "{err:?}"
    );
    assert!(again.elapsed() < PROMPT);

    // Granted: a send soon succeeds, without a new producer and without
    // waiting out metadata.max.age.ms (5 minutes).
    allow(c, "alice", "Write", "acl-hidden");
    let granted = Instant::now();
    let meta = loop {
        match p.send(Record::new("acl-hidden", b"now allowed")) {
            Ok(d) => {
                break d
                    .wait_timeout(PROMPT)
                    .expect("a result")
                    .expect("delivered")
            }
            Err(e) if is_code(&e, ErrorCode::TOPIC_AUTHORIZATION_FAILED) => {
                assert!(
                    granted.elapsed() < PROMPT,
                    "still refused {:?} after the grant: {e}",
                    granted.elapsed()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("{e:?}"),
        }
    };
    assert_eq!(meta.partition, 0);
    assert!(p.close_timeout(Duration::from_secs(30)));
}

#[test]
fn topic_the_user_may_describe_but_not_write_fails_its_records_and_not_the_producer() {
    let c = cluster();
    c.create_topic("acl-bob-own", 1, 1, &[]).unwrap();
    c.create_topic("acl-read-only", 1, 1, &[]).unwrap();
    allow(c, "bob", "Write", "acl-bob-own");
    allow(c, "bob", "Describe", "acl-read-only");
    let p = builder(c, "bob", BOB_PW)
        .idempotence(true)
        .build()
        .expect("producer");

    let start = Instant::now();
    let refused: Vec<_> = (0..5)
        .map(|i| {
            p.send(Record::new("acl-read-only", format!("ro-{i}").as_bytes()))
                .expect("metadata is allowed: the send is taken")
        })
        .collect();
    let own: Vec<_> = (0..5)
        .map(|i| {
            p.send(Record::new("acl-bob-own", format!("own-{i}").as_bytes()))
                .expect("send")
        })
        .collect();
    for d in refused {
        match d.wait_timeout(PROMPT).expect("a result within PROMPT") {
            Err(DeliveryError::Broker { code, status, .. }) => {
                assert_eq!(code, ErrorCode::TOPIC_AUTHORIZATION_FAILED.code());
                assert_eq!(status, kring::MessageStatus::NotPersisted);
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(start.elapsed() < PROMPT, "{:?}", start.elapsed());
    let offsets: Vec<i64> = own
        .into_iter()
        .map(|d| {
            d.wait_timeout(PROMPT)
                .expect("a result")
                .expect("the writable topic goes on")
                .offset
        })
        .collect();
    assert_eq!(offsets, (0..5).collect::<Vec<_>>());

    // Granted: the same idempotent producer now writes there, in order.
    allow(c, "bob", "Write", "acl-read-only");
    let offsets: Vec<i64> = (0..5)
        .map(|i| {
            p.send(Record::new("acl-read-only", format!("rw-{i}").as_bytes()))
                .expect("send")
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|d| {
            d.wait_timeout(PROMPT)
                .expect("a result")
                .expect("delivered after the grant")
                .offset
        })
        .collect();
    assert_eq!(offsets, (0..5).collect::<Vec<_>>());
    assert!(p.close_timeout(Duration::from_secs(30)));
    let read = support::read_rdkafka(&c.bootstrap(), "acl-read-only", 1, 5);
    let values: Vec<Vec<u8>> = read.into_iter().map(|r| r.value.unwrap()).collect();
    let want: Vec<Vec<u8>> = (0..5).map(|i| format!("rw-{i}").into_bytes()).collect();
    assert_eq!(values, want, "exactly the records sent after the grant");
}

#[test]
fn user_who_may_write_nowhere_gets_no_producer_id_and_fails_promptly() {
    let c = cluster();
    c.create_topic("acl-mallory", 1, 1, &[]).unwrap();
    allow(c, "mallory", "Describe", "acl-mallory");
    let p = builder(c, "mallory", MALLORY_PW)
        .idempotence(true)
        .build()
        .expect("producer");
    let start = Instant::now();
    let outcome = p
        .send(Record::new("acl-mallory", b"denied"))
        .map(|d| d.wait_timeout(PROMPT).expect("a result within PROMPT"));
    assert!(start.elapsed() < PROMPT, "{:?}", start.elapsed());
    let code = match outcome {
        Ok(Err(DeliveryError::Broker { code, status, .. })) => {
            assert_eq!(status, kring::MessageStatus::NotPersisted);
            code
        }
        Err(SendError::TopicError { error, .. }) => error.code(),
        // The producer id was refused before the send: the producer is
        // fatally failed and refuses it at once.
        Err(SendError::Fatal(DeliveryError::Broker { code, status, .. })) => {
            assert_eq!(status, kring::MessageStatus::NotPersisted);
            code
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(code, ErrorCode::CLUSTER_AUTHORIZATION_FAILED.code());
    assert!(p.close_timeout(Duration::from_secs(30)));
}
