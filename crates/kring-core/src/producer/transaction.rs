//! Transactions (KIP-98), the I/O thread's half: the transaction
//! coordinator, the producer id of a `transactional.id`, adding partitions
//! to the transaction, and committing or aborting it.
//!
//! Follows the Java client's `TransactionManager` with transaction version
//! 1 (the protocol every Kafka since 0.11 takes; brokers with KIP-890's
//! version 2 take it from clients that ask for no more):
//! - `init_transactions`: FindCoordinator (key type 1) to any broker,
//!   then InitProducerId with the `transactional.id` and
//!   `transaction.timeout.ms` to the coordinator;
//! - a batch goes to a partition only once AddPartitionsToTxn added the
//!   partition to the transaction: partitions are added as their first
//!   batch of the transaction is announced, in one request for all the
//!   partitions waiting, and a partition popped from a ready queue before
//!   that waits aside (`blocked`) until the answer;
//! - `send_offsets_to_transaction`: AddOffsetsToTxn (the group id) to the
//!   transaction coordinator, then TxnOffsetCommit to the group's
//!   coordinator (FindCoordinator, key type 0), both before EndTxn; the
//!   group's offsets then commit or abort with the transaction;
//! - commit and abort wait, like a flush, for every batch of the
//!   transaction to have its final result (an abort first fails the
//!   batches not sent yet), then send EndTxn to the coordinator; a
//!   transaction that added no partition ends without a request;
//! - one transactional request at a time, retried after
//!   `retry.backoff.ms` on the errors the Java client retries (the
//!   coordinator moved or is loading: looked up again first);
//! - a record of the transaction that fails makes the transaction
//!   abortable (Java's `maybeTransitionToErrorState`): the running commit
//!   fails, sends are refused, the batches not sent yet fail, and the user
//!   must abort. Where the Java client would bump the epoch of an
//!   idempotent producer locally, a transactional one cannot (the
//!   coordinator owns the epoch): the abort then ends with InitProducerId
//!   carrying the current producer id and epoch (KIP-360, v3+), which
//!   bumps it and restarts every partition's sequences;
//! - fencing (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH), authorization and
//!   INVALID_TXN_STATE are fatal, through the idempotent producer's one
//!   fatal path (`enter_fatal`).
//!
//! Produce requests of a transactional producer are capped at v11, the
//! last version before transaction version 2 (v12 tells a KIP-890 broker
//! that the client leaves adding partitions to it), as the Java client
//! caps them when it speaks version 1.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use kring_protocol::message::decode_response_frame;
use kring_protocol::messages::add_offsets_to_txn::AddOffsetsToTxnRequest;
use kring_protocol::messages::add_partitions_to_txn::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic,
};
use kring_protocol::messages::end_txn::EndTxnRequest;
use kring_protocol::messages::find_coordinator::{FindCoordinatorRequest, FindCoordinatorResponse};
use kring_protocol::messages::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};
use kring_protocol::messages::txn_offset_commit::{
    TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kring_protocol::ErrorCode;

use crate::delivery::{DeliveryError, MessageStatus};
use crate::notice::TxnNotice;
use crate::timer::TimerHandle;
use crate::txn::{ConsumerGroupMetadata, OffsetToCommit, Phase, TransactionError, TxnOp};

use super::conn::{ConnId, ConnState, ReqKind, Target};
use super::{PartKey, ProducerCore, TimerKey, Transmit};

/// Backoff of the first AddPartitionsToTxn retried for
/// CONCURRENT_TRANSACTIONS in a transaction (the previous one is still
/// completing), as in the Java client (`ADD_PARTITIONS_RETRY_BACKOFF_MS`).
const ADD_PARTITIONS_RETRY_BACKOFF: std::time::Duration = std::time::Duration::from_millis(20);

/// A transactional request on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TxnRequest {
    FindCoordinator,
    InitProducerId,
    /// The partitions it adds.
    AddPartitions(Vec<PartKey>),
    /// AddOffsetsToTxn of the first pending offsets.
    AddOffsets,
    /// FindCoordinator for the first pending offsets' group.
    FindGroupCoordinator,
    /// TxnOffsetCommit of the first pending offsets.
    OffsetCommit,
    EndTxn,
}

/// A `send_offsets_to_transaction` in progress.
#[derive(Debug)]
struct PendingOffsets {
    group: ConsumerGroupMetadata,
    /// Not committed yet.
    offsets: Vec<OffsetToCommit>,
    op: Arc<TxnOp>,
    /// AddOffsetsToTxn answered: TxnOffsetCommit next.
    added: bool,
}

/// A commit or abort waiting for its batches, then for EndTxn.
#[derive(Debug)]
struct Ending {
    commit: bool,
    /// Every batch of a flush generation below it is the transaction's.
    gen: u64,
    op: Arc<TxnOp>,
    /// EndTxn answered; an epoch bump (InitProducerId) is still due.
    ended: bool,
}

