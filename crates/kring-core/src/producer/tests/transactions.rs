//! Transactions against kring-mock's transaction coordinator, on
//! simulated time: what read_committed sees after commits and aborts, the
//! order of AddPartitionsToTxn and produce (the mock refuses a batch to a
//! partition not added, as Kafka's verification does), a coordinator that
//! moves, stops or loses an answer, the transaction timeout, a partition
//! that can never be added, close and abort with records unsent, and a
//! send racing a commit.

use std::time::Duration;

use kring_mock::{Fault, TxnState};
use kring_protocol::messages::ApiKey;
use kring_protocol::ErrorCode;

use super::*;
use crate::delivery::DeliveryError;
use crate::error::SendError;
use crate::txn::TransactionError;
use crate::TransactionHandle;

const TXN: &str = "tx-1";

fn txn_cfg() -> Config {
    Config {
        transactional_id: Some(TXN.to_owned()),
        retry_backoff: Duration::from_millis(50),
        ..cfg()
    }
}

/// Drives until `h` finishes (or panics after many steps) and returns its
/// result.
fn finish(sim: &mut MockSim, h: &TransactionHandle) -> Result<(), TransactionError> {
    sim.drive_until(100_000, |_| h.is_done());
    h.wait_timeout(Duration::ZERO)
        .unwrap_or_else(|| panic!("{} did not finish", h.name()))
}

fn ready(nodes: i32, partitions: u32) -> MockSim {
    ready_with(txn_cfg(), cluster(nodes, partitions))
}

fn ready_with(config: Config, builder: MockClusterBuilder) -> MockSim {
    let mut sim = sim_on(config, builder);
    let h = sim.init_transactions().expect("init");
    finish(&mut sim, &h).expect("init_transactions");
    sim
}

fn committed(sim: &MockSim, p: i32) -> Vec<Vec<u8>> {
    sim.cluster
        .read_committed("t", p)
        .expect("partition")
        .into_iter()
        .map(|r| r.value.expect("value").to_vec())
        .collect()
}

fn send_n(sim: &mut MockSim, partitions: i32, tag: &str, n: usize) -> Vec<crate::DeliveryHandle> {
    (0..n)
        .map(|i| {
            sim.send(
                "t",
                Some(i as i32 % partitions),
                None,
                Some(format!("{tag}{i}").as_bytes()),
            )
            .expect("send in a transaction")
        })
        .collect()
}

fn values(partitions: i32, p: i32, runs: &[(&str, usize)]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (tag, n) in runs {
        for i in 0..*n {
            if i as i32 % partitions == p {
                out.push(format!("{tag}{i}").into_bytes());
            }
        }
    }
    out
}

/// A transaction of `n` records `{tag}{i}` over `partitions` partitions
/// commits, and read_committed holds exactly its records (the producer
/// goes on after whatever the test did before).
fn the_next_transaction_commits(sim: &mut MockSim, partitions: i32, tag: &str, n: usize) {
    sim.begin_transaction().unwrap();
    let next = send_n(sim, partitions, tag, n);
    let h = sim.commit_transaction().unwrap();
    finish(sim, &h).expect("the next transaction");
    assert!(next.iter().all(|h| h.wait().is_ok()));
    for p in 0..partitions {
        assert_eq!(committed(sim, p), values(partitions, p, &[(tag, n)]));
    }
}

/// Committed transactions are seen whole, aborted ones not at all, on
/// every partition, on three brokers.
#[test]
fn read_committed_sees_commits_whole_and_aborts_not_at_all() {
    let mut sim = ready(3, 6);
    sim.begin_transaction().unwrap();
    let one = send_n(&mut sim, 6, "c", 60);
    let h = sim.commit_transaction().unwrap();
    finish(&mut sim, &h).expect("commit");
    assert!(one.iter().all(|h| h.wait().is_ok()));
    let st = sim.cluster.transaction_state(TXN).expect("known");
    assert_eq!(st.state, TxnState::CompleteCommit);

    sim.begin_transaction().unwrap();
    let two = send_n(&mut sim, 6, "a", 30);
    sim.drive_until(100_000, |_| two.iter().all(|h| h.try_result().is_some()));
    assert!(
        two.iter().all(|h| h.wait().is_ok()),
        "written before the abort"
    );
    let h = sim.abort_transaction().unwrap();
    finish(&mut sim, &h).expect("abort");
    assert_eq!(
        sim.cluster.transaction_state(TXN).unwrap().state,
        TxnState::CompleteAbort
    );
    for p in 0..6 {
        assert_eq!(
            committed(&sim, p),
            values(6, p, &[("c", 60)]),
            "partition {p}"
        );
        assert_eq!(
            log(&sim, p).len(),
            values(6, p, &[("c", 60), ("a", 30)]).len(),
            "the aborted records are in the log"
        );
    }
    assert_eq!(
        sim.core.stats().epoch_bumps,
        0,
        "a clean abort needs no bump"
    );
}

/// AddPartitionsToTxn refused while the last transaction completes
/// (CONCURRENT_TRANSACTIONS) and while the coordinator loads: the
/// partitions' batches wait (the mock would refuse one sent before its
/// partition was added), then go, and the commit lands.
#[test]
fn batches_wait_until_their_partition_is_added() {
    let mut sim = ready(1, 3);
    sim.cluster.inject(
        Fault::error(
            ApiKey::AddPartitionsToTxn,
            ErrorCode::CONCURRENT_TRANSACTIONS,
        )
        .times(2),
    );
    sim.cluster.inject(
        Fault::error(
            ApiKey::AddPartitionsToTxn,
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
        )
        .times(3),
    );
    sim.begin_transaction().unwrap();
    let hs = send_n(&mut sim, 3, "w", 30);
    let h = sim.commit_transaction().unwrap();
    finish(&mut sim, &h).expect("commit");
    for h in &hs {
        h.wait().expect("delivered once its partition was added");
    }
    for p in 0..3 {
        assert_eq!(committed(&sim, p), values(3, p, &[("w", 30)]));
    }
}

/// The coordinator moves to another broker mid-transaction: EndTxn to the
/// old one is answered NOT_COORDINATOR, the new one is found and commits.
#[test]
fn a_moved_coordinator_is_found_again() {
    let mut sim = ready(3, 3);
    let old = sim.cluster.transaction_coordinator(TXN).unwrap();
    sim.begin_transaction().unwrap();
    let hs = send_n(&mut sim, 3, "m", 12);
    sim.drive_until(100_000, |_| hs.iter().all(|h| h.try_result().is_some()));
    let new = old % 3 + 1;
    sim.cluster.move_transaction_coordinator(TXN, new).unwrap();
    let h = sim.commit_transaction().unwrap();
    finish(&mut sim, &h).expect("commit at the new coordinator");
    let st = sim.cluster.transaction_state(TXN).unwrap();
    assert_eq!((st.state, st.coordinator), (TxnState::CompleteCommit, new));
    for p in 0..3 {
        assert_eq!(committed(&sim, p), values(3, p, &[("m", 12)]));
    }
}

