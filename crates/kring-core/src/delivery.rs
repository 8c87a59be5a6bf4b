//! Delivery results, shared per batch.
//!
//! Why per batch: a batch of N records is accepted or rejected by the broker
//! as a unit, so its result is stored once in a [`BatchCompletion`] and each
//! record's [`DeliveryHandle`] is `(Arc<BatchCompletion>, index)`. Completing
//! a batch of 10,000 records is one lock, one store and one condvar
//! broadcast — no per-record allocation or wake (architecture.md).
//!
//! A batch the broker refuses as too large is split by the core into parts
//! sent (and answered) separately; the parts complete the same
//! `BatchCompletion`, each for its span of records with its own base
//! offset, and handles resolve when every part has. Only then is a small
//! table of part results allocated; the normal path stays one store.
//!
//! Three ways to learn a result: block ([`DeliveryHandle::wait`]), await
//! (`DeliveryHandle` is a `Future`; wakers are registered only when a task
//! actually polls a pending handle), or a per-producer callback
//! ([`DeliveryCallback`]) the core calls once per record on the I/O thread,
//! for fire-and-forget senders that never look at handles.

use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::oneshot::OneShot;
use crate::producer::Settle;

/// Where a record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Partition the record was written to.
    pub partition: i32,
    /// The record's offset (`base_offset + index`), or -1 when the broker did
    /// not report one (acks=0, or a DUPLICATE_SEQUENCE_NUMBER answer).
    pub offset: i64,
    /// The broker's LogAppendTime when the topic uses it, else the record's
    /// own (create) timestamp, in milliseconds.
    pub timestamp_ms: i64,
}

/// Whether a record that was not delivered may nevertheless be in the log
/// (librdkafka's `rd_kafka_msg_status_t` for failed messages).
///
/// A producer cannot always know: a request may be written by the broker
/// and its answer lost. Re-sending a `NotPersisted` record cannot duplicate
/// it; re-sending a `PossiblyPersisted` one may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    /// The record is not in the log: it was never sent, or every attempt
    /// was answered with an error raised before the broker appends (for
    /// example CORRUPT_MESSAGE, NOT_ENOUGH_REPLICAS,
    /// OUT_OF_ORDER_SEQUENCE_NUMBER).
    NotPersisted,
    /// The record may be in the log: an attempt went unanswered (lost
    /// connection, request timeout, undecodable response) or was answered
    /// with an error the broker may raise after appending
    /// (REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    /// NOT_LEADER_OR_FOLLOWER, KAFKA_STORAGE_ERROR, UNKNOWN_SERVER_ERROR, a
    /// code kring does not know).
    PossiblyPersisted,
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MessageStatus::NotPersisted => "not persisted",
            MessageStatus::PossiblyPersisted => "possibly persisted",
        })
    }
}

/// Why a record was not delivered. Every record that is not delivered gets
/// exactly one of these; nothing is dropped silently. Each says whether the
/// record may nevertheless have been written: [`DeliveryError::status`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// `delivery.timeout.ms` passed before the record was acknowledged
    /// (while waiting in the accumulator, for a leader, in retry backoff or
    /// in flight). `status` says whether it may have been written.
    #[error(
        "delivery timed out after {timeout_ms} ms ({stage}); last error: {} ({status})",
        crate::cause::OrNone(last_error)
    )]
    Timeout {
        /// The configured delivery timeout.
        timeout_ms: u64,
        /// Where the batch was when it expired.
        stage: &'static str,
        /// The last failure the batch or its broker's connection saw
        /// (connection refused, a broker error code, ...), if any.
        last_error: Option<crate::LastError>,
        /// Whether the record may be in the log.
        status: MessageStatus,
    },
    /// The broker rejected the batch with a non-retriable error.
    #[error("broker rejected the batch: {name} (error code {code}){} ({status})", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        /// Kafka error code.
        code: i16,
        /// The error's name.
        name: &'static str,
        /// The broker's error message, when it sent one.
        message: Option<Arc<str>>,
        /// Whether the record may be in the log (an earlier attempt may
        /// have been written).
        status: MessageStatus,
    },
    /// The broker refused the record's batch naming some of its records as
    /// invalid (KIP-467 record errors, with INVALID_RECORD or
    /// INVALID_TIMESTAMP: a record without a key for a compacted topic, a
    /// timestamp out of range, ...). As in the Java client the whole batch
    /// fails, not retried: a record the broker named carries its reason in
    /// `record_error`; the others (`record_error` is `None`) were refused
    /// with their batch and may be sent again alone.
    #[error("{}", invalid_records_text(*code, name, message, record_error, *invalid_records, *status))]
    InvalidRecords {
        /// Kafka error code of the batch.
        code: i16,
        /// The error's name.
        name: &'static str,
        /// The broker's error message for the batch, when it sent one.
        message: Option<Arc<str>>,
        /// Why the broker refused this record, when it named it: its
        /// message for the record, else the batch's, else the code's
        /// description. `None`: this record was not named.
        record_error: Option<Arc<str>>,
        /// How many records of the batch the broker named.
        invalid_records: u32,
        /// Whether the record may be in the log (an earlier attempt may
        /// have been written).
        status: MessageStatus,
    },
    /// A retriable error persisted beyond `retries` attempts.
    #[error(
        "gave up after {attempts} attempts; last error: {name} (error code {code}){} ({status})",
        message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
    )]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// Kafka error code of the last failure (or -1 for a network error).
        code: i16,
        /// The error's name.
        name: &'static str,
        /// The broker's error message with the last failure, when it sent
        /// one (or kring's description of a lost connection).
        message: Option<Arc<str>>,
        /// Whether the record may be in the log.
        status: MessageStatus,
    },
    /// The batch could not be encoded (a compression codec failed). Never
    /// sent: not persisted.
    #[error("batch encoding failed: {0}")]
    Encode(Arc<str>),
    /// The partition no longer exists: its topic was deleted and created
    /// again (a new topic id in metadata) with fewer partitions while the
    /// record was still buffered. Never sent: not persisted.
    #[error("topic {topic} partition {partition} does not exist")]
    UnknownPartition {
        /// Topic name.
        topic: Arc<str>,
        /// Partition.
        partition: i32,
    },
    /// The broker refused the record's batch as larger than the topic's
    /// `max.message.bytes` (MESSAGE_TOO_LARGE) and the batch held this
    /// record alone, so it cannot be split further: the record itself is
    /// too large for the topic. (A batch of several records refused this
    /// way is split in two and each half sent again, as the Java client
    /// does, until every record is written or stands alone.)
    #[error("record too large for the topic: its batch of {batch_bytes} bytes was refused with MESSAGE_TOO_LARGE{} ({status})", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    MessageTooLarge {
        /// Size of the refused batch on the wire (header included,
        /// compressed if the producer compresses).
        batch_bytes: usize,
        /// The broker's error message, when it sent one.
        message: Option<Arc<str>>,
        /// Whether the record may be in the log (only if an earlier
        /// attempt went unanswered).
        status: MessageStatus,
    },
    /// The record was still buffered (not yet in a request) when
    /// `purge` was called. Never sent: not persisted.
    #[error("purged from the producer's buffer before it was sent (not persisted)")]
    Purged,
    /// The producer was closed without waiting for this record
    /// (`abort`), or is in a fatal state. A record on the wire when it
    /// was aborted is possibly persisted.
    #[error("producer aborted: {reason} ({status})")]
    Aborted {
        /// Why.
        reason: Arc<str>,
        /// Whether the record may be in the log.
        status: MessageStatus,
    },
}