/// The transactional state of the I/O thread. Fields private to this
/// module.
#[derive(Debug)]
pub(crate) struct TxnCore {
    id: Arc<str>,
    timeout_ms: i32,
    /// The coordinator's node id and address.
    coordinator: Option<(i32, String)>,
    /// The request on the wire (at most one).
    in_flight: Option<TxnRequest>,
    /// Waiting before the next request (a retry).
    backoff: Option<TimerHandle>,
    /// Consecutive retries (for the backoff).
    failures: u32,
    /// init_transactions waiting for its producer id.
    init: Option<Arc<TxnOp>>,
    /// Between a `Begin` and an `End` notice.
    active: bool,
    ending: Option<Ending>,
    /// Partitions in the transaction (AddPartitionsToTxn answered).
    added: HashSet<PartKey>,
    /// Partitions to add, not asked yet; and all not added yet (asked too).
    to_add: Vec<PartKey>,
    adding: HashSet<PartKey>,
    /// Partitions taken off a ready queue while not added: ready again once
    /// they are.
    blocked: Vec<PartKey>,
    /// Why the transaction must be aborted; the buffered batches still to
    /// fail with it (`sweep`).
    abortable: Option<DeliveryError>,
    sweep: bool,
    /// An abort must end with an epoch bump (InitProducerId with the
    /// current producer id and epoch).
    bump: bool,
    /// `send_offsets_to_transaction` calls, in order.
    offsets: VecDeque<PendingOffsets>,
    /// A group's offsets joined the transaction (EndTxn is then due even
    /// with no partition added).
    offsets_added: bool,
    /// The group coordinator of the first pending offsets' group.
    group_coordinator: Option<(i32, String)>,
}

impl TxnCore {
    pub(crate) fn new(id: &str, timeout: std::time::Duration) -> Self {
        TxnCore {
            id: Arc::from(id),
            timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
            coordinator: None,
            in_flight: None,
            backoff: None,
            failures: 0,
            init: None,
            active: false,
            ending: None,
            added: HashSet::new(),
            to_add: Vec::new(),
            adding: HashSet::new(),
            blocked: Vec::new(),
            abortable: None,
            sweep: false,
            bump: false,
            offsets: VecDeque::new(),
            offsets_added: false,
            group_coordinator: None,
        }
    }

    /// Whether anything was added to the transaction at the coordinator
    /// (partitions or a group's offsets): only then is EndTxn sent.
    fn started(&self) -> bool {
        !self.added.is_empty() || self.offsets_added
    }

    /// Fails every pending `send_offsets_to_transaction` with `err` (as
    /// an abortable error).
    fn drop_offsets(&mut self, err: &DeliveryError) {
        self.fail_offsets(&TransactionError::Abortable(err.clone()));
    }

    /// Fails every pending `send_offsets_to_transaction` with `err`.
    pub(crate) fn fail_offsets(&mut self, err: &TransactionError) {
        for o in self.offsets.drain(..) {
            crate::txn::settle(&o.op, Err(err.clone()));
        }
    }

    /// The `transactional.id` (produce requests carry it).
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Whether a batch of `pk` may go into a produce request now.
    pub(crate) fn may_send(&self, pk: PartKey) -> bool {
        self.added.contains(&pk)
    }
}

/// A FindCoordinator answer's error, node and `host:port` (v4+ answer
/// in `coordinators`, one key asked).
fn coordinator_of(r: &FindCoordinatorResponse, version: i16) -> (ErrorCode, i32, String) {
    match r.coordinators.first() {
        Some(c) if version >= 4 => (
            ErrorCode(c.error_code),
            c.node_id,
            format!("{}:{}", c.host, c.port),
        ),
        _ => (
            ErrorCode(r.error_code),
            r.node_id,
            format!("{}:{}", r.host, r.port),
        ),
    }
}

/// A broker error as a delivery error (the transaction's cause).
fn broker_error(code: ErrorCode, message: &str) -> DeliveryError {
    DeliveryError::Broker {
        code: code.code(),
        name: code.name(),
        message: Some(message.into()),
        status: MessageStatus::NotPersisted,
    }
}

impl ProducerCore {
    fn txn_mut(&mut self) -> Option<&mut TxnCore> {
        self.txn.as_mut()
    }

    /// A transactional notice from the handle.
    pub(crate) fn handle_txn_notice(&mut self, now: Instant, n: TxnNotice) {
        let Some(t) = self.txn.as_mut() else { return };
        match n {
            TxnNotice::Init(op) => {
                t.init = Some(op);
                self.idem.await_transactional_init();
            }
            TxnNotice::Offsets { group, offsets, op } => {
                if !t.active || t.abortable.is_some() {
                    let e = t
                        .abortable
                        .clone()
                        .unwrap_or_else(|| DeliveryError::Aborted {
                            reason: Arc::from("no transaction to add offsets to"),
                            status: MessageStatus::NotPersisted,
                        });
                    crate::txn::settle(&op, Err(TransactionError::Abortable(e)));
                    return;
                }
                t.offsets.push_back(PendingOffsets {
                    group,
                    offsets,
                    op,
                    added: false,
                });
            }
            TxnNotice::Begin => {
                t.active = true;
                t.offsets_added = false;
                t.added.clear();
                t.adding.clear();
                t.to_add.clear();
                t.abortable = None;
            }
            TxnNotice::End { commit, gen, op } => {
                t.active = false;
                t.ending = Some(Ending {
                    commit,
                    gen,
                    op,
                    ended: false,
                });
                self.notice_gen = gen;
                if commit {
                    // As a flush: linger ends for every open batch.
                    self.seal_all_open();
                } else {
                    // Records not sent yet will never be: fail them now.
                    let t = self.txn.as_mut().expect("transactional");
                    t.to_add.clear();
                    t.drop_offsets(&DeliveryError::Aborted {
                        reason: Arc::from(
                            "the transaction was aborted before the offsets were committed",
                        ),
                        status: MessageStatus::NotPersisted,
                    });
                    let err = DeliveryError::Aborted {
                        reason: Arc::from("the transaction was aborted before the record was sent"),
                        status: MessageStatus::NotPersisted,
                    };
                    self.fail_all_unsent(now, &err);
                }
            }
        }
    }

