//! The coordinator's state transitions, one function per request, each
//! checking what Kafka's `TransactionCoordinator` checks in the order it
//! does (transaction version 1). The API handlers do the request-level
//! checks first (an empty id, the timeout, whether this broker is the
//! coordinator) and map errors to the request's version.
//!
//! Kafka answers some requests before the markers are written and lets
//! the client retry; the mock writes them at once unless they are held
//! ([`Coordinators::hold_markers`](super::Coordinators)), so a transaction
//! goes through its Prepare state within the request.

use std::time::Instant;

use kring_protocol::error_code::ErrorCode;

use super::{TxnMeta, TxnState};
use crate::state::State;

/// Whether `epoch` leaves no room for another bump (Kafka's
/// `isEpochExhausted`): the producer id is rotated instead.
fn exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

/// InitProducerId with a transactional id (Kafka's
/// `handleInitProducerId`): the producer id and the new epoch, or the
/// error. `expected` is the v3+ request's producer id and epoch (KIP-360).
///
/// - A new id gets a fresh producer id; every init bumps the epoch, which
///   fences the producer holding the previous one.
/// - With `expected`: its producer id must be the current one (else
///   PRODUCER_FENCED); the current epoch bumps, the epoch just bumped from
///   returns the current one unchanged (a retry), an older one is
///   PRODUCER_FENCED.
/// - An ongoing transaction is fenced (epoch bumped) and aborted, and the
///   answer is CONCURRENT_TRANSACTIONS: the client retries and the retry
///   bumps again (a KIP-360 retry then finds its epoch fenced, as in
///   Kafka). A transaction being completed: CONCURRENT_TRANSACTIONS.
/// - An exhausted epoch rotates to a new producer id at epoch 0.
pub(crate) fn init_producer_id(
    st: &mut State,
    txn_id: &str,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
) -> Result<(i64, i16), ErrorCode> {
    let now = st.txn.clock.now();
    if !st.txn.txns.contains_key(txn_id) {
        let producer_id = st.allocate_producer_id();
        st.txn.txns.insert(
            txn_id.to_string(),
            TxnMeta {
                producer_id,
                previous_producer_id: -1,
                epoch: -1,
                last_epoch: -1,
                timeout_ms,
                state: TxnState::Empty,
                partitions: Default::default(),
                started: now,
            },
        );
    }
    let (state, epoch, producer_id, previous) = match st.txn.txns.get(txn_id) {
        Some(m) => (m.state, m.epoch, m.producer_id, m.previous_producer_id),
        None => return Err(ErrorCode::UNKNOWN_SERVER_ERROR),
    };
    if let Some((pid, e)) = expected {
        let valid = epoch == -1 || pid == producer_id || (pid == previous && exhausted(e));
        if !valid {
            return Err(ErrorCode::PRODUCER_FENCED);
        }
    }
    match state {
        TxnState::PrepareCommit | TxnState::PrepareAbort => {
            return Err(ErrorCode::CONCURRENT_TRANSACTIONS)
        }
        TxnState::Ongoing => {
            fence_and_abort(st, txn_id);
            return Err(ErrorCode::CONCURRENT_TRANSACTIONS);
        }
        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {}
    }
    let rotate = exhausted(epoch) && expected.is_none_or(|(_, e)| e == epoch);
    let new_id = rotate.then(|| st.allocate_producer_id());
    let Some(m) = st.txn.txns.get_mut(txn_id) else {
        return Err(ErrorCode::UNKNOWN_SERVER_ERROR);
    };
    if let Some(id) = new_id {
        m.last_epoch = if expected.is_some() { m.epoch } else { -1 };
        m.previous_producer_id = m.producer_id;
        m.producer_id = id;
        m.epoch = 0;
    } else {
        let (next, last) = match expected {
            None => (m.epoch + 1, -1),
            Some((_, e)) if m.epoch == -1 || e == m.epoch => (m.epoch + 1, m.epoch),
            Some((_, e)) if e == m.last_epoch => (m.epoch, m.last_epoch),
            Some(_) => return Err(ErrorCode::PRODUCER_FENCED),
        };
        m.epoch = next;
        m.last_epoch = last;
    }
    m.timeout_ms = timeout_ms;
    m.state = TxnState::Empty;
    m.partitions.clear();
    Ok((m.producer_id, m.epoch))
}

/// AddPartitionsToTxn (Kafka's `handleAddPartitionsToTransaction`):
/// the partitions join the transaction, which begins (its timeout starts)
/// if none was ongoing.
pub(crate) fn add_partitions(
    st: &mut State,
    txn_id: &str,
    producer_id: i64,
    epoch: i16,
    partitions: &[(String, i32)],
) -> Result<(), ErrorCode> {
    let now: Instant = st.txn.clock.now();
    let Some(m) = st.txn.txns.get_mut(txn_id) else {
        return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
    };
    if m.producer_id != producer_id {
        return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
    }
    if m.epoch != epoch {
        return Err(ErrorCode::PRODUCER_FENCED);
    }
    match m.state {
        TxnState::PrepareCommit | TxnState::PrepareAbort => Err(ErrorCode::CONCURRENT_TRANSACTIONS),
        TxnState::Ongoing => {
            m.partitions.extend(partitions.iter().cloned());
            Ok(())
        }
        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
            m.state = TxnState::Ongoing;
            m.started = now;
            m.partitions.extend(partitions.iter().cloned());
            Ok(())
        }
    }
}