/// The coordinator's broker stops before the commit: the commit waits
/// (FindCoordinator answers COORDINATOR_NOT_AVAILABLE, connects fail) and
/// lands when the broker is back.
#[test]
fn a_stopped_coordinator_holds_the_commit_until_it_is_back() {
    let mut sim = ready(3, 3);
    let coord = sim.cluster.transaction_coordinator(TXN).unwrap();
    sim.begin_transaction().unwrap();
    let hs = send_n(&mut sim, 3, "s", 9);
    sim.drive_until(100_000, |_| hs.iter().all(|h| h.try_result().is_some()));
    stop(&sim, coord);
    let h = sim.commit_transaction().unwrap();
    sim.run_for(Duration::from_secs(5));
    assert!(!h.is_done(), "no coordinator, no commit");
    start(&sim, coord);
    finish(&mut sim, &h).expect("commit once the coordinator is back");
    for p in 0..3 {
        assert_eq!(committed(&sim, p), values(3, p, &[("s", 9)]));
    }
}

/// The coordinator's broker dies while nothing transactional is on the
/// wire, and the coordinator moves: the commit cannot connect to the old
/// one, which must send the producer back to FindCoordinator (a killed
/// Kafka coordinator's successor is found only by asking).
#[test]
fn an_unreachable_coordinator_is_looked_up_again() {
    let mut sim = ready(3, 3);
    let old = sim.cluster.transaction_coordinator(TXN).unwrap();
    sim.begin_transaction().unwrap();
    let hs = send_n(&mut sim, 3, "k", 9);
    sim.drive_until(100_000, |_| hs.iter().all(|h| h.try_result().is_some()));
    let new = old % 3 + 1;
    stop(&sim, old);
    sim.disconnect_node(old);
    sim.cluster.move_transaction_coordinator(TXN, new).unwrap();
    let h = sim.commit_transaction().unwrap();
    finish(&mut sim, &h).expect("commit at the new coordinator");
    assert_eq!(sim.cluster.transaction_state(TXN).unwrap().coordinator, new);
    for p in 0..3 {
        assert_eq!(committed(&sim, p), values(3, p, &[("k", 9)]));
    }
}

/// EndTxn applied but its answer lost (the connection drops): the retry
/// finds the transaction committed and is answered NONE; nothing is
/// committed twice or lost.
#[test]
fn end_txn_answer_lost_is_retried() {
    let mut sim = ready(1, 2);
    sim.cluster
        .inject(Fault::drop_after_apply(ApiKey::EndTxn).times(1));
    sim.begin_transaction().unwrap();
    let hs = send_n(&mut sim, 2, "l", 10);
    let h = sim.commit_transaction().unwrap();
    finish(&mut sim, &h).expect("commit after a lost answer");
    assert!(hs.iter().all(|h| h.wait().is_ok()));
    sim.begin_transaction().unwrap();
    let more = send_n(&mut sim, 2, "n", 4);
    let h = sim.commit_transaction().unwrap();
    finish(&mut sim, &h).expect("next commit");
    assert!(more.iter().all(|h| h.wait().is_ok()));
    for p in 0..2 {
        assert_eq!(committed(&sim, p), values(2, p, &[("l", 10), ("n", 4)]));
    }
}

/// A transaction left open past `transaction.timeout.ms` is aborted by the
/// coordinator, which bumps the epoch: the late commit is fenced, fatal,
/// and later sends are refused.
#[test]
fn a_transaction_past_its_timeout_is_fenced() {
    let config = Config {
        transaction_timeout: Duration::from_secs(1),
        ..txn_cfg()
    };
    let mut sim = ready_with(config, cluster(1, 1));
    sim.begin_transaction().unwrap();
    let hs = send_n(&mut sim, 1, "t", 3);
    sim.drive_until(100_000, |_| hs.iter().all(|h| h.try_result().is_some()));
    sim.run_for(Duration::from_secs(3));
    let h = sim.commit_transaction().unwrap();
    match finish(&mut sim, &h) {
        Err(TransactionError::Fatal(e)) => {
            let s = e.to_string();
            assert!(s.contains("FENCED") || s.contains("EPOCH"), "{s}");
        }
        other => panic!("a commit after the timeout: {other:?}"),
    }
    assert!(matches!(
        sim.send("t", Some(0), None, Some(b"x")),
        Err(SendError::Fatal(_))
    ));
    assert!(committed(&sim, 0).is_empty());
}

/// A partition that can never be added (AddPartitionsToTxn keeps failing
/// with a retriable error): its records fail at `delivery.timeout.ms`,
/// the transaction becomes abortable, the abort needs no EndTxn (nothing
/// was added), and the next transaction commits.
#[test]
fn records_of_a_partition_never_added_time_out_and_the_abort_recovers() {
    let config = Config {
        delivery_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(1),
        linger: Duration::from_millis(5),
        ..txn_cfg()
    };
    let mut sim = ready_with(config, cluster(1, 1));
    let stuck = sim.cluster.inject(
        Fault::error(
            ApiKey::AddPartitionsToTxn,
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
        )
        .always(),
    );
    sim.begin_transaction().unwrap();
    let hs = send_n(&mut sim, 1, "x", 5);
    sim.drive_until(100_000, |_| hs.iter().all(|h| h.try_result().is_some()));
    for h in &hs {
        assert!(
            matches!(h.wait(), Err(DeliveryError::Timeout { .. })),
            "{:?}",
            h.wait()
        );
    }
    let h = sim.commit_transaction();
    assert!(
        matches!(h, Err(TransactionError::Abortable(_))),
        "commit: {h:?}"
    );
    sim.cluster.remove_fault(stuck);
    let h = sim.abort_transaction().unwrap();
    finish(&mut sim, &h).expect("abort");
    sim.begin_transaction().unwrap();
    let next = send_n(&mut sim, 1, "y", 3);
    let h = sim.commit_transaction().unwrap();
    finish(&mut sim, &h).expect("the next transaction");
    assert!(next.iter().all(|h| h.wait().is_ok()));
    assert_eq!(committed(&sim, 0), values(1, 0, &[("y", 3)]));
}

/// An abort before the records were sent fails each of them with
/// `Aborted` (not persisted), once; nothing reaches read_committed.
#[test]
fn abort_fails_the_records_not_sent() {
    let config = Config {
        linger: Duration::from_secs(10),
        ..txn_cfg()
    };
    let mut sim = ready_with(config, cluster(1, 2));
    sim.begin_transaction().unwrap();
    let hs = send_n(&mut sim, 2, "u", 8);
    let h = sim.abort_transaction().unwrap();
    finish(&mut sim, &h).expect("abort");
    for h in &hs {
        match h.wait() {
            Err(DeliveryError::Aborted { status, .. }) => {
                assert_eq!(status, crate::delivery::MessageStatus::NotPersisted)
            }
            other => panic!("an unsent record of an aborted transaction: {other:?}"),
        }
    }
    for p in 0..2 {
        assert!(committed(&sim, p).is_empty());
        assert!(log(&sim, p).is_empty(), "nothing was sent");
    }
}