    /// The producer is closing: a transaction still open is aborted, as
    /// the Java client's sender aborts it at shutdown (its records not
    /// sent yet fail; readers never see the rest). The core finishes once
    /// the abort has ended at the coordinator (`txn_settled`).
    pub(crate) fn txn_close(&mut self, now: Instant, gen: u64) {
        let Some(t) = self.txn.as_mut() else { return };
        if let Some(op) = t.init.take() {
            crate::txn::settle(&op, Err(crate::txn::TransactionError::Closed));
        }
        if t.ending.is_some() || (!t.active && t.abortable.is_none()) {
            return;
        }
        tracing::info!("closing inside a transaction: aborting it");
        self.handle_txn_notice(
            now,
            TxnNotice::End {
                commit: false,
                gen,
                op: Arc::new(TxnOp::default()),
            },
        );
    }

    /// Whether no transactional work is left for a closing core to wait
    /// for.
    pub(crate) fn txn_settled(&self) -> bool {
        self.life.fatal().is_some()
            || self
                .txn
                .as_ref()
                .is_none_or(|t| t.ending.is_none() && t.in_flight.is_none())
    }

    /// A batch of `pk` was announced: inside a transaction its partition
    /// joins it if it has not.
    pub(crate) fn txn_batch_opened(&mut self, pk: PartKey) {
        let Some(t) = self.txn.as_mut() else { return };
        if t.active && t.abortable.is_none() && !t.added.contains(&pk) && t.adding.insert(pk) {
            t.to_add.push(pk);
        }
    }

    /// `pk` was popped from its ready queue but may not send yet: it waits
    /// for AddPartitionsToTxn. Returns whether it must wait.
    pub(crate) fn txn_holds(&mut self, pk: PartKey) -> bool {
        let Some(t) = self.txn.as_mut() else {
            return false;
        };
        if t.may_send(pk) {
            return false;
        }
        t.blocked.push(pk);
        true
    }

    /// A batch failed for good: inside a transaction (or while it
    /// commits) the transaction must now be aborted.
    pub(crate) fn txn_batch_failed(&mut self, err: &DeliveryError) {
        let Some(t) = self.txn.as_mut() else { return };
        let aborting = t.ending.as_ref().is_some_and(|e| !e.commit);
        let in_txn = t.active || t.ending.is_some();
        if !in_txn || aborting || t.abortable.is_some() || self.life.fatal().is_some() {
            return;
        }
        tracing::info!(error = %err, "a record of the transaction failed: it must be aborted");
        t.abortable = Some(err.clone());
        t.sweep = true;
        t.to_add.clear();
        t.drop_offsets(err);
        if t.ending.as_ref().is_some_and(|e| e.commit) {
            // The commit fails (`txn_abortable` settles it); what it
            // waited for still finishes, and the user aborts next.
            t.ending = None;
        }
        self.shared.txn_abortable(err);
    }

    /// The idempotent path wants an epoch bump: a transactional producer
    /// cannot bump locally, so the transaction must be aborted and the
    /// abort ends with a bump.
    pub(crate) fn txn_needs_bump(&mut self, err: DeliveryError) {
        let Some(t) = self.txn.as_mut() else { return };
        t.bump = true;
        self.txn_batch_failed(&err);
    }

    /// Fails every batch not on the wire with `err` (one pass over every
    /// partition: an abort, or an abortable error): the accumulator's and
    /// those waiting for a retry. Whatever of the transaction is in the
    /// log will be aborted, so no retry is owed; but a batch that was sent
    /// leaves its partition's sequences behind the broker's, and the abort
    /// then ends with an epoch bump, which restarts them.
    fn fail_all_unsent(&mut self, now: Instant, err: &DeliveryError) {
        let mut retried = false;
        for ti in 0..self.topics.len() {
            for pi in 0..self.topics[ti].partitions.len() {
                let pk = (ti as u32, pi as u32);
                retried |= !self.part(pk).retry.is_empty();
                self.fail_partition(now, pk, err);
            }
        }
        if retried {
            if let Some(t) = self.txn.as_mut() {
                t.bump = true;
            }
        }
        let t = self.txn.as_mut().expect("transactional");
        for pk in std::mem::take(&mut t.blocked) {
            self.mark_ready(pk);
        }
    }

    /// The next transactional request, if one is due. Called first in
    /// `poll_transmit`.
    pub(crate) fn poll_txn(&mut self, now: Instant) -> Option<Transmit> {
        let t = self.txn.as_ref()?;
        if self.life.is_finished() || self.life.fatal().is_some() {
            return None;
        }
        if t.sweep {
            let err = t.abortable.clone().expect("sweep after an error");
            self.txn.as_mut().expect("transactional").sweep = false;
            let err = DeliveryError::Aborted {
                reason: Arc::from(format!("the transaction must be aborted: {err}")),
                status: MessageStatus::NotPersisted,
            };
            self.fail_all_unsent(now, &err);
        }
        let t = self.txn.as_ref()?;
        if t.in_flight.is_some() || t.backoff.is_some() {
            return None;
        }
        let next = if t.init.is_some() {
            TxnRequest::InitProducerId
        } else if !t.to_add.is_empty() && t.abortable.is_none() {
            TxnRequest::AddPartitions(t.to_add.clone())
        } else if let Some(o) = t.offsets.front() {
            if !o.added {
                TxnRequest::AddOffsets
            } else if t.group_coordinator.is_none() {
                return self.send_find_coordinator(now, true);
            } else {
                let id = self.group_coordinator_conn(now)?;
                return self.send_txn_request(now, id, TxnRequest::OffsetCommit);
            }
        } else if let Some(e) = &t.ending {
            if self.ledger.any_below(e.gen) {
                return None;
            }
            if e.ended || (!e.commit && t.bump && !t.started()) {
                if t.bump {
                    TxnRequest::InitProducerId
                } else {
                    self.txn_end_done(now);
                    return None;
                }
            } else if !t.started() {
                // Nothing was added: nothing to end at the coordinator.
                self.txn_end_done(now);
                return None;
            } else {
                TxnRequest::EndTxn
            }
        } else {
            return None;
        };
        if t.coordinator.is_none() {
            return self.send_find_coordinator(now, false);
        }
        let id = self.coordinator_conn(now)?;
        self.send_txn_request(now, id, next)
    }

