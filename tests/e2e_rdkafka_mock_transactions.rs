//! kring's transactions against librdkafka's mock cluster, whose
//! transaction coordinator (an implementation independent of Apache
//! Kafka's and of kring-mock's) takes injected errors per request type:
//!
//! - errors the Java client retries (the coordinator moved, is loading,
//!   or is still completing the last transaction) on every transactional
//!   request are retried, and the transaction commits;
//! - a record that fails makes the transaction abortable: the commit
//!   fails with the cause, sends are refused, the abort succeeds (and
//!   bumps the epoch through the coordinator, the refused batch having
//!   left a gap in its partition's sequences), and the next transaction
//!   commits;
//! - a fenced EndTxn is fatal: the commit fails, and so does every later
//!   call and send;
//! - consumer offsets go through retried AddOffsetsToTxn and TxnOffsetCommit
//!   errors, and a stale consumer generation makes the transaction
//!   abortable.

mod support;

use std::time::Duration;

use kring::{
    ConsumerGroupMetadata, DeliveryFuture, OffsetToCommit, Producer, Record, SendError,
    TransactionError,
};
use rdkafka::mocking::{MockCluster, MockCoordinator};
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

const TOPIC: &str = "t";
const PARTITIONS: i32 = 4;

fn cluster() -> MockCluster<'static, DefaultProducerContext> {
    support::trace::init();
    let c = MockCluster::new(3).expect("librdkafka mock cluster");
    c.create_topic(TOPIC, PARTITIONS, 3).unwrap();
    // See e2e_rdkafka_mock: the mock's flexible Metadata responses carry a
    // stray byte; v8 has everything kring uses.
    c.apiversion(RDKafkaApiKey::Metadata, Some(0), Some(8))
        .unwrap();
    c
}

fn producer(bootstrap: &str, txn_id: &str) -> Producer {
    support::producer_builder()
        .bootstrap(bootstrap)
        .transactional_id(txn_id)
        .retry_backoff(Duration::from_millis(10))
        .retry_backoff_max(Duration::from_millis(100))
        .max_block(Duration::from_secs(30))
        .build()
        .expect("producer")
}

fn send(p: &Producer, n: usize, tag: &str) -> Vec<DeliveryFuture> {
    (0..n)
        .map(|i| {
            p.send(
                Record::new(TOPIC, format!("{tag}-{i}").as_bytes())
                    .partition(i as i32 % PARTITIONS),
            )
            .expect("send inside a transaction")
        })
        .collect()
}