/// Close inside a transaction aborts it (as the Java client's sender does
/// at shutdown): the coordinator ends it, read_committed sees nothing, and
/// the core finishes.
#[test]
fn close_inside_a_transaction_aborts_it() {
    let mut sim = ready(1, 2);
    sim.begin_transaction().unwrap();
    let hs = send_n(&mut sim, 2, "o", 6);
    sim.drive_until(100_000, |_| hs.iter().all(|h| h.try_result().is_some()));
    let c = sim.close();
    sim.drive_until(100_000, |s| s.core.is_finished());
    assert!(c.is_done());
    assert_eq!(
        sim.cluster.transaction_state(TXN).unwrap().state,
        TxnState::CompleteAbort
    );
    for p in 0..2 {
        assert!(committed(&sim, p).is_empty());
    }
}

/// A send after `commit_transaction` was called: to a partition whose
/// batch is still open it joins that batch, so the transaction (it was
/// sent before the commit returned); one that needs a new batch is
/// refused at once. Nothing is left without a result.
#[test]
fn a_send_racing_the_commit_joins_an_open_batch_or_is_refused() {
    let mut sim = ready(1, 2);
    sim.begin_transaction().unwrap();
    let first = sim.send("t", Some(0), None, Some(b"first")).unwrap();
    let h = sim.commit_transaction().unwrap();
    let joined = sim.send("t", Some(0), None, Some(b"joined")).unwrap();
    assert!(matches!(
        sim.send("t", Some(1), None, Some(b"refused")),
        Err(SendError::NotInTransaction(_))
    ));
    finish(&mut sim, &h).expect("commit");
    assert!(first.wait().is_ok() && joined.wait().is_ok());
    assert_eq!(
        committed(&sim, 0),
        vec![b"first".to_vec(), b"joined".to_vec()]
    );
    assert!(committed(&sim, 1).is_empty());
    assert!(matches!(
        sim.send("t", Some(0), None, Some(b"after")),
        Err(SendError::NotInTransaction(_))
    ));
}

/// Frames of `key` the core transmitted so far.
fn sent(sim: &MockSim, key: ApiKey) -> usize {
    sim.transmitted.iter().filter(|t| t.2 == key as i16).count()
}

/// A refused call says which call and where the producer is; each
/// operation's handle is named after its call.
#[test]
fn refusals_name_the_call_and_the_state() {
    let mut sim = sim_on(txn_cfg(), cluster(1, 1));
    match sim.begin_transaction() {
        Err(TransactionError::InvalidState { op, state }) => {
            assert_eq!(
                (op, state),
                ("begin_transaction", "before init_transactions")
            )
        }
        other => panic!("begin before init: {other:?}"),
    }
    let h = sim.init_transactions().unwrap();
    assert_eq!(h.name(), "init_transactions");
    finish(&mut sim, &h).expect("init");
    match sim.commit_transaction() {
        Err(TransactionError::InvalidState { op, state }) => {
            assert_eq!(
                (op, state),
                ("commit_transaction", "with no transaction begun")
            )
        }
        other => panic!("commit with no transaction: {other:?}"),
    }
    match sim.send("t", Some(0), None, Some(b"x")) {
        Err(SendError::NotInTransaction(state)) => {
            assert_eq!(state, "with no transaction begun")
        }
        other => panic!("a send outside a transaction: {other:?}"),
    }
    sim.begin_transaction().unwrap();
    let h = sim.commit_transaction().unwrap();
    assert_eq!(h.name(), "commit_transaction");
    match sim.abort_transaction() {
        Err(TransactionError::InvalidState { op, state }) => {
            assert_eq!(
                (op, state),
                ("abort_transaction", "while the transaction commits")
            )
        }
        other => panic!("abort while committing: {other:?}"),
    }
    finish(&mut sim, &h).expect("commit");
    sim.begin_transaction().unwrap();
    let h = sim.abort_transaction().unwrap();
    assert_eq!(h.name(), "abort_transaction");
    finish(&mut sim, &h).expect("abort");
}

/// A partition joins a transaction once: a later batch to it in the same
/// transaction sends no AddPartitionsToTxn; the next transaction adds it
/// again.
#[test]
fn a_partition_is_added_once_per_transaction() {
    let mut sim = ready(1, 2);
    sim.begin_transaction().unwrap();
    let a = sim.send("t", Some(0), None, Some(b"a")).unwrap();
    sim.drive_until(100_000, |_| a.try_result().is_some());
    assert_eq!(requests(&sim, ApiKey::AddPartitionsToTxn), 1);
    let b = sim.send("t", Some(0), None, Some(b"b")).unwrap();
    let h = sim.commit_transaction().unwrap();
    finish(&mut sim, &h).expect("commit");
    assert!(a.wait().is_ok() && b.wait().is_ok());
    assert_eq!(
        requests(&sim, ApiKey::AddPartitionsToTxn),
        1,
        "partition 0 was in the transaction already"
    );
    sim.begin_transaction().unwrap();
    let c = sim.send("t", Some(0), None, Some(b"c")).unwrap();
    let h = sim.commit_transaction().unwrap();
    finish(&mut sim, &h).expect("second commit");
    assert!(c.wait().is_ok());
    assert_eq!(requests(&sim, ApiKey::AddPartitionsToTxn), 2);
    assert_eq!(
        committed(&sim, 0),
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );
}

/// A record that fails for good while the transaction commits fails the
/// commit (abortable) instead of committing without it; the abort then
/// recovers and the next transaction commits.
#[test]
fn a_record_failing_during_the_commit_fails_the_commit() {
    let config = Config {
        linger: Duration::from_secs(10),
        ..txn_cfg()
    };
    let mut sim = ready_with(config, cluster(1, 2));
    fail_produce(&sim, 1, ErrorCode::TOPIC_AUTHORIZATION_FAILED, 1);
    sim.begin_transaction().unwrap();
    let hs = send_n(&mut sim, 2, "f", 4);
    let h = sim.commit_transaction().unwrap();
    match finish(&mut sim, &h) {
        Err(TransactionError::Abortable(e)) => {
            assert!(e.to_string().contains("AUTHORIZATION"), "{e}")
        }
        other => panic!("a commit with a failed record: {other:?}"),
    }
    assert!(hs[1].wait().is_err());
    assert_eq!(
        sim.cluster.transaction_state(TXN).unwrap().state,
        TxnState::Ongoing,
        "no EndTxn"
    );
    let h = sim.abort_transaction().unwrap();
    finish(&mut sim, &h).expect("abort");
    the_next_transaction_commits(&mut sim, 2, "g", 4);
}

/// Close while an abort (after an abortable error) runs lets that abort
/// finish: its handle succeeds, the coordinator ends the transaction.
#[test]
fn close_while_aborting_after_an_error_lets_the_abort_finish() {
    let mut sim = ready(1, 2);
    fail_produce(&sim, 1, ErrorCode::TOPIC_AUTHORIZATION_FAILED, 1);
    sim.begin_transaction().unwrap();
    let hs = send_n(&mut sim, 2, "e", 4);
    sim.drive_until(100_000, |_| hs.iter().all(|h| h.try_result().is_some()));
    assert!(matches!(
        sim.commit_transaction(),
        Err(TransactionError::Abortable(_))
    ));
    let h = sim.abort_transaction().unwrap();
    let c = sim.close();
    sim.drive_until(100_000, |s| s.core.is_finished());
    assert!(c.is_done());
    match h.wait_timeout(Duration::ZERO) {
        Some(Ok(())) => {}
        other => panic!("the abort a close overtook: {other:?}"),
    }
    // Ended (then bumped: the refused batch left its sequences behind).
    assert_ne!(
        sim.cluster.transaction_state(TXN).unwrap().state,
        TxnState::Ongoing
    );
    for p in 0..2 {
        assert!(committed(&sim, p).is_empty());
    }
}