    /// The commit or abort finished.
    fn txn_end_done(&mut self, _now: Instant) {
        let t = self.txn.as_mut().expect("transactional");
        let Some(e) = t.ending.take() else { return };
        t.added.clear();
        t.adding.clear();
        t.to_add.clear();
        t.abortable = None;
        t.bump = false;
        t.offsets_added = false;
        self.shared.txn_op_done(&e.op, Phase::Ready);
    }

    /// FindCoordinator for the transaction (`group`: false) or for the
    /// first pending offsets' group.
    fn send_find_coordinator(&mut self, now: Instant, group: bool) -> Option<Transmit> {
        let id = self.control_conn(now)?;
        let version = self.conn(id)?.versions.find_coordinator;
        if version < 1 {
            self.txn_fatal(
                now,
                ErrorCode::UNSUPPORTED_VERSION,
                "the broker does not support FindCoordinator v1+: no transactions",
            );
            return None;
        }
        let t = self.txn.as_ref()?;
        let (key, key_type, kind) = if group {
            let g = t.offsets.front()?.group.group_id.clone();
            (g, 0, TxnRequest::FindGroupCoordinator)
        } else {
            (t.id.to_string(), 1, TxnRequest::FindCoordinator)
        };
        let req = FindCoordinatorRequest {
            key: if version < 4 {
                key.clone()
            } else {
                String::new()
            },
            key_type,
            coordinator_keys: if version >= 4 { vec![key] } else { Vec::new() },
            ..Default::default()
        };
        let req_kind = if group {
            ReqKind::Txn(kind.clone())
        } else {
            ReqKind::FindCoordinator
        };
        match self.send_request(now, id, version, &req, req_kind, true, 128) {
            Ok(tx) => {
                self.txn_mut()?.in_flight = Some(kind);
                Some(tx)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot encode FindCoordinator");
                None
            }
        }
    }

    /// A ready connection to the transaction coordinator, or `None`
    /// (connecting, or busy: a response or a connection brings the next
    /// poll).
    fn coordinator_conn(&mut self, now: Instant) -> Option<ConnId> {
        let c = self.txn.as_ref()?.coordinator.clone()?;
        self.node_conn(now, c)
    }

    /// A ready connection to the group coordinator, as
    /// [`coordinator_conn`](Self::coordinator_conn).
    fn group_coordinator_conn(&mut self, now: Instant) -> Option<ConnId> {
        let c = self.txn.as_ref()?.group_coordinator.clone()?;
        self.node_conn(now, c)
    }

    fn node_conn(&mut self, now: Instant, (node, addr): (i32, String)) -> Option<ConnId> {
        let conn = match self.nodes.get(&node) {
            Some(n) => n.conn,
            None => {
                self.nodes.add(node, addr);
                None
            }
        };
        let Some(cid) = conn else {
            self.connect(Target::Node(node));
            return None;
        };
        let c = self.conn(cid)?;
        if c.state != ConnState::Ready
            || c.is_throttled(now)
            || c.in_flight.len() >= self.cfg.max_in_flight
        {
            return None;
        }
        Some(cid)
    }