impl DeliveryError {
    /// Whether the record may nevertheless be in the log.
    pub fn status(&self) -> MessageStatus {
        match self {
            DeliveryError::Timeout { status, .. }
            | DeliveryError::Broker { status, .. }
            | DeliveryError::InvalidRecords { status, .. }
            | DeliveryError::RetriesExhausted { status, .. }
            | DeliveryError::Aborted { status, .. }
            | DeliveryError::MessageTooLarge { status, .. } => *status,
            DeliveryError::Encode(_)
            | DeliveryError::UnknownPartition { .. }
            | DeliveryError::Purged => MessageStatus::NotPersisted,
        }
    }

    /// The same error with `status` (for the variants that carry one).
    pub(crate) fn with_status(mut self, s: MessageStatus) -> Self {
        match &mut self {
            DeliveryError::Timeout { status, .. }
            | DeliveryError::Broker { status, .. }
            | DeliveryError::InvalidRecords { status, .. }
            | DeliveryError::RetriesExhausted { status, .. }
            | DeliveryError::Aborted { status, .. }
            | DeliveryError::MessageTooLarge { status, .. } => *status = s,
            DeliveryError::Encode(_)
            | DeliveryError::UnknownPartition { .. }
            | DeliveryError::Purged => {}
        }
        self
    }
}

/// The text of [`DeliveryError::InvalidRecords`].
fn invalid_records_text(
    code: i16,
    name: &str,
    message: &Option<Arc<str>>,
    record_error: &Option<Arc<str>>,
    invalid_records: u32,
    status: MessageStatus,
) -> String {
    let plural = if invalid_records == 1 { "" } else { "s" };
    match record_error {
        Some(why) => format!(
            "broker rejected the record as invalid: {name} (error code {code}): {why} ({status})"
        ),
        None => format!(
            "broker rejected the batch: {name} (error code {code}){}; this record was refused with its batch, which held {invalid_records} invalid record{plural} ({status})",
            message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
        ),
    }
}

/// The records of a batch the broker named invalid (KIP-467), sorted by
/// their index in the batch as sent (a part, if it was split), each with
/// its reason. Kept once per batch with its shared error; each record's
/// own [`DeliveryError::InvalidRecords`] is made when it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordErrors(Arc<[(u32, Arc<str>)]>);

impl RecordErrors {
    /// From `(index, reason)` pairs (sorted here; a repeated index keeps
    /// its first reason).
    pub(crate) fn new(mut errors: Vec<(u32, Arc<str>)>) -> Self {
        errors.sort_by_key(|e| e.0);
        errors.dedup_by_key(|e| e.0);
        RecordErrors(errors.into())
    }

    /// How many records are named.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    fn reason(&self, index: u32) -> Option<Arc<str>> {
        self.0
            .binary_search_by_key(&index, |e| e.0)
            .ok()
            .map(|i| self.0[i].1.clone())
    }
}

/// A failed batch's error and, when the broker named invalid records, the
/// list each record's own error is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchError {
    pub(crate) error: DeliveryError,
    pub(crate) records: Option<RecordErrors>,
}

impl From<DeliveryError> for BatchError {
    fn from(error: DeliveryError) -> Self {
        BatchError {
            error,
            records: None,
        }
    }
}

impl BatchError {
    /// Record `index`'s error (its index in the batch, or part, as sent).
    pub(crate) fn for_record(&self, index: u32) -> DeliveryError {
        match (&self.error, &self.records) {
            (DeliveryError::InvalidRecords { .. }, Some(r)) => {
                let mut e = self.error.clone();
                if let DeliveryError::InvalidRecords { record_error, .. } = &mut e {
                    *record_error = r.reason(index);
                }
                e
            }
            _ => self.error.clone(),
        }
    }
}

/// A successfully written batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchOk {
    pub(crate) base_offset: i64,
    /// -1 unless the topic uses LogAppendTime.
    pub(crate) log_append_time: i64,
}

pub(crate) type Outcome = Result<BatchOk, BatchError>;

/// The records `first..first + count` of a batch, when the broker refused
/// the batch as too large and the core split it: each part is sent (and
/// completed) on its own, with its own base offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) first: u32,
    pub(crate) count: u32,
}

/// The results of a batch that was split (only then allocated).
#[derive(Debug)]
struct Parts {
    /// Records without a result yet.
    remaining: u32,
    /// Each completed part: its span and result.
    done: Vec<(Span, Outcome)>,
}

#[derive(Debug, Default)]
struct Slot {
    /// The whole batch's result (the normal path: one store).
    result: Option<Outcome>,
    /// Set when the batch was split: the parts' results.
    parts: Option<Box<Parts>>,
}

impl Slot {
    /// Record `index`'s result, once the batch is complete.
    fn record_result(
        &self,
        partition: i32,
        index: u32,
        timestamp_ms: i64,
    ) -> Option<Result<RecordMetadata, DeliveryError>> {
        if let Some(o) = &self.result {
            return Some(outcome_for(o, partition, index, timestamp_ms));
        }
        let parts = self.parts.as_ref().filter(|p| p.remaining == 0)?;
        // Sorted by first index once the last part arrived.
        let i = parts
            .done
            .partition_point(|(s, _)| s.first.saturating_add(s.count) <= index);
        let (span, o) = parts
            .done
            .get(i)
            .filter(|(s, _)| index >= s.first && index - s.first < s.count)?;
        Some(outcome_for(o, partition, index - span.first, timestamp_ms))
    }
}

fn outcome_for(
    o: &Outcome,
    partition: i32,
    index_in_part: u32,
    timestamp_ms: i64,
) -> Result<RecordMetadata, DeliveryError> {
    match o {
        Ok(ok) => Ok(ok.metadata(partition, index_in_part, timestamp_ms)),
        Err(e) => Err(e.for_record(index_in_part)),
    }
}

/// The shared result of one batch. Created when the batch opens; completed
/// exactly once by the core — as a whole, or, when the broker refused the
/// batch as too large and the core split it, part by part (each record's
/// result then comes from its part: the part's base offset plus the
/// record's position in the part). Handles resolve when every record has
/// its result.
pub struct BatchCompletion {
    partition: i32,
    /// Settled when every record has its result.
    slot: OneShot<Slot>,
}

impl fmt::Debug for BatchCompletion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchCompletion")
            .field("partition", &self.partition)
            .field("done", &self.slot.is_settled())
            .finish()
    }
}