/// Begins a transaction whose partitions the coordinator refuses with
/// `code` (INVALID_PRODUCER_ID_MAPPING or UNKNOWN_PRODUCER_ID): its
/// records fail, and the commit is
/// refused as abortable.
fn refuse_partitions_for_an_unknown_producer(sim: &mut MockSim, code: ErrorCode) {
    sim.cluster
        .inject(Fault::error(ApiKey::AddPartitionsToTxn, code));
    sim.begin_transaction().unwrap();
    let hs = send_n(sim, 2, "r", 4);
    sim.drive_until(100_000, |_| hs.iter().all(|h| h.try_result().is_some()));
    for h in &hs {
        assert!(
            matches!(h.wait(), Err(DeliveryError::Aborted { .. })),
            "{:?}",
            h.wait()
        );
    }
    assert!(matches!(
        sim.commit_transaction(),
        Err(TransactionError::Abortable(_))
    ));
}

/// AddPartitionsToTxn refused because the coordinator does not know the
/// producer: the abort (no EndTxn: nothing was added) ends with an epoch
/// bump (InitProducerId with the current id and epoch), and the next
/// transaction commits under the new epoch.
#[test]
fn a_partition_refused_for_an_unknown_producer_is_aborted_with_an_epoch_bump() {
    for code in [
        ErrorCode::INVALID_PRODUCER_ID_MAPPING,
        ErrorCode::UNKNOWN_PRODUCER_ID,
    ] {
        refused_for_an_unknown_producer_then_bumped(code);
    }
}

fn refused_for_an_unknown_producer_then_bumped(code: ErrorCode) {
    let mut sim = ready(1, 2);
    let before = sim.cluster.transaction_state(TXN).unwrap();
    refuse_partitions_for_an_unknown_producer(&mut sim, code);
    let h = sim.abort_transaction().unwrap();
    finish(&mut sim, &h).expect("abort");
    assert_eq!(sim.core.stats().epoch_bumps, 1);
    assert_eq!(requests(&sim, ApiKey::EndTxn), 0, "nothing was added");
    let after = sim.cluster.transaction_state(TXN).unwrap();
    assert_eq!(
        (after.producer_id, after.producer_epoch),
        (before.producer_id, before.producer_epoch + 1)
    );
    sim.begin_transaction().unwrap();
    let next = send_n(&mut sim, 2, "n", 4);
    let h = sim.commit_transaction().unwrap();
    finish(&mut sim, &h).expect("the next transaction, bumped");
    assert!(next.iter().all(|h| h.wait().is_ok()));
    for p in 0..2 {
        assert_eq!(committed(&sim, p), values(2, p, &[("n", 4)]));
    }
}

/// The bump needs InitProducerId v3 (KIP-360): a coordinator capped at v3
/// bumps; one capped at v2 cannot, and the abort is fatal.
#[test]
fn an_epoch_bump_needs_init_producer_id_v3() {
    let mut sim = sim_on(txn_cfg(), cluster(1, 2));
    sim.cluster.set_max_version(ApiKey::InitProducerId, Some(3));
    let h = sim.init_transactions().unwrap();
    finish(&mut sim, &h).expect("init");
    refuse_partitions_for_an_unknown_producer(&mut sim, ErrorCode::INVALID_PRODUCER_ID_MAPPING);
    let h = sim.abort_transaction().unwrap();
    finish(&mut sim, &h).expect("abort with a v3 bump");
    assert_eq!(sim.core.stats().epoch_bumps, 1);

    let mut sim = sim_on(txn_cfg(), cluster(1, 2));
    sim.cluster.set_max_version(ApiKey::InitProducerId, Some(2));
    let h = sim.init_transactions().unwrap();
    finish(&mut sim, &h).expect("init at v2");
    refuse_partitions_for_an_unknown_producer(&mut sim, ErrorCode::INVALID_PRODUCER_ID_MAPPING);
    let h = sim.abort_transaction().unwrap();
    match finish(&mut sim, &h) {
        Err(TransactionError::Fatal(e)) => {
            assert!(e.to_string().contains("UNSUPPORTED_VERSION"), "{e}")
        }
        other => panic!("a bump against InitProducerId v2: {other:?}"),
    }
}

/// The oldest versions a transaction takes (FindCoordinator v1 with its
/// key in the top-level field, InitProducerId, AddPartitionsToTxn and
/// EndTxn v0) commit.
#[test]
fn the_oldest_transactional_versions_commit() {
    let caps = [
        (ApiKey::FindCoordinator, 1),
        (ApiKey::InitProducerId, 0),
        (ApiKey::AddPartitionsToTxn, 0),
        (ApiKey::EndTxn, 0),
    ];
    let mut sim = sim_on(txn_cfg(), cluster(1, 2));
    for (key, v) in caps {
        sim.cluster.set_max_version(key, Some(v));
    }
    let h = sim.init_transactions().unwrap();
    finish(&mut sim, &h).expect("init");
    sim.begin_transaction().unwrap();
    let hs = send_n(&mut sim, 2, "o", 6);
    let h = sim.commit_transaction().unwrap();
    finish(&mut sim, &h).expect("commit");
    assert!(hs.iter().all(|h| h.wait().is_ok()));
    for p in 0..2 {
        assert_eq!(committed(&sim, p), values(2, p, &[("o", 6)]));
    }
    for (key, v) in caps {
        assert!(sim.transmitted.iter().any(|t| t.2 == key as i16));
        assert!(
            sim.transmitted
                .iter()
                .all(|t| t.2 != key as i16 || t.3 == v),
            "{key:?} at v{v}"
        );
    }
}

/// FindCoordinator v0 cannot name a transaction coordinator (no key
/// type): init_transactions is fatal.
#[test]
fn find_coordinator_v0_is_fatal_for_transactions() {
    let mut sim = sim_on(txn_cfg(), cluster(1, 1));
    sim.cluster
        .set_max_version(ApiKey::FindCoordinator, Some(0));
    let h = sim.init_transactions().unwrap();
    match finish(&mut sim, &h) {
        Err(TransactionError::Fatal(e)) => {
            assert!(e.to_string().contains("UNSUPPORTED_VERSION"), "{e}")
        }
        other => panic!("init against FindCoordinator v0: {other:?}"),
    }
    assert_eq!(sent(&sim, ApiKey::FindCoordinator), 0);
}