    fn send_txn_request(&mut self, now: Instant, id: ConnId, req: TxnRequest) -> Option<Transmit> {
        let versions = self.conn(id)?.versions;
        let (pid, epoch) = self.idem.current_pid();
        let t = self.txn.as_ref()?;
        let txn_id = t.id.to_string();
        let sent = match &req {
            TxnRequest::InitProducerId => {
                let bump = t.init.is_none();
                if versions.init_pid < 0 || (bump && versions.init_pid < 3) {
                    let msg = if bump {
                        "the coordinator cannot bump the epoch (InitProducerId v3+): the transactional producer cannot go on"
                    } else {
                        "the coordinator does not support InitProducerId: no transactions"
                    };
                    self.txn_fatal(now, ErrorCode::UNSUPPORTED_VERSION, msg);
                    return None;
                }
                let r = InitProducerIdRequest {
                    transactional_id: Some(txn_id),
                    transaction_timeout_ms: t.timeout_ms,
                    producer_id: if bump { pid } else { -1 },
                    producer_epoch: if bump { epoch } else { -1 },
                    ..Default::default()
                };
                self.send_request(
                    now,
                    id,
                    versions.init_pid,
                    &r,
                    ReqKind::Txn(req.clone()),
                    true,
                    128,
                )
            }
            TxnRequest::AddPartitions(parts) => {
                if versions.add_partitions < 0 {
                    self.txn_fatal(
                        now,
                        ErrorCode::UNSUPPORTED_VERSION,
                        "the coordinator does not support AddPartitionsToTxn v0-3",
                    );
                    return None;
                }
                let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
                let mut sorted = parts.clone();
                sorted.sort_unstable();
                for pk in sorted {
                    let name = self.topics[pk.0 as usize].name.to_string();
                    match topics.last_mut() {
                        Some(tp) if tp.name == name => tp.partitions.push(pk.1 as i32),
                        _ => topics.push(AddPartitionsToTxnTopic {
                            name,
                            partitions: vec![pk.1 as i32],
                            ..Default::default()
                        }),
                    }
                }
                let r = AddPartitionsToTxnRequest {
                    v3_and_below_transactional_id: txn_id,
                    v3_and_below_producer_id: pid,
                    v3_and_below_producer_epoch: epoch,
                    v3_and_below_topics: topics,
                    ..Default::default()
                };
                self.send_request(
                    now,
                    id,
                    versions.add_partitions,
                    &r,
                    ReqKind::Txn(req.clone()),
                    true,
                    256,
                )
            }
            TxnRequest::EndTxn => {
                if versions.end_txn < 0 {
                    self.txn_fatal(
                        now,
                        ErrorCode::UNSUPPORTED_VERSION,
                        "the coordinator does not support EndTxn v0-4",
                    );
                    return None;
                }
                let commit = t.ending.as_ref().is_some_and(|e| e.commit);
                let r = EndTxnRequest {
                    transactional_id: txn_id,
                    producer_id: pid,
                    producer_epoch: epoch,
                    committed: commit,
                    ..Default::default()
                };
                self.send_request(
                    now,
                    id,
                    versions.end_txn,
                    &r,
                    ReqKind::Txn(req.clone()),
                    true,
                    128,
                )
            }
            TxnRequest::AddOffsets => {
                if versions.add_offsets < 0 {
                    self.txn_fatal(
                        now,
                        ErrorCode::UNSUPPORTED_VERSION,
                        "the coordinator does not support AddOffsetsToTxn",
                    );
                    return None;
                }
                let group_id = t.offsets.front()?.group.group_id.clone();
                let r = AddOffsetsToTxnRequest {
                    transactional_id: txn_id,
                    producer_id: pid,
                    producer_epoch: epoch,
                    group_id,
                    ..Default::default()
                };
                self.send_request(
                    now,
                    id,
                    versions.add_offsets,
                    &r,
                    ReqKind::Txn(req.clone()),
                    true,
                    128,
                )
            }
            TxnRequest::OffsetCommit => {
                if versions.txn_offset_commit < 0 {
                    self.txn_fatal(
                        now,
                        ErrorCode::UNSUPPORTED_VERSION,
                        "the group coordinator does not support TxnOffsetCommit",
                    );
                    return None;
                }
                let o = t.offsets.front()?;
                let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
                for off in &o.offsets {
                    let p = TxnOffsetCommitRequestPartition {
                        partition_index: off.partition,
                        committed_offset: off.offset,
                        committed_leader_epoch: off.leader_epoch,
                        committed_metadata: off.metadata.clone(),
                        ..Default::default()
                    };
                    match topics.iter_mut().find(|tp| tp.name == off.topic) {
                        Some(tp) => tp.partitions.push(p),
                        None => topics.push(TxnOffsetCommitRequestTopic {
                            name: off.topic.clone(),
                            partitions: vec![p],
                            ..Default::default()
                        }),
                    }
                }
                let r = TxnOffsetCommitRequest {
                    transactional_id: txn_id,
                    group_id: o.group.group_id.clone(),
                    producer_id: pid,
                    producer_epoch: epoch,
                    generation_id: o.group.generation_id,
                    member_id: o.group.member_id.clone(),
                    group_instance_id: o.group.group_instance_id.clone(),
                    topics,
                    ..Default::default()
                };
                self.send_request(
                    now,
                    id,
                    versions.txn_offset_commit,
                    &r,
                    ReqKind::Txn(req.clone()),
                    true,
                    256,
                )
            }
            TxnRequest::FindCoordinator | TxnRequest::FindGroupCoordinator => {
                unreachable!("sent by send_find_coordinator")
            }
        };
        match sent {
            Ok(tx) => {
                let t = self.txn.as_mut()?;
                if let TxnRequest::AddPartitions(parts) = &req {
                    t.to_add.retain(|pk| !parts.contains(pk));
                }
                t.in_flight = Some(req);
                Some(tx)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a transactional request");
                None
            }
        }
    }

    /// Retry after the backoff (`short`: the 20 ms of a first
    /// AddPartitionsToTxn refused for CONCURRENT_TRANSACTIONS).
    fn txn_retry(&mut self, now: Instant, short: bool) {
        let d = if short {
            ADD_PARTITIONS_RETRY_BACKOFF.min(self.cfg.retry.backoff(0, &mut self.rng))
        } else {
            let f = self.txn.as_ref().map_or(0, |t| t.failures);
            self.cfg.retry.backoff(f, &mut self.rng)
        };
        let h = self.timers.insert(now + d, TimerKey::Txn);
        if let Some(t) = self.txn.as_mut() {
            t.failures = t.failures.saturating_add(1);
            if let Some(old) = t.backoff.replace(h) {
                self.timers.cancel(old);
            }
        }
    }

    /// The retry backoff ended.
    pub(crate) fn txn_timer(&mut self) {
        if let Some(t) = self.txn.as_mut() {
            t.backoff = None;
        }
    }

    /// The coordinator moved or is unavailable: look it up again, then
    /// retry.
    fn txn_lookup_again(&mut self, now: Instant) {
        if let Some(t) = self.txn.as_mut() {
            t.coordinator = None;
        }
        self.txn_retry(now, false);
    }

    /// The transactional request on a lost connection was not answered:
    /// look the coordinator up again and retry.
    pub(crate) fn txn_request_lost(&mut self, now: Instant, req: &TxnRequest) {
        let Some(t) = self.txn.as_mut() else { return };
        t.in_flight = None;
        if matches!(
            req,
            TxnRequest::FindGroupCoordinator | TxnRequest::OffsetCommit
        ) {
            // The group's coordinator: looked up again.
            t.group_coordinator = None;
            self.txn_retry(now, false);
            return;
        }
        if let TxnRequest::AddPartitions(parts) = req {
            // Asked again (the answer may have added them; adding twice is
            // harmless).
            for pk in parts {
                if !t.to_add.contains(pk) && t.abortable.is_none() {
                    t.to_add.push(*pk);
                }
            }
        }
        self.txn_lookup_again(now);
    }

