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
//!
//! This file holds the result types and errors; `completion` the shared
//! result and its handles, `per_record` the side table a callback needs,
//! `callback` the fenced calls of the callback.

use std::fmt;
use std::sync::Arc;

use crate::producer::Settle;

mod callback;
mod completion;
mod per_record;

pub(crate) use callback::{report_batch, CallbackPanics};
pub use callback::{DeliveryCallback, DeliveryReport};
pub(crate) use completion::{panic_message, wake_fenced, Span};
pub use completion::{BatchCompletion, DeliveryHandle};
pub(crate) use per_record::{PerRecord, Push};

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

#[cfg(test)]
fn key() -> Settle {
    Settle::for_tests()
}

#[cfg(test)]
fn aborted(reason: &str) -> DeliveryError {
    DeliveryError::Aborted {
        reason: reason.into(),
        status: MessageStatus::NotPersisted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every error's text says, in words, whether the record may be in
    /// the log — what a user deciding to re-send reads in a log line —
    /// and `with_status` changes what it says for the errors that carry a
    /// status, and nothing for those never sent.
    #[test]
    fn every_error_text_says_whether_the_record_may_be_in_the_log() {
        let p = MessageStatus::PossiblyPersisted;
        let carrying = [
            DeliveryError::Timeout {
                timeout_ms: 120_000,
                stage: "in flight",
                last_error: None,
                status: p,
            },
            DeliveryError::Broker {
                code: 87,
                name: "INVALID_RECORD",
                message: Some("bad".into()),
                status: p,
            },
            DeliveryError::InvalidRecords {
                code: 87,
                name: "INVALID_RECORD",
                message: None,
                record_error: Some("no key".into()),
                invalid_records: 1,
                status: p,
            },
            DeliveryError::RetriesExhausted {
                attempts: 3,
                code: 7,
                name: "REQUEST_TIMED_OUT",
                message: None,
                status: p,
            },
            DeliveryError::MessageTooLarge {
                batch_bytes: 2_000_000,
                message: None,
                status: p,
            },
            aborted("closing").with_status(p),
        ];
        for e in carrying {
            assert_eq!(e.status(), p, "{e:?}");
            assert!(e.to_string().ends_with("(possibly persisted)"), "{e}");
            let e = e.with_status(MessageStatus::NotPersisted);
            assert_eq!(e.status(), MessageStatus::NotPersisted, "{e:?}");
            assert!(e.to_string().ends_with("(not persisted)"), "{e}");
        }
        let never_sent = [
            DeliveryError::Encode("zstd failed".into()),
            DeliveryError::UnknownPartition {
                topic: "t".into(),
                partition: 9,
            },
            DeliveryError::Purged,
        ];
        for e in never_sent {
            let e = e.with_status(p);
            assert_eq!(e.status(), MessageStatus::NotPersisted, "{e:?}");
            assert!(!e.to_string().contains("possibly"), "{e}");
        }
    }

    /// A record's offset is its batch's base plus its index, and -1
    /// (unknown) when the broker gave no base or one the index would
    /// carry past `i64::MAX`; LogAppendTime, when the topic uses it,
    /// replaces the record's own timestamp.
    #[test]
    fn record_offsets_and_timestamps_from_the_batch() {
        let ok = |base_offset, log_append_time| BatchOk {
            base_offset,
            log_append_time,
        };
        assert_eq!(ok(100, -1).offset(0), 100);
        assert_eq!(ok(100, -1).offset(7), 107);
        assert_eq!(ok(-1, -1).offset(3), -1);
        assert_eq!(ok(i64::MAX - 1, -1).offset(1), i64::MAX);
        assert_eq!(ok(i64::MAX - 1, -1).offset(2), -1);
        let m = ok(5, -1).metadata(3, 2, 1_700);
        assert_eq!((m.partition, m.offset, m.timestamp_ms), (3, 7, 1_700));
        assert_eq!(ok(5, 9_000).metadata(3, 2, 1_700).timestamp_ms, 9_000);
    }

    /// A record the broker did not name in an invalid batch says how many
    /// it named (singular or plural) and the batch's message; a named one
    /// carries its own reason.
    #[test]
    fn invalid_records_text_names_the_reason_or_the_count() {
        let e = BatchError {
            error: DeliveryError::InvalidRecords {
                code: 87,
                name: "INVALID_RECORD",
                message: Some("batch refused".into()),
                record_error: None,
                invalid_records: 2,
                status: MessageStatus::NotPersisted,
            },
            records: Some(RecordErrors::new(vec![
                (3, "no key".into()),
                (1, "too old".into()),
                (3, "repeated".into()),
            ])),
        };
        assert_eq!(e.records.as_ref().map(RecordErrors::len), Some(2));
        let text = |i| e.for_record(i).to_string();
        assert!(text(1).contains(": too old (not persisted)"), "{}", text(1));
        assert!(text(3).contains(": no key (not persisted)"), "{}", text(3));
        let other = text(2);
        assert!(other.contains(": batch refused;"), "{other}");
        assert!(other.contains("held 2 invalid records ("), "{other}");
        let one = DeliveryError::InvalidRecords {
            code: 87,
            name: "INVALID_RECORD",
            message: None,
            record_error: None,
            invalid_records: 1,
            status: MessageStatus::NotPersisted,
        };
        assert!(one.to_string().contains("held 1 invalid record ("), "{one}");
    }
}