/// An abort while a batch waits for its retry fails it; the batch was
/// sent, so its partition's sequences are ahead of the broker's and the
/// abort ends with an epoch bump (after EndTxn); the next transaction
/// commits on that partition.
#[test]
fn an_abort_with_a_batch_awaiting_its_retry_bumps_the_epoch() {
    let config = Config {
        retry_backoff: Duration::from_secs(10),
        retry_backoff_max: Duration::from_secs(10),
        ..txn_cfg()
    };
    let mut sim = ready_with(config, cluster(1, 2));
    let f = fail_produce(&sim, 0, ErrorCode::NOT_ENOUGH_REPLICAS, 1);
    sim.begin_transaction().unwrap();
    let hs = send_n(&mut sim, 2, "q", 4);
    sim.drive_until(100_000, |s| {
        !s.cluster.fault_pending(f) && hs[1].try_result().is_some()
    });
    sim.run_for(Duration::from_millis(100));
    assert!(hs[0].try_result().is_none(), "waiting for its retry");
    let h = sim.abort_transaction().unwrap();
    finish(&mut sim, &h).expect("abort");
    assert!(matches!(hs[0].wait(), Err(DeliveryError::Aborted { .. })));
    assert!(hs[1].wait().is_ok());
    assert_eq!(requests(&sim, ApiKey::EndTxn), 1);
    assert_eq!(sim.core.stats().epoch_bumps, 1);
    let st = sim.cluster.transaction_state(TXN).unwrap();
    assert_eq!((st.state, st.producer_epoch), (TxnState::Empty, 1));
    the_next_transaction_commits(&mut sim, 2, "z", 4);
}

/// After a fatal error (EndTxn refused for authorization) nothing more
/// goes to the coordinator.
#[test]
fn after_a_fatal_error_nothing_more_goes_to_the_coordinator() {
    let mut sim = ready(1, 1);
    sim.cluster.inject(
        Fault::error(
            ApiKey::EndTxn,
            ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        )
        .always(),
    );
    sim.begin_transaction().unwrap();
    let hs = send_n(&mut sim, 1, "a", 2);
    let h = sim.commit_transaction().unwrap();
    assert!(matches!(
        finish(&mut sim, &h),
        Err(TransactionError::Fatal(_))
    ));
    assert!(hs.iter().all(|h| h.wait().is_ok()));
    let keys = [
        ApiKey::FindCoordinator,
        ApiKey::InitProducerId,
        ApiKey::AddPartitionsToTxn,
        ApiKey::EndTxn,
    ];
    let before: Vec<usize> = keys.iter().map(|&k| sent(&sim, k)).collect();
    sim.run_for(Duration::from_secs(5));
    let after: Vec<usize> = keys.iter().map(|&k| sent(&sim, k)).collect();
    assert_eq!(before, after);
    assert_eq!(after[3], 1);
}

/// A refused EndTxn is retried after `retry.backoff.ms`, growing, not at
/// once.
#[test]
fn transactional_retries_wait_for_the_backoff() {
    let mut sim = ready(1, 1);
    let f = sim
        .cluster
        .inject(Fault::error(ApiKey::EndTxn, ErrorCode::CONCURRENT_TRANSACTIONS).always());
    sim.begin_transaction().unwrap();
    let hs = send_n(&mut sim, 1, "b", 2);
    sim.drive_until(100_000, |_| hs.iter().all(|h| h.try_result().is_some()));
    let h = sim.commit_transaction().unwrap();
    sim.run_for(Duration::from_secs(1));
    let n = requests(&sim, ApiKey::EndTxn);
    // 50 ms doubling (±20%): 1 + about 4 retries in a second.
    assert!((2..=8).contains(&n), "{n} EndTxn in a second");
    sim.cluster.remove_fault(f);
    finish(&mut sim, &h).expect("commit");
    assert_eq!(committed(&sim, 0), values(1, 0, &[("b", 2)]));
}

/// AddPartitionsToTxn lost with its connection: asked again, the
/// partitions are added and the transaction commits.
#[test]
fn a_lost_add_partitions_is_asked_again() {
    let mut sim = ready(1, 2);
    sim.cluster
        .inject(Fault::drop_before_apply(ApiKey::AddPartitionsToTxn));
    sim.begin_transaction().unwrap();
    let hs = send_n(&mut sim, 2, "l", 6);
    let h = sim.commit_transaction().unwrap();
    finish(&mut sim, &h).expect("commit");
    assert!(hs.iter().all(|h| h.wait().is_ok()));
    assert_eq!(requests(&sim, ApiKey::AddPartitionsToTxn), 2);
    for p in 0..2 {
        assert_eq!(committed(&sim, p), values(2, p, &[("l", 6)]));
    }
}

/// Losing the connection to a broker that is not the coordinator does
/// not send the producer back to FindCoordinator.
#[test]
fn losing_another_broker_keeps_the_coordinator() {
    let mut sim = ready(3, 3);
    let coord = sim.cluster.transaction_coordinator(TXN).unwrap();
    let other = coord % 3 + 1;
    assert_eq!(sent(&sim, ApiKey::FindCoordinator), 1);
    sim.begin_transaction().unwrap();
    let hs = send_n(&mut sim, 3, "k", 6);
    sim.drive_until(100_000, |_| hs.iter().all(|h| h.try_result().is_some()));
    sim.disconnect_node(other);
    sim.run_for(Duration::from_secs(1));
    let h = sim.commit_transaction().unwrap();
    finish(&mut sim, &h).expect("commit");
    assert_eq!(sent(&sim, ApiKey::FindCoordinator), 1);
    for p in 0..3 {
        assert_eq!(committed(&sim, p), values(3, p, &[("k", 6)]));
    }
}

/// FindCoordinator answered COORDINATOR_LOAD_IN_PROGRESS, then
/// NOT_COORDINATOR: both are retried, and init_transactions succeeds.
#[test]
fn find_coordinator_retries_a_loading_or_moved_coordinator() {
    let mut sim = sim_on(txn_cfg(), cluster(1, 1));
    sim.cluster.inject(Fault::error(
        ApiKey::FindCoordinator,
        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
    ));
    sim.cluster
        .inject(Fault::error(ApiKey::FindCoordinator, ErrorCode::NOT_COORDINATOR).times(2));
    let h = sim.init_transactions().unwrap();
    finish(&mut sim, &h).expect("init");
    assert_eq!(sent(&sim, ApiKey::FindCoordinator), 3);
}