    /// A connection to node `n` was lost or could not be made: if `n` is
    /// the coordinator, it is looked up again (after the backoff), as the
    /// Java client does when its coordinator is unreachable — a killed
    /// coordinator's successor is found only by asking.
    pub(crate) fn txn_node_lost(&mut self, now: Instant, n: i32) {
        let Some(t) = self.txn.as_mut() else { return };
        if t.in_flight.is_some() {
            return;
        }
        if t.group_coordinator.as_ref().is_some_and(|(c, _)| *c == n) {
            t.group_coordinator = None;
        }
        if t.coordinator.as_ref().is_some_and(|(c, _)| *c == n) {
            tracing::debug!(
                node = n,
                "lost the transaction coordinator: looking it up again"
            );
            self.txn_lookup_again(now);
        }
    }

    fn txn_fatal(&mut self, now: Instant, code: ErrorCode, message: &str) {
        self.enter_fatal(now, broker_error(code, message));
    }

    /// A transactional response arrived.
    pub(crate) fn handle_txn_response(
        &mut self,
        now: Instant,
        id: ConnId,
        version: i16,
        req: TxnRequest,
        frame: Bytes,
    ) {
        if let Some(t) = self.txn.as_mut() {
            t.in_flight = None;
        }
        let undecodable =
            |e: &dyn std::fmt::Display| format!("undecodable transactional response: {e}");
        match req {
            TxnRequest::FindCoordinator => {
                match decode_response_frame::<FindCoordinatorRequest>(frame, version) {
                    Ok((_, r)) => {
                        self.throttle_conn(now, id, version >= 2, r.throttle_time_ms);
                        let (err, node, addr) = coordinator_of(&r, version);
                        self.handle_find_coordinator(now, err, node, addr);
                    }
                    Err(e) => {
                        self.txn_lookup_again(now);
                        self.drop_conn(now, id, &undecodable(&e), true);
                    }
                }
            }
            TxnRequest::InitProducerId => {
                match decode_response_frame::<InitProducerIdRequest>(frame, version) {
                    Ok((_, r)) => {
                        self.throttle_conn(now, id, version >= 1, r.throttle_time_ms);
                        self.handle_txn_init_pid(now, r);
                    }
                    Err(e) => {
                        self.txn_lookup_again(now);
                        self.drop_conn(now, id, &undecodable(&e), true);
                    }
                }
            }
            TxnRequest::AddPartitions(parts) => {
                match decode_response_frame::<AddPartitionsToTxnRequest>(frame, version) {
                    Ok((_, r)) => {
                        self.throttle_conn(now, id, version >= 1, r.throttle_time_ms);
                        let mut results: Vec<(PartKey, ErrorCode)> = Vec::new();
                        for tr in &r.results_by_topic_v3_and_below {
                            let Some(tid) = self.topics.id_of(tr.name.as_str()) else {
                                continue;
                            };
                            for p in &tr.results_by_partition {
                                if p.partition_index >= 0 {
                                    results.push((
                                        (tid, p.partition_index as u32),
                                        ErrorCode(p.partition_error_code),
                                    ));
                                }
                            }
                        }
                        self.handle_add_partitions(now, parts, results);
                    }
                    Err(e) => {
                        self.txn_request_lost(now, &TxnRequest::AddPartitions(parts));
                        self.drop_conn(now, id, &undecodable(&e), true);
                    }
                }
            }
            TxnRequest::FindGroupCoordinator => {
                match decode_response_frame::<FindCoordinatorRequest>(frame, version) {
                    Ok((_, r)) => {
                        self.throttle_conn(now, id, version >= 2, r.throttle_time_ms);
                        let (err, node, addr) = coordinator_of(&r, version);
                        self.handle_find_group_coordinator(now, err, node, addr);
                    }
                    Err(e) => {
                        self.txn_request_lost(now, &TxnRequest::FindGroupCoordinator);
                        self.drop_conn(now, id, &undecodable(&e), true);
                    }
                }
            }
            TxnRequest::AddOffsets => {
                match decode_response_frame::<AddOffsetsToTxnRequest>(frame, version) {
                    Ok((_, r)) => {
                        self.throttle_conn(now, id, version >= 1, r.throttle_time_ms);
                        self.handle_add_offsets(now, ErrorCode(r.error_code));
                    }
                    Err(e) => {
                        self.txn_lookup_again(now);
                        self.drop_conn(now, id, &undecodable(&e), true);
                    }
                }
            }
            TxnRequest::OffsetCommit => {
                match decode_response_frame::<TxnOffsetCommitRequest>(frame, version) {
                    Ok((_, r)) => {
                        self.throttle_conn(now, id, version >= 1, r.throttle_time_ms);
                        let results: Vec<(String, i32, ErrorCode)> = r
                            .topics
                            .iter()
                            .flat_map(|t| {
                                t.partitions.iter().map(|p| {
                                    (t.name.clone(), p.partition_index, ErrorCode(p.error_code))
                                })
                            })
                            .collect();
                        self.handle_txn_offset_commit(now, results);
                    }
                    Err(e) => {
                        self.txn_request_lost(now, &TxnRequest::OffsetCommit);
                        self.drop_conn(now, id, &undecodable(&e), true);
                    }
                }
            }
            TxnRequest::EndTxn => match decode_response_frame::<EndTxnRequest>(frame, version) {
                Ok((_, r)) => {
                    self.throttle_conn(now, id, version >= 1, r.throttle_time_ms);
                    self.handle_end_txn(now, ErrorCode(r.error_code));
                }
                Err(e) => {
                    self.txn_lookup_again(now);
                    self.drop_conn(now, id, &undecodable(&e), true);
                }
            },
        }
    }

