//! How the core ends a batch: the orchestration around the ledger's one
//! completion path (`ledger.rs`) — sequence bookkeeping before a failure,
//! re-arming the partition after.
//!
//! The ledger alone finishes a batch (memory, callback, handles, flush
//! accounting); the methods here only decide *which* result and what the
//! rest of the core does next.

use std::time::Instant;

use kring_protocol::ErrorCode;

use crate::delivery::{BatchError, BatchOk, DeliveryError, Outcome, RecordErrors};
use crate::topics::{OpenBatch, QueuedBatch};

use super::ledger::{Ledger, Outlet};
use super::{BatchKey, PartKey, ProducerCore};

/// Whether a produce attempt answered with `err` may nevertheless have been
/// appended. A Kafka broker raises these after appending to the leader's
/// log: REQUEST_TIMED_OUT and NOT_LEADER_OR_FOLLOWER while waiting for
/// acks=all, NOT_ENOUGH_REPLICAS_AFTER_APPEND, KAFKA_STORAGE_ERROR mid
/// write; UNKNOWN_SERVER_ERROR and NETWORK_EXCEPTION (the core's name for
/// a lost answer) say nothing, nor does a code this client does not know
/// (a newer broker's; the Java client reads it as UNKNOWN_SERVER_ERROR,
/// librdkafka as possibly persisted). Every other error is raised before
/// the append (validation, NOT_ENOUGH_REPLICAS, the sequence check).
pub(crate) fn may_have_appended(err: ErrorCode) -> bool {
    !err.is_known()
        || matches!(
            err,
            ErrorCode::REQUEST_TIMED_OUT
                | ErrorCode::NOT_LEADER_OR_FOLLOWER
                | ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND
                | ErrorCode::KAFKA_STORAGE_ERROR
                | ErrorCode::UNKNOWN_SERVER_ERROR
                | ErrorCode::NETWORK_EXCEPTION
        )
}

impl ProducerCore {
    /// The ledger and the parts of the core a completion touches, borrowed
    /// apart.
    pub(super) fn ledger_outlet(&mut self) -> (&mut Ledger, Outlet<'_>) {
        (
            &mut self.ledger,
            Outlet {
                shared: &self.shared,
                callback: self.callback.as_ref(),
                stats: &mut self.stats,
                topics: &mut self.topics,
            },
        )
    }

    /// The Timeout error for a held batch.
    pub(crate) fn timeout_error(&self, bk: BatchKey, stage: &'static str) -> DeliveryError {
        let b = &self.ledger[bk];
        DeliveryError::Timeout {
            timeout_ms: self.cfg.delivery_timeout.as_millis() as u64,
            stage,
            // The leader being unreachable now explains more than an
            // earlier broker error.
            last_error: self.conn_cause(b.part()).or_else(|| {
                b.last_error()
                    .map(|(code, message)| crate::LastError::Broker {
                        code,
                        message: message.cloned(),
                    })
            }),
            status: b.status(),
        }
    }

    /// Fails a sealed batch that never left the accumulator.
    pub(crate) fn fail_queued(&mut self, pk: PartKey, qb: QueuedBatch, err: DeliveryError) {
        if self.txn.is_some() {
            self.txn_batch_failed(&err);
        }
        let (ledger, out) = self.ledger_outlet();
        ledger.fail_queued(pk, qb, err, out);
        self.maybe_disarm_delivery(pk);
    }

    /// Fails a batch still open (never sealed). Returns its record count.
    pub(crate) fn fail_open(&mut self, pk: PartKey, ob: OpenBatch, err: DeliveryError) -> u32 {
        if self.txn.is_some() {
            self.txn_batch_failed(&err);
        }
        let (ledger, out) = self.ledger_outlet();
        let records = ledger.fail_open(pk, ob, err, out);
        self.maybe_disarm_delivery(pk);
        records
    }

    fn finish_held(&mut self, bk: BatchKey, outcome: Outcome) {
        let (ledger, out) = self.ledger_outlet();
        let pk = ledger.complete(bk, outcome, out);
        self.maybe_disarm_delivery(pk);
    }

    /// A held batch was written.
    pub(crate) fn complete_ok(&mut self, bk: BatchKey, ok: BatchOk) {
        self.finish_held(bk, Ok(ok));
    }

    /// A held batch failed for good. `broker_fatal` marks a batch the broker
    /// rejected after it was sent (its sequence numbers must be repaired).
    /// The caller has removed it from the partition's retry queue. The
    /// error's [`MessageStatus`](crate::delivery::MessageStatus) is the
    /// batch's: possibly persisted if any attempt may have been written.
    pub(crate) fn fail_batch(
        &mut self,
        now: Instant,
        bk: BatchKey,
        err: DeliveryError,
        broker_fatal: bool,
    ) {
        self.fail_batch_naming(now, bk, err, None, broker_fatal);
    }

    /// [`fail_batch`](Self::fail_batch) with the records the broker named
    /// invalid (`err` is then a [`DeliveryError::InvalidRecords`], made
    /// per record when read).
    pub(crate) fn fail_batch_naming(
        &mut self,
        now: Instant,
        bk: BatchKey,
        err: DeliveryError,
        records: Option<RecordErrors>,
        broker_fatal: bool,
    ) {
        let b = &self.ledger[bk];
        let pk = b.part();
        let err = err.with_status(b.status());
        let sequenced = (self.idem.enabled() && b.seq() >= 0)
            .then(|| matches!(err, DeliveryError::Timeout { .. }) && b.attempts() > 0);
        if self.txn.is_some() {
            // First: this error is the transaction's cause, not what the
            // sequences make of it.
            self.txn_batch_failed(&err);
        }
        if let Some(timed_out_after_send) = sequenced {
            self.seq_batch_failed(pk, bk, timed_out_after_send, broker_fatal);
        }
        self.finish_held(
            bk,
            Err(BatchError {
                error: err,
                records,
            }),
        );
        self.after_partition_progress(now, pk);
    }

    /// After a batch of `pk` completed or failed: re-resolve sequences and
    /// let waiting batches of the partition go.
    pub(crate) fn after_partition_progress(&mut self, _now: Instant, pk: PartKey) {
        if self.idem.enabled() {
            self.maybe_resolve_sequences(pk);
            self.maybe_release_hold(pk);
        }
        if self.part(pk).has_unsent_work() {
            self.mark_ready(pk);
        }
    }
}
