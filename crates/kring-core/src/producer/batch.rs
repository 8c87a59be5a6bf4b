//! Batches the I/O thread holds (drained from the accumulator: on the wire
//! or waiting for a retry), and the one place every batch is completed.
//!
//! **Invariant:** every batch reaches exactly one of `complete_ok`,
//! `fail_batch` or `finish_unsent` — or is split in two (`split.rs`), each
//! part then reaching exactly one of them for its own records — and those
//! are the only places that release its memory, run the callback, resolve
//! its handles and update the flush accounting. This is how "every record
//! gets exactly one final result" is kept.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use kring_protocol::record::SealedBatch;
use kring_protocol::ErrorCode;

use crate::delivery::{
    report_batch, BatchCompletion, BatchOk, CallbackPanics, DeliveryError, MessageStatus,
    PerRecord, Span,
};

use super::{BatchKey, PartKey, ProducerCore};

/// A batch's bytes: sealed but not stamped yet, or stamped for the wire.
#[derive(Debug)]
pub(crate) enum BatchData {
    Sealed(SealedBatch),
    Stamped(Bytes),
    /// Transiently empty while being stamped.
    Taken,
}

/// A batch drained from the accumulator.
#[derive(Debug)]
pub(crate) struct InBatch {
    pub(crate) serial: u64,
    /// The batch's place in its partition's record order: the serial it
    /// was drained with and, for a part of a split batch, its first
    /// record's index. The retry queue of a partition without idempotence
    /// is kept in this order (with idempotence, sequence order).
    pub(crate) order: (u64, u32),
    pub(crate) part: PartKey,
    pub(crate) data: BatchData,
    pub(crate) size: usize,
    pub(crate) records: u32,
    pub(crate) completion: Arc<BatchCompletion>,
    /// Which records of `completion`'s batch this is, when the broker
    /// refused the batch as too large and it was split; `None`: all.
    pub(crate) span: Option<Span>,
    pub(crate) created: Instant,
    pub(crate) reserved: usize,
    pub(crate) flush_gen: u64,
    /// Per-record timestamps and contexts (callback only).
    pub(crate) per_record: PerRecord,
    /// Sends so far.
    pub(crate) attempts: u32,
    /// Base sequence (-1 without idempotence), and the producer id and
    /// epoch it was stamped with.
    pub(crate) seq: i32,
    pub(crate) pid: i64,
    pub(crate) epoch: i16,
    /// Its sequence was rewritten by an epoch bump.
    pub(crate) seq_reset: bool,
    pub(crate) last_error: Option<ErrorCode>,
    /// An attempt may have been written: it went unanswered, or was
    /// answered with an error a broker may raise after appending
    /// ([`may_have_appended`]). Such a batch is only ever re-sent with the
    /// producer id, epoch and sequence it was sent with, so the broker can
    /// recognise it as a duplicate; cleared only when the broker proves it
    /// absent (see `idempotence.rs`). Fails as possibly persisted.
    pub(crate) maybe_written: bool,
}

/// Whether a produce attempt answered with `err` may nevertheless have been
/// appended. A Kafka broker raises these after appending to the leader's
/// log: REQUEST_TIMED_OUT and NOT_LEADER_OR_FOLLOWER while waiting for
/// acks=all, NOT_ENOUGH_REPLICAS_AFTER_APPEND, KAFKA_STORAGE_ERROR mid
/// write; UNKNOWN_SERVER_ERROR and NETWORK_EXCEPTION (the core's name for
/// a lost answer) say nothing. Every other error is raised before the
/// append (validation, NOT_ENOUGH_REPLICAS, the sequence check).
pub(crate) fn may_have_appended(err: ErrorCode) -> bool {
    matches!(
        err,
        ErrorCode::REQUEST_TIMED_OUT
            | ErrorCode::NOT_LEADER_OR_FOLLOWER
            | ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND
            | ErrorCode::KAFKA_STORAGE_ERROR
            | ErrorCode::UNKNOWN_SERVER_ERROR
            | ErrorCode::NETWORK_EXCEPTION
    )
}

impl InBatch {
    /// Whether the batch may be in the log if it fails now.
    pub(crate) fn status(&self) -> MessageStatus {
        if self.maybe_written {
            MessageStatus::PossiblyPersisted
        } else {
            MessageStatus::NotPersisted
        }
    }

    /// The wire bytes (stamped).
    pub(crate) fn bytes(&self) -> Bytes {
        match &self.data {
            BatchData::Stamped(b) => b.clone(),
            _ => unreachable!("batch sent before being stamped"),
        }
    }

    /// Stamps producer fields: the first time from the sealed batch (no
    /// copy), later by rewriting a copy (after an epoch bump).
    pub(crate) fn stamp(&mut self, pid: i64, epoch: i16, seq: i32) {
        self.pid = pid;
        self.epoch = epoch;
        self.seq = seq;
        self.data = match std::mem::replace(&mut self.data, BatchData::Taken) {
            BatchData::Sealed(s) => BatchData::Stamped(s.stamp(pid, epoch, seq, false)),
            BatchData::Stamped(b) => {
                BatchData::Stamped(kring_protocol::record::restamp(&b, pid, epoch, seq))
            }
            BatchData::Taken => unreachable!("stamp of a taken batch"),
        };
    }
}

