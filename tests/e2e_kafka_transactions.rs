//! Transactions (KIP-98) on Apache Kafka 4.4.0, read back with the Java
//! consumer at `isolation.level=read_committed` (and `read_uncommitted`,
//! to see that what an abort hid was written):
//!
//! - committed transactions are seen whole, aborted ones not at all, on
//!   every partition they touched, in the order sent;
//! - sends and calls outside their place are refused with typed errors;
//! - a second producer with the same `transactional.id` fences the first
//!   (whose open transaction the coordinator aborts) and goes on;
//! - a producer closed inside a transaction aborts it;
//! - consumer offsets sent to a transaction become the group's committed
//!   offsets when it commits, and not when it aborts (read back with
//!   Kafka's `ConsumerGroupCommand`);
//! - the commit finds a new coordinator after the old one is killed.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use kring::{
    ConsumerGroupMetadata, DeliveryFuture, OffsetToCommit, Producer, Record, SendError,
    TransactionError,
};
use kring_testcluster::KafkaCluster;

fn cluster() -> &'static KafkaCluster {
    support::trace::init();
    KafkaCluster::shared(1)
}

fn producer(c: &KafkaCluster, txn_id: &str) -> Producer {
    support::producer_builder()
        .bootstrap(&c.bootstrap())
        .transactional_id(txn_id)
        .linger(Duration::from_millis(5))
        .batch_size(2048)
        .build()
        .expect("producer")
}

/// Sends `n` records `{tag}-{i}` round robin over `partitions`.
fn send_tagged(
    p: &Producer,
    topic: &str,
    partitions: i32,
    tag: &str,
    n: usize,
) -> Vec<DeliveryFuture> {
    (0..n)
        .map(|i| {
            p.send(
                Record::new(topic, format!("{tag}-{i}").as_bytes())
                    .partition(i as i32 % partitions),
            )
            .expect("send inside a transaction")
        })
        .collect()
}

fn all_delivered(fs: &[DeliveryFuture]) {
    for f in fs {
        f.wait_timeout(Duration::from_secs(60))
            .expect("a result")
            .unwrap_or_else(|e| panic!("not delivered: {e}"));
    }
}

/// Per partition, the values in offset order.
fn read(
    c: &KafkaCluster,
    topic: &str,
    partitions: i32,
    isolation: &str,
) -> BTreeMap<i32, Vec<String>> {
    let mut out: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for r in support::read_java_isolated(&c.bootstrap(), topic, partitions, isolation) {
        out.entry(r.partition)
            .or_default()
            .push(String::from_utf8(r.value.expect("a value")).expect("utf-8"));
    }
    out
}

/// What `send_tagged` sent with these tags, per partition, in order.
fn expected(partitions: i32, runs: &[(&str, usize)]) -> BTreeMap<i32, Vec<String>> {
    let mut out: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for (tag, n) in runs {
        for i in 0..*n {
            out.entry(i as i32 % partitions)
                .or_default()
                .push(format!("{tag}-{i}"));
        }
    }
    out
}

#[test]
fn read_committed_sees_committed_transactions_whole_and_aborted_ones_not_at_all() {
    let c = cluster();
    c.create_topic("txn-mixed", 3, 1, &[]).unwrap();
    let p = producer(c, "kring-txn-mixed");
    p.init_transactions().expect("init_transactions");

    p.begin_transaction().unwrap();
    let one = send_tagged(&p, "txn-mixed", 3, "c1", 300);
    p.commit_transaction().expect("commit");
    all_delivered(&one);

    // Aborted after every record was written: they are in the log, and
    // read_committed skips them.
    p.begin_transaction().unwrap();
    let two = send_tagged(&p, "txn-mixed", 3, "a2", 200);
    all_delivered(&two);
    p.abort_transaction().expect("abort");

    p.begin_transaction().unwrap();
    let three = send_tagged(&p, "txn-mixed", 3, "c3", 100);
    p.commit_transaction().expect("commit");
    all_delivered(&three);

    // An empty transaction commits without a request.
    p.begin_transaction().unwrap();
    p.commit_transaction().expect("empty commit");
    p.close();

    assert_eq!(
        read(c, "txn-mixed", 3, "read_committed"),
        expected(3, &[("c1", 300), ("c3", 100)]),
        "read_committed"
    );
    assert_eq!(
        read(c, "txn-mixed", 3, "read_uncommitted"),
        expected(3, &[("c1", 300), ("a2", 200), ("c3", 100)]),
        "read_uncommitted: the aborted records were written"
    );
}