/// EndTxn (Kafka's `endTransaction` from a client, transaction version 1:
/// the epoch must be exactly the current one).
///
/// An ongoing transaction moves to PrepareCommit/PrepareAbort and its
/// markers are written (unless held); a retry of the completed
/// transaction's result is NONE, of one being completed
/// CONCURRENT_TRANSACTIONS; anything else (nothing begun, the opposite
/// result) INVALID_TXN_STATE.
pub(crate) fn end_txn(
    st: &mut State,
    txn_id: &str,
    producer_id: i64,
    epoch: i16,
    commit: bool,
) -> Result<(), ErrorCode> {
    let Some(m) = st.txn.txns.get_mut(txn_id) else {
        return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
    };
    if m.producer_id != producer_id {
        return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
    }
    if m.epoch != epoch {
        return Err(ErrorCode::PRODUCER_FENCED);
    }
    match (m.state, commit) {
        (TxnState::Ongoing, _) => {
            m.state = if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            };
            if !st.txn.hold_markers {
                complete(st, txn_id);
            }
            Ok(())
        }
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(()),
        (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
            Err(ErrorCode::CONCURRENT_TRANSACTIONS)
        }
        _ => Err(ErrorCode::INVALID_TXN_STATE),
    }
}

/// The coordinator's answer to a partition leader verifying that
/// `(topic, partition)` is in `txn_id`'s transaction before the
/// producer's first transactional batch there (KIP-890 part 1, Kafka's
/// `handleVerifyPartitionsInTransaction`). The leader maps the error for
/// its Produce response.
pub(crate) fn verify(
    st: &State,
    txn_id: &str,
    producer_id: i64,
    epoch: i16,
    topic: &str,
    partition: i32,
) -> Result<(), ErrorCode> {
    if !super::coordinator_for(st, 1, txn_id).is_some_and(|b| b.up) {
        return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE);
    }
    let Some(m) = st.txn.txns.get(txn_id) else {
        return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
    };
    if m.producer_id != producer_id {
        return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
    }
    if m.epoch != epoch {
        return Err(ErrorCode::PRODUCER_FENCED);
    }
    if matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
        return Err(ErrorCode::CONCURRENT_TRANSACTIONS);
    }
    if !m.partitions.contains(&(topic.to_string(), partition)) {
        return Err(ErrorCode::TRANSACTION_ABORTABLE);
    }
    Ok(())
}

/// Aborts `txn_id`'s ongoing transaction from the coordinator's side (a
/// timeout, a new producer instance): the epoch is bumped first, so the
/// producer holding the old one is fenced, and the ABORT markers carry the
/// new epoch (Kafka's `prepareFenceProducerEpoch` then `endTransaction`).
pub(crate) fn fence_and_abort(st: &mut State, txn_id: &str) {
    let Some(m) = st.txn.txns.get_mut(txn_id) else {
        return;
    };
    if m.state != TxnState::Ongoing {
        return;
    }
    m.epoch = m.epoch.saturating_add(1);
    m.last_epoch = -1;
    m.state = TxnState::PrepareAbort;
    if !st.txn.hold_markers {
        complete(st, txn_id);
    }
}

/// Writes the markers of `txn_id`'s transaction in PrepareCommit or
/// PrepareAbort into every partition it added, and completes it.
pub(crate) fn complete(st: &mut State, txn_id: &str) {
    let Some(m) = st.txn.txns.get_mut(txn_id) else {
        return;
    };
    let commit = match m.state {
        TxnState::PrepareCommit => true,
        TxnState::PrepareAbort => false,
        _ => return,
    };
    m.state = if commit {
        TxnState::CompleteCommit
    } else {
        TxnState::CompleteAbort
    };
    let partitions = std::mem::take(&mut m.partitions);
    let (producer_id, epoch) = (m.producer_id, m.epoch);
    let coordinator_epoch = st.txn.coordinator_epoch;
    for (topic, index) in &partitions {
        if let Some(p) = st.partition_mut(topic, *index) {
            let leader_epoch = p.leader_epoch;
            p.log
                .append_marker(producer_id, epoch, commit, coordinator_epoch, leader_epoch);
        }
    }
}

/// Completes every transaction held in a Prepare state (markers released).
pub(crate) fn complete_all(st: &mut State) {
    let preparing: Vec<String> = st
        .txn
        .txns
        .iter()
        .filter(|(_, m)| matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort))
        .map(|(id, _)| id.clone())
        .collect();
    for id in preparing {
        complete(st, &id);
    }
}