/// Answers of the transactional APIs from their KIP-219 versions on
/// (InitProducerId, AddPartitionsToTxn and EndTxn v1, FindCoordinator
/// v2) throttle the connection they came on: nothing more is written to
/// it until the throttle ends.
#[test]
fn throttled_transactional_answers_hold_the_connection() {
    let wait = Duration::from_millis(500);
    let mut sim = sim_on(txn_cfg(), cluster(1, 2));
    // FindCoordinator goes to the bootstrap connection, and nothing else
    // is due there: a throttled COORDINATOR_NOT_AVAILABLE holds its retry.
    sim.cluster.inject(Fault::error(
        ApiKey::FindCoordinator,
        ErrorCode::COORDINATOR_NOT_AVAILABLE,
    ));
    sim.cluster
        .inject(Fault::throttle(ApiKey::FindCoordinator, wait));
    let h = sim.init_transactions().unwrap();
    sim.drive_until(100_000, |s| sent(s, ApiKey::FindCoordinator) == 1);
    sim.run_for(wait / 2);
    assert_eq!(sent(&sim, ApiKey::FindCoordinator), 1, "FindCoordinator");
    finish(&mut sim, &h).expect("init");

    // The batch waits for its partition, then for the throttle.
    sim.cluster
        .inject(Fault::throttle(ApiKey::AddPartitionsToTxn, wait));
    sim.begin_transaction().unwrap();
    let a = sim.send("t", Some(0), None, Some(b"a")).unwrap();
    sim.drive_until(100_000, |s| sent(s, ApiKey::AddPartitionsToTxn) == 1);
    sim.run_for(wait / 2);
    assert_eq!(sent(&sim, ApiKey::Produce), 0, "AddPartitionsToTxn");
    sim.cluster.inject(Fault::throttle(ApiKey::EndTxn, wait));
    let h = sim.commit_transaction().unwrap();
    finish(&mut sim, &h).expect("commit");
    assert!(a.wait().is_ok());

    sim.begin_transaction().unwrap();
    let b = sim.send("t", Some(0), None, Some(b"b")).unwrap();
    sim.run_for(wait / 4);
    assert_eq!(sent(&sim, ApiKey::AddPartitionsToTxn), 1, "EndTxn");
    let h = sim.commit_transaction().unwrap();
    finish(&mut sim, &h).expect("second commit");
    assert!(b.wait().is_ok());

    // The epoch bump ending an abort.
    sim.cluster
        .inject(Fault::throttle(ApiKey::InitProducerId, wait));
    refuse_partitions_for_an_unknown_producer(&mut sim, ErrorCode::UNKNOWN_PRODUCER_ID);
    let h = sim.abort_transaction().unwrap();
    finish(&mut sim, &h).expect("abort");
    let n = sent(&sim, ApiKey::AddPartitionsToTxn);
    sim.begin_transaction().unwrap();
    let c = sim.send("t", Some(0), None, Some(b"c")).unwrap();
    sim.run_for(wait / 4);
    assert_eq!(sent(&sim, ApiKey::AddPartitionsToTxn), n, "InitProducerId");
    let h = sim.commit_transaction().unwrap();
    finish(&mut sim, &h).expect("third commit");
    assert!(c.wait().is_ok());
    assert_eq!(
        committed(&sim, 0),
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );
}

/// A FindCoordinator v1 answer's throttle time is not the client's to
/// keep (the Java client's `shouldClientThrottle`: v2+): a broker of that
/// version delayed the answer itself, so the next request goes at once.
#[test]
fn find_coordinator_v1_throttle_is_not_kept_by_the_client() {
    let wait = Duration::from_millis(500);
    let mut sim = sim_on(txn_cfg(), cluster(1, 1));
    sim.cluster
        .set_max_version(ApiKey::FindCoordinator, Some(1));
    sim.cluster.inject(Fault::error(
        ApiKey::FindCoordinator,
        ErrorCode::COORDINATOR_NOT_AVAILABLE,
    ));
    sim.cluster
        .inject(Fault::throttle(ApiKey::FindCoordinator, wait));
    let h = sim.init_transactions().unwrap();
    sim.drive_until(100_000, |s| sent(s, ApiKey::FindCoordinator) == 1);
    sim.run_for(wait / 2);
    assert_eq!(
        sent(&sim, ApiKey::FindCoordinator),
        2,
        "retried after retry.backoff.ms"
    );
    finish(&mut sim, &h).expect("init");
}

/// Commits a transaction of four records on two partitions (it must
/// succeed) and checks read_committed sees them after what it saw.
fn commit_four(sim: &mut MockSim, tag: &str) {
    let before: Vec<_> = (0..2).map(|p| committed(sim, p)).collect();
    sim.begin_transaction().unwrap();
    let hs = send_n(sim, 2, tag, 4);
    let h = sim.commit_transaction().unwrap();
    finish(sim, &h).unwrap_or_else(|e| panic!("commit {tag}: {e}"));
    assert!(hs.iter().all(|h| h.wait().is_ok()));
    for p in 0..2 {
        let mut want = before[p as usize].clone();
        want.extend(values(2, p, &[(tag, 4)]));
        assert_eq!(committed(sim, p), want, "{tag}");
    }
}

/// Begins a transaction of four records and commits it; the result of
/// the commit, whether refused at the call or failed later.
fn try_commit_four(sim: &mut MockSim, tag: &str) -> Result<(), TransactionError> {
    sim.begin_transaction()?;
    let hs = send_n(sim, 2, tag, 4);
    sim.drive_until(100_000, |_| hs.iter().all(|h| h.try_result().is_some()));
    let h = sim.commit_transaction()?;
    finish(sim, &h)
}

/// InitProducerId refused by a moved or unavailable coordinator is looked
/// up again; by a loading one, or one still completing the last
/// transaction, retried where it is. init_transactions then succeeds.
#[test]
fn init_producer_id_retries_its_retriable_errors() {
    for (code, lookups) in [
        (ErrorCode::NOT_COORDINATOR, 2),
        (ErrorCode::COORDINATOR_NOT_AVAILABLE, 2),
        (ErrorCode::COORDINATOR_LOAD_IN_PROGRESS, 1),
        (ErrorCode::CONCURRENT_TRANSACTIONS, 1),
    ] {
        let mut sim = sim_on(txn_cfg(), cluster(1, 2));
        sim.cluster
            .inject(Fault::error(ApiKey::InitProducerId, code));
        let h = sim.init_transactions().unwrap();
        finish(&mut sim, &h).unwrap_or_else(|e| panic!("{code:?}: {e}"));
        assert_eq!(sent(&sim, ApiKey::FindCoordinator), lookups, "{code:?}");
        assert_eq!(sent(&sim, ApiKey::InitProducerId), 2, "{code:?}");
        commit_four(&mut sim, "i");
    }
}

/// InitProducerId refused for good is fatal, and says why: fenced by
/// another producer with the transactional.id, or refused.
#[test]
fn init_producer_id_refusals_are_fatal() {
    for (code, words) in [
        (ErrorCode::PRODUCER_FENCED, "fenced this one"),
        (ErrorCode::INVALID_PRODUCER_EPOCH, "fenced this one"),
        (
            ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            "cannot go on",
        ),
    ] {
        let mut sim = sim_on(txn_cfg(), cluster(1, 1));
        sim.cluster
            .inject(Fault::error(ApiKey::InitProducerId, code));
        let h = sim.init_transactions().unwrap();
        match finish(&mut sim, &h) {
            Err(TransactionError::Fatal(e)) => {
                let s = e.to_string();
                assert!(s.contains(code.name()) && s.contains(words), "{s}")
            }
            other => panic!("init refused with {code:?}: {other:?}"),
        }
        match sim.begin_transaction() {
            Err(TransactionError::Fatal(_)) => {}
            other => panic!("begin after a fatal error: {other:?}"),
        }
    }
}

/// An InitProducerId answer without error but without a producer id is
/// not taken: init_transactions fails.
#[test]
fn init_producer_id_without_an_id_is_not_taken() {
    let mut sim = sim_on(txn_cfg(), cluster(1, 1));
    sim.cluster.inject(Fault::lie(
        ApiKey::InitProducerId,
        kring_mock::Lie::ProducerId(-1),
    ));
    let h = sim.init_transactions().unwrap();
    assert!(matches!(
        finish(&mut sim, &h),
        Err(TransactionError::Fatal(_))
    ));
}