    fn handle_find_coordinator(&mut self, now: Instant, err: ErrorCode, node: i32, addr: String) {
        if err.is_ok() && node >= 0 {
            tracing::debug!(node, %addr, "transaction coordinator found");
            self.nodes.add(node, addr.clone());
            if let Some(t) = self.txn.as_mut() {
                t.coordinator = Some((node, addr));
                t.failures = 0;
            }
        } else if err == ErrorCode::COORDINATOR_NOT_AVAILABLE
            || err == ErrorCode::NOT_COORDINATOR
            || err == ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            || err.is_ok()
        {
            self.txn_retry(now, false);
        } else {
            self.txn_fatal(now, err, "FindCoordinator for the transactional.id failed");
        }
    }

    fn handle_find_group_coordinator(
        &mut self,
        now: Instant,
        err: ErrorCode,
        node: i32,
        addr: String,
    ) {
        if err.is_ok() && node >= 0 {
            tracing::debug!(node, %addr, "group coordinator found");
            self.nodes.add(node, addr.clone());
            if let Some(t) = self.txn.as_mut() {
                t.group_coordinator = Some((node, addr));
                t.failures = 0;
            }
        } else if err == ErrorCode::GROUP_AUTHORIZATION_FAILED {
            self.txn_batch_failed(&broker_error(
                err,
                "FindCoordinator for the group of the transaction's offsets",
            ));
        } else if err == ErrorCode::COORDINATOR_NOT_AVAILABLE
            || err == ErrorCode::NOT_COORDINATOR
            || err == ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            || err.is_ok()
        {
            self.txn_retry(now, false);
        } else {
            self.txn_fatal(now, err, "FindCoordinator for the offsets' group failed");
        }
    }

    /// AddOffsetsToTxn answered (the Java client's `AddOffsetsToTxnHandler`).
    fn handle_add_offsets(&mut self, now: Instant, err: ErrorCode) {
        if err.is_ok() {
            let Some(t) = self.txn.as_mut() else { return };
            t.failures = 0;
            t.offsets_added = true;
            if let Some(o) = t.offsets.front_mut() {
                o.added = true;
            }
            // The group's coordinator may differ from the last group's.
            t.group_coordinator = None;
        } else if err == ErrorCode::NOT_COORDINATOR || err == ErrorCode::COORDINATOR_NOT_AVAILABLE {
            self.txn_lookup_again(now);
        } else if err == ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            || err == ErrorCode::CONCURRENT_TRANSACTIONS
        {
            self.txn_retry(now, false);
        } else if err == ErrorCode::UNKNOWN_PRODUCER_ID
            || err == ErrorCode::INVALID_PRODUCER_ID_MAPPING
        {
            self.txn_needs_bump(broker_error(err, "AddOffsetsToTxn"));
        } else if err == ErrorCode::GROUP_AUTHORIZATION_FAILED
            || err == ErrorCode::TRANSACTION_ABORTABLE
        {
            self.txn_batch_failed(&broker_error(err, "AddOffsetsToTxn refused the group"));
        } else {
            self.txn_fatal(
                now,
                err,
                "AddOffsetsToTxn failed; the transactional producer cannot go on",
            );
        }
    }

    /// TxnOffsetCommit answered, per partition (the Java client's
    /// `TxnOffsetCommitHandler`): committed partitions are done, the rest
    /// retried (after looking the group coordinator up again if it moved).
    fn handle_txn_offset_commit(&mut self, now: Instant, results: Vec<(String, i32, ErrorCode)>) {
        let mut lookup = false;
        let mut abortable: Option<ErrorCode> = None;
        let mut fatal: Option<ErrorCode> = None;
        let mut done: Vec<(String, i32)> = Vec::new();
        for (topic, partition, e) in results {
            if e.is_ok() {
                done.push((topic, partition));
            } else if e == ErrorCode::COORDINATOR_NOT_AVAILABLE
                || e == ErrorCode::NOT_COORDINATOR
                || e == ErrorCode::REQUEST_TIMED_OUT
            {
                lookup = true;
            } else if e == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                || e == ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            {
                // Retried as it is.
            } else if e == ErrorCode::GROUP_AUTHORIZATION_FAILED
                || e == ErrorCode::FENCED_INSTANCE_ID
                || e == ErrorCode::UNKNOWN_MEMBER_ID
                || e == ErrorCode::ILLEGAL_GENERATION
                || e == ErrorCode::TRANSACTION_ABORTABLE
            {
                abortable.get_or_insert(e);
            } else {
                fatal.get_or_insert(e);
            }
        }
        if let Some(e) = fatal {
            self.txn_fatal(
                now,
                e,
                "TxnOffsetCommit failed; the transactional producer cannot go on",
            );
            return;
        }
        if let Some(e) = abortable {
            let msg = if e == ErrorCode::UNKNOWN_MEMBER_ID || e == ErrorCode::ILLEGAL_GENERATION {
                "TxnOffsetCommit: the consumer's group metadata is stale (it left the group)"
            } else {
                "TxnOffsetCommit refused the group's offsets"
            };
            self.txn_batch_failed(&broker_error(e, msg));
            return;
        }
        let Some(t) = self.txn.as_mut() else { return };
        let Some(o) = t.offsets.front_mut() else {
            return;
        };
        o.offsets.retain(|off| {
            !done
                .iter()
                .any(|(tp, p)| *tp == off.topic && *p == off.partition)
        });
        if o.offsets.is_empty() {
            let o = t.offsets.pop_front().expect("front");
            t.failures = 0;
            self.shared.txn_offsets_done(&o.op);
            return;
        }
        if lookup {
            t.group_coordinator = None;
        }
        self.txn_retry(now, false);
    }