impl BatchCompletion {
    pub(crate) fn new(partition: i32) -> Arc<Self> {
        Arc::new(BatchCompletion {
            partition,
            slot: OneShot::default(),
        })
    }

    /// Makes a finished batch's completion new again, for a batch of
    /// `partition`, if nothing else refers to it (no handle could see the
    /// next batch's result). False, and nothing changed, otherwise.
    pub(crate) fn reset(this: &mut Arc<Self>, partition: i32) -> bool {
        match Arc::get_mut(this) {
            Some(c) => {
                *c = BatchCompletion {
                    partition,
                    slot: OneShot::default(),
                };
                true
            }
            None => false,
        }
    }

    /// The partition of the batch.
    #[cfg(test)]
    pub(crate) fn partition(&self) -> i32 {
        self.partition
    }

    /// Whether the batch has its final result.
    pub fn is_done(&self) -> bool {
        self.slot.is_settled()
    }

    /// Stores the result and wakes every waiter. Returns false (and changes
    /// nothing) if the batch was already complete or was split: a batch is
    /// completed at most once, and a split batch only through its parts.
    pub(crate) fn complete(&self, _key: &Settle, outcome: Outcome) -> bool {
        self.slot
            .settle(|s| {
                if s.parts.is_some() {
                    return (false, false);
                }
                s.result = Some(outcome);
                (true, true)
            })
            .unwrap_or(false)
    }

    /// Marks the batch, of `records` records, as split: from now on it is
    /// completed only by [`complete_part`](Self::complete_part), once per
    /// part. Splitting a part again needs no call (the parts still cover
    /// the same records). Returns false if it was already complete.
    pub(crate) fn split(&self, _key: &Settle, records: u32) -> bool {
        self.slot
            .settle(|s| {
                if s.parts.is_none() {
                    s.parts = Some(Box::new(Parts {
                        remaining: records,
                        done: Vec::with_capacity(2),
                    }));
                }
                (false, true)
            })
            .unwrap_or(false)
    }

    /// Completes the records of `span` (a part of a split batch), or the
    /// whole batch if `span` is `None`. The batch is done (handles resolve,
    /// waiters wake) once every record has its result. Returns false (and
    /// changes nothing) if those records already have one.
    pub(crate) fn complete_part(&self, key: &Settle, span: Option<Span>, outcome: Outcome) -> bool {
        let Some(span) = span else {
            return self.complete(key, outcome);
        };
        self.slot
            .settle(|s| {
                let Some(parts) = s.parts.as_mut() else {
                    return (false, false);
                };
                let end = span.first.saturating_add(span.count);
                let overlaps = parts
                    .done
                    .iter()
                    .any(|(d, _)| span.first < d.first + d.count && d.first < end);
                if overlaps || span.count > parts.remaining {
                    return (false, false);
                }
                parts.remaining -= span.count;
                parts.done.push((span, outcome));
                if parts.remaining > 0 {
                    return (false, true);
                }
                parts.done.sort_unstable_by_key(|(s, _)| s.first);
                (true, true)
            })
            .unwrap_or(false)
    }
}

/// Logs the first waker panic only (a broken executor would otherwise log
/// once per batch).
static WAKER_PANIC_LOGGED: AtomicBool = AtomicBool::new(false);

/// Wakes a task registered by a delivery or flush future. A waker is an
/// executor's code: one that panics must not stop the other wakers, nor
/// unwind into the I/O thread that completes batches.
pub(crate) fn wake_fenced(w: Waker) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| w.wake())) {
        if !WAKER_PANIC_LOGGED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                panic = %panic_message(&*panic),
                "a future's waker panicked; caught (further waker panics are not logged)"
            );
        }
    }
}

/// The text of a caught panic.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

impl BatchOk {
    /// The offset of record `index`: `base_offset + index`, or -1 (unknown)
    /// when the broker gave none (negative) or one so large that the sum
    /// overflows — a broker cannot have written there; `handle_produce`
    /// already reports such batches as unknown.
    pub(crate) fn offset(&self, index: u32) -> i64 {
        if self.base_offset < 0 {
            return -1;
        }
        self.base_offset.checked_add(i64::from(index)).unwrap_or(-1)
    }

    fn metadata(&self, partition: i32, index: u32, timestamp_ms: i64) -> RecordMetadata {
        RecordMetadata {
            partition,
            offset: self.offset(index),
            timestamp_ms: if self.log_append_time >= 0 {
                self.log_append_time
            } else {
                timestamp_ms
            },
        }
    }
}

/// One record's pending delivery result.
///
/// Cheap to hold (an `Arc`, an index and the record's timestamp). Resolve it
/// by [`wait`](Self::wait), by awaiting it, or by
/// [`try_result`](Self::try_result).
#[derive(Debug)]
pub struct DeliveryHandle {
    batch: Arc<BatchCompletion>,
    index: u32,
    /// Where this handle's task waker sits in the batch's list, once
    /// polled (see `OneShot::poll_settled_in`).
    waker_slot: u32,
    timestamp_ms: i64,
}

impl Clone for DeliveryHandle {
    /// A clone is awaited on its own: it registers its own waker.
    fn clone(&self) -> Self {
        DeliveryHandle::new(self.batch.clone(), self.index, self.timestamp_ms)
    }
}

impl DeliveryHandle {
    /// The address of its batch's completion (tests: is it a reused one?).
    #[cfg(test)]
    pub(crate) fn batch_addr(&self) -> usize {
        Arc::as_ptr(&self.batch) as usize
    }

    pub(crate) fn new(batch: Arc<BatchCompletion>, index: u32, timestamp_ms: i64) -> Self {
        DeliveryHandle {
            batch,
            index,
            waker_slot: crate::oneshot::NO_SLOT,
            timestamp_ms,
        }
    }

    /// The record's index in its batch.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The batch this record belongs to.
    pub fn batch(&self) -> &Arc<BatchCompletion> {
        &self.batch
    }

    /// The result if it is known, without blocking.
    pub fn try_result(&self) -> Option<Result<RecordMetadata, DeliveryError>> {
        if !self.batch.is_done() {
            return None;
        }
        self.result_in(&self.batch.slot.lock().value)
    }

    fn result_in(&self, s: &Slot) -> Option<Result<RecordMetadata, DeliveryError>> {
        s.record_result(self.batch.partition, self.index, self.timestamp_ms)
    }

    /// Blocks the calling thread until the result is known.
    pub fn wait(&self) -> Result<RecordMetadata, DeliveryError> {
        let s = self.batch.slot.wait();
        self.result_in(&s.value)
            .expect("a settled batch has every record's result")
    }

    /// Blocks up to `timeout`; `None` if the result is still unknown then.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<RecordMetadata, DeliveryError>> {
        let (s, done) = self.batch.slot.wait_timeout(timeout);
        if !done {
            return None;
        }
        self.result_in(&s.value)
    }
}