impl ProducerCore {
    /// The Timeout error for a held batch.
    pub(crate) fn timeout_error(&self, bk: BatchKey, stage: &'static str) -> DeliveryError {
        let b = &self.batches[bk];
        DeliveryError::Timeout {
            timeout_ms: self.cfg.delivery_timeout.as_millis() as u64,
            stage,
            // The leader being unreachable now explains more than an
            // earlier broker error.
            last_error: self
                .conn_cause(b.part)
                .or(b.last_error.map(crate::LastError::Broker)),
            status: b.status(),
        }
    }

    /// The end of a batch that never left the accumulator (never split).
    #[allow(clippy::too_many_arguments)] // one batch's parts
    pub(crate) fn finish_unsent(
        &mut self,
        pk: PartKey,
        records: u32,
        completion: Arc<BatchCompletion>,
        reserved: usize,
        flush_gen: u64,
        per_record: PerRecord,
        outcome: Result<BatchOk, DeliveryError>,
    ) {
        self.finish(
            pk, records, completion, None, reserved, flush_gen, per_record, outcome,
        );
    }

    /// Common end of every batch (or part of a split batch): memory,
    /// callback, handles, flush accounting.
    #[allow(clippy::too_many_arguments)] // the pieces of a batch being finished
    fn finish(
        &mut self,
        pk: PartKey,
        records: u32,
        completion: Arc<BatchCompletion>,
        span: Option<Span>,
        reserved: usize,
        flush_gen: u64,
        per_record: PerRecord,
        outcome: Result<BatchOk, DeliveryError>,
    ) {
        self.shared.pool.release(reserved);
        if outcome.is_ok() {
            self.stats.batches_ok += 1;
            self.part(pk).stats.acked += u64::from(records);
        } else {
            self.stats.batches_failed += 1;
            self.part(pk).stats.failed += u64::from(records);
        }
        if let Some(cb) = &self.callback {
            let topic = self.topics[pk.0 as usize].name.clone();
            let first = span.map_or(0, |s| s.first);
            let panics = report_batch(cb, &topic, pk.1 as i32, first, &per_record, &outcome);
            if panics.count > 0 {
                self.callback_panicked(&topic, panics);
            }
        }
        let completed = completion.complete_part(span, outcome);
        debug_assert!(completed, "a batch completed twice");
        self.pending_batches -= 1;
        let e = self.incomplete.entry(flush_gen).or_insert(0);
        *e -= 1;
        if *e == 0 {
            self.incomplete.remove(&flush_gen);
        }
        self.maybe_disarm_delivery(pk);
    }

    /// The delivery callback panicked (caught): the first time logged as a
    /// warning, later only counted (`CoreStats::callback_panics`) and
    /// logged at debug level, so a callback that always panics does not
    /// flood the log.
    fn callback_panicked(&mut self, topic: &str, panics: CallbackPanics) {
        let first_ever = self.stats.callback_panics == 0;
        self.stats.callback_panics += panics.count;
        self.shared
            .callback_panics
            .fetch_add(panics.count, std::sync::atomic::Ordering::Relaxed);
        let message = panics.first.unwrap_or_default();
        if first_ever {
            tracing::warn!(
                topic,
                panic = %message,
                "the on_delivery callback panicked; caught, the record's result stands and later records are reported as usual (further panics are counted in callback_panics)"
            );
        } else {
            tracing::debug!(topic, panic = %message, count = panics.count, "the on_delivery callback panicked again");
        }
    }

    fn finish_held(&mut self, bk: BatchKey, outcome: Result<BatchOk, DeliveryError>) {
        let b = self.batches.remove(bk);
        self.finish(
            b.part,
            b.records,
            b.completion,
            b.span,
            b.reserved,
            b.flush_gen,
            b.per_record,
            outcome,
        );
    }

    /// A held batch was written.
    pub(crate) fn complete_ok(&mut self, bk: BatchKey, ok: BatchOk) {
        self.finish_held(bk, Ok(ok));
    }

    /// A held batch failed for good. `broker_fatal` marks a batch the broker
    /// rejected after it was sent (its sequence numbers must be repaired).
    /// The caller has removed it from the partition's retry queue. The
    /// error's [`MessageStatus`] is the batch's: possibly persisted if any
    /// attempt may have been written.
    pub(crate) fn fail_batch(
        &mut self,
        now: Instant,
        bk: BatchKey,
        err: DeliveryError,
        broker_fatal: bool,
    ) {
        let pk = self.batches[bk].part;
        let err = err.with_status(self.batches[bk].status());
        if self.idem.enabled && self.batches[bk].seq >= 0 {
            let timed_out_after_send =
                matches!(err, DeliveryError::Timeout { .. }) && self.batches[bk].attempts > 0;
            self.seq_batch_failed(pk, bk, timed_out_after_send, broker_fatal);
        }
        self.finish_held(bk, Err(err));
        self.after_partition_progress(now, pk);
    }

    /// After a batch of `pk` completed or failed: re-resolve sequences and
    /// let waiting batches of the partition go.
    pub(crate) fn after_partition_progress(&mut self, _now: Instant, pk: PartKey) {
        if self.idem.enabled {
            self.maybe_resolve_sequences(pk);
            self.maybe_release_hold(pk);
        }
        if self.part(pk).has_unsent_work() {
            self.mark_ready(pk);
        }
    }
}