/// AddPartitionsToTxn's retriable errors (a moved, unavailable or
/// loading coordinator, a partition it does not know yet, the last
/// transaction still completing) are retried; the commit lands.
#[test]
fn add_partitions_retriable_errors_are_retried() {
    for code in [
        ErrorCode::COORDINATOR_NOT_AVAILABLE,
        ErrorCode::NOT_COORDINATOR,
        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode::CONCURRENT_TRANSACTIONS,
    ] {
        let mut sim = ready(1, 2);
        sim.cluster
            .inject(Fault::error(ApiKey::AddPartitionsToTxn, code).times(2));
        try_commit_four(&mut sim, "a").unwrap_or_else(|e| panic!("{code:?}: {e}"));
        assert_eq!(sent(&sim, ApiKey::AddPartitionsToTxn), 3, "{code:?}");
        assert_eq!(committed(&sim, 1), values(2, 1, &[("a", 4)]), "{code:?}");
    }
}

/// AddPartitionsToTxn refusing the producer (fenced, not authorized,
/// INVALID_TXN_STATE) is fatal.
#[test]
fn add_partitions_refusals_of_the_producer_are_fatal() {
    for code in [
        ErrorCode::INVALID_PRODUCER_EPOCH,
        ErrorCode::PRODUCER_FENCED,
        ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        ErrorCode::INVALID_TXN_STATE,
    ] {
        let mut sim = ready(1, 2);
        sim.cluster
            .inject(Fault::error(ApiKey::AddPartitionsToTxn, code));
        match try_commit_four(&mut sim, "x") {
            Err(TransactionError::Fatal(e)) => {
                assert!(e.to_string().contains(code.name()), "{e}")
            }
            other => panic!("AddPartitionsToTxn refused with {code:?}: {other:?}"),
        }
    }
}

/// One partition refused by AddPartitionsToTxn (TOPIC_AUTHORIZATION_FAILED,
/// the other answered OPERATION_NOT_ATTEMPTED): the transaction is
/// abortable for that refusal; the abort needs no bump and the next
/// transaction commits.
#[test]
fn a_partition_refused_by_add_partitions_makes_the_transaction_abortable() {
    let mut sim = ready(1, 2);
    sim.cluster.inject(
        Fault::error(
            ApiKey::AddPartitionsToTxn,
            ErrorCode::TOPIC_AUTHORIZATION_FAILED,
        )
        .on_partition("t", 1),
    );
    match try_commit_four(&mut sim, "p") {
        Err(TransactionError::Abortable(e)) => {
            assert!(e.to_string().contains("TOPIC_AUTHORIZATION_FAILED"), "{e}")
        }
        other => panic!("a partition refused: {other:?}"),
    }
    let h = sim.abort_transaction().unwrap();
    finish(&mut sim, &h).expect("abort");
    assert_eq!(sim.core.stats().epoch_bumps, 0);
    commit_four(&mut sim, "q");
}

/// The first AddPartitionsToTxn of a transaction refused with
/// CONCURRENT_TRANSACTIONS (the last one still completing) is retried
/// after 20 ms, not after `retry.backoff.ms`; one refused because the
/// coordinator loads waits the backoff.
#[test]
fn concurrent_transactions_on_the_first_add_is_retried_soon() {
    let config = Config {
        retry_backoff: Duration::from_secs(1),
        retry_backoff_max: Duration::from_secs(1),
        ..txn_cfg()
    };
    let mut sim = ready_with(config, cluster(1, 2));
    for (code, after) in [
        (ErrorCode::CONCURRENT_TRANSACTIONS, 2),
        (ErrorCode::COORDINATOR_LOAD_IN_PROGRESS, 1),
    ] {
        let n = sent(&sim, ApiKey::AddPartitionsToTxn);
        sim.cluster
            .inject(Fault::error(ApiKey::AddPartitionsToTxn, code));
        sim.begin_transaction().unwrap();
        let a = sim.send("t", Some(0), None, Some(b"c")).unwrap();
        sim.drive_until(100_000, |s| sent(s, ApiKey::AddPartitionsToTxn) == n + 1);
        sim.run_for(Duration::from_millis(200));
        assert_eq!(
            sent(&sim, ApiKey::AddPartitionsToTxn),
            n + after,
            "{code:?}"
        );
        let h = sim.commit_transaction().unwrap();
        finish(&mut sim, &h).expect("commit");
        assert!(a.wait().is_ok());
    }
    // One partition loading, the other CONCURRENT_TRANSACTIONS: the
    // backoff.
    let n = sent(&sim, ApiKey::AddPartitionsToTxn);
    sim.cluster.inject(
        Fault::error(
            ApiKey::AddPartitionsToTxn,
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
        )
        .on_partition("t", 0),
    );
    sim.cluster.inject(
        Fault::error(
            ApiKey::AddPartitionsToTxn,
            ErrorCode::CONCURRENT_TRANSACTIONS,
        )
        .on_partition("t", 1),
    );
    sim.begin_transaction().unwrap();
    let hs = send_n(&mut sim, 2, "m", 2);
    sim.drive_until(100_000, |s| sent(s, ApiKey::AddPartitionsToTxn) == n + 1);
    sim.run_for(Duration::from_millis(200));
    assert_eq!(sent(&sim, ApiKey::AddPartitionsToTxn), n + 1, "mixed");
    let h = sim.commit_transaction().unwrap();
    finish(&mut sim, &h).expect("commit");
    assert!(hs.iter().all(|h| h.wait().is_ok()));
}

/// EndTxn of a commit answered INVALID_PRODUCER_ID_MAPPING (the
/// coordinator does not know the producer): the commit fails as
/// abortable, and the abort ends with an epoch bump.
#[test]
fn end_txn_for_an_unknown_producer_fails_the_commit_and_the_abort_bumps() {
    let mut sim = ready(1, 2);
    sim.cluster.inject(Fault::error(
        ApiKey::EndTxn,
        ErrorCode::INVALID_PRODUCER_ID_MAPPING,
    ));
    match try_commit_four(&mut sim, "u") {
        Err(TransactionError::Abortable(e)) => {
            assert!(e.to_string().contains("INVALID_PRODUCER_ID_MAPPING"), "{e}")
        }
        other => panic!("EndTxn refused: {other:?}"),
    }
    let h = sim.abort_transaction().unwrap();
    finish(&mut sim, &h).expect("abort");
    assert_eq!(sim.core.stats().epoch_bumps, 1);
    let st = sim.cluster.transaction_state(TXN).unwrap();
    assert_eq!((st.state, st.producer_epoch), (TxnState::Empty, 1));
    commit_four(&mut sim, "v");
    assert!(committed(&sim, 0).iter().all(|v| v[0] == b'v'));
}