#[test]
fn calls_out_of_place_are_refused() {
    let c = cluster();
    c.create_topic("txn-refused", 1, 1, &[]).unwrap();
    let p = producer(c, "kring-txn-refused");
    let rec = || Record::new("txn-refused", b"x".as_slice());

    assert!(
        matches!(p.send(rec()), Err(SendError::NotInTransaction(_))),
        "send before init_transactions"
    );
    assert!(matches!(
        p.begin_transaction(),
        Err(TransactionError::InvalidState { .. })
    ));
    assert!(matches!(
        p.commit_transaction(),
        Err(TransactionError::InvalidState { .. })
    ));
    p.init_transactions().expect("init_transactions");
    assert!(
        matches!(p.send(rec()), Err(SendError::NotInTransaction(_))),
        "send before begin_transaction"
    );
    assert!(matches!(
        p.abort_transaction(),
        Err(TransactionError::InvalidState { .. })
    ));
    p.begin_transaction().unwrap();
    assert!(matches!(
        p.begin_transaction(),
        Err(TransactionError::InvalidState { .. })
    ));
    let f = p.send(rec()).expect("inside the transaction");
    p.commit_transaction().expect("commit");
    f.wait_timeout(Duration::from_secs(30))
        .unwrap()
        .expect("delivered");
    assert!(
        matches!(p.send(rec()), Err(SendError::NotInTransaction(_))),
        "send after commit"
    );

    let plain = support::producer_builder()
        .bootstrap(&c.bootstrap())
        .build()
        .unwrap();
    assert!(matches!(
        plain.init_transactions(),
        Err(TransactionError::NotTransactional)
    ));
    assert_eq!(
        read(c, "txn-refused", 1, "read_committed"),
        BTreeMap::from([(0, vec!["x".to_owned()])])
    );
}

#[test]
fn a_second_producer_with_the_same_id_fences_the_first() {
    let c = cluster();
    c.create_topic("txn-fenced", 2, 1, &[]).unwrap();
    let old = producer(c, "kring-txn-fenced");
    old.init_transactions().expect("init");
    old.begin_transaction().unwrap();
    let written = send_tagged(&old, "txn-fenced", 2, "old", 50);
    all_delivered(&written);

    // The new producer's init aborts the old one's open transaction and
    // bumps the epoch.
    let new = producer(c, "kring-txn-fenced");
    new.init_transactions()
        .expect("init of the second producer");
    match old.commit_transaction() {
        Err(TransactionError::Fatal(e)) => {
            let s = e.to_string();
            assert!(
                s.contains("PRODUCER_FENCED") || s.contains("INVALID_PRODUCER_EPOCH"),
                "fenced: {s}"
            );
        }
        other => panic!("the fenced producer's commit: {other:?}"),
    }
    assert!(matches!(
        old.begin_transaction(),
        Err(TransactionError::Fatal(_))
    ));

    new.begin_transaction().unwrap();
    let fresh = send_tagged(&new, "txn-fenced", 2, "new", 40);
    new.commit_transaction()
        .expect("commit of the second producer");
    all_delivered(&fresh);
    drop(old);
    new.close();

    assert_eq!(
        read(c, "txn-fenced", 2, "read_committed"),
        expected(2, &[("new", 40)])
    );
}

#[test]
fn closing_inside_a_transaction_aborts_it() {
    let c = cluster();
    c.create_topic("txn-closed", 2, 1, &[]).unwrap();
    let p = producer(c, "kring-txn-closed");
    p.init_transactions().expect("init");
    p.begin_transaction().unwrap();
    let fs = send_tagged(&p, "txn-closed", 2, "open", 60);
    all_delivered(&fs);
    assert!(p.close(), "closed");

    // The next producer with the id starts at once (nothing left open)
    // and its transaction is the only one seen.
    let q = producer(c, "kring-txn-closed");
    q.init_transactions().expect("init");
    q.begin_transaction().unwrap();
    let fs = send_tagged(&q, "txn-closed", 2, "next", 20);
    q.commit_transaction().expect("commit");
    all_delivered(&fs);
    q.close();
    assert_eq!(
        read(c, "txn-closed", 2, "read_committed"),
        expected(2, &[("next", 20)])
    );
}