    fn handle_txn_init_pid(&mut self, now: Instant, r: InitProducerIdResponse) {
        let err = ErrorCode(r.error_code);
        if err.is_ok() && r.producer_id >= 0 {
            let Some(t) = self.txn.as_mut() else { return };
            t.failures = 0;
            let init = t.init.take();
            let bumped = init.is_none();
            t.bump = false;
            tracing::info!(
                pid = r.producer_id,
                epoch = r.producer_epoch,
                bumped,
                "transactional producer id acquired"
            );
            if bumped {
                self.stats.epoch_bumps += 1;
            }
            self.set_transactional_pid(r.producer_id, r.producer_epoch);
            match init {
                Some(op) => self.shared.txn_op_done(&op, Phase::Ready),
                None => self.txn_end_done(now),
            }
        } else if err == ErrorCode::NOT_COORDINATOR || err == ErrorCode::COORDINATOR_NOT_AVAILABLE {
            self.txn_lookup_again(now);
        } else if err == ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            || err == ErrorCode::CONCURRENT_TRANSACTIONS
        {
            self.txn_retry(now, false);
        } else {
            let msg = if err == ErrorCode::INVALID_PRODUCER_EPOCH
                || err == ErrorCode::PRODUCER_FENCED
            {
                "InitProducerId: another producer with the same transactional.id fenced this one"
            } else {
                "InitProducerId failed; the transactional producer cannot go on"
            };
            self.txn_fatal(now, err, msg);
        }
    }

    fn handle_add_partitions(
        &mut self,
        now: Instant,
        asked: Vec<PartKey>,
        results: Vec<(PartKey, ErrorCode)>,
    ) {
        let mut retry: Option<bool> = None;
        let mut lookup = false;
        let mut abortable: Option<(ErrorCode, bool)> = None;
        let mut fatal: Option<ErrorCode> = None;
        for (_, err) in &results {
            let e = *err;
            if e.is_ok() {
                continue;
            }
            if e == ErrorCode::COORDINATOR_NOT_AVAILABLE || e == ErrorCode::NOT_COORDINATOR {
                lookup = true;
            } else if e == ErrorCode::CONCURRENT_TRANSACTIONS {
                let first = self.txn.as_ref().is_some_and(|t| t.added.is_empty());
                retry = Some(retry.unwrap_or(first) && first);
            } else if e == ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
                || e == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
            {
                retry = Some(false);
            } else if e == ErrorCode::INVALID_PRODUCER_EPOCH
                || e == ErrorCode::PRODUCER_FENCED
                || e == ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                || e == ErrorCode::INVALID_TXN_STATE
            {
                fatal.get_or_insert(e);
            } else if e == ErrorCode::UNKNOWN_PRODUCER_ID
                || e == ErrorCode::INVALID_PRODUCER_ID_MAPPING
            {
                abortable = Some((e, true));
            } else if e != ErrorCode::OPERATION_NOT_ATTEMPTED {
                abortable.get_or_insert((e, false));
            }
        }
        if let Some(e) = fatal {
            self.txn_fatal(now, e, "AddPartitionsToTxn refused the producer");
            return;
        }
        let answered: HashSet<PartKey> = results.iter().map(|(pk, _)| *pk).collect();
        let Some(t) = self.txn.as_mut() else { return };
        if lookup || retry.is_some() || (abortable.is_none() && answered.len() < asked.len()) {
            // Asked again as a whole (Java re-enqueues the request).
            for pk in asked {
                if !t.to_add.contains(&pk) && t.abortable.is_none() {
                    t.to_add.push(pk);
                }
            }
            if lookup {
                self.txn_lookup_again(now);
            } else {
                self.txn_retry(now, retry == Some(true));
            }
            return;
        }
        if let Some((e, bump)) = abortable {
            for pk in &asked {
                t.adding.remove(pk);
            }
            let err = broker_error(
                e,
                "AddPartitionsToTxn refused a partition of the transaction",
            );
            if bump {
                self.txn_needs_bump(err);
            } else {
                self.txn_batch_failed(&err);
            }
            return;
        }
        t.failures = 0;
        for pk in asked {
            t.adding.remove(&pk);
            t.added.insert(pk);
        }
        for pk in std::mem::take(&mut t.blocked) {
            self.mark_ready(pk);
        }
    }

    fn handle_end_txn(&mut self, now: Instant, err: ErrorCode) {
        if err.is_ok() {
            let Some(t) = self.txn.as_mut() else { return };
            t.failures = 0;
            let bump = t.bump;
            if let Some(e) = t.ending.as_mut() {
                e.ended = true;
            }
            if !bump {
                self.txn_end_done(now);
            }
        } else if err == ErrorCode::NOT_COORDINATOR || err == ErrorCode::COORDINATOR_NOT_AVAILABLE {
            self.txn_lookup_again(now);
        } else if err == ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            || err == ErrorCode::CONCURRENT_TRANSACTIONS
        {
            self.txn_retry(now, false);
        } else if err == ErrorCode::TRANSACTION_ABORTABLE {
            self.txn_batch_failed(&broker_error(
                err,
                "EndTxn: the transaction must be aborted",
            ));
        } else if err == ErrorCode::UNKNOWN_PRODUCER_ID
            || err == ErrorCode::INVALID_PRODUCER_ID_MAPPING
        {
            let e = broker_error(err, "EndTxn: the coordinator does not know the producer");
            // The running commit fails; an abort ends with a bump.
            let Some(t) = self.txn.as_mut() else { return };
            t.bump = true;
            if t.ending.as_ref().is_some_and(|e| !e.commit) {
                if let Some(e) = t.ending.as_mut() {
                    e.ended = true;
                }
            } else {
                self.txn_batch_failed(&e);
            }
        } else {
            self.txn_fatal(
                now,
                err,
                "EndTxn failed; the transactional producer cannot go on",
            );
        }
    }
}