impl Future for DeliveryHandle {
    type Output = Result<RecordMetadata, DeliveryError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.batch.slot.poll_settled_in(cx, &mut this.waker_slot) {
            Some(s) => Poll::Ready(
                this.result_in(&s.value)
                    .expect("a settled batch has every record's result"),
            ),
            None => Poll::Pending,
        }
    }
}

/// What the per-producer callback sees for each record.
#[derive(Debug)]
#[non_exhaustive]
pub struct DeliveryReport<'a> {
    /// Topic of the record.
    pub topic: &'a str,
    /// The record's partition (also when it failed).
    pub partition: i32,
    /// Index of the record in its batch (its order of `send` within the
    /// batch).
    pub index: u32,
    /// The value the record was sent with
    /// ([`RecordRef::context`](crate::RecordRef::context)); 0 for none.
    pub context: u64,
    /// The record's result.
    pub result: Result<RecordMetadata, &'a DeliveryError>,
}

/// A batch's per-record side table, kept only when a delivery callback is
/// set: each record's timestamp and, from the first record that carries a
/// context on, each record's context (the earlier ones 0). A batch whose
/// records carry none never allocates the second vector, so sending without
/// context costs what it did before contexts existed.
///
/// Timestamps are kept run-length encoded: records sent in the same
/// millisecond (nearly all of a batch's, at any real rate) share one
/// entry, so a record costs a compare and an increment rather than a
/// vector push, and a batch's table stays a few entries long instead of
/// regrowing with every doubling of its record count.
///
/// The first [`INLINE_RUNS`] runs are kept inline, each as milliseconds
/// after the first and a count in 16 bits; only later runs (or one that
/// does not fit 16 bits) go to a vector. Why: at 10,000 partitions a batch
/// holds a handful of records, each usually its own run (the partition's
/// records come milliseconds apart), and a vector is a separate heap
/// object, cold again by the time the partition's next record comes: the
/// sending thread missed on it at every append past the inline runs, and
/// the I/O thread again when it reported the batch (4 % of the CPU at
/// 10,000 partitions with two inline runs of 16 bytes each).
#[derive(Debug, Default)]
#[repr(C)] // what `push` reads first (see `topics::PartitionSlot`)
pub(crate) struct PerRecord {
    /// The first run's timestamp; inline runs are kept relative to it.
    base: i64,
    /// Inline runs: (ms after `base`, records in a row with it); the first
    /// `inline_len` are in use.
    inline: [(u16, u16); INLINE_RUNS],
    /// Records in the table.
    len: u32,
    inline_len: u8,
    /// A run went to `later`: every run after it goes there too.
    spilled: bool,
    /// `contexts` is not empty: the one thing `push` asks of it.
    has_contexts: bool,
    contexts: Vec<u64>,
    /// The runs after the inline ones, in record order.
    later: Vec<(i64, u32)>,
}

/// How many runs of timestamps a [`PerRecord`] keeps inline.
const INLINE_RUNS: usize = 8;

/// What [`PerRecord::plan_push`] found one more record needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    /// One more in the inline run at this index (the last one).
    SameRun(usize),
    /// A new inline run, this many ms after the first (a free one, with
    /// no context and nothing spilled: what `push` would make of it).
    NewInline(u16),
    /// Anything else (a run past the inline ones, a context), as
    /// [`PerRecord::push`] does.
    Other,
}

/// The capacity a [`PerRecord`] vector of capacity `cap` grows to when it
/// must hold `need` entries: doubling, at least 4. Explicit (with
/// `reserve_exact`) rather than `Vec`'s own policy, so the growth is known
/// before it happens and charged to `buffer.memory` first.
fn grown(cap: usize, need: usize) -> usize {
    need.max(cap.saturating_mul(2)).max(4)
}

impl PerRecord {
    /// How many of its first bytes an append touches.
    #[cfg(test)]
    pub(crate) const HOT_BYTES: usize = std::mem::offset_of!(PerRecord, contexts);

    /// Records one more record.
    #[inline(always)]
    pub(crate) fn push(&mut self, timestamp_ms: i64, context: u64) {
        if context != 0 || self.has_contexts {
            self.push_context(context);
        }
        let n = self.inline_len as usize;
        if !self.spilled && n != 0 {
            let last = &mut self.inline[n - 1];
            if self.base + i64::from(last.0) == timestamp_ms && last.1 != u16::MAX {
                last.1 += 1;
                self.len += 1;
                return;
            }
        }
        self.new_run(timestamp_ms, 1);
        self.len += 1;
    }

    /// How [`push_planned`](Self::push_planned) will record one more
    /// record with `timestamp_ms` and `context`, decided before the record
    /// is appended; `None` if it makes a vector grow (see
    /// [`push_grows`](Self::push_grows)), which must be charged first.
    ///
    /// Why: the append fast path asked `push_grows` before appending and
    /// then `push` after, and both looked for the same last run (a record
    /// sharing its millisecond with the one before, nearly all of them):
    /// the second look is the plan. A record starting a new inline run
    /// (at 10,000 partitions, most of them: a partition's records come
    /// milliseconds apart) is planned too, and recorded without `push`'s
    /// call to `new_run`.
    #[inline(always)]
    pub(crate) fn plan_push(&self, timestamp_ms: i64, context: u64) -> Option<Push> {
        if context == 0 && !self.has_contexts && !self.spilled {
            let n = self.inline_len as usize;
            if n != 0 {
                let i = (n - 1) % INLINE_RUNS;
                let last = self.inline[i];
                if self.base + i64::from(last.0) == timestamp_ms && last.1 != u16::MAX {
                    return Some(Push::SameRun(i));
                }
            }
            if let Some((delta, _)) = self.as_inline(timestamp_ms, 1) {
                return Some(Push::NewInline(delta));
            }
        }
        (!self.push_grows(timestamp_ms, context)).then_some(Push::Other)
    }

    /// Records one more record as [`plan_push`](Self::plan_push) planned
    /// (nothing changed the table in between): what [`push`](Self::push)
    /// does.
    #[inline(always)]
    pub(crate) fn push_planned(&mut self, plan: Push, timestamp_ms: i64, context: u64) {
        match plan {
            Push::SameRun(i) => {
                self.inline[i % INLINE_RUNS].1 += 1;
                self.len += 1;
            }
            Push::NewInline(delta) => {
                let n = self.inline_len as usize;
                if n == 0 {
                    self.base = timestamp_ms;
                }
                self.inline[n % INLINE_RUNS] = (delta, 1);
                self.inline_len += 1;
                self.len += 1;
            }
            Push::Other => self.push(timestamp_ms, context),
        }
    }