/// A 3-node cluster: the transaction coordinator (the leader of
/// `__transaction_state`'s one partition) is killed after a transaction's
/// records were written and before its commit. The commit finds the new
/// coordinator and lands; the next transaction goes on with the node
/// still down. Then 30 transactions run while a partition leader and
/// then the coordinator are killed and restarted under them.
#[test]
fn the_commit_finds_the_new_coordinator_after_the_old_one_is_killed() {
    support::trace::init();
    let c = KafkaCluster::start(
        kring_testcluster::ClusterConfig::new(3)
            .prop("broker.session.timeout.ms", "6000")
            .prop("broker.heartbeat.interval.ms", "500"),
    )
    .unwrap_or_else(|e| panic!("cannot start a 3-node Kafka cluster: {e}"));
    c.create_topic("txn-failover", 6, 3, &[]).unwrap();
    let p = producer(&c, "kring-txn-failover");
    p.init_transactions().expect("init");
    p.begin_transaction().unwrap();
    let one = send_tagged(&p, "txn-failover", 6, "t1", 300);
    p.commit_transaction().expect("first commit");
    all_delivered(&one);

    p.begin_transaction().unwrap();
    let two = send_tagged(&p, "txn-failover", 6, "t2", 300);
    all_delivered(&two);
    let coordinator = c.leader_of("__transaction_state", 0).unwrap();
    c.kill(coordinator);
    p.commit_transaction()
        .expect("commit after the coordinator was killed");

    p.begin_transaction().unwrap();
    let three = send_tagged(&p, "txn-failover", 6, "t3", 200);
    p.commit_transaction()
        .expect("a transaction with the node down");
    all_delivered(&three);
    assert!(p.close());
    c.restart(coordinator).unwrap();
    c.wait_all_brokers(Duration::from_secs(60)).unwrap();
    assert_eq!(
        read(&c, "txn-failover", 6, "read_committed"),
        expected(6, &[("t1", 300), ("t2", 300), ("t3", 200)])
    );

    // Then 30 transactions while brokers are killed and restarted under
    // them (a partition leader, then the coordinator). Whatever each call
    // answers, read_committed must end with exactly the records of the
    // transactions whose commit succeeded, each once, in order per
    // partition: exactly-once through failures.
    c.create_topic("txn-chaos", 6, 3, &[]).unwrap();
    let p = support::producer_builder()
        .bootstrap(&c.bootstrap())
        .transactional_id("kring-txn-chaos")
        .linger(Duration::from_millis(5))
        .request_timeout(Duration::from_secs(5))
        .delivery_timeout(Duration::from_secs(30))
        .max_block(Duration::from_secs(30))
        .build()
        .expect("producer");
    p.init_transactions().expect("init");
    let mut committed: Vec<(String, usize)> = Vec::new();
    let mut aborted = 0;
    let mut down: Option<i32> = None;
    for k in 0..30 {
        match k {
            8 => down = Some(c.leader_of("txn-chaos", 0).unwrap()),
            20 => down = Some(c.leader_of("__transaction_state", 0).unwrap()),
            14 | 26 => {
                let n = down.take().expect("a node down");
                c.restart(n).unwrap();
                c.wait_all_brokers(Duration::from_secs(60)).unwrap();
            }
            _ => {}
        }
        if matches!(k, 8 | 20) {
            c.kill(down.expect("chosen"));
        }
        let tag = format!("k{k}");
        p.begin_transaction().expect("begin");
        let fs = send_tagged(&p, "txn-chaos", 6, &tag, 60);
        let outcome = loop {
            match p.commit_transaction() {
                Err(TransactionError::Timeout { .. }) => continue,
                other => break other,
            }
        };
        match outcome {
            Ok(()) => {
                for f in &fs {
                    f.wait_timeout(Duration::from_secs(60))
                        .expect("a result")
                        .unwrap_or_else(|e| panic!("{tag}: committed, yet a record failed: {e}"));
                }
                committed.push((tag, 60));
            }
            Err(TransactionError::Abortable(e)) => {
                tracing::info!(%e, "transaction {k} aborted");
                loop {
                    match p.abort_transaction() {
                        Err(TransactionError::Timeout { .. }) => continue,
                        other => break other.expect("abort"),
                    }
                }
                aborted += 1;
            }
            Err(e) => panic!("transaction {k}: {e}"),
        }
    }
    if let Some(n) = down {
        c.restart(n).unwrap();
    }
    assert!(p.close());
    c.wait_all_brokers(Duration::from_secs(60)).unwrap();
    eprintln!(
        "chaos: {} transactions committed, {aborted} aborted",
        committed.len()
    );
    let runs: Vec<(&str, usize)> = committed.iter().map(|(t, n)| (t.as_str(), *n)).collect();
    assert!(
        committed.len() >= 20,
        "most transactions commit ({aborted} aborted)"
    );
    assert_eq!(
        read(&c, "txn-chaos", 6, "read_committed"),
        expected(6, &runs),
        "exactly the committed transactions, once each ({aborted} aborted)"
    );
}