/// Only a producer with a `transactional.id` is transactional; the calls
/// of one without say so.
#[test]
fn a_producer_without_a_transactional_id_is_not_transactional() {
    let mut sim = sim_on(cfg(), cluster(1, 1));
    assert!(!sim.shared.is_transactional());
    assert!(matches!(
        sim.init_transactions(),
        Err(TransactionError::NotTransactional)
    ));
    let sim = sim_on(txn_cfg(), cluster(1, 1));
    assert!(sim.shared.is_transactional());
}

/// The same call again while its operation runs (the first one timed out
/// at the caller) waits for that operation instead of being refused.
#[test]
fn calling_again_waits_for_the_running_operation() {
    let mut sim = sim_on(txn_cfg(), cluster(1, 1));
    let h1 = sim.init_transactions().unwrap();
    let h2 = sim.init_transactions().unwrap();
    finish(&mut sim, &h2).expect("init");
    assert!(h1.is_done());
    sim.begin_transaction().unwrap();
    let hs = send_n(&mut sim, 1, "w", 2);
    let h1 = sim.commit_transaction().unwrap();
    let h2 = sim.commit_transaction().unwrap();
    finish(&mut sim, &h2).expect("commit");
    assert!(matches!(h1.wait_timeout(Duration::ZERO), Some(Ok(()))));
    assert!(hs.iter().all(|h| h.wait().is_ok()));
    assert_eq!(requests(&sim, ApiKey::EndTxn), 1);
}

/// Close while init_transactions runs: init fails with `Closed`, and so
/// does a later call (no operation is left running).
#[test]
fn close_during_init_fails_it_and_later_calls() {
    let mut sim = sim_on(txn_cfg(), cluster(1, 1));
    let h = sim.init_transactions().unwrap();
    let c = sim.close();
    sim.drive_until(100_000, |s| s.core.is_finished());
    assert!(c.is_done());
    assert!(matches!(
        h.wait_timeout(Duration::ZERO),
        Some(Err(TransactionError::Closed))
    ));
    assert!(matches!(
        sim.init_transactions(),
        Err(TransactionError::Closed)
    ));
}

/// Partitions of two topics added in one AddPartitionsToTxn: each is
/// named under its own topic, and both topics' records commit.
#[test]
fn partitions_of_two_topics_are_added_under_their_topics() {
    let mut sim = ready_with(txn_cfg(), cluster(1, 2).topic("u", 2));
    // A first transaction learns both topics' metadata.
    sim.begin_transaction().unwrap();
    let t0 = sim.send("t", Some(0), None, Some(b"t0")).unwrap();
    let u0 = sim.send("u", Some(0), None, Some(b"u0")).unwrap();
    let h = sim.commit_transaction().unwrap();
    finish(&mut sim, &h).expect("first commit");
    assert!(t0.wait().is_ok() && u0.wait().is_ok());
    let n = requests(&sim, ApiKey::AddPartitionsToTxn);
    sim.begin_transaction().unwrap();
    let hs: Vec<_> = [("u", 1), ("t", 1), ("u", 0), ("t", 0)]
        .iter()
        .map(|&(topic, p)| {
            let v = format!("{topic}{p}!");
            sim.send(topic, Some(p), None, Some(v.as_bytes())).unwrap()
        })
        .collect();
    let h = sim.commit_transaction().unwrap();
    finish(&mut sim, &h).expect("second commit");
    assert!(hs.iter().all(|h| h.wait().is_ok()));
    assert_eq!(
        requests(&sim, ApiKey::AddPartitionsToTxn),
        n + 1,
        "one request"
    );
    for (topic, p) in [("t", 0), ("t", 1), ("u", 0), ("u", 1)] {
        let got: Vec<Vec<u8>> = sim
            .cluster
            .read_committed(topic, p)
            .unwrap()
            .into_iter()
            .map(|r| r.value.unwrap().to_vec())
            .collect();
        let mut want = Vec::new();
        if p == 0 {
            want.push(format!("{topic}0").into_bytes());
        }
        want.push(format!("{topic}{p}!").into_bytes());
        assert_eq!(got, want, "{topic}/{p}");
    }
}

/// Three batches in flight on three brokers, answered after `delays`
/// (ms, by partition): partition 0 refused for good, partition 1 with a
/// retriable error, partition 2 refused for good.
fn answer_after(sim: &MockSim, delays: [u64; 3]) {
    for (p, code) in [
        (0, ErrorCode::TOPIC_AUTHORIZATION_FAILED),
        (1, ErrorCode::NOT_ENOUGH_REPLICAS),
        (2, ErrorCode::TOPIC_AUTHORIZATION_FAILED),
    ] {
        let leader = sim.cluster.leader("t", p).unwrap();
        sim.cluster
            .inject(Fault::delay(ApiKey::Produce, ms(delays[p as usize])).on_broker(leader));
        fail_produce(sim, p, code, 1);
    }
}

/// Once the transaction must be aborted, a later failure changes nothing
/// (the Java client skips the transition): a batch that came back with
/// a retriable error after the first failure is retried and written,
/// not failed by the later one. The same while the abort runs.
#[test]
fn a_later_failure_leaves_batches_awaiting_their_retry_alone() {
    let config = Config {
        retry_backoff: Duration::from_secs(1),
        retry_backoff_max: Duration::from_secs(1),
        ..txn_cfg()
    };
    let mut sim = ready_with(config, cluster(3, 3));
    // Every partition added and its metadata known.
    commit_three(&mut sim, "w");

    // Abortable after partition 0; partition 1 back for a retry, then
    // partition 2's failure.
    answer_after(&sim, [50, 100, 150]);
    sim.begin_transaction().unwrap();
    let hs = send_n(&mut sim, 3, "x", 3);
    sim.drive_until(100_000, |_| hs.iter().all(|h| h.try_result().is_some()));
    assert!(hs[0].wait().is_err() && hs[2].wait().is_err());
    assert!(hs[1].wait().is_ok(), "retried: {:?}", hs[1].wait());
    let h = sim.abort_transaction().unwrap();
    finish(&mut sim, &h).expect("abort");

    // Aborting while all three are in flight: partition 1 back for a
    // retry, then the failures.
    answer_after(&sim, [100, 50, 150]);
    sim.begin_transaction().unwrap();
    let n = sent(&sim, ApiKey::Produce);
    let hs = send_n(&mut sim, 3, "y", 3);
    sim.drive_until(100_000, |s| sent(s, ApiKey::Produce) == n + 3);
    let h = sim.abort_transaction().unwrap();
    finish(&mut sim, &h).expect("abort");
    assert!(hs[0].wait().is_err() && hs[2].wait().is_err());
    assert!(hs[1].wait().is_ok(), "retried: {:?}", hs[1].wait());
    commit_three(&mut sim, "z");
}

/// Commits one record per partition of three.
fn commit_three(sim: &mut MockSim, tag: &str) {
    sim.begin_transaction().unwrap();
    let hs = send_n(sim, 3, tag, 3);
    let h = sim.commit_transaction().unwrap();
    finish(sim, &h).unwrap_or_else(|e| panic!("commit {tag}: {e}"));
    assert!(hs.iter().all(|h| h.wait().is_ok()));
    for p in 0..3 {
        assert!(committed(sim, p).ends_with(&values(3, p, &[(tag, 3)])));
    }
}
