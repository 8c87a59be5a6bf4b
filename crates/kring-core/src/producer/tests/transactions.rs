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