    /// Heap bytes the table holds (its vectors' capacity): charged to
    /// `buffer.memory` with its batch (see `shared`).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.contexts.capacity() * std::mem::size_of::<u64>()
            + self.later.capacity() * std::mem::size_of::<(i64, u32)>()
    }

    /// Whether recording one more record with `timestamp_ms` and `context`
    /// makes a vector grow (an allocation). Touches the vectors only when
    /// the record could go to one: a record sharing its millisecond with
    /// the one before and without a context reads the inline runs alone.
    #[inline(always)]
    pub(crate) fn push_grows(&self, timestamp_ms: i64, context: u64) -> bool {
        ((context != 0 || self.has_contexts) && self.len as usize >= self.contexts.capacity())
            || (self.adds_run_later(timestamp_ms) && self.later.len() == self.later.capacity())
    }

    /// [`heap_bytes`](Self::heap_bytes) after recording one more record
    /// with `timestamp_ms` and `context` (the vectors grow exactly as
    /// predicted here: see `grown`).
    pub(crate) fn heap_bytes_after_push(&self, timestamp_ms: i64, context: u64) -> usize {
        let mut contexts = self.contexts.capacity();
        if (context != 0 || self.has_contexts) && self.len as usize >= contexts {
            contexts = grown(contexts, self.len as usize + 1);
        }
        let mut later = self.later.capacity();
        if self.adds_run_later(timestamp_ms) && self.later.len() == later {
            later = grown(later, later + 1);
        }
        contexts * std::mem::size_of::<u64>() + later * std::mem::size_of::<(i64, u32)>()
    }

    /// Whether one more record with `timestamp_ms` starts a run in
    /// `later` (as `push` and `new_run` decide).
    #[inline(always)]
    fn adds_run_later(&self, timestamp_ms: i64) -> bool {
        if !self.spilled {
            let n = self.inline_len as usize;
            if n != 0 {
                let last = self.inline[n - 1];
                if self.base + i64::from(last.0) == timestamp_ms && last.1 != u16::MAX {
                    return false;
                }
            }
            if self.as_inline(timestamp_ms, 1).is_some() {
                return false;
            }
        }
        !matches!(self.later.last(), Some(last) if last.0 == timestamp_ms && last.1 != u32::MAX)
    }

    /// Whether the table holds heap memory a later batch could reuse (a
    /// context vector, or runs beyond the inline ones). One that does not
    /// is no better than a new one.
    pub(crate) fn has_capacity(&self) -> bool {
        self.contexts.capacity() != 0 || self.later.capacity() != 0
    }

    /// This table emptied, its vectors' capacity kept (for a new batch).
    pub(crate) fn emptied(mut self) -> PerRecord {
        self.later.clear();
        self.contexts.clear();
        PerRecord {
            base: 0,
            inline: [(0, 0); INLINE_RUNS],
            len: 0,
            inline_len: 0,
            spilled: false,
            has_contexts: false,
            contexts: self.contexts,
            later: self.later,
        }
    }

    /// Records in the table.
    #[cfg(test)]
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    /// Adds `records` in a row with `timestamp_ms`, after every record so
    /// far: inline while there is room and it fits, else to `later` (as
    /// part of its last run when that has the same timestamp). `len` is
    /// the caller's.
    #[inline]
    fn new_run(&mut self, timestamp_ms: i64, records: u32) {
        if !self.spilled {
            if let Some(run) = self.as_inline(timestamp_ms, records) {
                let n = self.inline_len as usize;
                if n == 0 {
                    self.base = timestamp_ms;
                }
                self.inline[n] = run;
                self.inline_len += 1;
                return;
            }
            self.spilled = true;
        }
        match self.later.last_mut() {
            Some(last) if last.0 == timestamp_ms && last.1.checked_add(records).is_some() => {
                last.1 += records;
            }
            _ => {
                if self.later.len() == self.later.capacity() {
                    let cap = grown(self.later.capacity(), self.later.len() + 1);
                    self.later.reserve_exact(cap - self.later.len());
                }
                self.later.push((timestamp_ms, records))
            }
        }
    }

    /// A new run as an inline entry (ms after `base`, records), if one is
    /// free and both fit 16 bits.
    #[inline]
    fn as_inline(&self, timestamp_ms: i64, records: u32) -> Option<(u16, u16)> {
        let n = self.inline_len as usize;
        if n == INLINE_RUNS {
            return None;
        }
        let delta = if n == 0 {
            0
        } else {
            u16::try_from(timestamp_ms.checked_sub(self.base)?).ok()?
        };
        Some((delta, u16::try_from(records).ok()?))
    }

    #[inline(never)]
    fn push_context(&mut self, context: u64) {
        let need = self.len as usize + 1;
        if need > self.contexts.capacity() {
            let cap = grown(self.contexts.capacity(), need);
            self.contexts.reserve_exact(cap - self.contexts.len());
        }
        self.contexts.resize(self.len as usize, 0);
        self.contexts.push(context);
        self.has_contexts = true;
    }

    /// The runs (timestamp, records in a row with it), in record order.
    fn runs(&self) -> impl Iterator<Item = (i64, u32)> + '_ {
        let base = self.base;
        self.inline[..self.inline_len as usize]
            .iter()
            .map(move |&(d, n)| (base + i64::from(d), u32::from(n)))
            .chain(self.later.iter().copied())
    }

    /// A table of `runs` (none empty) holding `len` records.
    fn from_runs(runs: Vec<(i64, u32)>, len: u32, contexts: Vec<u64>) -> PerRecord {
        let mut t = PerRecord {
            has_contexts: !contexts.is_empty(),
            contexts,
            ..PerRecord::default()
        };
        for (ts, n) in runs {
            t.new_run(ts, n);
        }
        t.len = len;
        t
    }

    /// Splits the table at record `at`: keeps records `..at`, returns
    /// records `at..` (a batch split in two parts).
    pub(crate) fn split_off(&mut self, at: usize) -> PerRecord {
        let at32 = u32::try_from(at).unwrap_or(u32::MAX);
        let mut runs: Vec<(i64, u32)> = self.runs().collect();
        let mut tail_runs = Vec::new();
        if at32 < self.len {
            // The run holding record `at`, and how many of its records
            // come before `at`.
            let mut first = 0u32;
            let mut i = 0;
            while i < runs.len() && first + runs[i].1 <= at32 {
                first += runs[i].1;
                i += 1;
            }
            tail_runs = runs.split_off(i);
            let before = at32 - first;
            if before > 0 {
                let (ts, n) = tail_runs[0];
                runs.push((ts, before));
                tail_runs[0] = (ts, n - before);
            }
        }
        let tail_len = self.len.saturating_sub(at32);
        let contexts = if at < self.contexts.len() {
            self.contexts.split_off(at)
        } else {
            Vec::new()
        };
        let head = PerRecord::from_runs(
            runs,
            self.len - tail_len,
            std::mem::take(&mut self.contexts),
        );
        *self = head;
        PerRecord::from_runs(tail_runs, tail_len, contexts)
    }

    /// Record `i`'s context (0 when none).
    pub(crate) fn context(&self, i: usize) -> u64 {
        self.contexts.get(i).copied().unwrap_or(0)
    }

    /// Each record's timestamp, in order.
    #[cfg(test)]
    pub(crate) fn timestamps(&self) -> impl Iterator<Item = i64> + '_ {
        self.runs()
            .flat_map(|(ts, n)| std::iter::repeat_n(ts, n as usize))
    }
}