fn results(fs: &[DeliveryFuture]) -> Vec<Result<(), String>> {
    fs.iter()
        .map(|f| {
            f.wait_timeout(Duration::from_secs(30))
                .expect("a result")
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .collect()
}

fn errors(n: usize, e: RDKafkaRespErr) -> Vec<RDKafkaRespErr> {
    vec![e; n]
}

#[test]
fn retriable_coordinator_errors_are_retried_and_the_transaction_commits() {
    let c = cluster();
    c.coordinator(MockCoordinator::Transaction("retried".into()), 2)
        .unwrap();
    let bootstrap = c.bootstrap_servers();
    use RDKafkaRespErr::*;
    c.request_errors(
        RDKafkaApiKey::FindCoordinator,
        &errors(2, RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE),
    );
    c.request_errors(
        RDKafkaApiKey::InitProducerId,
        &[
            RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
            RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
            RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS,
        ],
    );
    c.request_errors(
        RDKafkaApiKey::AddPartitionsToTxn,
        &[
            RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS,
            RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
            RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
        ],
    );
    c.request_errors(
        RDKafkaApiKey::EndTxn,
        &[
            RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
            RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS,
            RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
        ],
    );
    let p = producer(&bootstrap, "retried");
    p.init_transactions().expect("init through the errors");
    p.begin_transaction().unwrap();
    let fs = send(&p, 400, "r");
    p.commit_transaction().expect("commit through the errors");
    assert!(
        results(&fs).iter().all(Result::is_ok),
        "every record written"
    );
    // A second transaction on the same coordinator, no errors left.
    p.begin_transaction().unwrap();
    let fs = send(&p, 100, "s");
    p.commit_transaction().expect("second commit");
    assert!(results(&fs).iter().all(Result::is_ok));
    assert!(p.close());
}

#[test]
fn a_failed_record_makes_the_transaction_abortable_and_the_next_one_commits() {
    let c = cluster();
    let bootstrap = c.bootstrap_servers();
    let p = producer(&bootstrap, "abortable");
    p.init_transactions().expect("init");

    p.begin_transaction().unwrap();
    let first = send(&p, 40, "ok");
    assert!(results(&first).iter().all(Result::is_ok));
    // The next produce request is refused for good.
    c.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
    );
    let failed = send(&p, 40, "bad");
    let got = results(&failed);
    assert!(
        got.iter().any(|r| r
            .as_ref()
            .is_err_and(|e| e.contains("TOPIC_AUTHORIZATION_FAILED"))),
        "a record refused by the broker: {got:?}"
    );
    match p.commit_transaction() {
        Err(TransactionError::Abortable(e)) => assert!(
            e.to_string().contains("TOPIC_AUTHORIZATION_FAILED"),
            "the cause: {e}"
        ),
        other => panic!("commit after a failed record: {other:?}"),
    }
    assert!(
        matches!(
            p.send(Record::new(TOPIC, b"late".as_slice())),
            Err(SendError::NotInTransaction(_))
        ),
        "sends are refused until the abort"
    );
    assert!(matches!(
        p.begin_transaction(),
        Err(TransactionError::Abortable(_))
    ));
    p.abort_transaction().expect("abort");
    assert_eq!(
        p.statistics().totals.epoch_bumps,
        1,
        "a batch refused after it was sent leaves a gap in its partition's \
         sequences: the abort ends with InitProducerId bumping the epoch"
    );

    p.begin_transaction().unwrap();
    let next = send(&p, 60, "next");
    p.commit_transaction()
        .expect("the next transaction commits");
    assert!(results(&next).iter().all(Result::is_ok));
    assert!(p.close());
}

#[test]
fn a_fenced_end_txn_is_fatal() {
    let c = cluster();
    let bootstrap = c.bootstrap_servers();
    let p = producer(&bootstrap, "fenced");
    p.init_transactions().expect("init");
    p.begin_transaction().unwrap();
    let fs = send(&p, 20, "f");
    assert!(results(&fs).iter().all(Result::is_ok));
    c.request_errors(
        RDKafkaApiKey::EndTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED],
    );
    match p.commit_transaction() {
        Err(TransactionError::Fatal(e)) => {
            assert!(e.to_string().contains("PRODUCER_FENCED"), "{e}")
        }
        other => panic!("a fenced commit: {other:?}"),
    }
    assert!(matches!(
        p.begin_transaction(),
        Err(TransactionError::Fatal(_))
    ));
    assert!(matches!(
        p.abort_transaction(),
        Err(TransactionError::Fatal(_))
    ));
    assert!(matches!(
        p.send(Record::new(TOPIC, b"after".as_slice())),
        Err(SendError::Fatal(_))
    ));
}

#[test]
fn offsets_go_through_retriable_errors_and_a_stale_generation_is_abortable() {
    let c = cluster();
    let bootstrap = c.bootstrap_servers();
    use RDKafkaRespErr::*;
    let p = producer(&bootstrap, "offsets");
    p.init_transactions().expect("init");
    let group = ConsumerGroupMetadata::new("g1");
    c.request_errors(
        RDKafkaApiKey::AddOffsetsToTxn,
        &[
            RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS,
            RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
        ],
    );
    c.request_errors(
        RDKafkaApiKey::TxnOffsetCommit,
        &[
            RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
            RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
        ],
    );
    p.begin_transaction().unwrap();
    let fs = send(&p, 20, "o");
    p.send_offsets_to_transaction([OffsetToCommit::new(TOPIC, 0, 10)], &group)
        .expect("offsets through the errors");
    p.commit_transaction().expect("commit");
    assert!(results(&fs).iter().all(Result::is_ok));

    // The consumer left the group meanwhile: its generation is stale.
    p.begin_transaction().unwrap();
    c.request_errors(
        RDKafkaApiKey::TxnOffsetCommit,
        &[RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION],
    );
    match p.send_offsets_to_transaction(
        [OffsetToCommit::new(TOPIC, 0, 20)],
        &group.clone().member(3, "member-1"),
    ) {
        Err(TransactionError::Abortable(e)) => {
            assert!(e.to_string().contains("ILLEGAL_GENERATION"), "{e}")
        }
        other => panic!("offsets of a stale generation: {other:?}"),
    }
    assert!(matches!(
        p.commit_transaction(),
        Err(TransactionError::Abortable(_))
    ));
    p.abort_transaction().expect("abort");
    p.begin_transaction().unwrap();
    p.send_offsets_to_transaction([OffsetToCommit::new(TOPIC, 0, 30)], &group)
        .expect("offsets of the next transaction");
    p.commit_transaction()
        .expect("the next transaction commits");
    assert!(p.close());
}