/// The group's committed offsets, `(topic, partition) -> offset`, as
/// Kafka's `kafka-consumer-groups --describe` prints them.
fn group_offsets(c: &KafkaCluster, group: &str) -> BTreeMap<(String, i32), i64> {
    let out = c
        .tool(
            "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
            &["--describe", "--group", group],
        )
        .unwrap_or_else(|e| panic!("ConsumerGroupCommand: {e}"));
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && f[0] == group)
                .then(|| Some(((f[1].to_owned(), f[2].parse().ok()?), f[3].parse().ok()?)))
                .flatten()
        })
        .collect()
}

#[test]
fn offsets_sent_to_a_transaction_commit_and_abort_with_it() {
    let c = cluster();
    c.create_topic("txn-offsets-in", 2, 1, &[]).unwrap();
    c.create_topic("txn-offsets-out", 1, 1, &[]).unwrap();
    let p = producer(c, "kring-txn-offsets");
    p.init_transactions().expect("init");
    let group = ConsumerGroupMetadata::new("kring-eos-group");
    let want = |a: i64, b: i64| {
        BTreeMap::from([
            (("txn-offsets-in".to_owned(), 0), a),
            (("txn-offsets-in".to_owned(), 1), b),
        ])
    };

    p.begin_transaction().unwrap();
    let out = send_tagged(&p, "txn-offsets-out", 1, "o", 10);
    p.send_offsets_to_transaction(
        [
            OffsetToCommit::new("txn-offsets-in", 0, 42),
            OffsetToCommit::new("txn-offsets-in", 1, 7),
        ],
        &group,
    )
    .expect("offsets into the transaction");
    p.commit_transaction().expect("commit");
    all_delivered(&out);
    assert_eq!(
        group_offsets(c, "kring-eos-group"),
        want(42, 7),
        "committed"
    );

    p.begin_transaction().unwrap();
    let _aborted = send_tagged(&p, "txn-offsets-out", 1, "x", 5);
    p.send_offsets_to_transaction([OffsetToCommit::new("txn-offsets-in", 0, 99)], &group)
        .expect("offsets");
    p.abort_transaction().expect("abort");
    assert_eq!(
        group_offsets(c, "kring-eos-group"),
        want(42, 7),
        "an aborted transaction's offsets are not committed"
    );

    // Offsets alone, no record: the transaction still ends at the
    // coordinator.
    p.begin_transaction().unwrap();
    p.send_offsets_to_transaction([OffsetToCommit::new("txn-offsets-in", 1, 8)], &group)
        .expect("offsets");
    p.commit_transaction().expect("commit of offsets alone");
    assert_eq!(group_offsets(c, "kring-eos-group"), want(42, 8));
    p.close();
    assert_eq!(
        read(c, "txn-offsets-out", 1, "read_committed"),
        expected(1, &[("o", 10)])
    );
}