/// A per-producer hook called once per record on the I/O thread when its
/// batch completes. It must be quick and must not block (it runs on the
/// thread that drives every broker connection).
///
/// It runs fenced: a panic is caught at each call, the record's result
/// stands (its handle resolves as if the callback had returned), the
/// callback is still called for every later record, and the I/O thread
/// goes on. The first panic is logged (a `tracing` warning), later ones are
/// only counted. The process's panic hook still runs for each panic (by
/// default it prints the message to stderr).
pub type DeliveryCallback = Arc<dyn Fn(&DeliveryReport<'_>) + Send + Sync>;

/// Panics caught while calling a delivery callback for one batch.
#[derive(Debug, Default)]
pub(crate) struct CallbackPanics {
    pub(crate) count: u64,
    /// The first panic's message.
    pub(crate) first: Option<String>,
}

/// Calls `cb` for each record of a completed batch (or part of a split
/// batch: `first` is the index of its first record in the batch), each
/// call fenced: a panic is caught and counted, and the next record is
/// reported as usual.
///
/// One report is built per batch and reused: per record only its index,
/// context and (when delivered) offset and timestamp are stored again, not
/// the topic, partition and outcome that every record of the batch shares
/// (10 instructions per record fewer; BENCHMARKS.md, branch `perrecord3`).
/// The timestamp is taken per run of equal timestamps.
pub(crate) fn report_batch(
    cb: &DeliveryCallback,
    topic: &str,
    partition: i32,
    first: u32,
    records: &PerRecord,
    outcome: &Outcome,
) -> CallbackPanics {
    let mut panics = CallbackPanics::default();
    let mut i = 0usize;
    match outcome {
        Ok(ok) => {
            let mut report = DeliveryReport {
                topic,
                partition,
                index: first,
                context: 0,
                result: Ok(ok.metadata(partition, 0, 0)),
            };
            // Without a negative base or an overflow anywhere in the
            // batch (always, from a broker), each offset is a plain sum.
            let plain =
                ok.base_offset >= 0 && ok.base_offset.checked_add(i64::from(records.len)).is_some();
            for (ts, n) in records.runs() {
                // The batch's partition, the run's timestamp.
                let run = ok.metadata(partition, 0, ts);
                for _ in 0..n {
                    let offset = if plain {
                        ok.base_offset + i as i64
                    } else {
                        ok.offset(i as u32)
                    };
                    report.index = first + i as u32;
                    report.context = records.context(i);
                    report.result = Ok(RecordMetadata { offset, ..run });
                    report_one(cb, &report, &mut panics);
                    i += 1;
                }
            }
        }
        Err(e) if e.records.is_some() => {
            // Records named invalid: each its own error (rare; a clone
            // per record).
            for _ in 0..records.len {
                let own = e.for_record(i as u32);
                let report = DeliveryReport {
                    topic,
                    partition,
                    index: first + i as u32,
                    context: records.context(i),
                    result: Err(&own),
                };
                report_one(cb, &report, &mut panics);
                i += 1;
            }
        }
        Err(e) => {
            let mut report = DeliveryReport {
                topic,
                partition,
                index: first,
                context: 0,
                result: Err(&e.error),
            };
            for _ in 0..records.len {
                report.index = first + i as u32;
                report.context = records.context(i);
                report_one(cb, &report, &mut panics);
                i += 1;
            }
        }
    }
    panics
}

/// One record's report (see [`report_batch`]).
#[inline(always)]
fn report_one(cb: &DeliveryCallback, report: &DeliveryReport<'_>, panics: &mut CallbackPanics) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| cb(report))) {
        panics.count += 1;
        if panics.first.is_none() {
            panics.first = Some(panic_message(&*panic));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn key() -> Settle {
        Settle::for_tests()
    }

    fn aborted(reason: &str) -> DeliveryError {
        DeliveryError::Aborted {
            reason: reason.into(),
            status: MessageStatus::NotPersisted,
        }
    }
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    #[test]
    fn one_completion_resolves_every_record() {
        let b = BatchCompletion::new(3);
        let hs: Vec<_> = (0..5)
            .map(|i| DeliveryHandle::new(b.clone(), i, 1000 + i64::from(i)))
            .collect();
        assert!(hs[0].try_result().is_none());
        assert!(b.complete(
            &key(),
            Ok(BatchOk {
                base_offset: 40,
                log_append_time: -1
            })
        ));
        for (i, h) in hs.iter().enumerate() {
            let md = h.wait().unwrap();
            assert_eq!(md.partition, 3);
            assert_eq!(md.offset, 40 + i as i64);
            assert_eq!(md.timestamp_ms, 1000 + i as i64);
        }
        // Completed at most once.
        assert!(!b.complete(&key(), Err(aborted("x").into())));
        assert!(hs[0].wait().is_ok());
    }

    /// A split batch: each part completes its records with its own base
    /// offset; handles resolve once every part has its result; a part is
    /// completed at most once and the whole batch can no longer be.
    #[test]
    fn a_split_batch_completes_part_by_part() {
        let b = BatchCompletion::new(2);
        let hs: Vec<_> = (0..5)
            .map(|i| DeliveryHandle::new(b.clone(), i, 100))
            .collect();
        assert!(b.split(&key(), 5));
        let ok = |base| {
            Ok(BatchOk {
                base_offset: base,
                log_append_time: -1,
            })
        };
        assert!(!b.complete(&key(), ok(0)), "not as a whole once split");
        assert!(b.complete_part(&key(), Some(Span { first: 0, count: 2 }), ok(10)));
        assert!(!b.is_done());
        assert!(hs[0].try_result().is_none());
        assert!(hs[0].wait_timeout(Duration::from_millis(1)).is_none());
        // Overlapping an earlier part: refused.
        assert!(!b.complete_part(&key(), Some(Span { first: 1, count: 1 }), ok(99)));
        // The rest split again: 2..3 fails, 3..5 lands at 50.
        assert!(b.complete_part(
            &key(),
            Some(Span { first: 2, count: 1 }),
            Err(aborted("big").into())
        ));
        assert!(!b.is_done());
        assert!(b.complete_part(&key(), Some(Span { first: 3, count: 2 }), ok(50)));
        assert!(b.is_done());
        let offsets: Vec<Option<i64>> =
            hs.iter().map(|h| h.wait().ok().map(|m| m.offset)).collect();
        assert_eq!(offsets, vec![Some(10), Some(11), None, Some(50), Some(51)]);
        assert!(!b.complete_part(&key(), Some(Span { first: 3, count: 2 }), ok(70)));
        assert_eq!(hs[4].wait().unwrap().offset, 51);
    }

    #[test]
    fn per_record_splits_with_its_contexts() {
        let mut r = PerRecord::default();
        for i in 0..4 {
            r.push(i, if i == 1 { 7 } else { 0 });
        }
        let tail = r.split_off(2);
        assert_eq!(r.timestamps().collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!((r.context(0), r.context(1)), (0, 7));
        assert_eq!(tail.timestamps().collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!((tail.context(0), tail.context(1)), (0, 0));
    }

    /// Timestamps kept inline and in the vector come back in order: runs
    /// past the inline ones, a timestamp before the first or more than
    /// 65,535 ms after it (not inline: everything after it goes to the
    /// vector too), and a run longer than 65,535 records.
    #[test]
    fn per_record_keeps_every_timestamp_inline_or_not() {
        let mut seqs: Vec<Vec<i64>> = vec![
            (0..20).map(|i| 1_000 + 3 * i).collect(),
            vec![500, 500, 499, 600, 600],
            vec![7, 7, 70_000, 8, 9, 9, 10],
            vec![i64::MAX, i64::MIN, 0, 0],
        ];
        seqs.push(std::iter::repeat_n(42, 70_000).chain([43, 42]).collect());
        for ts in &seqs {
            let mut r = PerRecord::default();
            for &t in ts {
                r.push(t, 0);
            }
            assert_eq!(r.len as usize, ts.len());
            assert_eq!(&r.timestamps().collect::<Vec<_>>(), ts);
            let e = r.emptied();
            assert_eq!((e.len, e.runs().count()), (0, 0));
        }
        // Up to the inline runs within 65 s of the first, no vector.
        let mut r = PerRecord::default();
        for i in 0..INLINE_RUNS as i64 {
            r.push(1_000 + 9_000 * i, 0);
            r.push(1_000 + 9_000 * i, 0);
        }
        assert_eq!((r.later.capacity(), r.runs().count()), (0, INLINE_RUNS));
        r.push(0, 0);
        assert_eq!(r.later.len(), 1);
    }

    /// A push planned before the append (`plan_push`, then
    /// `push_planned`) leaves the table exactly as `push` does, and
    /// declines exactly when `push` would grow a vector: runs extended,
    /// new inline runs (the first, later ones, one more than 65,535 ms
    /// after the first), runs in the vector, runs of 65,535 records, and
    /// contexts from some record on.
    #[test]
    fn a_planned_push_is_a_push() {
        let mut seqs: Vec<Vec<(i64, u64)>> = vec![
            (0..40).map(|i| (1_000 + 3 * (i / 4), 0)).collect(),
            vec![(500, 0), (500, 0), (499, 0), (600, 7), (600, 0), (600, 9)],
            vec![(7, 0), (7, 0), (70_000, 0), (8, 0), (9, 1), (9, 0), (10, 0)],
            vec![(i64::MAX, 0), (i64::MIN, 0), (0, 0), (0, 0)],
            (0..30).map(|i| (100 * i, 0)).collect(),
        ];
        seqs.push(
            std::iter::repeat_n((42, 0), 70_000)
                .chain([(43, 0), (42, 3), (42, 0)])
                .collect(),
        );
        for seq in &seqs {
            let (mut pushed, mut planned) = (PerRecord::default(), PerRecord::default());
            for &(t, c) in seq {
                let grows = planned.push_grows(t, c);
                match planned.plan_push(t, c) {
                    Some(plan) => {
                        assert!(!grows);
                        planned.push_planned(plan, t, c);
                    }
                    None => {
                        // The general path charges the growth, then pushes.
                        assert!(grows);
                        planned.push(t, c);
                    }
                }
                pushed.push(t, c);
                assert_eq!(
                    (
                        planned.base,
                        planned.inline,
                        planned.len,
                        planned.inline_len
                    ),
                    (pushed.base, pushed.inline, pushed.len, pushed.inline_len)
                );
                assert_eq!(
                    (planned.spilled, planned.has_contexts),
                    (pushed.spilled, pushed.has_contexts)
                );
                assert_eq!(
                    (&planned.contexts, &planned.later),
                    (&pushed.contexts, &pushed.later)
                );
            }
            let ts: Vec<i64> = seq.iter().map(|&(t, _)| t).collect();
            assert_eq!(planned.timestamps().collect::<Vec<_>>(), ts);
        }
    }

    /// Runs of equal timestamps split anywhere, inside a run or at its
    /// edge, and keep every record's timestamp.
    #[test]
    fn per_record_runs_split_anywhere() {
        let ts = [5, 5, 5, 6, 6, 9, 5, 5, 10];
        for at in 0..=ts.len() + 1 {
            let mut r = PerRecord::default();
            for &t in &ts {
                r.push(t, 0);
            }
            assert_eq!(r.runs().count(), 5);
            let tail = r.split_off(at);
            let cut = at.min(ts.len());
            assert_eq!(r.timestamps().collect::<Vec<_>>(), ts[..cut], "at {at}");
            assert_eq!(tail.timestamps().collect::<Vec<_>>(), ts[cut..], "at {at}");
            assert_eq!((r.len as usize, tail.len as usize), (cut, ts.len() - cut));
            // Split again: the parts split as a whole table does.
            let mut r2 = tail;
            let t2 = r2.split_off(1);
            assert_eq!(
                r2.timestamps().chain(t2.timestamps()).collect::<Vec<_>>(),
                ts[cut..]
            );
        }
        // Past the inline runs and outside 16 bits, split anywhere.
        let ts: Vec<i64> = (0..12)
            .map(|i| 100 * i)
            .chain([70_000, 70_000, 5, 6])
            .collect();
        for at in 0..=ts.len() {
            let mut r = PerRecord::default();
            for &t in &ts {
                r.push(t, 0);
            }
            let tail = r.split_off(at);
            assert_eq!(r.timestamps().collect::<Vec<_>>(), ts[..at], "at {at}");
            assert_eq!(tail.timestamps().collect::<Vec<_>>(), ts[at..], "at {at}");
        }
    }

    #[test]
    fn log_append_time_and_unknown_offset() {
        let b = BatchCompletion::new(0);
        let h = DeliveryHandle::new(b.clone(), 2, 5);
        b.complete(
            &key(),
            Ok(BatchOk {
                base_offset: -1,
                log_append_time: 777,
            }),
        );
        let md = h.try_result().unwrap().unwrap();
        assert_eq!(md.offset, -1);
        assert_eq!(md.timestamp_ms, 777);
    }

    #[test]
    fn blocking_waiter_is_woken_from_another_thread() {
        let b = BatchCompletion::new(1);
        let h = DeliveryHandle::new(b.clone(), 0, 0);
        let t = std::thread::spawn(move || h.wait());
        // No sleep: the waiter either already waits or will see the result.
        b.complete(&key(), Err(aborted("closed").into()));
        assert!(matches!(
            t.join().unwrap(),
            Err(DeliveryError::Aborted { .. })
        ));
    }

    use crate::test_wake::CountWake;

    #[test]
    fn future_registers_waker_once_and_is_woken() {
        let b = BatchCompletion::new(0);
        let mut h = DeliveryHandle::new(b.clone(), 1, 0);
        let cw = Arc::new(CountWake(AtomicUsize::new(0)));
        let waker = Waker::from(cw.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut h).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut h).poll(&mut cx).is_pending());
        assert_eq!(b.slot.waiting_tasks(), 1, "same waker kept once");
        b.complete(
            &key(),
            Ok(BatchOk {
                base_offset: 10,
                log_append_time: -1,
            }),
        );
        assert_eq!(cw.0.load(Ordering::SeqCst), 1);
        match Pin::new(&mut h).poll(&mut cx) {
            Poll::Ready(Ok(md)) => assert_eq!(md.offset, 11),
            other => panic!("{other:?}"),
        }
    }

    /// Each record's handle of a batch awaited by its own task registers
    /// its waker once however often it is polled, a re-poll from another
    /// task replaces it, and a clone registers its own: at completion each
    /// registered task is woken once. (Registration no longer searches the
    /// batch's list: see `OneShot::poll_settled_in`.)
    #[test]
    fn each_handle_keeps_one_registration() {
        const N: usize = 300;
        let b = BatchCompletion::new(0);
        let counts: Vec<Arc<CountWake>> = (0..N + 2)
            .map(|_| Arc::new(CountWake(AtomicUsize::new(0))))
            .collect();
        let wakers: Vec<Waker> = counts.iter().map(|c| Waker::from(c.clone())).collect();
        let mut handles: Vec<DeliveryHandle> = (0..N)
            .map(|i| DeliveryHandle::new(b.clone(), i as u32, 0))
            .collect();
        for _ in 0..3 {
            for (h, w) in handles.iter_mut().zip(&wakers) {
                assert!(Pin::new(h).poll(&mut Context::from_waker(w)).is_pending());
            }
        }
        assert_eq!(b.slot.waiting_tasks(), N, "one registration per handle");
        // Handle 0 is polled by another task now: that one is woken.
        assert!(Pin::new(&mut handles[0])
            .poll(&mut Context::from_waker(&wakers[N]))
            .is_pending());
        // A clone of handle 1, awaited by yet another task.
        let mut clone = handles[1].clone();
        assert!(Pin::new(&mut clone)
            .poll(&mut Context::from_waker(&wakers[N + 1]))
            .is_pending());
        assert_eq!(b.slot.waiting_tasks(), N + 1);
        b.complete(
            &key(),
            Ok(BatchOk {
                base_offset: 0,
                log_append_time: -1,
            }),
        );
        let woken: Vec<usize> = counts.iter().map(|c| c.0.load(Ordering::SeqCst)).collect();
        assert_eq!(woken[0], 0, "replaced by the task that polled it last");
        assert!(woken[1..].iter().all(|&n| n == 1), "{woken:?}");
        assert!(Pin::new(&mut clone)
            .poll(&mut Context::from_waker(&wakers[N + 1]))
            .is_ready());
    }

    #[test]
    fn a_delivery_handle_stays_three_words() {
        assert_eq!(std::mem::size_of::<DeliveryHandle>(), 24);
    }

    struct PanicWake;
    impl Wake for PanicWake {
        fn wake(self: Arc<Self>) {
            panic!("waker bug");
        }
    }

    /// A waker that panics (a broken executor) does not stop the
    /// completion: the result is stored, the other wakers are woken.
    #[test]
    fn a_panicking_waker_does_not_stop_completion() {
        let b = BatchCompletion::new(0);
        let mut h1 = DeliveryHandle::new(b.clone(), 0, 0);
        let mut h2 = DeliveryHandle::new(b.clone(), 1, 0);
        let bad = Waker::from(Arc::new(PanicWake));
        let cw = Arc::new(CountWake(AtomicUsize::new(0)));
        let good = Waker::from(cw.clone());
        assert!(Pin::new(&mut h1)
            .poll(&mut Context::from_waker(&bad))
            .is_pending());
        assert!(Pin::new(&mut h2)
            .poll(&mut Context::from_waker(&good))
            .is_pending());
        assert!(b.complete(
            &key(),
            Ok(BatchOk {
                base_offset: 3,
                log_append_time: -1,
            })
        ));
        assert_eq!(cw.0.load(Ordering::SeqCst), 1);
        assert_eq!(h1.try_result().unwrap().unwrap().offset, 3);
        assert_eq!(h2.wait().unwrap().offset, 4);
    }

    #[test]
    fn callback_reports_each_record_once() {
        let seen = Arc::new(Mutex::new(vec![]));
        let s2 = seen.clone();
        let cb: DeliveryCallback = Arc::new(move |r: &DeliveryReport<'_>| {
            s2.lock().unwrap().push((
                r.index,
                r.partition,
                r.context,
                r.result.as_ref().map(|m| m.offset).ok(),
            ));
        });
        let mut records = PerRecord::default();
        records.push(1, 0);
        records.push(2, 0);
        assert!(records.contexts.capacity() == 0, "no context, no table");
        records.push(3, 42);
        records.push(4, 0);
        let _ = report_batch(
            &cb,
            "t",
            5,
            0,
            &records,
            &Ok(BatchOk {
                base_offset: 7,
                log_append_time: -1,
            }),
        );
        let _ = report_batch(
            &cb,
            "t",
            5,
            0,
            &records,
            &Err(DeliveryError::Aborted {
                reason: "x".into(),
                status: MessageStatus::NotPersisted,
            }
            .into()),
        );
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                (0, 5, 0, Some(7)),
                (1, 5, 0, Some(8)),
                (2, 5, 42, Some(9)),
                (3, 5, 0, Some(10)),
                (0, 5, 0, None),
                (1, 5, 0, None),
                (2, 5, 42, None),
                (3, 5, 0, None),
            ]
        );
    }

    /// Each report's offset and timestamp are the handle's for the same
    /// record: a plain sum, unknown (-1) for a negative base or an
    /// overflowing sum, and LogAppendTime over the record's own timestamp.
    #[test]
    fn report_offsets_and_timestamps_match_the_handles() {
        let mut records = PerRecord::default();
        for ts in [1, 1, 2, 3, 3, 3] {
            records.push(ts, 0);
        }
        let cases = [
            (7, -1),
            (-1, -1),
            (i64::MAX - 3, -1),
            (i64::MAX - 5, 777),
            (i64::MAX - 6, -1),
        ];
        for (base_offset, log_append_time) in cases {
            let ok = BatchOk {
                base_offset,
                log_append_time,
            };
            let seen = Arc::new(Mutex::new(Vec::new()));
            let s = seen.clone();
            let cb: DeliveryCallback = Arc::new(move |r: &DeliveryReport<'_>| {
                let m = r.result.as_ref().expect("delivered");
                s.lock()
                    .unwrap()
                    .push((r.index, m.partition, m.offset, m.timestamp_ms));
            });
            let _ = report_batch(&cb, "t", 5, 10, &records, &Ok(ok));
            let expected: Vec<_> = records
                .timestamps()
                .enumerate()
                .map(|(i, ts)| {
                    let m = ok.metadata(5, i as u32, ts);
                    (10 + i as u32, m.partition, m.offset, m.timestamp_ms)
                })
                .collect();
            assert_eq!(*seen.lock().unwrap(), expected, "base {base_offset}");
        }
    }
}
